//! What a worker does with a job: route the message by the conversation's
//! state (bot, human operator, reset), ask the provider with retries, fall
//! back to the connector's message when it keeps failing, and deliver the
//! replies through the channel's `translate-out`.
//!
//! The conversation state machine is documented in [`crate::conversation`].

mod handoff;
mod intent;

use crate::bindings::{AddressedReply, Author, Control, ErrorKind, InboundMessage, OutboundMessage, PluginError};
use crate::connector::Connector;
use crate::conversation::{ConversationRecord, Conversations, Mode};
use crate::queue::{Attempt, Envelope, Job, JobHandler, Origin, Outcome, Progress};
use crate::runtime::{CallError, Runtime};
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
    pub state: Arc<dyn StateStore>,
    pub state_ttl: Duration,
}

/// What one attempt of a job decided: the replies to send, in order (one
/// message each, so delivery is recorded per message), and a dead letter
/// when the user gets the fallback instead of an answer.
struct Turn {
    attempt: Attempt,
    outbox: Vec<AddressedReply>,
    dead: Option<String>,
}

/// The attempt must run again later; nothing it decided is kept.
struct Deferred {
    reason: String,
    after: Option<Duration>,
    /// Not a failure (a rate limit): no attempt is spent.
    wait: bool,
}

impl Deferred {
    fn outcome(self) -> Outcome {
        match self.wait {
            true => Outcome::Wait { reason: self.reason, after: self.after.unwrap_or_default() },
            false => Outcome::Retry { reason: self.reason, after: self.after },
        }
    }
}

impl Turn {
    fn send(&mut self, reply: AddressedReply) {
        let AddressedReply { conversation, in_reply_to, messages } = reply;
        for message in messages {
            self.outbox.push(AddressedReply { conversation: conversation.clone(), in_reply_to: in_reply_to.clone(), messages: vec![message] });
        }
    }

    /// A transient failure defers the attempt unless it is the last one.
    fn retry_unless_last(&self, failure: &Failure, what: &str) -> Result<(), Deferred> {
        let reason = || format!("{what}: {}", failure.describe());
        if let Some(after) = failure.rate_limited() {
            return Err(Deferred { reason: reason(), after: Some(after), wait: true });
        }
        if failure.is_transient() && !self.attempt.last {
            return Err(Deferred { reason: reason(), after: failure.retry_after(), wait: false });
        }
        Ok(())
    }
}

#[async_trait]
impl JobHandler for Pipeline {
    async fn handle(&self, envelope: &Envelope, attempt: Attempt, progress: &dyn Progress) -> Outcome {
        let job = &envelope.job;
        let Some(connector) = self.connectors.get(job.connector()).cloned() else {
            return Outcome::Dead { reason: format!("connector `{}` no longer exists", job.connector()) };
        };
        if let Job::Outbox { deliveries, delivered, .. } = job {
            return self.send_outbox(&connector, deliveries, *delivered, progress).await;
        }
        let conversation_id = job.conversation_id().to_string();
        let conversations = self.conversations(&connector);
        // Never guess: a fresh record would hand a `human` conversation back to the bot.
        let mut record = match conversations.load(&conversation_id).await {
            Ok(record) => record,
            Err(error) => return Outcome::Retry { reason: format!("conversation record unavailable: {error}"), after: None },
        };
        let mut turn = Turn { attempt, outbox: Vec::new(), dead: None };
        let decided = match job.clone() {
            Job::Answer { message, .. } => self.answer(&connector, &mut record, message, &mut turn).await,
            Job::Deliver { reply, origin, .. } => {
                self.deliver_from(&connector, &mut record, reply, origin, &mut turn).await;
                Ok(())
            }
            Job::Admin { action, .. } => {
                self.admin(&connector, &mut record, action, &mut turn).await;
                Ok(())
            }
            Job::Outbox { .. } => unreachable!("handled above"),
        };
        if let Err(deferred) = decided {
            return deferred.outcome();
        }
        if let Err(error) = conversations.save(&conversation_id, &record).await {
            return Outcome::Retry { reason: format!("could not save the conversation record: {error}"), after: None };
        }
        if turn.outbox.is_empty() {
            return match turn.dead {
                Some(reason) => Outcome::Dead { reason },
                None => Outcome::Done,
            };
        }
        let outbox = Job::Outbox { connector: connector.id.clone(), conversation: conversation_id, deliveries: turn.outbox.clone(), delivered: 0 };
        let dead = turn.dead.map(|reason| (job.clone(), reason));
        if let Err(error) = progress.save(outbox, dead).await {
            return Outcome::Retry { reason: format!("could not record the replies to send: {error}"), after: None };
        }
        self.send_outbox(&connector, &turn.outbox, 0, progress).await
    }
}

