//! # Switchboard provider plugin for Dify
//!
//! Answers messages with a Dify app through Dify's service API:
//! chatflow / chat apps (blocking `/chat-messages`, conversation kept in
//! state), workflow apps (blocking `/workflows/run`, outputs as
//! `name: value` lines) and agent apps (streaming `/chat-messages`).
//! See the crate README for settings.
//!
//! Host calls (config, state, HTTP, log) stay in this file; request
//! building, response parsing and error classification live in pure modules
//! with unit tests.

pub mod api;
pub mod stream;
pub mod workflow;

use api::{ChatAnswer, ChatRequest, Failure, Mode};
use serde_json::{Map, Value};
use std::time::Duration;
use switchboard_sdk::prelude::*;

/// The plugin type registered with the host.
pub struct Dify;

/// Default for `timeout_seconds`.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 60;

/// The plugin's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which API to call.
    pub mode: Mode,
    /// Service API base URL (`https://api.dify.ai/v1`).
    pub base_url: String,
    /// App API key (secret; never logged or put in messages).
    pub api_key: String,
    /// Prefix for Dify's `user` field.
    pub user_prefix: Option<String>,
    /// Time to wait for the first byte and between bytes.
    pub timeout: Duration,
    /// Text in an answer that requests a handoff to a human operator.
    pub handoff_marker: Option<String>,
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        Ok(Self {
            mode: Mode::parse(config::get("mode").as_deref())?,
            base_url: config::get("base_url").ok_or_else(|| {
                PluginError::config(format!(
                    "setting `base_url` is not configured (Dify cloud: `{}`; self-hosted: `https://your-host/v1`)",
                    api::DIFY_CLOUD_BASE_URL
                ))
            })?,
            api_key: config::require("api_key")?,
            user_prefix: config::get("user"),
            timeout: config::seconds("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)?,
            handoff_marker: config::get("handoff_marker"),
        })
    }
}

/// Strip the handoff marker from the answer and build the reply. An empty
/// answer without a handoff produces no message.
pub fn build_reply(text: &str, handoff_marker: Option<&str>) -> Vec<OutboundMessage> {
    let marker = handoff_marker.filter(|m| !m.is_empty());
    let (text, control) = match marker {
        Some(m) if text.contains(m) => (text.replace(m, "").trim().to_string(), Some(Control::Handoff(String::new()))),
        _ => (text.trim_end().to_string(), None),
    };
    if text.trim().is_empty() && control.is_none() {
        return Vec::new();
    }
    let mut reply = OutboundMessage::text(text);
    reply.control = control;
    vec![reply]
}

impl Provider for Dify {
    fn call_provider(message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        let settings = Settings::load().inspect_err(log_config_error)?;
        let inputs = api::inputs_from_variables(&message.variables);
        let user = api::dify_user(settings.user_prefix.as_deref(), &message.sender.id, &message.conversation.id);
        let text = match settings.mode {
            Mode::Chatflow => chat(&settings, &message, &inputs, &user, false),
            Mode::Agent => chat(&settings, &message, &inputs, &user, true),
            Mode::Workflow => run_workflow(&settings, &message, &inputs, &user),
        }
        .inspect_err(log_config_error)?;
        let replies = build_reply(&text, settings.handoff_marker.as_deref());
        if replies.is_empty() {
            log::warn(format!("Dify returned an empty answer for conversation {}", message.conversation.id));
        }
        Ok(replies)
    }

    fn on_event(conversation: ConversationRef, event: ConversationEvent) -> Result<(), PluginError> {
        if matches!(event, ConversationEvent::Reset) {
            state::delete(&api::state_key(&conversation.id))?;
        }
        Ok(())
    }
}

fn log_config_error(error: &PluginError) {
    if error.kind == ErrorKind::Config {
        log::error(&error.message);
    }
}

