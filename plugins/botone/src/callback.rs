//! The callback a Bot.one bot sends to `POST /hooks/{connector}/botone`
//! from an external custom block (or a webhook block) to talk to the user.
//! Bot.one lets the bot author write the request body, so Switchboard
//! defines it (see the README):
//!
//! ```json
//! {
//!   "callback_token": "<the dialog's switchboard_callback_token variable>",
//!   "dialog": "<the dialog's UUID, or its numeric id>",
//!   "token": "<the block's token>",
//!   "text": "What is your order number?",
//!   "buttons": ["Yes", {"label": "No, thanks", "value": "no"}],
//!   "files": ["https://example.com/menu.pdf", {"url": "https://…/a.png", "name": "a.png"}],
//!   "wait_for_answer": true,
//!   "handoff": false,
//!   "close": false,
//!   "id": "<optional: a unique id of this callback>"
//! }
//! ```
//!
//! Instead of `dialog`, `conversation` may carry the value of the
//! `switchboard_conversation` variable the plugin passes into every dialog.
//!
//! `callback_token` is per dialog: the plugin passes every dialog it starts a
//! `switchboard_callback_token` variable, an HMAC-SHA256 of the
//! conversation id keyed with the connector's `callback_token` setting
//! (which itself never leaves the host). A callback is accepted only for the
//! conversation its token was issued for: a token leaked from one dialog
//! cannot address another.
//! Unknown fields are ignored; `null` counts as absent. Pure: validation
//! only, the lookups happen in `lib.rs`.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use switchboard_sdk::{Button, Control, OutboundFile, OutboundMessage, RequestError};

/// A validated callback.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    /// The per-dialog token it presents (checked once the conversation is known).
    pub callback_token: String,
    /// The bot author's own id of this callback (`id`), when given.
    pub id: Option<String>,
    /// The Bot.one dialog (UUID or numeric id), when given.
    pub dialog: Option<String>,
    /// Switchboard's conversation id, when given.
    pub conversation: Option<String>,
    /// The block token (needed to complete the block later).
    pub token: Option<String>,
    /// Text for the user (Markdown).
    pub text: String,
    /// Quick-reply buttons.
    pub buttons: Vec<(String, String)>,
    /// Files: URL and optional name.
    pub files: Vec<(String, Option<String>)>,
    /// Whether the block waits for the user's answer.
    pub wait_for_answer: bool,
    /// Hand the conversation to a human, with this reason (may be empty).
    pub handoff: Option<String>,
    /// The bot is done: forget the dialog.
    pub close: bool,
}

impl Callback {
    /// The message to deliver to the user.
    pub fn message(&self) -> OutboundMessage {
        let control = match (&self.handoff, self.close) {
            (Some(reason), _) => Some(Control::Handoff(reason.clone())),
            (None, true) => Some(Control::Close),
            (None, false) => None,
        };
        OutboundMessage {
            text: self.text.clone(),
            buttons: self.buttons.iter().map(|(label, value)| Button { label: label.clone(), value: value.clone() }).collect(),
            files: self.files.iter().map(|(url, name)| OutboundFile { url: url.clone(), name: name.clone() }).collect(),
            control,
        }
    }
}

fn bad(message: impl Into<String>) -> RequestError {
    RequestError::BadRequest(message.into())
}

