//! # Switchboard provider plugin for Bot.one
//!
//! Connects a chat platform to a [Bot.one](https://bot.one) bot through
//! Bot.one's web-service API:
//!
//! * the first user message creates and starts a dialog
//!   (`POST /api/v2/dialog/{BotID}/create`) carrying the platform variables;
//! * the bot talks to the user from external custom blocks (or webhook
//!   blocks) that POST a JSON callback to `/hooks/{connector}/botone`
//!   ([`callback`] defines it); a block that waits for an answer leaves its
//!   token, and the user's next message completes the block
//!   (`POST /api/vertex/v1/complete`);
//! * operator handoff stops / resumes the dialog and copies operator
//!   messages into it (`/api/v2/conversation/{uuid}/stop|start|send`);
//! * `/goto {bot id}` moves the dialog to another bot (`…/command`).
//!
//! Host calls (config, state, HTTP, log) stay in this file; request
//! building, validation and decisions live in pure, unit-tested modules.

pub mod api;
pub mod callback;
pub mod dialog;

use api::{Call, CompleteFailure, Created, Failure};
use dialog::{Action, DialogRecord, EventCall, StoredConversation};
use serde_json::Value;
use std::time::Duration;
use switchboard_sdk::prelude::*;

/// The plugin type registered with the host.
pub struct BotOne;

/// Default for `timeout_seconds`.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 20;

/// Default for `goto_reply` (`{bot}` is replaced by the bot id).
pub const DEFAULT_GOTO_REPLY: &str = "Switched to bot {bot}.";

/// Default for `operator_reply`.
pub const DEFAULT_OPERATOR_REPLY: &str = "Connecting you to an operator…";

/// Reply to `/goto` without a bot id.
pub const GOTO_USAGE: &str = "Usage: /goto <bot id>, for example /goto 698";

/// The settings `call-provider` and `on-event` need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Instance address, e.g. `https://manual.bot.one`.
    pub base_url: String,
    /// Account e-mail (Basic authorization).
    pub login: String,
    /// Account password (secret; never logged).
    pub password: String,
    /// The bot new dialogs start with.
    pub bot_id: String,
    /// Slash commands that ask for a human operator.
    pub operator_commands: Vec<String>,
    /// Confirmation of `/goto`.
    pub goto_reply: String,
    /// Reply to an operator command.
    pub operator_reply: String,
    /// Reply when the bot is busy (no block waits for an answer).
    pub busy_message: Option<String>,
    /// HTTP timeout.
    pub timeout: Duration,
    /// `callback_token`: the key of every dialog's callback token.
    pub callback_secret: Option<String>,
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        let base_url = config::get("base_url")
            .ok_or_else(|| PluginError::config("setting `base_url` is not configured: use your Bot.one instance address, e.g. `https://manual.bot.one`"))?;
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(PluginError::config(format!("setting `base_url` = `{base_url}` is not an http(s) URL")));
        }
        Ok(Self {
            base_url,
            login: config::require("login")?,
            password: config::require("password")?,
            bot_id: parse_bot_id(config::get("bot_id").as_deref())?,
            operator_commands: dialog::parse_command_list(config::get("operator_command").as_deref()),
            goto_reply: config::get_or("goto_reply", DEFAULT_GOTO_REPLY),
            operator_reply: config::get_or("operator_reply", DEFAULT_OPERATOR_REPLY),
            busy_message: config::get("busy_message"),
            timeout: config::seconds("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)?,
            callback_secret: config::get("callback_token").filter(|secret| !secret.is_empty()),
        })
    }
}

/// Parse `bot_id` (required; the number in the bot's address in Bot.one).
pub fn parse_bot_id(value: Option<&str>) -> Result<String, PluginError> {
    match value.map(|v| v.trim().trim_matches('"')) {
        None | Some("") => Err(PluginError::config("setting `bot_id` is not configured: use the number in the bot's address in Bot.one (e.g. 1446)")),
        Some(v) => dialog::goto_target(v).ok_or_else(|| PluginError::config(format!("setting `bot_id` = `{v}` is not a positive integer"))),
    }
}

impl Provider for BotOne {
    fn call_provider(message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        let settings = Settings::load().inspect_err(log_config_error)?;
        answer_message(&settings, &message).inspect_err(log_config_error)
    }

