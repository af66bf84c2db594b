//! Bot.one's web-service API: endpoint URLs, Basic authorization, request
//! bodies, response parsing and error classification. Pure (no host calls).
//!
//! Endpoints used (paths relative to the instance, e.g. `https://manual.bot.one`):
//!
//! | call | auth | success |
//! |---|---|---|
//! | `POST /api/v2/dialog/{BotID}/create` `{"response":true,"variables":"<JSON string>"}` | Basic | `200 {"dialogId":371,"dialogUUID":"…"}` |
//! | `GET /api/v2/conversation/{uuid}` | Basic | `200 {"id":"…","status":"in-process",…}` |
//! | `POST /api/v2/conversation/{uuid}/stop` | Basic | `204` (status Operator) |
//! | `POST /api/v2/conversation/{uuid}/start` | Basic | `204` (status in process) |
//! | `POST /api/v2/conversation/{uuid}/send` `{"body":"…"}` | Basic | `204` |
//! | `POST /api/v2/conversation/{uuid}/command` `{"body":"goto 698"}` | Basic | `200 {"message":"Goto command complete"}` |
//! | `POST /api/vertex/v1/complete` `{"data":{…},"token":"…"}` | block token in the body | `204` |

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard_sdk::{PluginError, http};

/// The variable carrying the user's message text in a new dialog.
pub const MESSAGE_VARIABLE: &str = "message";

/// The variable carrying Switchboard's conversation id in a new dialog; a
/// callback may name the conversation with it (`"conversation"`).
pub const CONVERSATION_VARIABLE: &str = "switchboard_conversation";

/// The dialog variable holding the token its callbacks must carry.
pub const CALLBACK_TOKEN_VARIABLE: &str = "switchboard_callback_token";

/// `{base}{path}`. The base is the instance address (`https://manual.bot.one`);
/// a trailing slash or a trailing `/api` are tolerated.
pub fn endpoint(base_url: &str, path: &str) -> String {
    let base = base_url.trim().trim_end_matches('/');
    let base = base.strip_suffix("/api").unwrap_or(base);
    format!("{base}/{}", path.trim_start_matches('/'))
}

/// `api/v2/dialog/{bot}/create`.
pub fn create_path(bot_id: &str) -> String {
    format!("api/v2/dialog/{bot_id}/create")
}

/// `api/v2/conversation/{uuid}` plus an optional action (`stop`, `start`,
/// `send`, `command`).
pub fn conversation_path(uuid: &str, action: Option<&str>) -> String {
    match action {
        Some(action) => format!("api/v2/conversation/{uuid}/{action}"),
        None => format!("api/v2/conversation/{uuid}"),
    }
}

/// `api/vertex/v1/complete`.
pub const COMPLETE_PATH: &str = "api/vertex/v1/complete";

/// `Authorization: Basic base64(login:password)`.
pub fn basic_auth(login: &str, password: &str) -> String {
    switchboard_sdk::http::basic_auth(login, password)
}

/// The variables of a new dialog: the platform variables (a repeated key
/// keeps its last value), then `switchboard_conversation`,
/// `switchboard_callback_token` (when a `callback_token` is configured) and
/// `message` (the user's text), which win over platform variables of the
/// same name.
pub fn dialog_variables(platform: &[(String, String)], conversation_id: &str, text: &str, callback_token: Option<&str>) -> Map<String, Value> {
    let mut variables: Map<String, Value> = platform.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    variables.insert(CONVERSATION_VARIABLE.into(), Value::String(conversation_id.into()));
    if let Some(token) = callback_token {
        variables.insert(CALLBACK_TOKEN_VARIABLE.into(), Value::String(token.into()));
    }
    variables.insert(MESSAGE_VARIABLE.into(), Value::String(text.into()));
    variables
}

/// Body of `POST /api/v2/dialog/{BotID}/create`: `variables` is a JSON
/// *string* (Bot.one's format), `response: true` asks for the ids.
pub fn create_body(variables: &Map<String, Value>) -> Value {
    let encoded = serde_json::to_string(variables).expect("a map of strings always serializes");
    json!({ "response": true, "variables": encoded })
}

/// Body of `/send` (operator message) and `/command`.
pub fn body_text(text: &str) -> Value {
    json!({ "body": text })
}

/// Body of `/command` that moves the dialog to another bot.
pub fn goto_body(bot: &str) -> Value {
    body_text(&format!("goto {bot}"))
}

/// Body of `POST /api/vertex/v1/complete`.
pub fn complete_body(token: &str, data: Value) -> Value {
    json!({ "data": data, "token": token })
}

/// A created dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The dialog's UUID (used in every `/api/v2/conversation/{uuid}` call).
    pub uuid: String,
    /// Bot.one's numeric dialog id, when given.
    pub number: Option<u64>,
}

