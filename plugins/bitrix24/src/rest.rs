//! Bitrix24 REST calls (`POST {client_endpoint}{method}` with a JSON body
//! carrying `auth`) and the mapping of REST errors to [`PluginError`]s.
//! Tokens never appear in error messages or logs.

use serde_json::{Map, Value};
use std::time::Duration;
use switchboard_sdk::{PluginError, http};

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

/// The error code of an expired access token (HTTP 401); refreshing helps.
pub const EXPIRED_TOKEN: &str = "expired_token";

/// Error codes meaning the token was refused: an administrator must act.
const AUTH_ERRORS: &[&str] = &["NO_AUTH_FOUND", "invalid_token", "INVALID_TOKEN", "WRONG_AUTH_TYPE", "INVALID_CREDENTIALS"];

/// The portal's rate limit (a leaky bucket of 2 requests per second with a
/// burst of 50, per portal): retry after [`RATE_LIMIT_WAIT`].
pub const QUERY_LIMIT_EXCEEDED: &str = "QUERY_LIMIT_EXCEEDED";

/// Error codes worth retrying on the host's schedule (`OVERLOAD_LIMIT`: the
/// portal blocked REST calls for a while, longer than the rate limit).
const TRANSIENT_ERRORS: &[&str] = &["OVERLOAD_LIMIT", "INTERNAL_SERVER_ERROR"];

/// How long the portal's leaky bucket (2 requests per second) needs to let
/// a request through again after `QUERY_LIMIT_EXCEEDED`.
pub const RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);

/// One REST method call, without the `auth` parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct RestCall {
    /// Method name, e.g. `imbot.message.add`.
    pub method: &'static str,
    /// Method parameters.
    pub params: Map<String, Value>,
}

/// A failed REST call: Bitrix24's error code (if it sent one) and the
/// classified error.
#[derive(Clone, Debug)]
pub struct RestFailure {
    /// `error` of the response body, e.g. `expired_token`.
    pub code: Option<String>,
    /// What to tell the host.
    pub error: PluginError,
}

impl RestFailure {
    /// The access token expired: a refreshed one may succeed.
    pub fn is_expired_token(&self) -> bool {
        self.code.as_deref() == Some(EXPIRED_TOKEN)
    }
}

impl From<PluginError> for RestFailure {
    fn from(error: PluginError) -> Self {
        Self { code: None, error }
    }
}

/// `{endpoint}{method}`, with exactly one `/` between them.
pub fn method_url(client_endpoint: &str, method: &str) -> Result<String, PluginError> {
    let endpoint = client_endpoint.trim();
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
        return Err(PluginError::permanent(format!("Bitrix24 client_endpoint `{endpoint}` is not an http(s) URL")));
    }
    Ok(format!("{}/{method}", endpoint.trim_end_matches('/')))
}

/// The JSON body: the method parameters plus `auth`.
pub fn request_body(token: &str, params: &Map<String, Value>) -> Value {
    let mut body = params.clone();
    body.insert("auth".into(), Value::String(token.to_string()));
    Value::Object(body)
}

/// Read a REST response: the `result` on success, a classified error
/// otherwise. `headers` have lower-case names; `now` (Unix seconds) reads a
/// `Retry-After` given as a date.
pub fn interpret_response(method: &str, status: u16, headers: &[(String, String)], body: &[u8], now: u64) -> Result<Value, RestFailure> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error_code = parsed.as_ref().and_then(|json| json.get("error")).and_then(Value::as_str);
    if (200..300).contains(&status) && error_code.is_none() {
        return match parsed.as_ref().and_then(|json| json.get("result")) {
            Some(result) => Ok(result.clone()),
            None => {
                Err(PluginError::permanent(format!("Bitrix24 {method}: HTTP {status} without a `result`: {}", http::snippet(&String::from_utf8_lossy(body))))
                    .into())
            }
        };
    }
    let description = parsed
        .as_ref()
        .and_then(|json| json.get("error_description"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| http::snippet(&String::from_utf8_lossy(body)));
    let retry_after = headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("retry-after")).and_then(|(_, value)| parse_retry_after(value, now));
    Err(RestFailure { code: error_code.map(str::to_string), error: classify_error(method, status, error_code, &description, retry_after) })
}