    fn handle_callback(request: HttpRequest) -> Result<CallbackResult, RequestError> {
        let Some(secret) = config::get("callback_token") else {
            log::error("setting `callback_token` is not configured: every Bot.one callback is refused");
            return Err(RequestError::Forbidden("this connector has no callback_token configured".into()));
        };
        let callback = callback::parse(&request.method, &request.body)?;
        match accept_callback(&callback, &secret) {
            Ok(result) => result,
            Err(error) => {
                log::error(format!("Bot.one callback failed: {}", error.message));
                // No event id: Bot.one's retry must not count as a duplicate.
                Ok(CallbackResult { event_id: None, replies: Vec::new(), response: Some(unavailable(&error.message)) })
            }
        }
    }

    fn on_event(conversation: ConversationRef, event: ConversationEvent) -> Result<(), PluginError> {
        let id = conversation.id.as_str();
        let record = load_dialog(id)?;
        let (action, body, what) = match dialog::event_call(&event) {
            EventCall::Nothing => return Ok(()),
            EventCall::Forget => {
                forget(id, record.as_ref())?;
                log::info(format!("forgot the Bot.one dialog of {id} ({})", event_name(&event)));
                return Ok(());
            }
            EventCall::Post { action, body, what } => (action, body, what),
        };
        let Some(record) = record else {
            log::debug(format!("no Bot.one dialog for {id}: nothing to do for {}", event_name(&event)));
            return Ok(());
        };
        let settings = Settings::load().inspect_err(log_config_error)?;
        match (Client { settings: &settings }).conversation_action(&record.uuid, action, body.as_ref(), what) {
            Ok(_) => {
                log::info(format!("Bot.one dialog {}: {action} ({})", record.uuid, event_name(&event)));
                Ok(())
            }
            Err(Failure::DialogGone) => {
                log::info(format!("Bot.one no longer knows dialog {} of {id}; forgetting it", record.uuid));
                forget(id, Some(&record))
            }
            Err(Failure::Error(error)) => {
                log_config_error(&error);
                Err(error)
            }
        }
    }
}

/// Milliseconds since the Unix epoch (`wasi:clocks`).
fn unix_millis() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

fn event_name(event: &ConversationEvent) -> &'static str {
    match event {
        ConversationEvent::HandoffStarted(_) => "handoff started",
        ConversationEvent::HandoffEnded => "handoff ended",
        ConversationEvent::OperatorMessage(_) => "operator message",
        ConversationEvent::Reset => "reset",
    }
}

fn log_config_error(error: &PluginError) {
    if error.kind == ErrorKind::Config {
        log::error(&error.message);
    }
}

