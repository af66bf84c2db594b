//! Dify service API: settings values, request bodies, blocking responses and
//! error classification. Everything here is pure (no host calls).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_sdk::{PluginError, http};

/// Dify cloud's service API base URL (suggested when `base_url` is missing;
/// not a default, because the host derives the allowed hosts from settings).
pub const DIFY_CLOUD_BASE_URL: &str = "https://api.dify.ai/v1";

/// Appended to Dify's "must be less than N characters" input error.
pub const LENGTH_HINT: &str = "In Dify, text input variables are limited to 48 characters by default: \
raise the max length of variables such as access_token, user_access_token, bot_access_token, \
COMMAND_PARAMS, CHAT_ENTITY_DATA_* in the app's Start node";

/// Which Dify API the connector talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Chatflow (advanced-chat) and basic chat apps: blocking `/chat-messages`.
    Chatflow,
    /// Workflow apps: blocking `/workflows/run`.
    Workflow,
    /// Agent apps: streaming `/chat-messages` (agents reject blocking mode).
    Agent,
}

impl Mode {
    /// Parse the `mode` setting; `None` means the default (chatflow).
    pub fn parse(value: Option<&str>) -> Result<Self, PluginError> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("chatflow") | Some("chat") | Some("advanced-chat") => Ok(Self::Chatflow),
            Some("workflow") => Ok(Self::Workflow),
            Some("agent") | Some("agent-chat") => Ok(Self::Agent),
            Some(other) => Err(PluginError::config(format!("setting `mode` = `{other}` is not supported: use chatflow, chat, workflow or agent"))),
        }
    }
}

/// `{base}/{path}`, tolerating a trailing slash on the base.
pub fn endpoint(base_url: &str, path: &str) -> String {
    format!("{}/{}", base_url.trim().trim_end_matches('/'), path.trim_start_matches('/'))
}

/// The state key holding Dify's `conversation_id` for one conversation.
pub fn state_key(conversation_id: &str) -> String {
    format!("conversation:{conversation_id}")
}

/// Dify's `user` field: the optional prefix, then the sender id (or the
/// conversation id when the sender id is empty).
pub fn dify_user(prefix: Option<&str>, sender_id: &str, conversation_id: &str) -> String {
    let id = if sender_id.trim().is_empty() { conversation_id } else { sender_id };
    format!("{}{id}", prefix.unwrap_or(""))
}

/// The message's variables as Dify `inputs` (a JSON object of strings; a
/// repeated key keeps its last value).
pub fn inputs_from_variables(variables: &[(String, String)]) -> Map<String, Value> {
    variables.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
}

/// Body of `POST /chat-messages`.
#[derive(Debug, Serialize)]
pub struct ChatRequest<'a> {
    /// App input variables.
    pub inputs: &'a Map<String, Value>,
    /// The user's message.
    pub query: &'a str,
    /// `blocking` or `streaming`.
    pub response_mode: &'static str,
    /// Stored conversation, or `""` for a new one.
    pub conversation_id: &'a str,
    /// End-user identifier.
    pub user: &'a str,
}

/// Body of `POST /workflows/run`: the inputs plus `query` = the message text
/// unless the variables already define `query`.
pub fn workflow_request(inputs: &Map<String, Value>, text: &str, user: &str) -> Value {
    let mut inputs = inputs.clone();
    inputs.entry("query").or_insert_with(|| Value::String(text.to_string()));
    serde_json::json!({ "inputs": inputs, "response_mode": "blocking", "user": user })
}

/// What a chat exchange produced.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct ChatAnswer {
    /// The bot's answer text.
    #[serde(default)]
    pub answer: String,
    /// Dify's conversation id (empty when absent).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub conversation_id: String,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Parse a blocking `/chat-messages` response body.
pub fn parse_chat_response(body: &[u8]) -> Result<ChatAnswer, PluginError> {
    serde_json::from_slice(body)
        .map_err(|e| PluginError::permanent(format!("Dify chat response is not the expected JSON ({e}): {}", http::snippet(&String::from_utf8_lossy(body)))))
}

/// Dify's error envelope `{"code":"...","message":"...","status":N}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Envelope {
    /// Machine-readable code (`invalid_param`, `not_found`, ...).
    #[serde(default)]
    pub code: Option<String>,
    /// Human-readable message.
    #[serde(default)]
    pub message: Option<String>,
    /// HTTP status Dify meant.
    #[serde(default)]
    pub status: Option<u16>,
}

