//! An emulated Typebot chat API (the viewer's `/api/v1`).
//!
//! * `POST /api/v1/typebots/{publicId}/startChat`: starts a session and
//!   answers `{"sessionId","resultId","typebot":{"id","version","theme",
//!   "settings","publishedAt"},"messages":[...],"input":{...},"progress":N}`.
//! * `POST /api/v1/sessions/{sessionId}/continueChat`: the same minus
//!   `sessionId` / `resultId` / `typebot`.
//!
//! What the bot says is a script of [`Step`]s: `startChat` answers step 0,
//! every `continueChat` answers the next step. A step is some bubbles plus an
//! optional input; a step without input ends the flow (Typebot then forgets
//! the session: later calls get `404 "Session not found."`). When the
//! current step offers a `choice input`, an answer that matches no item gets
//! Typebot's retry bubble and the same input again, like the real engine.
//! Without a script every turn echoes the message with a text input.
//!
//! In text leaves `{{message}}` is replaced by the user's message and
//! `{{NAME}}` by the session's prefilled variable `NAME`.
//!
//! Switches: [`FakeTypebot::expire_sessions`] (Typebot's `404 "Session
//! expired. You need to start a new session."`), [`FakeTypebot::require_api_key`]
//! (`401` without `Authorization: Bearer {key}`), [`FakeTypebot::fail_next`].
//! Every request is recorded with its JSON body.

use crate::util::{self, hex_id, unix_now};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The public id of the fake's bot.
pub const PUBLIC_ID: &str = "my-bot-x1y2";

/// Typebot's retry bubble for an answer the current input rejects.
pub const RETRY_MESSAGE: &str = "Invalid message. Please, try again.";

/// One bubble plus an optional input: what the bot says in one turn.
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// Bubbles in Typebot's wire format (see [`rich_text`], [`image`]).
    pub bubbles: Vec<Value>,
    /// `None`: the flow ends after this step.
    pub input: Option<Input>,
    /// `clientSideActions` sent with this step.
    pub actions: Vec<Value>,
}

/// The input block a step waits on.
#[derive(Debug, Clone)]
pub enum Input {
    /// `text input`.
    Text,
    /// `choice input` with these item contents.
    Choice(Vec<String>),
}

impl Step {
    /// An empty step (no bubbles, no input: ends the flow).
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a bubble.
    pub fn bubble(mut self, bubble: Value) -> Self {
        self.bubbles.push(bubble);
        self
    }

    /// Add a one-paragraph text bubble.
    pub fn text(self, text: &str) -> Self {
        self.bubble(rich_text(json!([{"type": "p", "children": [{"text": text}]}])))
    }

    /// Wait on a `choice input` with these items.
    pub fn choices(mut self, items: &[&str]) -> Self {
        self.input = Some(Input::Choice(items.iter().map(|s| s.to_string()).collect()));
        self
    }

    /// Wait on a `text input`.
    pub fn text_input(mut self) -> Self {
        self.input = Some(Input::Text);
        self
    }

    /// Send a client-side action (see [`script_action`]).
    pub fn action(mut self, action: Value) -> Self {
        self.actions.push(action);
        self
    }
}

/// A `scriptToExecute` client-side action (a Script block with "Execute on
/// client"), as Typebot sends it.
pub fn script_action(content: &str, last_bubble_block_id: &str) -> Value {
    json!({"type": "scriptToExecute", "scriptToExecute": {"content": content, "args": []}, "lastBubbleBlockId": last_bubble_block_id})
}

/// A text bubble with this `richText` (an array of block elements).
pub fn rich_text(rich_text: Value) -> Value {
    json!({"id": bubble_id(), "type": "text", "content": {"type": "richText", "richText": rich_text}})
}

/// An image bubble.
pub fn image(url: &str) -> Value {
    json!({"id": bubble_id(), "type": "image", "content": {"url": url, "clickLink": {"alt": "Image"}}})
}

fn bubble_id() -> String {
    hex_id(24)
}

