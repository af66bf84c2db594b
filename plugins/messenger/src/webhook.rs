//! The service's reply webhooks: authentication, body decoding, field and
//! flag parsing, and turning one webhook into replies. Pure (no host calls).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use switchboard_sdk::{AddressedReply, Control, ConversationRef, HttpRequest, OutboundMessage, RequestError, form};

/// Header carrying the webhook secret (alternative to `?secret=`).
pub const SECRET_HEADER: &str = "x-switchboard-secret";

/// Query parameter carrying the webhook secret.
pub const SECRET_QUERY: &str = "secret";

/// Staff notice sent when the service forwards a dialog to an operator.
pub const OPERATOR_NOTICE: &str = "The dialog was forwarded to an operator";

/// What the plugin keeps under `chat:{chat_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChat {
    /// `conversation-ref.id`.
    pub conversation_id: String,
    /// `conversation-ref.reply-context`, verbatim.
    pub reply_context: String,
    /// The service last reported the dialog as forwarded to an operator
    /// (so the staff notice is sent once per forwarding).
    #[serde(default)]
    pub operator: bool,
}

impl StoredChat {
    /// The conversation to address replies to.
    pub fn conversation(&self) -> ConversationRef {
        ConversationRef { id: self.conversation_id.clone(), reply_context: self.reply_context.clone() }
    }
}

/// Check the webhook secret: the `x-switchboard-secret` header or the
/// `secret` query parameter must equal `expected` (compared in constant
/// time). Error messages never contain either value.
pub fn authenticate(request: &HttpRequest, expected: &str) -> Result<(), RequestError> {
    let mut candidates: Vec<String> =
        request.headers.iter().filter(|(name, _)| name.eq_ignore_ascii_case(SECRET_HEADER)).map(|(_, value)| value.trim().to_string()).collect();
    if let Some(secret) = query_param(&request.path_with_query, SECRET_QUERY) {
        candidates.push(secret);
    }
    candidates.retain(|c| !c.is_empty());
    if candidates.is_empty() {
        return Err(RequestError::Forbidden(format!(
            "missing webhook secret: put `?{SECRET_QUERY}=<webhook_secret>` in the webhook URL or send the `{SECRET_HEADER}` header"
        )));
    }
    // Every candidate is compared, so timing does not reveal which one matched.
    let matched = candidates.iter().fold(false, |acc, candidate| acc | secrets_equal(candidate, expected));
    if matched { Ok(()) } else { Err(RequestError::Forbidden("wrong webhook secret".into())) }
}

/// Constant-time equality of two secrets: their SHA-256 digests are compared
/// byte by byte without an early exit (so neither the content nor the length
/// of the expected secret leaks through timing).
pub fn secrets_equal(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter().zip(b.iter()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// One query parameter of `path?query`, decoded.
pub fn query_param(path_with_query: &str, name: &str) -> Option<String> {
    let (_, query) = path_with_query.split_once('?')?;
    let query = query.split('#').next().unwrap_or_default();
    form::get_str(&form::decode_nested(query.as_bytes()), &[name]).map(str::to_string)
}

/// Decode the body into its fields: JSON (an object), `x-www-form-urlencoded`
/// or `multipart/form-data` (text fields). Without a content type, a body
/// starting with `{` is JSON and anything else a url-encoded form.
pub fn decode_body(request: &HttpRequest) -> Result<Map<String, Value>, RequestError> {
    let content_type =
        request.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("content-type")).map(|(_, value)| value.to_ascii_lowercase()).unwrap_or_default();
    let body = &request.body;
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if content_type.contains("multipart/form-data") {
        return decode_multipart(&content_type, body);
    }
    let json = content_type.contains("json") || (!content_type.contains("form") && first == Some(b'{'));
    if json {
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(RequestError::BadRequest("the JSON body must be an object of webhook fields".into())),
            Err(e) => Err(RequestError::BadRequest(format!("the body is not valid JSON: {e}"))),
        };
    }
    match form::decode_nested(body) {
        Value::Object(map) => Ok(map),
        _ => Ok(Map::new()),
    }
}

