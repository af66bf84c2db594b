//! What a worker does with a job: route the message by the conversation's
//! state (bot, human operator, reset), ask the provider with retries, fall
//! back to the connector's message when it keeps failing, and deliver the
//! replies through the channel's `translate-out`.
//!
//! The conversation state machine is documented in [`crate::conversation`].

mod handoff;
mod intent;

use crate::bindings::{AddressedReply, Author, Control, ErrorKind, InboundMessage, OutboundMessage, PluginError};
use crate::config::RetryConfig;
use crate::connector::Connector;
use crate::conversation::{ConversationRecord, Conversations, Mode};
use crate::queue::{Job, JobHandler, Origin};
use crate::runtime::{Binding, CallError, Runtime};
use crate::store::StateStore;
use async_trait::async_trait;
use intent::Intent;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Runs jobs against the connectors.
pub struct Pipeline {
    pub runtime: Arc<Runtime>,
    pub connectors: Arc<HashMap<String, Arc<Connector>>>,
    pub retry: RetryConfig,
    pub state: Arc<dyn StateStore>,
    pub state_ttl: Duration,
}

#[async_trait]
impl JobHandler for Pipeline {
    async fn handle(&self, job: Job) {
        let Some(connector) = self.connectors.get(job.connector()).cloned() else {
            tracing::warn!(connector = %job.connector(), "dropping a job for a connector that no longer exists");
            return;
        };
        let conversation_id = job.conversation_id().to_string();
        let span = tracing::info_span!("job", tenant = %connector.tenant, connector = %connector.id, conversation = %conversation_id);
        let _guard = span.enter();
        let conversations = self.conversations(&connector);
        let mut record = match conversations.load(&conversation_id).await {
            Ok(record) => record,
            Err(error) => {
                tracing::warn!(%error, "conversation record unavailable; treating the conversation as new");
                ConversationRecord::default()
            }
        };
        match job {
            Job::Answer { message, .. } => self.answer(&connector, &mut record, message).await,
            Job::Deliver { reply, origin, .. } => self.deliver_from(&connector, &mut record, reply, origin).await,
            Job::Admin { action, .. } => self.admin(&connector, &mut record, action).await,
        }
        if let Err(error) = conversations.save(&conversation_id, &record).await {
            tracing::error!(%error, "could not save the conversation record");
        }
    }
}

/// One failed attempt, whether the plugin reported it or the sandbox did.
enum Failure {
    Plugin(PluginError),
    Sandbox(CallError),
}

impl Failure {
    fn is_transient(&self) -> bool {
        matches!(self, Failure::Plugin(error) if error.kind == ErrorKind::Transient)
    }

    fn describe(&self) -> String {
        match self {
            Failure::Plugin(error) => {
                let kind = match error.kind {
                    ErrorKind::Transient => "transient",
                    ErrorKind::Permanent => "permanent",
                    ErrorKind::Config => "configuration",
                };
                format!("{kind} error: {}", error.message)
            }
            Failure::Sandbox(error) => error.to_string(),
        }
    }

    fn user_message(&self) -> Option<String> {
        match self {
            Failure::Plugin(error) => error.user_message.clone(),
            Failure::Sandbox(_) => None,
        }
    }
}

/// Flatten a plugin call's two error layers.
fn flatten<T>(outcome: Result<Result<T, PluginError>, CallError>) -> Result<T, Failure> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Failure::Plugin(error)),
        Err(error) => Err(Failure::Sandbox(error)),
    }
}

impl Pipeline {
    fn conversations<'a>(&'a self, connector: &'a Connector) -> Conversations<'a> {
        Conversations { state: self.state.as_ref(), scope: &connector.host_scope, ttl: self.state_ttl }
    }

    async fn answer(&self, connector: &Connector, record: &mut ConversationRecord, message: InboundMessage) {
        record.conversation = Some(message.conversation.clone());
        record.customer = Some(message.sender.clone());
        record.note(Author::User, &message.text, connector.routing.transcript_lines);
        if record.mode == Mode::Platform {
            // The platform routes messages to the bot again: its operator is done.
            record.mode = Mode::Bot;
            self.tell_provider(connector, record, crate::bindings::ConversationEvent::HandoffEnded).await;
        }
        match Intent::of(&message.text, &connector.routing, record.mode) {
            Intent::Reset => self.reset(connector, record, Some(&message)).await,
            Intent::Handoff => self.start_handoff(connector, record, "requested by the user", Some(&message)).await,
            Intent::Return => self.end_handoff(connector, record, true, Some(&message)).await,
            Intent::Relay => self.relay(connector, record, message).await,
            Intent::Ask => self.ask(connector, record, message).await,
        }
    }

    /// The bot answers.
    async fn ask(&self, connector: &Connector, record: &mut ConversationRecord, message: InboundMessage) {
        let attempt = || async { flatten(self.runtime.call_provider(&connector.provider, message.clone()).await) };
        let messages = match self.with_retries(&connector.provider, "provider call", attempt).await {
            Ok(messages) => messages,
            Err(failure) => {
                tracing::error!(error = %failure.describe(), "provider failed; sending the fallback message");
                vec![text_message(failure.user_message().unwrap_or_else(|| connector.fallback_message.clone()))]
            }
        };
        let reply = AddressedReply { conversation: message.conversation.clone(), in_reply_to: Some(message), messages };
        self.deliver_bot_reply(connector, record, reply).await;
    }

