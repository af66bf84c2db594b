//! An emulated Bitrix24 REST API.
//!
//! `POST /rest/{method}` (also `{method}.json`, and `GET` with a query
//! string) accepts JSON or `application/x-www-form-urlencoded` bodies (PHP
//! nested keys such as `KEYBOARD[0][TEXT]` are unfolded into JSON objects),
//! records the call and answers like Bitrix24 does:
//! `{"result": <id>, "time": {"start", "finish", "duration", "processing",
//! "date_start", "date_finish"}}`, with an incrementing id. Failures are
//! scriptable, answered with Bitrix24's error body
//! `{"error": "CODE", "error_description": "..."}`:
//!
//! * [`FakeBitrix::fail_next`] / [`FakeBitrix::fail_next_of`]: the next calls
//!   (of any method / of one method); [`FakeBitrix::limit_next`]: 503
//!   `QUERY_LIMIT_EXCEEDED`; [`FakeBitrix::throttle_next`]: 429 with a
//!   `Retry-After` header;
//! * [`FakeBitrix::fail_nth`] / [`FakeBitrix::fail_message_add_at`]: the
//!   K-th call of a method (partial delivery);
//! * [`FakeBitrix::expire_next`], [`FakeBitrix::expire_token`],
//!   [`FakeBitrix::expire_unrefreshed_tokens`]: 401 `expired_token` for
//!   tokens the fake's OAuth server did not issue.
//!
//! `GET /oauth/token/?grant_type=refresh_token&client_id&client_secret&refresh_token`
//! (the fake's [`FakeBitrix::oauth_url`], standing in for
//! `https://oauth.bitrix.info`) refreshes tokens: it checks the client
//! credentials ([`FakeBitrix::CLIENT_ID`], [`FakeBitrix::CLIENT_SECRET`]) and
//! that the refresh token was not used before (each refresh uses it up and
//! issues a new one), and answers in the documented shape
//! `{"access_token","expires","expires_in","scope","domain","server_endpoint",
//! "status","client_endpoint","member_id","user_id","refresh_token"}`. Tokens
//! it issued are always accepted by the REST methods (unless
//! [`FakeBitrix::expire_token`] names them).
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
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
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
    /// When the fake received it (latency measurements of the load driver).
    pub at: std::time::Instant,
}

impl Call {
    /// A successful `imbot.message.add` or `imbot.command.answer`.
    pub fn is_delivery(&self) -> bool {
        self.succeeded() && matches!(self.method.as_str(), "imbot.message.add" | "imbot.command.answer")
    }

    /// A top-level parameter as a string (numbers and booleans stringified),
    /// matching keys case-sensitively.
    pub fn param(&self, key: &str) -> Option<String> {
        self.body.get(key).and_then(scalar_string)
    }

    /// A parameter that must be present (panics with the call otherwise).
    pub fn require(&self, key: &str) -> String {
        self.param(key).unwrap_or_else(|| panic!("Bitrix24 call {} has no `{key}` parameter: {}", self.method, self.body))
    }

    /// The `auth` token the call was made with.
    pub fn auth(&self) -> Option<String> {
        self.param("auth")
    }

    /// Whether the fake answered with a success.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `MESSAGE` parameter (the BBCode text of a message), if any.
    pub fn message(&self) -> Option<String> {
        self.param("MESSAGE")
    }
}

/// One request to the fake OAuth server (`GET /oauth/token/`).
#[derive(Debug, Clone)]
pub struct Refresh {
    /// `grant_type` (should be `refresh_token`).
    pub grant_type: String,
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
    /// `refresh_token` the plugin sent.
    pub refresh_token: String,
    /// The HTTP status the fake answered with.
    pub status: u16,
    /// The access token issued (on success).
    pub access_token: Option<String>,
    /// The refresh token issued with it (on success).
    pub new_refresh_token: Option<String>,
}