/// Typebot-style ids: 24 lowercase alphanumerics starting with a letter.
fn cuid() -> String {
    format!("c{}", hex_id(23))
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct TypebotRequest {
    /// Path, e.g. `/api/v1/sessions/{id}/continueChat`.
    pub path: String,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
    /// The HTTP status the fake answered with.
    pub status: u16,
    /// The `sessionId` the fake answered with (startChat) or that was
    /// continued (continueChat).
    pub session_id: Option<String>,
}

impl TypebotRequest {
    /// Whether this is a `startChat` call.
    pub fn is_start(&self) -> bool {
        self.path.ends_with("/startChat")
    }

    /// Whether this is a `continueChat` call.
    pub fn is_continue(&self) -> bool {
        self.path.ends_with("/continueChat")
    }

    /// A header value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// The message text: `message` as a string, or `message.text`.
    pub fn message_text(&self) -> Option<&str> {
        match self.body.get("message")? {
            Value::String(s) => Some(s),
            other => other.get("text")?.as_str(),
        }
    }

    /// `prefilledVariables[name]` when it is a string.
    pub fn prefilled(&self, name: &str) -> Option<&str> {
        self.body.get("prefilledVariables")?.get(name)?.as_str()
    }
}

#[derive(Debug, Clone)]
struct Session {
    /// Index of the step whose input the session waits on.
    step: usize,
    expired: bool,
    variables: Map<String, Value>,
}

struct Inner {
    script: Option<Vec<Step>>,
    sessions: HashMap<String, Session>,
    issued_sessions: Vec<String>,
    requests: Vec<TypebotRequest>,
    api_key: Option<String>,
    failures: VecDeque<(StatusCode, Value)>,
    typebot_id: String,
}

type Shared = Arc<Mutex<Inner>>;

/// A running fake Typebot viewer. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct FakeTypebot {
    addr: SocketAddr,
    inner: Shared,
}

impl FakeTypebot {
    /// Start the fake on `127.0.0.1:0` (no API key required, echo script).
    pub async fn start() -> FakeTypebot {
        let inner = Arc::new(Mutex::new(Inner {
            script: None,
            sessions: HashMap::new(),
            issued_sessions: Vec::new(),
            requests: Vec::new(),
            api_key: None,
            failures: VecDeque::new(),
            typebot_id: cuid(),
        }));
        let router = Router::new()
            .route("/api/v1/typebots/{public_id}/startChat", post(start_chat))
            .route("/api/v1/sessions/{session_id}/continueChat", post(continue_chat))
            .with_state(inner.clone());
        let addr = util::serve(router).await;
        FakeTypebot { addr, inner }
    }

    /// `http://127.0.0.1:PORT` (the viewer's base URL).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bot's full startChat URL.
    pub fn start_url(&self) -> String {
        format!("{}/api/v1/typebots/{PUBLIC_ID}/startChat", self.base_url())
    }

    /// Script the bot: step 0 answers startChat, each continueChat the next.
    pub fn set_script(&self, steps: Vec<Step>) {
        self.inner.lock().unwrap().script = Some(steps);
    }

    /// Require `Authorization: Bearer {key}` (a private bot).
    pub fn require_api_key(&self, key: &str) {
        self.inner.lock().unwrap().api_key = Some(key.to_string());
    }

    /// Expire every session issued so far: continuing one gets Typebot's
    /// `404 "Session expired. You need to start a new session."`.
    pub fn expire_sessions(&self) {
        for session in self.inner.lock().unwrap().sessions.values_mut() {
            session.expired = true;
        }
    }

    /// Answer the next `n` requests with `status` and `body`.
    pub fn fail_next(&self, n: usize, status: u16, body: Value) {
        let status = StatusCode::from_u16(status).expect("a valid HTTP status");
        let mut inner = self.inner.lock().unwrap();
        for _ in 0..n {
            inner.failures.push_back((status, body.clone()));
        }
    }

    /// The session ids issued by startChat, oldest first.
    pub fn issued_sessions(&self) -> Vec<String> {
        self.inner.lock().unwrap().issued_sessions.clone()
    }

    /// Every request received so far, in the order they were answered.
    pub fn requests(&self) -> Vec<TypebotRequest> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Wait until at least `n` requests arrived and return all of them.
    /// Panics with the requests seen so far when `timeout` passes first.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<TypebotRequest> {
        let found = util::poll_until(timeout, || async {
            let requests = self.requests();
            (requests.len() >= n).then_some(requests)
        })
        .await;
        found.unwrap_or_else(|| panic!("expected at least {n} Typebot request(s) within {timeout:?}; got: {:#?}", self.requests()))
    }
}

/// Typebot's error body (oRPC style).
pub fn error_body(status: u16, code: &str, message: &str) -> Value {
    json!({"defined": false, "code": code, "status": status, "message": message})
}

fn error_response(status: u16, code: &str, message: &str) -> (StatusCode, Value) {
    (StatusCode::from_u16(status).unwrap(), error_body(status, code, message))
}

fn lower_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers.iter().map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

