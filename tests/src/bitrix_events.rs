//! Real Bitrix24 event bodies, encoded exactly like PHP's `http_build_query`
//! (RFC 1738 style: brackets as `%5B`/`%5D`, spaces as `+`, everything but
//! `A-Za-z0-9-_.` percent-encoded with upper-case hex).
//!
//! Field layout follows the official examples (b24restdocs
//! `on-imbot-message-add.md`, `commands/events/index.md`) and the fields
//! BitBot passes on to providers (seed 000).

use crate::util::unix_now;
use std::sync::atomic::{AtomicU64, Ordering};

/// Source of the `MESSAGE_ID`s of events built with `message_id == 0`:
/// unique within the test process, and far from the small ids tests set
/// explicitly.
static NEXT_MESSAGE_ID: AtomicU64 = AtomicU64::new(7_000_001);

/// A `MESSAGE_ID` no other generated event has.
pub fn unique_message_id() -> u64 {
    NEXT_MESSAGE_ID.fetch_add(1, Ordering::Relaxed)
}

/// A file attached to a message (`data[PARAMS][FILES][{id}][...]`).
#[derive(Debug, Clone)]
pub struct FileParams {
    /// Disk file id, e.g. `48`.
    pub id: String,
    /// File name, e.g. `report.pdf`.
    pub name: String,
    /// Bitrix24 file type: `image`, `file`, `video` or `audio`.
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
    /// Download link.
    pub url_download: String,
}

/// A slash command (`data[COMMAND][{id}][...]`).
#[derive(Debug, Clone)]
pub struct CommandParams {
    /// Command id, e.g. `12`.
    pub id: String,
    /// Command without the slash, e.g. `help`.
    pub command: String,
    /// Everything after the command, e.g. `topic`.
    pub params: String,
}

/// The values an event is built from. Start from [`EventParams::private`]
/// or [`EventParams::group`] and adjust fields.
#[derive(Debug, Clone)]
pub struct EventParams {
    /// REST endpoint of the portal (`client_endpoint`), e.g. the fake's.
    pub client_endpoint: String,
    /// Portal domain.
    pub domain: String,
    /// Portal id.
    pub member_id: String,
    /// `auth[application_token]` and the bot's `application_token`.
    pub application_token: String,
    /// `auth[access_token]`: the token of the user who triggered the event.
    pub access_token: String,
    /// `auth[refresh_token]` (default `user-refresh-token-17`). The fake's
    /// OAuth server accepts any refresh token once.
    pub refresh_token: String,
    /// `data[BOT][{id}][refresh_token]` and its `AUTH[refresh_token]`
    /// (default `bot-refresh-token-55`).
    pub bot_refresh_token: String,
    /// `data[BOT][{id}][access_token]` and its `AUTH[access_token]`.
    pub bot_access_token: String,
    /// `auth[scope]`.
    pub scope: String,
    /// `event_handler_id`.
    pub event_handler_id: String,
    /// Bot id (`BOT_ID`).
    pub bot_id: u64,
    /// Bot code (`BOT_CODE`).
    pub bot_code: String,
    /// `DIALOG_ID`: the user id in a private chat, `chat{N}` in group chats.
    pub dialog_id: String,
    /// `CHAT_TYPE` / `MESSAGE_TYPE`: `P` private, `C` group, `L` open line.
    pub chat_type: String,
    /// `TO_CHAT_ID` (every chat) and `CHAT_ID` (group chats only).
    pub chat_id: u64,
    /// Group-chat fields (absent in private dialogs, as in real events).
    pub group: Option<GroupChat>,
    /// Message text (`data[PARAMS][MESSAGE]`).
    pub message: String,
    /// `MESSAGE_ID`. `0` (the default) gives every generated event a new
    /// unique id ([`unique_message_id`]), so messages built from the same
    /// parameters are not deduplicated against each other; resend the same
    /// body (or set an id with [`EventParams::with_message_id`]) to emulate
    /// Bitrix24 delivering one message twice.
    pub message_id: u64,
    /// Author's user id (`FROM_USER_ID`, `AUTHOR_ID`, `data[USER][ID]`, `auth[user_id]`).
    pub user_id: u64,
    /// `data[USER][FIRST_NAME]`.
    pub first_name: String,
    /// `data[USER][LAST_NAME]`.
    pub last_name: String,
    /// `data[USER][IS_BOT]` etc. (`Y`/`N` on the wire).
    pub is_bot: bool,
    /// `data[USER][IS_CONNECTOR]`: true for open-line clients from external messengers.
    pub is_connector: bool,
    /// `data[USER][IS_NETWORK]`.
    pub is_network: bool,
    /// `data[USER][IS_EXTRANET]`.
    pub is_extranet: bool,
    /// `LANGUAGE`.
    pub language: String,
    /// Optional attachment.
    pub file: Option<FileParams>,
    /// Command for [`command_add`] (defaults to `/help topic`, id 12).
    pub command: Option<CommandParams>,
    /// `ts`.
    pub ts: i64,
}