/// A chat exchange with the stored conversation, recovering once when Dify
/// no longer knows it.
fn chat(settings: &Settings, message: &InboundMessage, inputs: &Map<String, Value>, user: &str, streaming: bool) -> Result<String, PluginError> {
    let key = api::state_key(&message.conversation.id);
    let stored = state::get_string(&key)?.unwrap_or_default();
    let answer = match chat_once(settings, inputs, &message.text, &stored, user, streaming) {
        Ok(answer) => answer,
        Err(Failure::ConversationGone) if !stored.is_empty() => {
            log::info(format!("Dify conversation {stored} no longer exists; starting a new one for {}", message.conversation.id));
            state::delete(&key)?;
            chat_once(settings, inputs, &message.text, "", user, streaming).map_err(Failure::into_error)?
        }
        Err(failure) => return Err(failure.into_error()),
    };
    if !answer.conversation_id.is_empty() {
        // Saved on every answer, so the TTL counts from the last message.
        state::set_string(&key, &answer.conversation_id, state::DEFAULT_TTL)?;
    }
    Ok(answer.answer)
}

fn chat_once(settings: &Settings, inputs: &Map<String, Value>, query: &str, conversation_id: &str, user: &str, streaming: bool) -> Result<ChatAnswer, Failure> {
    let body = ChatRequest { inputs, query, response_mode: if streaming { "streaming" } else { "blocking" }, conversation_id, user };
    let mut request = http::Request::post(api::endpoint(&settings.base_url, "chat-messages")).bearer(&settings.api_key).json(&body).timeout(settings.timeout);
    if streaming {
        request = request.header("accept", "text/event-stream");
    }
    let response = request.send().map_err(PluginError::from)?;
    if !response.is_success() {
        return Err(api::classify_http(response.status, &response.body));
    }
    if streaming { stream::assemble(&response.text()) } else { api::parse_chat_response(&response.body).map_err(Failure::from) }
}

fn run_workflow(settings: &Settings, message: &InboundMessage, inputs: &Map<String, Value>, user: &str) -> Result<String, PluginError> {
    let body = api::workflow_request(inputs, &message.text, user);
    let response =
        http::Request::post(api::endpoint(&settings.base_url, "workflows/run")).bearer(&settings.api_key).json(&body).timeout(settings.timeout).send()?;
    if !response.is_success() {
        return Err(api::classify_http(response.status, &response.body).into_error());
    }
    workflow::parse_run_response(&response.body)
}

switchboard_sdk::export_provider!(Dify);
switchboard_sdk::manifest!(concat!(
    r#"{
    "name": "dify",
    "version": ""#,
    env!("CARGO_PKG_VERSION"),
    r#"",
    "kind": "provider",
    "contract": "0.1.0",
    "outbound_hosts": ["https://api.dify.ai"],
    "outbound_host_settings": ["base_url"],
    "settings": [
        {"name": "base_url", "required": true, "secret": false, "description": "the Dify API base URL, e.g. https://api.dify.ai/v1"},
        {"name": "api_key", "required": true, "secret": true, "description": "the Dify app's API key"},
        {"name": "mode", "required": false, "secret": false, "description": "chatflow, workflow or agent"}
    ]
}"#
));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handoff_marker_is_stripped_and_signalled() {
        let replies = build_reply("Connecting you to an operator. [[handoff]]", Some("[[handoff]]"));
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].text, "Connecting you to an operator.");
        assert!(matches!(&replies[0].control, Some(Control::Handoff(note)) if note.is_empty()));

        let only_marker = build_reply("[[handoff]]", Some("[[handoff]]"));
        assert_eq!(only_marker.len(), 1);
        assert_eq!(only_marker[0].text, "");
        assert!(only_marker[0].control.is_some());
    }

    #[test]
    fn no_marker_means_plain_text() {
        let replies = build_reply("Hello [[handoff]]", None);
        assert_eq!(replies[0].text, "Hello [[handoff]]");
        assert!(replies[0].control.is_none());
        let replies = build_reply("Hello", Some("[[handoff]]"));
        assert_eq!(replies[0].text, "Hello");
        assert!(replies[0].control.is_none());
    }

    #[test]
    fn empty_answer_gives_no_message() {
        assert!(build_reply("  \n", None).is_empty());
    }
}