/// Compare secrets without an early exit on the first differing byte.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of the dialogs of `conversation_id`: hex HMAC-SHA256 keyed
/// with the connector's secret.
pub fn dialog_token(secret: &str, conversation_id: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(b"switchboard/botone/callback\0");
    mac.update(conversation_id.as_bytes());
    mac.finalize().into_bytes().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether `given` is the token issued for `conversation_id`.
pub fn check_dialog_token(given: &str, secret: &str, conversation_id: &str) -> Result<(), RequestError> {
    if !secret.is_empty() && secrets_match(given, &dialog_token(secret, conversation_id)) {
        return Ok(());
    }
    Err(RequestError::Forbidden(format!("the `callback_token` was not issued for conversation `{conversation_id}`")))
}

/// Validate a callback request: `POST`, a JSON object body with a
/// `callback_token` (403 otherwise), then every field (400 naming the
/// field). The token itself is checked once the conversation is known.
pub fn parse(method: &str, body: &[u8]) -> Result<Callback, RequestError> {
    if !method.eq_ignore_ascii_case("POST") {
        return Err(bad(format!("method {method} is not supported: Bot.one callbacks are POST requests with a JSON body")));
    }
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err(bad("the body must be a JSON object")),
        Err(e) => return Err(bad(format!("the body is not valid JSON ({e}); configure the block to send application/json"))),
    };
    let callback_token = match object.get("callback_token") {
        Some(Value::String(given)) if !given.is_empty() => given.clone(),
        _ => return Err(RequestError::Forbidden("missing `callback_token`".into())),
    };
    let fields = Fields(&object);
    let dialog = fields.dialog()?;
    let conversation = fields.non_empty_string("conversation")?;
    if dialog.is_none() && conversation.is_none() {
        return Err(bad("missing field `dialog` (the Bot.one dialog UUID or id; or `conversation` = the `switchboard_conversation` variable)"));
    }
    let text = match object.get("text") {
        None | Some(Value::Null) => return Err(bad("missing field `text`")),
        Some(Value::String(text)) => text.clone(),
        Some(_) => return Err(bad("field `text` must be a string")),
    };
    let token = fields.non_empty_string("token")?;
    let id = fields.id()?;
    let wait_for_answer = fields.bool("wait_for_answer")?;
    let close = fields.bool("close")?;
    let handoff = match object.get("handoff") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(String::new()),
        Some(Value::String(reason)) if reason.trim().is_empty() => None,
        Some(Value::String(reason)) => Some(reason.trim().to_string()),
        Some(_) => return Err(bad("field `handoff` must be a boolean or a string (the reason)")),
    };
    let buttons = fields.buttons()?;
    let files = fields.files()?;
    if wait_for_answer && token.is_none() {
        return Err(bad("field `token` is required when `wait_for_answer` is true (the block's token)"));
    }
    if handoff.is_some() && close {
        return Err(bad("fields `handoff` and `close` cannot both be set"));
    }
    if wait_for_answer && close {
        return Err(bad("fields `wait_for_answer` and `close` cannot both be true"));
    }
    if text.trim().is_empty() && buttons.is_empty() && files.is_empty() && handoff.is_none() && !close {
        return Err(bad("field `text` is empty"));
    }
    Ok(Callback { callback_token, id, dialog, conversation, token, text, buttons, files, wait_for_answer, handoff, close })
}

struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn dialog(&self) -> Result<Option<String>, RequestError> {
        match self.get("dialog") {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(Some(n.to_string())),
            Some(_) => Err(bad("field `dialog` must be a non-empty string (the dialog UUID) or a number (the dialog id)")),
        }
    }

    fn id(&self) -> Result<Option<String>, RequestError> {
        match self.get("id") {
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::String(_)) | None => self.non_empty_string("id"),
            Some(_) => Err(bad("field `id` must be a string or a number (a unique id of this callback)")),
        }
    }

    fn non_empty_string(&self, name: &str) -> Result<Option<String>, RequestError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(_) => Err(bad(format!("field `{name}` must be a string"))),
        }
    }

    fn bool(&self, name: &str) -> Result<bool, RequestError> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(bad(format!("field `{name}` must be true or false"))),
        }
    }

    fn array(&self, name: &str) -> Result<&[Value], RequestError> {
        match self.get(name) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(bad(format!("field `{name}` must be an array"))),
        }
    }

    fn buttons(&self) -> Result<Vec<(String, String)>, RequestError> {
        let mut buttons = Vec::new();
        for (i, item) in self.array("buttons")?.iter().enumerate() {
            let button = match item {
                Value::String(label) if !label.trim().is_empty() => (label.trim().to_string(), label.trim().to_string()),
                Value::Object(object) => {
                    let label = match object.get("label") {
                        Some(Value::String(label)) if !label.trim().is_empty() => label.trim().to_string(),
                        _ => return Err(bad(format!("field `buttons[{i}].label` must be a non-empty string"))),
                    };
                    let value = match object.get("value") {
                        None | Some(Value::Null) => label.clone(),
                        Some(Value::String(value)) if !value.trim().is_empty() => value.trim().to_string(),
                        Some(_) => return Err(bad(format!("field `buttons[{i}].value` must be a non-empty string"))),
                    };
                    (label, value)
                }
                _ => {
                    return Err(bad(format!("field `buttons[{i}]` must be a non-empty string or an object {{\"label\": …, \"value\": …}}")));
                }
            };
            buttons.push(button);
        }
        Ok(buttons)
    }

    fn files(&self) -> Result<Vec<(String, Option<String>)>, RequestError> {
        let is_url = |s: &str| s.starts_with("https://") || s.starts_with("http://");
        let mut files = Vec::new();
        for (i, item) in self.array("files")?.iter().enumerate() {
            let file = match item {
                Value::String(url) if is_url(url.trim()) => (url.trim().to_string(), None),
                Value::Object(object) => {
                    let url = match object.get("url") {
                        Some(Value::String(url)) if is_url(url.trim()) => url.trim().to_string(),
                        _ => return Err(bad(format!("field `files[{i}].url` must be an http(s) URL"))),
                    };
                    let name = match object.get("name") {
                        None | Some(Value::Null) => None,
                        Some(Value::String(name)) if name.trim().is_empty() => None,
                        Some(Value::String(name)) => Some(name.trim().to_string()),
                        Some(_) => return Err(bad(format!("field `files[{i}].name` must be a string"))),
                    };
                    (url, name)
                }
                _ => return Err(bad(format!("field `files[{i}]` must be an http(s) URL or an object {{\"url\": …, \"name\": …}}"))),
            };
            files.push(file);
        }
        Ok(files)
    }
}

