//! # Switchboard handoff plugin for LiveChat (text.com)
//!
//! Hands conversations to human operators in LiveChat the way Botpress's
//! livechat-hitl integration does: a customer identity per handoff, a chat
//! started by the integration's agent in the configured group with a summary
//! of the conversation, the customer added, the chat transferred to the
//! group; user messages go in as the customer (`send_event`), operator
//! messages and the end of the chat come back as webhooks. See the README.
//!
//! Host calls (config, state, HTTP, log) stay in this file; URLs, bodies,
//! responses, errors and webhooks live in pure modules with unit tests.

pub mod api;
pub mod webhook;

use api::{ApiError, ChatLink, CustomerToken, StartedChat};
use serde_json::Value;
use std::time::Duration;
use switchboard_sdk::prelude::*;
use webhook::Event;

/// The plugin type registered with the host.
pub struct LiveChat;

/// Time to wait for LiveChat's first byte (the host caps it too). A handoff
/// makes up to five calls, which must fit in the host's call deadline
/// (`call_timeout_ms`, 30 s by default).
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// The settings API calls need (no `Debug`: it holds the agent token).
struct Settings {
    client_id: String,
    organization_id: String,
    /// The Basic credentials (secret).
    agent_credentials: String,
    group_id: u64,
    api_url: String,
    accounts_url: String,
    redirect_uri: Option<String>,
    /// Settings that fell back to a default URL (the host does not allow
    /// those hosts unless they appear in the settings).
    defaulted: Vec<&'static str>,
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        let mut defaulted = Vec::new();
        let mut url = |key: &'static str, default: &str| {
            config::get(key).unwrap_or_else(|| {
                defaulted.push(key);
                default.to_string()
            })
        };
        let api_url = url("api_url", api::DEFAULT_API_URL);
        let accounts_url = url("accounts_url", api::DEFAULT_ACCOUNTS_URL);
        // Like Botpress, which passes its webhook URL: the app's Redirect URIs must list it.
        let redirect_uri = config::get("redirect_uri").or_else(|| config::get("webhook-url").map(|base| format!("{}/livechat", base.trim_end_matches('/'))));
        Ok(Self {
            client_id: config::require("client_id")?,
            organization_id: config::require("organization_id")?,
            agent_credentials: api::basic_credentials(&config::require("agent_token")?),
            group_id: api::parse_group_id(&config::require("group_id")?)?,
            api_url,
            accounts_url,
            redirect_uri,
            defaulted,
        })
    }

    fn load_logged() -> Result<Self, PluginError> {
        Self::load().inspect_err(log_config_error)
    }
}

fn log_config_error(error: &PluginError) {
    if error.kind == ErrorKind::Config {
        log::error(&error.message);
    }
}