/// `503` with a JSON error body (a callback we could not process; Bot.one may retry).
fn unavailable(message: &str) -> HttpResponse {
    HttpResponse {
        status: 503,
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&serde_json::json!({"ok": false, "error": message})).unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------
// User messages

fn answer_message(settings: &Settings, message: &InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
    let id = message.conversation.id.as_str();
    // A new turn: callbacks from now on get new deduplication ids (see
    // `callback::event_id`), so the bot may repeat itself after an answer.
    state::set_string(&dialog::turn_key(id), &unix_millis().to_string(), state::DEFAULT_TTL)?;
    let mut record = load_dialog(id)?;
    if let Some(record) = record.as_mut() {
        // Keep the freshest reply-context (platform tokens expire) and renew the TTLs.
        record.conversation = StoredConversation::of(&message.conversation);
        save_dialog(record)?;
    }
    let pending = match record {
        Some(_) => state::get_string(&dialog::pending_key(id))?,
        None => None,
    };
    match dialog::plan(message.command.as_ref(), &settings.operator_commands, record.is_some(), pending) {
        Action::GotoUsage => Ok(vec![OutboundMessage::text(GOTO_USAGE)]),
        Action::Operator { command } => {
            let mut reply = OutboundMessage::text(settings.operator_reply.clone());
            reply.control = Some(Control::Handoff(format!("the user asked for an operator (/{command})")));
            Ok(vec![reply])
        }
        Action::Goto { bot } => goto(settings, message, record, &bot),
        Action::Start => {
            start(settings, message, &settings.bot_id)?;
            Ok(Vec::new())
        }
        Action::Answer { token } => {
            let record = record.expect("plan answers only with a dialog");
            complete_block(settings, message, record, &token)
        }
        Action::NoBlock => no_block(settings, message, record.expect("plan says NoBlock only with a dialog")),
    }
}

/// Create and start a dialog on `bot_id` with this message.
fn start(settings: &Settings, message: &InboundMessage, bot_id: &str) -> Result<DialogRecord, PluginError> {
    let id = message.conversation.id.as_str();
    let conversation = StoredConversation::of(&message.conversation);
    // Before the create call: Bot.one may run the first block (and call us
    // back) before it answers, and a new dialog has no waiting block yet.
    state::delete(&dialog::pending_key(id))?;
    state::set_json(&dialog::conversation_key(id), &conversation, state::DEFAULT_TTL)?;
    let callback_token = settings.callback_secret.as_deref().map(|secret| callback::dialog_token(secret, id));
    let variables = api::dialog_variables(&message.variables, id, &message.text, callback_token.as_deref());
    let Created { uuid, number } = Client { settings }.create(bot_id, &api::create_body(&variables))?;
    let record = DialogRecord { uuid, number, conversation };
    save_dialog(&record)?;
    log::info(format!("started Bot.one dialog {} (bot {bot_id}) for {id}", record.uuid));
    Ok(record)
}

/// Complete the waiting block with the user's message.
fn complete_block(settings: &Settings, message: &InboundMessage, record: DialogRecord, token: &str) -> Result<Vec<OutboundMessage>, PluginError> {
    let id = message.conversation.id.as_str();
    match (Client { settings }).complete(token, dialog::answer_data(message)) {
        Ok(()) => {
            clear_pending_if(id, token)?;
            log::debug(format!("completed the waiting Bot.one block of dialog {} with the user's answer", record.uuid));
            Ok(Vec::new())
        }
        Err(CompleteFailure::TokenRejected(detail)) => {
            log::info(format!("the waiting block of Bot.one dialog {} is gone ({detail}); forgetting its token", record.uuid));
            clear_pending_if(id, token)?;
            no_block(settings, message, record)
        }
        Err(CompleteFailure::Error(error)) => Err(error),
    }
}

/// A dialog exists but no block waits for an answer: if Bot.one says the
/// dialog is over (or gone), start a new one with this message; otherwise the
/// bot is busy and the message is not passed on (`busy_message`, if set, is
/// the reply).
fn no_block(settings: &Settings, message: &InboundMessage, record: DialogRecord) -> Result<Vec<OutboundMessage>, PluginError> {
    let id = message.conversation.id.as_str();
    match (Client { settings }).conversation_status(&record.uuid)? {
        Some(info) if !info.finished() => {
            log::info(format!("Bot.one dialog {} of {id} is `{}` and no block waits for an answer: the message is not passed on", record.uuid, info.status));
            Ok(settings.busy_message.iter().map(|text| OutboundMessage::text(text.clone())).collect())
        }
        finished_or_gone => {
            let why = if finished_or_gone.is_some() { "finished" } else { "gone" };
            log::info(format!("Bot.one dialog {} of {id} is {why}; starting a new one", record.uuid));
            forget(id, Some(&record))?;
            start(settings, message, &settings.bot_id)?;
            Ok(Vec::new())
        }
    }
}

/// `/goto {bot}`: move the dialog to another bot, or start one there.
fn goto(settings: &Settings, message: &InboundMessage, record: Option<DialogRecord>, bot: &str) -> Result<Vec<OutboundMessage>, PluginError> {
    let id = message.conversation.id.as_str();
    let confirmation = || Ok(vec![OutboundMessage::text(dialog::fill_bot(&settings.goto_reply, bot))]);
    if let Some(record) = record {
        let client = Client { settings };
        match client.conversation_action(&record.uuid, "command", Some(&api::goto_body(bot)), "switch bots") {
            Ok(answer) => {
                // The waiting block belonged to the previous bot.
                state::delete(&dialog::pending_key(id))?;
                let said = answer.get("message").and_then(Value::as_str).unwrap_or("").to_string();
                log::info(format!("Bot.one dialog {} moved to bot {bot} ({said})", record.uuid));
                return confirmation();
            }
            Err(Failure::DialogGone) => {
                log::info(format!("Bot.one no longer knows dialog {}; starting one on bot {bot}", record.uuid));
                forget(id, Some(&record))?;
            }
            Err(Failure::Error(error)) => return Err(error),
        }
    }
    start(settings, message, bot)?;
    confirmation()
}

// ---------------------------------------------------------------------------
// Callbacks

fn accept_callback(callback: &callback::Callback, secret: &str) -> Result<Result<CallbackResult, RequestError>, PluginError> {
    let by_dialog = match &callback.dialog {
        Some(dialog) => state::get_json::<StoredConversation>(&dialog::reverse_key(dialog))?,
        None => None,
    };
    let conversation_id = match (&callback.conversation, &callback.dialog) {
        (Some(named), Some(dialog)) => match &by_dialog {
            Some(found) if found.id != *named => {
                return Ok(Err(RequestError::BadRequest("fields `dialog` and `conversation` name different conversations".into())));
            }
            Some(_) => named.clone(),
            None => match load_dialog(named)? {
                // The conversation runs another dialog: this one is stale.
                Some(record) if !record.is_named(dialog) => return Ok(Err(unknown(&format!("dialog `{dialog}`")))),
                Some(_) => named.clone(),
                // No dialog stored yet: Bot.one ran this block before
                // answering our create call. The conversation decides.
                None => named.clone(),
            },
        },
        (Some(named), None) => named.clone(),
        (None, Some(dialog)) => match &by_dialog {
            Some(found) => found.id.clone(),
            None => return Ok(Err(unknown(&format!("dialog `{dialog}`")))),
        },
        (None, None) => unreachable!("callback::parse requires `dialog` or `conversation`"),
    };
    if let Err(refused) = callback::check_dialog_token(&callback.callback_token, secret, &conversation_id) {
        return Ok(Err(refused));
    }
    // The freshest conversation-ref (written before the create call and
    // refreshed by every user message).
    let conversation = match state::get_json::<StoredConversation>(&dialog::conversation_key(&conversation_id))? {
        Some(conversation) => conversation,
        None => match by_dialog {
            Some(found) => found,
            None => return Ok(Err(unknown(&format!("conversation `{conversation_id}`")))),
        },
    };
    if callback.wait_for_answer {
        let token = callback.token.as_deref().expect("callback::parse requires a token to wait for an answer");
        state::set_string(&dialog::pending_key(&conversation.id), token, state::DEFAULT_TTL)?;
    }
    if callback.close {
        let record = load_dialog(&conversation.id)?;
        forget(&conversation.id, record.as_ref())?;
        if let Some(dialog) = &callback.dialog {
            state::delete(&dialog::reverse_key(dialog))?;
        }
        log::info(format!("Bot.one closed the dialog of {}; the next message starts a new one", conversation.id));
    }
    let turn = state::get_string(&dialog::turn_key(&conversation.id))?;
    let event_id = callback::event_id(&conversation.id, turn.as_deref(), callback);
    let message = callback.message();
    let reply = AddressedReply { conversation: conversation.to_ref(), in_reply_to: None, messages: vec![message] };
    Ok(Ok(CallbackResult {
        event_id: Some(event_id),
        replies: vec![reply],
        response: Some(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: callback::accepted_body(&conversation.id, callback.wait_for_answer),
        }),
    }))
}