/// Text fields of a `multipart/form-data` body.
fn decode_multipart(content_type: &str, body: &[u8]) -> Result<Map<String, Value>, RequestError> {
    let boundary = content_type
        .split(';')
        .filter_map(|part| part.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .next()
        .ok_or_else(|| RequestError::BadRequest("multipart body without a boundary".into()))?;
    // The boundary was lower-cased with the content type; find it case-insensitively.
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    let lower = text.to_ascii_lowercase();
    let mut positions = Vec::new();
    let mut from = 0;
    while let Some(i) = lower[from..].find(&delimiter) {
        positions.push(from + i);
        from += i + delimiter.len();
    }
    let mut fields = Map::new();
    for pair in positions.windows(2) {
        let part = &text[pair[0] + delimiter.len()..pair[1]];
        let part = part.strip_prefix("\r\n").or_else(|| part.strip_prefix('\n')).unwrap_or(part);
        let (head, value) = match part.split_once("\r\n\r\n").or_else(|| part.split_once("\n\n")) {
            Some(split) => split,
            None => continue,
        };
        let value = value.strip_suffix("\r\n").or_else(|| value.strip_suffix('\n')).unwrap_or(value);
        let Some(name) = head.lines().find_map(disposition_name) else { continue };
        fields.entry(name).or_insert_with(|| Value::String(value.to_string()));
    }
    Ok(fields)
}

fn disposition_name(line: &str) -> Option<String> {
    if !line.to_ascii_lowercase().starts_with("content-disposition:") {
        return None;
    }
    line.split(';').find_map(|p| p.trim().strip_prefix("name=").map(|n| n.trim_matches('"').to_string()))
}

/// A field as a trimmed string (numbers and booleans stringified); `None`
/// when missing, null, empty or not a scalar.
pub fn field(fields: &Map<String, Value>, key: &str) -> Option<String> {
    let text = match fields.get(key)? {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// A yes/no flag, liberally: `yes`, `y`, `true`, `1`, `on`, `да` (any case),
/// JSON `true` and non-zero numbers are yes; everything else (including a
/// missing field) is no.
pub fn flag(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        Some(Value::String(s)) => {
            matches!(s.trim().to_lowercase().as_str(), "yes" | "y" | "true" | "1" | "on" | "да")
        }
        _ => false,
    }
}

/// A flag only when the field is present (`Some(false)` for an explicit no).
pub fn optional_flag(fields: &Map<String, Value>, key: &str) -> Option<bool> {
    match fields.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        value => Some(flag(value)),
    }
}

/// `message_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageType {
    /// The AI answered.
    Bot,
    /// A human operator answered from the service's panel.
    Operator,
    /// The user's own message, echoed back by the "All messages" integration.
    User,
    /// Missing or unknown.
    Other(String),
}

/// The parts of a reply webhook the plugin acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `external_chat_id`: the `chat_id` the plugin sent.
    pub chat_id: Option<String>,
    /// `message_type`.
    pub message_type: MessageType,
    /// `message_text` (untrimmed; `""` when missing).
    pub text: String,
    /// `close` = yes.
    pub close: bool,
    /// `operator` (forwarded to an operator), when present.
    pub operator: Option<bool>,
    /// `panel_url`: the staff link to the dialog.
    pub panel_url: Option<String>,
    /// `message_id`: the service's unique id of the message the webhook
    /// reports (for logs and deduplication).
    pub message_id: Option<String>,
}

impl Event {
    /// Read the fields.
    pub fn parse(fields: &Map<String, Value>) -> Event {
        let message_type = match field(fields, "message_type").map(|t| t.to_ascii_lowercase()) {
            Some(t) if t == "bot" => MessageType::Bot,
            Some(t) if t == "operator" => MessageType::Operator,
            Some(t) if t == "user" => MessageType::User,
            other => MessageType::Other(other.unwrap_or_default()),
        };
        let text = match fields.get("message_text") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        Event {
            chat_id: field(fields, "external_chat_id"),
            message_type,
            text,
            close: flag(fields.get("close")),
            operator: optional_flag(fields, "operator"),
            panel_url: field(fields, "panel_url"),
            message_id: field(fields, "message_id"),
        }
    }

    /// The id the host deduplicates this webhook on: its `message_id`, which
    /// the service documents as the unique id of the message. A webhook
    /// delivered twice (the service retrying) then reaches the user once.
    /// `None` without a `message_id`: no deduplication.
    pub fn event_id(&self) -> Option<String> {
        self.message_id.clone()
    }