/// A failed Dify call.
#[derive(Debug)]
pub enum Failure {
    /// Dify no longer knows the conversation id we sent (404
    /// "Conversation Not Exists."): start a new conversation.
    ConversationGone,
    /// Anything else.
    Error(PluginError),
}

impl From<PluginError> for Failure {
    fn from(error: PluginError) -> Self {
        Self::Error(error)
    }
}

impl Failure {
    /// The failure as a plugin error (a gone conversation becomes permanent:
    /// callers that can recover handle it before).
    pub fn into_error(self) -> PluginError {
        match self {
            Self::Error(error) => error,
            Self::ConversationGone => PluginError::permanent("Dify: Conversation Not Exists. even for a new conversation"),
        }
    }
}

/// Classify a non-2xx HTTP response from Dify.
pub fn classify_http(status: u16, body: &[u8]) -> Failure {
    match serde_json::from_slice::<Envelope>(body) {
        Ok(env) if env.code.is_some() || env.message.is_some() => {
            classify(status, env.code.as_deref().unwrap_or(""), env.message.as_deref().unwrap_or(""), "HTTP")
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let detail = if text.trim().is_empty() { "(empty body)".to_string() } else { http::snippet(&text) };
            classify(status, "", &detail, "HTTP")
        }
    }
}

/// Classify an `error` event inside a 200 event stream.
pub fn classify_stream_error(env: &Envelope) -> Failure {
    // Dify always sends `status`; without one, do not retry (an agent may
    // already have run tools).
    let status = env.status.unwrap_or(400);
    classify(status, env.code.as_deref().unwrap_or(""), env.message.as_deref().unwrap_or(""), "stream error")
}