/// Fields Bitrix24 sends only for group chats and open lines.
#[derive(Debug, Clone)]
pub struct GroupChat {
    /// `CHAT_TITLE`.
    pub title: String,
    /// `CHAT_AUTHOR_ID`.
    pub author_id: u64,
    /// `CHAT_ENTITY_TYPE` (`LINES` for open channels).
    pub entity_type: String,
    /// `CHAT_ENTITY_ID`.
    pub entity_id: String,
    /// `CHAT_ENTITY_DATA_1`.
    pub entity_data_1: String,
    /// `CHAT_ENTITY_DATA_2`.
    pub entity_data_2: String,
}

impl EventParams {
    /// A private dialog with user 17 (`DIALOG_ID=17`), bot 55, portal `a1b2c3`.
    pub fn private(client_endpoint: &str) -> Self {
        let domain = client_endpoint.split("://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or("example.bitrix24.com").to_string();
        EventParams {
            client_endpoint: client_endpoint.to_string(),
            domain,
            member_id: "a1b2c3".into(),
            application_token: "app-token-123".into(),
            access_token: "user-access-token-17".into(),
            refresh_token: "user-refresh-token-17".into(),
            bot_refresh_token: "bot-refresh-token-55".into(),
            bot_access_token: "bot-access-token-55".into(),
            scope: "imbot,im".into(),
            event_handler_id: "403".into(),
            bot_id: 55,
            bot_code: "switchboard_bot".into(),
            dialog_id: "17".into(),
            chat_type: "P".into(),
            chat_id: 1407,
            group: None,
            message: "Hello, bot".into(),
            message_id: 0,
            user_id: 17,
            first_name: "John".into(),
            last_name: "Doe".into(),
            is_bot: false,
            is_connector: false,
            is_network: false,
            is_extranet: false,
            language: "en".into(),
            file: None,
            command: None,
            ts: unix_now(),
        }
    }

    /// An open-line group chat `chat7` (`CHAT_ENTITY_TYPE=LINES`) with the
    /// entity data from BitBot's example.
    pub fn group(client_endpoint: &str) -> Self {
        EventParams {
            dialog_id: "chat7".into(),
            chat_type: "L".into(),
            chat_id: 7,
            group: Some(GroupChat {
                title: "client chat John Doe".into(),
                author_id: 17,
                entity_type: "LINES".into(),
                entity_id: "separator|3|7778889966|13".into(),
                entity_data_1: "Y|DEAL|1|N|N|17|1765971491|0|0|0".into(),
                entity_data_2: "LEAD|0|COMPANY|0|CONTACT|1|DEAL|1".into(),
            }),
            is_connector: true,
            ..Self::private(client_endpoint)
        }
    }

    /// Set the message text.
    pub fn with_message(mut self, text: &str) -> Self {
        self.message = text.to_string();
        self
    }

    /// Set the message id. The host deduplicates on it: events with the
    /// same id count as one message delivered twice. `0` restores the
    /// default (a new unique id per generated event).
    pub fn with_message_id(mut self, id: u64) -> Self {
        self.message_id = id;
        self
    }

    /// Set the refresh tokens sent in `auth[refresh_token]` and the bot block.
    pub fn with_refresh_tokens(mut self, user: &str, bot: &str) -> Self {
        self.refresh_token = user.to_string();
        self.bot_refresh_token = bot.to_string();
        self
    }

    /// The `MESSAGE_ID` of the next generated event: the set one, or a new unique one.
    fn resolve_message_id(&self) -> u64 {
        if self.message_id == 0 { unique_message_id() } else { self.message_id }
    }

    /// Set the application token sent in `auth` and the bot block.
    pub fn with_application_token(mut self, token: &str) -> Self {
        self.application_token = token.to_string();
        self
    }

    /// Attach a file.
    pub fn with_file(mut self, id: &str, name: &str, kind: &str, url_download: &str) -> Self {
        self.file = Some(FileParams { id: id.into(), name: name.into(), kind: kind.into(), size: 204_800, url_download: url_download.into() });
        self
    }

    /// Set the command for [`command_add`].
    pub fn with_command(mut self, id: &str, command: &str, params: &str) -> Self {
        self.command = Some(CommandParams { id: id.into(), command: command.into(), params: params.into() });
        self
    }

    fn command_or_default(&self) -> CommandParams {
        self.command.clone().unwrap_or_else(|| CommandParams { id: "12".into(), command: "help".into(), params: "topic".into() })
    }

    fn expires(&self) -> String {
        (self.ts + 3600).to_string()
    }

    /// The `auth`-format fields of the bot (`data[BOT][{id}][...]` and its `AUTH`).
    fn bot_auth_fields(&self, with_client_id: bool) -> Vec<(String, String)> {
        let mut f = vec![
            ("access_token", self.bot_access_token.clone()),
            ("expires", self.expires()),
            ("expires_in", "3600".into()),
            ("scope", "imbot".into()),
            ("domain", self.domain.clone()),
            ("server_endpoint", "https://oauth.bitrix.info/rest/".into()),
            ("status", "L".into()),
            ("client_endpoint", self.client_endpoint.clone()),
            ("member_id", self.member_id.clone()),
            ("refresh_token", self.bot_refresh_token.clone()),
            ("user_id", self.bot_id.to_string()),
        ];
        if with_client_id {
            f.push(("client_id", crate::fake_bitrix::FakeBitrix::CLIENT_ID.into()));
        }
        f.push(("application_token", self.application_token.clone()));
        f.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// `data[BOT][{id}][...]`.
    fn push_bot(&self, out: &mut Vec<(String, String)>) {
        let prefix = format!("data[BOT][{}]", self.bot_id);
        for (k, v) in self.bot_auth_fields(true) {
            out.push((format!("{prefix}[{k}]"), v));
        }
        for (k, v) in self.bot_auth_fields(true) {
            out.push((format!("{prefix}[AUTH][{k}]"), v));
        }
        out.push((format!("{prefix}[BOT_ID]"), self.bot_id.to_string()));
        out.push((format!("{prefix}[BOT_CODE]"), self.bot_code.clone()));
    }

    /// `data[PARAMS][...]` of a message with this `MESSAGE_ID`.
    fn push_message_params(&self, out: &mut Vec<(String, String)>, message: &str, message_id: u64) {
        let p = |k: &str| format!("data[PARAMS][{k}]");
        out.push((p("MESSAGE"), message.to_string()));
        out.push((p("TEMPLATE_ID"), "796c45aa-70e5-45aa-930c-c7fb32710c62".into()));
        out.push((p("MESSAGE_TYPE"), self.chat_type.clone()));
        out.push((p("FROM_USER_ID"), self.user_id.to_string()));
        out.push((p("DIALOG_ID"), self.dialog_id.clone()));
        out.push((p("TO_CHAT_ID"), self.chat_id.to_string()));
        out.push((p("AUTHOR_ID"), self.user_id.to_string()));
        out.push((p("SYSTEM"), "N".into()));
        if let Some(g) = &self.group {
            out.push((p("CHAT_ID"), self.chat_id.to_string()));
            out.push((p("CHAT_TITLE"), g.title.clone()));
            out.push((p("CHAT_AUTHOR_ID"), g.author_id.to_string()));
            out.push((p("CHAT_TYPE"), self.chat_type.clone()));
            out.push((p("CHAT_AVATAR"), "0".into()));
            out.push((p("CHAT_COLOR"), "MINT".into()));
            out.push((p("CHAT_ENTITY_TYPE"), g.entity_type.clone()));
            out.push((p("CHAT_ENTITY_ID"), g.entity_id.clone()));
            out.push((p("CHAT_ENTITY_DATA_1"), g.entity_data_1.clone()));
            out.push((p("CHAT_ENTITY_DATA_2"), g.entity_data_2.clone()));
            out.push((p("CHAT_ENTITY_DATA_3"), String::new()));
            out.push((p("CHAT_EXTRANET"), "N".into()));
        } else {
            out.push((p("TO_USER_ID"), self.bot_id.to_string()));
        }
        if let Some(file) = &self.file {
            let f = |k: &str| format!("data[PARAMS][FILES][{}][{k}]", file.id);
            let extension = file.name.rsplit_once('.').map(|(_, e)| e.to_string()).unwrap_or_default();
            out.push((f("id"), file.id.clone()));
            out.push((f("chatId"), self.chat_id.to_string()));
            out.push((f("date"), "2026-11-21T10:15:30+00:00".into()));
            out.push((f("type"), file.kind.clone()));
            out.push((f("name"), file.name.clone()));
            out.push((f("extension"), extension));
            out.push((f("size"), file.size.to_string()));
            out.push((f("image"), String::new()));
            out.push((f("status"), "done".into()));
            out.push((f("progress"), "100".into()));
            out.push((f("authorId"), self.user_id.to_string()));
            out.push((f("authorName"), format!("{} {}", self.first_name, self.last_name)));
            out.push((f("urlPreview"), String::new()));
            out.push((f("urlShow"), file.url_download.clone()));
            out.push((f("urlDownload"), file.url_download.clone()));
            out.push((f("viewerAttrs][viewer"), String::new()));
            out.push((f("viewerAttrs][viewerType"), file.kind.clone()));
            out.push((f("viewerAttrs][title"), file.name.clone()));
            out.push((p("PARAMS][FILE_ID][0"), file.id.clone()));
        }
        out.push((p("COMMAND_CONTEXT"), "TEXTAREA".into()));
        out.push((p("CHAT_USER_COUNT"), "2".into()));
        out.push((p("PLATFORM_CONTEXT"), "web".into()));
        out.push((p("MESSAGE_ID"), message_id.to_string()));
        if self.group.is_none() {
            out.push((p("CHAT_TYPE"), self.chat_type.clone()));
        }
        out.push((p("LANGUAGE"), self.language.clone()));
    }

    /// `data[USER][...]`.
    fn push_user(&self, out: &mut Vec<(String, String)>) {
        let yn = |b: bool| if b { "Y" } else { "N" }.to_string();
        let u = |k: &str| format!("data[USER][{k}]");
        out.push((u("ID"), self.user_id.to_string()));
        out.push((u("NAME"), format!("{} {}", self.first_name, self.last_name)));
        out.push((u("FIRST_NAME"), self.first_name.clone()));
        out.push((u("LAST_NAME"), self.last_name.clone()));
        out.push((u("WORK_POSITION"), String::new()));
        out.push((u("GENDER"), "M".into()));
        out.push((u("IS_BOT"), yn(self.is_bot)));
        out.push((u("IS_CONNECTOR"), yn(self.is_connector)));
        out.push((u("IS_NETWORK"), yn(self.is_network)));
        out.push((u("IS_EXTRANET"), yn(self.is_extranet)));
    }

    /// `ts` and the top-level `auth[...]` (the triggering user's token).
    fn push_ts_auth(&self, out: &mut Vec<(String, String)>) {
        out.push(("ts".into(), self.ts.to_string()));
        let fields = [
            ("access_token", self.access_token.clone()),
            ("expires", self.expires()),
            ("expires_in", "3600".into()),
            ("scope", self.scope.clone()),
            ("domain", self.domain.clone()),
            ("server_endpoint", "https://oauth.bitrix.info/rest/".into()),
            ("status", "L".into()),
            ("client_endpoint", self.client_endpoint.clone()),
            ("member_id", self.member_id.clone()),
            ("user_id", self.user_id.to_string()),
            ("refresh_token", self.refresh_token.clone()),
            ("application_token", self.application_token.clone()),
        ];
        for (k, v) in fields {
            out.push((format!("auth[{k}]"), v));
        }
    }

    fn head(&self, event: &str) -> Vec<(String, String)> {
        vec![("event".into(), event.into()), ("event_handler_id".into(), self.event_handler_id.clone())]
    }
}

/// `ONIMBOTMESSAGEADD`: a user wrote to the bot.
pub fn message_add(p: &EventParams) -> String {
    let mut out = p.head("ONIMBOTMESSAGEADD");
    p.push_bot(&mut out);
    p.push_message_params(&mut out, &p.message, p.resolve_message_id());
    p.push_user(&mut out);
    p.push_ts_auth(&mut out);
    http_build_query(&out)
}

/// `ONIMCOMMANDADD`: a user invoked a bot command. As in the official
/// example, the bot's credentials travel in `data[COMMAND][{id}][AUTH]`
/// (there is no `data[BOT]` block); `data[PARAMS][MESSAGE]` is `/{command} {params}`.
pub fn command_add(p: &EventParams) -> String {
    let cmd = p.command_or_default();
    let message_id = p.resolve_message_id();
    let mut out = p.head("ONIMCOMMANDADD");
    let c = |k: &str| format!("data[COMMAND][{}][{k}]", cmd.id);
    for (k, v) in p.bot_auth_fields(false) {
        out.push((format!("data[COMMAND][{}][AUTH][{k}]", cmd.id), v));
    }
    out.push((c("BOT_ID"), p.bot_id.to_string()));
    out.push((c("BOT_CODE"), p.bot_code.clone()));
    out.push((c("COMMAND"), cmd.command.clone()));
    out.push((c("COMMAND_ID"), cmd.id.clone()));
    out.push((c("COMMAND_PARAMS"), cmd.params.clone()));
    out.push((c("COMMAND_CONTEXT"), "TEXTAREA".into()));
    out.push((c("MESSAGE_ID"), message_id.to_string()));
    let text = if cmd.params.is_empty() { format!("/{}", cmd.command) } else { format!("/{} {}", cmd.command, cmd.params) };
    p.push_message_params(&mut out, &text, message_id);
    out.push(("data[PARAMS][MESSAGE_ORIGINAL]".into(), text));
    p.push_user(&mut out);
    p.push_ts_auth(&mut out);
    http_build_query(&out)
}

/// `ONIMBOTJOINCHAT`: the bot was added to a chat (or a private dialog opened).
pub fn join_chat(p: &EventParams) -> String {
    let mut out = p.head("ONIMBOTJOINCHAT");
    p.push_bot(&mut out);
    let q = |k: &str| format!("data[PARAMS][{k}]");
    out.push((q("CHAT_TYPE"), p.chat_type.clone()));
    out.push((q("MESSAGE_TYPE"), p.chat_type.clone()));
    out.push((q("BOT_ID"), p.bot_id.to_string()));
    out.push((q("USER_ID"), p.user_id.to_string()));
    out.push((q("DIALOG_ID"), p.dialog_id.clone()));
    out.push((q("LANGUAGE"), p.language.clone()));
    if let Some(g) = &p.group {
        out.push((q("CHAT_ID"), p.chat_id.to_string()));
        out.push((q("CHAT_ENTITY_TYPE"), g.entity_type.clone()));
        out.push((q("CHAT_ENTITY_ID"), g.entity_id.clone()));
    }
    p.push_user(&mut out);
    p.push_ts_auth(&mut out);
    http_build_query(&out)
}

/// `ONIMBOTDELETE`: the bot was deleted.
pub fn bot_delete(p: &EventParams) -> String {
    let mut out = p.head("ONIMBOTDELETE");
    out.push(("data[BOT_ID]".into(), p.bot_id.to_string()));
    out.push(("data[BOT_CODE]".into(), p.bot_code.clone()));
    p.push_ts_auth(&mut out);
    http_build_query(&out)
}

/// `ONAPPINSTALL`: the application was installed on the portal; carries the
/// `application_token` later events are verified against.
pub fn app_install(p: &EventParams) -> String {
    let mut out = p.head("ONAPPINSTALL");
    out.push(("data[VERSION]".into(), "1".into()));
    out.push(("data[ACTIVE]".into(), "Y".into()));
    out.push(("data[INSTALLED]".into(), "Y".into()));
    out.push(("data[LANGUAGE_ID]".into(), p.language.clone()));
    p.push_ts_auth(&mut out);
    http_build_query(&out)
}

/// Encode pairs as PHP's `http_build_query` does (PHP_QUERY_RFC1738).
pub fn http_build_query(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", php_urlencode(k), php_urlencode(v))).collect::<Vec<_>>().join("&")
}

/// PHP `urlencode`: keep `A-Za-z0-9-_.`, space → `+`, the rest `%XX`.
pub fn php_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_php() {
        assert_eq!(php_urlencode("data[PARAMS][MESSAGE]"), "data%5BPARAMS%5D%5BMESSAGE%5D");
        assert_eq!(php_urlencode("Hello **bold** ~x*"), "Hello+%2A%2Abold%2A%2A+%7Ex%2A");
        assert_eq!(php_urlencode("Привет"), "%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82");
    }

    #[test]
    fn message_add_has_the_real_layout() {
        let body = message_add(&EventParams::private("http://127.0.0.1:9/rest/").with_message("Hi there"));
        assert!(body.starts_with("event=ONIMBOTMESSAGEADD&event_handler_id=403&data%5BBOT%5D%5B55%5D%5Baccess_token%5D=bot-access-token-55&"));
        assert!(body.contains("&data%5BBOT%5D%5B55%5D%5BAUTH%5D%5Baccess_token%5D=bot-access-token-55&"));
        assert!(body.contains("&data%5BPARAMS%5D%5BMESSAGE%5D=Hi+there&"));
        assert!(body.contains("&data%5BPARAMS%5D%5BDIALOG_ID%5D=17&"));
        assert!(body.contains("&auth%5Bclient_endpoint%5D=http%3A%2F%2F127.0.0.1%3A9%2Frest%2F&"));
        assert!(body.ends_with("&auth%5Bapplication_token%5D=app-token-123"));
        assert!(!body.contains("CHAT_TITLE"), "private dialogs carry no chat fields");
        let parsed = crate::fake_bitrix::php_form_to_json(body.as_bytes());
        assert_eq!(parsed["data"]["BOT"]["55"]["BOT_ID"], "55");
        assert_eq!(parsed["data"]["USER"]["FIRST_NAME"], "John");
        assert_eq!(parsed["auth"]["domain"], "127.0.0.1:9");
    }

    #[test]
    fn group_and_file_and_command_fields() {
        let p = EventParams::group("http://x/rest/").with_message("").with_file("48", "report.pdf", "file", "http://x/d/48");
        let parsed = crate::fake_bitrix::php_form_to_json(message_add(&p).as_bytes());
        let params = &parsed["data"]["PARAMS"];
        assert_eq!(params["DIALOG_ID"], "chat7");
        assert_eq!(params["CHAT_ID"], "7");
        assert_eq!(params["CHAT_ENTITY_TYPE"], "LINES");
        assert_eq!(params["MESSAGE"], "");
        assert_eq!(params["FILES"]["48"]["name"], "report.pdf");
        assert_eq!(params["FILES"]["48"]["urlDownload"], "http://x/d/48");
        assert_eq!(params["FILES"]["48"]["viewerAttrs"]["viewerType"], "file");
        assert_eq!(params["PARAMS"]["FILE_ID"]["0"], "48");

        let parsed = crate::fake_bitrix::php_form_to_json(command_add(&EventParams::private("http://x/rest/")).as_bytes());
        assert_eq!(parsed["event"], "ONIMCOMMANDADD");
        assert_eq!(parsed["data"]["COMMAND"]["12"]["COMMAND"], "help");
        assert_eq!(parsed["data"]["COMMAND"]["12"]["AUTH"]["access_token"], "bot-access-token-55");
        assert_eq!(parsed["data"]["PARAMS"]["MESSAGE"], "/help topic");
        assert!(parsed["data"].get("BOT").is_none());
    }

    #[test]
    fn message_ids_are_unique_by_default_and_fixed_on_request() {
        let p = EventParams::private("http://x/rest/");
        let id = |body: String| crate::fake_bitrix::php_form_to_json(body.as_bytes())["data"]["PARAMS"]["MESSAGE_ID"].clone();
        let (a, b) = (id(message_add(&p)), id(message_add(&p.clone().with_message("again"))));
        assert_ne!(a, b, "two generated messages are two messages");
        let fixed = p.clone().with_message_id(1001);
        assert_eq!(id(message_add(&fixed)), "1001");
        assert_eq!(id(message_add(&fixed)), "1001", "the same id twice: one message delivered twice");
        let parsed = crate::fake_bitrix::php_form_to_json(command_add(&p).as_bytes());
        assert_eq!(parsed["data"]["PARAMS"]["MESSAGE_ID"], parsed["data"]["COMMAND"]["12"]["MESSAGE_ID"]);
    }

    #[test]
    fn events_carry_refresh_tokens() {
        let p = EventParams::private("http://x/rest/");
        let parsed = crate::fake_bitrix::php_form_to_json(message_add(&p).as_bytes());
        assert_eq!(parsed["auth"]["refresh_token"], "user-refresh-token-17");
        assert_eq!(parsed["data"]["BOT"]["55"]["refresh_token"], "bot-refresh-token-55");
        assert_eq!(parsed["data"]["BOT"]["55"]["AUTH"]["refresh_token"], "bot-refresh-token-55");
        assert_eq!(parsed["data"]["BOT"]["55"]["client_id"], crate::FakeBitrix::CLIENT_ID);
        let custom = crate::fake_bitrix::php_form_to_json(message_add(&p.with_refresh_tokens("u-rt", "b-rt")).as_bytes());
        assert_eq!((custom["auth"]["refresh_token"].as_str(), custom["data"]["BOT"]["55"]["refresh_token"].as_str()), (Some("u-rt"), Some("b-rt")));
    }
}
