//! The accept loop: like `axum::serve`, plus what a public endpoint needs
//! against slow and abusive clients — a deadline for the request head
//! (slowloris), a cap on open connections (beyond it a connection gets one
//! `503` with `Retry-After` and is closed), and graceful shutdown.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Limits of the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Time a client has to send the request line and headers.
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Serve `router` on `listener` until `stop` resolves, then let open
/// requests finish.
pub async fn serve(listener: TcpListener, router: Router, limits: ServerLimits, stop: impl Future<Output = ()>) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let io = TokioIo::new(stream);
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics::counter!("switchboard_connections_refused_total").increment(1);
            tokio::spawn(refuse(Arc::clone(&builder), io));
            continue;
        };
        let connection = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(router.clone())).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answer one request with 503 and close: the server is at its connection cap.
async fn refuse(builder: Arc<Builder<TokioExecutor>>, io: TokioIo<tokio::net::TcpStream>) {
    let service = hyper::service::service_fn(|_request: hyper::Request<Incoming>| async {
        let response = hyper::Response::builder()
            .status(hyper::StatusCode::SERVICE_UNAVAILABLE)
            .header(hyper::header::RETRY_AFTER, "1")
            .header(hyper::header::CONNECTION, "close")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(r#"{"error":{"code":"overloaded","message":"too many open connections; retry shortly"}}"#))
            .expect("a valid response");
        Ok::<_, Infallible>(response)
    });
    let _ = tokio::time::timeout(Duration::from_secs(5), builder.serve_connection(io, service)).await;
}
