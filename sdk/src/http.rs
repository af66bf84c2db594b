//! Outbound HTTP through the host's `wasi:http`.
//!
//! The host only lets requests through to the hosts the connector allows,
//! applies timeouts and caps response sizes. A denied request fails with
//! [`HttpError::Denied`].

use crate::PluginError;
use serde::{Serialize, de::DeserializeOwned};
use std::time::Duration;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};
use wasip2::io::streams::StreamError;

/// An outgoing request. Build one with [`Request::get`] / [`Request::post`].
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

/// A received response with its whole body.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// Why a request produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL cannot be parsed or uses an unsupported scheme.
    InvalidUrl(String),
    /// The host's policy refused the destination.
    Denied(String),
    /// Connecting, sending or reading failed (including timeouts).
    Transport(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidUrl(m) => write!(f, "invalid URL: {m}"),
            Self::Denied(m) => write!(f, "request denied by host policy: {m}"),
            Self::Transport(m) => write!(f, "HTTP transport error: {m}"),
        }
    }
}

impl From<HttpError> for PluginError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::Transport(_) => PluginError::transient(error.to_string()),
            HttpError::Denied(_) | HttpError::InvalidUrl(_) => PluginError::config(error.to_string()),
        }
    }
}

impl Request {
    /// A request with any method.
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Self { method: method.to_string(), url: url.into(), headers: Vec::new(), body: Vec::new(), timeout: None }
    }

    /// `GET url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// `POST url`.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }

    /// Add a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// `Authorization: Bearer {token}`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// A JSON body (sets `content-type`).
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.body = serde_json::to_vec(body).expect("serializing a JSON body cannot fail for plain data");
        self.header("content-type", "application/json")
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn form(mut self, pairs: &[(String, String)]) -> Self {
        self.body = crate::form::encode(pairs).into_bytes();
        self.header("content-type", "application/x-www-form-urlencoded")
    }

    /// Raw body bytes.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// Time to wait for the first byte of the response (the host may cap it).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Send the request and read the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        let url = url::Url::parse(&self.url).map_err(|e| HttpError::InvalidUrl(format!("{}: {e}", self.url)))?;
        let request = self.outgoing_request(&url)?;
        let body = request.body().map_err(|()| HttpError::Transport("request body unavailable".into()))?;
        let future = outgoing_handler::handle(request, Some(self.options())).map_err(|code| classify(&url, code))?;
        write_body(body, &self.body)?;
        future.subscribe().block();
        let response = future
            .get()
            .ok_or_else(|| HttpError::Transport("response not ready".into()))?
            .map_err(|()| HttpError::Transport("response already taken".into()))?
            .map_err(|code| classify(&url, code))?;
        let status = response.status();
        let headers = response.headers().entries().into_iter().map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned())).collect();
        let incoming = response.consume().map_err(|()| HttpError::Transport("response body unavailable".into()))?;
        let body = read_body(incoming)?;
        Ok(Response { status, headers, body })
    }

    fn outgoing_request(&self, url: &url::Url) -> Result<OutgoingRequest, HttpError> {
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(HttpError::InvalidUrl(format!("unsupported scheme `{other}`"))),
        };
        let authority = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => return Err(HttpError::InvalidUrl(format!("{url} has no host"))),
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let mut entries: Vec<(String, Vec<u8>)> = self.headers.iter().map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect();
        // A known length instead of chunked encoding: some servers and
        // proxies reject chunked request bodies.
        if !self.body.is_empty() && !self.headers.iter().any(|(k, _)| k == "content-length") {
            entries.push(("content-length".into(), self.body.len().to_string().into_bytes()));
        }
        let headers = Fields::from_list(&entries).map_err(|e| HttpError::InvalidUrl(format!("bad header: {e:?}")))?;
        let request = OutgoingRequest::new(headers);
        let invalid = |what: &str| HttpError::InvalidUrl(format!("{what} rejected for {url}"));
        request.set_method(&method(&self.method)).map_err(|()| invalid("method"))?;
        request.set_scheme(Some(&scheme)).map_err(|()| invalid("scheme"))?;
        request.set_authority(Some(&authority)).map_err(|()| invalid("authority"))?;
        request.set_path_with_query(Some(&path)).map_err(|()| invalid("path"))?;
        Ok(request)
    }

    fn options(&self) -> RequestOptions {
        let options = RequestOptions::new();
        if let Some(timeout) = self.timeout {
            let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            let _ = options.set_first_byte_timeout(Some(nanos));
            let _ = options.set_between_bytes_timeout(Some(nanos));
        }
        options
    }
}

impl Response {
    /// True for 2xx statuses.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| PluginError::permanent(format!("HTTP {}: response is not the expected JSON ({e}): {}", self.status, snippet(&self.text()))))
    }

    /// A header value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Whether an HTTP status is worth retrying: request timeout (408), rate
/// limit (429) or a server error (5xx).
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// Standard Base64 with padding (RFC 4648 §4), e.g. for `Authorization: Basic`.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `Authorization` value for HTTP Basic authentication.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// The first 300 characters of `text`, for error messages.
pub fn snippet(text: &str) -> String {
    let mut s: String = text.chars().take(300).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

fn method(name: &str) -> Method {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "HEAD" => Method::Head,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    }
}

fn classify(url: &url::Url, code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied(format!("{} is not an allowed host", url.host_str().unwrap_or(""))),
        other => HttpError::Transport(format!("{url}: {other:?}")),
    }
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    {
        let stream = body.write().map_err(|()| HttpError::Transport("request stream unavailable".into()))?;
        for chunk in bytes.chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| HttpError::Transport(format!("writing request body: {e:?}")))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|e| HttpError::Transport(format!("finishing request: {e:?}")))
}

fn read_body(body: IncomingBody) -> Result<Vec<u8>, HttpError> {
    let mut bytes = Vec::new();
    {
        let stream = body.stream().map_err(|()| HttpError::Transport("response stream unavailable".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(HttpError::Transport(format!("reading response: {}", e.to_debug_string())));
                }
            }
        }
    }
    drop(IncomingBody::finish(body));
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(base64(input.as_bytes()), expected, "base64({input:?})");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn transient_statuses() {
        assert!([408, 429, 500, 503, 599].into_iter().all(is_transient_status));
        assert!(![200, 400, 401, 404, 422].into_iter().any(is_transient_status));
    }

    #[test]
    fn basic_auth_header() {
        // The same encoding curl and Postman use.
        assert_eq!(basic_auth("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }
}