/// Auth and scripted failures, then the JSON body.
fn precheck(inner: &mut Inner, headers: &HeaderMap, body: &Bytes) -> Result<Value, (StatusCode, Value)> {
    if let Some(key) = &inner.api_key {
        let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        if auth != format!("Bearer {key}") {
            return Err(error_response(401, "UNAUTHORIZED", "You are not authorized to access this bot"));
        }
    }
    if let Some(failure) = inner.failures.pop_front() {
        return Err(failure);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(error_response(400, "BAD_REQUEST", "Input validation failed")),
    }
}

/// The text of `message` (string, or `{"type":"text","text":...}`).
fn message_text(body: &Value) -> Result<Option<String>, (StatusCode, Value)> {
    match body.get("message") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(m) if m.get("type").and_then(Value::as_str) == Some("text") => match m.get("text").and_then(Value::as_str) {
            Some(text) => Ok(Some(text.to_string())),
            None => Err(error_response(400, "BAD_REQUEST", "Input validation failed: message.text is required")),
        },
        Some(_) => Err(error_response(400, "BAD_REQUEST", "Input validation failed: unsupported message")),
    }
}

fn script_len(inner: &Inner) -> usize {
    inner.script.as_ref().map_or(1, Vec::len)
}

/// Step `index` of the script (the echo step without a script).
fn step(inner: &Inner, index: usize) -> Option<Step> {
    match &inner.script {
        Some(steps) => steps.get(index).cloned(),
        None => Some(Step::new().text("Echo: {{message}}").text_input()),
    }
}

/// Replace `{{message}}` and `{{VAR}}` in every `text` leaf.
fn substitute(value: &mut Value, message: &str, variables: &Map<String, Value>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "text"
                    && let Value::String(text) = child
                {
                    let mut out = text.replace("{{message}}", message);
                    for (name, v) in variables {
                        out = out.replace(&format!("{{{{{name}}}}}"), v.as_str().unwrap_or(""));
                    }
                    *text = out;
                } else {
                    substitute(child, message, variables);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| substitute(item, message, variables)),
        _ => {}
    }
}

fn input_json(input: &Input) -> Value {
    match input {
        Input::Text => json!({
            "id": cuid(), "type": "text input",
            "options": {"labels": {"placeholder": "Type your answer...", "button": "Send"}, "isLong": false}
        }),
        Input::Choice(items) => json!({
            "id": cuid(), "type": "choice input",
            "items": items.iter().map(|c| json!({"id": cuid(), "outgoingEdgeId": cuid(), "content": c})).collect::<Vec<_>>(),
            "options": {"isMultipleChoice": false, "buttonLabel": "Send", "isSearchable": false}
        }),
    }
}

/// `messages`, `input` and `progress` for one step.
fn chat_fields(inner: &Inner, step: Option<&Step>, index: usize, message: &str, variables: &Map<String, Value>) -> Map<String, Value> {
    let mut fields = Map::new();
    let mut bubbles = Value::Array(step.map(|s| s.bubbles.clone()).unwrap_or_default());
    substitute(&mut bubbles, message, variables);
    fields.insert("messages".into(), bubbles);
    let input = step.and_then(|s| s.input.as_ref());
    if let Some(input) = input {
        fields.insert("input".into(), input_json(input));
    }
    if let Some(actions) = step.map(|s| &s.actions).filter(|a| !a.is_empty()) {
        fields.insert("clientSideActions".into(), Value::Array(actions.clone()));
    }
    let progress = if input.is_none() { 100 } else { ((index + 1) * 100 / script_len(inner).max(1)).min(99) };
    fields.insert("progress".into(), json!(progress));
    fields
}

fn record(inner: &mut Inner, uri: &Uri, headers: &HeaderMap, body: &Bytes, status: u16, session_id: Option<String>) {
    inner.requests.push(TypebotRequest {
        path: uri.path().to_string(),
        headers: lower_headers(headers),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
        status,
        session_id,
    });
}

async fn start_chat(State(inner): State<Shared>, Path(public_id): Path<String>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut guard = inner.lock().unwrap();
    let (status, response, session_id) = match start_outcome(&mut guard, &public_id, &headers, &body) {
        Ok((response, session_id)) => (StatusCode::OK, response, Some(session_id)),
        Err((status, response)) => (status, response, None),
    };
    record(&mut guard, &uri, &headers, &body, status.as_u16(), session_id);
    drop(guard);
    (status, axum::Json(response)).into_response()
}