/// A callback for a dialog or conversation we do not know (yet: Bot.one may
/// run a block before it answered our create call, so 404 invites a retry).
/// Dialog UUIDs are random, so the answer tells a prober nothing.
fn unknown(what: &str) -> RequestError {
    RequestError::NotFound(format!("unknown {what}"))
}

// ---------------------------------------------------------------------------
// State

fn load_dialog(conversation_id: &str) -> Result<Option<DialogRecord>, PluginError> {
    state::get_json(&dialog::dialog_key(conversation_id))
}

/// Write every `conversation-of:` key, `conversation:` and `dialog:` (in
/// this order: whoever sees `dialog:` also finds the reverse keys).
fn save_dialog(record: &DialogRecord) -> Result<(), PluginError> {
    let id = record.conversation.id.as_str();
    for key in record.reverse_keys() {
        state::set_json(&key, &record.conversation, state::DEFAULT_TTL)?;
    }
    state::set_json(&dialog::conversation_key(id), &record.conversation, state::DEFAULT_TTL)?;
    state::set_json(&dialog::dialog_key(id), record, state::DEFAULT_TTL)
}

/// Delete everything kept for a conversation.
fn forget(conversation_id: &str, record: Option<&DialogRecord>) -> Result<(), PluginError> {
    if let Some(record) = record {
        for key in record.reverse_keys() {
            state::delete(&key)?;
        }
    }
    state::delete(&dialog::pending_key(conversation_id))?;
    state::delete(&dialog::conversation_key(conversation_id))?;
    state::delete(&dialog::dialog_key(conversation_id))
}

