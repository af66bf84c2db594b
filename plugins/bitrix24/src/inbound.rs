//! Turn verified Bitrix24 events into normalized messages. Pure: takes the
//! decoded event, the portal's installation record and settings.

use crate::event::{EventView, FileInfo, first_non_empty};
use crate::installation::Installation;
use crate::plain_text::strip_bbcode;
use crate::reply_context::ReplyContext;
use crate::variables::{Extras, bitbot_variables};
use switchboard_sdk::{AddressedReply, Attachment, Command, ConversationRef, InboundMessage, OutboundMessage, RequestError, Sender, Translated};

/// Settings that shape translation.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Sent (as Markdown) when the bot joins a chat; `None` sends nothing.
    pub welcome_message: Option<String>,
}

/// How loud a note about the event should be logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteLevel {
    /// Routine detail.
    Debug,
    /// Worth an operator's attention.
    Info,
}

/// The translation plus an optional line for the host log.
#[derive(Debug)]
pub struct Outcome {
    /// What to hand back to the host.
    pub translated: Translated,
    /// A log line describing what was done, if any.
    pub note: Option<(NoteLevel, String)>,
}

impl Outcome {
    fn ignored(level: NoteLevel, note: String) -> Self {
        Self { translated: Translated::ignored(), note: Some((level, note)) }
    }

    fn message(message: InboundMessage) -> Self {
        let mut translated = Translated::ignored();
        translated.messages.push(message);
        Self { translated, note: None }
    }

    fn direct_reply(reply: AddressedReply) -> Self {
        let mut translated = Translated::ignored();
        translated.direct_replies.push(reply);
        Self { translated, note: None }
    }
}

/// Translate a verified event (anything but ONAPPINSTALL/ONAPPUNINSTALL).
pub fn translate_event(view: &EventView, installed: Option<&Installation>, settings: &Settings) -> Result<Outcome, RequestError> {
    let event = view.name().unwrap_or_default();
    match event.as_str() {
        "ONIMBOTMESSAGEADD" | "ONIMCOMMANDADD" => message_event(view, installed),
        "ONIMBOTJOINCHAT" => join_event(view, installed, settings),
        "ONIMBOTDELETE" => Ok(Outcome::ignored(
            NoteLevel::Info,
            format!("Bitrix24 bot {} ({}) was deleted on portal {}", view.bot_id(), view.text(&["data", "BOT_CODE"]), view.member_id().unwrap_or_default()),
        )),
        other => Ok(Outcome::ignored(NoteLevel::Debug, format!("ignoring Bitrix24 event {other}"))),
    }
}

/// Where a reply goes: the conversation key parts and the reply context.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Dialog {
    member_id: String,
    context: ReplyContext,
}

impl Dialog {
    fn from_event(view: &EventView, installed: Option<&Installation>) -> Result<Self, RequestError> {
        let installed_endpoint = installed.map(|record| record.client_endpoint.as_str());
        let member_id = view.member_id().unwrap_or_default();
        let (bot_token, refresh_token, expires) = reply_token(view);
        let context = ReplyContext {
            client_endpoint: view.client_endpoint(installed_endpoint),
            bot_token,
            bot_id: view.bot_id(),
            dialog_id: view.param("DIALOG_ID"),
            chat_id: first_non_empty([view.param("CHAT_ID"), view.param("TO_CHAT_ID")]),
            member_id: member_id.clone(),
            refresh_token,
            token_expires: expires,
        };
        let missing = [
            ("auth[member_id]", member_id.is_empty()),
            ("BOT_ID (data[BOT] or data[COMMAND])", context.bot_id.is_empty()),
            ("data[PARAMS][DIALOG_ID]", context.dialog_id.is_empty()),
            ("auth[client_endpoint]", context.client_endpoint.is_empty()),
        ];
        if let Some((field, _)) = missing.iter().find(|(_, absent)| *absent) {
            return Err(RequestError::BadRequest(format!("Bitrix24 event lacks {field}")));
        }
        Ok(Self { member_id, context })
    }

    /// `{member_id}:{BOT_ID}:{suffix}`: ids scoped like the conversation.
    fn scoped(&self, suffix: &str) -> String {
        format!("{}:{}:{suffix}", self.member_id, self.context.bot_id)
    }

