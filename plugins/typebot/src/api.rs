//! Typebot chat API: endpoint derivation, request bodies, responses and
//! error classification. Pure (no host calls).
//!
//! * `POST {base}/api/v1/typebots/{publicId}/startChat`
//! * `POST {base}/api/v1/sessions/{sessionId}/continueChat`

use serde_json::{Map, Value, json};
use switchboard_sdk::{InboundMessage, PluginError, http};

/// Path segment between the base URL and the public id.
const TYPEBOTS_PATH: &str = "/api/v1/typebots/";

/// Where a bot lives: `base` is `https://host[/prefix]` (no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `https://typebot.io` or a self-hosted viewer URL, with any path prefix.
    pub base: String,
    /// The bot's public id (the last part of its share URL).
    pub public_id: String,
}

impl Endpoints {
    /// From the full startChat URL
    /// (`https://typebot.io/api/v1/typebots/my-bot/startChat`).
    pub fn from_start_url(start_url: &str) -> Result<Self, PluginError> {
        let bad = |why: &str| {
            PluginError::config(format!("setting `start_url` = `{start_url}` {why}: expected `https://host/api/v1/typebots/{{publicId}}/startChat`"))
        };
        let url = start_url.trim();
        let url = url.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/');
        let after_scheme = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).ok_or_else(|| bad("is not an http(s) URL"))?;
        if after_scheme.is_empty() || after_scheme.starts_with('/') {
            return Err(bad("has no host"));
        }
        let Some(at) = url.find(TYPEBOTS_PATH) else {
            return Err(bad("does not contain `/api/v1/typebots/`"));
        };
        let base = &url[..at];
        let rest = &url[at + TYPEBOTS_PATH.len()..];
        let public_id = match rest.split('/').collect::<Vec<_>>().as_slice() {
            [id, "startChat"] if !id.is_empty() => id.to_string(),
            [id] if !id.is_empty() => id.to_string(),
            _ => return Err(bad("does not end with `/{publicId}/startChat`")),
        };
        if base.len() <= url.find("://").map_or(0, |i| i + 3) {
            return Err(bad("has no host"));
        }
        Ok(Self { base: base.to_string(), public_id })
    }

    /// From `base_url` (`https://typebot.io`, a trailing `/`, `/api` or
    /// `/api/v1` is tolerated) and `public_id`.
    pub fn from_parts(base_url: &str, public_id: &str) -> Result<Self, PluginError> {
        let base = base_url.trim().trim_end_matches('/');
        let base = base.strip_suffix("/api/v1").or_else(|| base.strip_suffix("/api")).unwrap_or(base);
        let host = base.strip_prefix("https://").or_else(|| base.strip_prefix("http://"));
        if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
            return Err(PluginError::config(format!("setting `base_url` = `{base_url}` is not an http(s) URL such as `https://typebot.io`")));
        }
        let public_id = public_id.trim().trim_matches('/');
        if public_id.is_empty() || public_id.contains(['/', '?', '#', ' ']) {
            return Err(PluginError::config(format!("setting `public_id` = `{public_id}` is not a Typebot public id (e.g. `my-bot-x1y2`)")));
        }
        Ok(Self { base: base.to_string(), public_id: public_id.to_string() })
    }

    /// `{base}/api/v1/typebots/{publicId}/startChat`.
    pub fn start_chat(&self) -> String {
        format!("{}{TYPEBOTS_PATH}{}/startChat", self.base, self.public_id)
    }

    /// `{base}/api/v1/sessions/{sessionId}/continueChat`.
    pub fn continue_chat(&self, session_id: &str) -> String {
        format!("{}/api/v1/sessions/{}/continueChat", self.base, session_id)
    }
}

/// The state key holding Typebot's `sessionId` for one conversation.
pub fn session_key(conversation_id: &str) -> String {
    format!("session:{conversation_id}")
}

/// The message's variables as `prefilledVariables` (strings; a repeated key
/// keeps its last value).
pub fn prefilled_variables(variables: &[(String, String)]) -> Map<String, Value> {
    variables.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
}

/// Body of `startChat`.
pub fn start_chat_body(message: &InboundMessage) -> Value {
    json!({
        "message": message.text,
        "isStreamEnabled": false,
        "textBubbleContentFormat": "richText",
        "prefilledVariables": prefilled_variables(&message.variables),
    })
}

/// Body of `continueChat`: the text, or a text message with
/// `attachedFileUrls` when the user attached files Typebot can download.
pub fn continue_chat_body(message: &InboundMessage) -> Value {
    let urls: Vec<&str> = message.attachments.iter().filter_map(|a| a.url.as_deref()).filter(|url| !url.trim().is_empty()).collect();
    if urls.is_empty() { json!({ "message": message.text }) } else { json!({ "message": { "type": "text", "text": message.text, "attachedFileUrls": urls } }) }
}

/// The `sessionId` of a startChat response.
pub fn session_id(response: &Value) -> Option<&str> {
    response.get("sessionId").and_then(Value::as_str).filter(|id| !id.trim().is_empty())
}

