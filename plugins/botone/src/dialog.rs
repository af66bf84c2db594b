//! Per-conversation state and the decision what to do with a user message.
//! Pure (no host calls).
//!
//! | key | value |
//! |---|---|
//! | `dialog:{conversation id}` | [`DialogRecord`]: the dialog UUID, its numeric id and the conversation-ref |
//! | `conversation-of:{dialog UUID}` | [`StoredConversation`] (the conversation-ref) |
//! | `conversation-of:{numeric dialog id}` | the same, so callbacks may name the dialog by number |
//! | `conversation:{conversation id}` | [`StoredConversation`], written *before* the dialog is created, so a callback naming the conversation works even while Bot.one is still answering the create call |
//! | `pending:{conversation id}` | the token of the block waiting for the user's answer |
//! | `turn:{conversation id}` | when the latest user message arrived (Unix milliseconds): part of the callbacks' deduplication ids (see [`crate::callback::event_id`]) |
//!
//! Every key is refreshed (connector default TTL, 1 day) by each user message.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_sdk::{Command, ConversationEvent, ConversationRef, InboundMessage};

/// The command that moves the dialog to another Bot.one bot.
pub const GOTO_COMMAND: &str = "goto";

/// `dialog:{conversation id}`.
pub fn dialog_key(conversation_id: &str) -> String {
    format!("dialog:{conversation_id}")
}

/// `conversation-of:{dialog}` (UUID or numeric id).
pub fn reverse_key(dialog: &str) -> String {
    format!("conversation-of:{dialog}")
}

/// `conversation:{conversation id}`.
pub fn conversation_key(conversation_id: &str) -> String {
    format!("conversation:{conversation_id}")
}

/// `pending:{conversation id}`.
pub fn pending_key(conversation_id: &str) -> String {
    format!("pending:{conversation_id}")
}

/// `turn:{conversation id}`.
pub fn turn_key(conversation_id: &str) -> String {
    format!("turn:{conversation_id}")
}

/// A conversation-ref as stored (the SDK type has no serde support).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredConversation {
    /// `conversation-ref.id`.
    pub id: String,
    /// `conversation-ref.reply-context`, verbatim.
    pub reply_context: String,
}

impl StoredConversation {
    /// From the contract type.
    pub fn of(conversation: &ConversationRef) -> Self {
        Self { id: conversation.id.clone(), reply_context: conversation.reply_context.clone() }
    }

    /// Back to the contract type.
    pub fn to_ref(&self) -> ConversationRef {
        ConversationRef { id: self.id.clone(), reply_context: self.reply_context.clone() }
    }
}

/// What is stored under `dialog:{conversation id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialogRecord {
    /// The dialog's UUID.
    pub uuid: String,
    /// Bot.one's numeric dialog id, when known.
    #[serde(default)]
    pub number: Option<u64>,
    /// Where replies go (refreshed from every user message: Bitrix24 tokens
    /// in the reply-context expire after an hour).
    pub conversation: StoredConversation,
}

impl DialogRecord {
    /// Whether `dialog` (a callback's field) names this dialog, by UUID or number.
    pub fn is_named(&self, dialog: &str) -> bool {
        self.uuid == dialog || self.number.is_some_and(|n| n.to_string() == dialog)
    }

    /// Every `conversation-of:` key of this dialog.
    pub fn reverse_keys(&self) -> Vec<String> {
        let mut keys = vec![reverse_key(&self.uuid)];
        if let Some(number) = self.number {
            keys.push(reverse_key(&number.to_string()));
        }
        keys
    }
}

/// What to do with one user message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `/goto` without a valid bot id: explain the usage.
    GotoUsage,
    /// `/goto {bot}`: move the dialog to another bot (or start one there).
    Goto {
        /// Target bot id (digits).
        bot: String,
    },
    /// One of the `operator_command`s: ask the host for a human.
    Operator {
        /// The command's name, as configured.
        command: String,
    },
    /// No dialog yet: create and start one.
    Start,
    /// A block waits for the answer: complete it with the message.
    Answer {
        /// The block token.
        token: String,
    },
    /// A dialog exists but no block waits for an answer.
    NoBlock,
}

/// Decide what a message means. `has_dialog` and `pending` come from state.
pub fn plan(command: Option<&Command>, operator_commands: &[String], has_dialog: bool, pending: Option<String>) -> Action {
    if let Some(command) = command {
        let name = command.name.trim().trim_start_matches('/');
        if name.eq_ignore_ascii_case(GOTO_COMMAND) {
            return match goto_target(&command.params) {
                Some(bot) => Action::Goto { bot },
                None => Action::GotoUsage,
            };
        }
        if let Some(configured) = operator_commands.iter().find(|c| c.eq_ignore_ascii_case(name)) {
            return Action::Operator { command: configured.clone() };
        }
    }
    match (has_dialog, pending) {
        (false, _) => Action::Start,
        (true, Some(token)) => Action::Answer { token },
        (true, None) => Action::NoBlock,
    }
}