    /// Text to show the user: bot or operator messages with a non-blank text.
    pub fn reply_text(&self) -> Option<&str> {
        let shown = matches!(self.message_type, MessageType::Bot | MessageType::Operator);
        (shown && !self.text.trim().is_empty()).then_some(self.text.trim_end())
    }

    /// Whether the webhook asks for anything (a text to deliver, a close, an
    /// operator forwarding). Echoes of the user's messages ask for nothing.
    pub fn needs_routing(&self) -> bool {
        self.message_type != MessageType::User && (self.reply_text().is_some() || self.close || self.operator == Some(true))
    }
}

/// What to do for one routed webhook.
#[derive(Debug, Default)]
pub struct Plan {
    /// Replies to deliver: the user-visible messages first, then (as its own
    /// reply, so a failing staff dialog never blocks or repeats the user's
    /// message) the staff notice.
    pub replies: Vec<AddressedReply>,
    /// Delete the mapping (`close` = yes).
    pub clear: bool,
    /// Store this updated entry (the operator flag changed).
    pub update: Option<StoredChat>,
}

/// Turn a routed webhook into replies and state changes.
pub fn plan(event: &Event, stored: &StoredChat, operator_notice: bool) -> Plan {
    let conversation = stored.conversation();
    let mut messages = Vec::new();
    if let Some(text) = event.reply_text() {
        messages.push(OutboundMessage::text(text));
    }
    if event.close {
        match messages.last_mut() {
            Some(last) => last.control = Some(Control::Close),
            None => {
                let mut close = OutboundMessage::text("");
                close.control = Some(Control::Close);
                messages.push(close);
            }
        }
    }
    let mut plan = Plan { clear: event.close, ..Plan::default() };
    if !messages.is_empty() {
        plan.replies.push(AddressedReply { conversation: conversation.clone(), in_reply_to: None, messages });
    }
    let forwarded_now = event.operator == Some(true) && !stored.operator;
    if forwarded_now && operator_notice {
        let mut notice = OutboundMessage::text("");
        notice.control = Some(Control::StaffNotice(operator_notice_text(event.panel_url.as_deref())));
        plan.replies.push(AddressedReply { conversation, in_reply_to: None, messages: vec![notice] });
    }
    if !event.close
        && let Some(operator) = event.operator
        && operator != stored.operator
    {
        plan.update = Some(StoredChat { operator, ..stored.clone() });
    }
    plan
}

