//! A bare HTTP server that answers `200 ok` to anything (and a 1 MiB body on
//! `/big`) and counts the hits: the destination of outbound-HTTP policy tests.

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
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Probe {
    /// Start the probe on `127.0.0.1:0`.
    pub async fn start() -> Probe {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new().fallback(handle).with_state(hits.clone());
        let addr = util::serve(router).await;
        Probe { addr, hits }
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
        self.hits.lock().unwrap().clone()
    }

    /// How many requests arrived.
    pub fn hit_count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }
}

/// Size of the `/big` body.
pub const BIG_BODY_BYTES: usize = 1024 * 1024;

async fn handle(State(hits): State<Arc<Mutex<Vec<Hit>>>>, request: Request) -> (StatusCode, String) {
    let path = request.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let body = if path == "/big" { "x".repeat(BIG_BODY_BYTES) } else { "ok".to_string() };
    hits.lock().unwrap().push(Hit { method: request.method().to_string(), path });
    (StatusCode::OK, body)
}
