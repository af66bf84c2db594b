//! Webhook handlers: verify and translate while the caller waits, queue the
//! slow work, answer at once.

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
pub async fn platform_webhook(
    State(app): State<Arc<App>>,
    Path(connector_id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let connector = app.connector(&connector_id)?;
    let request = to_plugin_request(request).await?;
    let translated = app
        .runtime
        .translate_in(&connector.channel, request)
        .await
        .map_err(|e| anyhow::anyhow!(e))?
        .map_err(|e| rejected(&connector, e))?;
    for message in translated.messages {
        app.enqueue(Job::Answer { connector: connector.id.clone(), message }).await?;
    }
    for reply in translated.direct_replies {
        app.enqueue(Job::Deliver { connector: connector.id.clone(), reply, origin: Origin::Channel }).await?;
    }
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
    let origin = if target.plugin.name == connector.provider.plugin.name { Origin::Provider } else { Origin::Handoff };
    let request = to_plugin_request(request).await?;
    let result = app
        .runtime
        .handle_callback(target, request)
        .await
        .map_err(|e| anyhow::anyhow!(e))?
        .map_err(|e| rejected(&connector, e))?;
    for reply in result.replies {
        app.enqueue(Job::Deliver { connector: connector.id.clone(), reply, origin }).await?;
    }
    Ok(into_response(result.response))
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
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
    })
}

fn rejected(connector: &Connector, error: RequestError) -> ApiError {
    tracing::warn!(tenant = %connector.tenant, connector = %connector.id, ?error, "webhook rejected by the plugin");
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
    builder
        .body(axum::body::Body::from(response.body))
        .unwrap_or_else(|_| StatusCode::OK.into_response())
}
