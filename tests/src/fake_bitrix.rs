//! An emulated Bitrix24 REST API.
//!
//! `POST /rest/{method}` (also `{method}.json`, and `GET` with a query
//! string) accepts JSON or `application/x-www-form-urlencoded` bodies (PHP
//! nested keys such as `KEYBOARD[0][TEXT]` are unfolded into JSON objects),
//! records the call and answers like Bitrix24 does:
//! `{"result": <id>, "time": {"start", "finish", "duration", "processing",
//! "date_start", "date_finish"}}`, with an incrementing id. Failures are
//! scriptable with [`FakeBitrix::fail_next`], answered with Bitrix24's error
//! body `{"error": "CODE", "error_description": "..."}`.
//!
//! `GET /download/{file_id}` serves file bytes, for `urlDownload` links.

use crate::util::{self, iso8601, now_secs};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One recorded REST call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Method name without a `.json` suffix, e.g. `imbot.message.add`.
    pub method: String,
    /// The parameters: the JSON body, or the form/query parameters unfolded
    /// into a JSON object (query parameters merged in where the body lacks them).
    pub body: Value,
    /// `content-type` of the request (empty when absent).
    pub content_type: String,
    /// The HTTP status the fake answered with.
    pub status: u16,
}

impl Call {
    /// A top-level parameter as a string (numbers and booleans stringified),
    /// matching keys case-sensitively.
    pub fn param(&self, key: &str) -> Option<String> {
        self.body.get(key).and_then(scalar_string)
    }

    /// A parameter that must be present (panics with the call otherwise).
    pub fn require(&self, key: &str) -> String {
        self.param(key)
            .unwrap_or_else(|| panic!("Bitrix24 call {} has no `{key}` parameter: {}", self.method, self.body))
    }

    /// The `auth` token the call was made with.
    pub fn auth(&self) -> Option<String> {
        self.param("auth")
    }

    /// Whether the fake answered with a success.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A JSON scalar as a string; `None` for null, objects and arrays.
pub(crate) fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

struct Failure {
    status: StatusCode,
    code: String,
    description: String,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    next_id: u64,
    failures: VecDeque<Failure>,
    results: HashMap<String, Value>,
}

/// A running fake Bitrix24 portal. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct FakeBitrix {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl FakeBitrix {
    /// Start the fake on `127.0.0.1:0`.
    pub async fn start() -> FakeBitrix {
        let inner = Arc::new(Mutex::new(Inner { next_id: 19_880_117, ..Inner::default() }));
        let router = Router::new()
            .route("/rest/{method}", any(rest))
            .route("/download/{file_id}", get(download))
            .with_state(inner.clone());
        let addr = util::serve(router).await;
        FakeBitrix { addr, inner }
    }

    /// The socket address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/rest/`, what Bitrix24 sends as `client_endpoint`.
    pub fn client_endpoint(&self) -> String {
        format!("http://{}/rest/", self.addr)
    }

    /// The portal's domain as Bitrix24 sends it in `auth[domain]` (`127.0.0.1:PORT`).
    pub fn domain(&self) -> String {
        self.addr.to_string()
    }

    /// A `urlDownload` link serving some bytes for `file_id`.
    pub fn download_url(&self, file_id: &str) -> String {
        format!("http://{}/download/{file_id}", self.addr)
    }

    /// Every call received so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// The calls of one method, in arrival order.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }

    /// Answer the next `n` calls (of any method) with `status` and
    /// `{"error": code, "error_description": description}`.
    pub fn fail_next(&self, n: usize, status: u16, code: &str, description: &str) {
        let status = StatusCode::from_u16(status).expect("a valid HTTP status");
        let mut inner = self.inner.lock().unwrap();
        for _ in 0..n {
            inner.failures.push_back(Failure { status, code: code.into(), description: description.into() });
        }
    }

    /// Answer every later successful call of `method` with this `result`
    /// instead of an incrementing id.
    pub fn set_result(&self, method: &str, result: Value) {
        self.inner.lock().unwrap().results.insert(method.to_string(), result);
    }

    /// Wait until at least `n` calls arrived and return all of them. Panics
    /// with the calls seen so far when `timeout` passes first.
    pub async fn wait_for_calls(&self, n: usize, timeout: Duration) -> Vec<Call> {
        let found = util::poll_until(timeout, || async {
            let calls = self.calls();
            (calls.len() >= n).then_some(calls)
        })
        .await;
        found.unwrap_or_else(|| {
            panic!("expected at least {n} Bitrix24 call(s) within {timeout:?}; got: {:#?}", self.calls())
        })
    }