/// Parse the create response `{"dialogId":371,"dialogUUID":"…"}`. A
/// string `dialogId` without `dialogUUID` (the shape of the GET variant) is
/// taken as the UUID.
pub fn parse_created(body: &[u8]) -> Result<Created, PluginError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| PluginError::permanent(format!("Bot.one create-dialog response is not JSON ({e}): {}", http::snippet(&String::from_utf8_lossy(body)))))?;
    let number = match value.get("dialogId") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    let uuid = match (value.get("dialogUUID"), value.get("dialogId")) {
        (Some(Value::String(uuid)), _) if !uuid.trim().is_empty() => uuid.trim().to_string(),
        (_, Some(Value::String(id))) if !id.trim().is_empty() && id.trim().parse::<u64>().is_err() => id.trim().to_string(),
        _ => {
            return Err(PluginError::permanent(format!(
                "Bot.one created a dialog but returned no `dialogUUID` (was `response: true` ignored?): {}",
                http::snippet(&String::from_utf8_lossy(body))
            )));
        }
    };
    Ok(Created { uuid, number })
}

/// What `GET /api/v2/conversation/{uuid}` says about a dialog.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConversationInfo {
    /// `in-process`, `completed`, …
    #[serde(default)]
    pub status: String,
}

impl ConversationInfo {
    /// Whether the bot has finished this dialog, so a new message should
    /// start a new one. Only `completed` (the status the manual shows) counts.
    pub fn finished(&self) -> bool {
        self.status.trim().eq_ignore_ascii_case("completed")
    }
}

/// Parse a conversation's data; an unparseable body counts as "unknown
/// status" (not finished).
pub fn parse_conversation(body: &[u8]) -> ConversationInfo {
    serde_json::from_slice(body).unwrap_or_default()
}

/// Which kind of call failed, for classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `POST /api/v2/dialog/{BotID}/create` (a 404 means a wrong `bot_id`).
    Create,
    /// `/api/v2/conversation/{uuid}[/…]` (a 404 means the dialog is gone).
    Conversation,
}

/// A failed Bot.one call.
#[derive(Debug)]
pub enum Failure {
    /// The dialog no longer exists on Bot.one (404 on a conversation call):
    /// forget it.
    DialogGone,
    /// Anything else.
    Error(PluginError),
}

impl From<PluginError> for Failure {
    fn from(error: PluginError) -> Self {
        Self::Error(error)
    }
}

impl Failure {
    /// As a plugin error (a gone dialog is permanent: callers that can
    /// recover handle it before).
    pub fn into_error(self) -> PluginError {
        match self {
            Self::Error(error) => error,
            Self::DialogGone => PluginError::permanent("Bot.one: the dialog no longer exists (404)"),
        }
    }
}

/// Classify a non-2xx answer of a Basic-authorized (`/api/v2`) call.
pub fn classify(call: Call, what: &str, bot_id: &str, status: u16, body: &[u8]) -> Failure {
    let detail = detail(body);
    let described = format!("Bot.one {what}: HTTP {status}: {detail}");
    let error = match status {
        401 => PluginError::config(format!("Bot.one rejected the login/password (check settings `login` and `password`): {described}")),
        403 => PluginError::config(format!(
            "Bot.one rejected the login/password or refused access (check settings `login` and `password`, \
             and that the account may use bot {bot_id}; Bot.one also answers 403 for a blocked instance \
             or a deleted dialog): {described}"
        )),
        404 if call == Call::Create => {
            PluginError::config(format!("Bot.one does not know bot {bot_id} (check setting `bot_id`: the number in the bot's address in Bot.one): {described}"))
        }
        404 => return Failure::DialogGone,
        status if switchboard_sdk::http::is_transient_status(status) => PluginError::transient(described),
        _ => PluginError::permanent(described),
    };
    Failure::Error(error)
}

/// How `POST /api/vertex/v1/complete` failed.
#[derive(Debug)]
pub enum CompleteFailure {
    /// 403/404: the block token is no longer valid (the block finished, the
    /// dialog ended or was deleted): forget it.
    TokenRejected(String),
    /// Anything else (transient or permanent).
    Error(PluginError),
}

/// Classify a non-2xx answer of `/api/vertex/v1/complete`. The vertex API
/// has no Basic authorization: a 403 is about the block token, never the
/// login.
pub fn classify_complete(status: u16, body: &[u8]) -> CompleteFailure {
    let described = format!("Bot.one complete-block: HTTP {status}: {}", detail(body));
    match status {
        403 | 404 => CompleteFailure::TokenRejected(described),
        status if switchboard_sdk::http::is_transient_status(status) => CompleteFailure::Error(PluginError::transient(described)),
        _ => CompleteFailure::Error(PluginError::permanent(described)),
    }
}