/// Parse a 2xx response body.
pub fn parse_response(endpoint: &str, body: &[u8]) -> Result<Value, PluginError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(PluginError::permanent(format!(
            "Typebot {endpoint} response is not the expected JSON object: {}",
            http::snippet(&String::from_utf8_lossy(body))
        ))),
    }
}

/// A failed Typebot call.
#[derive(Debug)]
pub enum Failure {
    /// `404` "Session expired. You need to start a new session." or
    /// "Session not found.": start a new session.
    SessionGone,
    /// Anything else.
    Error(PluginError),
}

impl From<PluginError> for Failure {
    fn from(error: PluginError) -> Self {
        Self::Error(error)
    }
}

impl Failure {
    /// The failure as a plugin error (callers that can recover from a gone
    /// session handle it before).
    pub fn into_error(self) -> PluginError {
        match self {
            Self::Error(error) => error,
            Self::SessionGone => PluginError::permanent("Typebot reported the session as gone right after starting it"),
        }
    }
}

/// Typebot's error fields: `message` and `code` of
/// `{"defined":false,"code":"NOT_FOUND","status":404,"message":"..."}` (and
/// of the older `{"message":"...","code":"...","issues":[...]}`).
fn error_fields(body: &[u8]) -> (String, String) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |key: &str| parsed.as_ref().and_then(|v| v.get(key)).and_then(Value::as_str).map(str::to_string).unwrap_or_default();
    let (code, message) = (field("code"), field("message"));
    if parsed.is_some() && (!code.is_empty() || !message.is_empty()) {
        return (code, message);
    }
    let text = String::from_utf8_lossy(body);
    (String::new(), if text.trim().is_empty() { "(empty body)".to_string() } else { http::snippet(&text) })
}

