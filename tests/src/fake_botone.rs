//! An emulated Bot.one instance (the web-service API of the Bot.one manual,
//! seed 002), plus a helper that plays a Bot.one bot's external custom
//! block calling Switchboard back.
//!
//! Endpoints (Basic authorization `login:password` on every `/api/v2` call;
//! a missing or wrong one gets `401 {"message":"Unauthorized"}`):
//!
//! | request | success | failures |
//! |---|---|---|
//! | `POST /api/v2/dialog/{BotID}/create` `{"response":true,"variables":"<JSON string>"}` | `200 {"dialogId":371,"dialogUUID":"…"}` (`{}` when `response` is not true); the dialog starts `in-process` | `404` unknown bot, `400` when `variables` is not a string holding a JSON object or `response` not a boolean |
//! | `GET /api/v2/conversation/{uuid}` | `200 {"id","name","status","ip","location","updated","duration","source","data":"[]"}` | `404` unknown dialog |
//! | `POST /api/v2/conversation/{uuid}/stop` | `204`, status `operator` | `404`; `403` for a `completed` dialog |
//! | `POST /api/v2/conversation/{uuid}/start` | `204`, status `in-process` | `404`; `403` for a `completed` dialog |
//! | `POST /api/v2/conversation/{uuid}/send` `{"body":"…"}` | `204` (kept as an operator message) | `400` without a non-empty string `body`, `404` |
//! | `POST /api/v2/conversation/{uuid}/command` `{"body":"goto 698"}` | `200 {"message":"Goto command complete"}`; the dialog moves to that bot and its open block tokens become invalid | `400` for another body, `404` unknown dialog or bot |
//! | `POST /api/vertex/v1/complete` `{"data":{…},"token":"…"}` (no Basic auth) | `204`; the token is used up | `403` unknown or used token, `400` without a string `token` |
//! | `POST /api/vertex/v1/dialog/send_message` `{"token","text","typing"}` (no Basic auth) | `200 {"message_id":123,"created_at":1669947527}` | `403` unknown or used token, `400` without a string `text` |
//!
//! Bot.one does not document its error bodies; the fake answers
//! `{"message": "…"}`. [`FakeBotOne::fail_next`] scripts failures (after the
//! authorization check of `/api/v2` calls). Every request is recorded.

use crate::util::{self, hex_id, unix_now, uuid};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The account e-mail the fake accepts.
pub const LOGIN: &str = "d.user@example.com";
/// The account password the fake accepts.
pub const PASSWORD: &str = "Cave2016";
/// The bot new dialogs start with.
pub const BOT_ID: u64 = 1446;
/// A second bot, the target of `goto`.
pub const OTHER_BOT_ID: u64 = 698;
/// The `callback_token` test connectors are configured with: the key of
/// the per-dialog tokens, never sent to Bot.one itself.
pub const CALLBACK_TOKEN: &str = "botone-callback-secret";

