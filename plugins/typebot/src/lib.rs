//! # Switchboard provider plugin for Typebot
//!
//! Answers messages with a published [Typebot](https://typebot.io) bot
//! through Typebot's chat API: the first message of a conversation starts a
//! session (`startChat`, with the message's variables as
//! `prefilledVariables`), the next ones continue it (`continueChat`). The
//! session id is kept in state per conversation. See the crate README for
//! settings and behaviour.
//!
//! Host calls (config, state, HTTP, log) stay in this file; endpoint
//! derivation, request bodies and error classification ([`api`]), rich text
//! rendering ([`richtext`]) and reply building ([`reply`]) are pure modules
//! with unit tests.

pub mod api;
pub mod reply;
pub mod richtext;

use api::{Endpoints, Failure};
use reply::HandoffRules;
use serde_json::Value;
use std::time::Duration;
use switchboard_sdk::prelude::*;

/// The plugin type registered with the host.
pub struct Typebot;

/// Default for `timeout_seconds`.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 60;

/// The plugin's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the bot lives.
    pub endpoints: Endpoints,
    /// Typebot API token for private bots (secret; never logged).
    pub api_key: Option<String>,
    /// Time to wait for the first byte and between bytes.
    pub timeout: Duration,
    /// What counts as a request for a human operator.
    pub handoff: HandoffRules,
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        Ok(Self {
            endpoints: endpoints(config::get("start_url"), config::get("base_url"), config::get("public_id"))?,
            api_key: config::get("api_key"),
            timeout: config::seconds("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)?,
            handoff: HandoffRules { variable: config::get("handoff_variable"), marker: config::get("handoff_marker") },
        })
    }
}

/// The endpoints from `start_url`, or from `base_url` + `public_id`.
pub fn endpoints(start_url: Option<String>, base_url: Option<String>, public_id: Option<String>) -> Result<Endpoints, PluginError> {
    match (start_url, base_url, public_id) {
        (Some(start), None, None) => Endpoints::from_start_url(&start),
        (Some(_), _, _) => Err(PluginError::config("set either `start_url` or `base_url` + `public_id`, not both")),
        (None, Some(base), Some(id)) => Endpoints::from_parts(&base, &id),
        (None, Some(_), None) => Err(PluginError::config("setting `public_id` is not configured (needed with `base_url`)")),
        (None, None, Some(_)) => {
            Err(PluginError::config("setting `base_url` is not configured (needed with `public_id`; Typebot cloud: `https://typebot.io`)"))
        }
        (None, None, None) => Err(PluginError::config(
            "setting `start_url` is not configured (e.g. `https://typebot.io/api/v1/typebots/my-bot/startChat`; \
             or set `base_url` + `public_id`)",
        )),
    }
}

impl Provider for Typebot {
    fn call_provider(message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        let settings = Settings::load().inspect_err(log_config_error)?;
        let conversation = &message.conversation.id;
        let key = api::session_key(conversation);
        let stored = state::get_string(&key)?.filter(|id| !id.trim().is_empty());

        let (response, session_id) = match stored {
            Some(session_id) => match continue_chat(&settings, &session_id, &message) {
                Ok(response) => (response, session_id),
                Err(Failure::SessionGone) => {
                    log::info(format!("Typebot session {session_id} expired or is unknown; starting a new one for {conversation}"));
                    state::delete(&key)?;
                    start_chat(&settings, &message).inspect_err(log_config_error)?
                }
                Err(Failure::Error(error)) => {
                    log_config_error(&error);
                    return Err(error);
                }
            },
            None => start_chat(&settings, &message).inspect_err(log_config_error)?,
        };

        let reply = reply::build(&response, &settings.handoff);
        if reply.ended {
            // The flow is over: the next message starts a new session.
            state::delete(&key)?;
        } else {
            // Saved on every answer, so the TTL counts from the last message.
            state::set_string(&key, &session_id, state::DEFAULT_TTL)?;
        }
        if !reply.skipped.is_empty() {
            log::info(format!("Typebot reply for {conversation}: skipped {}", reply.skipped.join(", ")));
        }
        if let Some(reason) = &reply.handoff {
            log::info(format!("Typebot asked for a human operator in {conversation} (reason: {reason:?})"));
        }
        if reply.messages.is_empty() {
            log::warn(format!("Typebot returned nothing to show for conversation {conversation}"));
        }
        Ok(reply.messages)
    }

