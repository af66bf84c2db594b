//! Outbound HTTP policy for plugins, enforced in the `wasi:http` send hook:
//! an allowlist of `scheme://host:port` patterns, the SSRF guard (the
//! connection goes only to a resolved address that was checked), rate
//! limits, timeouts and a response-size cap.

use super::network::NetworkPolicy;
use super::rate_limit::{Admission, OutboundLimiter};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Hosts a plugin may call. A pattern is `[scheme://]host[:port]`, where
/// `host` may be `*.domain` (any subdomain) and an IPv6 literal is written
/// in brackets. Without a scheme a pattern allows `https` only, and without
/// a port only the scheme's default port: `*.bitrix24.com` is
/// `https://*.bitrix24.com:443`, never `:6379` or plain http.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    patterns: Vec<String>,
}

impl AllowList {
    /// The hosts one connector's plugin may call, all explicit: the
    /// connector's `allowed_hosts` (a list or a comma-separated string), the
    /// hosts the plugin's manifest names, and the `scheme://host:port` of
    /// the settings the manifest names as endpoints. A setting that merely
    /// looks like a URL allows nothing.
    pub fn for_plugin(manifest: &super::Manifest, settings: &std::collections::BTreeMap<String, String>) -> Self {
        let mut patterns: Vec<String> = settings.get("allowed_hosts").map(|list| parse_host_list(list)).unwrap_or_default();
        patterns.extend(manifest.outbound_hosts.iter().map(|host| host.trim().to_ascii_lowercase()));
        patterns.extend(manifest.outbound_host_settings.iter().filter_map(|name| settings.get(name)).filter_map(|url| url_authority(url)));
        patterns.sort();
        patterns.dedup();
        Self { patterns }
    }

    /// The patterns, for logs and docs.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether a request with `scheme` to `host` on `port` is allowed.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.patterns.iter().any(|pattern| matches(pattern, scheme, &host, port))
    }
}

fn parse_host_list(value: &str) -> Vec<String> {
    let items: Vec<String> = serde_json::from_str(value).unwrap_or_else(|_| value.split(',').map(str::to_string).collect());
    items.into_iter().map(|item| item.trim().to_ascii_lowercase()).filter(|item| !item.is_empty()).collect()
}