/// The bot id of `/goto {params}`: one positive integer.
pub fn goto_target(params: &str) -> Option<String> {
    let bot = params.trim();
    (!bot.is_empty() && bot.len() <= 18 && bot.bytes().all(|b| b.is_ascii_digit()) && !bot.trim_start_matches('0').is_empty()).then(|| bot.to_string())
}

/// Parse `operator_command`: a JSON list (`["operator", "human"]`) or a
/// comma/space-separated string (`"operator, human"`); leading slashes are
/// dropped.
pub fn parse_command_list(value: Option<&str>) -> Vec<String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Vec::new() };
    let items: Vec<String> = serde_json::from_str::<Vec<String>>(value).unwrap_or_else(|_| value.split([',', ' ', ';']).map(str::to_string).collect());
    let mut names: Vec<String> = items.into_iter().map(|item| item.trim().trim_start_matches('/').to_string()).filter(|item| !item.is_empty()).collect();
    names.dedup();
    names
}

/// `data` of `/api/vertex/v1/complete`: the answer and who gave it, for the
/// bot to read from the block's result.
pub fn answer_data(message: &InboundMessage) -> Value {
    let files: Vec<Value> = message.attachments.iter().map(|a| json!({"name": a.name, "kind": a.kind, "url": a.url})).collect();
    json!({
        "text": message.text,
        "user_id": message.sender.id,
        "user_name": message.sender.display_name.clone().unwrap_or_default(),
        "files": files,
    })
}

/// What a conversation event means for the Bot.one dialog.
#[derive(Debug, Clone, PartialEq)]
pub enum EventCall {
    /// Forget the dialog (all keys of the conversation).
    Forget,
    /// `POST /api/v2/conversation/{uuid}/{action}` with this JSON body (none: empty body).
    Post {
        /// `stop`, `start` or `send`.
        action: &'static str,
        /// The JSON body.
        body: Option<Value>,
        /// For logs and errors.
        what: &'static str,
    },
    /// Nothing to tell Bot.one.
    Nothing,
}

/// Map a host event to a Bot.one call: a handoff stops the dialog (status
/// Operator), its end resumes it, operator messages are copied into the
/// dialog's history, a reset forgets it.
pub fn event_call(event: &ConversationEvent) -> EventCall {
    match event {
        ConversationEvent::HandoffStarted(_) => EventCall::Post { action: "stop", body: None, what: "stop the dialog for an operator" },
        ConversationEvent::HandoffEnded => EventCall::Post { action: "start", body: None, what: "resume the dialog" },
        ConversationEvent::OperatorMessage(text) if text.trim().is_empty() => EventCall::Nothing,
        ConversationEvent::OperatorMessage(text) => {
            EventCall::Post { action: "send", body: Some(crate::api::body_text(text)), what: "copy an operator message" }
        }
        ConversationEvent::Reset => EventCall::Forget,
    }
}