/// One recorded request.
#[derive(Debug, Clone)]
pub struct BotOneRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// Path, e.g. `/api/v2/dialog/1446/create`.
    pub path: String,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Value::Null` when empty or not JSON).
    pub body: Value,
    /// The status the fake answered with.
    pub status: u16,
}

impl BotOneRequest {
    /// A header value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// `variables` of a create call, decoded from its JSON string. Panics
    /// when it is not a string holding a JSON object.
    pub fn variables(&self) -> Map<String, Value> {
        let text = self.body.get("variables").and_then(Value::as_str).unwrap_or_else(|| panic!("`variables` must be a JSON string; body: {}", self.body));
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            other => panic!("`variables` must hold a JSON object, got {other:?} from {text:?}"),
        }
    }
}

/// A dialog the fake created.
#[derive(Debug, Clone)]
pub struct FakeDialog {
    /// Numeric id (`dialogId`).
    pub id: u64,
    /// `dialogUUID`.
    pub uuid: String,
    /// The bot currently running it.
    pub bot_id: u64,
    /// The variables it was created with.
    pub variables: Map<String, Value>,
    /// `in-process`, `operator` or `completed`.
    pub status: String,
    /// Operator messages sent with `/send`.
    pub operator_messages: Vec<String>,
}

/// A block completion the fake accepted.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The block token.
    pub token: String,
    /// The dialog the block belonged to.
    pub dialog: String,
    /// `data` as sent.
    pub data: Value,
}

struct Token {
    dialog: String,
    used: bool,
}

struct Inner {
    authorization: String,
    bots: HashSet<u64>,
    next_id: u64,
    dialogs: Vec<FakeDialog>,
    tokens: HashMap<String, Token>,
    completions: Vec<Completion>,
    requests: Vec<BotOneRequest>,
    failures: VecDeque<(StatusCode, Value)>,
}

type Shared = Arc<Mutex<Inner>>;

/// A running fake Bot.one instance. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct FakeBotOne {
    addr: SocketAddr,
    inner: Shared,
    client: reqwest::Client,
}

/// How a block callback names its conversation.
#[derive(Debug, Clone)]
pub enum Route {
    /// `"conversation"` (the `switchboard_conversation` variable) and
    /// `"dialog"` (the UUID): the README's template.
    Both,
    /// `"dialog"`: the dialog UUID only.
    Uuid,
    /// `"dialog"`: the numeric dialog id only.
    Number,
    /// `"conversation"` only.
    Conversation,
}

/// What a bot's block says; see [`FakeBotOne::run_block`].
#[derive(Debug, Clone)]
pub struct Block {
    /// The message text.
    pub text: String,
    /// Button labels.
    pub buttons: Vec<String>,
    /// Whether the block waits for the user's answer (it then carries a token).
    pub wait_for_answer: bool,
    /// `"handoff"`: a reason asks for a human operator.
    pub handoff: Option<String>,
    /// `"close"`: the bot is done.
    pub close: bool,
    /// How the conversation is named.
    pub route: Route,
}

impl Block {
    /// A question that waits for the answer.
    pub fn question(text: &str) -> Self {
        Block { text: text.into(), buttons: Vec::new(), wait_for_answer: true, handoff: None, close: false, route: Route::Both }
    }

    /// A message that does not wait.
    pub fn say(text: &str) -> Self {
        Block { wait_for_answer: false, ..Self::question(text) }
    }

    /// Add buttons.
    pub fn with_buttons(mut self, labels: &[&str]) -> Self {
        self.buttons = labels.iter().map(|l| l.to_string()).collect();
        self
    }

    /// Ask for a human operator.
    pub fn with_handoff(mut self, reason: &str) -> Self {
        self.handoff = Some(reason.into());
        self
    }

    /// End the dialog.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// Name the conversation another way.
    pub fn routed(mut self, route: Route) -> Self {
        self.route = route;
        self
    }
}

/// The outcome of [`FakeBotOne::run_block`].
#[derive(Debug, Clone)]
pub struct BlockRun {
    /// The token issued for the block.
    pub token: String,
    /// The payload POSTed to the host.
    pub payload: Value,
    /// The host's status.
    pub status: u16,
    /// The host's response body.
    pub body: String,
}

impl FakeBotOne {
    /// Start the fake on `127.0.0.1:0` with bots [`BOT_ID`] and [`OTHER_BOT_ID`].
    pub async fn start() -> FakeBotOne {
        let inner = Arc::new(Mutex::new(Inner {
            authorization: basic(LOGIN, PASSWORD),
            bots: HashSet::from([BOT_ID, OTHER_BOT_ID]),
            next_id: 371,
            dialogs: Vec::new(),
            tokens: HashMap::new(),
            completions: Vec::new(),
            requests: Vec::new(),
            failures: VecDeque::new(),
        }));
        let router = Router::new().fallback(handle).with_state(inner.clone());
        let addr = util::serve(router).await;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("HTTP client");
        FakeBotOne { addr, inner, client }
    }

    /// `http://127.0.0.1:PORT` (the instance address, the plugin's `base_url`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `Basic base64(login:password)` the fake expects.
    pub fn expected_authorization(&self) -> String {
        self.inner.lock().unwrap().authorization.clone()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<BotOneRequest> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Requests whose path ends with `suffix` (`"/create"`, `"/stop"`, `"/complete"`, ...).
    pub fn requests_to(&self, suffix: &str) -> Vec<BotOneRequest> {
        self.requests().into_iter().filter(|r| r.path.ends_with(suffix)).collect()
    }

    /// Wait until at least `n` requests to `suffix` arrived and return them.
    /// Panics with every request seen so far on timeout.
    pub async fn wait_for(&self, suffix: &str, n: usize, timeout: Duration) -> Vec<BotOneRequest> {
        let found = util::poll_until(timeout, || async {
            let requests = self.requests_to(suffix);
            (requests.len() >= n).then_some(requests)
        })
        .await;
        found.unwrap_or_else(|| panic!("expected at least {n} Bot.one request(s) to `…{suffix}` within {timeout:?}; got: {:#?}", self.requests()))
    }

    /// The dialogs created so far, oldest first.
    pub fn dialogs(&self) -> Vec<FakeDialog> {
        self.inner.lock().unwrap().dialogs.clone()
    }

    /// One dialog by UUID (panics when unknown).
    pub fn dialog(&self, uuid: &str) -> FakeDialog {
        self.dialogs().into_iter().find(|d| d.uuid == uuid).unwrap_or_else(|| panic!("no fake dialog {uuid}"))
    }

    /// Wait until at least `n` dialogs exist and return the `n`-th (1-based).
    pub async fn wait_for_dialog(&self, n: usize, timeout: Duration) -> FakeDialog {
        let found = util::poll_until(timeout, || async { self.dialogs().get(n - 1).cloned() }).await;
        found.unwrap_or_else(|| panic!("expected {n} Bot.one dialog(s) within {timeout:?}; requests: {:#?}", self.requests()))
    }

    /// Set a dialog's status (`completed` ends it).
    pub fn set_status(&self, uuid: &str, status: &str) {
        let mut inner = self.inner.lock().unwrap();
        let dialog = inner.dialogs.iter_mut().find(|d| d.uuid == uuid).expect("a known dialog");
        dialog.status = status.to_string();
    }

    /// Delete a dialog: later calls naming it get `404`.
    pub fn delete_dialog(&self, uuid: &str) {
        self.inner.lock().unwrap().dialogs.retain(|d| d.uuid != uuid);
    }

    /// Block completions accepted so far.
    pub fn completions(&self) -> Vec<Completion> {
        self.inner.lock().unwrap().completions.clone()
    }

    /// Answer the next `n` requests (after the `/api/v2` authorization check)
    /// with `status` and `body`.
    pub fn fail_next(&self, n: usize, status: u16, body: Value) {
        let status = StatusCode::from_u16(status).expect("a valid status");
        let mut inner = self.inner.lock().unwrap();
        for _ in 0..n {
            inner.failures.push_back((status, body.clone()));
        }
    }

    /// Issue a block token for a dialog, as Bot.one does when it runs an
    /// external custom block.
    pub fn issue_token(&self, dialog_uuid: &str) -> String {
        let token = hex_id(56);
        self.inner.lock().unwrap().tokens.insert(token.clone(), Token { dialog: dialog_uuid.to_string(), used: false });
        token
    }

    /// The callback payload of the README's template for `block` in `dialog`.
    pub fn payload(&self, dialog: &FakeDialog, block: &Block, token: &str) -> Value {
        let conversation = dialog.variables.get("switchboard_conversation").cloned().unwrap_or(Value::Null);
        let callback_token = dialog.variables.get("switchboard_callback_token").cloned().unwrap_or(Value::Null);
        let mut payload = json!({
            "callback_token": callback_token,
            "token": token,
            "text": block.text,
            "wait_for_answer": block.wait_for_answer,
        });
        match block.route {
            Route::Both => {
                payload["conversation"] = conversation;
                payload["dialog"] = json!(dialog.uuid);
            }
            Route::Uuid => payload["dialog"] = json!(dialog.uuid),
            Route::Number => payload["dialog"] = json!(dialog.id),
            Route::Conversation => payload["conversation"] = conversation,
        }
        if !block.buttons.is_empty() {
            payload["buttons"] = json!(block.buttons);
        }
        if let Some(reason) = &block.handoff {
            payload["handoff"] = json!(reason);
        }
        if block.close {
            payload["close"] = json!(true);
        }
        payload
    }

    /// Play one external custom block of `dialog`'s bot: issue a block
    /// token and POST the README's payload to `callback_url`
    /// (`{host}/hooks/{connector}/botone`), once.
    pub async fn run_block(&self, callback_url: &str, dialog: &FakeDialog, block: &Block) -> BlockRun {
        let token = self.issue_token(&dialog.uuid);
        let payload = self.payload(dialog, block, &token);
        let (status, body) = self.post_callback(callback_url, &payload).await;
        BlockRun { token, payload, status, body }
    }

    /// POST any JSON body to the callback URL; returns status and body.
    pub async fn post_callback(&self, callback_url: &str, payload: &Value) -> (u16, String) {
        self.post_raw(callback_url, payload.to_string().into_bytes()).await
    }

    /// POST raw bytes (as `application/json`) to the callback URL.
    pub async fn post_raw(&self, callback_url: &str, body: Vec<u8>) -> (u16, String) {
        let response = self
            .client
            .post(callback_url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {callback_url} failed: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }
}

/// `Basic base64(login:password)`.
pub fn basic(login: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{login}:{password}").as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8) | u32::from(*chunk.get(2).unwrap_or(&0));
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for (i, s) in sextets.iter().enumerate() {
            out.push(if i <= chunk.len() { A[*s as usize] as char } else { '=' });
        }
    }
    out
}