/// `The dialog was forwarded to an operator: {panel_url}` (without the link
/// when the service sent none).
pub fn operator_notice_text(panel_url: Option<&str>) -> String {
    match panel_url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => format!("{OPERATOR_NOTICE}: {url}"),
        None => format!("{OPERATOR_NOTICE}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(path: &str, headers: &[(&str, &str)], content_type: &str, body: &str) -> HttpRequest {
        let mut headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if !content_type.is_empty() {
            headers.push(("content-type".into(), content_type.into()));
        }
        HttpRequest { method: "POST".into(), path_with_query: path.into(), headers, body: body.as_bytes().to_vec() }
    }

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn stored() -> StoredChat {
        StoredChat { conversation_id: "m1:55:chat7".into(), reply_context: r#"{"dialog_id":"chat7"}"#.into(), operator: false }
    }

    /// A webhook with the documented fields, as strings.
    fn webhook(message_type: &str, text: &str, close: &str, operator: &str) -> Map<String, Value> {
        fields(json!({
            "channel_id": "1721129985149x100", "close": close, "company_id": "1721129985149x200",
            "contacts": "", "external_chat_id": "sb-0123", "get_contact": "no", "interest": "no",
            "is_bot": "no", "manager_id": "1721129985149x300", "message_id": "1721129985149x400",
            "message_text": text, "message_type": message_type, "operator": operator,
            "panel_url": "https://panel.example/dialog/1", "share_url": "https://share.example/dialog/1",
            "success": "no", "task_id": "1721129985149x478019552540622850", "thread_id": "1721129985149x500",
            "title": "John Doe", "wh_type": "new_message",
        }))
    }

    #[test]
    fn flags_are_parsed_liberally() {
        for yes in
            [json!("yes"), json!("Yes"), json!(" YES "), json!("y"), json!("true"), json!("1"), json!("on"), json!("да"), json!(true), json!(1), json!(2.5)]
        {
            assert!(flag(Some(&yes)), "{yes}");
        }
        for no in [json!("no"), json!("No"), json!("false"), json!("0"), json!(""), json!("maybe"), json!(false), json!(0), json!(null), json!({})] {
            assert!(!flag(Some(&no)), "{no}");
        }
        assert!(!flag(None));
        let f = fields(json!({"a": "no", "b": "yes", "c": "", "d": null}));
        assert_eq!(optional_flag(&f, "a"), Some(false));
        assert_eq!(optional_flag(&f, "b"), Some(true));
        assert_eq!(optional_flag(&f, "c"), None);
        assert_eq!(optional_flag(&f, "d"), None);
        assert_eq!(optional_flag(&f, "e"), None);
    }

    #[test]
    fn fields_are_stringified_and_trimmed() {
        let f = fields(json!({"a": " x ", "b": 12, "c": true, "d": "", "e": [1], "f": null}));
        assert_eq!(field(&f, "a").as_deref(), Some("x"));
        assert_eq!(field(&f, "b").as_deref(), Some("12"));
        assert_eq!(field(&f, "c").as_deref(), Some("true"));
        assert_eq!(field(&f, "d"), None);
        assert_eq!(field(&f, "e"), None);
        assert_eq!(field(&f, "f"), None);
    }

    #[test]
    fn secret_is_accepted_from_query_or_header() {
        let secret = "s3cr3t/with+special&chars";
        let encoded = "s3cr3t%2Fwith%2Bspecial%26chars";
        let by_query = request(&format!("/hooks/c/messenger?secret={encoded}"), &[], "", "");
        assert!(authenticate(&by_query, secret).is_ok());
        let by_query_among_others = request(&format!("/hooks/c/messenger?a=1&secret={encoded}&b=2"), &[], "", "");
        assert!(authenticate(&by_query_among_others, secret).is_ok());
        let by_header = request("/hooks/c/messenger", &[("x-switchboard-secret", secret)], "", "");
        assert!(authenticate(&by_header, secret).is_ok());
        let by_header_case = request("/hooks/c/messenger", &[("X-Switchboard-Secret", secret)], "", "");
        assert!(authenticate(&by_header_case, secret).is_ok());
    }

    #[test]
    fn wrong_or_missing_secret_is_forbidden_without_echo() {
        let expected = "the-real-secret";
        let cases = [
            request("/hooks/c/messenger", &[], "", ""),
            request("/hooks/c/messenger?secret=", &[], "", ""),
            request("/hooks/c/messenger?secret=guess-123", &[], "", ""),
            request("/hooks/c/messenger", &[("x-switchboard-secret", "guess-123")], "", ""),
            request("/hooks/c/messenger?secret=the-real-secre", &[], "", ""),
            request("/hooks/c/messenger?secret=the-real-secret-", &[], "", ""),
            request("/hooks/c/messenger?other=the-real-secret", &[], "", ""),
        ];
        for case in cases {
            match authenticate(&case, expected) {
                Err(RequestError::Forbidden(message)) => {
                    assert!(!message.contains(expected) && !message.contains("guess-123"), "{message}");
                }
                other => panic!("{} must be forbidden, got {other:?}", case.path_with_query),
            }
        }
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
        assert!(!secrets_equal("", "abc"));
    }

    #[test]
    fn decodes_json_form_and_multipart_bodies() {
        let json_body = r#"{"external_chat_id":"sb-1","message_text":"Hi","close":false,"operator":"no"}"#;
        for content_type in ["application/json", "application/json; charset=utf-8", ""] {
            let decoded = decode_body(&request("/", &[], content_type, json_body)).unwrap();
            assert_eq!(decoded["message_text"], "Hi", "{content_type:?}");
        }
        let form_body = "external_chat_id=sb-1&message_text=Hello+there%21&close=yes";
        for content_type in ["application/x-www-form-urlencoded", ""] {
            let decoded = decode_body(&request("/", &[], content_type, form_body)).unwrap();
            assert_eq!(decoded["message_text"], "Hello there!", "{content_type:?}");
            assert_eq!(decoded["close"], "yes");
        }
        let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"external_chat_id\"\r\n\r\nsb-1\r\n\
                         --XyZ\r\nContent-Disposition: form-data; name=\"message_text\"\r\n\r\nLine 1\r\nLine 2\r\n--XyZ--\r\n";
        let decoded = decode_body(&request("/", &[], "multipart/form-data; boundary=XyZ", multipart)).unwrap();
        assert_eq!(decoded["external_chat_id"], "sb-1");
        assert_eq!(decoded["message_text"], "Line 1\r\nLine 2");

        assert!(matches!(decode_body(&request("/", &[], "application/json", "{nope")), Err(RequestError::BadRequest(_))));
        assert!(matches!(decode_body(&request("/", &[], "application/json", "[1]")), Err(RequestError::BadRequest(_))));
    }

    #[test]
    fn bot_message_becomes_one_reply() {
        let event = Event::parse(&webhook("bot", "Hello! How can I help?", "no", "no"));
        assert_eq!(event.chat_id.as_deref(), Some("sb-0123"));
        assert_eq!(event.event_id().as_deref(), Some("1721129985149x400"), "the webhook's message_id");
        assert!(event.needs_routing());
        let plan = plan(&event, &stored(), true);
        assert!(!plan.clear);
        assert!(plan.update.is_none());
        assert_eq!(plan.replies.len(), 1);
        let reply = &plan.replies[0];
        assert_eq!(reply.conversation.id, "m1:55:chat7");
        assert_eq!(reply.conversation.reply_context, r#"{"dialog_id":"chat7"}"#);
        assert!(reply.in_reply_to.is_none());
        assert_eq!(reply.messages.len(), 1);
        assert_eq!(reply.messages[0].text, "Hello! How can I help?");
        assert!(reply.messages[0].control.is_none());
    }

    #[test]
    fn operator_message_is_delivered_like_a_bot_message() {
        let event = Event::parse(&webhook("operator", "Hi, this is Anna from support.", "no", "yes"));
        let mut already = stored();
        already.operator = true;
        let plan = plan(&event, &already, true);
        assert_eq!(plan.replies.len(), 1, "no second notice while still forwarded");
        assert_eq!(plan.replies[0].messages[0].text, "Hi, this is Anna from support.");
        assert!(plan.update.is_none());
    }

    #[test]
    fn user_echo_and_empty_texts_are_ignored() {
        let echo = Event::parse(&webhook("user", "What are your opening hours?", "no", "no"));
        assert!(!echo.needs_routing());
        assert!(echo.reply_text().is_none());
        let blank = Event::parse(&webhook("bot", "  \n", "no", "no"));
        assert!(!blank.needs_routing());
        let unknown = Event::parse(&webhook("system", "Something", "no", "no"));
        assert!(!unknown.needs_routing());
        assert_eq!(unknown.message_type, MessageType::Other("system".into()));
    }

    #[test]
    fn close_marks_the_last_message_and_clears_the_mapping() {
        let event = Event::parse(&webhook("bot", "Goodbye!", "yes", "no"));
        let plan = plan(&event, &stored(), true);
        assert!(plan.clear);
        assert!(plan.update.is_none());
        assert_eq!(plan.replies.len(), 1);
        let messages = &plan.replies[0].messages;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].text, "Goodbye!");
        assert!(matches!(messages[0].control, Some(Control::Close)));

        let bare = Event::parse(&webhook("bot", "", "yes", "no"));
        assert!(bare.needs_routing());
        let plan = super::plan(&bare, &stored(), true);
        assert!(plan.clear);
        let messages = &plan.replies[0].messages;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].text, "");
        assert!(matches!(messages[0].control, Some(Control::Close)));
    }

    #[test]
    fn operator_forwarding_sends_one_staff_notice_with_the_panel_link() {
        let event = Event::parse(&webhook("bot", "An operator will answer you shortly.", "no", "yes"));
        let plan = plan(&event, &stored(), true);
        assert_eq!(plan.replies.len(), 2);
        let user = &plan.replies[0].messages;
        assert_eq!(user.len(), 1);
        assert_eq!(user[0].text, "An operator will answer you shortly.");
        assert!(!user[0].text.contains("panel.example"), "panel_url must never be user-visible");
        let staff = &plan.replies[1].messages;
        assert_eq!(staff.len(), 1);
        assert_eq!(staff[0].text, "", "the notice carries no user-visible text");
        match &staff[0].control {
            Some(Control::StaffNotice(text)) => {
                assert_eq!(text, "The dialog was forwarded to an operator: https://panel.example/dialog/1")
            }
            other => panic!("expected a staff notice, got {other:?}"),
        }
        assert_eq!(plan.replies[1].conversation.id, "m1:55:chat7");
        assert_eq!(plan.update.as_ref().map(|s| s.operator), Some(true), "remember the forwarding");

        // Back with the bot: the flag is reset, so a later forwarding notifies again.
        let mut forwarded = stored();
        forwarded.operator = true;
        let back = Event::parse(&webhook("bot", "I'm back.", "no", "no"));
        let plan = super::plan(&back, &forwarded, true);
        assert_eq!(plan.replies.len(), 1);
        assert_eq!(plan.update.as_ref().map(|s| s.operator), Some(false));
    }

    #[test]
    fn operator_notice_can_be_disabled_and_works_without_a_link() {
        let mut f = webhook("bot", "", "no", "yes");
        f.remove("panel_url");
        let event = Event::parse(&f);
        assert!(event.needs_routing());
        let plan_on = plan(&event, &stored(), true);
        assert_eq!(plan_on.replies.len(), 1);
        assert!(matches!(&plan_on.replies[0].messages[0].control, Some(Control::StaffNotice(t)) if t == "The dialog was forwarded to an operator."));
        let plan_off = plan(&event, &stored(), false);
        assert!(plan_off.replies.is_empty());
        assert_eq!(plan_off.update.map(|s| s.operator), Some(true));
    }

    #[test]
    fn close_with_operator_notice_keeps_the_notice_separate() {
        let event = Event::parse(&webhook("bot", "Passing you on.", "yes", "yes"));
        let plan = plan(&event, &stored(), true);
        assert!(plan.clear);
        assert!(plan.update.is_none(), "a cleared mapping is not written back");
        assert_eq!(plan.replies.len(), 2);
        assert!(matches!(plan.replies[0].messages[0].control, Some(Control::Close)));
        assert!(matches!(plan.replies[1].messages[0].control, Some(Control::StaffNotice(_))));
    }

    #[test]
    fn booleans_and_numbers_work_as_flags_in_json_webhooks() {
        let f = fields(json!({"external_chat_id": "sb-9", "message_type": "bot", "message_text": "Bye", "close": true, "operator": 0}));
        let event = Event::parse(&f);
        assert!(event.close);
        assert_eq!(event.operator, Some(false));
        assert_eq!(event.reply_text(), Some("Bye"));
    }

    #[test]
    fn event_id_is_the_message_id() {
        let mut f = webhook("operator", "Hi", "no", "no");
        f.insert("message_id".into(), json!(" 1721129985149x401 "));
        assert_eq!(Event::parse(&f).event_id().as_deref(), Some("1721129985149x401"));
        f.insert("message_id".into(), json!(98765));
        assert_eq!(Event::parse(&f).event_id().as_deref(), Some("98765"), "numbers are accepted");
        for missing in [json!(""), Value::Null] {
            f.insert("message_id".into(), missing);
            assert_eq!(Event::parse(&f).event_id(), None, "no message_id: no deduplication");
        }
        f.remove("message_id");
        assert_eq!(Event::parse(&f).event_id(), None);
    }

    #[test]
    fn query_params_are_decoded() {
        assert_eq!(query_param("/hooks/a/messenger?secret=a%20b", "secret").as_deref(), Some("a b"));
        assert_eq!(query_param("/hooks/a/messenger", "secret"), None);
        assert_eq!(query_param("/hooks/a/messenger?x=1", "secret"), None);
    }

    #[test]
    fn stored_chat_round_trips_and_tolerates_old_entries() {
        let s = stored();
        let bytes = serde_json::to_vec(&s).unwrap();
        assert_eq!(serde_json::from_slice::<StoredChat>(&bytes).unwrap(), s);
        let old: StoredChat = serde_json::from_str(r#"{"conversation_id":"a","reply_context":"{}"}"#).unwrap();
        assert!(!old.operator);
    }
}