/// Classify a non-2xx response of `endpoint` (`startChat` / `continueChat`).
pub fn classify_http(endpoint: &str, status: u16, body: &[u8]) -> Failure {
    let (code, message) = error_fields(body);
    let lower = message.to_ascii_lowercase();
    if status == 404 && (lower.contains("session expired") || lower.contains("session not found")) {
        return Failure::SessionGone;
    }
    let described =
        if code.is_empty() { format!("Typebot {endpoint} HTTP {status}: {message}") } else { format!("Typebot {endpoint} HTTP {status} {code}: {message}") };
    let error = match status {
        401 | 403 => PluginError::config(format!("{described}. Typebot refused access: private bots need `api_key` (a Typebot API token); check it")),
        status if switchboard_sdk::http::is_transient_status(status) => PluginError::transient(described),
        404 if endpoint == "startChat" => PluginError::permanent(format!("{described}. Check `start_url` / `public_id` and that the bot is published")),
        _ => PluginError::permanent(described),
    };
    Failure::Error(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::{Attachment, ConversationRef, ErrorKind, Sender};

    fn error(failure: Failure) -> PluginError {
        match failure {
            Failure::Error(e) => e,
            Failure::SessionGone => panic!("expected an error, got SessionGone"),
        }
    }

    fn inbound(text: &str) -> InboundMessage {
        InboundMessage {
            id: "m:55:900".into(),
            conversation: ConversationRef { id: "m:55:17".into(), reply_context: String::new() },
            sender: Sender { id: "17".into(), display_name: None, is_bot: false },
            text: text.into(),
            attachments: Vec::new(),
            command: None,
            variables: vec![("DIALOG_ID".into(), "17".into()), ("BOT_ID".into(), "55".into()), ("BOT_ID".into(), "56".into())],
        }
    }

    #[test]
    fn start_url_is_split_into_base_and_public_id() {
        let e = Endpoints::from_start_url("https://typebot.io/api/v1/typebots/my-bot-x1y2/startChat").unwrap();
        assert_eq!(e, Endpoints { base: "https://typebot.io".into(), public_id: "my-bot-x1y2".into() });
        assert_eq!(e.start_chat(), "https://typebot.io/api/v1/typebots/my-bot-x1y2/startChat");
        assert_eq!(e.continue_chat("s1"), "https://typebot.io/api/v1/sessions/s1/continueChat");

        let e = Endpoints::from_start_url(" http://127.0.0.1:8080/viewer/api/v1/typebots/bot/startChat/?x=1 ").unwrap();
        assert_eq!(e.base, "http://127.0.0.1:8080/viewer");
        assert_eq!(e.continue_chat("abc"), "http://127.0.0.1:8080/viewer/api/v1/sessions/abc/continueChat");
        // Without the trailing `/startChat` the id is still clear.
        assert_eq!(Endpoints::from_start_url("https://bots.example.com/api/v1/typebots/b1").unwrap().public_id, "b1");
    }

    #[test]
    fn bad_start_urls_are_config_errors() {
        for url in [
            "typebot.io/api/v1/typebots/b/startChat",
            "https://typebot.io/my-bot",
            "https://typebot.io/api/v1/typebots//startChat",
            "https://typebot.io/api/v1/typebots/b/continueChat",
            "https:///api/v1/typebots/b/startChat",
            "ftp://typebot.io/api/v1/typebots/b/startChat",
        ] {
            let e = Endpoints::from_start_url(url).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Config, "{url}");
            assert!(e.message.contains("start_url"), "{}", e.message);
        }
    }

    #[test]
    fn base_url_and_public_id() {
        for base in ["https://typebot.io", "https://typebot.io/", "https://typebot.io/api/v1", "https://typebot.io/api/"] {
            let e = Endpoints::from_parts(base, "my-bot").unwrap();
            assert_eq!(e.start_chat(), "https://typebot.io/api/v1/typebots/my-bot/startChat", "{base}");
        }
        assert_eq!(Endpoints::from_parts("typebot.io", "b").unwrap_err().kind, ErrorKind::Config);
        assert_eq!(Endpoints::from_parts("https://typebot.io", "a/b").unwrap_err().kind, ErrorKind::Config);
        assert_eq!(Endpoints::from_parts("https://typebot.io", " ").unwrap_err().kind, ErrorKind::Config);
    }

    #[test]
    fn request_bodies() {
        let message = inbound("Hi");
        assert_eq!(
            start_chat_body(&message),
            json!({"message": "Hi", "isStreamEnabled": false, "textBubbleContentFormat": "richText",
                   "prefilledVariables": {"DIALOG_ID": "17", "BOT_ID": "56"}})
        );
        assert_eq!(continue_chat_body(&message), json!({"message": "Hi"}));

        let mut with_files = inbound("Here");
        with_files.attachments = vec![
            Attachment { id: "1".into(), name: "a.png".into(), kind: "image".into(), url: Some("https://x/a.png".into()), size: None },
            Attachment { id: "2".into(), name: "b.pdf".into(), kind: "file".into(), url: None, size: None },
        ];
        assert_eq!(continue_chat_body(&with_files), json!({"message": {"type": "text", "text": "Here", "attachedFileUrls": ["https://x/a.png"]}}));
        assert_eq!(session_key("m:55:17"), "session:m:55:17");
    }

    #[test]
    fn expired_or_unknown_session_is_recoverable() {
        let expired = br#"{"defined":false,"code":"NOT_FOUND","status":404,"message":"Session expired. You need to start a new session."}"#;
        assert!(matches!(classify_http("continueChat", 404, expired), Failure::SessionGone));
        let unknown = br#"{"message":"Session not found.","code":"NOT_FOUND"}"#;
        assert!(matches!(classify_http("continueChat", 404, unknown), Failure::SessionGone));
        let other = error(classify_http("startChat", 404, br#"{"code":"NOT_FOUND","message":"Typebot not found"}"#));
        assert_eq!(other.kind, ErrorKind::Permanent);
        assert!(other.message.contains("Typebot not found") && other.message.contains("start_url"), "{}", other.message);
    }

    #[test]
    fn auth_failures_are_config() {
        for status in [401, 403] {
            let e = error(classify_http("startChat", status, br#"{"code":"UNAUTHORIZED","message":"You are not authorized"}"#));
            assert_eq!(e.kind, ErrorKind::Config);
            assert!(e.message.contains("api_key") && e.message.contains("You are not authorized"), "{}", e.message);
        }
    }

    #[test]
    fn rate_limits_and_server_errors_are_transient() {
        for status in [408, 429, 500, 502, 503] {
            let e = error(classify_http("continueChat", status, b"<html>Bad Gateway</html>"));
            assert_eq!(e.kind, ErrorKind::Transient, "{status}");
            assert!(e.message.contains("Bad Gateway"));
        }
    }

    #[test]
    fn other_client_errors_are_permanent_with_typebot_message() {
        let body = br#"{"defined":false,"code":"BAD_REQUEST","status":400,"message":"Invalid message. Expected a text."}"#;
        let e = error(classify_http("continueChat", 400, body));
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert_eq!(e.message, "Typebot continueChat HTTP 400 BAD_REQUEST: Invalid message. Expected a text.");
        let e = error(classify_http("continueChat", 422, b""));
        assert_eq!(e.message, "Typebot continueChat HTTP 422: (empty body)");
        let long = "x".repeat(1000);
        let e = error(classify_http("continueChat", 418, long.as_bytes()));
        assert!(e.message.len() < 400 && e.message.ends_with('…'));
    }

    #[test]
    fn responses() {
        let v = parse_response("startChat", br#"{"sessionId":"s1","messages":[]}"#).unwrap();
        assert_eq!(session_id(&v), Some("s1"));
        assert_eq!(session_id(&json!({"sessionId": ""})), None);
        assert_eq!(parse_response("startChat", b"[]").unwrap_err().kind, ErrorKind::Permanent);
        assert_eq!(parse_response("startChat", b"<html>").unwrap_err().kind, ErrorKind::Permanent);
    }
}