fn message(status: StatusCode, text: &str) -> (StatusCode, Value) {
    (status, json!({"message": text}))
}

/// The answer: a status and an optional JSON body (`None` → empty body).
type Outcome = (StatusCode, Option<Value>);

async fn handle(State(inner): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut guard = inner.lock().unwrap();
    let (status, answer) = route(&mut guard, &method, uri.path(), &headers, &body, &parsed);
    guard.requests.push(BotOneRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers: headers.iter().map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect(),
        body: parsed,
        status: status.as_u16(),
    });
    drop(guard);
    match answer {
        Some(value) => (status, axum::Json(value)).into_response(),
        None => status.into_response(),
    }
}

fn json_out((status, body): (StatusCode, Value)) -> Outcome {
    (status, Some(body))
}

fn route(inner: &mut Inner, method: &Method, path: &str, headers: &HeaderMap, raw: &Bytes, body: &Value) -> Outcome {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let ["api", "vertex", "v1", rest @ ..] = segments.as_slice() {
        if method != Method::POST {
            return json_out(message(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"));
        }
        if let Some(failure) = inner.failures.pop_front() {
            return json_out(failure);
        }
        return match rest {
            ["complete"] => complete(inner, body),
            ["dialog", "send_message"] => send_message(inner, body),
            _ => json_out(message(StatusCode::NOT_FOUND, "Not Found")),
        };
    }
    let authorized = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(inner.authorization.as_str());
    if !authorized {
        return json_out(message(StatusCode::UNAUTHORIZED, "Unauthorized"));
    }
    if let Some(failure) = inner.failures.pop_front() {
        return json_out(failure);
    }
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["api", "v2", "dialog", bot, "create"]) => create(inner, bot, raw, body),
        ("GET", ["api", "v2", "conversation", uuid]) => conversation(inner, uuid),
        ("POST", ["api", "v2", "conversation", uuid, action]) => conversation_action(inner, uuid, action, body),
        _ => json_out(message(StatusCode::NOT_FOUND, "Not Found")),
    }
}