fn detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() { "(empty body)".to_string() } else { http::snippet(text.trim()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::ErrorKind;

    fn error(failure: Failure) -> PluginError {
        match failure {
            Failure::Error(e) => e,
            Failure::DialogGone => panic!("expected an error, got DialogGone"),
        }
    }

    #[test]
    fn basic_auth_header() {
        // The same encoding curl and Postman use.
        assert_eq!(basic_auth("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(basic_auth("d.user@bot.one", "pässword"), "Basic ZC51c2VyQGJvdC5vbmU6cMOkc3N3b3Jk");
    }

    #[test]
    fn endpoints() {
        assert_eq!(endpoint("https://manual.bot.one", &create_path("1446")), "https://manual.bot.one/api/v2/dialog/1446/create");
        assert_eq!(endpoint("https://manual.bot.one/", COMPLETE_PATH), "https://manual.bot.one/api/vertex/v1/complete");
        assert_eq!(endpoint("https://manual.bot.one/api/", &conversation_path("u-1", Some("stop"))), "https://manual.bot.one/api/v2/conversation/u-1/stop");
        assert_eq!(endpoint("http://127.0.0.1:9", &conversation_path("u-1", None)), "http://127.0.0.1:9/api/v2/conversation/u-1");
    }

    #[test]
    fn create_body_carries_variables_as_a_json_string() {
        let platform = vec![
            ("DIALOG_ID".to_string(), "17".to_string()),
            ("BOT_ID".to_string(), "55".to_string()),
            ("DIALOG_ID".to_string(), "18".to_string()),
            ("message".to_string(), "platform value".to_string()),
        ];
        let variables = dialog_variables(&platform, "a1b2c3:55:17", "Hello \"bot\"", Some("t0k"));
        let body = create_body(&variables);
        assert_eq!(body["response"], Value::Bool(true));
        let encoded = body["variables"].as_str().expect("`variables` must be a JSON string, not an object");
        let decoded: Value = serde_json::from_str(encoded).unwrap();
        assert_eq!(
            decoded,
            json!({"DIALOG_ID": "18", "BOT_ID": "55", "switchboard_conversation": "a1b2c3:55:17", "switchboard_callback_token": "t0k", "message": "Hello \"bot\""})
        );
        assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    }

    #[test]
    fn other_bodies() {
        assert_eq!(goto_body("698"), json!({"body": "goto 698"}));
        assert_eq!(body_text("Hi, I am the operator."), json!({"body": "Hi, I am the operator."}));
        assert_eq!(complete_body("tok", json!({"text": "yes"})), json!({"data": {"text": "yes"}, "token": "tok"}));
    }

    #[test]
    fn parses_create_responses() {
        let created = parse_created(br#"{"dialogId":371,"dialogUUID":"4c9b89a3-0fbc-4b01-9d9b-63a7b1ca4ffa"}"#).unwrap();
        assert_eq!(created, Created { uuid: "4c9b89a3-0fbc-4b01-9d9b-63a7b1ca4ffa".into(), number: Some(371) });
        let get_shape = parse_created(br#"{"dialogId":"ef313216-e8d9-46a9-b95e-8060058bd43f"}"#).unwrap();
        assert_eq!(get_shape, Created { uuid: "ef313216-e8d9-46a9-b95e-8060058bd43f".into(), number: None });
        assert_eq!(parse_created(br#"{"dialogId":371}"#).unwrap_err().kind, ErrorKind::Permanent);
        assert_eq!(parse_created(b"").unwrap_err().kind, ErrorKind::Permanent);
    }

    #[test]
    fn conversation_status() {
        assert!(parse_conversation(br#"{"id":"u","status":"completed","data":"[]"}"#).finished());
        assert!(!parse_conversation(br#"{"id":"u","status":"in-process"}"#).finished());
        assert!(!parse_conversation(b"<html>").finished());
    }

    #[test]
    fn classification() {
        let e = error(classify(Call::Create, "create dialog", "1446", 401, br#"{"message":"Unauthorized"}"#));
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.contains("Bot.one rejected the login/password") && e.message.contains("Unauthorized"));
        assert_eq!(error(classify(Call::Conversation, "stop", "1446", 403, b"")).kind, ErrorKind::Config);
        let e = error(classify(Call::Create, "create dialog", "1446", 404, b"Not Found"));
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.contains("bot_id") && e.message.contains("1446"));
        assert!(matches!(classify(Call::Conversation, "stop", "1446", 404, b""), Failure::DialogGone));
        for status in [408, 429, 500, 502, 503] {
            assert_eq!(error(classify(Call::Create, "create dialog", "1", status, b"busy")).kind, ErrorKind::Transient);
        }
        let e = error(classify(Call::Conversation, "command", "1", 400, br#"{"message":"bad"}"#));
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(e.message.contains("HTTP 400") && e.message.contains("bad"));
        let long = "x".repeat(1000);
        assert!(error(classify(Call::Create, "create dialog", "1", 418, long.as_bytes())).message.len() < 500);
    }

    #[test]
    fn complete_classification() {
        assert!(matches!(classify_complete(403, b""), CompleteFailure::TokenRejected(_)));
        assert!(matches!(classify_complete(404, b""), CompleteFailure::TokenRejected(_)));
        assert!(matches!(classify_complete(503, b""), CompleteFailure::Error(e) if e.kind == ErrorKind::Transient));
        assert!(matches!(classify_complete(400, b"{}"), CompleteFailure::Error(e) if e.kind == ErrorKind::Permanent));
    }
}
