//! The BitBot variable list handed to providers with every message.
//! Every name is always present (empty when the event lacks it), so bots
//! built for BitBot (Dify inputs, Typebot prefilled variables) keep working.

use crate::event::{EventView, first_non_empty};
use switchboard_sdk::Pairs;

/// BitBot's variable names, in BitBot's order.
pub const NAMES: [&str; 30] = [
    "event",
    "scope",
    "client_endpoint",
    "access_token",
    "user_access_token",
    "bot_access_token",
    "BOT_ID",
    "DIALOG_ID",
    "CHAT_ID",
    "MESSAGE_ID",
    "MESSAGE",
    "AUTHOR_ID",
    "USER_ID",
    "CHAT_AUTHOR_ID",
    "FIRST_NAME",
    "LAST_NAME",
    "IS_BOT",
    "IS_CONNECTOR",
    "IS_NETWORK",
    "IS_EXTRANET",
    "COMMAND_ID",
    "COMMAND",
    "COMMAND_PARAMS",
    "CHAT_TITLE",
    "LANGUAGE",
    "CHAT_ENTITY_DATA_1",
    "CHAT_ENTITY_DATA_2",
    "CHAT_ENTITY_ID",
    "file_id",
    "file_type",
];

/// Values that do not come straight from the event.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extras<'a> {
    /// The resolved REST base URL.
    pub client_endpoint: &'a str,
    /// The OAuth token recorded at ONAPPINSTALL for this portal, if any.
    pub user_access_token: &'a str,
}

/// All BitBot variables for one message event.
pub fn bitbot_variables(view: &EventView, extras: Extras) -> Pairs {
    NAMES.iter().map(|name| (name.to_string(), value_of(name, view, extras))).collect()
}

fn value_of(name: &str, view: &EventView, extras: Extras) -> String {
    match name {
        "event" => view.name().unwrap_or_default(),
        "scope" => view.auth("scope"),
        "client_endpoint" => extras.client_endpoint.to_string(),
        "access_token" => view.auth("access_token"),
        "user_access_token" => extras.user_access_token.to_string(),
        "bot_access_token" => view.bot_access_token(),
        "BOT_ID" => view.bot_id(),
        "CHAT_ID" => first_non_empty([view.param("CHAT_ID"), view.param("TO_CHAT_ID")]),
        "MESSAGE_ID" => first_non_empty([view.param("MESSAGE_ID"), command_field(view, "MESSAGE_ID")]),
        "AUTHOR_ID" => first_non_empty([view.param("AUTHOR_ID"), view.param("FROM_USER_ID")]),
        "USER_ID" => first_non_empty([view.user("ID"), view.param("FROM_USER_ID")]),
        "FIRST_NAME" | "LAST_NAME" | "IS_BOT" | "IS_CONNECTOR" | "IS_NETWORK" | "IS_EXTRANET" => view.user(name),
        "COMMAND_ID" | "COMMAND" | "COMMAND_PARAMS" => command_field(view, name),
        "file_id" => first_file(view).map_or_else(|| view.first_file_id(), |file| file.id),
        "file_type" => first_file(view).map(file_type).unwrap_or_default(),
        // DIALOG_ID, MESSAGE, CHAT_AUTHOR_ID, CHAT_TITLE, LANGUAGE, CHAT_ENTITY_*
        _ => view.param(name),
    }
}

fn command_field(view: &EventView, field: &str) -> String {
    view.command().map(|command| command.text(field)).unwrap_or_default()
}

fn first_file(view: &EventView) -> Option<crate::event::FileInfo> {
    view.files().into_iter().next()
}

/// BitBot passes Bitrix24's `viewerType`; fall back to the file's `type`.
fn file_type(file: crate::event::FileInfo) -> String {
    first_non_empty([file.viewer_type, file.kind])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_events;

    fn lookup<'a>(pairs: &'a Pairs, name: &str) -> &'a str {
        pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).unwrap_or_else(|| panic!("variable {name} missing"))
    }

    #[test]
    fn every_bitbot_name_is_present_exactly_once_even_when_empty() {
        let tree = switchboard_sdk::form::decode_nested(b"event=ONIMBOTMESSAGEADD");
        let pairs = bitbot_variables(&EventView::new(&tree), Extras::default());
        let names: Vec<&str> = pairs.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(names, NAMES);
        assert!(pairs[1..].iter().all(|(_, value)| value.is_empty()));
    }

    #[test]
    fn fills_values_from_a_group_message() {
        let tree = test_events::group_message();
        let extras = Extras { client_endpoint: "https://p.bitrix24.com/rest/", user_access_token: "installer" };
        let pairs = bitbot_variables(&EventView::new(&tree), extras);
        let expected = [
            ("event", "ONIMBOTMESSAGEADD"),
            ("scope", "imbot,im"),
            ("client_endpoint", "https://p.bitrix24.com/rest/"),
            ("access_token", "user-token"),
            ("user_access_token", "installer"),
            ("bot_access_token", "bot-token"),
            ("BOT_ID", "55"),
            ("DIALOG_ID", "chat7"),
            ("CHAT_ID", "7"),
            ("MESSAGE_ID", "456"),
            ("MESSAGE", "[USER=55]Bot[/USER], hello team"),
            ("AUTHOR_ID", "2"),
            ("USER_ID", "2"),
            ("CHAT_AUTHOR_ID", "2"),
            ("FIRST_NAME", "John"),
            ("LAST_NAME", "Doe"),
            ("IS_BOT", "N"),
            ("IS_CONNECTOR", "N"),
            ("CHAT_TITLE", "client chat John Doe"),
            ("LANGUAGE", "en"),
            ("CHAT_ENTITY_DATA_1", "Y|DEAL|1|N|N|17|1765971491|0|0|0"),
            ("CHAT_ENTITY_ID", "separator|3|7778889966|13"),
            ("COMMAND", ""),
            ("file_id", ""),
        ];
        for (name, value) in expected {
            assert_eq!(lookup(&pairs, name), value, "variable {name}");
        }
    }

    #[test]
    fn fills_command_variables() {
        let tree = test_events::command();
        let pairs = bitbot_variables(&EventView::new(&tree), Extras::default());
        assert_eq!(lookup(&pairs, "COMMAND_ID"), "12");
        assert_eq!(lookup(&pairs, "COMMAND"), "echo");
        assert_eq!(lookup(&pairs, "COMMAND_PARAMS"), "test");
        assert_eq!(lookup(&pairs, "MESSAGE_ID"), "1221");
        assert_eq!(lookup(&pairs, "BOT_ID"), "62");
        assert_eq!(lookup(&pairs, "bot_access_token"), "command-bot-token");
    }

    #[test]
    fn fills_file_variables() {
        let tree = test_events::file_without_text();
        let pairs = bitbot_variables(&EventView::new(&tree), Extras::default());
        assert_eq!(lookup(&pairs, "file_id"), "48");
        assert_eq!(lookup(&pairs, "file_type"), "audio");
    }
}
