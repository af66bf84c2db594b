//! Realistic Bitrix24 event bodies for unit tests, encoded the way PHP's
//! `http_build_query` does (percent-encoded brackets, `+` for spaces).

use serde_json::Value;
use switchboard_sdk::form::{decode_nested, encode};

pub const MEMBER_ID: &str = "d41d8cd98f00b204e9800998ecf8427e";
pub const APPLICATION_TOKEN: &str = "8006ddd764e69deb28af0c768b10ed65";
pub const ENDPOINT: &str = "https://p.bitrix24.com/rest/";

/// A private message, exactly as it arrives on the wire.
pub const PRIVATE_MESSAGE_BODY: &str = "event=ONIMBOTMESSAGEADD&event_handler_id=403\
&data%5BBOT%5D%5B55%5D%5Baccess_token%5D=bot-token-flat\
&data%5BBOT%5D%5B55%5D%5Bclient_endpoint%5D=https%3A%2F%2Fp.bitrix24.com%2Frest%2F\
&data%5BBOT%5D%5B55%5D%5BAUTH%5D%5Baccess_token%5D=bot-token\
&data%5BBOT%5D%5B55%5D%5BBOT_ID%5D=55&data%5BBOT%5D%5B55%5D%5BBOT_CODE%5D=switchboard\
&data%5BPARAMS%5D%5BMESSAGE%5D=Hello+world&data%5BPARAMS%5D%5BMESSAGE_TYPE%5D=P\
&data%5BPARAMS%5D%5BFROM_USER_ID%5D=2&data%5BPARAMS%5D%5BDIALOG_ID%5D=2\
&data%5BPARAMS%5D%5BTO_CHAT_ID%5D=1407&data%5BPARAMS%5D%5BAUTHOR_ID%5D=2\
&data%5BPARAMS%5D%5BSYSTEM%5D=N&data%5BPARAMS%5D%5BTO_USER_ID%5D=55\
&data%5BPARAMS%5D%5BMESSAGE_ID%5D=84331&data%5BPARAMS%5D%5BCHAT_TYPE%5D=P\
&data%5BPARAMS%5D%5BLANGUAGE%5D=en\
&data%5BUSER%5D%5BID%5D=2&data%5BUSER%5D%5BNAME%5D=Emily+Smith\
&data%5BUSER%5D%5BFIRST_NAME%5D=Emily&data%5BUSER%5D%5BLAST_NAME%5D=Smith\
&data%5BUSER%5D%5BIS_BOT%5D=N&data%5BUSER%5D%5BIS_CONNECTOR%5D=N\
&data%5BUSER%5D%5BIS_NETWORK%5D=N&data%5BUSER%5D%5BIS_EXTRANET%5D=N\
&ts=1771928985\
&auth%5Baccess_token%5D=user-token&auth%5Bexpires_in%5D=3600&auth%5Bscope%5D=imbot%2Cim\
&auth%5Bdomain%5D=p.bitrix24.com\
&auth%5Bclient_endpoint%5D=https%3A%2F%2Fp.bitrix24.com%2Frest%2F\
&auth%5Bmember_id%5D=d41d8cd98f00b204e9800998ecf8427e&auth%5Buser_id%5D=2\
&auth%5Bapplication_token%5D=8006ddd764e69deb28af0c768b10ed65";

fn auth_pairs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("auth[access_token]", "user-token"),
        ("auth[scope]", "imbot,im"),
        ("auth[domain]", "p.bitrix24.com"),
        ("auth[client_endpoint]", ENDPOINT),
        ("auth[member_id]", MEMBER_ID),
        ("auth[application_token]", APPLICATION_TOKEN),
    ]
}

fn bot_pairs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("data[BOT][55][AUTH][access_token]", "bot-token"),
        ("data[BOT][55][access_token]", "bot-token-flat"),
        ("data[BOT][55][BOT_ID]", "55"),
        ("data[BOT][55][BOT_CODE]", "switchboard"),
    ]
}

fn user_pairs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("data[USER][ID]", "2"),
        ("data[USER][NAME]", "John Doe"),
        ("data[USER][FIRST_NAME]", "John"),
        ("data[USER][LAST_NAME]", "Doe"),
        ("data[USER][IS_BOT]", "N"),
        ("data[USER][IS_CONNECTOR]", "N"),
        ("data[USER][IS_NETWORK]", "N"),
        ("data[USER][IS_EXTRANET]", "N"),
    ]
}

/// Encode pairs like `http_build_query`.
pub fn body(pairs: &[(&str, &str)]) -> Vec<u8> {
    let owned: Vec<(String, String)> = pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
    encode(&owned).into_bytes()
}

fn tree(parts: &[Vec<(&str, &str)>]) -> Value {
    decode_nested(&body(&parts.concat()))
}

/// [`PRIVATE_MESSAGE_BODY`] decoded.
pub fn private_message() -> Value {
    decode_nested(PRIVATE_MESSAGE_BODY.as_bytes())
}

/// A private message whose authorizations carry refresh tokens and expiry
/// times (as ONIMBOTMESSAGEADD does when the application has them).
pub fn refreshable_message() -> Value {
    let params = vec![
        ("event", "ONIMBOTMESSAGEADD"),
        ("data[BOT][55][AUTH][refresh_token]", "bot-refresh-token"),
        ("data[BOT][55][AUTH][expires]", "1771932585"),
        ("data[BOT][55][AUTH][expires_in]", "3600"),
        ("data[BOT][55][refresh_token]", "bot-refresh-token-flat"),
        ("data[BOT][55][expires]", "1771932585"),
        ("data[PARAMS][MESSAGE]", "Hello"),
        ("data[PARAMS][DIALOG_ID]", "2"),
        ("data[PARAMS][FROM_USER_ID]", "2"),
        ("data[PARAMS][TO_USER_ID]", "55"),
        ("data[PARAMS][MESSAGE_ID]", "84332"),
        ("auth[refresh_token]", "user-refresh-token"),
        ("auth[expires]", "1771932500"),
        ("auth[expires_in]", "3600"),
    ];
    tree(&[params, bot_pairs(), user_pairs(), auth_pairs()])
}

