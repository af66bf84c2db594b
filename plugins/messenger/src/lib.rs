//! # Switchboard provider plugin for an external messenger AI service
//!
//! The service (a Bubble app) answers asynchronously: `call-provider` POSTs
//! the user's message to `{base_url}/api/1.1/wf/send_message_external` and
//! returns no messages; the service's "All messages" integration later POSTs
//! a webhook to `/hooks/{connector}/messenger?secret=...`, which
//! `handle-callback` turns into replies for the conversation the
//! `external_chat_id` belongs to. See the crate README for settings and the
//! setup in the service.
//!
//! Host calls (config, state, HTTP, log) stay in this file; the API and the
//! webhook logic live in pure modules with unit tests.

pub mod api;
pub mod webhook;

use switchboard_sdk::prelude::*;
use webhook::{Event, StoredChat};

/// The plugin type registered with the host.
pub struct Messenger;

/// Settings needed to send messages.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Full URL of `send_message_external`.
    pub send_url: String,
    /// Bearer token (secret; never logged or put in messages).
    pub token: String,
    /// The service's task id.
    pub task_id: String,
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        let base_url = config::get("base_url")
            .ok_or_else(|| PluginError::config("setting `base_url` is not configured (the service's app URL, e.g. `https://example.bubbleapps.io`)"))?;
        // Replies cannot be authenticated without it: refuse to start dialogs
        // whose answers would all be rejected.
        webhook_secret()?;
        Ok(Self { send_url: api::send_url(&base_url)?, token: config::require("token")?, task_id: config::require("task_id")? })
    }
}

fn webhook_secret() -> Result<String, PluginError> {
    config::get("webhook_secret").ok_or_else(|| {
        let url = config::get("webhook-url")
            .map(|base| format!("{base}/messenger?secret=<webhook_secret>"))
            .unwrap_or_else(|| "{public_url}/hooks/{connector}/messenger?secret=<webhook_secret>".into());
        PluginError::config(format!(
            "setting `webhook_secret` is not configured: choose a long random secret and use the webhook URL {url} in the service's integration"
        ))
    })
}

/// Parse `operator_notice` (default yes).
pub fn parse_operator_notice(value: Option<&str>) -> Result<bool, String> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => Ok(true),
        Some("true" | "yes" | "1" | "on") => Ok(true),
        Some("false" | "no" | "0" | "off") => Ok(false),
        Some(other) => Err(format!("setting `operator_notice` = `{other}` is not a boolean; using true")),
    }
}

/// What to send for a message: its text, or `/command params` for a bare
/// command; `None` when there is nothing to send.
pub fn outgoing_text(message: &InboundMessage) -> Option<String> {
    if !message.text.trim().is_empty() {
        return Some(message.text.clone());
    }
    let command = message.command.as_ref()?;
    let text = format!("/{} {}", command.name, command.params);
    Some(text.trim_end().to_string())
}

impl Provider for Messenger {
    fn call_provider(message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        let settings = Settings::load().inspect_err(log_config_error)?;
        let Some(text) = outgoing_text(&message) else {
            log::warn(format!("message in conversation {} has no text; nothing sent to the messenger service", message.conversation.id));
            return Ok(Vec::new());
        };
        let chat_id = api::chat_id(&message.conversation.id);
        let key = api::state_key(&chat_id);
        // Stored (and its TTL renewed) before sending: the reply webhook may
        // arrive before this call returns.
        let operator = state::get_json::<StoredChat>(&key)?.is_some_and(|s| s.operator);
        let stored = StoredChat { conversation_id: message.conversation.id.clone(), reply_context: message.conversation.reply_context.clone(), operator };
        state::set_json(&key, &stored, state::DEFAULT_TTL)?;

        let body = api::SendRequest { task_id: &settings.task_id, chat_id: &chat_id, message: &text };
        let response = http::Request::post(&settings.send_url).bearer(&settings.token).json(&body).send()?;
        api::check_response(response.status, &response.body).inspect_err(log_config_error)?;
        log::debug(format!("sent message of conversation {} as chat {chat_id}; the answer arrives by webhook", message.conversation.id));
        Ok(Vec::new())
    }

