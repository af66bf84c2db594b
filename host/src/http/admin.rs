//! The admin API: operators and administrators act on conversations.
//! Every route needs `Authorization: Bearer {admin_token}`; without an
//! `admin_token` in the configuration the API answers 404.
//!
//! * `GET  /admin/connectors/{connector}/conversations/{conversation}` — state and transcript
//! * `POST /admin/connectors/{connector}/conversations/{conversation}/{handoff|return|reset}`

use super::ApiError;
use crate::app::App;
use crate::bindings::Author;
use crate::conversation::{Conversations, Mode};
use crate::queue::{AdminAction, Job};
use axum::Json;
use axum::extract::{Path, State};
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
    app.enqueue(Job::Admin { connector: connector.id.clone(), conversation: conversation_id.clone(), action }).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": action, "conversation": conversation_id }))))
}

fn authorize(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = app.admin_token.as_deref() else {
        return Err(ApiError::NotFound("the admin API is disabled: set `admin_token` in the configuration".into()));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("missing or wrong admin token".into()))
    }
}

/// Compare without revealing where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
