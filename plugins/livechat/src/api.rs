//! LiveChat (text.com) wire formats as Botpress's livechat-hitl integration
//! uses them: URLs, request bodies, responses, error classification, the
//! summary the operator sees and the state the plugin keeps. Everything here
//! is pure (no host calls), so it is unit-tested natively.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_sdk::{Author, InboundMessage, PluginError, Sender, TranscriptEntry, http};

/// LiveChat's API base (Agent and Customer Chat API, version 3.5).
pub const DEFAULT_API_URL: &str = "https://api.livechatinc.com/v3.5";

/// LiveChat's accounts service (customer tokens).
pub const DEFAULT_ACCOUNTS_URL: &str = "https://accounts.livechat.com";

/// What the user sees when the operator closes the chat.
pub const DEFAULT_ENDED_NOTICE: &str = "The operator has closed the chat. The assistant is back.";

/// Longest summary sent as the first message of the operator chat; older
/// transcript lines are left out first.
pub const MAX_SUMMARY_CHARS: usize = 8000;

/// `{base}/{path}`, tolerating a trailing slash on the base.
pub fn endpoint(base_url: &str, path: &str) -> String {
    format!("{}/{}", base_url.trim().trim_end_matches('/'), path.trim_start_matches('/'))
}

/// `POST {api_url}/agent/action/{action}` (Basic auth with the agent token).
pub fn agent_action_url(api_url: &str, action: &str) -> String {
    endpoint(api_url, &format!("agent/action/{action}"))
}

/// `POST {api_url}/customer/action/{action}?organization_id=...` (Bearer customer token).
pub fn customer_action_url(api_url: &str, action: &str, organization_id: &str) -> String {
    format!("{}?organization_id={}", endpoint(api_url, &format!("customer/action/{action}")), percent_encode(organization_id))
}

/// `POST {accounts_url}/v2/customer/token`.
pub fn customer_token_url(accounts_url: &str) -> String {
    endpoint(accounts_url, "v2/customer/token")
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The value for `Authorization: Basic ...`: the agent token as configured
/// (Base64 of `account_id:PAT`, as LiveChat shows it). A token pasted
/// unencoded (`account_id:PAT`; Base64 never contains `:`) is encoded here.
pub fn basic_credentials(agent_token: &str) -> String {
    let token = agent_token.trim();
    if token.contains(':') { switchboard_sdk::http::base64(token.as_bytes()) } else { token.to_string() }
}

/// Parse `group_id` (a TOML number or a numeric string).
pub fn parse_group_id(value: &str) -> Result<u64, PluginError> {
    value
        .trim()
        .trim_matches('"')
        .parse::<u64>()
        .map_err(|_| PluginError::config(format!("setting `group_id` = `{value}` is not a LiveChat group id (a number, see LiveChat → Settings → Groups)")))
}

/// Body of `POST {accounts_url}/v2/customer/token`: a new customer identity.
pub fn customer_token_request(client_id: &str, organization_id: &str, redirect_uri: Option<&str>) -> Value {
    let mut body = json!({
        "grant_type": "cookie",
        "client_id": client_id,
        "organization_id": organization_id,
    });
    if let Some(uri) = redirect_uri.filter(|u| !u.is_empty()) {
        body["redirect_uri"] = Value::String(uri.to_string());
    }
    body
}

/// Body of `agent/action/start_chat`: a chat in the group with the summary
/// as its first message.
pub fn start_chat_request(group_id: u64, summary: &str) -> Value {
    json!({
        "chat": {
            "access": {"group_ids": [group_id]},
            "thread": {"events": [{"type": "message", "text": summary, "visibility": "all"}]},
        }
    })
}

/// Body of `agent/action/add_user_to_chat` for the customer.
pub fn add_customer_request(chat_id: &str, customer_id: &str) -> Value {
    json!({
        "chat_id": chat_id,
        "user_id": customer_id,
        "user_type": "customer",
        "visibility": "all",
        "ignore_requester_presence": true,
    })
}

/// Body of `agent/action/transfer_chat` to the group.
pub fn transfer_request(chat_id: &str, group_id: u64) -> Value {
    json!({"id": chat_id, "target": {"type": "group", "ids": [group_id]}})
}

/// Body of `customer/action/send_event`: one message from the customer.
pub fn send_event_request(chat_id: &str, text: &str) -> Value {
    json!({"chat_id": chat_id, "event": {"type": "message", "text": text, "visibility": "all"}})
}

/// Body of `agent/action/deactivate_chat`.
pub fn deactivate_request(chat_id: &str) -> Value {
    json!({"id": chat_id})
}

/// `POST /v2/customer/token` response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CustomerToken {
    /// Bearer token for the Customer Chat API (secret; never logged).
    pub access_token: String,
    /// The customer's id.
    pub entity_id: String,
    /// Lifetime in seconds (LiveChat: 28800).
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// `agent/action/start_chat` response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StartedChat {
    /// The new chat.
    pub chat_id: String,
    /// Its first thread.
    #[serde(default)]
    pub thread_id: Option<String>,
    /// Ids of the events created with the chat (the summary message).
    #[serde(default)]
    pub event_ids: Vec<String>,
}

