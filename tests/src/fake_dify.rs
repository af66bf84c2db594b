//! An emulated Dify service API under `/v1`.
//!
//! * `POST /v1/chat-messages`: blocking or streaming chat (chatflow /
//!   agent apps), with conversation bookkeeping like Dify's.
//! * `POST /v1/workflows/run`: blocking or streaming workflow runs.
//! * `POST /v1/files/upload`: accepts any upload, answers `201`.
//!
//! Every endpoint checks `Authorization: Bearer {api_key}` and answers Dify's
//! `401 unauthorized` envelope otherwise. Switches reproduce Dify's real
//! failures: forgotten conversations (404), scripted error responses, agent
//! apps refusing blocking mode, and `error` events inside a `200` stream.

use crate::util::{self, unix_now, uuid};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The API key the fake accepts unless told otherwise.
pub const DEFAULT_API_KEY: &str = "dify-key";

/// One recorded request.
#[derive(Debug, Clone)]
pub struct DifyRequest {
    /// Path, e.g. `/v1/chat-messages`.
    pub path: String,
    /// Headers with lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Value::Null` when it was not JSON; for uploads an
    /// object `{"upload_bytes": n, "filename": ...}`).
    pub body: Value,
    /// The HTTP status the fake answered with (`200` for streams, even when
    /// the stream carries an `error` event).
    pub status: u16,
}

impl DifyRequest {
    /// A header value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// `inputs[key]` when it is a string.
    pub fn input(&self, key: &str) -> Option<&str> {
        self.body.get("inputs")?.get(key)?.as_str()
    }

    /// The `inputs` object (empty when missing).
    pub fn inputs(&self) -> Map<String, Value> {
        self.body.get("inputs").and_then(Value::as_object).cloned().unwrap_or_default()
    }

    /// A top-level string field (`query`, `user`, `response_mode`, ...).
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.body.get(key)?.as_str()
    }

    /// The `conversation_id` sent, with a missing one read as `""`.
    pub fn conversation_id(&self) -> &str {
        self.str_field("conversation_id").unwrap_or("")
    }
}

/// An `error` event to emit inside a `200` stream.
#[derive(Debug, Clone)]
pub struct StreamError {
    /// `status` field of the event.
    pub status: u16,
    /// `code` field, e.g. `invalid_param` or `completion_request_error`.
    pub code: String,
    /// `message` field.
    pub message: String,
}

impl StreamError {
    /// Build an error event description.
    pub fn new(status: u16, code: &str, message: &str) -> Self {
        Self { status, code: code.into(), message: message.into() }
    }
}

struct Inner {
    api_key: String,
    requests: Vec<DifyRequest>,
    conversations: HashSet<String>,
    issued_conversations: Vec<String>,
    answer: Option<String>,
    agent_mode: bool,
    stream_error: Option<StreamError>,
    failures: VecDeque<(StatusCode, Value)>,
    workflow_outputs: Value,
    max_input_length: Option<usize>,
    chunk_delay: Duration,
    /// How long every chat answer takes (the provider "thinking").
    response_delay: Duration,
    /// Chat requests being answered right now, and the most at once.
    in_flight: usize,
    max_in_flight: usize,
}

/// A running fake Dify. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct FakeDify {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    gate: Arc<tokio::sync::watch::Sender<bool>>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    /// `true` while answers are held back ([`FakeDify::hold`]).
    gate: Arc<tokio::sync::watch::Sender<bool>>,
}

impl std::ops::Deref for Shared {
    type Target = Mutex<Inner>;
    fn deref(&self) -> &Mutex<Inner> {
        &self.inner
    }
}

