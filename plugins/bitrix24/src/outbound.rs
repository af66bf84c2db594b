//! Plan the REST calls that deliver a reply. Pure: the edge in `lib.rs`
//! sends the planned calls.

use crate::bbcode::markdown_to_bbcode;
use crate::reply_context::ReplyContext;
use crate::rest::{COMMAND_ANSWER, MESSAGE_ADD, OPERATOR_HANDOFF, RestCall};
use serde_json::{Map, Value, json};
use switchboard_sdk::{AddressedReply, Button, Control, OutboundFile, OutboundMessage};

/// Text sent with buttons when a message has buttons but no text
/// (Bitrix24 refuses messages with an empty `MESSAGE` and no attachment).
pub const DEFAULT_BUTTONS_TEXT: &str = "Please choose:";

/// The calls to make, plus notes about what was left out.
#[derive(Debug, Default)]
pub struct Plan {
    /// REST calls, in delivery order.
    pub calls: Vec<RestCall>,
    /// Debug notes (skipped messages, ignored control signals).
    pub notes: Vec<String>,
}

/// The slash command being answered: `(COMMAND_ID, MESSAGE_ID)`.
fn command_target(reply: &AddressedReply) -> Option<(String, String)> {
    let inbound = reply.in_reply_to.as_ref()?;
    let command = inbound.command.as_ref()?;
    let message_id = inbound.variables.iter().find(|(name, value)| name == "MESSAGE_ID" && !value.is_empty()).map(|(_, value)| value.clone())?;
    Some((command.id.clone(), message_id))
}

/// Delivery settings from the connector configuration.
#[derive(Debug, Clone, Default)]
pub struct DeliverySettings {
    /// Text sent with buttons when a message has none.
    pub buttons_text: String,
    /// Dialog that receives staff notices (`staff_dialog_id`), e.g. `chat12`.
    pub staff_dialog_id: Option<String>,
}

/// Plan delivery of every message of `reply`.
pub fn plan_delivery(reply: &AddressedReply, context: &ReplyContext, settings: &DeliverySettings) -> Plan {
    let target = command_target(reply);
    let mut plan = Plan::default();
    for message in &reply.messages {
        if let Some(control) = &message.control {
            plan_control(control, &reply.conversation.id, context, settings, &mut plan);
        }
        match message_params(message, &settings.buttons_text) {
            Some(params) => plan.calls.push(addressed_call(params, context, target.as_ref())),
            None if message.control.is_none() => {
                plan.notes.push(format!("skipping an empty message to {}", reply.conversation.id));
            }
            None => {}
        }
    }
    plan
}

/// Control signals that reach the channel: a handoff with no handoff plugin
/// goes to the Open Line's operator queue; staff notices go to the staff
/// dialog. The rest need no call.
fn plan_control(control: &Control, conversation: &str, context: &ReplyContext, settings: &DeliverySettings, plan: &mut Plan) {
    match control {
        Control::Handoff(_) if !context.chat_id.is_empty() => {
            let mut params = Map::new();
            params.insert("CHAT_ID".into(), context.chat_id.clone().into());
            plan.calls.push(RestCall { method: OPERATOR_HANDOFF, params });
        }
        Control::Handoff(_) => {
            plan.notes.push(format!("handoff requested for {conversation}, but the event carried no CHAT_ID to transfer"));
        }
        Control::StaffNotice(text) => match &settings.staff_dialog_id {
            Some(dialog) => {
                let mut params = Map::new();
                params.insert("BOT_ID".into(), context.bot_id.clone().into());
                params.insert("DIALOG_ID".into(), dialog.clone().into());
                params.insert("MESSAGE".into(), markdown_to_bbcode(text).into());
                plan.calls.push(RestCall { method: MESSAGE_ADD, params });
            }
            None => plan.notes.push(format!("staff notice for {conversation} (set `staff_dialog_id` to receive these in a chat): {text}")),
        },
        Control::HandoffEnded | Control::Close => {}
    }
}