/// A group-chat message mentioning the bot.
pub fn group_message() -> Value {
    let params = vec![
        ("event", "ONIMBOTMESSAGEADD"),
        ("data[PARAMS][MESSAGE]", "[USER=55]Bot[/USER], hello team"),
        ("data[PARAMS][MESSAGE_TYPE]", "C"),
        ("data[PARAMS][FROM_USER_ID]", "2"),
        ("data[PARAMS][DIALOG_ID]", "chat7"),
        ("data[PARAMS][TO_CHAT_ID]", "7"),
        ("data[PARAMS][CHAT_ID]", "7"),
        ("data[PARAMS][AUTHOR_ID]", "2"),
        ("data[PARAMS][CHAT_AUTHOR_ID]", "2"),
        ("data[PARAMS][CHAT_TITLE]", "client chat John Doe"),
        ("data[PARAMS][CHAT_ENTITY_TYPE]", "LINES"),
        ("data[PARAMS][CHAT_ENTITY_ID]", "separator|3|7778889966|13"),
        ("data[PARAMS][CHAT_ENTITY_DATA_1]", "Y|DEAL|1|N|N|17|1765971491|0|0|0"),
        ("data[PARAMS][CHAT_ENTITY_DATA_2]", "LEAD|0|COMPANY|0|CONTACT|1|DEAL|1"),
        ("data[PARAMS][MESSAGE_ID]", "456"),
        ("data[PARAMS][SYSTEM]", "N"),
        ("data[PARAMS][TO_USER_ID]", "55"),
        ("data[PARAMS][LANGUAGE]", "en"),
    ];
    tree(&[params, bot_pairs(), user_pairs(), auth_pairs()])
}

/// `/echo test` invoked in a private chat (ONIMCOMMANDADD).
pub fn command() -> Value {
    let params = vec![
        ("event", "ONIMCOMMANDADD"),
        ("data[COMMAND][12][AUTH][access_token]", "command-bot-token"),
        ("data[COMMAND][12][BOT_ID]", "62"),
        ("data[COMMAND][12][BOT_CODE]", "echobot"),
        ("data[COMMAND][12][COMMAND]", "echo"),
        ("data[COMMAND][12][COMMAND_ID]", "12"),
        ("data[COMMAND][12][COMMAND_PARAMS]", "test"),
        ("data[COMMAND][12][COMMAND_CONTEXT]", "TEXTAREA"),
        ("data[COMMAND][12][MESSAGE_ID]", "1221"),
        ("data[PARAMS][DIALOG_ID]", "1"),
        ("data[PARAMS][CHAT_TYPE]", "P"),
        ("data[PARAMS][MESSAGE]", "/echo test"),
        ("data[PARAMS][FROM_USER_ID]", "1"),
        ("data[PARAMS][TO_USER_ID]", "62"),
        ("data[PARAMS][LANGUAGE]", "de"),
        ("data[USER][ID]", "1"),
        ("data[USER][NAME]", "Eugene Shelenkov"),
    ];
    tree(&[params, auth_pairs()])
}

/// A voice message: a file and no text.
pub fn file_without_text() -> Value {
    let params = vec![
        ("event", "ONIMBOTMESSAGEADD"),
        ("data[PARAMS][MESSAGE]", ""),
        ("data[PARAMS][DIALOG_ID]", "2"),
        ("data[PARAMS][FROM_USER_ID]", "2"),
        ("data[PARAMS][MESSAGE_ID]", "500"),
        ("data[PARAMS][FILES][48][id]", "48"),
        ("data[PARAMS][FILES][48][chatId]", "1407"),
        ("data[PARAMS][FILES][48][type]", "file"),
        ("data[PARAMS][FILES][48][name]", "voice message.mp3"),
        ("data[PARAMS][FILES][48][size]", "20480"),
        ("data[PARAMS][FILES][48][urlDownload]", "https://p.bitrix24.com/disk/downloadFile/48/"),
        ("data[PARAMS][FILES][48][viewerAttrs][viewerType]", "audio"),
        ("data[PARAMS][PARAMS][FILE_ID][0]", "48"),
    ];
    tree(&[params, bot_pairs(), user_pairs(), auth_pairs()])
}

/// The bot was added to group chat `chat7`.
pub fn join_chat() -> Value {
    let params = vec![
        ("event", "ONIMBOTJOINCHAT"),
        ("data[PARAMS][DIALOG_ID]", "chat7"),
        ("data[PARAMS][BOT_ID]", "55"),
        ("data[PARAMS][USER_ID]", "2"),
        ("data[PARAMS][CHAT_TYPE]", "C"),
        ("data[PARAMS][LANGUAGE]", "en"),
    ];
    tree(&[params, bot_pairs(), user_pairs(), auth_pairs()])
}

/// An event with the given name and only the authorization block.
pub fn bare(event: &'static str) -> Value {
    tree(&[vec![("event", event), ("data[BOT_ID]", "55")], auth_pairs()])
}

/// Override one leaf of a decoded event.
pub fn with(mut tree: Value, path: &[&str], value: &str) -> Value {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut node = &mut tree;
    for key in parents {
        node = node.as_object_mut().expect("object").entry(key.to_string()).or_insert_with(|| Value::Object(Default::default()));
    }
    node.as_object_mut().expect("object").insert(last.to_string(), Value::String(value.to_string()));
    tree
}
