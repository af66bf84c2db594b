//! An emulated external messenger AI service (seed 001, a Bubble app).
//!
//! * `POST /api/1.1/wf/send_message_external`: checks
//!   `Authorization: Bearer {token}` (otherwise `401` with a Bubble-style JSON
//!   error), requires the string fields `task_id`, `chat_id` and `message`
//!   (otherwise `400`), records the request and answers
//!   `200 {"status":"success","response":{}}`. Failures are scriptable with
//!   [`FakeMessenger::fail_next`].
//! * The service answers later, on its own: [`FakeMessenger::post_webhook`]
//!   (JSON) and [`FakeMessenger::post_webhook_form`] (url-encoded) POST a
//!   reply webhook with the documented fields ([`ReplyWebhook`]) to the
//!   host's callback URL, as the "All messages" integration does.

use crate::util::{self, hex_id};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The Bearer token the fake accepts unless told otherwise.
pub const DEFAULT_TOKEN: &str = "messenger-token-5b1f";

/// The task id used by the tests (the documentation's example).
pub const TASK_ID: &str = "1721129985149x478019552540622850";

/// Path of the send method.
pub const SEND_PATH: &str = "/api/1.1/wf/send_message_external";

/// One recorded `send_message_external` request.
#[derive(Debug, Clone)]
pub struct SentMessage {
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
    /// The status the fake answered with.
    pub status: u16,
}

impl SentMessage {
    /// A header by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// A string field of the body.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.body.get(key)?.as_str()
    }

    /// `chat_id` (panics with the request when missing).
    pub fn chat_id(&self) -> &str {
        self.field("chat_id").unwrap_or_else(|| panic!("send_message_external without chat_id: {}", self.body))
    }

    /// `message` (panics with the request when missing).
    pub fn message(&self) -> &str {
        self.field("message").unwrap_or_else(|| panic!("send_message_external without message: {}", self.body))
    }
}

struct Inner {
    token: String,
    sent: Vec<SentMessage>,
    failures: VecDeque<(StatusCode, Value)>,
}

/// A running fake messenger service. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct FakeMessenger {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    client: reqwest::Client,
}

type Shared = Arc<Mutex<Inner>>;

impl FakeMessenger {
    /// Start on `127.0.0.1:0`, accepting [`DEFAULT_TOKEN`].
    pub async fn start() -> FakeMessenger {
        let inner = Arc::new(Mutex::new(Inner { token: DEFAULT_TOKEN.into(), sent: Vec::new(), failures: VecDeque::new() }));
        let router = Router::new().route(SEND_PATH, post(send_message_external)).with_state(inner.clone());
        let addr = util::serve(router).await;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("an HTTP client");
        FakeMessenger { addr, inner, client }
    }

    /// `http://127.0.0.1:PORT` (the app root, as `base_url`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The accepted token.
    pub fn token(&self) -> String {
        self.inner.lock().unwrap().token.clone()
    }

    /// Change the accepted token.
    pub fn set_token(&self, token: &str) {
        self.inner.lock().unwrap().token = token.into();
    }

    /// Answer the next `n` authorized sends with `status` and `body`.
    pub fn fail_next(&self, n: usize, status: u16, body: Value) {
        let status = StatusCode::from_u16(status).expect("a valid status");
        let mut inner = self.inner.lock().unwrap();
        for _ in 0..n {
            inner.failures.push_back((status, body.clone()));
        }
    }

