//! The HTTP API.
//!
//! * `POST /hooks/{connector}` — platform webhooks → channel `translate-in`
//! * `POST /hooks/{connector}/{plugin}` — provider callbacks → `handle-callback`
//! * `GET /healthz` (process alive), `GET /readyz` (store and queue reachable)
//! * `GET /metrics` — Prometheus metrics (see [`crate::metrics`])
//! * `/admin/...` — conversation state and handoff/return/reset (see [`admin`])

mod admin;
mod error;
mod health;
pub mod serve;
mod webhooks;

pub use error::ApiError;

use crate::app::App;
use axum::Router;
use axum::routing::{delete, get, post};
use std::sync::Arc;

/// Largest webhook body accepted.
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The router with every route.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/hooks/{connector}", post(webhooks::platform_webhook))
        .route("/hooks/{connector}/{plugin}", post(webhooks::provider_callback))
        .route("/admin/connectors/{connector}/conversations/{conversation}", get(admin::conversation))
        .route("/admin/connectors/{connector}/conversations/{conversation}/{action}", post(admin::act))
        .route("/admin/dead-letters", get(admin::dead_letters).delete(admin::delete_dead_letters))
        .route("/admin/dead-letters/replay", post(admin::replay_dead_letters))
        .route("/admin/dead-letters/{id}", delete(admin::delete_dead_letter))
        .route("/admin/dead-letters/{id}/replay", post(admin::replay_dead_letter))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/readyz", get(health::readyz))
        .with_state(app)
}