fn create(inner: &mut Inner, bot: &str, raw: &Bytes, body: &Value) -> Outcome {
    let Some(bot) = bot.parse::<u64>().ok().filter(|b| inner.bots.contains(b)) else {
        return json_out(message(StatusCode::NOT_FOUND, "Not Found"));
    };
    let object = match body {
        Value::Object(object) => object.clone(),
        Value::Null if raw.is_empty() => Map::new(),
        _ => return json_out(message(StatusCode::BAD_REQUEST, "Bad Request: the body must be a JSON object")),
    };
    let variables = match object.get("variables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            _ => return json_out(message(StatusCode::BAD_REQUEST, "Bad Request: variables must be a JSON object string")),
        },
        Some(_) => return json_out(message(StatusCode::BAD_REQUEST, "Bad Request: variables must be a string")),
    };
    let response = match object.get("response") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return json_out(message(StatusCode::BAD_REQUEST, "Bad Request: response must be a boolean")),
    };
    let id = inner.next_id;
    inner.next_id += 1;
    let dialog = FakeDialog { id, uuid: uuid(), bot_id: bot, variables, status: "in-process".into(), operator_messages: Vec::new() };
    let answer = if response { json!({"dialogId": dialog.id, "dialogUUID": dialog.uuid}) } else { json!({}) };
    inner.dialogs.push(dialog);
    (StatusCode::OK, Some(answer))
}