/// Parse a successful JSON response of `call`.
pub fn parse_response<T: serde::de::DeserializeOwned>(call: &str, body: &[u8]) -> Result<T, PluginError> {
    serde_json::from_slice(body).map_err(|e| {
        PluginError::permanent(format!("LiveChat {call}: the response is not the expected JSON ({e}): {}", http::snippet(&String::from_utf8_lossy(body))))
    })
}

/// A LiveChat error answer: `{"error":{"type":"...","message":"..."}}` (chat
/// API) or `{"error":"...","error_description":"..."}` (accounts service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// LiveChat's error type (`validation`, `authentication`, `chat_inactive`, ...), empty when unknown.
    pub kind: String,
    /// LiveChat's message (or a snippet of a non-JSON body).
    pub message: String,
}

impl ApiError {
    /// Read an error response.
    pub fn parse(status: u16, body: &[u8]) -> Self {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let str_of = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        match value.get("error") {
            Some(error @ Value::Object(_)) => Self { status, kind: str_of(error.get("type")), message: str_of(error.get("message")) },
            Some(Value::String(kind)) => Self { status, kind: kind.clone(), message: str_of(value.get("error_description")) },
            _ => {
                let text = String::from_utf8_lossy(body);
                let message = if text.trim().is_empty() { "(empty body)".to_string() } else { http::snippet(&text) };
                Self { status, kind: String::new(), message }
            }
        }
    }

    /// The chat no longer exists or is already closed.
    pub fn chat_gone(&self) -> bool {
        self.status == 404 || matches!(self.kind.as_str(), "not_found" | "chat_inactive")
    }

    /// The token was refused (expired or invalid).
    pub fn unauthorized(&self) -> bool {
        self.status == 401 || self.kind == "authentication"
    }

    fn describe(&self, call: &str) -> String {
        match (self.kind.is_empty(), self.message.is_empty()) {
            (true, _) => format!("LiveChat {call} failed: HTTP {} {}", self.status, self.message),
            (false, true) => format!("LiveChat {call} failed: HTTP {} {}", self.status, self.kind),
            (false, false) => format!("LiveChat {call} failed: HTTP {} {}: {}", self.status, self.kind, self.message),
        }
    }

    /// The error as the host sees it: 401/403 → config (with `auth_hint`),
    /// 408/429/5xx → transient, anything else → permanent.
    pub fn into_plugin_error(self, call: &str, auth_hint: &str) -> PluginError {
        let described = self.describe(call);
        match self.status {
            401 | 403 => PluginError::config(format!("{described}. {auth_hint}")),
            status if switchboard_sdk::http::is_transient_status(status) => PluginError::transient(described),
            _ if matches!(self.kind.as_str(), "too_many_requests" | "internal" | "request_timeout") => PluginError::transient(described),
            _ if self.kind == "validation" && self.message.contains("Cannot assign any agent") => {
                PluginError::permanent(format!("{described}. The group has no available agent besides the token's owner: add agents to it"))
            }
            _ => PluginError::permanent(described),
        }
    }
}

/// Hint for refused agent-token calls.
pub const AGENT_AUTH_HINT: &str = "Check setting `agent_token` (Base64 of `account_id:personal_access_token`; \
the token needs the scope chats--access:rw and its agent must belong to group `group_id`)";

/// Hint for refused customer-token calls.
pub const CUSTOMER_AUTH_HINT: &str = "Check settings `client_id` and `organization_id` (the app's server-side \
authorization block needs the scope chats.conversation--all:rw and `redirect_uri` among its Redirect URIs)";

/// What the plugin remembers about one operator chat (`chat:{chat_id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatLink {
    /// The host's conversation id (BitBot key for Bitrix24).
    pub conversation_id: String,
    /// The channel's reply context, refreshed with every relayed message.
    pub reply_context: String,
    /// The customer's Bearer token (secret).
    pub customer_token: String,
    /// The customer's LiveChat id (`entity_id`); its own events are not echoed.
    pub customer_id: String,
    /// Events created with the chat (the summary): never delivered to the user.
    #[serde(default)]
    pub own_event_ids: Vec<String>,
    /// True until the webhook of the plugin's own routing transfer arrived.
    #[serde(default)]
    pub routing_transfer_pending: bool,
}