/// How a request authenticates.
enum Auth<'a> {
    /// The accounts service (no credentials).
    None,
    /// `Basic {agent token}`.
    Agent(&'a Settings),
    /// `Bearer {customer token}`.
    Customer(&'a str),
}

/// A failed LiveChat call: LiveChat answered with an error, or the request
/// did not get through.
enum CallError {
    Api(ApiError),
    Other(PluginError),
}

impl CallError {
    fn into_error(self, call: &str, auth_hint: &str) -> PluginError {
        match self {
            CallError::Api(error) => error.into_plugin_error(call, auth_hint),
            CallError::Other(error) => error,
        }
    }
}

/// `POST url` with a JSON body; a non-2xx answer becomes [`CallError::Api`].
fn post(settings: &Settings, url: &str, auth: Auth<'_>, body: &Value) -> Result<Vec<u8>, CallError> {
    let mut request = http::Request::post(url).json(body).timeout(HTTP_TIMEOUT);
    match auth {
        Auth::None => {}
        Auth::Agent(s) => request = request.header("authorization", format!("Basic {}", s.agent_credentials)),
        Auth::Customer(token) => request = request.bearer(token),
    }
    let response = request.send().map_err(|error| {
        let mut plugin_error = PluginError::from(error.clone());
        if matches!(error, http::HttpError::Denied(_)) && !settings.defaulted.is_empty() {
            plugin_error.message.push_str(&format!(
                ". The host only allows hosts named in the plugin's settings: set {} explicitly in [connector.handoff] \
                 (api_url = \"{}\", accounts_url = \"{}\")",
                settings.defaulted.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(" and "),
                api::DEFAULT_API_URL,
                api::DEFAULT_ACCOUNTS_URL
            ));
        }
        CallError::Other(plugin_error)
    })?;
    if response.is_success() { Ok(response.body) } else { Err(CallError::Api(ApiError::parse(response.status, &response.body))) }
}

/// A new customer identity (one per handoff).
fn customer_token(settings: &Settings) -> Result<CustomerToken, PluginError> {
    let body = api::customer_token_request(&settings.client_id, &settings.organization_id, settings.redirect_uri.as_deref());
    let response = post(settings, &api::customer_token_url(&settings.accounts_url), Auth::None, &body)
        .map_err(|e| e.into_error("customer token", api::CUSTOMER_AUTH_HINT))?;
    let token: CustomerToken = api::parse_response("customer token", &response)?;
    if token.access_token.is_empty() || token.entity_id.is_empty() {
        return Err(PluginError::permanent("LiveChat customer token: the response has no access_token or entity_id"));
    }
    Ok(token)
}

/// `agent/action/{action}` with the agent token.
fn agent_action(settings: &Settings, action: &str, body: &Value) -> Result<Vec<u8>, CallError> {
    post(settings, &api::agent_action_url(&settings.api_url, action), Auth::Agent(settings), body)
}

fn agent_call(settings: &Settings, action: &str, body: &Value) -> Result<Vec<u8>, PluginError> {
    agent_action(settings, action, body).map_err(|e| e.into_error(action, api::AGENT_AUTH_HINT))
}

/// Close a chat; a chat that is already closed or unknown counts as closed.
fn deactivate(settings: &Settings, chat_id: &str) -> Result<(), PluginError> {
    match agent_action(settings, "deactivate_chat", &api::deactivate_request(chat_id)) {
        Ok(_) => Ok(()),
        Err(CallError::Api(error)) if error.chat_gone() => {
            log::info(format!("LiveChat chat {chat_id} was already closed ({} {})", error.status, error.kind));
            Ok(())
        }
        Err(error) => Err(error.into_error("deactivate_chat", api::AGENT_AUTH_HINT)),
    }
}

/// Open the operator chat; on failure after the chat exists, close it again.
fn open_chat(settings: &Settings, summary: &str, customer: &CustomerToken) -> Result<StartedChat, PluginError> {
    let started = agent_call(settings, "start_chat", &api::start_chat_request(settings.group_id, summary))?;
    let chat: StartedChat = api::parse_response("start_chat", &started)?;
    let rest = agent_call(settings, "add_user_to_chat", &api::add_customer_request(&chat.chat_id, &customer.entity_id))
        .and_then(|_| agent_call(settings, "transfer_chat", &api::transfer_request(&chat.chat_id, settings.group_id)));
    if let Err(error) = rest {
        if let Err(cleanup) = deactivate(settings, &chat.chat_id) {
            log::warn(format!("could not close the half-opened LiveChat chat {}: {}", chat.chat_id, cleanup.message));
        }
        return Err(error);
    }
    Ok(chat)
}

fn load_link(chat_id: &str) -> Result<Option<ChatLink>, PluginError> {
    state::get_json(&api::chat_key(chat_id))
}

fn save_link(chat_id: &str, link: &ChatLink) -> Result<(), PluginError> {
    state::set_json(&api::chat_key(chat_id), link, state::DEFAULT_TTL)?;
    state::set_string(&api::conversation_key(&link.conversation_id), chat_id, state::DEFAULT_TTL)
}

fn forget(chat_id: &str, conversation_id: &str) -> Result<(), PluginError> {
    state::delete(&api::chat_key(chat_id))?;
    state::delete(&api::conversation_key(conversation_id))
}

/// The operator chat of a conversation, if there is one.
fn chat_of(conversation_id: &str) -> Result<Option<(String, ChatLink)>, PluginError> {
    let Some(chat_id) = state::get_string(&api::conversation_key(conversation_id))? else { return Ok(None) };
    Ok(load_link(&chat_id)?.map(|link| (chat_id, link)))
}

/// Why a message could not be relayed.
enum RelayError {
    /// The chat is closed or unknown to LiveChat.
    ChatGone(PluginError),
    Other(PluginError),
}

impl From<PluginError> for RelayError {
    fn from(error: PluginError) -> Self {
        RelayError::Other(error)
    }
}

/// `send_event` as the customer; an expired customer token is replaced once.
fn send_as_customer(settings: &Settings, chat_id: &str, link: &mut ChatLink, text: &str) -> Result<(), RelayError> {
    let url = api::customer_action_url(&settings.api_url, "send_event", &settings.organization_id);
    let body = api::send_event_request(chat_id, text);
    let gone = |error: ApiError| {
        RelayError::ChatGone(PluginError::permanent(format!(
            "LiveChat chat {chat_id} is no longer active ({} {}: {}): the operator closed it",
            error.status, error.kind, error.message
        )))
    };
    match post(settings, &url, Auth::Customer(&link.customer_token), &body) {
        Ok(_) => return Ok(()),
        Err(CallError::Api(error)) if error.unauthorized() => {
            log::info(format!("the LiveChat customer token of chat {chat_id} was refused; getting a new one"));
        }
        Err(CallError::Api(error)) if error.chat_gone() => return Err(gone(error)),
        Err(error) => return Err(error.into_error("send_event", api::CUSTOMER_AUTH_HINT).into()),
    }
    let token = customer_token(settings)?;
    if token.entity_id != link.customer_id {
        // A cookie grant without the cookie is a new customer: put it in the chat.
        match agent_action(settings, "add_user_to_chat", &api::add_customer_request(chat_id, &token.entity_id)) {
            Ok(_) => {}
            Err(CallError::Api(error)) if error.chat_gone() => return Err(gone(error)),
            Err(error) => return Err(error.into_error("add_user_to_chat", api::AGENT_AUTH_HINT).into()),
        }
    }
    link.customer_token = token.access_token;
    link.customer_id = token.entity_id;
    match post(settings, &url, Auth::Customer(&link.customer_token), &body) {
        Ok(_) => Ok(()),
        Err(CallError::Api(error)) if error.chat_gone() => Err(gone(error)),
        Err(error) => Err(error.into_error("send_event", api::CUSTOMER_AUTH_HINT).into()),
    }
}

impl Handoff for LiveChat {
    fn start_handoff(conversation: ConversationRef, customer: Sender, reason: String, transcript: Vec<TranscriptEntry>) -> Result<(), PluginError> {
        let settings = Settings::load_logged()?;
        if let Some((old_chat, _)) = chat_of(&conversation.id)? {
            log::warn(format!("conversation {} still had LiveChat chat {old_chat}; closing it", conversation.id));
            state::delete(&api::chat_key(&old_chat))?;
            if let Err(error) = deactivate(&settings, &old_chat) {
                log::warn(format!("could not close the old LiveChat chat {old_chat}: {}", error.message));
            }
        }
        let summary = api::summary(&reason, &customer, &transcript);
        let token = customer_token(&settings).inspect_err(log_config_error)?;
        let chat = open_chat(&settings, &summary, &token).inspect_err(log_config_error)?;
        let link = ChatLink {
            conversation_id: conversation.id.clone(),
            reply_context: conversation.reply_context,
            customer_token: token.access_token,
            customer_id: token.entity_id,
            own_event_ids: chat.event_ids,
            routing_transfer_pending: true,
        };
        save_link(&chat.chat_id, &link)?;
        log::info(format!("LiveChat chat {} started in group {} for conversation {}", chat.chat_id, settings.group_id, conversation.id));
        Ok(())
    }

    fn relay_message(message: InboundMessage) -> Result<(), PluginError> {
        let text = api::relay_text(&message);
        if text.trim().is_empty() {
            return Ok(());
        }
        let settings = Settings::load_logged()?;
        let Some((chat_id, mut link)) = chat_of(&message.conversation.id)? else {
            return Err(PluginError::permanent(format!(
                "no LiveChat chat is open for conversation {} (it was closed or its state expired)",
                message.conversation.id
            )));
        };
        let result = match send_as_customer(&settings, &chat_id, &mut link, &text) {
            Ok(()) => Ok(()),
            Err(RelayError::ChatGone(error)) => {
                log::warn(&error.message);
                forget(&chat_id, &link.conversation_id)?;
                return Err(error);
            }
            Err(RelayError::Other(error)) => Err(error).inspect_err(log_config_error),
        };
        // Renew the mapping's lifetime and the channel's reply context (tokens in it expire).
        link.reply_context = message.conversation.reply_context;
        save_link(&chat_id, &link)?;
        result
    }

    fn handle_callback(request: HttpRequest) -> Result<CallbackResult, RequestError> {
        let webhook = webhook::parse(&request.body)?;
        let Some(secret) = config::get("webhook_secret") else {
            log::error("setting `webhook_secret` is not configured: every LiveChat webhook is refused");
            return Err(RequestError::Forbidden("setting `webhook_secret` is not configured".into()));
        };
        webhook::verify(&webhook, &secret)?;
        let event = webhook::interpret(&webhook)?;
        let Some(chat_id) = event.chat_id().map(str::to_string) else {
            log::debug(format!("LiveChat webhook `{}` ignored", webhook.action));
            return Ok(ok());
        };
        let link = match load_link(&chat_id) {
            Ok(Some(link)) => link,
            Ok(None) => {
                log::info(format!("LiveChat webhook `{}` for chat {chat_id}, which no conversation uses; ignored", webhook.action));
                return Ok(ok());
            }
            Err(error) => return Ok(retry_later(&error)),
        };
        match on_event(event, &chat_id, link) {
            // Only a processed webhook carries its id: the host must not take
            // LiveChat's retry of a `503` for a duplicate.
            Ok(result) => Ok(CallbackResult { event_id: webhook.event_id(), ..result }),
            Err(error) => Ok(retry_later(&error)),
        }
    }

    fn end_handoff(conversation: ConversationRef) -> Result<(), PluginError> {
        let Some((chat_id, link)) = chat_of(&conversation.id)? else {
            log::info(format!("no LiveChat chat to close for conversation {}", conversation.id));
            return Ok(());
        };
        // Forget first: the chat_deactivated webhook that follows is then ignored
        // instead of announcing the end a second time.
        forget(&chat_id, &link.conversation_id)?;
        let settings = Settings::load_logged()?;
        deactivate(&settings, &chat_id)?;
        log::info(format!("LiveChat chat {chat_id} closed for conversation {}", conversation.id));
        Ok(())
    }
}

/// Act on a webhook about a known chat.
fn on_event(event: Event, chat_id: &str, mut link: ChatLink) -> Result<CallbackResult, PluginError> {
    match event {
        Event::Message { event_id, author_id, text, .. } => {
            if author_id == link.customer_id || (!event_id.is_empty() && link.own_event_ids.contains(&event_id)) {
                log::debug(format!("LiveChat event {event_id} in chat {chat_id} is the plugin's own; ignored"));
                return Ok(ok());
            }
            if let Err(error) = save_link(chat_id, &link) {
                log::warn(format!("could not renew the state of LiveChat chat {chat_id}: {}", error.message));
            }
            Ok(reply(&link, OutboundMessage::text(text)))
        }
        Event::Deactivated { .. } => {
            forget(chat_id, &link.conversation_id)?;
            log::info(format!("LiveChat chat {chat_id} was closed; conversation {} returns to the bot", link.conversation_id));
            let mut message = OutboundMessage::text(config::get_or("ended_notice", api::DEFAULT_ENDED_NOTICE));
            message.control = Some(Control::HandoffEnded);
            Ok(reply(&link, message))
        }
        Event::Transferred { group_ids, agent_ids, reason, .. } => {
            log::info(format!(
                "LiveChat chat {chat_id} transferred to groups {group_ids:?}, agents {agent_ids:?} ({})",
                reason.as_deref().unwrap_or("no reason given")
            ));
            let own_group = config::get("group_id").and_then(|g| api::parse_group_id(&g).ok());
            if link.routing_transfer_pending && own_group.is_some_and(|g| group_ids.contains(&g)) {
                // The plugin's own transfer at the start of the handoff.
                link.routing_transfer_pending = false;
                if let Err(error) = save_link(chat_id, &link) {
                    log::warn(format!("could not update the state of LiveChat chat {chat_id}: {}", error.message));
                }
                return Ok(ok());
            }
            match config::get("transfer_notice") {
                Some(notice) => Ok(reply(&link, OutboundMessage::text(notice))),
                None => Ok(ok()),
            }
        }
        Event::Ignored { why, .. } => {
            log::debug(format!("LiveChat webhook for chat {chat_id} ignored: {why}"));
            Ok(ok())
        }
    }
}

fn reply(link: &ChatLink, message: OutboundMessage) -> CallbackResult {
    let conversation = ConversationRef { id: link.conversation_id.clone(), reply_context: link.reply_context.clone() };
    CallbackResult { event_id: None, replies: vec![AddressedReply { conversation, in_reply_to: None, messages: vec![message] }], response: None }
}

fn ok() -> CallbackResult {
    CallbackResult { event_id: None, replies: Vec::new(), response: None }
}

/// The state store failed: answer 503 so LiveChat delivers the webhook again.
fn retry_later(error: &PluginError) -> CallbackResult {
    log::warn(format!("LiveChat webhook not processed, LiveChat will retry it: {}", error.message));
    CallbackResult {
        event_id: None,
        replies: Vec::new(),
        response: Some(HttpResponse {
            status: 503,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"state store unavailable, retry later".to_vec(),
        }),
    }
}

switchboard_sdk::export_handoff!(LiveChat);
switchboard_sdk::manifest!(concat!(
    r#"{
    "name": "livechat",
    "version": ""#,
    env!("CARGO_PKG_VERSION"),
    r#"",
    "kind": "handoff",
    "contract": "0.1.0",
    "outbound_hosts": ["https://api.livechatinc.com", "https://accounts.livechat.com"],
    "outbound_host_settings": ["api_url", "accounts_url"],
    "settings": [
        {"name": "client_id", "required": true, "secret": false, "description": "the LiveChat app's client id"},
        {"name": "organization_id", "required": true, "secret": false, "description": "the LiveChat organization id"},
        {"name": "webhook_secret", "required": true, "secret": true, "description": "the Chat Webhooks secret key"},
        {"name": "agent_token", "required": true, "secret": true, "description": "the bot agent's token"},
        {"name": "group_id", "required": true, "secret": false, "description": "the LiveChat group for handoffs"},
        {"name": "api_url", "required": false, "secret": false, "description": "the Agent Chat API"},
        {"name": "accounts_url", "required": false, "secret": false, "description": "the Accounts API"}
    ]
}"#
));
