//! LiveChat webhooks: parsing, verification of `secret_key`, and what each
//! one means for the conversation. Pure (no host calls).

use serde::Deserialize;
use serde_json::Value;
use switchboard_sdk::RequestError;

/// A webhook body:
/// `{"webhook_id","secret_key","action","organization_id","payload":{...},"additional_data":{...}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Webhook {
    /// LiveChat's id of the webhook registration.
    #[serde(default)]
    pub webhook_id: String,
    /// The secret configured with the webhook (compared with `webhook_secret`).
    #[serde(default)]
    pub secret_key: Option<String>,
    /// `incoming_event`, `chat_deactivated`, `chat_transferred`, ...
    pub action: String,
    /// The organization the event belongs to.
    #[serde(default)]
    pub organization_id: String,
    /// Action-specific data; always has `chat_id` for chat webhooks.
    #[serde(default)]
    pub payload: Value,
}

impl Webhook {
    /// The id the host deduplicates this webhook's replies on, so a webhook
    /// LiveChat delivers again (it retries up to 10 times in 6 hours when an
    /// answer is slow or not `200`) reaches the user once. `webhook_id` is
    /// the id of the webhook *registration*, the same for every delivery, so
    /// it cannot serve:
    ///
    /// * `incoming_event`: the event's own id (`payload.event.id`, e.g.
    ///   `PGDGHT5G_3`), unique per event;
    /// * `chat_deactivated`: a thread is closed once, so
    ///   `chat_deactivated:{chat_id}:{thread_id}`;
    /// * anything else (`chat_transferred` carries no id, and a chat may be
    ///   transferred to the same place twice in one thread): `None`, no
    ///   deduplication.
    pub fn event_id(&self) -> Option<String> {
        fn text(value: Option<&Value>) -> Option<&str> {
            value.and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
        }
        match self.action.as_str() {
            "incoming_event" => text(self.payload.get("event").and_then(|event| event.get("id"))).map(str::to_string),
            "chat_deactivated" => {
                let chat = text(self.payload.get("chat_id"))?;
                let thread = text(self.payload.get("thread_id"))?;
                Some(format!("chat_deactivated:{chat}:{thread}"))
            }
            _ => None,
        }
    }
}

/// What a verified webhook asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message someone wrote in the chat (`incoming_event`, type `message`).
    Message {
        /// The chat.
        chat_id: String,
        /// The event id.
        event_id: String,
        /// Who wrote it (an agent's login, or a customer id).
        author_id: String,
        /// The text.
        text: String,
    },
    /// The chat was closed (`chat_deactivated`).
    Deactivated {
        /// The chat.
        chat_id: String,
    },
    /// The chat moved to other groups or agents (`chat_transferred`).
    Transferred {
        /// The chat.
        chat_id: String,
        /// Target groups.
        group_ids: Vec<u64>,
        /// Target agents.
        agent_ids: Vec<String>,
        /// LiveChat's reason (`manual`, `assigned`, ...), if given.
        reason: Option<String>,
    },
    /// Accepted but nothing to do (other event types, internal notes, other actions).
    Ignored {
        /// The chat, when the payload names one.
        chat_id: Option<String>,
        /// For the log.
        why: String,
    },
}

impl Event {
    /// The chat the event is about.
    pub fn chat_id(&self) -> Option<&str> {
        match self {
            Event::Message { chat_id, .. } | Event::Deactivated { chat_id } | Event::Transferred { chat_id, .. } => Some(chat_id),
            Event::Ignored { chat_id, .. } => chat_id.as_deref(),
        }
    }
}

/// Parse the raw body; anything but a JSON object with an `action` is a bad request.
pub fn parse(body: &[u8]) -> Result<Webhook, RequestError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| RequestError::BadRequest(format!("the LiveChat webhook body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(RequestError::BadRequest("the LiveChat webhook body is not a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| RequestError::BadRequest(format!("the LiveChat webhook body is not a webhook: {e}")))
}

/// Compare the webhook's `secret_key` with the configured secret in constant time.
pub fn verify(webhook: &Webhook, secret: &str) -> Result<(), RequestError> {
    match &webhook.secret_key {
        Some(key) if secrets_equal(key.as_bytes(), secret.as_bytes()) => Ok(()),
        Some(_) => Err(RequestError::Forbidden("the LiveChat webhook's secret_key does not match `webhook_secret`".into())),
        None => Err(RequestError::Forbidden("the LiveChat webhook has no secret_key".into())),
    }
}