    fn handle_callback(request: HttpRequest) -> Result<CallbackResult, RequestError> {
        let secret = webhook_secret().map_err(|e| {
            log::error(&e.message);
            RequestError::Forbidden("this connector has no `webhook_secret` configured".into())
        })?;
        webhook::authenticate(&request, &secret)?;
        let fields = webhook::decode_body(&request)?;
        let event = Event::parse(&fields);
        let chat = event.chat_id.as_deref().unwrap_or("?");
        if event.operator == Some(true) {
            log::info(format!("the messenger service reports chat {chat} as forwarded to an operator"));
        }
        if !event.needs_routing() {
            log::debug(format!(
                "ignoring webhook for chat {chat} (message_type {:?}, message {}): nothing to deliver",
                event.message_type,
                event.message_id.as_deref().unwrap_or("?")
            ));
            return Ok(ok(event.event_id(), Vec::new()));
        }
        let Some(chat_id) = event.chat_id.clone() else {
            return Err(RequestError::BadRequest("`external_chat_id` is missing: cannot tell which conversation this reply belongs to".into()));
        };
        let key = api::state_key(&chat_id);
        let stored = match state::get_json::<StoredChat>(&key) {
            Ok(Some(stored)) => stored,
            Ok(None) => {
                return Err(RequestError::NotFound(format!(
                    "unknown external_chat_id `{chat_id}`: no conversation is waiting for it (closed, reset, or idle longer than the state TTL)"
                )));
            }
            Err(e) => {
                log::error(format!("cannot route the webhook for chat {chat_id}: {}", e.message));
                return Ok(unavailable());
            }
        };
        let notice = match parse_operator_notice(config::get("operator_notice").as_deref()) {
            Ok(on) => on,
            Err(message) => {
                log::warn(message);
                true
            }
        };
        let plan = webhook::plan(&event, &stored, notice);
        if plan.clear {
            if let Err(e) = state::delete(&key) {
                log::warn(format!("could not forget closed chat {chat_id} (it expires with the TTL): {}", e.message));
            }
            log::info(format!("chat {chat_id} closed by the messenger service; conversation {} starts afresh", stored.conversation_id));
        } else if let Some(update) = &plan.update
            && let Err(e) = state::set_json(&key, update, state::DEFAULT_TTL)
        {
            log::warn(format!("could not save the operator flag of chat {chat_id}: {}", e.message));
        }
        Ok(ok(event.event_id(), plan.replies))
    }

    fn on_event(conversation: ConversationRef, event: ConversationEvent) -> Result<(), PluginError> {
        if matches!(event, ConversationEvent::Reset) {
            state::delete(&api::state_key(&api::chat_id(&conversation.id)))?;
        }
        Ok(())
    }
}

/// `200 {"ok":true}` with the replies. `event_id` (the webhook's
/// `message_id`) lets the host deliver a webhook the service sends twice
/// only once.
fn ok(event_id: Option<String>, replies: Vec<AddressedReply>) -> CallbackResult {
    CallbackResult { event_id, replies, response: Some(json_response(200, br#"{"ok":true}"#)) }
}

/// `503`: the state store failed; the service may retry. No event id: the
/// retry must not be taken for a duplicate of this unprocessed attempt.
fn unavailable() -> CallbackResult {
    CallbackResult {
        event_id: None,
        replies: Vec::new(),
        response: Some(json_response(503, br#"{"ok":false,"error":"state store unavailable, retry later"}"#)),
    }
}

fn json_response(status: u16, body: &[u8]) -> HttpResponse {
    HttpResponse { status, headers: vec![("content-type".into(), "application/json".into())], body: body.to_vec() }
}

fn log_config_error(error: &PluginError) {
    if error.kind == ErrorKind::Config {
        log::error(&error.message);
    }
}

switchboard_sdk::export_provider!(Messenger);
switchboard_sdk::manifest!(concat!(
    r#"{
    "name": "messenger",
    "version": ""#,
    env!("CARGO_PKG_VERSION"),
    r#"",
    "kind": "provider",
    "contract": "0.1.0",
    "outbound_hosts": [],
    "outbound_host_settings": ["base_url"],
    "settings": [
        {"name": "base_url", "required": true, "secret": false, "description": "the service's app URL"},
        {"name": "token", "required": true, "secret": true, "description": "the service's API token"},
        {"name": "task_id", "required": true, "secret": false, "description": "the service's task id"},
        {"name": "webhook_secret", "required": true, "secret": true, "description": "the secret the service's webhooks carry"}
    ]
}"#
));

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str, command: Option<(&str, &str)>) -> InboundMessage {
        InboundMessage {
            id: "m:55:900".into(),
            conversation: ConversationRef { id: "m:55:17".into(), reply_context: "{}".into() },
            sender: Sender { id: "17".into(), display_name: None, is_bot: false },
            text: text.into(),
            attachments: Vec::new(),
            command: command.map(|(name, params)| Command { id: "1".into(), name: name.into(), params: params.into() }),
            variables: Vec::new(),
        }
    }

    #[test]
    fn operator_notice_setting() {
        assert_eq!(parse_operator_notice(None), Ok(true));
        assert_eq!(parse_operator_notice(Some("")), Ok(true));
        assert_eq!(parse_operator_notice(Some("TRUE")), Ok(true));
        assert_eq!(parse_operator_notice(Some("false")), Ok(false));
        assert_eq!(parse_operator_notice(Some("no")), Ok(false));
        assert!(parse_operator_notice(Some("sometimes")).is_err());
    }

    #[test]
    fn outgoing_text_prefers_text_then_command() {
        assert_eq!(outgoing_text(&message("Hello", None)).as_deref(), Some("Hello"));
        assert_eq!(outgoing_text(&message("", Some(("help", "topic")))).as_deref(), Some("/help topic"));
        assert_eq!(outgoing_text(&message(" ", Some(("start", "")))).as_deref(), Some("/start"));
        assert_eq!(outgoing_text(&message("  ", None)), None);
    }
}