/// Shared classification of a Dify error (status, code, message).
pub fn classify(status: u16, code: &str, message: &str, origin: &str) -> Failure {
    let lower = message.to_ascii_lowercase();
    let described = if code.is_empty() { format!("Dify {origin} {status}: {message}") } else { format!("Dify {origin} {status} {code}: {message}") };
    if status == 404 && lower.contains("conversation not exists") {
        return Failure::ConversationGone;
    }
    let error = match status {
        401 => PluginError::config(format!("Dify rejected the API key (check setting `api_key`): {described}")),
        status if switchboard_sdk::http::is_transient_status(status) => PluginError::transient(described),
        400 if lower.contains("must be less than") && lower.contains("characters") => PluginError::config(format!("{described}. {LENGTH_HINT}")),
        400 if lower.contains("does not support blocking") || lower.contains("only supports streaming") => {
            PluginError::config(format!("{described}. This is a Dify Agent app: set `mode = \"agent\"`"))
        }
        400 if code == "not_chat_app" => PluginError::config(format!("{described}. This is not a chat app: set `mode = \"workflow\"` for workflow apps")),
        400 if code == "not_workflow_app" => PluginError::config(format!("{described}. This is not a workflow app: set `mode = \"chatflow\"` (or `agent`)")),
        400 if matches!(code, "app_unavailable" | "provider_not_initialize" | "provider_quota_exceeded" | "model_currently_not_support") => {
            PluginError::config(format!("{described}. Fix the app or its model provider in Dify"))
        }
        _ => PluginError::permanent(described),
    };
    Failure::Error(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::ErrorKind;

    fn error(failure: Failure) -> PluginError {
        match failure {
            Failure::Error(e) => e,
            Failure::ConversationGone => panic!("expected an error, got ConversationGone"),
        }
    }

    #[test]
    fn conversation_not_exists_is_recoverable() {
        let body = br#"{"status":404,"code":"not_found","message":"Conversation Not Exists."}"#;
        assert!(matches!(classify_http(404, body), Failure::ConversationGone));
        // Another 404 is a plain permanent error.
        let other = error(classify_http(404, br#"{"status":404,"code":"not_found","message":"App not found"}"#));
        assert_eq!(other.kind, ErrorKind::Permanent);
        assert!(other.message.contains("not_found") && other.message.contains("App not found"));
    }

    #[test]
    fn too_long_input_is_config_with_hint() {
        let body = br#"{"code":"invalid_param","message":"access_token in input form must be less than 48 characters","status":400}"#;
        let e = error(classify_http(400, body));
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.contains("access_token in input form must be less than 48 characters"));
        assert!(e.message.contains(LENGTH_HINT));
    }

    #[test]
    fn unauthorized_is_config() {
        let body = br#"{"code":"unauthorized","message":"Access token is invalid","status":401}"#;
        let e = error(classify_http(401, body));
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.contains("Dify rejected the API key"));
    }

    #[test]
    fn rate_limit_and_server_errors_are_transient() {
        let e = error(classify_http(429, br#"{"code":"too_many_requests","message":"Too many requests","status":429}"#));
        assert_eq!(e.kind, ErrorKind::Transient);
        let e = error(classify_http(500, br#"{"code":"internal_server_error","message":"Internal Server Error","status":500}"#));
        assert_eq!(e.kind, ErrorKind::Transient);
        let e = error(classify_http(502, b"<html><body>Bad Gateway</body></html>"));
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(e.message.contains("Bad Gateway"), "{}", e.message);
    }

    #[test]
    fn other_client_errors_are_permanent_with_code_and_message() {
        let e = error(classify_http(400, br#"{"code":"conversation_completed","message":"The conversation has ended.","status":400}"#));
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(e.message.contains("conversation_completed") && e.message.contains("The conversation has ended."));
        let e = error(classify_http(400, br#"{"code":"invalid_param","message":"Agent Chat App does not support blocking mode","status":400}"#));
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.contains("mode = \"agent\""));
    }

    #[test]
    fn non_json_body_is_snipped() {
        let long = "x".repeat(1000);
        let e = error(classify_http(418, long.as_bytes()));
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(e.message.len() < 400 && e.message.ends_with('…'));
    }

    #[test]
    fn builds_requests() {
        let vars = vec![("DIALOG_ID".to_string(), "chat7".to_string()), ("BOT_ID".to_string(), "55".to_string())];
        let inputs = inputs_from_variables(&vars);
        let body = serde_json::to_value(ChatRequest { inputs: &inputs, query: "Hi", response_mode: "blocking", conversation_id: "", user: "2" }).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"inputs":{"DIALOG_ID":"chat7","BOT_ID":"55"},"query":"Hi","response_mode":"blocking","conversation_id":"","user":"2"})
        );
        let wf = workflow_request(&inputs, "Hi", "2");
        assert_eq!(wf["inputs"]["query"], "Hi");
        assert_eq!(wf["response_mode"], "blocking");
        let with_query = inputs_from_variables(&[("query".to_string(), "mine".to_string())]);
        assert_eq!(workflow_request(&with_query, "Hi", "2")["inputs"]["query"], "mine");
    }

    #[test]
    fn settings_helpers() {
        assert_eq!(endpoint("https://api.dify.ai/v1/", "chat-messages"), "https://api.dify.ai/v1/chat-messages");
        assert_eq!(endpoint("https://api.dify.ai/v1", "/workflows/run"), "https://api.dify.ai/v1/workflows/run");
        assert_eq!(Mode::parse(None).unwrap(), Mode::Chatflow);
        assert_eq!(Mode::parse(Some("Chat")).unwrap(), Mode::Chatflow);
        assert_eq!(Mode::parse(Some("agent")).unwrap(), Mode::Agent);
        assert_eq!(Mode::parse(Some("workflow")).unwrap(), Mode::Workflow);
        assert_eq!(Mode::parse(Some("x")).unwrap_err().kind, ErrorKind::Config);
        assert_eq!(dify_user(None, "2", "m:55:chat7"), "2");
        assert_eq!(dify_user(Some("b24-"), "", "m:55:chat7"), "b24-m:55:chat7");
        assert_eq!(state_key("m:55:chat7"), "conversation:m:55:chat7");
    }

    #[test]
    fn parses_blocking_answer() {
        let body = br#"{"event":"message","conversation_id":"c-1","mode":"advanced-chat","answer":"Hello","metadata":{}}"#;
        assert_eq!(parse_chat_response(body).unwrap(), ChatAnswer { answer: "Hello".into(), conversation_id: "c-1".into() });
        assert_eq!(parse_chat_response(b"nope").unwrap_err().kind, ErrorKind::Permanent);
    }
}