fn url_authority(value: &str) -> Option<String> {
    let url = url::Url::parse(value.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    Some(format!("{}://{host}:{}", url.scheme(), url.port_or_known_default()?))
}

fn matches(pattern: &str, scheme: &str, host: &str, port: u16) -> bool {
    let (pattern_scheme, rest) = pattern.split_once("://").unwrap_or(("https", pattern));
    if pattern_scheme != scheme {
        return false;
    }
    let default_port = if scheme == "http" { 80 } else { 443 };
    let (pattern_host, pattern_port) = match rest.rsplit_once(':') {
        // `[::1]` alone has colons but no port.
        Some((h, p)) if !rest.ends_with(']') => (h, p.parse::<u16>().unwrap_or(0)),
        _ => (rest, default_port),
    };
    if pattern_port != port {
        return false;
    }
    let pattern_host = pattern_host.trim_start_matches('[').trim_end_matches(']');
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match pattern_host.strip_prefix("*.") {
        Some(domain) => host.len() > domain.len() && host.ends_with(domain) && host[..host.len() - domain.len()].ends_with('.'),
        None => pattern_host == host,
    }
}

/// The `wasi:http` hooks of one plugin call.
pub struct OutboundPolicy {
    pub allow: Arc<AllowList>,
    pub timeout: Duration,
    pub max_response_bytes: usize,
    pub plugin: Arc<str>,
    pub limiter: Option<Arc<OutboundLimiter>>,
    /// How long a request may wait in the call for its rate-limit slot.
    pub max_wait: Duration,
    /// Whether this call has sent a request (it then cannot be deferred).
    pub sent: bool,
    /// Set when a request was deferred: the destination and when to retry.
    pub deferred: Option<(String, Duration)>,
    /// Whether the plugin tried a host it may not call (set by the send
    /// future too, after resolution).
    pub denied: Arc<AtomicBool>,
    /// Which resolved addresses may be connected to.
    pub network: Arc<NetworkPolicy>,
    /// Requests this call may still start.
    pub requests_left: usize,
    /// The tenant's slots for requests in flight.
    pub slots: Arc<tokio::sync::Semaphore>,
}

impl OutboundPolicy {
    /// How long the request to `host:port` must wait for its slot; `None`
    /// when it is deferred (recorded in `self.deferred`).
    fn admit(&mut self, host: &str, port: u16) -> Option<Duration> {
        if self.deferred.is_some() {
            return None;
        }
        let Some(limiter) = &self.limiter else { return Some(Duration::ZERO) };
        let destination = format!("{host}:{port}");
        match limiter.admit(&destination, std::time::Instant::now(), self.max_wait, self.sent) {
            Admission::Wait(wait) => Some(wait),
            Admission::Defer(after) => {
                tracing::info!(plugin = %self.plugin, %destination, retry_in = ?after, "rate limit reached; the call is deferred to its slot");
                self.deferred = Some((destination, after));
                None
            }
        }
    }
}

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError>> + Send> {
        drop(fut);
        // Checked first and silently: a flood of refused requests must not flood the log.
        if self.requests_left == 0 {
            self.denied.store(true, Ordering::Relaxed);
            return Box::new(async { Err(HttpError::ConnectionLimitReached) });
        }
        self.requests_left -= 1;
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16().unwrap_or(if scheme == "http" { 80 } else { 443 });
        // `https://allowed@evil/` and friends: a URL with user info is never sent.
        let has_userinfo = uri.authority().is_some_and(|a| a.as_str().contains('@'));
        if !matches!(scheme.as_str(), "http" | "https") || has_userinfo || !self.allow.allows(&scheme, &host, port) {
            tracing::warn!(plugin = %self.plugin, %scheme, %host, port, "outbound request denied: not an allowed host for this connector");
            self.denied.store(true, Ordering::Relaxed);
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let Some(wait) = self.admit(&host, port) else {
            return Box::new(async { Err(HttpError::ConnectionLimitReached) });
        };
        self.sent = true;
        let options = Some(capped(options, self.timeout));
        let limit = self.max_response_bytes;
        let (network, denied, plugin, slots) = (Arc::clone(&self.network), Arc::clone(&self.denied), Arc::clone(&self.plugin), Arc::clone(&self.slots));
        Box::new(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            // Held until the response is read (the connection's io future
            // ends): one tenant cannot hold every outbound connection.
            let slot = slots.acquire_owned().await.map_err(|_| HttpError::ConnectionLimitReached)?;
            let addresses = network.resolve(&host, port).await.map_err(|refusal| {
                tracing::warn!(%plugin, %refusal, "outbound request denied");
                denied.store(true, Ordering::Relaxed);
                HttpError::HttpRequestDenied
            })?;
            let (response, io) = super::send::send_request(request, options, addresses, host).await?;
            let response = response.map(|body| limit_body(body, limit));
            let io = async move {
                let _slot = slot;
                io.await
            };
            Ok((response, Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>))
        })
    }
}

fn capped(options: Option<RequestOptions>, limit: Duration) -> RequestOptions {
    let options = options.unwrap_or_default();
    let cap = |value: Option<Duration>| Some(value.map_or(limit, |v| v.min(limit)));
    RequestOptions {
        connect_timeout: cap(options.connect_timeout),
        first_byte_timeout: cap(options.first_byte_timeout),
        between_bytes_timeout: cap(options.between_bytes_timeout),
    }
}

