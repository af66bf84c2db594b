//! The admin API: operators and administrators act on conversations.
//! Every route needs `Authorization: Bearer {admin_token}`; without an
//! `admin_token` in the configuration the API answers 404.
//!
//! * `GET  /admin/connectors/{connector}/conversations/{conversation}` — state and transcript
//! * `POST /admin/connectors/{connector}/conversations/{conversation}/{handoff|return|reset}`
//! * `GET  /admin/dead-letters[?connector=…]` — jobs that failed for good, oldest first
//! * `POST /admin/dead-letters/{id}/replay`, `POST /admin/dead-letters/replay[?connector=…]` (all)
//! * `DELETE /admin/dead-letters/{id}`, `DELETE /admin/dead-letters[?connector=…]` (all)

use super::ApiError;
use crate::app::{App, AppError};
use crate::bindings::Author;
use crate::conversation::{Conversations, Mode};
use crate::queue::{AdminAction, Job};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use std::sync::Arc;

/// `GET …/conversations/{conversation}`.
pub async fn conversation(
    State(app): State<Arc<App>>,
    Path((connector_id, conversation_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&app, &headers)?;
    let connector = app.connector(&connector_id)?;
    let conversations = Conversations { state: app.state.as_ref(), scope: &connector.host_scope, ttl: app.state_ttl };
    let record = conversations.load(&conversation_id).await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    if record.conversation.is_none() {
        return Err(ApiError::NotFound(format!("no conversation `{conversation_id}` on connector `{connector_id}`")));
    }
    let transcript: Vec<Value> = record
        .transcript
        .iter()
        .map(|line| {
            let author = match line.author {
                Author::User => "user",
                Author::Bot => "bot",
                Author::Operator => "operator",
            };
            json!({ "author": author, "text": line.text, "at": line.at })
        })
        .collect();
    let mode = match record.mode {
        Mode::Bot => "bot",
        Mode::Human => "human",
        Mode::Platform => "platform",
    };
    Ok(Json(json!({ "conversation": conversation_id, "mode": mode, "transcript": transcript })))
}

/// `POST …/conversations/{conversation}/{action}`: queued; answers 202.
pub async fn act(
    State(app): State<Arc<App>>,
    Path((connector_id, conversation_id, action)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    authorize(&app, &headers)?;
    let connector = app.connector(&connector_id)?;
    let action = match action.as_str() {
        "handoff" => AdminAction::Handoff,
        "return" => AdminAction::Return,
        "reset" => AdminAction::Reset,
        other => return Err(ApiError::NotFound(format!("unknown action `{other}`; use handoff, return or reset"))),
    };
    app.accept(&connector, vec![(Job::Admin { connector: connector.id.clone(), conversation: conversation_id.clone(), action }, None)]).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": action, "conversation": conversation_id }))))
}

/// Which dead letters a request is about.
#[derive(Debug, serde::Deserialize)]
pub struct DeadLetterFilter {
    connector: Option<String>,
}

/// `GET /admin/dead-letters`.
pub async fn dead_letters(State(app): State<Arc<App>>, Query(filter): Query<DeadLetterFilter>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authorize(&app, &headers)?;
    let letters = app.queue.dead_letters(filter.connector.as_deref()).await.map_err(AppError::from)?;
    let letters: Vec<Value> = letters
        .iter()
        .map(|dead| {
            let envelope = &dead.envelope;
            json!({
                "id": envelope.id,
                "connector": envelope.job.connector(),
                "conversation": envelope.job.conversation_id(),
                "kind": envelope.job.kind(),
                "attempts": envelope.attempt + 1,
                "reason": dead.reason,
                "accepted_ms": envelope.created_ms,
                "buried_ms": dead.buried_ms,
            })
        })
        .collect();
    Ok(Json(json!({ "dead_letters": letters })))
}

/// `POST /admin/dead-letters/{id}/replay`: back into its conversation's lane.
pub async fn replay_dead_letter(State(app): State<Arc<App>>, Path(id): Path<String>, headers: HeaderMap) -> Result<(StatusCode, Json<Value>), ApiError> {
    authorize(&app, &headers)?;
    if !app.queue.replay(&id).await.map_err(AppError::from)? {
        return Err(ApiError::NotFound(format!("no dead letter `{id}`")));
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "replayed": [id] }))))
}

/// `POST /admin/dead-letters/replay`: every dead letter (of one connector).
pub async fn replay_dead_letters(
    State(app): State<Arc<App>>,
    Query(filter): Query<DeadLetterFilter>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    authorize(&app, &headers)?;
    let mut replayed = Vec::new();
    for dead in app.queue.dead_letters(filter.connector.as_deref()).await.map_err(AppError::from)? {
        if app.queue.replay(&dead.envelope.id).await.map_err(AppError::from)? {
            replayed.push(dead.envelope.id);
        }
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "replayed": replayed }))))
}

/// `DELETE /admin/dead-letters/{id}`.
pub async fn delete_dead_letter(State(app): State<Arc<App>>, Path(id): Path<String>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authorize(&app, &headers)?;
    if !app.queue.delete_dead(&id).await.map_err(AppError::from)? {
        return Err(ApiError::NotFound(format!("no dead letter `{id}`")));
    }
    Ok(Json(json!({ "deleted": [id] })))
}

/// `DELETE /admin/dead-letters`: every dead letter (of one connector).
pub async fn delete_dead_letters(State(app): State<Arc<App>>, Query(filter): Query<DeadLetterFilter>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authorize(&app, &headers)?;
    let mut deleted = Vec::new();
    for dead in app.queue.dead_letters(filter.connector.as_deref()).await.map_err(AppError::from)? {
        if app.queue.delete_dead(&dead.envelope.id).await.map_err(AppError::from)? {
            deleted.push(dead.envelope.id);
        }
    }
    Ok(Json(json!({ "deleted": deleted })))
}

fn authorize(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = app.admin_token.as_deref() else {
        return Err(ApiError::NotFound("the admin API is disabled: set `admin_token` in the configuration".into()));
    };
    let given = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).and_then(|value| value.strip_prefix("Bearer ")).unwrap_or_default();
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) { Ok(()) } else { Err(ApiError::Unauthorized("missing or wrong admin token".into())) }
}

/// Compare without revealing where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
