//! An emulated LiveChat (text.com): the accounts service's customer tokens
//! and the Agent / Customer Chat API v3.5 actions the `livechat` handoff
//! plugin uses, plus builders for LiveChat's webhooks.
//!
//! * `POST /v2/customer/token` (accounts): `{"grant_type":"cookie","client_id",
//!   "organization_id","redirect_uri"?}` → `{"access_token","entity_id",
//!   "expires_in":28800,"token_type":"Bearer","organization_id"}`. Every call
//!   creates a new customer (no cookie is sent back), like LiveChat does for a
//!   cookie grant without the `__lc_cid` cookie.
//! * `POST /v3.5/agent/action/{start_chat|add_user_to_chat|transfer_chat|deactivate_chat}`
//!   with `Authorization: Basic {base64(account_id:PAT)}`.
//! * `POST /v3.5/customer/action/send_event?organization_id=...` with
//!   `Authorization: Bearer {customer access_token}`.
//!
//! Errors use LiveChat's envelope `{"error":{"type":"...","message":"..."}}`
//! (the accounts service answers OAuth-style `{"error","error_description"}`).
//! Chats keep their state (groups, users, active), so closing a closed chat
//! answers `chat_inactive` and unknown chats `not_found`.

use crate::util::{self, hex_id, uuid};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The app's client id the fake accepts.
pub const CLIENT_ID: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
/// The organization id the fake accepts.
pub const ORGANIZATION_ID: &str = "390e44e6-f1e6-4368-a6dd-b74a14508c2e";
/// The account id of the agent whose personal access token the plugin uses.
pub const ACCOUNT_ID: &str = "5c9871d5-372c-4a53-8d0b-3b8e1f2a6b7c";
/// That agent's personal access token.
pub const PAT: &str = "dal:Rk9PQkFSX1BBVF9URVNU";
/// The login (`author_id`) of the human operator who answers in the tests.
pub const OPERATOR: &str = "anna@example.com";
/// The secret key configured for the webhooks.
pub const WEBHOOK_SECRET: &str = "lc-webhook-secret-7f3a";

/// One recorded request.
#[derive(Debug, Clone)]
pub struct LiveChatCall {
    /// `customer/token`, `agent/start_chat`, `customer/send_event`, ...
    pub action: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// `authorization` header (empty when absent).
    pub authorization: String,
    /// The JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
    /// The status the fake answered with.
    pub status: u16,
    /// The response body.
    pub response: Value,
}

/// A chat as the fake knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    /// The chat id.
    pub id: String,
    /// The current thread.
    pub thread_id: String,
    /// Groups with access (start_chat, then transfers).
    pub group_ids: Vec<u64>,
    /// Customers added to the chat.
    pub customers: Vec<String>,
    /// False after `deactivate_chat`.
    pub active: bool,
    /// Messages in the chat: (author id, text).
    pub messages: Vec<(String, String)>,
}

struct Inner {
    calls: Vec<LiveChatCall>,
    /// Valid customer access tokens → customer id.
    tokens: HashMap<String, String>,
    /// Every customer id issued (customers outlive their tokens).
    customers: HashSet<String>,
    chats: HashMap<String, Chat>,
    failures: HashMap<String, VecDeque<(StatusCode, Value)>>,
    next_event: u64,
}

type Shared = Arc<Mutex<Inner>>;

/// A running fake LiveChat. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct FakeLiveChat {
    addr: SocketAddr,
    inner: Shared,
    client: reqwest::Client,
}

impl FakeLiveChat {
    /// Start the fake on `127.0.0.1:0`.
    pub async fn start() -> FakeLiveChat {
        let inner = Arc::new(Mutex::new(Inner {
            calls: Vec::new(),
            tokens: HashMap::new(),
            customers: HashSet::new(),
            chats: HashMap::new(),
            failures: HashMap::new(),
            next_event: 1,
        }));
        let router = Router::new()
            .route("/v2/customer/token", post(customer_token))
            .route("/v3.5/agent/action/{action}", post(agent_action))
            .route("/v3.5/customer/action/{action}", post(customer_action))
            .with_state(inner.clone());
        let addr = util::serve(router).await;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("an HTTP client");
        FakeLiveChat { addr, inner, client }
    }

    /// `http://127.0.0.1:PORT/v3.5` (the plugin's `api_url`).
    pub fn api_url(&self) -> String {
        format!("http://{}/v3.5", self.addr)
    }

