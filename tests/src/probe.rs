//! A bare HTTP server that answers `200 ok` to anything (a 1 MiB body on
//! `/big`, after [`SLOW`] on `/slow`) and counts the hits and the most
//! `/slow` requests it held at once: the destination of outbound-HTTP
//! policy tests.

use crate::util;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// One request the probe received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// HTTP method.
    pub method: String,
    /// Path with the query string.
    pub path: String,
}

/// A running probe server.
#[derive(Clone)]
pub struct Probe {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    hits: Mutex<Vec<Hit>>,
    /// `/slow` requests being answered now, and the most at once.
    slow: Mutex<(usize, usize)>,
}

/// How long `/slow` takes to answer.
pub const SLOW: std::time::Duration = std::time::Duration::from_millis(300);

impl Probe {
    /// Start the probe on `127.0.0.1:0`.
    pub async fn start() -> Probe {
        let shared = Arc::new(Shared::default());
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let addr = util::serve(router).await;
        Probe { addr, shared }
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Every request received so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// The most `/slow` requests the probe held at once.
    pub fn max_slow_in_flight(&self) -> usize {
        self.shared.slow.lock().unwrap().1
    }

    /// How many requests arrived.
    pub fn hit_count(&self) -> usize {
        self.shared.hits.lock().unwrap().len()
    }
}

/// Size of the `/big` body.
pub const BIG_BODY_BYTES: usize = 1024 * 1024;

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> (StatusCode, String) {
    let path = request.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let body = if path == "/big" { "x".repeat(BIG_BODY_BYTES) } else { "ok".to_string() };
    shared.hits.lock().unwrap().push(Hit { method: request.method().to_string(), path: path.clone() });
    if path == "/slow" {
        {
            let mut slow = shared.slow.lock().unwrap();
            slow.0 += 1;
            slow.1 = slow.1.max(slow.0);
        }
        tokio::time::sleep(SLOW).await;
        shared.slow.lock().unwrap().0 -= 1;
    }
    (StatusCode::OK, body)
}