impl Refresh {
    /// Whether the refresh succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == 200
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

#[derive(Clone)]
struct Failure {
    /// `None`: any method.
    method: Option<String>,
    status: StatusCode,
    code: String,
    description: String,
    /// A `Retry-After` header value.
    retry_after: Option<String>,
}

impl Failure {
    fn new(method: Option<&str>, status: u16, code: &str, description: &str) -> Self {
        Failure {
            method: method.map(str::to_string),
            status: StatusCode::from_u16(status).expect("a valid HTTP status"),
            code: code.into(),
            description: description.into(),
            retry_after: None,
        }
    }

    fn applies_to(&self, method: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
    }
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    next_id: u64,
    failures: VecDeque<Failure>,
    /// (method, 1-based call number) → failure.
    nth_failures: HashMap<(String, usize), Failure>,
    results: HashMap<String, Value>,
    /// method → how many more calls with an unrefreshed token answer `expired_token`.
    expire_next: HashMap<String, usize>,
    /// Tokens that always answer `expired_token`.
    expired_tokens: HashSet<String>,
    /// Every token the OAuth server did not issue answers `expired_token`.
    expire_unrefreshed: bool,
    oauth: OAuth,
}

#[derive(Default)]
struct OAuth {
    member_id: String,
    refreshes: Vec<Refresh>,
    issued_access: HashSet<String>,
    used_refresh: HashSet<String>,
    revoked_refresh: HashSet<String>,
    failures: VecDeque<Failure>,
    issued: u64,
}

/// A running fake Bitrix24 portal. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct FakeBitrix {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

/// Shared by the handlers: the state and the fake's own address (for
/// `client_endpoint` in OAuth answers).
#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
}

impl FakeBitrix {
    /// The application's `client_id` the fake OAuth server accepts (the
    /// `client_id` [`crate::bitrix_events`] puts into bot blocks).
    pub const CLIENT_ID: &'static str = "local.switchboard.test";
    /// The application's `client_secret` the fake OAuth server accepts.
    pub const CLIENT_SECRET: &'static str = "switchboard-test-client-secret";
    /// The `member_id` the OAuth server reports unless [`FakeBitrix::set_member_id`]
    /// changes it (the default of [`crate::EventParams`]).
    pub const MEMBER_ID: &'static str = "a1b2c3";

    /// Start the fake on `127.0.0.1:0`.
    pub async fn start() -> FakeBitrix {
        let mut initial = Inner { next_id: 19_880_117, ..Inner::default() };
        initial.oauth.member_id = Self::MEMBER_ID.into();
        let inner = Arc::new(Mutex::new(initial));
        let shared = Shared { inner: inner.clone(), addr: Arc::new(Mutex::new(None)) };
        let router = Router::new()
            .route("/rest/{method}", any(rest))
            .route("/download/{file_id}", get(download))
            .route("/oauth/token/", any(oauth_token))
            .route("/oauth/token", any(oauth_token))
            .with_state(shared.clone());
        let addr = util::serve(router).await;
        *shared.addr.lock().unwrap() = Some(addr);
        FakeBitrix { addr, inner }
    }

    /// The base URL of the fake OAuth server (`http://127.0.0.1:PORT`), for
    /// the plugin's `oauth_url` setting; refreshes go to `{oauth_url}/oauth/token/`.
    pub fn oauth_url(&self) -> String {
        format!("http://{}", self.addr)
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
        self.push_failures(n, Failure::new(None, status, code, description));
    }

    /// Answer the next `n` calls of `method` with `status` and
    /// `{"error": code, "error_description": description}`; other methods
    /// are not affected.
    pub fn fail_next_of(&self, method: &str, n: usize, status: u16, code: &str, description: &str) {
        self.push_failures(n, Failure::new(Some(method), status, code, description));
    }

    /// Answer the next `n` calls (of any method) with Bitrix24's rate limit:
    /// 503 `{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}`.
    pub fn limit_next(&self, n: usize) {
        self.fail_next(n, 503, "QUERY_LIMIT_EXCEEDED", "Too many requests");
    }