/// `{text}` with `{bot}` replaced, for the `/goto` confirmation.
pub fn fill_bot(template: &str, bot: &str) -> String {
    template.replace("{bot}", bot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::{Attachment, Sender};

    fn command(name: &str, params: &str) -> Command {
        Command { id: "12".into(), name: name.into(), params: params.into() }
    }

    fn ops() -> Vec<String> {
        vec!["operator".into(), "human".into()]
    }

    #[test]
    fn keys() {
        assert_eq!(dialog_key("a1b2c3:55:17"), "dialog:a1b2c3:55:17");
        assert_eq!(reverse_key("4c9b"), "conversation-of:4c9b");
        assert_eq!(pending_key("a1b2c3:55:17"), "pending:a1b2c3:55:17");
        assert_eq!(conversation_key("a1b2c3:55:17"), "conversation:a1b2c3:55:17");
        assert_eq!(turn_key("a1b2c3:55:17"), "turn:a1b2c3:55:17");
        let record = DialogRecord { uuid: "u-1".into(), number: Some(371), conversation: StoredConversation { id: "c".into(), reply_context: "{}".into() } };
        assert_eq!(record.reverse_keys(), ["conversation-of:u-1", "conversation-of:371"]);
        assert!(record.is_named("u-1") && record.is_named("371") && !record.is_named("372") && !record.is_named("u-2"));
        assert_eq!(DialogRecord { number: None, ..record }.reverse_keys(), ["conversation-of:u-1"]);
    }

    #[test]
    fn record_round_trips_as_json() {
        let record = DialogRecord {
            uuid: "u-1".into(),
            number: Some(371),
            conversation: StoredConversation { id: "a:55:17".into(), reply_context: "{\"bot_id\":\"55\"}".into() },
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json, json!({"uuid": "u-1", "number": 371, "conversation": {"id": "a:55:17", "reply_context": "{\"bot_id\":\"55\"}"}}));
        assert_eq!(serde_json::from_value::<DialogRecord>(json).unwrap(), record);
        let old: DialogRecord = serde_json::from_value(json!({"uuid": "u", "conversation": {"id": "c", "reply_context": ""}})).unwrap();
        assert_eq!(old.number, None);
        let conversation = record.conversation.to_ref();
        assert_eq!(StoredConversation::of(&conversation), record.conversation);
    }

    #[test]
    fn plans_plain_messages_from_state() {
        assert_eq!(plan(None, &ops(), false, None), Action::Start);
        assert_eq!(plan(None, &ops(), false, Some("t".into())), Action::Start, "a token without a dialog is stale");
        assert_eq!(plan(None, &ops(), true, Some("t".into())), Action::Answer { token: "t".into() });
        assert_eq!(plan(None, &ops(), true, None), Action::NoBlock);
        // Other commands are plain messages.
        assert_eq!(plan(Some(&command("help", "x")), &ops(), true, None), Action::NoBlock);
    }

    #[test]
    fn plans_commands() {
        assert_eq!(plan(Some(&command("goto", " 698 ")), &ops(), true, None), Action::Goto { bot: "698".into() });
        assert_eq!(plan(Some(&command("GOTO", "698")), &[], false, Some("t".into())), Action::Goto { bot: "698".into() });
        assert_eq!(plan(Some(&command("/goto", "698")), &[], true, None), Action::Goto { bot: "698".into() });
        for params in ["", "abc", "6 98", "-5", "0", "1.5"] {
            assert_eq!(plan(Some(&command("goto", params)), &[], true, None), Action::GotoUsage, "{params:?}");
        }
        assert_eq!(plan(Some(&command("Human", "")), &ops(), true, Some("t".into())), Action::Operator { command: "human".into() });
        assert_eq!(plan(Some(&command("operator", "")), &[], true, None), Action::NoBlock, "not configured");
    }

    #[test]
    fn command_lists() {
        assert_eq!(parse_command_list(None), Vec::<String>::new());
        assert_eq!(parse_command_list(Some("  ")), Vec::<String>::new());
        assert_eq!(parse_command_list(Some(r#"["operator", "/human"]"#)), ["operator", "human"]);
        assert_eq!(parse_command_list(Some("operator, /human")), ["operator", "human"]);
        assert_eq!(parse_command_list(Some("operator")), ["operator"]);
    }

    #[test]
    fn answer_data_has_text_user_and_files() {
        let message = InboundMessage {
            id: "m:55:900".into(),
            conversation: ConversationRef { id: "c".into(), reply_context: String::new() },
            sender: Sender { id: "17".into(), display_name: Some("John Doe".into()), is_bot: false },
            text: "My order is 42".into(),
            attachments: vec![Attachment {
                id: "9".into(),
                name: "photo.png".into(),
                kind: "image".into(),
                url: Some("https://portal/download/9".into()),
                size: Some(10),
            }],
            command: None,
            variables: vec![("access_token".into(), "secret".into())],
        };
        let data = answer_data(&message);
        assert_eq!(
            data,
            json!({"text": "My order is 42", "user_id": "17", "user_name": "John Doe",
                   "files": [{"name": "photo.png", "kind": "image", "url": "https://portal/download/9"}]})
        );
        assert!(!data.to_string().contains("secret"), "platform tokens are not sent with answers");
    }

    #[test]
    fn events_map_to_bot_one_calls() {
        assert_eq!(
            event_call(&ConversationEvent::HandoffStarted("needs a human".into())),
            EventCall::Post { action: "stop", body: None, what: "stop the dialog for an operator" }
        );
        assert_eq!(event_call(&ConversationEvent::HandoffEnded), EventCall::Post { action: "start", body: None, what: "resume the dialog" });
        assert_eq!(
            event_call(&ConversationEvent::OperatorMessage("Привет, я оператор.".into())),
            EventCall::Post { action: "send", body: Some(json!({"body": "Привет, я оператор."})), what: "copy an operator message" }
        );
        assert_eq!(event_call(&ConversationEvent::OperatorMessage("  ".into())), EventCall::Nothing);
        assert_eq!(event_call(&ConversationEvent::Reset), EventCall::Forget);
    }

    #[test]
    fn goto_confirmation() {
        assert_eq!(fill_bot("Switched to bot {bot}.", "698"), "Switched to bot 698.");
    }
}