/// Add the addressing fields: a command answer when answering a command,
/// otherwise a bot message into the dialog.
fn addressed_call(mut params: Map<String, Value>, context: &ReplyContext, target: Option<&(String, String)>) -> RestCall {
    params.insert("BOT_ID".into(), context.bot_id.clone().into());
    match target {
        Some((command_id, message_id)) => {
            params.insert("COMMAND_ID".into(), command_id.clone().into());
            params.insert("MESSAGE_ID".into(), message_id.clone().into());
            RestCall { method: COMMAND_ANSWER, params }
        }
        None => {
            params.insert("DIALOG_ID".into(), context.dialog_id.clone().into());
            RestCall { method: MESSAGE_ADD, params }
        }
    }
}

/// `MESSAGE`, `KEYBOARD` and `ATTACH` for one message; `None` when there is
/// nothing to show.
fn message_params(message: &OutboundMessage, buttons_text: &str) -> Option<Map<String, Value>> {
    let mut text = markdown_to_bbcode(&message.text);
    if text.is_empty() && message.files.is_empty() && message.buttons.is_empty() {
        return None;
    }
    if text.is_empty() && message.files.is_empty() {
        text = buttons_text.to_string();
    }
    let mut params = Map::new();
    if !text.is_empty() {
        params.insert("MESSAGE".into(), text.into());
    }
    if !message.buttons.is_empty() {
        params.insert("KEYBOARD".into(), keyboard(&message.buttons));
    }
    if !message.files.is_empty() {
        params.insert("ATTACH".into(), attach(&message.files));
    }
    Some(params)
}

/// Buttons whose value is a URL open it; others send their value as the
/// user's message.
fn keyboard(buttons: &[Button]) -> Value {
    let buttons: Vec<Value> = buttons
        .iter()
        .map(|button| {
            if is_url(&button.value) {
                json!({"TEXT": button.label, "LINK": button.value, "DISPLAY": "LINE"})
            } else {
                json!({"TEXT": button.label, "ACTION": "SEND", "ACTION_VALUE": button.value, "DISPLAY": "LINE"})
            }
        })
        .collect();
    json!({ "BUTTONS": buttons })
}

fn attach(files: &[OutboundFile]) -> Value {
    let blocks: Vec<Value> = files.iter().map(|file| json!({"LINK": {"NAME": file_name(file), "LINK": file.url}})).collect();
    Value::Array(blocks)
}

/// The file's name, else the last segment of its URL.
fn file_name(file: &OutboundFile) -> String {
    if let Some(name) = file.name.as_deref().filter(|name| !name.is_empty()) {
        return name.to_string();
    }
    let path = file.url.split(['?', '#']).next().unwrap_or_default();
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(segment) if !segment.is_empty() && !segment.contains(':') => segment.to_string(),
        _ => "File".to_string(),
    }
}