    /// Answer the next `n` calls (of any method) with 429
    /// `{"error":"OPERATION_TIME_LIMIT",...}` and `Retry-After: {retry_after_secs}`.
    pub fn throttle_next(&self, n: usize, retry_after_secs: u64) {
        let mut failure = Failure::new(None, 429, "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.");
        failure.retry_after = Some(retry_after_secs.to_string());
        self.push_failures(n, failure);
    }

    /// Answer the `nth` call (1-based, counting every call of `method` since
    /// the fake started, failed ones included) with `status` and
    /// `{"error": code, "error_description": description}`.
    pub fn fail_nth(&self, method: &str, nth: usize, status: u16, code: &str, description: &str) {
        assert!(nth >= 1, "calls are counted from 1");
        let failure = Failure::new(Some(method), status, code, description);
        self.inner.lock().unwrap().nth_failures.insert((method.to_string(), nth), failure);
    }

    /// Answer the `k`-th `imbot.message.add` call (1-based) with 500
    /// `INTERNAL_SERVER_ERROR`, e.g. to fail the second message of a reply.
    pub fn fail_message_add_at(&self, k: usize) {
        self.fail_nth("imbot.message.add", k, 500, "INTERNAL_SERVER_ERROR", "Internal server error");
    }

    fn push_failures(&self, n: usize, failure: Failure) {
        let mut inner = self.inner.lock().unwrap();
        for _ in 0..n {
            inner.failures.push_back(failure.clone());
        }
    }

    /// Answer the next `n` calls of `method` made with a token the fake
    /// OAuth server did not issue with 401
    /// `{"error":"expired_token","error_description":"The access token provided has expired."}`.
    /// The first call with a refreshed token ends it (the rest of `n` is dropped).
    pub fn expire_next(&self, method: &str, n: usize) {
        *self.inner.lock().unwrap().expire_next.entry(method.to_string()).or_default() += n;
    }

    /// Treat `token` as expired: every call made with it answers `expired_token`.
    pub fn expire_token(&self, token: &str) {
        self.inner.lock().unwrap().expired_tokens.insert(token.to_string());
    }

    /// From now on every call made with a token the fake OAuth server did
    /// not issue answers `expired_token` (the event's tokens are over an hour old).
    pub fn expire_unrefreshed_tokens(&self) {
        self.inner.lock().unwrap().expire_unrefreshed = true;
    }

    /// The `member_id` the OAuth server reports in its answers.
    pub fn set_member_id(&self, member_id: &str) {
        self.inner.lock().unwrap().oauth.member_id = member_id.to_string();
    }

    /// Refuse `refresh_token` (400 `invalid_grant`), as for a used-up or
    /// expired refresh token.
    pub fn revoke_refresh_token(&self, refresh_token: &str) {
        self.inner.lock().unwrap().oauth.revoked_refresh.insert(refresh_token.to_string());
    }

    /// Answer the next `n` refresh requests with `status` and
    /// `{"error": error, "error_description": description}`.
    pub fn fail_next_refresh(&self, n: usize, status: u16, error: &str, description: &str) {
        let failure = Failure::new(None, status, error, description);
        let mut inner = self.inner.lock().unwrap();
        for _ in 0..n {
            inner.oauth.failures.push_back(failure.clone());
        }
    }

    /// Every request to the OAuth server so far, in arrival order.
    pub fn refreshes(&self) -> Vec<Refresh> {
        self.inner.lock().unwrap().oauth.refreshes.clone()
    }

    /// How many refreshes succeeded (new tokens issued).
    pub fn refresh_count(&self) -> usize {
        self.refreshes().iter().filter(|r| r.succeeded()).count()
    }

    /// Whether the OAuth server issued `token` (a refreshed access token).
    pub fn is_refreshed_token(&self, token: &str) -> bool {
        self.inner.lock().unwrap().oauth.issued_access.contains(token)
    }

    /// How many calls of `method` arrived (failed ones included).
    pub fn call_count(&self, method: &str) -> usize {
        self.inner.lock().unwrap().calls.iter().filter(|c| c.method == method).count()
    }

