//! A provider that starts 50,000 outbound requests to an allowed host
//! without waiting for any of them (raw `wasi:http`), then answers with how
//! many the host let it start. The host must cap requests per call (and
//! keep the tenant's requests in flight to its limit). `target_path`
//! defaults to `/probe`.

use switchboard_sdk::prelude::*;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, OutgoingBody, OutgoingRequest, Scheme};

struct RequestFlood;

const REQUESTS: usize = 50_000;

impl Provider for RequestFlood {
    fn call_provider(_message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        let port = config::require("target_port")?;
        let path = config::get_or("target_path", "/probe");
        let mut pending = Vec::new();
        let mut refused = 0;
        for _ in 0..REQUESTS {
            let request = OutgoingRequest::new(Fields::new());
            let _ = request.set_scheme(Some(&Scheme::Http));
            let _ = request.set_authority(Some(&format!("127.0.0.1:{port}")));
            let _ = request.set_path_with_query(Some(&path));
            let body = request.body().expect("a fresh request has a body");
            match outgoing_handler::handle(request, None) {
                Ok(future) => {
                    let _ = OutgoingBody::finish(body, None);
                    pending.push(future);
                }
                Err(_) => refused += 1,
            }
        }
        // Wait for all of them: the ones the host refused fail at once.
        let mut sent = 0;
        for future in &pending {
            future.subscribe().block();
            if matches!(future.get(), Some(Ok(Ok(_)))) {
                sent += 1;
            }
        }
        Ok(vec![OutboundMessage::text(format!("sent {sent} of {REQUESTS} ({refused} refused when started)"))])
    }
}

switchboard_sdk::export_provider!(RequestFlood);
