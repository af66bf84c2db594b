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
    let request = to_plugin_request(request, app.body_timeout).await?;
    let translated = app.runtime.translate_in(&connector.channel, request).await.map_err(ApiError::from)?.map_err(|e| rejected(&connector, e))?;
    let mut jobs = Vec::with_capacity(translated.messages.len() + translated.direct_replies.len());
    for mut message in translated.messages {
        connector.withhold_secrets(&mut message);
        let id = Some(message.id.clone());
        jobs.push((Job::Answer { connector: connector.id.clone(), message }, id));
    }
    for (index, reply) in translated.direct_replies.into_iter().enumerate() {
        let id = translated.event_id.as_ref().map(|event| format!("{event}#{index}"));
        jobs.push((Job::Deliver { connector: connector.id.clone(), reply, origin: Origin::Channel }, id));
    }
    accept(&app, &connector, jobs).await?;
    into_response(translated.response)
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
    let request = to_plugin_request(request, app.body_timeout).await?;
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
    into_response(result.response)
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
async fn to_plugin_request(request: Request, timeout: std::time::Duration) -> Result<HttpRequest, ApiError> {
    let (parts, body) = request.into_parts();
    let body = tokio::time::timeout(timeout, axum::body::to_bytes(body, super::MAX_BODY_BYTES))
        .await
        .map_err(|_| ApiError::RequestTimeout(format!("the request body did not arrive within {timeout:?}")))?
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
        // Every refusal looks the same to the caller (the reason is in the
        // log): no oracle for which portals are installed or which check failed.
        RequestError::Forbidden(_) => ApiError::Forbidden(FORBIDDEN.into()),
        RequestError::NotFound(reason) => ApiError::NotFound(reason),
    }
}

/// The one answer to a request a plugin refused to authenticate.
const FORBIDDEN: &str = "the request could not be authenticated for this connector";

/// Headers a plugin may not set: they belong to the connection, not to the
/// answer (and `content-length` is computed from the body).
const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "content-length"];

/// The plugin's answer to the caller. A final status (200–599) only — no
/// 1xx or `101 Switching Protocols` — and no hop-by-hop or malformed headers.
fn into_response(response: Option<HttpResponse>) -> Result<Response, ApiError> {
    let Some(response) = response else { return Ok(StatusCode::OK.into_response()) };
    let status = StatusCode::from_u16(response.status).ok().filter(|s| (200..600).contains(&s.as_u16())).ok_or_else(|| ApiError::Plugin {
        code: "plugin_bad_response",
        message: format!("the plugin answered with status {}; only 200–599 may be sent", response.status),
    })?;
    let mut answer = Response::new(axum::body::Body::from(response.body));
    *answer.status_mut() = status;
    for (name, value) in &response.headers {
        let parsed = (axum::http::HeaderName::try_from(name.as_str()), axum::http::HeaderValue::try_from(value.as_str()));
        match parsed {
            (Ok(name), Ok(value)) if !HOP_BY_HOP.contains(&name.as_str()) => {
                answer.headers_mut().append(name, value);
            }
            _ => tracing::warn!(header = %name, "dropped a header the plugin may not set"),
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin_answer(status: u16, headers: &[(&str, &str)]) -> HttpResponse {
        HttpResponse { status, headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(), body: b"ok".to_vec() }
    }

    #[test]
    fn informational_and_invalid_statuses_are_refused() {
        for status in [100, 101, 199, 600, 0] {
            assert!(matches!(into_response(Some(plugin_answer(status, &[]))), Err(ApiError::Plugin { code: "plugin_bad_response", .. })), "{status}");
        }
        assert_eq!(into_response(Some(plugin_answer(204, &[]))).unwrap().status(), StatusCode::NO_CONTENT);
    }

    #[test]
    fn hop_by_hop_and_malformed_headers_are_dropped() {
        let headers = [
            ("content-type", "application/json"),
            ("Connection", "upgrade"),
            ("upgrade", "websocket"),
            ("transfer-encoding", "chunked"),
            ("bad header", "x"),
            ("x-ok", "line\r\nInjected: 1"),
        ];
        let answer = into_response(Some(plugin_answer(200, &headers))).unwrap();
        let names: Vec<&str> = answer.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["content-type"]);
    }
}