    /// Calls per method (failed ones included).
    pub fn call_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for call in self.inner.lock().unwrap().calls.iter() {
            *counts.entry(call.method.clone()).or_default() += 1;
        }
        counts
    }

    /// The exact `MESSAGE` of every message delivered so far (successful
    /// `imbot.message.add` and `imbot.command.answer` calls), in arrival order.
    pub fn delivered_texts(&self) -> Vec<String> {
        self.calls().iter().filter(|c| c.is_delivery()).map(|c| c.message().unwrap_or_default()).collect()
    }

    /// How many messages were delivered so far (as [`FakeBitrix::delivered_texts`]
    /// counts them, without copying the calls).
    pub fn delivered_count(&self) -> usize {
        self.inner.lock().unwrap().calls.iter().filter(|c| c.is_delivery()).count()
    }

    /// Each delivered message's text with the instant the fake received it.
    pub fn deliveries(&self) -> Vec<(String, std::time::Instant)> {
        self.inner.lock().unwrap().calls.iter().filter(|c| c.is_delivery()).map(|c| (c.message().unwrap_or_default(), c.at)).collect()
    }

    /// Wait until at least `n` messages were delivered ([`FakeBitrix::delivered_texts`])
    /// and return their texts. Panics with every call seen so far on timeout.
    pub async fn wait_for_delivered(&self, n: usize, timeout: Duration) -> Vec<String> {
        let found = util::poll_until(timeout, || async {
            let texts = self.delivered_texts();
            (texts.len() >= n).then_some(texts)
        })
        .await;
        found.unwrap_or_else(|| panic!("expected at least {n} delivered message(s) within {timeout:?}; all calls: {:#?}", self.calls()))
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
        found.unwrap_or_else(|| panic!("expected at least {n} Bitrix24 call(s) within {timeout:?}; got: {:#?}", self.calls()))
    }

    /// Wait until at least `n` calls of `method` arrived and return the calls
    /// of that method. Panics with every call seen so far on timeout.
    pub async fn wait_for_method(&self, method: &str, n: usize, timeout: Duration) -> Vec<Call> {
        let found = util::poll_until(timeout, || async {
            let calls = self.calls_to(method);
            (calls.len() >= n).then_some(calls)
        })
        .await;
        found.unwrap_or_else(|| panic!("expected at least {n} `{method}` call(s) within {timeout:?}; all calls: {:#?}", self.calls()))
    }
}

async fn rest(State(Shared { inner, .. }): State<Shared>, Path(method): Path<String>, RawQuery(query): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
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
    let nth = guard.calls.iter().filter(|c| c.method == method).count() + 1;
    let token = params.get("auth").and_then(scalar_string).unwrap_or_default();
    if let Some(failure) = guard.scripted_failure(&method, nth, &token) {
        guard.calls.push(Call { method, body: params, content_type, status: failure.status.as_u16(), at: std::time::Instant::now() });
        return failure.response();
    }
    let result = match guard.results.get(&method) {
        Some(result) => result.clone(),
        None => {
            guard.next_id += 1;
            json!(guard.next_id)
        }
    };
    guard.calls.push(Call { method, body: params, content_type, status: 200, at: std::time::Instant::now() });
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

impl Inner {
    /// The failure this call gets, if any: an expired token first, then the
    /// K-th-call failures, then the queue of next-call failures.
    fn scripted_failure(&mut self, method: &str, nth: usize, token: &str) -> Option<Failure> {
        let refreshed = self.oauth.issued_access.contains(token);
        let expired = self.expired_tokens.contains(token) || (self.expire_unrefreshed && !refreshed);
        if refreshed {
            // A refreshed token is used: the scripted expiry of this method ends.
            self.expire_next.remove(method);
        }
        let expire_scripted = !refreshed
            && match self.expire_next.get_mut(method) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    true
                }
                _ => false,
            };
        if expired || expire_scripted {
            return Some(Failure::new(Some(method), 401, "expired_token", "The access token provided has expired."));
        }
        if let Some(failure) = self.nth_failures.remove(&(method.to_string(), nth)) {
            return Some(failure);
        }
        let position = self.failures.iter().position(|f| f.applies_to(method))?;
        self.failures.remove(position)
    }
}