    /// Every send received so far, in arrival order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.inner.lock().unwrap().sent.clone()
    }

    /// Wait until at least `n` sends arrived; panics with what arrived otherwise.
    pub async fn wait_for_sent(&self, n: usize, timeout: Duration) -> Vec<SentMessage> {
        let found = util::poll_until(timeout, || async {
            let sent = self.sent();
            (sent.len() >= n).then_some(sent)
        })
        .await;
        found.unwrap_or_else(|| panic!("expected at least {n} send_message_external request(s) within {timeout:?}; got: {:#?}", self.sent()))
    }

    /// POST `webhook` as JSON to `url` (the host's callback URL) and return
    /// the status and the response body.
    pub async fn post_webhook(&self, url: &str, webhook: &ReplyWebhook) -> (u16, String) {
        self.post_webhook_with(url, webhook, &[]).await
    }

    /// Like [`post_webhook`](Self::post_webhook), with extra headers.
    pub async fn post_webhook_with(&self, url: &str, webhook: &ReplyWebhook, headers: &[(&str, &str)]) -> (u16, String) {
        let mut request = self.client.post(url).json(&webhook.to_json());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("POST webhook to {url} failed: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// POST `webhook` as `application/x-www-form-urlencoded`.
    pub async fn post_webhook_form(&self, url: &str, webhook: &ReplyWebhook) -> (u16, String) {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&webhook.fields).finish();
        let response = self
            .client
            .post(url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST form webhook to {url} failed: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }
}

/// A reply webhook with every documented field, as strings (`yes`/`no`
/// flags). Start from [`ReplyWebhook::bot`], [`ReplyWebhook::operator`] or
/// [`ReplyWebhook::user`] and adjust.
#[derive(Debug, Clone)]
pub struct ReplyWebhook {
    /// Field name → value, in the documented order.
    pub fields: Vec<(String, String)>,
}

/// The staff link the fake puts in `panel_url` for a thread.
pub fn panel_url(thread_id: &str) -> String {
    format!("https://app.example-messenger.io/panel?dialog={thread_id}")
}

/// The view-only link the fake puts in `share_url` for a thread.
pub fn share_url(thread_id: &str) -> String {
    format!("https://app.example-messenger.io/share/{thread_id}")
}

impl ReplyWebhook {
    /// A message of `message_type` in the chat `external_chat_id`. Every
    /// webhook carries `panel_url` and `share_url` (staff links).
    pub fn new(message_type: &str, external_chat_id: &str, text: &str) -> Self {
        let thread_id = format!("1721129985149x{}", digits_of(external_chat_id));
        let fields = [
            ("channel_id", "1721129985149x100000000000000001".to_string()),
            ("close", "no".into()),
            ("company_id", "1721129985149x200000000000000002".into()),
            ("contacts", "".into()),
            ("external_chat_id", external_chat_id.into()),
            ("get_contact", "no".into()),
            ("interest", "no".into()),
            ("is_bot", "no".into()),
            ("manager_id", "1721129985149x300000000000000003".into()),
            ("message_id", format!("1721129985149x{}", hex_id(18))),
            ("message_text", text.into()),
            ("message_type", message_type.into()),
            ("operator", "no".into()),
            ("panel_url", panel_url(&thread_id)),
            ("share_url", share_url(&thread_id)),
            ("success", "no".into()),
            ("task_id", TASK_ID.into()),
            ("thread_id", thread_id),
            ("title", "John Doe".into()),
            ("wh_type", "new_message".into()),
        ];
        ReplyWebhook { fields: fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }
    }

    /// The AI answered.
    pub fn bot(external_chat_id: &str, text: &str) -> Self {
        Self::new("bot", external_chat_id, text)
    }

    /// An operator answered from the panel (the dialog is forwarded).
    pub fn operator(external_chat_id: &str, text: &str) -> Self {
        Self::new("operator", external_chat_id, text).set("operator", "yes")
    }

    /// The echo of the user's own message.
    pub fn user(external_chat_id: &str, text: &str) -> Self {
        Self::new("user", external_chat_id, text)
    }

    /// Set (or add) a field.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_string(),
            None => self.fields.push((key.to_string(), value.to_string())),
        }
        self
    }

    /// A field's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `close` = yes.
    pub fn closing(self) -> Self {
        self.set("close", "yes")
    }

    /// `operator` = yes.
    pub fn forwarded(self) -> Self {
        self.set("operator", "yes")
    }

    /// The JSON object the service POSTs.
    pub fn to_json(&self) -> Value {
        Value::Object(self.fields.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<Map<_, _>>())
    }
}