    /// Wait until at least `n` calls of `method` arrived and return the calls
    /// of that method. Panics with every call seen so far on timeout.
    pub async fn wait_for_method(&self, method: &str, n: usize, timeout: Duration) -> Vec<Call> {
        let found = util::poll_until(timeout, || async {
            let calls = self.calls_to(method);
            (calls.len() >= n).then_some(calls)
        })
        .await;
        found.unwrap_or_else(|| {
            panic!("expected at least {n} `{method}` call(s) within {timeout:?}; all calls: {:#?}", self.calls())
        })
    }
}

async fn rest(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let method = method.strip_suffix(".json").unwrap_or(&method).to_string();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let started = now_secs();

    let mut params = if body.is_empty() {
        Value::Object(Map::new())
    } else if content_type.contains("json") || (!content_type.contains("form") && body.first() == Some(&b'{')) {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                let response = error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "Invalid JSON body");
                record(&inner, method, Value::String(String::from_utf8_lossy(&body).into()), content_type, 400);
                return response;
            }
        }
    } else {
        php_form_to_json(&body)
    };
    // GET (or POST with a query string): the query parameters count too.
    if let Some(query) = query
        && let (Value::Object(target), Value::Object(extra)) = (&mut params, php_form_to_json(query.as_bytes()))
    {
        for (k, v) in extra {
            target.entry(k).or_insert(v);
        }
    }

    let mut guard = inner.lock().unwrap();
    if let Some(failure) = guard.failures.pop_front() {
        guard.calls.push(Call { method, body: params, content_type, status: failure.status.as_u16() });
        return error(failure.status, &failure.code, &failure.description);
    }
    let result = match guard.results.get(&method) {
        Some(result) => result.clone(),
        None => {
            guard.next_id += 1;
            json!(guard.next_id)
        }
    };
    guard.calls.push(Call { method, body: params, content_type, status: 200 });
    drop(guard);

    let finished = now_secs();
    let body = json!({
        "result": result,
        "time": {
            "start": started,
            "finish": finished,
            "duration": finished - started,
            "processing": finished - started,
            "date_start": iso8601(started as i64),
            "date_finish": iso8601(finished as i64),
            "operating_reset_at": started as i64 + 600,
            "operating": 0,
        }
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn record(inner: &Arc<Mutex<Inner>>, method: String, body: Value, content_type: String, status: u16) {
    inner.lock().unwrap().calls.push(Call { method, body, content_type, status });
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (status, axum::Json(json!({"error": code, "error_description": description}))).into_response()
}

async fn download(Path(file_id): Path<String>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], format!("fake Bitrix24 file {file_id}\n"))
        .into_response()
}

/// Unfold a PHP-style form body (`a[b][c]=v`, `a[]=v`) into a JSON object of
/// strings. Repeated plain keys keep the last value, as PHP does.
pub fn php_form_to_json(body: &[u8]) -> Value {
    let mut root = Value::Object(Map::new());
    for (key, value) in form_urlencoded::parse(body) {
        let (head, path) = split_php_key(&key);
        let mut node = &mut root;
        let mut segments = std::iter::once(head).chain(path).peekable();
        while let Some(segment) = segments.next() {
            let obj = match node {
                Value::Object(obj) => obj,
                other => {
                    *other = Value::Object(Map::new());
                    other.as_object_mut().unwrap()
                }
            };
            let segment = if segment.is_empty() { obj.len().to_string() } else { segment };
            if segments.peek().is_none() {
                obj.insert(segment, Value::String(value.to_string()));
                break;
            }
            node = obj.entry(segment).or_insert_with(|| Value::Object(Map::new()));
        }
    }
    root
}

fn split_php_key(key: &str) -> (String, Vec<String>) {
    let Some(open) = key.find('[') else { return (key.to_string(), Vec::new()) };
    let head = key[..open].to_string();
    let mut rest = &key[open..];
    let mut path = Vec::new();
    while let Some(stripped) = rest.strip_prefix('[') {
        let Some(close) = stripped.find(']') else {
            // Malformed: PHP keeps the remainder verbatim.
            return (key.to_string(), Vec::new());
        };
        path.push(stripped[..close].to_string());
        rest = &stripped[close + 1..];
    }
    (head, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolds_php_keys() {
        let v = php_form_to_json(b"auth=tok&BOT_ID=55&KEYBOARD%5B0%5D%5BTEXT%5D=Yes&KEYBOARD%5B0%5D%5BBG_COLOR%5D=%23fff&A%5B%5D=x&A%5B%5D=y");
        assert_eq!(
            v,
            json!({"auth": "tok", "BOT_ID": "55", "KEYBOARD": {"0": {"TEXT": "Yes", "BG_COLOR": "#fff"}}, "A": {"0": "x", "1": "y"}})
        );
    }
}