fn limit_body(body: impl http_body::Body<Data = Bytes, Error = HttpError> + Send + 'static, limit: usize) -> WasiBody {
    Limited::new(body, limit)
        .map_err(move |error| match error.downcast::<HttpError>() {
            Ok(inner) => *inner,
            Err(_) => HttpError::HttpResponseBodySize(Some(limit as u64)),
        })
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The list of a plugin whose manifest names `base_url` as its endpoint.
    fn list(pairs: &[(&str, &str)]) -> AllowList {
        let manifest = super::super::Manifest { outbound_host_settings: vec!["base_url".into()], ..Default::default() };
        AllowList::for_plugin(&manifest, &settings(pairs))
    }

    #[test]
    fn only_declared_endpoint_settings_allow_their_host() {
        let pairs = [("base_url", "https://api.dify.ai/v1"), ("webhook_target", "https://internal.example/")];
        let allow = list(&pairs);
        assert!(allow.allows("https", "api.dify.ai", 443));
        assert!(!allow.allows("https", "internal.example", 443), "a URL-looking setting the manifest does not name allows nothing");
        let undeclared = AllowList::for_plugin(&Default::default(), &settings(&pairs));
        assert!(!undeclared.allows("https", "api.dify.ai", 443), "without a manifest only allowed_hosts counts");
        let cloud = super::super::Manifest { outbound_hosts: vec!["https://api.dify.ai".into()], ..Default::default() };
        assert!(AllowList::for_plugin(&cloud, &settings(&[])).allows("https", "api.dify.ai", 443));
    }

    #[test]
    fn derives_hosts_from_url_settings_and_explicit_list() {
        let allow = list(&[("base_url", "https://api.dify.ai/v1"), ("api_key", "not-a-url"), ("allowed_hosts", r#"["*.bitrix24.com", "127.0.0.1:8080"]"#)]);
        assert!(allow.allows("https", "api.dify.ai", 443));
        assert!(!allow.allows("http", "api.dify.ai", 443));
        assert!(!allow.allows("https", "api.dify.ai", 80));
        assert!(allow.allows("https", "acme.bitrix24.com", 443));
        assert!(!allow.allows("https", "bitrix24.com", 443));
        assert!(!allow.allows("https", "evilbitrix24.com", 443));
        assert!(allow.allows("https", "127.0.0.1", 8080));
        assert!(!allow.allows("http", "127.0.0.1", 8080), "no scheme in the pattern means https only");
        assert!(!allow.allows("https", "127.0.0.1", 8081));
        assert!(!allow.allows("https", "example.com", 443));
    }

    #[test]
    fn a_pattern_without_a_port_allows_only_the_default_port() {
        let allow = list(&[("allowed_hosts", r#"["*.bitrix24.com"]"#)]);
        assert!(allow.allows("https", "p.bitrix24.com", 443));
        for port in [80, 6379, 22, 8443] {
            assert!(!allow.allows("https", "p.bitrix24.com", port), "port {port}");
        }
        assert!(!allow.allows("http", "p.bitrix24.com", 80));
    }

    #[test]
    fn url_settings_allow_their_scheme_host_and_port() {
        let allow = list(&[("base_url", "http://127.0.0.1:5001/v1")]);
        assert_eq!(allow.patterns(), ["http://127.0.0.1:5001"]);
        assert!(allow.allows("http", "127.0.0.1", 5001));
        assert!(!allow.allows("https", "127.0.0.1", 5001));
        assert!(!allow.allows("http", "127.0.0.1", 5002));
    }

    #[test]
    fn explicit_schemes_and_ipv6_literals() {
        let allow = list(&[("allowed_hosts", r#"["http://[::1]:8080", "https://[2001:4860::1]"]"#)]);
        assert!(allow.allows("http", "[::1]", 8080));
        assert!(!allow.allows("https", "[::1]", 8080));
        assert!(allow.allows("https", "[2001:4860::1]", 443));
    }

    #[test]
    fn empty_settings_allow_nothing() {
        assert!(!list(&[]).allows("http", "localhost", 80));
    }
}