fn start_outcome(inner: &mut Inner, public_id: &str, headers: &HeaderMap, raw: &Bytes) -> Result<(Value, String), (StatusCode, Value)> {
    let body = precheck(inner, headers, raw)?;
    if public_id != PUBLIC_ID {
        return Err(error_response(404, "NOT_FOUND", "Typebot not found"));
    }
    let message = message_text(&body)?.unwrap_or_default();
    let variables: Map<String, Value> = match body.get("prefilledVariables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err(error_response(400, "BAD_REQUEST", "Input validation failed: prefilledVariables")),
    };
    let session_id = cuid();
    let step0 = step(inner, 0);
    let mut response = Map::new();
    response.insert("sessionId".into(), json!(session_id));
    response.insert("resultId".into(), json!(cuid()));
    response.insert(
        "typebot".into(),
        json!({
            "id": inner.typebot_id, "version": "6",
            "theme": {"general": {"font": {"type": "Google", "family": "Open Sans"}, "background": {"type": "Color", "content": "#ffffff"}}},
            "settings": {"general": {"isBrandingEnabled": false}, "typingEmulation": {"enabled": true, "speed": 400, "maxDelay": 3}},
            "publishedAt": util::iso8601(unix_now()),
        }),
    );
    response.extend(chat_fields(inner, step0.as_ref(), 0, &message, &variables));
    inner.issued_sessions.push(session_id.clone());
    if step0.as_ref().is_some_and(|s| s.input.is_some()) {
        inner.sessions.insert(session_id.clone(), Session { step: 0, expired: false, variables });
    }
    Ok((Value::Object(response), session_id))
}

async fn continue_chat(State(inner): State<Shared>, Path(session_id): Path<String>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut guard = inner.lock().unwrap();
    let (status, response) = match continue_outcome(&mut guard, &session_id, &headers, &body) {
        Ok(response) => (StatusCode::OK, response),
        Err(failure) => failure,
    };
    record(&mut guard, &uri, &headers, &body, status.as_u16(), Some(session_id));
    drop(guard);
    (status, axum::Json(response)).into_response()
}

fn continue_outcome(inner: &mut Inner, session_id: &str, headers: &HeaderMap, raw: &Bytes) -> Result<Value, (StatusCode, Value)> {
    let body = precheck(inner, headers, raw)?;
    let Some(session) = inner.sessions.get(session_id).cloned() else {
        return Err(error_response(404, "NOT_FOUND", "Session not found."));
    };
    if session.expired {
        return Err(error_response(404, "NOT_FOUND", "Session expired. You need to start a new session."));
    }
    let message = message_text(&body)?.unwrap_or_default();
    let current_input = step(inner, session.step).and_then(|s| s.input);
    if let Some(Input::Choice(items)) = &current_input
        && !items.iter().any(|item| item.trim().eq_ignore_ascii_case(message.trim()))
    {
        // Typebot's engine: the retry bubble and the same input again.
        let retry =
            Step { bubbles: vec![rich_text(json!([{"type": "p", "children": [{"text": RETRY_MESSAGE}]}]))], input: current_input.clone(), actions: Vec::new() };
        return Ok(Value::Object(chat_fields(inner, Some(&retry), session.step, &message, &session.variables)));
    }
    // Without a script the echo step repeats forever.
    let next_index = if inner.script.is_none() { 0 } else { session.step + 1 };
    let next = step(inner, next_index);
    let fields = chat_fields(inner, next.as_ref(), next_index, &message, &session.variables);
    if next.as_ref().is_some_and(|s| s.input.is_some()) {
        if let Some(stored) = inner.sessions.get_mut(session_id) {
            stored.step = next_index;
        }
    } else {
        // The flow ended: Typebot forgets the session.
        inner.sessions.remove(session_id);
    }
    Ok(Value::Object(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_message_and_variables_in_text_leaves_only() {
        let mut v = json!([{"type": "p", "children": [{"text": "{{message}} from {{DIALOG_ID}} {{UNKNOWN}}"}]}, {"url": "{{message}}"}]);
        let vars: Map<String, Value> = [("DIALOG_ID".to_string(), json!("chat7"))].into_iter().collect();
        substitute(&mut v, "Hi", &vars);
        assert_eq!(v, json!([{"type": "p", "children": [{"text": "Hi from chat7 {{UNKNOWN}}"}]}, {"url": "{{message}}"}]));
    }

    #[test]
    fn request_accessors() {
        let r = TypebotRequest {
            path: "/api/v1/sessions/s/continueChat".into(),
            headers: vec![("authorization".into(), "Bearer k".into())],
            body: json!({"message": {"type": "text", "text": "Yes", "attachedFileUrls": []}}),
            status: 200,
            session_id: Some("s".into()),
        };
        assert!(r.is_continue() && !r.is_start());
        assert_eq!(r.message_text(), Some("Yes"));
        assert_eq!(r.header("Authorization"), Some("Bearer k"));
    }
}