/// Map a Bitrix24 error to an error kind with an actionable message.
/// `retry_after` is the response's `Retry-After`, if it had one.
pub fn classify_error(method: &str, status: u16, code: Option<&str>, description: &str, retry_after: Option<Duration>) -> PluginError {
    let code_text = code.unwrap_or("no error code");
    let description = description.trim().trim_end_matches('.');
    let detail = format!("Bitrix24 {method} failed with HTTP {status} {code_text}: {description}");
    let transient = |wait: Option<Duration>| {
        let error = PluginError::transient(detail.clone());
        match retry_after.or(wait) {
            Some(wait) => error.with_retry_after(wait),
            None => error,
        }
    };
    match code {
        Some(EXPIRED_TOKEN) => PluginError::config(format!(
            "{detail}. The access token expired (Bitrix24 tokens live one hour): set `client_id` and \
             `client_secret` (the application's OAuth credentials) so the plugin refreshes it, or \
             reinstall the application on the portal"
        )),
        Some(code) if AUTH_ERRORS.contains(&code) => {
            PluginError::config(format!("{detail}. The bot token was rejected: reinstall the application on the portal"))
        }
        Some("insufficient_scope") => PluginError::config(format!("{detail}. Add the `imbot` scope to the Bitrix24 application and reinstall it")),
        Some(QUERY_LIMIT_EXCEEDED) => transient(Some(RATE_LIMIT_WAIT)),
        Some(code) if TRANSIENT_ERRORS.contains(&code) => transient(None),
        _ if status == 429 || status >= 500 => transient(None),
        _ if status == 401 => PluginError::config(format!("{detail}. The bot token was rejected: reinstall the application on the portal")),
        _ => PluginError::permanent(detail),
    }
}

/// A `Retry-After` value: delay-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, measured from `now`, Unix seconds).
/// `None` when it cannot be read.
pub fn parse_retry_after(value: &str, now: u64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_http_date(value)?;
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) as Unix seconds.
fn parse_http_date(value: &str) -> Option<u64> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as i64 + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let mut clock = time.split(':').map(|part| part.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if clock.next().is_some() || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
}

/// Send one REST call with `token` as `auth` (the HTTP edge; no retries).
pub fn send(client_endpoint: &str, token: &str, call: &RestCall) -> Result<Value, RestFailure> {
    let url = method_url(client_endpoint, call.method)?;
    let response =
        http::Request::post(&url).json(&request_body(token, &call.params)).timeout(TIMEOUT).send().map_err(|error| transport_error(call.method, error))?;
    interpret_response(call.method, response.status, &response.headers, &response.body, unix_now())
}

/// Seconds since the Unix epoch (`wasi:clocks`).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