/// Equality that takes the same time wherever the inputs differ (only the
/// length may leak).
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decide what a verified webhook means.
pub fn interpret(webhook: &Webhook) -> Result<Event, RequestError> {
    let payload = &webhook.payload;
    let chat_id = payload.get("chat_id").and_then(Value::as_str).filter(|id| !id.is_empty()).map(str::to_string);
    let require_chat = || chat_id.clone().ok_or_else(|| RequestError::BadRequest(format!("LiveChat `{}` webhook without payload.chat_id", webhook.action)));
    match webhook.action.as_str() {
        "incoming_event" => {
            let chat_id = require_chat()?;
            let Some(event) = payload.get("event").filter(|e| e.is_object()) else {
                return Err(RequestError::BadRequest("LiveChat `incoming_event` webhook without payload.event".into()));
            };
            let field = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or("").to_string();
            let kind = field("type");
            if kind != "message" {
                return Ok(Event::Ignored { chat_id: Some(chat_id), why: format!("event type `{kind}`") });
            }
            let visibility = field("visibility");
            if !visibility.is_empty() && visibility != "all" {
                return Ok(Event::Ignored { chat_id: Some(chat_id), why: format!("message visible to `{visibility}` only") });
            }
            let text = field("text");
            if text.trim().is_empty() {
                return Ok(Event::Ignored { chat_id: Some(chat_id), why: "empty message".into() });
            }
            Ok(Event::Message { chat_id, event_id: field("id"), author_id: field("author_id"), text })
        }
        "chat_deactivated" => Ok(Event::Deactivated { chat_id: require_chat()? }),
        "chat_transferred" => {
            let chat_id = require_chat()?;
            let target = payload.get("transferred_to");
            let list = |key: &str| target.and_then(|t| t.get(key)).and_then(Value::as_array).cloned().unwrap_or_default();
            let group_ids = list("group_ids").iter().filter_map(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))).collect();
            let agent_ids = list("agent_ids").iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
            let reason = payload.get("reason").and_then(Value::as_str).map(str::to_string);
            Ok(Event::Transferred { chat_id, group_ids, agent_ids, reason })
        }
        other => Ok(Event::Ignored { chat_id, why: format!("action `{other}`") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(action: &str, payload: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "webhook_id": "3c8c5a4e1a3b4b4b8e0f0a8b7c6d5e4f",
            "secret_key": "s3cret",
            "action": action,
            "organization_id": "390e44e6-f1e6-0368c-z6ddb-74g14508c2ex",
            "payload": payload,
            "additional_data": {"chat_properties": {}, "chat_presence_user_ids": ["agent@example.com"]},
        }))
        .unwrap()
    }

    fn event(action: &str, payload: Value) -> Event {
        let webhook = parse(&body(action, payload)).unwrap();
        verify(&webhook, "s3cret").unwrap();
        interpret(&webhook).unwrap()
    }

    #[test]
    fn agent_message() {
        let e = event(
            "incoming_event",
            json!({"chat_id":"PJ0MRSHTDG","thread_id":"PGDGHT5G","event":{"id":"PGDGHT5G_3","type":"message",
                   "author_id":"agent@example.com","created_at":"2026-11-21T10:15:30.000000Z","text":"hello there","visibility":"all"}}),
        );
        assert_eq!(
            e,
            Event::Message { chat_id: "PJ0MRSHTDG".into(), event_id: "PGDGHT5G_3".into(), author_id: "agent@example.com".into(), text: "hello there".into() }
        );
        assert_eq!(e.chat_id(), Some("PJ0MRSHTDG"));
    }

    #[test]
    fn other_events_and_internal_notes_are_ignored() {
        let file = event("incoming_event", json!({"chat_id":"C1","event":{"id":"e","type":"file","author_id":"a","url":"https://x"}}));
        assert!(matches!(file, Event::Ignored { ref why, .. } if why.contains("file")));
        let note = event("incoming_event", json!({"chat_id":"C1","event":{"id":"e","type":"message","author_id":"a","text":"psst","visibility":"agents"}}));
        assert!(matches!(note, Event::Ignored { ref why, .. } if why.contains("agents")));
        let empty = event("incoming_event", json!({"chat_id":"C1","event":{"id":"e","type":"message","author_id":"a","text":"  "}}));
        assert!(matches!(empty, Event::Ignored { .. }));
        let other = event("incoming_chat", json!({"chat":{"id":"C1"}}));
        assert_eq!(other, Event::Ignored { chat_id: None, why: "action `incoming_chat`".into() });
    }

    #[test]
    fn deactivated_and_transferred() {
        assert_eq!(
            event("chat_deactivated", json!({"chat_id":"C1","thread_id":"T1","user_id":"agent@example.com"})),
            Event::Deactivated { chat_id: "C1".into() }
        );
        assert_eq!(
            event(
                "chat_transferred",
                json!({"chat_id":"C1","thread_id":"T1","requester_id":"agent@example.com","reason":"manual",
                       "transferred_to":{"group_ids":[19],"agent_ids":["anna@example.com"]},
                       "queue":{"position":2,"wait_time":30,"queued_at_us":1771928985000000u64}})
            ),
            Event::Transferred { chat_id: "C1".into(), group_ids: vec![19], agent_ids: vec!["anna@example.com".into()], reason: Some("manual".into()) }
        );
    }

    #[test]
    fn event_ids_for_deduplication() {
        let id = |action: &str, payload: Value| parse(&body(action, payload)).unwrap().event_id();
        assert_eq!(id("incoming_event", json!({"chat_id":"C1","thread_id":"T1","event":{"id":"T1_3","type":"message","text":"hi"}})).as_deref(), Some("T1_3"));
        assert_eq!(id("incoming_event", json!({"chat_id":"C1","event":{"type":"message","text":"hi"}})), None);
        assert_eq!(id("chat_deactivated", json!({"chat_id":"C1","thread_id":"T1","user_id":"agent@example.com"})).as_deref(), Some("chat_deactivated:C1:T1"));
        assert_eq!(id("chat_deactivated", json!({"chat_id":"C1"})), None, "no thread: nothing stable");
        assert_eq!(id("chat_transferred", json!({"chat_id":"C1","thread_id":"T1","transferred_to":{"group_ids":[19]}})), None);
        // The registration's webhook_id is the same for every delivery: never the event id.
        let first = parse(&body("incoming_event", json!({"chat_id":"C1","event":{"id":"T1_3"}}))).unwrap();
        let second = parse(&body("incoming_event", json!({"chat_id":"C1","event":{"id":"T1_4"}}))).unwrap();
        assert_eq!(first.webhook_id, second.webhook_id);
        assert_ne!(first.event_id(), second.event_id());
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        assert!(matches!(parse(b"not json"), Err(RequestError::BadRequest(_))));
        assert!(matches!(parse(b"[1,2]"), Err(RequestError::BadRequest(_))));
        assert!(matches!(parse(br#"{"secret_key":"s"}"#), Err(RequestError::BadRequest(_))));
        let no_chat = parse(&body("chat_deactivated", json!({"thread_id":"T1"}))).unwrap();
        assert!(matches!(interpret(&no_chat), Err(RequestError::BadRequest(_))));
        let no_event = parse(&body("incoming_event", json!({"chat_id":"C1"}))).unwrap();
        assert!(matches!(interpret(&no_event), Err(RequestError::BadRequest(_))));
    }

    #[test]
    fn verification() {
        let webhook = parse(&body("chat_deactivated", json!({"chat_id":"C1"}))).unwrap();
        assert!(verify(&webhook, "s3cret").is_ok());
        assert!(matches!(verify(&webhook, "s3cres"), Err(RequestError::Forbidden(_))));
        assert!(matches!(verify(&webhook, "s3cret-longer"), Err(RequestError::Forbidden(_))));
        assert!(matches!(verify(&webhook, ""), Err(RequestError::Forbidden(_))));
        let unsigned = parse(br#"{"action":"chat_deactivated","payload":{"chat_id":"C1"}}"#).unwrap();
        assert!(matches!(verify(&unsigned, "s3cret"), Err(RequestError::Forbidden(_))));
        assert!(secrets_equal(b"", b""));
        assert!(!secrets_equal(b"a", b"b"));
    }
}