    /// `http://127.0.0.1:PORT` (the plugin's `accounts_url`).
    pub fn accounts_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Base64 agent token (`account_id:PAT`) the fake accepts.
    pub fn agent_token(&self) -> String {
        base64(format!("{ACCOUNT_ID}:{PAT}").as_bytes())
    }

    /// Every request so far, in arrival order.
    pub fn calls(&self) -> Vec<LiveChatCall> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// The requests of one action (`customer/token`, `agent/start_chat`, `customer/send_event`, ...).
    pub fn calls_to(&self, action: &str) -> Vec<LiveChatCall> {
        self.calls().into_iter().filter(|c| c.action == action).collect()
    }

    /// Wait until at least `n` requests of `action` arrived and return them.
    /// Panics with every request seen so far on timeout.
    pub async fn wait_for_action(&self, action: &str, n: usize, timeout: Duration) -> Vec<LiveChatCall> {
        let found = util::poll_until(timeout, || async {
            let calls = self.calls_to(action);
            (calls.len() >= n).then_some(calls)
        })
        .await;
        found.unwrap_or_else(|| panic!("expected at least {n} LiveChat `{action}` request(s) within {timeout:?}; all requests: {:#?}", self.calls()))
    }

    /// A chat by id.
    pub fn chat(&self, chat_id: &str) -> Option<Chat> {
        self.inner.lock().unwrap().chats.get(chat_id).cloned()
    }

    /// Every chat the fake started.
    pub fn chats(&self) -> Vec<Chat> {
        self.inner.lock().unwrap().chats.values().cloned().collect()
    }

    /// Answer the next `n` requests of `action` (after the auth check) with
    /// `status` and `{"error":{"type":error_type,"message":message}}`.
    pub fn fail_next(&self, action: &str, n: usize, status: u16, error_type: &str, message: &str) {
        let status = StatusCode::from_u16(status).expect("a valid HTTP status");
        let mut inner = self.inner.lock().unwrap();
        let queue = inner.failures.entry(action.to_string()).or_default();
        for _ in 0..n {
            queue.push_back((status, error_body(error_type, message)));
        }
    }

    /// Invalidate every customer access token issued so far (they expire
    /// after `expires_in` seconds on the real service).
    pub fn expire_customer_tokens(&self) {
        self.inner.lock().unwrap().tokens.clear();
    }

