//! Webhook handlers: verify and translate while the caller waits, record
//! the slow work durably (dropping redeliveries), then answer. A 2xx means
//! the jobs are stored: they survive a crash from then on.

use super::ApiError;
use crate::app::App;
use crate::bindings::{HttpRequest, HttpResponse, RequestError};
use crate::connector::Connector;
use crate::queue::{Job, Origin};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// `POST /hooks/{connector}`: a platform event.
pub async fn platform_webhook(State(app): State<Arc<App>>, Path(connector_id): Path<String>, request: Request) -> Result<Response, ApiError> {
    let connector = app.connector(&connector_id)?;
    let _slot = app.admit_webhook(&connector.tenant)?;
    let request = to_plugin_request(request).await?;
    let translated = app.runtime.translate_in(&connector.channel, request).await.map_err(ApiError::from)?.map_err(|e| rejected(&connector, e))?;
    let mut jobs = Vec::with_capacity(translated.messages.len() + translated.direct_replies.len());
    for message in translated.messages {
        let id = Some(message.id.clone());
        jobs.push((Job::Answer { connector: connector.id.clone(), message }, id));
    }
    for (index, reply) in translated.direct_replies.into_iter().enumerate() {
        let id = translated.event_id.as_ref().map(|event| format!("{event}#{index}"));
        jobs.push((Job::Deliver { connector: connector.id.clone(), reply, origin: Origin::Channel }, id));
    }
    accept(&app, &connector, jobs).await?;
    Ok(into_response(translated.response))
}

/// `POST /hooks/{connector}/{plugin}`: a callback from the provider or the
/// handoff plugin.
pub async fn provider_callback(
    State(app): State<Arc<App>>,
    Path((connector_id, plugin)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let connector = app.connector(&connector_id)?;
    let Some(target) = connector.callback_target(&plugin) else {
        return Err(ApiError::NotFound(format!("connector `{connector_id}` has no provider or handoff plugin `{plugin}`")));
    };
    let _slot = app.admit_webhook(&connector.tenant)?;
    let origin = if target.plugin.name == connector.provider.plugin.name { Origin::Provider } else { Origin::Handoff };
    let request = to_plugin_request(request).await?;
    let result = app.runtime.handle_callback(target, request).await.map_err(ApiError::from)?.map_err(|e| rejected(&connector, e))?;
    let jobs = result
        .replies
        .into_iter()
        .enumerate()
        .map(|(index, reply)| {
            let id = result.event_id.as_ref().map(|event| format!("{plugin}:{event}#{index}"));
            (Job::Deliver { connector: connector.id.clone(), reply, origin }, id)
        })
        .collect();
    accept(&app, &connector, jobs).await?;
    Ok(into_response(result.response))
}

/// Record the jobs; count the webhook by outcome.
async fn accept(app: &App, connector: &Connector, jobs: Vec<(Job, Option<String>)>) -> Result<(), ApiError> {
    match app.accept(connector, jobs).await {
        Ok(_) => {
            count_webhook(connector, "accepted", "");
            Ok(())
        }
        Err(error) => {
            count_webhook(connector, "unavailable", "queue");
            Err(error.into())
        }
    }
}

fn count_webhook(connector: &Connector, outcome: &'static str, reason: &'static str) {
    metrics::counter!("switchboard_webhooks_total", "connector" => connector.id.clone(), "outcome" => outcome, "reason" => reason).increment(1);
}

/// The request as plugins see it (header names are already lower-case).
async fn to_plugin_request(request: Request) -> Result<HttpRequest, ApiError> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, super::MAX_BODY_BYTES)
        .await
        .map_err(|e| ApiError::BadRequest(format!("cannot read the request body (at most {} bytes): {e}", super::MAX_BODY_BYTES)))?;
    let uri = &parts.uri;
    Ok(HttpRequest {
        method: parts.method.to_string(),
        path_with_query: uri.path_and_query().map_or_else(|| uri.path().to_string(), |p| p.to_string()),
        headers: parts.headers.iter().map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned())).collect(),
        body: body.to_vec(),
    })
}

fn rejected(connector: &Connector, error: RequestError) -> ApiError {
    tracing::warn!(tenant = %connector.tenant, connector = %connector.id, ?error, "webhook rejected by the plugin");
    let reason = match &error {
        RequestError::BadRequest(_) => "bad_request",
        RequestError::Forbidden(_) => "forbidden",
        RequestError::NotFound(_) => "not_found",
    };
    count_webhook(connector, "rejected", reason);
    match error {
        RequestError::BadRequest(reason) => ApiError::BadRequest(reason),
        RequestError::Forbidden(reason) => ApiError::Forbidden(reason),
        RequestError::NotFound(reason) => ApiError::NotFound(reason),
    }
}

fn into_response(response: Option<HttpResponse>) -> Response {
    let Some(response) = response else { return StatusCode::OK.into_response() };
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let mut builder = axum::http::Response::builder().status(status);
    for (name, value) in &response.headers {
        builder = builder.header(name, value);
    }
    builder.body(axum::body::Body::from(response.body)).unwrap_or_else(|_| StatusCode::OK.into_response())
}
