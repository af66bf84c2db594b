//! Bitrix24 REST calls (`POST {client_endpoint}{method}` with a JSON body
//! carrying `auth`) and the mapping of REST errors to [`PluginError`]s.
//! Tokens never appear in error messages or logs.

use serde_json::{Map, Value};
use std::time::Duration;
use switchboard_sdk::{PluginError, http, log};

/// Send a message as the bot.
pub const MESSAGE_ADD: &str = "imbot.message.add";
/// Answer a slash command.
pub const COMMAND_ANSWER: &str = "imbot.command.answer";
/// `imopenlines.bot.session.operator`: hand an Open Line chat to the operator queue.
pub const OPERATOR_HANDOFF: &str = "imopenlines.bot.session.operator";
/// Register a bot.
pub const BOT_REGISTER: &str = "imbot.register";
/// Register a bot command.
pub const COMMAND_REGISTER: &str = "imbot.command.register";

const TIMEOUT: Duration = Duration::from_secs(20);

/// Error codes meaning the token was refused: an administrator must act.
const AUTH_ERRORS: &[&str] = &[
    "expired_token",
    "NO_AUTH_FOUND",
    "invalid_token",
    "INVALID_TOKEN",
    "WRONG_AUTH_TYPE",
    "INVALID_CREDENTIALS",
];

/// Error codes worth retrying.
const TRANSIENT_ERRORS: &[&str] = &[
    "QUERY_LIMIT_EXCEEDED",
    "OVERLOAD_LIMIT",
    "INTERNAL_SERVER_ERROR",
];

/// One REST method call, without the `auth` parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct RestCall {
    /// Method name, e.g. `imbot.message.add`.
    pub method: &'static str,
    /// Method parameters.
    pub params: Map<String, Value>,
}

/// `{endpoint}{method}`, with exactly one `/` between them.
pub fn method_url(client_endpoint: &str, method: &str) -> Result<String, PluginError> {
    let endpoint = client_endpoint.trim();
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
        return Err(PluginError::permanent(format!(
            "Bitrix24 client_endpoint `{endpoint}` is not an http(s) URL"
        )));
    }
    Ok(format!("{}/{method}", endpoint.trim_end_matches('/')))
}

/// The JSON body: the method parameters plus `auth`.
pub fn request_body(token: &str, params: &Map<String, Value>) -> Value {
    let mut body = params.clone();
    body.insert("auth".into(), Value::String(token.to_string()));
    Value::Object(body)
}

/// Read a REST response: the `result` on success, a classified error otherwise.
pub fn interpret_response(method: &str, status: u16, body: &[u8]) -> Result<Value, PluginError> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error_code = parsed
        .as_ref()
        .and_then(|json| json.get("error"))
        .and_then(Value::as_str);
    if (200..300).contains(&status) && error_code.is_none() {
        return match parsed.as_ref().and_then(|json| json.get("result")) {
            Some(result) => Ok(result.clone()),
            None => Err(PluginError::permanent(format!(
                "Bitrix24 {method}: HTTP {status} without a `result`: {}",
                http::snippet(&String::from_utf8_lossy(body))
            ))),
        };
    }
    let description = parsed
        .as_ref()
        .and_then(|json| json.get("error_description"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| http::snippet(&String::from_utf8_lossy(body)));
    Err(classify_error(method, status, error_code, &description))
}

/// Map a Bitrix24 error to an error kind with an actionable message.
pub fn classify_error(
    method: &str,
    status: u16,
    code: Option<&str>,
    description: &str,
) -> PluginError {
    let code_text = code.unwrap_or("no error code");
    let detail = format!("Bitrix24 {method} failed with HTTP {status} {code_text}: {description}");
    match code {
        Some(code) if AUTH_ERRORS.contains(&code) => PluginError::config(format!(
            "{detail}. The bot token expired or was rejected: reinstall the application on the portal \
             or refresh its OAuth token"
        )),
        Some("insufficient_scope") => PluginError::config(format!(
            "{detail}. Add the `imbot` scope to the Bitrix24 application and reinstall it"
        )),
        Some(code) if TRANSIENT_ERRORS.contains(&code) => PluginError::transient(detail),
        _ if status == 429 || status >= 500 => PluginError::transient(detail),
        _ if status == 401 => PluginError::config(format!(
            "{detail}. The bot token was rejected: reinstall the application or refresh its OAuth token"
        )),
        _ => PluginError::permanent(detail),
    }
}