    fn on_event(conversation: ConversationRef, event: ConversationEvent) -> Result<(), PluginError> {
        if matches!(event, ConversationEvent::Reset) {
            state::delete(&api::session_key(&conversation.id))?;
        }
        Ok(())
    }
}

fn log_config_error(error: &PluginError) {
    if error.kind == ErrorKind::Config {
        log::error(&error.message);
    }
}

fn post(settings: &Settings, url: &str, body: &Value) -> Result<http::Response, PluginError> {
    let mut request = http::Request::post(url).json(body).timeout(settings.timeout);
    if let Some(key) = &settings.api_key {
        request = request.bearer(key);
    }
    Ok(request.send()?)
}

/// `startChat`: a new session. Returns the response and its `sessionId`.
fn start_chat(settings: &Settings, message: &InboundMessage) -> Result<(Value, String), PluginError> {
    let response = post(settings, &settings.endpoints.start_chat(), &api::start_chat_body(message))?;
    if !response.is_success() {
        return Err(api::classify_http("startChat", response.status, &response.body).into_error());
    }
    let body = api::parse_response("startChat", &response.body)?;
    let session_id = api::session_id(&body)
        .ok_or_else(|| PluginError::permanent(format!("Typebot startChat response has no `sessionId`: {}", http::snippet(&response.text()))))?
        .to_string();
    Ok((body, session_id))
}

/// `continueChat` on a stored session.
fn continue_chat(settings: &Settings, session_id: &str, message: &InboundMessage) -> Result<Value, Failure> {
    let url = settings.endpoints.continue_chat(session_id);
    let response = post(settings, &url, &api::continue_chat_body(message))?;
    if !response.is_success() {
        return Err(api::classify_http("continueChat", response.status, &response.body));
    }
    Ok(api::parse_response("continueChat", &response.body)?)
}

switchboard_sdk::export_provider!(Typebot);
switchboard_sdk::manifest!(concat!(
    r#"{
    "name": "typebot",
    "version": ""#,
    env!("CARGO_PKG_VERSION"),
    r#"",
    "kind": "provider",
    "contract": "0.1.0",
    "outbound_hosts": [],
    "outbound_host_settings": ["start_url", "base_url"],
    "settings": [
        {"name": "start_url", "required": false, "secret": false, "description": "the bot's startChat URL"},
        {"name": "base_url", "required": false, "secret": false, "description": "the Typebot host, with public_id"},
        {"name": "public_id", "required": false, "secret": false, "description": "the bot's public id"},
        {"name": "api_key", "required": false, "secret": true, "description": "a Typebot API token"}
    ]
}"#
));

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn endpoint_settings() {
        let e = endpoints(s("https://typebot.io/api/v1/typebots/my-bot/startChat"), None, None).unwrap();
        assert_eq!((e.base.as_str(), e.public_id.as_str()), ("https://typebot.io", "my-bot"));
        let e = endpoints(None, s("https://bots.example.com/"), s("my-bot")).unwrap();
        assert_eq!(e.start_chat(), "https://bots.example.com/api/v1/typebots/my-bot/startChat");
        for (start, base, id, needle) in [
            (None, None, None, "`start_url` is not configured"),
            (None, s("https://typebot.io"), None, "`public_id` is not configured"),
            (None, None, s("b"), "`base_url` is not configured"),
            (s("https://typebot.io/api/v1/typebots/b/startChat"), s("https://typebot.io"), None, "not both"),
        ] {
            let error = endpoints(start, base, id).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Config);
            assert!(error.message.contains(needle), "{}", error.message);
        }
    }
}