/// Digits for a Bubble-style id derived from a chat id (stable per chat).
fn digits_of(s: &str) -> String {
    let mut h: u64 = 1469598103934665603;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(1099511628211);
    }
    format!("{:018}", h % 1_000_000_000_000_000_000)
}

/// Bubble's workflow API error body.
pub fn error_body(status: u16, code: &str, message: &str) -> Value {
    json!({"statusCode": status, "body": {"status": code, "message": message}})
}

async fn send_message_external(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let lower: Vec<(String, String)> =
        headers.iter().map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    let parsed = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let mut guard = inner.lock().unwrap();
    let expected = format!("Bearer {}", guard.token);
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (status, answer) = if auth != expected {
        (StatusCode::UNAUTHORIZED, error_body(401, "UNAUTHORIZED", "You must be authenticated to call this workflow"))
    } else if let Some(failure) = guard.failures.pop_front() {
        failure
    } else if let Some(missing) = ["task_id", "chat_id", "message"].into_iter().find(|k| parsed.get(*k).and_then(Value::as_str).is_none_or(str::is_empty)) {
        (StatusCode::BAD_REQUEST, error_body(400, "MISSING_DATA", &format!("Missing parameter for workflow send_message_external: parameter {missing}")))
    } else {
        (StatusCode::OK, json!({"status": "success", "response": {}}))
    };
    guard.sent.push(SentMessage { headers: lower, body: parsed, status: status.as_u16() });
    drop(guard);
    (status, axum::Json(answer)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fake_messenger_checks_the_token_and_records_sends() {
        let fake = FakeMessenger::start().await;
        let url = format!("{}{SEND_PATH}", fake.base_url());
        let client = reqwest::Client::new();
        let body = json!({"task_id": TASK_ID, "chat_id": "sb-1", "message": "Hi"});

        let r = client.post(&url).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert_eq!(r.json::<Value>().await.unwrap()["body"]["status"], "UNAUTHORIZED");

        let r = client.post(&url).bearer_auth(DEFAULT_TOKEN).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "success", "response": {}}));

        let r = client.post(&url).bearer_auth(DEFAULT_TOKEN).json(&json!({"task_id": TASK_ID, "chat_id": "sb-1"})).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);

        fake.fail_next(1, 503, error_body(503, "UNAVAILABLE", "down"));
        let r = client.post(&url).bearer_auth(DEFAULT_TOKEN).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 503);

        let sent = fake.wait_for_sent(4, Duration::from_secs(1)).await;
        let statuses: Vec<u16> = sent.iter().map(|s| s.status).collect();
        assert_eq!(statuses, vec![401, 200, 400, 503]);
        assert_eq!(sent[1].header("authorization"), Some(format!("Bearer {DEFAULT_TOKEN}").as_str()));
        assert_eq!(sent[1].chat_id(), "sb-1");
        assert_eq!(sent[1].message(), "Hi");
    }

    #[test]
    fn reply_webhook_has_every_documented_field() {
        let hook = ReplyWebhook::bot("sb-1", "Hello").closing();
        let names: Vec<&str> = hook.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "channel_id",
                "close",
                "company_id",
                "contacts",
                "external_chat_id",
                "get_contact",
                "interest",
                "is_bot",
                "manager_id",
                "message_id",
                "message_text",
                "message_type",
                "operator",
                "panel_url",
                "share_url",
                "success",
                "task_id",
                "thread_id",
                "title",
                "wh_type",
            ]
        );
        assert_eq!(hook.get("close"), Some("yes"));
        assert_eq!(hook.to_json()["message_text"], "Hello");
        assert_eq!(ReplyWebhook::operator("sb-1", "x").get("operator"), Some("yes"));
        assert_eq!(ReplyWebhook::bot("sb-1", "x").get("thread_id"), ReplyWebhook::bot("sb-1", "y").get("thread_id"));
    }
}