fn transport_error(method: &str, error: http::HttpError) -> PluginError {
    let hint = match &error {
        http::HttpError::Denied(_) => ": add the portal to this plugin's `portal_url` or `allowed_hosts` setting",
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

    const NOW: u64 = 1_771_928_985;

    fn failure(status: u16, body: &str) -> PluginError {
        failure_with(status, &[], body).error
    }

    fn failure_with(status: u16, headers: &[(&str, &str)], body: &str) -> RestFailure {
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        interpret_response(MESSAGE_ADD, status, &headers, body.as_bytes(), NOW).unwrap_err()
    }

    #[test]
    fn success_returns_the_result() {
        let result = interpret_response(MESSAGE_ADD, 200, &[], br#"{"result":19880117,"time":{"start":1}}"#, NOW);
        assert_eq!(result.unwrap(), serde_json::json!(19880117));
    }

    #[test]
    fn expired_token_is_recognised_and_names_the_settings_that_refresh_it() {
        let expired = failure_with(401, &[], r#"{"error":"expired_token","error_description":"The access token provided has expired."}"#);
        assert!(expired.is_expired_token());
        assert_eq!(expired.error.kind, ErrorKind::Config);
        assert!(expired.error.message.contains("`client_id`") && expired.error.message.contains("`client_secret`"), "{}", expired.error.message);
    }

    #[test]
    fn rejected_auth_is_a_config_error() {
        for body in [
            r#"{"error":"NO_AUTH_FOUND","error_description":"Wrong authorization data"}"#,
            r#"{"error":"invalid_token","error_description":"The access token provided is invalid."}"#,
            r#"{"error":"SOMETHING_NEW"}"#,
        ] {
            let failure = failure_with(401, &[], body);
            assert!(!failure.is_expired_token(), "{body}");
            assert_eq!(failure.error.kind, ErrorKind::Config, "{body}");
            assert!(failure.error.message.contains("rejected"), "{}", failure.error.message);
        }
    }

    #[test]
    fn rate_limits_and_server_errors_are_transient() {
        let error = failure(503, r#"{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}"#);
        assert_eq!(error.kind, ErrorKind::Transient);
        assert_eq!(error.retry_after_ms, Some(1000), "the leaky bucket drains 2 requests a second");
        let server = failure(500, r#"{"error":"INTERNAL_SERVER_ERROR"}"#);
        assert_eq!(server.kind, ErrorKind::Transient);
        assert_eq!(server.retry_after_ms, None, "the host's retry schedule");
        let gateway = failure(502, "<html>Bad gateway</html>");
        assert_eq!(gateway.kind, ErrorKind::Transient);
        let throttled = failure(429, r#"{"error":"OPERATION_TIME_LIMIT"}"#);
        assert_eq!(throttled.kind, ErrorKind::Transient);
        assert_eq!(throttled.retry_after_ms, None);
    }

    #[test]
    fn retry_after_headers_are_honoured() {
        let limited = failure_with(503, &[("retry-after", "7")], r#"{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}"#);
        assert_eq!(limited.error.retry_after_ms, Some(7000), "the header wins over the default second");
        let throttled = failure_with(429, &[("Retry-After", " 120 ")], "");
        assert_eq!(throttled.error.kind, ErrorKind::Transient);
        assert_eq!(throttled.error.retry_after_ms, Some(120_000));
        let dated = failure_with(429, &[("retry-after", "Tue, 24 Feb 2026 10:30:45 GMT")], "");
        assert_eq!(dated.error.retry_after_ms, Some(60_000), "one minute after NOW");
        let unreadable = failure_with(429, &[("retry-after", "soon")], "");
        assert_eq!(unreadable.error.retry_after_ms, None);
        // A Retry-After on a permanent error changes nothing.
        let rejected = failure_with(400, &[("retry-after", "5")], r#"{"error":"MESSAGE_EMPTY"}"#);
        assert_eq!((rejected.error.kind, rejected.error.retry_after_ms), (ErrorKind::Permanent, None));
    }

    #[test]
    fn http_dates() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Tue, 24 Feb 2026 10:29:45 GMT"), Some(NOW));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NOW), Some(Duration::ZERO), "a past date: now");
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
            assert!(error.message.contains(code) && error.message.contains(description), "{}", error.message);
        }
    }

    #[test]
    fn missing_scope_is_a_config_error() {
        assert_eq!(failure(403, r#"{"error":"insufficient_scope"}"#).kind, ErrorKind::Config);
    }

    #[test]
    fn an_error_in_a_200_response_is_still_an_error() {
        assert_eq!(failure(200, r#"{"error":"BOT_ID_ERROR","error_description":"x"}"#).kind, ErrorKind::Permanent);
        assert_eq!(failure(200, "not json").kind, ErrorKind::Permanent);
    }

    #[test]
    fn urls_and_bodies() {
        assert_eq!(method_url("https://p.bitrix24.com/rest/", MESSAGE_ADD).unwrap(), "https://p.bitrix24.com/rest/imbot.message.add");
        assert_eq!(method_url("https://p.bitrix24.com/rest", BOT_REGISTER).unwrap(), "https://p.bitrix24.com/rest/imbot.register");
        assert!(method_url("p.bitrix24.com/rest/", MESSAGE_ADD).is_err());
        let mut params = Map::new();
        params.insert("BOT_ID".into(), "55".into());
        assert_eq!(request_body("tok", &params), serde_json::json!({"BOT_ID": "55", "auth": "tok"}));
    }
}