    /// BitBot's key: `{member_id}:{BOT_ID}:{DIALOG_ID}`.
    fn conversation(&self) -> ConversationRef {
        ConversationRef { id: format!("{}:{}:{}", self.member_id, self.context.bot_id, self.context.dialog_id), reply_context: self.context.to_json() }
    }
}

/// The token replies are sent with, the refresh token that came with it and
/// when it expires (Unix seconds, 0 when unknown): the bot's own token from
/// the event, else the token of the user who triggered the event.
fn reply_token(view: &EventView) -> (String, String, u64) {
    let parse = |expires: String| expires.trim().parse::<u64>().unwrap_or(0);
    let bot_token = view.bot_access_token();
    if bot_token.is_empty() {
        return (view.auth("access_token"), view.auth("refresh_token"), parse(view.auth("expires")));
    }
    // `refresh_token` is not in every bot block; any refresh token of the
    // application on this portal yields a token that can act as the bot.
    let refresh_token = first_non_empty([view.bot_auth("refresh_token"), view.auth("refresh_token")]);
    let expires = first_non_empty([view.bot_auth("expires"), view.auth("expires")]);
    (bot_token, refresh_token, parse(expires))
}

/// The message's id for the host's deduplication: `{member_id}:{BOT_ID}:{MESSAGE_ID}`
/// (a MESSAGE_ID is unique within a portal, and one message can reach several
/// bots), empty when the event has no MESSAGE_ID. A command event gets its
/// own id (`…:{MESSAGE_ID}:command:{COMMAND_ID}`): it is a different event
/// from the ONIMBOTMESSAGEADD of the same message and is answered differently.
fn message_id(view: &EventView, dialog: &Dialog, command: Option<&Command>) -> String {
    let message_id = first_non_empty([view.param("MESSAGE_ID"), view.command().map(|entry| entry.text("MESSAGE_ID")).unwrap_or_default()]);
    match (message_id.trim(), command) {
        ("", _) => String::new(),
        (id, Some(command)) if view.name().as_deref() == Some("ONIMCOMMANDADD") => dialog.scoped(&format!("{id}:command:{}", command.id)),
        (id, _) => dialog.scoped(id),
    }
}

/// Messages we do not pass on: system notices and messages written by
/// bots (which could make two bots answer each other forever). Open Lines
/// clients arrive as connector users (`IS_CONNECTOR=Y`, `IS_BOT=N`) and pass.
fn skip_reason(view: &EventView) -> Option<String> {
    if view.param("SYSTEM") == "Y" {
        return Some(format!("ignoring Bitrix24 system message {}", view.param("MESSAGE_ID")));
    }
    if view.user("IS_BOT") == "Y" {
        return Some(format!("ignoring Bitrix24 message {} written by bot user {}", view.param("MESSAGE_ID"), view.user("ID")));
    }
    None
}

fn message_event(view: &EventView, installed: Option<&Installation>) -> Result<Outcome, RequestError> {
    if let Some(reason) = skip_reason(view) {
        return Ok(Outcome::ignored(NoteLevel::Debug, reason));
    }
    let dialog = Dialog::from_event(view, installed)?;
    let files = view.files();
    let command = command_of(view);
    let text = message_text(view, &files);
    if text.is_empty() && command.is_none() {
        return Ok(Outcome::ignored(NoteLevel::Debug, "ignoring an empty Bitrix24 message".into()));
    }
    let extras = Extras { client_endpoint: &dialog.context.client_endpoint, user_access_token: installed.map_or("", |record| record.access_token.as_str()) };
    Ok(Outcome::message(InboundMessage {
        id: message_id(view, &dialog, command.as_ref()),
        conversation: dialog.conversation(),
        sender: sender_of(view),
        text,
        attachments: files.iter().map(attachment_of).collect(),
        command,
        variables: bitbot_variables(view, extras),
    }))
}

fn join_event(view: &EventView, installed: Option<&Installation>, settings: &Settings) -> Result<Outcome, RequestError> {
    let Some(welcome) = settings.welcome_message.as_deref() else {
        return Ok(Outcome::ignored(NoteLevel::Debug, format!("bot joined Bitrix24 dialog {}; no welcome_message configured", view.param("DIALOG_ID"))));
    };
    let dialog = Dialog::from_event(view, installed)?;
    let mut outcome =
        Outcome::direct_reply(AddressedReply { conversation: dialog.conversation(), in_reply_to: None, messages: vec![OutboundMessage::text(welcome)] });
    // ONIMBOTJOINCHAT has no message or event id. Joining one dialog is one
    // event, so `join:{member_id}:{BOT_ID}:{DIALOG_ID}` makes a join that
    // Bitrix24 (or a proxy) delivers again welcome once; the price is that
    // a bot removed and added back to the same chat within the host's
    // dedupe window (24 h by default) is not welcomed a second time.
    outcome.translated.event_id = Some(format!("join:{}", dialog.scoped(&dialog.context.dialog_id)));
    Ok(outcome)
}