/// Delete the pending token unless a newer block replaced it meanwhile
/// (Bot.one may call back with the next block before `/complete` returns).
fn clear_pending_if(conversation_id: &str, token: &str) -> Result<(), PluginError> {
    let key = dialog::pending_key(conversation_id);
    if state::get_string(&key)?.as_deref() == Some(token) {
        state::delete(&key)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// HTTP

struct Client<'a> {
    settings: &'a Settings,
}

impl Client<'_> {
    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> http::Request {
        let url = api::endpoint(&self.settings.base_url, path);
        let request = http::Request::new(method, url)
            .header("authorization", api::basic_auth(&self.settings.login, &self.settings.password))
            .header("accept", "application/json")
            .timeout(self.settings.timeout);
        match body {
            Some(body) => request.json(body),
            None if method == "POST" => request.header("content-length", "0"),
            None => request,
        }
    }

    fn create(&self, bot_id: &str, body: &Value) -> Result<Created, PluginError> {
        let response = self.request("POST", &api::create_path(bot_id), Some(body)).send()?;
        if !response.is_success() {
            return Err(api::classify(Call::Create, "create dialog", bot_id, response.status, &response.body).into_error());
        }
        api::parse_created(&response.body)
    }

    /// `None` when Bot.one no longer knows the dialog (404, or 403 which it
    /// also answers for deleted and completed dialogs).
    fn conversation_status(&self, uuid: &str) -> Result<Option<api::ConversationInfo>, PluginError> {
        let response = self.request("GET", &api::conversation_path(uuid, None), None).send()?;
        match response.status {
            200..=299 => Ok(Some(api::parse_conversation(&response.body))),
            403 | 404 => Ok(None),
            status => Err(api::classify(Call::Conversation, "read dialog", &self.settings.bot_id, status, &response.body).into_error()),
        }
    }

    /// `POST /api/v2/conversation/{uuid}/{action}`; the JSON answer (`null` for `204`).
    fn conversation_action(&self, uuid: &str, action: &str, body: Option<&Value>, what: &str) -> Result<Value, Failure> {
        let response = self.request("POST", &api::conversation_path(uuid, Some(action)), body).send().map_err(PluginError::from)?;
        if !response.is_success() {
            return Err(api::classify(Call::Conversation, what, &self.settings.bot_id, response.status, &response.body));
        }
        Ok(serde_json::from_slice(&response.body).unwrap_or(Value::Null))
    }

    /// `POST /api/vertex/v1/complete` (authorized by the block token alone).
    fn complete(&self, token: &str, data: Value) -> Result<(), CompleteFailure> {
        let response = http::Request::post(api::endpoint(&self.settings.base_url, api::COMPLETE_PATH))
            .header("accept", "application/json")
            .json(&api::complete_body(token, data))
            .timeout(self.settings.timeout)
            .send()
            .map_err(|e| CompleteFailure::Error(e.into()))?;
        if response.is_success() { Ok(()) } else { Err(api::classify_complete(response.status, &response.body)) }
    }
}

switchboard_sdk::export_provider!(BotOne);
switchboard_sdk::manifest!(concat!(
    r#"{
    "name": "botone",
    "version": ""#,
    env!("CARGO_PKG_VERSION"),
    r#"",
    "kind": "provider",
    "contract": "0.1.0",
    "outbound_hosts": [],
    "outbound_host_settings": ["base_url"],
    "settings": [
        {"name": "base_url", "required": true, "secret": false, "description": "your Bot.one instance address"},
        {"name": "login", "required": true, "secret": false, "description": "the Bot.one account e-mail"},
        {"name": "password", "required": true, "secret": true, "description": "the Bot.one account password"},
        {"name": "bot_id", "required": true, "secret": false, "description": "the number in the bot's address in Bot.one"},
        {"name": "callback_token", "required": true, "secret": true, "description": "the key of each dialog's callback token"}
    ]
}"#
));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_id_setting() {
        assert_eq!(parse_bot_id(Some("1446")).unwrap(), "1446");
        assert_eq!(parse_bot_id(Some(" 1446 ")).unwrap(), "1446");
        assert_eq!(parse_bot_id(Some("\"1446\"")).unwrap(), "1446");
        for bad in [None, Some(""), Some("abc"), Some("0"), Some("14 46")] {
            assert_eq!(parse_bot_id(bad).unwrap_err().kind, ErrorKind::Config, "{bad:?}");
        }
    }

    #[test]
    fn unavailable_response_is_json_503() {
        let response = unavailable("state store unavailable: down");
        assert_eq!(response.status, 503);
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["ok"], Value::Bool(false));
    }
}