impl FakeDify {
    /// Start the fake on `127.0.0.1:0`, accepting [`DEFAULT_API_KEY`].
    pub async fn start() -> FakeDify {
        let inner = Arc::new(Mutex::new(Inner {
            api_key: DEFAULT_API_KEY.to_string(),
            requests: Vec::new(),
            conversations: HashSet::new(),
            issued_conversations: Vec::new(),
            answer: None,
            agent_mode: false,
            stream_error: None,
            failures: VecDeque::new(),
            workflow_outputs: json!({"result": "Workflow done"}),
            max_input_length: None,
            chunk_delay: Duration::from_millis(15),
            response_delay: Duration::ZERO,
            in_flight: 0,
            max_in_flight: 0,
        }));
        let gate = Arc::new(tokio::sync::watch::channel(false).0);
        let router = Router::new()
            .route("/v1/chat-messages", post(chat_messages))
            .route("/v1/workflows/run", post(workflows_run))
            .route("/v1/files/upload", post(files_upload))
            .with_state(Shared { inner: inner.clone(), gate: gate.clone() });
        let addr = util::serve(router).await;
        FakeDify { addr, inner, gate }
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API key the fake accepts.
    pub fn api_key(&self) -> String {
        self.inner.lock().unwrap().api_key.clone()
    }

    /// Change the accepted API key.
    pub fn set_api_key(&self, key: &str) {
        self.inner.lock().unwrap().api_key = key.to_string();
    }

    /// Every request received so far (in the order they were answered).
    pub fn requests(&self) -> Vec<DifyRequest> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        self.inner.lock().unwrap().requests.len()
    }

    /// The conversation ids the fake issued, oldest first.
    pub fn issued_conversations(&self) -> Vec<String> {
        self.inner.lock().unwrap().issued_conversations.clone()
    }

    /// Every chat answer takes `delay` (a provider thinking for that long).
    pub fn set_response_delay(&self, delay: Duration) {
        self.inner.lock().unwrap().response_delay = delay;
    }

    /// Hold every chat answer back until [`FakeDify::release`] (requests
    /// are recorded on arrival).
    pub fn hold(&self) {
        self.gate.send_replace(true);
    }

    /// Let held and later answers go.
    pub fn release(&self) {
        self.gate.send_replace(false);
    }

    /// The most chat requests that were being answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.inner.lock().unwrap().max_in_flight
    }

    /// Script the answer text. `None` restores the default `Dify says: {query}`.
    pub fn set_answer(&self, answer: Option<&str>) {
        self.inner.lock().unwrap().answer = answer.map(str::to_string);
    }

    /// Script the `outputs` of `/workflows/run`.
    pub fn set_workflow_outputs(&self, outputs: Value) {
        self.inner.lock().unwrap().workflow_outputs = outputs;
    }

    /// Forget every conversation: a later request naming one gets Dify's
    /// `404 Conversation Not Exists.`
    pub fn forget_conversations(&self) {
        self.inner.lock().unwrap().conversations.clear();
    }

    /// Answer the next `n` chat/workflow requests with `status` and `body`
    /// (after the API key check).
    pub fn fail_next(&self, n: usize, status: u16, body: Value) {
        let status = StatusCode::from_u16(status).expect("a valid HTTP status");
        let mut inner = self.inner.lock().unwrap();
        for _ in 0..n {
            inner.failures.push_back((status, body.clone()));
        }
    }

    /// Drop the failures scripted with [`FakeDify::fail_next`] (the outage ends).
    pub fn clear_failures(&self) {
        self.inner.lock().unwrap().failures.clear();
    }

    /// Behave like an Agent Chat app: blocking chat requests get
    /// `400 invalid_param "Agent Chat App does not support blocking mode"`,
    /// streams carry `agent_message` / `agent_thought` events.
    pub fn set_agent_mode(&self, on: bool) {
        self.inner.lock().unwrap().agent_mode = on;
    }

    /// Emit this `error` event (HTTP status stays 200) after the first chunk
    /// of every stream; `None` turns it off.
    pub fn set_stream_error(&self, error: Option<StreamError>) {
        self.inner.lock().unwrap().stream_error = error;
    }

    /// Enforce Dify's text-input length limit (the UI default is 48):
    /// longer string inputs get `400 invalid_param "{name} in input form must
    /// be less than {n} characters"`. `None` (the default) disables it.
    pub fn set_max_input_length(&self, max: Option<usize>) {
        self.inner.lock().unwrap().max_input_length = max;
    }

    /// Wait until at least `n` requests arrived and return all of them.
    /// Panics with the requests seen so far when `timeout` passes first.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<DifyRequest> {
        let found = util::poll_until(timeout, || async {
            let requests = self.requests();
            (requests.len() >= n).then_some(requests)
        })
        .await;
        found.unwrap_or_else(|| panic!("expected at least {n} Dify request(s) within {timeout:?}; got: {:#?}", self.requests()))
    }
}