fn conversation(inner: &Inner, uuid: &str) -> Outcome {
    let Some(dialog) = inner.dialogs.iter().find(|d| d.uuid == uuid) else {
        return json_out(message(StatusCode::NOT_FOUND, "Not Found"));
    };
    let updated = util::iso8601(unix_now());
    (
        StatusCode::OK,
        Some(json!({
            "id": dialog.uuid,
            "name": format!("#{} Perm", dialog.id),
            "status": dialog.status,
            "ip": "127.0.0.1",
            "location": "Perm",
            "updated": updated,
            "duration": 20,
            "source": "api",
            "data": "[]",
        })),
    )
}

fn conversation_action(inner: &mut Inner, uuid: &str, action: &str, body: &Value) -> Outcome {
    let bots = inner.bots.clone();
    let Some(dialog) = inner.dialogs.iter_mut().find(|d| d.uuid == uuid) else {
        return json_out(message(StatusCode::NOT_FOUND, "Not Found"));
    };
    match action {
        "stop" | "start" if dialog.status == "completed" => json_out(message(StatusCode::FORBIDDEN, "Forbidden: the dialog is completed")),
        "stop" => {
            dialog.status = "operator".into();
            (StatusCode::NO_CONTENT, None)
        }
        "start" => {
            dialog.status = "in-process".into();
            (StatusCode::NO_CONTENT, None)
        }
        "send" => match body.get("body").and_then(Value::as_str).filter(|t| !t.trim().is_empty()) {
            Some(text) => {
                dialog.operator_messages.push(text.to_string());
                (StatusCode::NO_CONTENT, None)
            }
            None => json_out(message(StatusCode::BAD_REQUEST, "Bad Request: body is required")),
        },
        "command" => {
            let command = body.get("body").and_then(Value::as_str).unwrap_or("");
            let target = command.strip_prefix("goto ").and_then(|b| b.trim().parse::<u64>().ok());
            match target {
                None => json_out(message(StatusCode::BAD_REQUEST, "Bad Request: expected {\"body\": \"goto <bot id>\"}")),
                Some(bot) if !bots.contains(&bot) => json_out(message(StatusCode::NOT_FOUND, "Not Found")),
                Some(bot) => {
                    dialog.bot_id = bot;
                    let uuid = dialog.uuid.clone();
                    for token in inner.tokens.values_mut().filter(|t| t.dialog == uuid) {
                        token.used = true;
                    }
                    json_out((StatusCode::OK, json!({"message": "Goto command complete"})))
                }
            }
        }
        _ => json_out(message(StatusCode::NOT_FOUND, "Not Found")),
    }
}

fn take_token(inner: &mut Inner, body: &Value) -> Result<String, Outcome> {
    let Some(token) = body.get("token").and_then(Value::as_str) else {
        return Err(json_out(message(StatusCode::BAD_REQUEST, "Bad Request: token is required")));
    };
    match inner.tokens.get(token) {
        Some(t) if !t.used && inner.dialogs.iter().any(|d| d.uuid == t.dialog) => Ok(token.to_string()),
        _ => Err(json_out(message(StatusCode::FORBIDDEN, "Forbidden: invalid token"))),
    }
}

fn complete(inner: &mut Inner, body: &Value) -> Outcome {
    let token = match take_token(inner, body) {
        Ok(token) => token,
        Err(outcome) => return outcome,
    };
    let entry = inner.tokens.get_mut(&token).expect("checked");
    entry.used = true;
    let dialog = entry.dialog.clone();
    inner.completions.push(Completion { token, dialog, data: body.get("data").cloned().unwrap_or(Value::Null) });
    (StatusCode::NO_CONTENT, None)
}