impl Failure {
    fn response(&self) -> Response {
        let mut response = error(self.status, &self.code, &self.description);
        if let Some(retry_after) = &self.retry_after
            && let Ok(value) = header::HeaderValue::from_str(retry_after)
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// `GET /oauth/token/?grant_type=refresh_token&client_id=…&client_secret=…&refresh_token=…`
/// (a form body of a POST counts too).
async fn oauth_token(State(shared): State<Shared>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let mut fields: HashMap<String, String> = HashMap::new();
    for (k, v) in form_urlencoded::parse(&body).chain(form_urlencoded::parse(query.unwrap_or_default().as_bytes())) {
        fields.insert(k.into_owned(), v.into_owned());
    }
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let client_endpoint = shared.addr.lock().unwrap().map(|a| format!("http://{a}/rest/")).unwrap_or_default();
    let mut inner = shared.inner.lock().unwrap();
    let oauth = &mut inner.oauth;
    let mut refresh = Refresh {
        grant_type: field("grant_type"),
        client_id: field("client_id"),
        client_secret: field("client_secret"),
        refresh_token: field("refresh_token"),
        status: 200,
        access_token: None,
        new_refresh_token: None,
    };
    let refusal = if let Some(failure) = oauth.failures.pop_front() {
        Some(failure)
    } else if refresh.grant_type != "refresh_token" {
        Some(Failure::new(None, 400, "unsupported_grant_type", "Only grant_type=refresh_token is supported here"))
    } else if refresh.client_id != FakeBitrix::CLIENT_ID || refresh.client_secret != FakeBitrix::CLIENT_SECRET {
        Some(Failure::new(None, 401, "invalid_client", "Invalid client credentials"))
    } else if refresh.refresh_token.is_empty() || oauth.used_refresh.contains(&refresh.refresh_token) || oauth.revoked_refresh.contains(&refresh.refresh_token)
    {
        Some(Failure::new(None, 400, "invalid_grant", "Invalid refresh token"))
    } else {
        None
    };
    if let Some(failure) = refusal {
        refresh.status = failure.status.as_u16();
        oauth.refreshes.push(refresh);
        return failure.response();
    }
    oauth.used_refresh.insert(refresh.refresh_token.clone());
    oauth.issued += 1;
    let access_token = format!("refreshed-access-token-{}", oauth.issued);
    let new_refresh_token = format!("refreshed-refresh-token-{}", oauth.issued);
    oauth.issued_access.insert(access_token.clone());
    refresh.access_token = Some(access_token.clone());
    refresh.new_refresh_token = Some(new_refresh_token.clone());
    oauth.refreshes.push(refresh);
    let now = util::unix_now();
    let body = json!({
        "access_token": access_token,
        "expires": now + 3600,
        "expires_in": 3600,
        "scope": "imbot,im",
        "domain": "oauth.bitrix.info",
        "server_endpoint": "https://oauth.bitrix.info/rest/",
        "status": "L",
        "client_endpoint": client_endpoint,
        "member_id": oauth.member_id,
        "user_id": 1,
        "refresh_token": new_refresh_token,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn record(inner: &Arc<Mutex<Inner>>, method: String, body: Value, content_type: String, status: u16) {
    inner.lock().unwrap().calls.push(Call { method, body, content_type, status, at: std::time::Instant::now() });
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (status, axum::Json(json!({"error": code, "error_description": description}))).into_response()
}

async fn download(Path(file_id): Path<String>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], format!("fake Bitrix24 file {file_id}\n")).into_response()
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
        assert_eq!(v, json!({"auth": "tok", "BOT_ID": "55", "KEYBOARD": {"0": {"TEXT": "Yes", "BG_COLOR": "#fff"}}, "A": {"0": "x", "1": "y"}}));
    }
}