/// The id the host deduplicates an accepted callback on, so a callback Bot.one
/// (or a proxy) sends twice reaches the user once.
///
/// The callback's own `id`, when the block sends one, scoped to the
/// conversation: `{conversation}:id:{id}`.
///
/// Otherwise nothing in the body is unique: Bot.one's API documents no id
/// for what an external block sends (the seed lists none), the block
/// `token` names one block *execution* (it is the same for every message
/// the block sends, and may repeat when a flow loops back to the same
/// block), and the text may legitimately repeat ("What is your order
/// number?" again after an invalid answer). So the id is derived from what
/// only a repeated delivery of the same callback shares:
///
/// * the conversation (`conversation`, the resolved conversation id);
/// * the turn: when the user last wrote (`turn`, Unix milliseconds stored by
///   `call-provider`; `0` before the first message), so the same block
///   asking again after the user's answer gets a new id;
/// * a hash of the content (token, text, buttons, files and flags), so the
///   several messages one block sends in a turn stay apart.
///
/// `{conversation}:{turn}:{hash}`. The price: a block that sends exactly
/// the same message twice within one turn, with nothing in between from
/// the user, is delivered once (send an `id` to avoid that).
pub fn event_id(conversation: &str, turn: Option<&str>, callback: &Callback) -> String {
    if let Some(id) = &callback.id {
        return format!("{conversation}:id:{id}");
    }
    let content =
        serde_json::json!([callback.token, callback.text, callback.buttons, callback.files, callback.wait_for_answer, callback.handoff, callback.close,]);
    let turn = turn.map(str::trim).filter(|t| !t.is_empty()).unwrap_or("0");
    format!("{conversation}:{turn}:{:016x}", fnv1a(content.to_string().as_bytes()))
}