fn send_message(inner: &mut Inner, body: &Value) -> Outcome {
    if let Err(outcome) = take_token(inner, body) {
        return outcome;
    }
    if body.get("text").and_then(Value::as_str).is_none() {
        return json_out(message(StatusCode::BAD_REQUEST, "Bad Request: text is required"));
    }
    inner.next_id += 1;
    json_out((StatusCode::OK, json!({"message_id": inner.next_id, "created_at": unix_now()})))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn call(method: &str, url: &str, auth: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let client = reqwest::Client::new();
        let mut request = client.request(method.parse().unwrap(), url);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    #[test]
    fn basic_authorization_matches_rfc7617() {
        assert_eq!(basic("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
    }

    #[tokio::test]
    async fn dialog_lifecycle_matches_the_manual() {
        let fake = FakeBotOne::start().await;
        let base = fake.base_url();
        let auth = basic(LOGIN, PASSWORD);
        let create = format!("{base}/api/v2/dialog/{BOT_ID}/create");
        let body = json!({"response": true, "variables": "{ \"name\": \"User\" }"});

        assert_eq!(call("POST", &create, None, Some(body.clone())).await, (401, json!({"message": "Unauthorized"})));
        assert_eq!(call("POST", &create, Some(&basic(LOGIN, "nope")), Some(body.clone())).await.0, 401);
        assert_eq!(call("POST", &format!("{base}/api/v2/dialog/1/create"), Some(&auth), Some(body.clone())).await.0, 404);
        let bad = json!({"response": true, "variables": {"name": "User"}});
        assert_eq!(call("POST", &create, Some(&auth), Some(bad)).await.0, 400);

        let (status, created) = call("POST", &create, Some(&auth), Some(body)).await;
        assert_eq!(status, 200);
        assert_eq!(created["dialogId"], json!(371));
        let uuid = created["dialogUUID"].as_str().unwrap().to_string();
        assert_eq!(fake.dialog(&uuid).variables["name"], "User");

        let conv = format!("{base}/api/v2/conversation/{uuid}");
        let (status, info) = call("GET", &conv, Some(&auth), None).await;
        assert_eq!((status, info["status"].as_str()), (200, Some("in-process")));
        assert_eq!(call("POST", &format!("{conv}/stop"), Some(&auth), None).await, (204, Value::Null));
        assert_eq!(fake.dialog(&uuid).status, "operator");
        assert_eq!(call("POST", &format!("{conv}/send"), Some(&auth), Some(json!({"body": "Привет, я оператор."}))).await.0, 204);
        assert_eq!(call("POST", &format!("{conv}/send"), Some(&auth), Some(json!({}))).await.0, 400);
        assert_eq!(call("POST", &format!("{conv}/start"), Some(&auth), None).await.0, 204);
        assert_eq!(fake.dialog(&uuid).operator_messages, ["Привет, я оператор."]);

        let token = fake.issue_token(&uuid);
        let vertex = format!("{base}/api/vertex/v1");
        let (status, sent) = call("POST", &format!("{vertex}/dialog/send_message"), None, Some(json!({"token": token, "text": "hi", "typing": true}))).await;
        assert_eq!(status, 200);
        assert!(sent["message_id"].is_u64() && sent["created_at"].is_i64());
        assert_eq!(call("POST", &format!("{vertex}/complete"), None, Some(json!({"data": {"a": 1}, "token": token}))).await.0, 204);
        assert_eq!(call("POST", &format!("{vertex}/complete"), None, Some(json!({"data": null, "token": token}))).await.0, 403);
        assert_eq!(fake.completions().len(), 1);
        assert_eq!(fake.completions()[0].data, json!({"a": 1}));

        let stale = fake.issue_token(&uuid);
        let cmd = format!("{conv}/command");
        assert_eq!(call("POST", &cmd, Some(&auth), Some(json!({"body": "jump 698"}))).await.0, 400);
        assert_eq!(call("POST", &cmd, Some(&auth), Some(json!({"body": "goto 5"}))).await.0, 404);
        assert_eq!(call("POST", &cmd, Some(&auth), Some(json!({"body": "goto 698"}))).await, (200, json!({"message": "Goto command complete"})));
        assert_eq!(fake.dialog(&uuid).bot_id, OTHER_BOT_ID);
        assert_eq!(call("POST", &format!("{vertex}/complete"), None, Some(json!({"data": {}, "token": stale}))).await.0, 403);

        fake.set_status(&uuid, "completed");
        assert_eq!(call("POST", &format!("{conv}/stop"), Some(&auth), None).await.0, 403);
        fake.delete_dialog(&uuid);
        assert_eq!(call("GET", &conv, Some(&auth), None).await.0, 404);

        fake.fail_next(1, 503, json!({"message": "Service Unavailable"}));
        assert_eq!(call("GET", &conv, Some(&auth), None).await.0, 503);
        assert!(fake.requests().len() >= 18);
    }
}