/// The text the user typed, BBCode removed. In group chats Bitrix24 cuts
/// the bot mention but leaves its trailing comma. A file without text
/// reads `File sent: {name}` (BitBot's convention).
fn message_text(view: &EventView, files: &[FileInfo]) -> String {
    let typed = strip_bbcode(&view.param("MESSAGE"));
    let mut text = typed.trim();
    if view.param("DIALOG_ID").starts_with("chat") {
        text = text.trim_start_matches([',', ':']).trim_start();
    }
    if !text.is_empty() {
        return text.to_string();
    }
    let names: Vec<&str> = files.iter().map(|file| if file.name.is_empty() { file.id.as_str() } else { file.name.as_str() }).collect();
    match (names.is_empty(), view.first_file_id()) {
        (false, _) => format!("File sent: {}", names.join(", ")),
        (true, id) if !id.is_empty() => format!("File sent: file {id}"),
        _ => String::new(),
    }
}

fn command_of(view: &EventView) -> Option<Command> {
    let entry = view.command()?;
    Some(Command { id: entry.id("COMMAND_ID"), name: entry.text("COMMAND").trim_start_matches('/').to_string(), params: entry.text("COMMAND_PARAMS") })
}

fn sender_of(view: &EventView) -> Sender {
    let full_name = format!("{} {}", view.user("FIRST_NAME"), view.user("LAST_NAME"));
    let display_name = first_non_empty([view.user("NAME"), full_name.trim().to_string()]);
    Sender {
        id: first_non_empty([view.user("ID"), view.param("FROM_USER_ID"), view.param("AUTHOR_ID")]),
        display_name: Some(display_name).filter(|name| !name.is_empty()),
        is_bot: view.user("IS_BOT") == "Y",
    }
}

