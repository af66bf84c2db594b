//! Read fields of a decoded Bitrix24 event.
//!
//! Bitrix24 posts events as PHP-style nested forms
//! (`data[PARAMS][MESSAGE]=Hi`); [`switchboard_sdk::form::decode_nested`]
//! turns them into a JSON tree and [`EventView`] reads that tree. Missing
//! fields read as empty strings, so callers decide what is required.

use serde_json::Value;

/// A decoded Bitrix24 event.
#[derive(Clone, Copy, Debug)]
pub struct EventView<'a> {
    tree: &'a Value,
}

/// One keyed entry of `data[BOT]` or `data[COMMAND]`.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    /// The key the entry is stored under (bot id or command id).
    pub key: &'a str,
    value: &'a Value,
}

/// A file attached to a message (`data[PARAMS][FILES][{id}]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Bitrix24 disk file id.
    pub id: String,
    /// File name as shown in the chat.
    pub name: String,
    /// Bitrix24's type: `image`, `file`, `video`, `audio`.
    pub kind: String,
    /// `urlDownload`, when given.
    pub download_url: String,
    /// Size in bytes, when given.
    pub size: Option<u64>,
    /// `viewerAttrs[viewerType]`, when given (BitBot's `file_type`).
    pub viewer_type: String,
}

/// The text of a leaf, or an empty string when it is missing or not a leaf.
pub fn leaf_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::Bool(true)) => "Y".to_string(),
        Some(Value::Bool(false)) => "N".to_string(),
        _ => String::new(),
    }
}

/// The first non-empty string, or an empty one.
pub fn first_non_empty<const N: usize>(candidates: [String; N]) -> String {
    candidates.into_iter().find(|candidate| !candidate.is_empty()).unwrap_or_default()
}

impl<'a> EventView<'a> {
    /// View a decoded event body.
    pub fn new(tree: &'a Value) -> Self {
        Self { tree }
    }

    /// The event name, upper-cased (`ONIMBOTMESSAGEADD`), if present.
    pub fn name(&self) -> Option<String> {
        let name = self.text(&["event"]);
        let name = name.trim();
        (!name.is_empty()).then(|| name.to_ascii_uppercase())
    }

    /// The text at a path, or an empty string.
    pub fn text(&self, path: &[&str]) -> String {
        leaf_text(self.node(path))
    }