/// 64-bit FNV-1a: a hash that stays the same across builds and platforms
/// (ids must match across plugin restarts and upgrades).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The `200` body answered to an accepted callback.
pub fn accepted_body(conversation_id: &str, waiting: bool) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"ok": true, "conversation": conversation_id, "waiting_for_answer": waiting}))
        .expect("a small JSON object serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "cb-secret-42";

    fn parse_json(body: Value) -> Result<Callback, RequestError> {
        parse("POST", body.to_string().as_bytes())
    }

    fn valid() -> Value {
        json!({
            "callback_token": SECRET,
            "dialog": "4c9b89a3-0fbc-4b01-9d9b-63a7b1ca4ffa",
            "token": "block-token-1",
            "text": "What is your order number?",
            "wait_for_answer": true,
        })
    }

    fn with(mut body: Value, key: &str, value: Value) -> Value {
        body[key] = value;
        body
    }

    fn without(mut body: Value, key: &str) -> Value {
        body.as_object_mut().unwrap().remove(key);
        body
    }

    fn bad_request(result: Result<Callback, RequestError>) -> String {
        match result {
            Err(RequestError::BadRequest(message)) => message,
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_documented_payload() {
        let callback = parse_json(valid()).unwrap();
        assert_eq!(callback.dialog.as_deref(), Some("4c9b89a3-0fbc-4b01-9d9b-63a7b1ca4ffa"));
        assert_eq!(callback.token.as_deref(), Some("block-token-1"));
        assert_eq!(callback.text, "What is your order number?");
        assert!(callback.wait_for_answer && callback.handoff.is_none() && !callback.close);
        let message = callback.message();
        assert_eq!(message.text, "What is your order number?");
        assert!(message.buttons.is_empty() && message.files.is_empty() && message.control.is_none());
    }

    #[test]
    fn full_payload_with_buttons_files_and_handoff() {
        let body = json!({
            "callback_token": SECRET,
            "dialog": 371,
            "text": "Connecting you…",
            "buttons": ["Yes", {"label": "No, thanks", "value": "no"}, {"label": "Menu"}],
            "files": ["https://example.com/menu.pdf", {"url": "https://example.com/a.png", "name": "a.png"}],
            "handoff": "asked for a human",
            "unknown_field": {"ignored": true},
        });
        let callback = parse_json(body).unwrap();
        assert_eq!(callback.dialog.as_deref(), Some("371"));
        assert!(!callback.wait_for_answer && callback.token.is_none());
        let message = callback.message();
        let buttons: Vec<(&str, &str)> = message.buttons.iter().map(|b| (b.label.as_str(), b.value.as_str())).collect();
        assert_eq!(buttons, [("Yes", "Yes"), ("No, thanks", "no"), ("Menu", "Menu")]);
        assert_eq!(message.files.len(), 2);
        assert_eq!(message.files[0].url, "https://example.com/menu.pdf");
        assert_eq!(message.files[0].name, None);
        assert_eq!(message.files[1].name.as_deref(), Some("a.png"));
        assert!(matches!(&message.control, Some(Control::Handoff(r)) if r == "asked for a human"));
    }

    #[test]
    fn handoff_true_and_close() {
        let m = parse_json(with(without(valid(), "wait_for_answer"), "handoff", json!(true))).unwrap().message();
        assert!(matches!(&m.control, Some(Control::Handoff(r)) if r.is_empty()));
        let m = parse_json(with(with(valid(), "handoff", json!(false)), "text", json!("x"))).unwrap().message();
        assert!(m.control.is_none());
        let c = parse_json(json!({"callback_token": SECRET, "dialog": "d", "text": "", "close": true})).unwrap();
        assert!(c.close);
        assert!(matches!(c.message().control, Some(Control::Close)));
    }

    #[test]
    fn conversation_instead_of_dialog() {
        let body = with(without(valid(), "dialog"), "conversation", json!("a1b2c3:55:17"));
        let callback = parse_json(body).unwrap();
        assert_eq!(callback.dialog, None);
        assert_eq!(callback.conversation.as_deref(), Some("a1b2c3:55:17"));
    }

    #[test]
    fn a_missing_callback_token_is_forbidden() {
        for body in [
            without(valid(), "callback_token"),
            with(valid(), "callback_token", json!("")),
            with(valid(), "callback_token", json!(42)),
            with(valid(), "callback_token", Value::Null),
        ] {
            assert!(matches!(parse_json(body.clone()), Err(RequestError::Forbidden(_))), "{body}");
        }
        assert_eq!(parse_json(valid()).unwrap().callback_token, SECRET);
    }

    #[test]
    fn a_dialog_token_opens_only_its_own_conversation() {
        let token = dialog_token(SECRET, "a1b2c3:55:17");
        assert_eq!(token.len(), 64);
        assert!(check_dialog_token(&token, SECRET, "a1b2c3:55:17").is_ok());
        assert!(check_dialog_token(&token, SECRET, "a1b2c3:55:18").is_err(), "aimed at another conversation");
        assert!(check_dialog_token(SECRET, SECRET, "a1b2c3:55:17").is_err(), "the connector's secret itself is not a dialog token");
        assert!(check_dialog_token(&token, "another-secret", "a1b2c3:55:17").is_err());
        // An unconfigured secret never matches.
        assert!(check_dialog_token(&dialog_token("", "c"), "", "c").is_err());
        match check_dialog_token("guess", SECRET, "c") {
            Err(RequestError::Forbidden(m)) => assert!(!m.contains(SECRET) && !m.contains("guess")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        assert!(bad_request(parse("POST", b"not json")).contains("not valid JSON"));
        assert!(bad_request(parse("POST", b"[1,2]")).contains("JSON object"));
        assert!(bad_request(parse("GET", valid().to_string().as_bytes())).contains("GET"));
    }

    #[test]
    fn each_field_error_names_the_field() {
        let cases: Vec<(Value, &str)> = vec![
            (without(valid(), "dialog"), "missing field `dialog`"),
            (with(valid(), "dialog", json!("  ")), "field `dialog`"),
            (with(valid(), "dialog", json!(true)), "field `dialog`"),
            (with(valid(), "dialog", json!(-1)), "field `dialog`"),
            (with(valid(), "conversation", json!(7)), "field `conversation` must be a string"),
            (without(valid(), "text"), "missing field `text`"),
            (with(valid(), "text", json!(5)), "field `text` must be a string"),
            (with(without(valid(), "wait_for_answer"), "text", json!(" ")), "field `text` is empty"),
            (with(valid(), "token", json!(["x"])), "field `token` must be a string"),
            (without(valid(), "token"), "field `token` is required when `wait_for_answer` is true"),
            (with(valid(), "token", json!("")), "field `token` is required"),
            (with(valid(), "wait_for_answer", json!("true")), "field `wait_for_answer` must be true or false"),
            (with(valid(), "close", json!(1)), "field `close` must be true or false"),
            (with(valid(), "handoff", json!(1)), "field `handoff` must be a boolean or a string"),
            (with(with(valid(), "handoff", json!(true)), "close", json!(true)), "`handoff` and `close`"),
            (with(valid(), "close", json!(true)), "`wait_for_answer` and `close`"),
            (with(valid(), "buttons", json!("Yes")), "field `buttons` must be an array"),
            (with(valid(), "buttons", json!(["ok", 3])), "field `buttons[1]`"),
            (with(valid(), "buttons", json!([""])), "field `buttons[0]`"),
            (with(valid(), "buttons", json!([{"value": "v"}])), "field `buttons[0].label`"),
            (with(valid(), "buttons", json!([{"label": "l", "value": 2}])), "field `buttons[0].value`"),
            (with(valid(), "files", json!({})), "field `files` must be an array"),
            (with(valid(), "files", json!(["ftp://x"])), "field `files[0]`"),
            (with(valid(), "files", json!([{"url": "nope"}])), "field `files[0].url`"),
            (with(valid(), "files", json!([{"url": "https://x/y", "name": 1}])), "field `files[0].name`"),
        ];
        for (body, expected) in cases {
            let message = bad_request(parse_json(body.clone()));
            assert!(message.contains(expected), "for {body}: expected {expected:?} in {message:?}");
        }
    }

    #[test]
    fn nulls_count_as_absent() {
        let body = json!({"callback_token": SECRET, "dialog": "d", "conversation": null, "text": "hi",
            "token": null, "wait_for_answer": null, "buttons": null, "files": null, "handoff": null, "close": null});
        let callback = parse_json(body).unwrap();
        assert!(!callback.wait_for_answer && callback.token.is_none() && callback.buttons.is_empty());
    }

    #[test]
    fn constant_time_compare() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abc", "abd"));
        assert!(!secrets_match("abc", "abcd"));
    }

    #[test]
    fn event_ids_tell_repeated_deliveries_from_new_messages() {
        let callback = parse_json(valid()).unwrap();
        let id = event_id("a1b2c3:55:17", Some("1771928985000"), &callback);
        assert!(id.starts_with("a1b2c3:55:17:1771928985000:"), "{id}");
        // The same callback delivered again (even formatted differently) has the same id.
        let again = parse("POST", serde_json::to_vec_pretty(&valid()).unwrap().as_slice()).unwrap();
        assert_eq!(event_id("a1b2c3:55:17", Some("1771928985000"), &again), id);
        // The same block asking again after the user answered: a new turn, a new id.
        assert_ne!(event_id("a1b2c3:55:17", Some("1771928999000"), &callback), id);
        // Another message of the same block in the same turn: other content, another id.
        let second = parse_json(with(valid(), "text", json!("And your name?"))).unwrap();
        assert_ne!(event_id("a1b2c3:55:17", Some("1771928985000"), &second), id);
        let flags = parse_json(with(without(valid(), "wait_for_answer"), "close", json!(true))).unwrap();
        assert_ne!(event_id("a1b2c3:55:17", Some("1771928985000"), &flags), id);
        // Another conversation.
        assert_ne!(event_id("a1b2c3:55:18", Some("1771928985000"), &callback), id);
        // Before the first user message was recorded.
        assert!(event_id("a1b2c3:55:17", None, &callback).starts_with("a1b2c3:55:17:0:"));
        // The hash is stable across builds: a fixed value.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn an_explicit_id_wins() {
        let callback = parse_json(with(valid(), "id", json!("order-step-1"))).unwrap();
        assert_eq!(callback.id.as_deref(), Some("order-step-1"));
        assert_eq!(event_id("c", Some("1"), &callback), "c:id:order-step-1");
        assert_eq!(event_id("c", Some("2"), &callback), "c:id:order-step-1", "the turn does not matter");
        assert_eq!(parse_json(with(valid(), "id", json!(42))).unwrap().id.as_deref(), Some("42"));
        assert_eq!(parse_json(with(valid(), "id", json!("  "))).unwrap().id, None);
        assert!(bad_request(parse_json(with(valid(), "id", json!(["x"])))).contains("field `id`"));
    }

    #[test]
    fn accepted_body_is_json() {
        let body: Value = serde_json::from_slice(&accepted_body("m:55:17", true)).unwrap();
        assert_eq!(body, json!({"ok": true, "conversation": "m:55:17", "waiting_for_answer": true}));
    }
}
