//! A provider that tries an outbound HTTP request and reports what the host
//! did with it: `denied: {error}` when the request failed, `allowed: {status}`
//! when it went through.
//!
//! The destination is `target_url`, else
//! `http://{target_host}:{target_port}{target_path}` (`target_host` defaults
//! to `127.0.0.1`). The component has no manifest, so no setting allows a
//! host: only the connector's `allowed_hosts` does.

use switchboard_sdk::prelude::*;

struct ForbiddenHttp;

impl Provider for ForbiddenHttp {
    fn call_provider(_message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        let url = match config::get("target_url") {
            Some(url) => url,
            None => {
                let port = config::require("target_port")?;
                let path = config::get_or("target_path", "/probe");
                let host = config::get_or("target_host", "127.0.0.1");
                format!("http://{host}:{port}{path}")
            }
        };
        let text = match http::Request::get(url).send() {
            Ok(response) => format!("allowed: {}", response.status),
            Err(e) => format!("denied: {e}"),
        };
        Ok(vec![OutboundMessage::text(text)])
    }
}

switchboard_sdk::export_provider!(ForbiddenHttp);