    /// A human operator answers: pass the message to the help-desk. When the
    /// help-desk refuses for good (its chat is gone), the conversation returns
    /// to the bot instead of leaving the user talking to nobody.
    async fn relay(&self, connector: &Connector, record: &mut ConversationRecord, message: InboundMessage) {
        let Some(handoff) = &connector.handoff else { return };
        let attempt = || async { flatten(self.runtime.relay_message(handoff, message.clone()).await) };
        let Err(failure) = self.with_retries(handoff, "relay to the operator", attempt).await else { return };
        if failure.is_transient() {
            tracing::error!(error = %failure.describe(), "could not pass the message to the operator");
            let text = failure.user_message().unwrap_or_else(|| connector.fallback_message.clone());
            self.notify(connector, &message.conversation, Some(&message), &text).await;
            return;
        }
        tracing::warn!(error = %failure.describe(), "the help-desk no longer takes this conversation; returning it to the bot");
        self.notify(connector, &message.conversation, Some(&message), &connector.routing.handoff_failed_notice).await;
        self.end_handoff(connector, record, false, Some(&message)).await;
    }

    /// Deliver a reply that did not come from the provider's synchronous answer.
    async fn deliver_from(&self, connector: &Connector, record: &mut ConversationRecord, mut reply: AddressedReply, origin: Origin) {
        match &record.conversation {
            // The host's copy comes from the user's latest message: its reply
            // context (tokens, endpoints) is fresher than the one a plugin stored.
            Some(latest) if latest.id == reply.conversation.id => reply.conversation = latest.clone(),
            _ => record.conversation = Some(reply.conversation.clone()),
        }
        match origin {
            Origin::Channel => self.deliver(connector, reply).await,
            Origin::Provider => {
                if record.mode == Mode::Human {
                    tracing::info!("the bot sent a message while an operator handles the conversation; delivering it anyway");
                }
                self.deliver_bot_reply(connector, record, reply).await;
            }
            Origin::Handoff => self.deliver_operator_reply(connector, record, reply).await,
        }
    }

    /// Deliver the bot's messages; a handoff it asks for starts after them.
    async fn deliver_bot_reply(&self, connector: &Connector, record: &mut ConversationRecord, mut reply: AddressedReply) {
        for message in &reply.messages {
            record.note(Author::Bot, &message.text, connector.routing.transcript_lines);
        }
        record.conversation.get_or_insert_with(|| reply.conversation.clone());
        let Some(reason) = handoff_request(&reply.messages) else {
            self.deliver(connector, reply).await;
            return;
        };
        if connector.handoff.is_none() {
            // The channel moves the chat to the platform's operators along with the text.
            self.deliver(connector, reply).await;
            record.mode = Mode::Platform;
            self.tell_provider(connector, record, crate::bindings::ConversationEvent::HandoffStarted(reason)).await;
            return;
        }
        // With a help-desk the host runs the handoff; the channel must not also move the chat.
        for message in &mut reply.messages {
            if matches!(message.control, Some(Control::Handoff(_))) {
                message.control = None;
            }
        }
        let in_reply_to = reply.in_reply_to.clone();
        if reply.messages.iter().any(|m| !m.text.trim().is_empty() || m.control.is_some() || !m.files.is_empty()) {
            self.deliver(connector, reply).await;
        }
        self.start_handoff(connector, record, &reason, in_reply_to.as_ref()).await;
    }

    /// Deliver an answer of the connector's channel plugin; failures are logged.
    async fn deliver(&self, connector: &Connector, reply: AddressedReply) {
        let attempt = || async { flatten(self.runtime.translate_out(&connector.channel, reply.clone()).await) };
        if let Err(failure) = self.with_retries(&connector.channel, "delivery", attempt).await {
            tracing::error!(error = %failure.describe(), "reply could not be delivered to the platform");
        }
    }

    /// Send one text to the user (nothing when the text is empty).
    async fn notify(&self, connector: &Connector, conversation: &crate::bindings::ConversationRef, in_reply_to: Option<&InboundMessage>, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        let reply = AddressedReply { conversation: conversation.clone(), in_reply_to: in_reply_to.cloned(), messages: vec![text_message(text.to_string())] };
        self.deliver(connector, reply).await;
    }

    /// Retry transient failures with exponential backoff.
    async fn with_retries<T, F, Fut>(&self, binding: &Binding, what: &str, mut attempt: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut backoff = Duration::from_millis(self.retry.initial_backoff_ms);
        for number in 1..=self.retry.attempts {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(failure) if failure.is_transient() && number < self.retry.attempts => {
                    tracing::warn!(plugin = %binding.plugin.name, attempt = number, error = %failure.describe(), "{what} failed; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(failure) => return Err(failure),
            }
        }
        unreachable!("retry.attempts is validated to be at least 1")
    }
}

fn text_message(text: String) -> OutboundMessage {
    OutboundMessage { text, buttons: Vec::new(), files: Vec::new(), control: None }
}

/// The reason of the first `handoff` control among the messages.
fn handoff_request(messages: &[OutboundMessage]) -> Option<String> {
    messages.iter().find_map(|message| match &message.control {
        Some(Control::Handoff(reason)) if reason.is_empty() => Some("requested by the bot".to_string()),
        Some(Control::Handoff(reason)) => Some(reason.clone()),
        _ => None,
    })
}

