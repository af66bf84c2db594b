use super::ApiError;
use crate::app::App;
use axum::extract::State;
use std::sync::Arc;

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// The process can serve: the state store answers.
pub async fn readyz(State(app): State<Arc<App>>) -> Result<&'static str, ApiError> {
    match tokio::time::timeout(std::time::Duration::from_secs(2), app.state.ping()).await {
        Ok(Ok(())) => Ok("ready"),
        Ok(Err(error)) => Err(ApiError::Unavailable(format!("state store: {error}"))),
        Err(_) => Err(ApiError::Unavailable("state store did not answer within 2 s".into())),
    }
}