fn is_url(value: &str) -> bool {
    value.starts_with("https://") || value.starts_with("http://")
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::{Command, ConversationRef, InboundMessage, Sender};

    fn context() -> ReplyContext {
        ReplyContext {
            client_endpoint: "https://p.bitrix24.com/rest/".into(),
            bot_token: "tok".into(),
            bot_id: "55".into(),
            dialog_id: "chat7".into(),
            chat_id: "7".into(),
            ..ReplyContext::default()
        }
    }

    fn reply(messages: Vec<OutboundMessage>, in_reply_to: Option<InboundMessage>) -> AddressedReply {
        AddressedReply { conversation: ConversationRef { id: "m:55:chat7".into(), reply_context: context().to_json() }, in_reply_to, messages }
    }

    fn command_message() -> InboundMessage {
        InboundMessage {
            id: "m:55:1221:command:12".into(),
            conversation: ConversationRef { id: "m:55:chat7".into(), reply_context: String::new() },
            sender: Sender { id: "2".into(), display_name: None, is_bot: false },
            text: "/help topic".into(),
            attachments: Vec::new(),
            command: Some(Command { id: "12".into(), name: "help".into(), params: "topic".into() }),
            variables: vec![("MESSAGE_ID".into(), "1221".into())],
        }
    }

    fn plan(messages: Vec<OutboundMessage>, in_reply_to: Option<InboundMessage>) -> Plan {
        let settings = DeliverySettings { buttons_text: DEFAULT_BUTTONS_TEXT.into(), staff_dialog_id: Some("chat12".into()) };
        plan_delivery(&reply(messages, in_reply_to), &context(), &settings)
    }

    #[test]
    fn plain_reply_is_a_bot_message_in_bbcode() {
        let plan = plan(vec![OutboundMessage::text("**Hi**")], None);
        assert_eq!(plan.calls.len(), 1);
        assert_eq!(plan.calls[0].method, "imbot.message.add");
        assert_eq!(Value::Object(plan.calls[0].params.clone()), json!({"BOT_ID": "55", "DIALOG_ID": "chat7", "MESSAGE": "[B]Hi[/B]"}));
    }

    #[test]
    fn command_reply_is_a_command_answer() {
        let plan = plan(vec![OutboundMessage::text("help text")], Some(command_message()));
        assert_eq!(plan.calls[0].method, "imbot.command.answer");
        assert_eq!(Value::Object(plan.calls[0].params.clone()), json!({"BOT_ID": "55", "COMMAND_ID": "12", "MESSAGE_ID": "1221", "MESSAGE": "help text"}));
    }

    #[test]
    fn buttons_become_a_keyboard_and_files_an_attachment() {
        let mut message = OutboundMessage::text("");
        message.buttons = vec![Button { label: "Yes".into(), value: "yes".into() }, Button { label: "Site".into(), value: "https://x.y".into() }];
        message.files = vec![
            OutboundFile { url: "https://x.y/files/report.pdf?sig=1".into(), name: None },
            OutboundFile { url: "https://x.y/a".into(), name: Some("Invoice".into()) },
        ];
        let params = &plan(vec![message], None).calls[0].params;
        assert!(!params.contains_key("MESSAGE"), "files carry the message");
        assert_eq!(
            params["KEYBOARD"],
            json!({"BUTTONS": [
                {"TEXT": "Yes", "ACTION": "SEND", "ACTION_VALUE": "yes", "DISPLAY": "LINE"},
                {"TEXT": "Site", "LINK": "https://x.y", "DISPLAY": "LINE"}
            ]})
        );
        assert_eq!(
            params["ATTACH"],
            json!([
                {"LINK": {"NAME": "report.pdf", "LINK": "https://x.y/files/report.pdf?sig=1"}},
                {"LINK": {"NAME": "Invoice", "LINK": "https://x.y/a"}}
            ])
        );
    }

    #[test]
    fn buttons_without_text_get_a_prompt() {
        let mut message = OutboundMessage::text("  ");
        message.buttons = vec![Button { label: "A".into(), value: "a".into() }];
        assert_eq!(plan(vec![message], None).calls[0].params["MESSAGE"], DEFAULT_BUTTONS_TEXT);
    }

    #[test]
    fn empty_messages_send_nothing() {
        let plan = plan(vec![OutboundMessage::text("")], None);
        assert!(plan.calls.is_empty());
        assert_eq!(plan.notes.len(), 1);
    }

    #[test]
    fn handoff_moves_the_open_line_to_the_operator_queue() {
        let mut handoff = OutboundMessage::text("");
        handoff.control = Some(Control::Handoff("needs a human".into()));
        let plan = plan(vec![handoff], None);
        assert_eq!(plan.calls.len(), 1);
        assert_eq!(plan.calls[0].method, "imopenlines.bot.session.operator");
        assert_eq!(Value::Object(plan.calls[0].params.clone()), json!({"CHAT_ID": "7"}));
    }

    #[test]
    fn staff_notices_go_to_the_staff_dialog_only() {
        let mut notice = OutboundMessage::text("");
        notice.control = Some(Control::StaffNotice("Forwarded to an operator: https://panel/1".into()));
        let plan = plan(vec![notice], None);
        assert_eq!(plan.calls.len(), 1);
        assert_eq!(plan.calls[0].params["DIALOG_ID"], "chat12");
        assert!(plan.calls[0].params["MESSAGE"].as_str().unwrap().contains("https://panel/1"));
    }

    #[test]
    fn a_control_with_text_still_sends_the_text() {
        let mut closing = OutboundMessage::text("Bye");
        closing.control = Some(Control::Close);
        let plan = plan(vec![closing], None);
        assert_eq!(plan.calls.len(), 1);
        assert_eq!(plan.calls[0].params["MESSAGE"], "Bye");
    }
}