/// Dify's error envelope.
pub fn error_body(status: u16, code: &str, message: &str) -> Value {
    json!({"code": code, "message": message, "status": status})
}

fn error_response(status: u16, code: &str, message: &str) -> (StatusCode, Value) {
    (StatusCode::from_u16(status).unwrap(), error_body(status, code, message))
}

fn lower_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers.iter().map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

/// What to answer, decided while holding the lock.
enum Outcome {
    Json(StatusCode, Value),
    Stream(Vec<String>, Duration),
}

impl Outcome {
    fn status(&self) -> u16 {
        match self {
            Outcome::Json(status, _) => status.as_u16(),
            Outcome::Stream(..) => 200,
        }
    }

    fn into_response(self) -> Response {
        match self {
            Outcome::Json(status, body) => (status, axum::Json(body)).into_response(),
            Outcome::Stream(events, delay) => sse_response(events, delay),
        }
    }
}

/// Checks shared by the chat and workflow endpoints: auth, scripted
/// failures, JSON body, `inputs` and `user`.
fn precheck(inner: &mut Inner, headers: &HeaderMap, body: &Bytes) -> Result<Value, (StatusCode, Value)> {
    let expected = format!("Bearer {}", inner.api_key);
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    if auth != expected {
        return Err(error_response(401, "unauthorized", "Access token is invalid"));
    }
    if let Some(failure) = inner.failures.pop_front() {
        return Err(failure);
    }
    let Ok(body @ Value::Object(_)) = serde_json::from_slice::<Value>(body) else {
        return Err(error_response(400, "bad_request", "The browser (or proxy) sent a request that this server could not understand."));
    };
    let Some(inputs) = body.get("inputs").and_then(Value::as_object) else {
        return Err(error_response(400, "invalid_param", "inputs is required in input form"));
    };
    for (name, value) in inputs {
        match value {
            Value::String(s) => {
                if let Some(max) = inner.max_input_length
                    && s.chars().count() > max
                {
                    return Err(error_response(400, "invalid_param", &format!("{name} in input form must be less than {max} characters")));
                }
            }
            Value::Null => {}
            _ => {
                return Err(error_response(400, "invalid_param", &format!("{name} in input form must be a string")));
            }
        }
    }
    match body.get("user").and_then(Value::as_str) {
        Some(user) if !user.is_empty() => {}
        _ => return Err(error_response(400, "invalid_param", "user is required")),
    }
    Ok(body)
}

fn record(inner: &mut Inner, uri: &Uri, headers: &HeaderMap, body: Value, status: u16) {
    inner.requests.push(DifyRequest { path: uri.path().to_string(), headers: lower_headers(headers), body, status });
}