fn attachment_of(file: &FileInfo) -> Attachment {
    let kind = match file.kind.as_str() {
        "image" | "video" | "audio" => file.kind.clone(),
        _ => "file".to_string(),
    };
    Attachment {
        id: file.id.clone(),
        name: first_non_empty([file.name.clone(), format!("file {}", file.id)]),
        kind,
        url: Some(file.download_url.clone()).filter(|url| !url.is_empty()),
        size: file.size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_events::{self, APPLICATION_TOKEN, ENDPOINT, MEMBER_ID, with};
    use serde_json::Value;

    fn translate(tree: &Value) -> Outcome {
        translate_event(&EventView::new(tree), None, &Settings::default()).unwrap()
    }

    fn only_message(tree: &Value) -> InboundMessage {
        let outcome = translate(tree);
        assert_eq!(outcome.translated.messages.len(), 1, "{outcome:?}");
        outcome.translated.messages.into_iter().next().unwrap()
    }

    fn context_of(message: &InboundMessage) -> ReplyContext {
        ReplyContext::from_json(&message.conversation.reply_context).unwrap()
    }

    #[test]
    fn private_message_from_the_wire() {
        let message = only_message(&test_events::private_message());
        assert_eq!(message.id, format!("{MEMBER_ID}:55:84331"), "{{member_id}}:{{BOT_ID}}:{{MESSAGE_ID}}");
        assert_eq!(message.conversation.id, format!("{MEMBER_ID}:55:2"));
        assert_eq!(message.text, "Hello world");
        assert_eq!(message.sender.id, "2");
        assert_eq!(message.sender.display_name.as_deref(), Some("Emily Smith"));
        assert!(!message.sender.is_bot);
        assert!(message.command.is_none() && message.attachments.is_empty());
        let context = context_of(&message);
        assert_eq!(context.client_endpoint, ENDPOINT);
        assert_eq!(context.bot_token, "bot-token");
        assert_eq!((context.bot_id.as_str(), context.dialog_id.as_str()), ("55", "2"));
        assert_eq!(context.member_id, MEMBER_ID);
        assert_eq!(message.variables.len(), crate::variables::NAMES.len());
        assert!(!message.conversation.reply_context.contains(APPLICATION_TOKEN));
    }

    #[test]
    fn group_chat_message_uses_the_chat_dialog() {
        let message = only_message(&test_events::group_message());
        assert_eq!(message.id, format!("{MEMBER_ID}:55:456"));
        assert_eq!(message.conversation.id, format!("{MEMBER_ID}:55:chat7"));
        assert_eq!(message.text, "Bot, hello team");
        assert_eq!(context_of(&message).dialog_id, "chat7");
        assert_eq!(message.sender.display_name.as_deref(), Some("John Doe"));
    }

    #[test]
    fn group_chat_mention_leftovers_are_trimmed() {
        let tree = with(test_events::group_message(), &["data", "PARAMS", "MESSAGE"], ", how do I set up the menu");
        assert_eq!(only_message(&tree).text, "how do I set up the menu");
    }

    #[test]
    fn command_event_carries_the_command() {
        let message = only_message(&test_events::command());
        let command = message.command.clone().expect("command");
        assert_eq!((command.id.as_str(), command.name.as_str(), command.params.as_str()), ("12", "echo", "test"));
        assert_eq!(message.text, "/echo test");
        assert_eq!(message.id, format!("{MEMBER_ID}:62:1221:command:12"));
        assert_eq!(message.conversation.id, format!("{MEMBER_ID}:62:1"));
        assert_eq!(context_of(&message).bot_token, "command-bot-token");
        assert_eq!(message.sender.display_name.as_deref(), Some("Eugene Shelenkov"));
    }

    #[test]
    fn file_without_text_is_described() {
        let message = only_message(&test_events::file_without_text());
        assert_eq!(message.text, "File sent: voice message.mp3");
        let attachment = &message.attachments[0];
        assert_eq!(attachment.id, "48");
        assert_eq!(attachment.name, "voice message.mp3");
        assert_eq!(attachment.kind, "file");
        assert_eq!(attachment.url.as_deref(), Some("https://p.bitrix24.com/disk/downloadFile/48/"));
        assert_eq!(attachment.size, Some(20480));
    }

    #[test]
    fn bot_and_system_messages_are_skipped() {
        let from_bot = with(test_events::group_message(), &["data", "USER", "IS_BOT"], "Y");
        assert!(translate(&from_bot).translated.messages.is_empty());
        let system = with(test_events::group_message(), &["data", "PARAMS", "SYSTEM"], "Y");
        assert!(translate(&system).translated.messages.is_empty());
        let connector = with(test_events::group_message(), &["data", "USER", "IS_CONNECTOR"], "Y");
        assert_eq!(translate(&connector).translated.messages.len(), 1);
    }

    #[test]
    fn bot_token_falls_back_to_the_flat_field_then_the_user_token() {
        let mut tree = test_events::private_message();
        tree["data"]["BOT"]["55"].as_object_mut().unwrap().remove("AUTH");
        assert_eq!(context_of(&only_message(&tree)).bot_token, "bot-token-flat");
        tree["data"]["BOT"]["55"].as_object_mut().unwrap().remove("access_token");
        assert_eq!(context_of(&only_message(&tree)).bot_token, "user-token");
    }

    #[test]
    fn installed_token_becomes_user_access_token() {
        let tree = test_events::private_message();
        let record = Installation { access_token: "installer-token".into(), ..Installation::default() };
        let outcome = translate_event(&EventView::new(&tree), Some(&record), &Settings::default()).unwrap();
        let variables = &outcome.translated.messages[0].variables;
        assert!(variables.contains(&("user_access_token".into(), "installer-token".into())));
    }

    #[test]
    fn message_without_dialog_is_a_bad_request() {
        let mut tree = test_events::private_message();
        tree["data"]["PARAMS"].as_object_mut().unwrap().remove("DIALOG_ID");
        let error = translate_event(&EventView::new(&tree), None, &Settings::default()).unwrap_err();
        assert!(matches!(error, RequestError::BadRequest(m) if m.contains("DIALOG_ID")));
    }

    #[test]
    fn join_sends_the_welcome_only_when_configured() {
        let tree = test_events::join_chat();
        assert!(translate(&tree).translated.direct_replies.is_empty());
        let settings = Settings { welcome_message: Some("Hi, I am **the bot**".into()) };
        let outcome = translate_event(&EventView::new(&tree), None, &settings).unwrap();
        let reply = &outcome.translated.direct_replies[0];
        assert_eq!(reply.conversation.id, format!("{MEMBER_ID}:55:chat7"));
        assert_eq!(reply.messages[0].text, "Hi, I am **the bot**");
        assert!(outcome.translated.messages.is_empty());
        assert_eq!(outcome.translated.event_id, Some(format!("join:{MEMBER_ID}:55:chat7")), "the same join delivered again welcomes once");
        let elsewhere = with(tree, &["data", "PARAMS", "DIALOG_ID"], "chat8");
        let other = translate_event(&EventView::new(&elsewhere), None, &settings).unwrap();
        assert_eq!(other.translated.event_id, Some(format!("join:{MEMBER_ID}:55:chat8")));
    }

    #[test]
    fn message_ids_scope_the_platform_id_and_may_be_empty() {
        let file = only_message(&test_events::file_without_text());
        assert_eq!(file.id, format!("{MEMBER_ID}:55:500"));
        // Another bot of the same portal hearing the same message keeps its own id.
        let mut other_bot = test_events::private_message();
        let bot = other_bot["data"]["BOT"]["55"].clone();
        other_bot["data"]["BOT"] = serde_json::json!({"56": bot});
        other_bot["data"]["BOT"]["56"]["BOT_ID"] = "56".into();
        other_bot["data"]["PARAMS"]["TO_USER_ID"] = "56".into();
        assert_eq!(only_message(&other_bot).id, format!("{MEMBER_ID}:56:84331"));
        // No MESSAGE_ID: no deduplication.
        let mut anonymous = test_events::private_message();
        anonymous["data"]["PARAMS"].as_object_mut().unwrap().remove("MESSAGE_ID");
        assert_eq!(only_message(&anonymous).id, "");
        let blank = with(test_events::group_message(), &["data", "PARAMS", "MESSAGE_ID"], " ");
        assert_eq!(only_message(&blank).id, "");
        // A command event without data[PARAMS][MESSAGE_ID] uses the command's.
        let mut command = test_events::command();
        command["data"]["PARAMS"].as_object_mut().unwrap().remove("MESSAGE_ID");
        assert_eq!(only_message(&command).id, format!("{MEMBER_ID}:62:1221:command:12"));
    }

    #[test]
    fn the_reply_context_carries_what_refreshing_needs() {
        let refreshable = test_events::refreshable_message();
        let context = context_of(&only_message(&refreshable));
        assert_eq!(context.bot_token, "bot-token");
        assert_eq!(context.refresh_token, "bot-refresh-token");
        assert_eq!(context.token_expires, 1_771_932_585);
        assert_eq!(context.member_id, MEMBER_ID);
        // Without the bot's refresh token, the event's (same application) serves.
        let mut user_refresh = refreshable.clone();
        for entry in ["AUTH", "refresh_token"] {
            let bot = user_refresh["data"]["BOT"]["55"].as_object_mut().unwrap();
            if entry == "AUTH" {
                bot["AUTH"].as_object_mut().unwrap().remove("refresh_token");
            } else {
                bot.remove("refresh_token");
            }
        }
        assert_eq!(context_of(&only_message(&user_refresh)).refresh_token, "user-refresh-token");
        // No bot token at all: the user's token, refresh token and expiry.
        let mut user_only = refreshable;
        let bot = user_only["data"]["BOT"]["55"].as_object_mut().unwrap();
        bot.remove("AUTH");
        bot.remove("access_token");
        let context = context_of(&only_message(&user_only));
        assert_eq!((context.bot_token.as_str(), context.refresh_token.as_str(), context.token_expires), ("user-token", "user-refresh-token", 1_771_932_500));
        // The wire sample has no expiry: 0 (unknown).
        assert_eq!(context_of(&only_message(&test_events::private_message())).token_expires, 0);
    }

    #[test]
    fn bot_delete_and_unknown_events_are_ignored_with_a_note() {
        let deleted = translate(&test_events::bare("ONIMBOTDELETE"));
        assert!(deleted.translated.messages.is_empty());
        assert!(matches!(deleted.note, Some((NoteLevel::Info, ref text)) if text.contains("bot 55")));
        let unknown = translate(&test_events::bare("ONIMBOTMESSAGEUPDATE"));
        assert!(matches!(unknown.note, Some((NoteLevel::Debug, _))));
    }
}