/// One failed attempt, whether the plugin reported it or the sandbox did.
enum Failure {
    Plugin(PluginError),
    Sandbox(CallError),
}

impl Failure {
    /// Worth retrying: the plugin says so, or it ran out of time (a slow
    /// provider); a trap or a memory-cap hit would only repeat.
    fn is_transient(&self) -> bool {
        match self {
            Failure::Plugin(error) => error.kind == ErrorKind::Transient,
            Failure::Sandbox(error) => matches!(error, CallError::Timeout { .. } | CallError::RateLimited { .. }),
        }
    }

    /// When the call was stopped by a rate limit before sending anything:
    /// how long until its slot.
    fn rate_limited(&self) -> Option<Duration> {
        match self {
            Failure::Sandbox(CallError::RateLimited { retry_after, .. }) => Some(*retry_after),
            _ => None,
        }
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

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Plugin(error) => error.retry_after_ms.map(Duration::from_millis),
            Failure::Sandbox(_) => None,
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

    async fn answer(&self, connector: &Connector, record: &mut ConversationRecord, message: InboundMessage, turn: &mut Turn) -> Result<(), Deferred> {
        record.conversation = Some(message.conversation.clone());
        record.customer = Some(message.sender.clone());
        record.note(Author::User, &message.text, connector.routing.transcript_lines);
        if record.mode == Mode::Platform {
            // The platform routes messages to the bot again: its operator is done.
            record.mode = Mode::Bot;
            self.tell_provider(connector, record, crate::bindings::ConversationEvent::HandoffEnded).await;
        }
        match Intent::of(&message.text, &connector.routing, record.mode) {
            Intent::Reset => self.reset(connector, record, Some(&message), turn).await,
            Intent::Handoff => self.start_handoff(connector, record, "requested by the user", Some(&message), turn).await,
            Intent::Return => self.end_handoff(connector, record, true, Some(&message), turn).await,
            Intent::Relay => return self.relay(connector, record, message, turn).await,
            Intent::Ask => return self.ask(connector, record, message, turn).await,
        }
        Ok(())
    }

    /// The bot answers; a provider that keeps failing gets the user the
    /// fallback message and the job a dead letter (for replay).
    async fn ask(&self, connector: &Connector, record: &mut ConversationRecord, message: InboundMessage, turn: &mut Turn) -> Result<(), Deferred> {
        let started = std::time::Instant::now();
        let outcome = flatten(self.runtime.call_provider(&connector.provider, message.clone()).await);
        let status = if outcome.is_ok() { "ok" } else { "failed" };
        metrics::histogram!("switchboard_provider_call_seconds", "plugin" => connector.provider.plugin.name.clone(), "outcome" => status)
            .record(started.elapsed().as_secs_f64());
        let messages = match outcome {
            Ok(messages) => messages,
            Err(failure) => {
                turn.retry_unless_last(&failure, "provider call")?;
                tracing::error!(error = %failure.describe(), "provider failed; sending the fallback message");
                turn.dead = Some(format!("provider call: {}", failure.describe()));
                vec![text_message(failure.user_message().unwrap_or_else(|| connector.fallback_message.clone()))]
            }
        };
        let reply = AddressedReply { conversation: message.conversation.clone(), in_reply_to: Some(message), messages };
        self.deliver_bot_reply(connector, record, reply, turn).await;
        Ok(())
    }

    /// A human operator answers: pass the message to the help-desk. When the
    /// help-desk refuses for good (its chat is gone), the conversation returns
    /// to the bot instead of leaving the user talking to nobody.
    async fn relay(&self, connector: &Connector, record: &mut ConversationRecord, message: InboundMessage, turn: &mut Turn) -> Result<(), Deferred> {
        let Some(handoff) = &connector.handoff else { return Ok(()) };
        let Err(failure) = flatten(self.runtime.relay_message(handoff, message.clone()).await) else { return Ok(()) };
        turn.retry_unless_last(&failure, "relay to the operator")?;
        if failure.is_transient() {
            tracing::error!(error = %failure.describe(), "could not pass the message to the operator");
            turn.dead = Some(format!("relay to the operator: {}", failure.describe()));
            let text = failure.user_message().unwrap_or_else(|| connector.fallback_message.clone());
            turn.notify(&message.conversation, Some(&message), &text);
            return Ok(());
        }
        tracing::warn!(error = %failure.describe(), "the help-desk no longer takes this conversation; returning it to the bot");
        turn.notify(&message.conversation, Some(&message), &connector.routing.handoff_failed_notice);
        self.end_handoff(connector, record, false, Some(&message), turn).await;
        Ok(())
    }

    /// Deliver a reply that did not come from the provider's synchronous answer.
    async fn deliver_from(&self, connector: &Connector, record: &mut ConversationRecord, mut reply: AddressedReply, origin: Origin, turn: &mut Turn) {
        match (&record.conversation, origin) {
            // The host's copy comes from the user's latest message: only the
            // channel sets the reply context (tokens, endpoints).
            (Some(latest), _) if latest.id == reply.conversation.id => reply.conversation = latest.clone(),
            (_, Origin::Channel) => record.conversation = Some(reply.conversation.clone()),
            _ => {
                tracing::warn!(connector = %connector.id, conversation = %reply.conversation.id, ?origin, "a reply for a conversation this connector never had; dropped");
                turn.dead = Some(format!("no conversation `{}` on this connector to deliver the reply to", reply.conversation.id));
                return;
            }
        }
        match origin {
            Origin::Channel => turn.send(reply),
            Origin::Provider => {
                if record.mode == Mode::Human {
                    tracing::info!("the bot sent a message while an operator handles the conversation; delivering it anyway");
                }
                self.deliver_bot_reply(connector, record, reply, turn).await;
            }
            Origin::Handoff => self.deliver_operator_reply(connector, record, reply, turn).await,
        }
    }

    /// Deliver the bot's messages; a handoff it asks for starts after them.
    async fn deliver_bot_reply(&self, connector: &Connector, record: &mut ConversationRecord, mut reply: AddressedReply, turn: &mut Turn) {
        for message in &reply.messages {
            record.note(Author::Bot, &message.text, connector.routing.transcript_lines);
        }
        record.conversation.get_or_insert_with(|| reply.conversation.clone());
        let Some(reason) = handoff_request(&reply.messages) else {
            turn.send(reply);
            return;
        };
        if connector.handoff.is_none() {
            // The channel moves the chat to the platform's operators along with the text.
            turn.send(reply);
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
        reply.messages.retain(|m| !m.text.trim().is_empty() || m.control.is_some() || !m.files.is_empty());
        turn.send(reply);
        self.start_handoff(connector, record, &reason, in_reply_to.as_ref(), turn).await;
    }

    /// Deliver the replies a job decided on, one message at a time; after
    /// each, record how many reached the platform, so a retry resumes after
    /// the last one delivered and never sends one twice.
    async fn send_outbox(&self, connector: &Connector, deliveries: &[AddressedReply], mut delivered: usize, progress: &dyn Progress) -> Outcome {
        while let Some(reply) = deliveries.get(delivered) {
            let outcome = flatten(self.runtime.translate_out(&connector.channel, reply.clone()).await);
            let status = if outcome.is_ok() { "ok" } else { "failed" };
            metrics::counter!("switchboard_deliveries_total", "connector" => connector.id.clone(), "outcome" => status).increment(1);
            if let Err(failure) = outcome {
                let reason = format!("delivery of message {} of {}: {}", delivered + 1, deliveries.len(), failure.describe());
                if let Some(after) = failure.rate_limited() {
                    return Outcome::Wait { reason, after };
                }
                if failure.is_transient() {
                    return Outcome::Retry { reason, after: failure.retry_after() };
                }
                tracing::error!(%reason, "the platform refused a reply");
                return Outcome::Dead { reason };
            }
            delivered += 1;
            if delivered < deliveries.len() {
                let job =
                    Job::Outbox { connector: connector.id.clone(), conversation: reply.conversation.id.clone(), deliveries: deliveries.to_vec(), delivered };
                if let Err(error) = progress.save(job, None).await {
                    return Outcome::Retry { reason: format!("could not record a delivery: {error}"), after: None };
                }
            }
        }
        Outcome::Done
    }
}

impl Turn {
    /// Send one text to the user (nothing when the text is empty).
    fn notify(&mut self, conversation: &crate::bindings::ConversationRef, in_reply_to: Option<&InboundMessage>, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        self.send(AddressedReply { conversation: conversation.clone(), in_reply_to: in_reply_to.cloned(), messages: vec![text_message(text.to_string())] });
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