/// State key of an operator chat.
pub fn chat_key(chat_id: &str) -> String {
    format!("chat:{chat_id}")
}

/// State key mapping a conversation to its operator chat id.
pub fn conversation_key(conversation_id: &str) -> String {
    format!("conversation:{conversation_id}")
}

/// The first message of the operator chat: why the user is here and the
/// recent conversation. Older lines are dropped to stay within
/// [`MAX_SUMMARY_CHARS`].
pub fn summary(reason: &str, customer: &Sender, transcript: &[TranscriptEntry]) -> String {
    let mut head = String::from("The assistant handed this conversation over to a human operator.");
    if !reason.trim().is_empty() {
        head.push_str(&format!("\nReason: {}", reason.trim()));
    }
    let name = customer.display_name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    match (name, customer.id.trim()) {
        (Some(name), "") => head.push_str(&format!("\nCustomer: {name}")),
        (Some(name), id) => head.push_str(&format!("\nCustomer: {name} (id {id})")),
        (None, "") => {}
        (None, id) => head.push_str(&format!("\nCustomer id: {id}")),
    }
    let lines: Vec<String> = transcript
        .iter()
        .filter(|e| !e.text.trim().is_empty())
        .map(|e| format!("{}: {}", author_label(e.author), e.text.trim().replace('\n', "\n  ")))
        .collect();
    if lines.is_empty() {
        return format!("{head}\n\n(no earlier messages)");
    }
    let title = "\n\nRecent conversation:";
    let omitted = "\n(earlier messages omitted)";
    let mut budget = MAX_SUMMARY_CHARS.saturating_sub(head.chars().count() + title.chars().count() + omitted.chars().count());
    let mut kept: Vec<String> = Vec::new();
    for line in lines.iter().rev() {
        let cost = line.chars().count() + 1;
        if cost > budget {
            if kept.is_empty() {
                // Even the newest line is too long: keep its beginning.
                kept.push(line.chars().take(budget.saturating_sub(2)).collect::<String>() + "…");
            }
            break;
        }
        budget -= cost;
        kept.push(line.clone());
    }
    kept.reverse();
    let mut out = format!("{head}{title}");
    if kept.len() < lines.len() {
        out.push_str(omitted);
    }
    for line in kept {
        out.push('\n');
        out.push_str(&line);
    }
    out
}

fn author_label(author: Author) -> &'static str {
    match author {
        Author::User => "User",
        Author::Bot => "Bot",
        Author::Operator => "Operator",
    }
}