fn raw_body_value(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

async fn chat_messages(State(shared): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let (outcome, delay) = {
        let mut guard = shared.lock().unwrap();
        let outcome = chat_outcome(&mut guard, &headers, &body);
        record(&mut guard, &uri, &headers, raw_body_value(&body), outcome.status());
        guard.in_flight += 1;
        guard.max_in_flight = guard.max_in_flight.max(guard.in_flight);
        (outcome, guard.response_delay)
    };
    tokio::time::sleep(delay).await;
    let mut gate = shared.gate.subscribe();
    let _ = gate.wait_for(|held| !held).await;
    shared.lock().unwrap().in_flight -= 1;
    outcome.into_response()
}

fn chat_outcome(inner: &mut Inner, headers: &HeaderMap, raw: &Bytes) -> Outcome {
    let body = match precheck(inner, headers, raw) {
        Ok(body) => body,
        Err((status, body)) => return Outcome::Json(status, body),
    };
    let Some(query) = body.get("query").and_then(Value::as_str) else {
        let (s, b) = error_response(400, "invalid_param", "query is required");
        return Outcome::Json(s, b);
    };
    let streaming = match body.get("response_mode").and_then(Value::as_str) {
        None | Some("blocking") => false,
        Some("streaming") => true,
        Some(other) => {
            let (s, b) = error_response(400, "invalid_param", &format!("response_mode {other} is not supported"));
            return Outcome::Json(s, b);
        }
    };
    if inner.agent_mode && !streaming {
        let (s, b) = error_response(400, "invalid_param", "Agent Chat App does not support blocking mode");
        return Outcome::Json(s, b);
    }
    let conversation_id = match body.get("conversation_id") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            let (s, b) = error_response(400, "invalid_param", "conversation_id must be a string");
            return Outcome::Json(s, b);
        }
    };
    let conversation_id = if conversation_id.is_empty() {
        let id = uuid();
        inner.conversations.insert(id.clone());
        inner.issued_conversations.push(id.clone());
        id
    } else if inner.conversations.contains(&conversation_id) {
        conversation_id
    } else {
        return Outcome::Json(StatusCode::NOT_FOUND, json!({"status": 404, "code": "not_found", "message": "Conversation Not Exists."}));
    };
    let answer = inner.answer.clone().unwrap_or_else(|| format!("Dify says: {query}"));
    let message_id = uuid();
    let task_id = uuid();
    let usage = usage();
    if !streaming {
        return Outcome::Json(
            StatusCode::OK,
            json!({
                "event": "message",
                "task_id": task_id,
                "id": message_id,
                "message_id": message_id,
                "conversation_id": conversation_id,
                "mode": "advanced-chat",
                "answer": answer,
                "metadata": {"usage": usage, "retriever_resources": []},
                "created_at": unix_now(),
            }),
        );
    }

    let now = unix_now();
    let mut events = vec![ping()];
    let chunk_event = if inner.agent_mode { "agent_message" } else { "message" };
    let workflow_run_id = uuid();
    if inner.agent_mode {
        events.push(data(
            &json!({
                "event": "agent_thought", "id": uuid(), "task_id": task_id, "message_id": message_id,
                "position": 1, "thought": "I should look this up before answering.", "observation": "",
                "tool": "", "tool_input": "", "created_at": now, "message_files": [], "conversation_id": conversation_id,
            }),
            false,
        ));
    } else {
        events.push(data(
            &json!({
                "event": "workflow_started", "task_id": task_id, "workflow_run_id": workflow_run_id,
                "data": {"id": workflow_run_id, "workflow_id": uuid(), "sequence_number": 1, "created_at": now},
            }),
            true,
        ));
    }
    for (i, chunk) in chunks(&answer, 3).into_iter().enumerate() {
        events.push(data(
            &json!({
                "event": chunk_event, "task_id": task_id, "id": message_id, "message_id": message_id,
                "conversation_id": conversation_id, "answer": chunk, "created_at": now,
            }),
            i % 2 == 1,
        ));
        if i == 0 {
            if let Some(error) = &inner.stream_error {
                events.push(data(
                    &json!({
                        "event": "error", "task_id": task_id, "message_id": message_id, "conversation_id": conversation_id,
                        "status": error.status, "code": error.code, "message": error.message,
                    }),
                    false,
                ));
                return Outcome::Stream(events, inner.chunk_delay);
            }
            if inner.agent_mode {
                events.push(ping());
            }
        }
    }
    if inner.agent_mode {
        events.push(data(
            &json!({
                "event": "agent_thought", "id": uuid(), "task_id": task_id, "message_id": message_id,
                "position": 2, "thought": "", "observation": "done", "tool": "", "tool_input": "",
                "created_at": now, "message_files": [], "conversation_id": conversation_id,
            }),
            true,
        ));
    } else {
        events.push(data(
            &json!({
                "event": "workflow_finished", "task_id": task_id, "workflow_run_id": workflow_run_id,
                "data": {"id": workflow_run_id, "workflow_id": uuid(), "status": "succeeded", "outputs": {"answer": answer},
                         "error": null, "elapsed_time": 0.42, "total_tokens": 150, "total_steps": 3,
                         "created_at": now, "finished_at": now},
            }),
            false,
        ));
    }
    events.push(data(
        &json!({
            "event": "message_end", "task_id": task_id, "id": message_id, "message_id": message_id,
            "conversation_id": conversation_id, "metadata": {"usage": usage},
        }),
        false,
    ));
    Outcome::Stream(events, inner.chunk_delay)
}