    /// POST a webhook body to `url` as LiveChat does (JSON) and return the
    /// status and the response text.
    pub async fn deliver_webhook(&self, url: &str, body: &Value) -> (u16, String) {
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", "LiveChat-Webhooks")
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST of a LiveChat webhook to {url} failed: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// POST any raw body (malformed webhooks) and return the status.
    pub async fn deliver_raw(&self, url: &str, body: &str) -> u16 {
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST to {url} failed: {e}"));
        response.status().as_u16()
    }

    /// The operator writes `text` in the chat: records it and returns the
    /// `incoming_event` webhook (author_type agent) signed with `secret`.
    pub fn operator_message(&self, secret: &str, chat_id: &str, text: &str) -> Value {
        let (thread_id, event_id) = self.new_event(chat_id, OPERATOR, text);
        webhook(
            secret,
            "incoming_event",
            json!({
                "chat_id": chat_id,
                "thread_id": thread_id,
                "event": {
                    "id": event_id,
                    "custom_id": "",
                    "type": "message",
                    "author_id": OPERATOR,
                    "created_at": "2026-11-21T10:15:30.123456Z",
                    "text": text,
                    "visibility": "all",
                },
            }),
        )
    }

    /// The operator closes the chat: marks it inactive and returns the
    /// `chat_deactivated` webhook signed with `secret`.
    pub fn operator_closes(&self, secret: &str, chat_id: &str) -> Value {
        let thread_id = {
            let mut inner = self.inner.lock().unwrap();
            let chat = inner.chats.get_mut(chat_id);
            chat.map(|c| {
                c.active = false;
                c.thread_id.clone()
            })
            .unwrap_or_else(id10)
        };
        webhook(secret, "chat_deactivated", json!({"chat_id": chat_id, "thread_id": thread_id, "user_id": OPERATOR}))
    }

    /// The chat moves to `group_ids` / `agent_ids`: returns the
    /// `chat_transferred` webhook signed with `secret`.
    pub fn transferred(&self, secret: &str, chat_id: &str, group_ids: &[u64], agent_ids: &[&str]) -> Value {
        let thread_id = {
            let mut inner = self.inner.lock().unwrap();
            inner
                .chats
                .get_mut(chat_id)
                .map(|c| {
                    c.group_ids = group_ids.to_vec();
                    c.thread_id.clone()
                })
                .unwrap_or_else(id10)
        };
        webhook(
            secret,
            "chat_transferred",
            json!({
                "chat_id": chat_id,
                "thread_id": thread_id,
                "requester_id": OPERATOR,
                "reason": "manual",
                "transferred_to": {"group_ids": group_ids, "agent_ids": agent_ids},
                "queue": {"position": 1, "wait_time": 12, "queued_at_us": 1_771_928_985_000_000u64},
            }),
        )
    }

    fn new_event(&self, chat_id: &str, author: &str, text: &str) -> (String, String) {
        let mut inner = self.inner.lock().unwrap();
        let n = inner.next_event;
        inner.next_event += 1;
        let Some(chat) = inner.chats.get_mut(chat_id) else { return (id10(), format!("{}_{n}", id10())) };
        chat.messages.push((author.to_string(), text.to_string()));
        (chat.thread_id.clone(), format!("{}_{n}", chat.thread_id))
    }
}

/// A webhook body as LiveChat sends it.
pub fn webhook(secret: &str, action: &str, payload: Value) -> Value {
    json!({
        "webhook_id": hex_id(32),
        "secret_key": secret,
        "action": action,
        "organization_id": ORGANIZATION_ID,
        "payload": payload,
        "additional_data": {
            "chat_properties": {"source": {"client_id": CLIENT_ID}},
            "chat_presence_user_ids": [OPERATOR],
        },
    })
}

/// LiveChat's error envelope.
pub fn error_body(error_type: &str, message: &str) -> Value {
    json!({"error": {"type": error_type, "message": message}})
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A LiveChat-style upper-case id (`PJ0MRSHTDG`).
fn id10() -> String {
    hex_id(10).to_ascii_uppercase()
}

fn authorization(headers: &HeaderMap) -> String {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

fn record(inner: &mut Inner, action: String, query: Option<String>, headers: &HeaderMap, body: &Bytes, status: StatusCode, response: &Value) {
    inner.calls.push(LiveChatCall {
        action,
        query,
        authorization: authorization(headers),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
        status: status.as_u16(),
        response: response.clone(),
    });
}

fn respond(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn json_object(body: &Bytes) -> Option<Value> {
    serde_json::from_slice::<Value>(body).ok().filter(Value::is_object)
}

async fn customer_token(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut guard = inner.lock().unwrap();
    let (status, response) = token_outcome(&mut guard, &body);
    record(&mut guard, "customer/token".into(), None, &headers, &body, status, &response);
    respond(status, response)
}

fn token_outcome(inner: &mut Inner, body: &Bytes) -> (StatusCode, Value) {
    let oauth = |code: &str, description: &str| (StatusCode::BAD_REQUEST, json!({"error": code, "error_description": description}));
    if let Some((status, body)) = inner.failures.get_mut("customer/token").and_then(VecDeque::pop_front) {
        return (status, body);
    }
    let Some(request) = json_object(body) else { return oauth("invalid_request", "request body is not valid JSON") };
    let field = |key: &str| request.get(key).and_then(Value::as_str).unwrap_or("");
    if field("grant_type") != "cookie" {
        return oauth("unsupported_grant_type", "grant_type must be one of: cookie, agent_token");
    }
    if field("client_id") != CLIENT_ID {
        return oauth("invalid_client", "client_id not found");
    }
    if field("organization_id") != ORGANIZATION_ID {
        return oauth("invalid_request", "organization_id is invalid");
    }
    let access_token = format!("dal:{}", hex_id(40));
    let entity_id = uuid();
    inner.tokens.insert(access_token.clone(), entity_id.clone());
    inner.customers.insert(entity_id.clone());
    (
        StatusCode::OK,
        json!({
            "access_token": access_token,
            "entity_id": entity_id,
            "expires_in": 28800,
            "token_type": "Bearer",
            "organization_id": ORGANIZATION_ID,
        }),
    )
}

async fn agent_action(State(inner): State<Shared>, Path(action): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let mut guard = inner.lock().unwrap();
    let (status, response) = agent_outcome(&mut guard, &action, &headers, &body);
    record(&mut guard, format!("agent/{action}"), None, &headers, &body, status, &response);
    respond(status, response)
}

fn invalid(message: &str) -> (StatusCode, Value) {
    (StatusCode::BAD_REQUEST, error_body("validation", message))
}

fn agent_outcome(inner: &mut Inner, action: &str, headers: &HeaderMap, body: &Bytes) -> (StatusCode, Value) {
    let expected = format!("Basic {}", base64(format!("{ACCOUNT_ID}:{PAT}").as_bytes()));
    if authorization(headers) != expected {
        return (StatusCode::UNAUTHORIZED, error_body("authentication", "Invalid access token"));
    }
    if let Some(failure) = inner.failures.get_mut(&format!("agent/{action}")).and_then(VecDeque::pop_front) {
        return failure;
    }
    let Some(request) = json_object(body) else { return invalid("Wrong format of request") };
    let str_at = |pointer: &str| request.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_string();
    let ids_at = |pointer: &str| -> Option<Vec<u64>> {
        let items = request.pointer(pointer)?.as_array()?;
        let ids: Option<Vec<u64>> = items.iter().map(Value::as_u64).collect();
        ids.filter(|ids| !ids.is_empty())
    };
    match action {
        "start_chat" => {
            let Some(group_ids) = ids_at("/chat/access/group_ids") else {
                return invalid("`chat.access.group_ids` must be a non-empty array of group ids");
            };
            let thread_id = id10();
            let chat_id = id10();
            let mut messages = Vec::new();
            let mut event_ids = Vec::new();
            for event in request.pointer("/chat/thread/events").and_then(Value::as_array).cloned().unwrap_or_default() {
                if event.get("type").and_then(Value::as_str) != Some("message") {
                    return invalid("only message events are supported by this fake");
                }
                let text = event.get("text").and_then(Value::as_str).unwrap_or("");
                if text.is_empty() {
                    return invalid("`chat.thread.events[0].text` cannot be empty");
                }
                event_ids.push(format!("{thread_id}_{}", inner.next_event));
                inner.next_event += 1;
                messages.push((ACCOUNT_ID.to_string(), text.to_string()));
            }
            inner
                .chats
                .insert(chat_id.clone(), Chat { id: chat_id.clone(), thread_id: thread_id.clone(), group_ids, customers: Vec::new(), active: true, messages });
            (StatusCode::OK, json!({"chat_id": chat_id, "thread_id": thread_id, "event_ids": event_ids}))
        }
        "add_user_to_chat" => {
            let chat_id = str_at("/chat_id");
            let user_id = str_at("/user_id");
            if str_at("/user_type") != "customer" && str_at("/user_type") != "agent" {
                return invalid("`user_type` must be `agent` or `customer`");
            }
            if str_at("/visibility").is_empty() {
                return invalid("`visibility` is required");
            }
            if str_at("/user_type") == "customer" && !inner.customers.contains(&user_id) {
                return (StatusCode::NOT_FOUND, error_body("not_found", "Customer not found"));
            }
            match chat_for_write(inner, &chat_id) {
                Ok(chat) => {
                    chat.customers.push(user_id);
                    (StatusCode::OK, json!({}))
                }
                Err(error) => error,
            }
        }
        "transfer_chat" => {
            let chat_id = str_at("/id");
            if str_at("/target/type") != "group" && str_at("/target/type") != "agent" {
                return invalid("`target.type` must be `group` or `agent`");
            }
            let Some(ids) = ids_at("/target/ids") else { return invalid("`target.ids` must be a non-empty array") };
            match chat_for_write(inner, &chat_id) {
                Ok(chat) => {
                    chat.group_ids = ids;
                    (StatusCode::OK, json!({}))
                }
                Err(error) => error,
            }
        }
        "deactivate_chat" => {
            let chat_id = str_at("/id");
            match chat_for_write(inner, &chat_id) {
                Ok(chat) => {
                    chat.active = false;
                    (StatusCode::OK, json!({}))
                }
                Err(error) => error,
            }
        }
        other => (StatusCode::NOT_FOUND, error_body("not_found", &format!("Unknown action {other}"))),
    }
}

/// An active chat, or LiveChat's `not_found` / `chat_inactive` answer.
fn chat_for_write<'a>(inner: &'a mut Inner, chat_id: &str) -> Result<&'a mut Chat, (StatusCode, Value)> {
    match inner.chats.get_mut(chat_id) {
        None => Err((StatusCode::NOT_FOUND, error_body("not_found", "Chat not found"))),
        Some(chat) if !chat.active => Err((StatusCode::UNPROCESSABLE_ENTITY, error_body("chat_inactive", "No active chat thread"))),
        Some(chat) => Ok(chat),
    }
}

async fn customer_action(State(inner): State<Shared>, Path(action): Path<String>, RawQuery(query): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let mut guard = inner.lock().unwrap();
    let (status, response) = customer_outcome(&mut guard, &action, query.as_deref(), &headers, &body);
    record(&mut guard, format!("customer/{action}"), query, &headers, &body, status, &response);
    respond(status, response)
}

fn customer_outcome(inner: &mut Inner, action: &str, query: Option<&str>, headers: &HeaderMap, body: &Bytes) -> (StatusCode, Value) {
    let organization = query.unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("organization_id=")).unwrap_or("");
    if organization != ORGANIZATION_ID {
        return invalid("`organization_id` query parameter is required");
    }
    let auth = authorization(headers);
    let Some(customer_id) = auth.strip_prefix("Bearer ").and_then(|token| inner.tokens.get(token)).cloned() else {
        return (StatusCode::UNAUTHORIZED, error_body("authentication", "Invalid access token"));
    };
    if let Some(failure) = inner.failures.get_mut(&format!("customer/{action}")).and_then(VecDeque::pop_front) {
        return failure;
    }
    let Some(request) = json_object(body) else { return invalid("Wrong format of request") };
    let str_at = |pointer: &str| request.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_string();
    match action {
        "send_event" => {
            let chat_id = str_at("/chat_id");
            if str_at("/event/type") != "message" || str_at("/event/text").is_empty() {
                return invalid("`event` must be a message with a non-empty text");
            }
            let event_number = inner.next_event;
            inner.next_event += 1;
            let chat = match chat_for_write(inner, &chat_id) {
                Ok(chat) => chat,
                Err(error) => return error,
            };
            if !chat.customers.contains(&customer_id) {
                return (StatusCode::FORBIDDEN, error_body("authorization", "Requester is not a chat member"));
            }
            chat.messages.push((customer_id, str_at("/event/text")));
            (StatusCode::OK, json!({"event_id": format!("{}_{event_number}", chat.thread_id)}))
        }
        other => (StatusCode::NOT_FOUND, error_body("not_found", &format!("Unknown action {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_the_agent_token() {
        assert_eq!(base64(b"account-1:dal:secret"), "YWNjb3VudC0xOmRhbDpzZWNyZXQ=");
        assert_eq!(base64(b"ab"), "YWI=");
    }

    async fn post_json(url: String, auth: &str, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new().post(url).header("authorization", auth).json(&body).send().await.expect("the fake answers");
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn the_fake_checks_credentials_and_chat_state() {
        let lc = FakeLiveChat::start().await;
        let basic = format!("Basic {}", lc.agent_token());
        let start = json!({"chat": {"access": {"group_ids": [19]}}});
        let url = |action: &str| format!("{}/agent/action/{action}", lc.api_url());

        let (status, body) = post_json(url("start_chat"), "Basic d3Jvbmc6dG9rZW4=", start.clone()).await;
        assert_eq!((status, body), (401, error_body("authentication", "Invalid access token")));
        let (status, body) = post_json(url("start_chat"), &basic, start).await;
        assert_eq!(status, 200);
        let chat_id = body["chat_id"].as_str().unwrap().to_string();

        let (status, body) =
            post_json(url("add_user_to_chat"), &basic, json!({"chat_id": chat_id, "user_id": "nobody", "user_type": "customer", "visibility": "all"})).await;
        assert_eq!((status, body["error"]["type"].as_str()), (404, Some("not_found")));
        let (status, _) = post_json(url("deactivate_chat"), &basic, json!({"id": chat_id})).await;
        assert_eq!(status, 200);
        let (status, body) = post_json(url("deactivate_chat"), &basic, json!({"id": chat_id})).await;
        assert_eq!((status, body["error"]["type"].as_str()), (422, Some("chat_inactive")));

        let send = format!("{}/customer/action/send_event?organization_id={ORGANIZATION_ID}", lc.api_url());
        let (status, _) = post_json(send, "Bearer dal:unknown", json!({"chat_id": chat_id})).await;
        assert_eq!(status, 401);
        let (status, body) = post_json(
            format!("{}/v2/customer/token", lc.accounts_url()),
            "",
            json!({"grant_type": "cookie", "client_id": "other", "organization_id": ORGANIZATION_ID}),
        )
        .await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_client")));
        assert_eq!(lc.calls().iter().map(|c| c.status).collect::<Vec<_>>(), [401, 200, 404, 200, 422, 401, 400]);
    }

    #[test]
    fn webhook_bodies_have_livechat_fields() {
        let body = webhook("s", "chat_deactivated", json!({"chat_id": "C1", "thread_id": "T1"}));
        for key in ["webhook_id", "secret_key", "action", "organization_id", "payload", "additional_data"] {
            assert!(body.get(key).is_some(), "missing {key}: {body}");
        }
        assert_eq!(body["payload"]["chat_id"], "C1");
    }
}