    fn node(&self, path: &[&str]) -> Option<&'a Value> {
        path.iter().try_fold(self.tree, |node, key| node.get(key))
    }

    /// `auth[key]`: the authorization of the user who triggered the event.
    pub fn auth(&self, key: &str) -> String {
        self.text(&["auth", key])
    }

    /// `data[PARAMS][key]`.
    pub fn param(&self, key: &str) -> String {
        self.text(&["data", "PARAMS", key])
    }

    /// `data[USER][key]`: the author of the message.
    pub fn user(&self, key: &str) -> String {
        self.text(&["data", "USER", key])
    }

    /// `auth[member_id]`: the portal's unique id.
    pub fn member_id(&self) -> Option<String> {
        Some(self.auth("member_id")).filter(|id| !id.is_empty())
    }

    /// `auth[application_token]`: the token proving the event is genuine.
    pub fn application_token(&self) -> Option<String> {
        Some(self.auth("application_token")).filter(|token| !token.is_empty())
    }

    /// The bot the event is meant for: the `data[BOT]` entry whose id is the
    /// message's `TO_USER_ID` (a bot is a user), else the first one.
    pub fn bot(&self) -> Option<Entry<'a>> {
        let entries = self.entries(&["data", "BOT"]);
        let addressee = self.param("TO_USER_ID");
        entries.iter().find(|entry| !addressee.is_empty() && entry.id("BOT_ID") == addressee).or_else(|| entries.first()).copied()
    }

    /// The invoked command (`data[COMMAND]`), first entry.
    pub fn command(&self) -> Option<Entry<'a>> {
        self.entries(&["data", "COMMAND"]).first().copied()
    }

    fn entries(&self, path: &[&str]) -> Vec<Entry<'a>> {
        let Some(Value::Object(map)) = self.node(path) else {
            return Vec::new();
        };
        map.iter().filter(|(_, value)| value.is_object()).map(|(key, value)| Entry { key, value }).collect()
    }

    /// The bot id: from the command, the bot entry, `data[PARAMS][BOT_ID]`
    /// (ONIMBOTJOINCHAT) or `data[BOT_ID]` (ONIMBOTDELETE).
    pub fn bot_id(&self) -> String {
        first_non_empty([
            self.command().map(|c| c.text("BOT_ID")).unwrap_or_default(),
            self.bot().map(|b| b.id("BOT_ID")).unwrap_or_default(),
            self.param("BOT_ID"),
            self.text(&["data", "BOT_ID"]),
        ])
    }

    /// The bot's own OAuth token: `[AUTH][access_token]` of the command or
    /// bot entry, falling back to its `[access_token]`. Empty when absent.
    pub fn bot_access_token(&self) -> String {
        self.bot_auth("access_token")
    }

    /// A field of the bot's own authorization (`access_token`,
    /// `refresh_token`, `expires`, ...): `[AUTH][key]` of the command or bot
    /// entry, falling back to its `[key]`. Empty when absent.
    pub fn bot_auth(&self, key: &str) -> String {
        first_non_empty([self.command().map(|c| c.auth_text(key)).unwrap_or_default(), self.bot().map(|b| b.auth_text(key)).unwrap_or_default()])
    }

    /// The portal's REST base URL (`https://portal/rest/`): `auth`, then the
    /// bot or command entry, then the installation record, then `auth[domain]`.
    pub fn client_endpoint(&self, installed_endpoint: Option<&str>) -> String {
        let from_domain = match self.auth("domain") {
            domain if domain.is_empty() => String::new(),
            domain => format!("https://{domain}/rest/"),
        };
        first_non_empty([
            self.auth("client_endpoint"),
            self.bot().map(|b| b.text("client_endpoint")).unwrap_or_default(),
            self.command().map(|c| c.text("client_endpoint")).unwrap_or_default(),
            installed_endpoint.unwrap_or_default().to_string(),
            from_domain,
        ])
    }

    /// Files attached to the message, ordered by their key.
    pub fn files(&self) -> Vec<FileInfo> {
        self.entries(&["data", "PARAMS", "FILES"]).into_iter().map(Entry::file_info).collect()
    }

    /// `data[PARAMS][PARAMS][FILE_ID][0]`: the first file id when the event
    /// carries ids without file details.
    pub fn first_file_id(&self) -> String {
        match self.node(&["data", "PARAMS", "PARAMS", "FILE_ID"]) {
            Some(Value::Array(items)) => leaf_text(items.first()),
            Some(Value::Object(map)) => leaf_text(map.values().next()),
            other => leaf_text(other),
        }
    }
}

impl<'a> Entry<'a> {
    /// The text of a field of this entry.
    pub fn text(&self, key: &str) -> String {
        leaf_text(self.value.get(key))
    }

    /// The id stored in `field`, or the entry's key when the field is empty.
    pub fn id(&self, field: &str) -> String {
        first_non_empty([self.text(field), self.key.to_string()])
    }

    /// `[AUTH][access_token]`, falling back to `[access_token]`.
    pub fn access_token(&self) -> String {
        self.auth_text("access_token")
    }

    /// `[AUTH][key]`, falling back to `[key]`.
    pub fn auth_text(&self, key: &str) -> String {
        let nested = leaf_text(self.value.get("AUTH").and_then(|auth| auth.get(key)));
        first_non_empty([nested, self.text(key)])
    }

    fn file_info(self) -> FileInfo {
        let viewer_type = leaf_text(self.value.get("viewerAttrs").and_then(|attrs| attrs.get("viewerType")));
        FileInfo {
            id: self.id("id"),
            name: self.text("name"),
            kind: self.text("type"),
            download_url: self.text("urlDownload"),
            size: self.text("size").trim().parse().ok(),
            viewer_type,
        }
    }
}