async fn workflows_run(State(inner): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut guard = inner.lock().unwrap();
    let outcome = workflow_outcome(&mut guard, &headers, &body);
    record(&mut guard, &uri, &headers, raw_body_value(&body), outcome.status());
    drop(guard);
    outcome.into_response()
}

fn workflow_outcome(inner: &mut Inner, headers: &HeaderMap, raw: &Bytes) -> Outcome {
    let body = match precheck(inner, headers, raw) {
        Ok(body) => body,
        Err((status, body)) => return Outcome::Json(status, body),
    };
    let now = unix_now();
    let task_id = uuid();
    let run_id = uuid();
    let workflow_id = uuid();
    let outputs = inner.workflow_outputs.clone();
    let data_obj = json!({
        "id": run_id, "workflow_id": workflow_id, "status": "succeeded", "outputs": outputs,
        "error": null, "elapsed_time": 1.23, "total_tokens": 150, "total_steps": 3,
        "created_at": now, "finished_at": now,
    });
    match body.get("response_mode").and_then(Value::as_str) {
        Some("streaming") => {
            let mut events = vec![
                data(
                    &json!({"event": "workflow_started", "task_id": task_id, "workflow_run_id": run_id,
                    "data": {"id": run_id, "workflow_id": workflow_id, "sequence_number": 1, "created_at": now}}),
                    false,
                ),
                ping(),
                data(
                    &json!({"event": "node_started", "task_id": task_id, "workflow_run_id": run_id,
                    "data": {"id": uuid(), "node_id": "llm", "node_type": "llm", "title": "LLM", "index": 1, "created_at": now}}),
                    true,
                ),
            ];
            if let Some(text) = outputs.as_object().and_then(|o| o.values().find_map(Value::as_str)) {
                for chunk in chunks(text, 2) {
                    events.push(data(
                        &json!({"event": "text_chunk", "task_id": task_id, "workflow_run_id": run_id,
                        "data": {"text": chunk, "from_variable_selector": ["llm", "text"]}}),
                        false,
                    ));
                }
            }
            events.push(data(
                &json!({"event": "node_finished", "task_id": task_id, "workflow_run_id": run_id,
                "data": {"id": uuid(), "node_id": "llm", "node_type": "llm", "title": "LLM", "index": 1,
                         "status": "succeeded", "outputs": outputs, "created_at": now}}),
                true,
            ));
            events.push(data(&json!({"event": "workflow_finished", "task_id": task_id, "workflow_run_id": run_id, "data": data_obj}), false));
            Outcome::Stream(events, inner.chunk_delay)
        }
        None | Some("blocking") => Outcome::Json(StatusCode::OK, json!({"task_id": task_id, "workflow_run_id": run_id, "data": data_obj})),
        Some(other) => {
            let (s, b) = error_response(400, "invalid_param", &format!("response_mode {other} is not supported"));
            Outcome::Json(s, b)
        }
    }
}

