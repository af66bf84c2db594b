use super::ApiError;
use crate::app::App;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::Arc;
use std::time::Duration;

/// How long `/readyz` waits for the store and the queue.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// The process can serve: the state store and the job queue answer.
pub async fn readyz(State(app): State<Arc<App>>) -> Result<&'static str, ApiError> {
    match tokio::time::timeout(PROBE_TIMEOUT, app.state.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(ApiError::Unavailable(format!("state store: {error}"))),
        Err(_) => return Err(ApiError::Unavailable("state store did not answer within 2 s".into())),
    }
    match tokio::time::timeout(PROBE_TIMEOUT, app.queue.stats()).await {
        Ok(Ok(_)) => Ok("ready"),
        Ok(Err(error)) => Err(ApiError::Unavailable(format!("job queue: {error}"))),
        Err(_) => Err(ApiError::Unavailable("job queue did not answer within 2 s".into())),
    }
}

/// Prometheus metrics in the text exposition format.
pub async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::render())
}