/// The text sent to the operator for one user message: the text, then one
/// line per attachment that has a download link. Empty when there is nothing.
pub fn relay_text(message: &InboundMessage) -> String {
    let mut out = message.text.trim_end().to_string();
    for attachment in &message.attachments {
        let Some(url) = attachment.url.as_deref().filter(|u| !u.is_empty()) else { continue };
        if out.contains(url) {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("{}: {url}", if attachment.name.is_empty() { "File" } else { &attachment.name }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::{Attachment, ConversationRef, ErrorKind};

    fn entry(author: Author, text: &str) -> TranscriptEntry {
        TranscriptEntry { author, text: text.into(), at: 1_771_928_985 }
    }

    fn sender(id: &str, name: Option<&str>) -> Sender {
        Sender { id: id.into(), display_name: name.map(str::to_string), is_bot: false }
    }

    #[test]
    fn urls() {
        assert_eq!(agent_action_url("https://api.livechatinc.com/v3.5/", "start_chat"), "https://api.livechatinc.com/v3.5/agent/action/start_chat");
        assert_eq!(
            customer_action_url(DEFAULT_API_URL, "send_event", "390e44e6-f1e6-0368c-z6ddb-74g14508c2ex"),
            "https://api.livechatinc.com/v3.5/customer/action/send_event?organization_id=390e44e6-f1e6-0368c-z6ddb-74g14508c2ex"
        );
        assert_eq!(
            customer_action_url("http://127.0.0.1:9/v3.5", "send_event", "a b&c"),
            "http://127.0.0.1:9/v3.5/customer/action/send_event?organization_id=a%20b%26c"
        );
        assert_eq!(customer_token_url("https://accounts.livechat.com/"), "https://accounts.livechat.com/v2/customer/token");
    }

    #[test]
    fn basic_credentials_accept_encoded_and_raw_tokens() {
        assert_eq!(basic_credentials(" YWNjb3VudC0xOmRhbDpzZWNyZXQ= "), "YWNjb3VudC0xOmRhbDpzZWNyZXQ=");
        assert_eq!(basic_credentials("account-1:dal:secret"), "YWNjb3VudC0xOmRhbDpzZWNyZXQ=");
    }

    #[test]
    fn group_id_setting() {
        assert_eq!(parse_group_id("19").unwrap(), 19);
        assert_eq!(parse_group_id(" 7 ").unwrap(), 7);
        assert_eq!(parse_group_id("\"3\"").unwrap(), 3);
        assert_eq!(parse_group_id("sales").unwrap_err().kind, ErrorKind::Config);
        assert_eq!(parse_group_id("-1").unwrap_err().kind, ErrorKind::Config);
    }

    #[test]
    fn request_bodies_match_the_wire_format() {
        assert_eq!(
            customer_token_request("cid", "org", Some("https://bots.example.com/hooks/support/livechat")),
            json!({"grant_type":"cookie","client_id":"cid","organization_id":"org","redirect_uri":"https://bots.example.com/hooks/support/livechat"})
        );
        assert_eq!(customer_token_request("cid", "org", None), json!({"grant_type":"cookie","client_id":"cid","organization_id":"org"}));
        assert_eq!(
            start_chat_request(19, "Summary"),
            json!({"chat":{"access":{"group_ids":[19]},"thread":{"events":[{"type":"message","text":"Summary","visibility":"all"}]}}})
        );
        assert_eq!(
            add_customer_request("PJ0MRSHTDG", "b7eff798-f8df-4364-8059-649c35c9ed0c"),
            json!({"chat_id":"PJ0MRSHTDG","user_id":"b7eff798-f8df-4364-8059-649c35c9ed0c","user_type":"customer","visibility":"all","ignore_requester_presence":true})
        );
        assert_eq!(transfer_request("PJ0MRSHTDG", 19), json!({"id":"PJ0MRSHTDG","target":{"type":"group","ids":[19]}}));
        assert_eq!(send_event_request("PJ0MRSHTDG", "hello"), json!({"chat_id":"PJ0MRSHTDG","event":{"type":"message","text":"hello","visibility":"all"}}));
        assert_eq!(deactivate_request("PJ0MRSHTDG"), json!({"id":"PJ0MRSHTDG"}));
    }

    #[test]
    fn parses_responses() {
        let token: CustomerToken = parse_response(
            "customer token",
            br#"{"access_token":"dal:abc","entity_id":"b7eff798","expires_in":28800,"token_type":"Bearer","organization_id":"org"}"#,
        )
        .unwrap();
        assert_eq!(token, CustomerToken { access_token: "dal:abc".into(), entity_id: "b7eff798".into(), expires_in: Some(28800) });
        let chat: StartedChat = parse_response("start_chat", br#"{"chat_id":"PJ0MRSHTDG","thread_id":"PGDGHT5G","event_ids":["PGDGHT5G_1"]}"#).unwrap();
        assert_eq!(chat.chat_id, "PJ0MRSHTDG");
        assert_eq!(chat.event_ids, ["PGDGHT5G_1"]);
        let bad = parse_response::<StartedChat>("start_chat", b"<html>").unwrap_err();
        assert_eq!(bad.kind, ErrorKind::Permanent);
        assert!(bad.message.contains("start_chat"));
    }

    #[test]
    fn classifies_errors() {
        let auth = ApiError::parse(401, br#"{"error":{"type":"authentication","message":"Invalid access token"}}"#);
        assert!(auth.unauthorized());
        let e = auth.into_plugin_error("start_chat", AGENT_AUTH_HINT);
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.contains("HTTP 401 authentication: Invalid access token") && e.message.contains("agent_token"), "{}", e.message);

        let forbidden = ApiError::parse(403, br#"{"error":{"type":"authorization","message":"Requester has no access"}}"#);
        assert_eq!(forbidden.into_plugin_error("transfer_chat", AGENT_AUTH_HINT).kind, ErrorKind::Config);

        for status in [429, 500, 502, 503] {
            let e = ApiError::parse(status, br#"{"error":{"type":"internal","message":"Internal server error"}}"#);
            assert_eq!(e.into_plugin_error("send_event", "").kind, ErrorKind::Transient, "{status}");
        }
        let html = ApiError::parse(502, b"<html>Bad Gateway</html>");
        assert_eq!(html.kind, "");
        assert!(html.message.contains("Bad Gateway"));

        let validation = ApiError::parse(400, br#"{"error":{"type":"validation","message":"`chat.access.group_ids` is invalid"}}"#);
        let e = validation.into_plugin_error("start_chat", "");
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(e.message.contains("validation: `chat.access.group_ids` is invalid"));

        let no_agent = ApiError::parse(400, br#"{"error":{"type":"validation","message":"Cannot assign any agent from requested groups"}}"#);
        let e = no_agent.into_plugin_error("transfer_chat", "");
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(e.message.contains("add agents"));

        let inactive = ApiError::parse(422, br#"{"error":{"type":"chat_inactive","message":"No active chat thread"}}"#);
        assert!(inactive.chat_gone());
        assert!(ApiError::parse(404, br#"{"error":{"type":"not_found","message":"Chat not found"}}"#).chat_gone());
        assert!(!ApiError::parse(400, br#"{"error":{"type":"validation","message":"x"}}"#).chat_gone());

        let oauth = ApiError::parse(400, br#"{"error":"invalid_client","error_description":"client_id not found"}"#);
        assert_eq!((oauth.kind.as_str(), oauth.message.as_str()), ("invalid_client", "client_id not found"));
    }

    #[test]
    fn summary_lists_reason_customer_and_transcript() {
        let transcript = [
            entry(Author::User, "Where is my order 1234?"),
            entry(Author::Bot, "Let me check.\nIt shipped yesterday."),
            entry(Author::User, "   "),
            entry(Author::User, "/operator"),
        ];
        let text = summary("requested by the user", &sender("17", Some("John Doe")), &transcript);
        assert_eq!(
            text,
            "The assistant handed this conversation over to a human operator.\nReason: requested by the user\n\
             Customer: John Doe (id 17)\n\nRecent conversation:\nUser: Where is my order 1234?\n\
             Bot: Let me check.\n  It shipped yesterday.\nUser: /operator"
        );
        assert_eq!(summary("", &sender("", None), &[]), "The assistant handed this conversation over to a human operator.\n\n(no earlier messages)");
        assert!(summary("", &sender("5", None), &[]).contains("\nCustomer id: 5\n"));
    }

    #[test]
    fn long_summaries_keep_the_newest_lines() {
        let transcript: Vec<TranscriptEntry> =
            (0..40).map(|n| entry(if n % 2 == 0 { Author::User } else { Author::Operator }, &format!("{n:02} {}", "x".repeat(400)))).collect();
        let text = summary("r", &sender("1", None), &transcript);
        assert!(text.chars().count() <= MAX_SUMMARY_CHARS, "{}", text.chars().count());
        assert!(text.contains("(earlier messages omitted)"));
        assert!(text.contains("Operator: 39 x"), "the newest line is kept");
        assert!(!text.contains("User: 00 x"), "the oldest line is dropped");

        let huge = [entry(Author::User, &"y".repeat(MAX_SUMMARY_CHARS * 2))];
        let text = summary("r", &sender("1", None), &huge);
        assert!(text.chars().count() <= MAX_SUMMARY_CHARS);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn relayed_text_lists_downloadable_files() {
        let mut message = InboundMessage {
            id: "m:55:900".into(),
            conversation: ConversationRef { id: "m:55:17".into(), reply_context: "{}".into() },
            sender: sender("17", None),
            text: "File sent: report.pdf".into(),
            attachments: vec![
                Attachment { id: "1".into(), name: "report.pdf".into(), kind: "file".into(), url: Some("https://portal/dl/1".into()), size: None },
                Attachment { id: "2".into(), name: "x.png".into(), kind: "image".into(), url: None, size: None },
            ],
            command: None,
            variables: Vec::new(),
        };
        assert_eq!(relay_text(&message), "File sent: report.pdf\nreport.pdf: https://portal/dl/1");
        message.attachments.clear();
        message.text = "  ".into();
        assert_eq!(relay_text(&message), "");
    }

    #[test]
    fn state_keys_and_links() {
        assert_eq!(chat_key("PJ0MRSHTDG"), "chat:PJ0MRSHTDG");
        assert_eq!(conversation_key("m:55:17"), "conversation:m:55:17");
        let old: ChatLink = serde_json::from_value(json!({
            "conversation_id": "m:55:17", "reply_context": "{}", "customer_token": "t", "customer_id": "c"
        }))
        .unwrap();
        assert!(old.own_event_ids.is_empty() && !old.routing_transfer_pending);
    }
}