/// Call a REST method and return its `result`. Failures are logged as warnings.
pub fn call(client_endpoint: &str, token: &str, call: &RestCall) -> Result<Value, PluginError> {
    let result = send(client_endpoint, token, call);
    if let Err(error) = &result {
        log::warn(&error.message);
    }
    result
}

fn send(client_endpoint: &str, token: &str, call: &RestCall) -> Result<Value, PluginError> {
    let url = method_url(client_endpoint, call.method)?;
    let response = http::Request::post(&url)
        .json(&request_body(token, &call.params))
        .timeout(TIMEOUT)
        .send()
        .map_err(|error| transport_error(call.method, error))?;
    interpret_response(call.method, response.status, &response.body)
}

fn transport_error(method: &str, error: http::HttpError) -> PluginError {
    let hint = match &error {
        http::HttpError::Denied(_) => {
            ": add the portal to this plugin's `portal_url` or `allowed_hosts` setting"
        }
        _ => "",
    };
    let mut mapped = PluginError::from(error);
    mapped.message = format!("Bitrix24 {method}: {}{hint}", mapped.message);
    mapped
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::ErrorKind;

    fn failure(status: u16, body: &str) -> PluginError {
        interpret_response(MESSAGE_ADD, status, body.as_bytes()).unwrap_err()
    }

    #[test]
    fn success_returns_the_result() {
        let result = interpret_response(
            MESSAGE_ADD,
            200,
            br#"{"result":19880117,"time":{"start":1}}"#,
        );
        assert_eq!(result.unwrap(), serde_json::json!(19880117));
    }

    #[test]
    fn expired_or_missing_auth_is_a_config_error() {
        for body in [
            r#"{"error":"expired_token","error_description":"The access token provided has expired."}"#,
            r#"{"error":"NO_AUTH_FOUND","error_description":"Wrong authorization data"}"#,
        ] {
            let error = failure(401, body);
            assert_eq!(error.kind, ErrorKind::Config, "{body}");
            assert!(
                error.message.contains("expired or was rejected"),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn rate_limits_and_server_errors_are_transient() {
        let error = failure(
            503,
            r#"{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}"#,
        );
        assert_eq!(error.kind, ErrorKind::Transient);
        assert_eq!(
            failure(500, r#"{"error":"INTERNAL_SERVER_ERROR"}"#).kind,
            ErrorKind::Transient
        );
        assert_eq!(
            failure(502, "<html>Bad gateway</html>").kind,
            ErrorKind::Transient
        );
    }

    #[test]
    fn rejected_messages_are_permanent_with_the_description() {
        for (code, description) in [
            ("MESSAGE_EMPTY", "Message can't be empty"),
            ("BOT_ID_ERROR", "Bot not found"),
            ("DIALOG_ID_EMPTY", "Dialog ID can't be empty"),
            ("ATTACH_ERROR", "Incorrect attach params"),
            ("KEYBOARD_ERROR", "Incorrect keyboard params"),
        ] {
            let body = format!(r#"{{"error":"{code}","error_description":"{description}"}}"#);
            let error = failure(400, &body);
            assert_eq!(error.kind, ErrorKind::Permanent, "{code}");
            assert!(
                error.message.contains(code) && error.message.contains(description),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn missing_scope_is_a_config_error() {
        assert_eq!(
            failure(403, r#"{"error":"insufficient_scope"}"#).kind,
            ErrorKind::Config
        );
    }

    #[test]
    fn an_error_in_a_200_response_is_still_an_error() {
        assert_eq!(
            failure(200, r#"{"error":"BOT_ID_ERROR","error_description":"x"}"#).kind,
            ErrorKind::Permanent
        );
        assert_eq!(failure(200, "not json").kind, ErrorKind::Permanent);
    }

    #[test]
    fn urls_and_bodies() {
        assert_eq!(
            method_url("https://p.bitrix24.com/rest/", MESSAGE_ADD).unwrap(),
            "https://p.bitrix24.com/rest/imbot.message.add"
        );
        assert_eq!(
            method_url("https://p.bitrix24.com/rest", BOT_REGISTER).unwrap(),
            "https://p.bitrix24.com/rest/imbot.register"
        );
        assert!(method_url("p.bitrix24.com/rest/", MESSAGE_ADD).is_err());
        let mut params = Map::new();
        params.insert("BOT_ID".into(), "55".into());
        assert_eq!(
            request_body("tok", &params),
            serde_json::json!({"BOT_ID": "55", "auth": "tok"})
        );
    }
}
