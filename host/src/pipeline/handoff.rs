//! Moving a conversation between the bot and a human operator.

use super::{Pipeline, Turn, flatten};
use crate::bindings::{AddressedReply, Author, Control, ConversationEvent, ConversationRef, InboundMessage, Sender};
use crate::connector::Connector;
use crate::conversation::{ConversationRecord, Mode};
use crate::queue::AdminAction;

impl Pipeline {
    /// Hand the conversation to a human: through the help-desk plugin when
    /// one is configured, otherwise through the channel (platform queue).
    pub(super) async fn start_handoff(
        &self,
        connector: &Connector,
        record: &mut ConversationRecord,
        reason: &str,
        in_reply_to: Option<&InboundMessage>,
        turn: &mut Turn,
    ) {
        let Some(conversation) = record.conversation.clone() else { return };
        let routing = &connector.routing;
        let Some(handoff) = &connector.handoff else {
            tracing::info!(reason, "handing the conversation to the platform's operators");
            let mut message = super::text_message(routing.handoff_notice.clone());
            message.control = Some(Control::Handoff(reason.to_string()));
            let reply = AddressedReply { conversation, in_reply_to: in_reply_to.cloned(), messages: vec![message] };
            turn.send(reply);
            record.mode = Mode::Platform;
            self.tell_provider(connector, record, ConversationEvent::HandoffStarted(reason.to_string())).await;
            return;
        };
        let customer = record.customer.clone().unwrap_or_else(|| Sender { id: String::new(), display_name: None, is_bot: false });
        let outcome = self.runtime.start_handoff(handoff, conversation.clone(), customer, reason.to_string(), record.transcript.clone()).await;
        match flatten(outcome) {
            Ok(()) => {
                tracing::info!(reason, plugin = %handoff.plugin.name, "conversation handed to a human operator");
                record.mode = Mode::Human;
                self.tell_provider(connector, record, ConversationEvent::HandoffStarted(reason.to_string())).await;
                turn.notify(&conversation, in_reply_to, &routing.handoff_notice);
            }
            Err(failure) => {
                tracing::error!(error = %failure.describe(), "handoff to the help-desk failed; the bot keeps the conversation");
                let text = failure.user_message().unwrap_or_else(|| routing.handoff_failed_notice.clone());
                turn.notify(&conversation, in_reply_to, &text);
            }
        }
    }

    /// Return the conversation to the bot. `close_desk_chat` is true when the
    /// user or an admin asked (the help-desk chat must be closed); false when
    /// the help-desk itself reported the end.
    pub(super) async fn end_handoff(
        &self,
        connector: &Connector,
        record: &mut ConversationRecord,
        close_desk_chat: bool,
        in_reply_to: Option<&InboundMessage>,
        turn: &mut Turn,
    ) {
        if record.mode != Mode::Human {
            return;
        }
        let Some(conversation) = record.conversation.clone() else { return };
        if close_desk_chat {
            self.close_desk_chat(connector, &conversation).await;
        }
        record.mode = Mode::Bot;
        tracing::info!("conversation returned to the bot");
        self.tell_provider(connector, record, ConversationEvent::HandoffEnded).await;
        if close_desk_chat {
            turn.notify(&conversation, in_reply_to, &connector.routing.return_notice);
        }
    }

    /// Forget the conversation: the provider drops its state, an operator
    /// chat is closed, the transcript is cleared.
    pub(super) async fn reset(&self, connector: &Connector, record: &mut ConversationRecord, in_reply_to: Option<&InboundMessage>, turn: &mut Turn) {
        let Some(conversation) = record.conversation.clone() else { return };
        if record.mode == Mode::Human {
            self.close_desk_chat(connector, &conversation).await;
        }
        self.tell_provider(connector, record, ConversationEvent::Reset).await;
        *record = ConversationRecord { conversation: Some(conversation.clone()), customer: record.customer.take(), ..Default::default() };
        tracing::info!("conversation reset");
        turn.notify(&conversation, in_reply_to, &connector.routing.reset_notice);
    }

    /// An administrator's request from the admin API.
    pub(super) async fn admin(&self, connector: &Connector, record: &mut ConversationRecord, action: AdminAction, turn: &mut Turn) {
        if record.conversation.is_none() {
            tracing::warn!(?action, "admin action for a conversation the host does not know");
            return;
        }
        match action {
            AdminAction::Handoff if record.mode != Mode::Human => self.start_handoff(connector, record, "requested by an administrator", None, turn).await,
            AdminAction::Handoff => {}
            AdminAction::Return => self.end_handoff(connector, record, true, None, turn).await,
            AdminAction::Reset => self.reset(connector, record, None, turn).await,
        }
    }

    /// Operator messages and help-desk events from the handoff plugin.
    pub(super) async fn deliver_operator_reply(&self, connector: &Connector, record: &mut ConversationRecord, reply: AddressedReply, turn: &mut Turn) {
        let ended = reply.messages.iter().any(|m| matches!(m.control, Some(Control::HandoffEnded)));
        for message in &reply.messages {
            if message.control.is_none() && !message.text.trim().is_empty() {
                record.note(Author::Operator, &message.text, connector.routing.transcript_lines);
                self.tell_provider(connector, record, ConversationEvent::OperatorMessage(message.text.clone())).await;
            }
        }
        turn.send(reply);
        if ended {
            self.end_handoff(connector, record, false, None, turn).await;
        }
    }

    /// Close the operator chat at the help-desk; failures are logged only
    /// (the conversation returns to the bot either way).
    async fn close_desk_chat(&self, connector: &Connector, conversation: &ConversationRef) {
        let Some(handoff) = &connector.handoff else { return };
        if let Err(failure) = flatten(self.runtime.end_handoff(handoff, conversation.clone()).await) {
            tracing::warn!(error = %failure.describe(), "the help-desk chat could not be closed");
        }
    }

    /// Tell the bot provider about the conversation; failures are logged only.
    pub(super) async fn tell_provider(&self, connector: &Connector, record: &ConversationRecord, event: ConversationEvent) {
        let Some(conversation) = record.conversation.clone() else { return };
        if let Err(failure) = flatten(self.runtime.on_event(&connector.provider, conversation, event).await) {
            tracing::warn!(error = %failure.describe(), "the provider could not process a conversation event");
        }
    }
}