async fn files_upload(State(inner): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut guard = inner.lock().unwrap();
    let expected = format!("Bearer {}", guard.api_key);
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let text = String::from_utf8_lossy(&body);
    let filename = text.split("filename=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("upload.bin").to_string();
    let recorded = json!({"upload_bytes": body.len(), "filename": filename});
    let (status, response) = if auth != expected {
        error_response(401, "unauthorized", "Access token is invalid")
    } else {
        let extension = filename.rsplit_once('.').map(|(_, e)| e.to_string()).unwrap_or_default();
        (
            StatusCode::CREATED,
            json!({"id": uuid(), "name": filename, "size": body.len(), "extension": extension,
                   "mime_type": "application/octet-stream", "created_by": uuid(), "created_at": unix_now()}),
        )
    };
    record(&mut guard, &uri, &headers, recorded, status.as_u16());
    (status, axum::Json(response)).into_response()
}

fn usage() -> Value {
    json!({
        "prompt_tokens": 1033, "prompt_unit_price": "0.001", "prompt_price_unit": "0.001", "prompt_price": "0.0010330",
        "completion_tokens": 135, "completion_unit_price": "0.002", "completion_price_unit": "0.001",
        "completion_price": "0.0002700", "total_tokens": 1168, "total_price": "0.0013030", "currency": "USD",
        "latency": 1.381760165997548
    })
}

/// Split `text` into at most `n` non-empty pieces on char boundaries.
fn chunks(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    let size = chars.len().div_ceil(n).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn ping() -> String {
    "event: ping\n\n".to_string()
}

/// `data: {json}\n\n`, compact or with spaces after `:` and `,` (Dify
/// produces both), with `event` as the first key like Dify writes it.
fn data(value: &Value, spaced: bool) -> String {
    let json = if spaced { to_spaced_json(value) } else { to_compact_json(value) };
    format!("data: {json}\n\n")
}

/// Compact one-line JSON with `event` (when present) as the first key.
pub fn to_compact_json(value: &Value) -> String {
    let mut out = String::new();
    render(value, false, &mut out);
    out
}

/// One-line JSON with `": "` and `", "` separators, as Python's
/// `json.dumps` writes it, with `event` (when present) as the first key.
pub fn to_spaced_json(value: &Value) -> String {
    let mut out = String::new();
    render(value, true, &mut out);
    out
}

fn render(value: &Value, spaced: bool, out: &mut String) {
    let (colon, comma) = if spaced { (": ", ", ") } else { (":", ",") };
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| (k.as_str() != "event", k.as_str()));
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(comma);
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(colon);
                render(&map[key], spaced, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(comma);
                }
                render(item, spaced, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// A `text/event-stream` response sending `events` one by one with `delay`
/// between them, then closing (Dify sends no `[DONE]` sentinel).
fn sse_response(events: Vec<String>, delay: Duration) -> Response {
    let stream = futures::stream::unfold((events.into_iter(), true), move |(mut events, first)| async move {
        let event = events.next()?;
        if !first {
            tokio::time::sleep(delay).await;
        }
        Some((Ok::<Bytes, std::io::Error>(Bytes::from(event)), (events, false)))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .expect("building an SSE response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaced_json_is_one_line() {
        let v = json!({"a": 1, "b": [1, 2], "c": {"d": "x\n\"y"}, "event": "message"});
        assert_eq!(to_spaced_json(&v), r#"{"event": "message", "a": 1, "b": [1, 2], "c": {"d": "x\n\"y"}}"#);
        assert_eq!(to_compact_json(&v), r#"{"event":"message","a":1,"b":[1,2],"c":{"d":"x\n\"y"}}"#);
    }

    #[test]
    fn chunks_cover_the_text() {
        assert_eq!(chunks("Hello world", 3).concat(), "Hello world");
        assert_eq!(chunks("Hello world", 3).len(), 3);
        assert_eq!(chunks("Привет", 4).concat(), "Привет");
    }
}
