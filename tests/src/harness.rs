//! Starts the real Switchboard host in-process and talks to it over HTTP,
//! plus helpers that write the host's TOML configuration.

use crate::fake_bitrix::FakeBitrix;
use crate::fake_dify::FakeDify;
use reqwest::StatusCode;
use std::net::SocketAddr;

/// A running host on `127.0.0.1:{random port}`.
pub struct TestHost {
    server: Option<switchboard::Server>,
    addr: SocketAddr,
    client: reqwest::Client,
}

impl TestHost {
    /// Parse `toml` and start the host. Panics with the configuration and
    /// the error when either step fails.
    pub async fn start(toml: String) -> TestHost {
        let config =
            switchboard::Config::from_toml_str(&toml).unwrap_or_else(|e| panic!("the host rejected the test configuration: {e:#}\n--- config ---\n{toml}"));
        let server = switchboard::Server::start(config).await.unwrap_or_else(|e| panic!("the host failed to start: {e:#}\n--- config ---\n{toml}"));
        let addr = server.local_addr();
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().expect("building an HTTP client");
        TestHost { server: Some(server), addr, client }
    }

    /// Send `method` to `path` with an optional bearer token; returns the
    /// status and the body.
    pub async fn request(&self, method: reqwest::Method, path: &str, bearer: Option<&str>) -> (StatusCode, String) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request to the host");
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }

    /// `POST` a JSON body; returns the status.
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> StatusCode {
        self.client.post(self.url(path)).json(&body).send().await.expect("request to the host").status()
    }

    /// The running host's state, e.g. to run a channel plugin's action.
    pub fn app(&self) -> &std::sync::Arc<switchboard::app::App> {
        self.server.as_ref().expect("the host is running").app()
    }

    /// The address the host listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `POST` an `application/x-www-form-urlencoded` body (as Bitrix24 does)
    /// and return the status and the response text.
    pub async fn post_form(&self, path: &str, body: impl Into<String>) -> (StatusCode, String) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path} to the host failed: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_else(|e| panic!("reading the response of POST {path}: {e}"));
        (status, text)
    }

    /// `GET` a path and return the status and the response text.
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self.client.get(self.url(path)).send().await.unwrap_or_else(|e| panic!("GET {path} from the host failed: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_else(|e| panic!("reading the response of GET {path}: {e}"));
        (status, text)
    }

    /// Stop the host gracefully.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// A TOML basic string literal (quoted and escaped).
pub fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The fallback text every test connector is configured with.
pub const FALLBACK: &str = "Sorry, the assistant is unavailable right now.";

/// The Bitrix24 application token every test connector expects.
pub const APP_TOKEN: &str = "app-token-123";

/// Builds the host's TOML configuration.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// `store`: `memory`, `embedded:/dir` or a `redis://` URL.
    pub store: String,
    /// `public_url`, when set.
    pub public_url: Option<String>,
    /// `[sandbox] max_response_bytes`, when set.
    pub max_response_bytes: Option<usize>,
    /// `admin_token`, when set.
    pub admin_token: Option<String>,
    /// `[sandbox] memory_limit_mb`.
    pub memory_limit_mb: u32,
    /// `[sandbox] call_timeout_ms`.
    pub call_timeout_ms: u64,
    /// Extra TOML (whole tables such as `[server]`), rendered before the connectors.
    pub extra_toml: Vec<String>,
    /// Extra `key = value` lines of the `[sandbox]` table.
    pub sandbox_lines: Vec<String>,
    /// `[sandbox] allow_private_networks`: loopback by default, because
    /// every fake listens on 127.0.0.1.
    pub private_networks: Vec<String>,
    /// `[plugins]`: extra components by name.
    pub plugins: Vec<(String, String)>,
    /// `[retry] attempts`.
    pub retry_attempts: u32,
    /// `[retry] initial_backoff_ms` (also the cap: tests keep retries quick).
    pub retry_backoff_ms: u64,
    /// Extra `key = value` lines of the `[queue]` table.
    pub queue: Vec<String>,
    /// Rendered `[[connector]]` tables.
    pub connectors: Vec<String>,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            store: "memory".into(),
            public_url: None,
            max_response_bytes: None,
            admin_token: None,
            memory_limit_mb: 32,
            call_timeout_ms: 2000,
            private_networks: vec!["127.0.0.0/8".into()],
            sandbox_lines: Vec::new(),
            extra_toml: Vec::new(),
            plugins: Vec::new(),
            retry_attempts: 3,
            retry_backoff_ms: 50,
            queue: Vec::new(),
            connectors: Vec::new(),
        }
    }
}

impl HostConfig {
    /// Set `public_url` (plugins then get their `webhook-url`).
    pub fn public_url(mut self, url: &str) -> Self {
        self.public_url = Some(url.to_string());
        self
    }

    /// Enable the admin API with this bearer token.
    pub fn admin_token(mut self, token: &str) -> Self {
        self.admin_token = Some(token.to_string());
        self
    }

    /// Cap the response bodies plugins may read.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = Some(bytes);
        self
    }

    /// Register an extra component (`[plugins] name = "path"`).
    pub fn plugin(mut self, name: &str, path: &str) -> Self {
        self.plugins.push((name.to_string(), path.to_string()));
        self
    }

    /// Add a connector with the default fallback text. `channel` and
    /// `provider` are TOML inline tables (see [`bitrix_channel`], [`dify_provider`]).
    pub fn connector(mut self, id: &str, channel: &str, provider: &str) -> Self {
        self.connectors.push(connector_toml(id, FALLBACK, channel, provider));
        self
    }

    /// Add a connector owned by `tenant`, with the default fallback text.
    pub fn tenant_connector(mut self, id: &str, tenant: &str, channel: &str, provider: &str) -> Self {
        self.connectors.push(format!("{}tenant = {}\n", connector_toml(id, FALLBACK, channel, provider), toml_string(tenant)));
        self
    }

    /// Set the sandbox limits.
    pub fn sandbox(mut self, memory_limit_mb: u32, call_timeout_ms: u64) -> Self {
        self.memory_limit_mb = memory_limit_mb;
        self.call_timeout_ms = call_timeout_ms;
        self
    }

    /// Let plugins reach only public addresses (no loopback either), as a
    /// host does by default.
    pub fn public_networks_only(mut self) -> Self {
        self.private_networks.clear();
        self
    }

    /// Set the retry schedule: `attempts` tries, `backoff_ms` apart.
    pub fn retry(mut self, attempts: u32, backoff_ms: u64) -> Self {
        self.retry_attempts = attempts;
        self.retry_backoff_ms = backoff_ms;
        self
    }

    /// Add raw TOML (e.g. a `[server]` table).
    pub fn toml(mut self, text: &str) -> Self {
        self.extra_toml.push(text.to_string());
        self
    }

    /// Add a `key = value` line to the `[sandbox]` table.
    pub fn sandbox_line(mut self, line: &str) -> Self {
        self.sandbox_lines.push(line.to_string());
        self
    }

    /// Add a `key = value` line to the `[queue]` table.
    pub fn queue(mut self, line: &str) -> Self {
        self.queue.push(line.to_string());
        self
    }

    /// Render the TOML document.
    pub fn render(&self) -> String {
        let mut out = format!(
            "listen = \"127.0.0.1:0\"\nstore = {}\n\n[sandbox]\nmemory_limit_mb = {}\ncall_timeout_ms = {}\n",
            toml_string(&self.store),
            self.memory_limit_mb,
            self.call_timeout_ms
        );
        let networks: Vec<String> = self.private_networks.iter().map(|n| toml_string(n)).collect();
        out.push_str(&format!("allow_private_networks = [{}]\n", networks.join(", ")));
        for line in &self.sandbox_lines {
            out.push_str(line);
            out.push('\n');
        }
        if let Some(bytes) = self.max_response_bytes {
            out.push_str(&format!("max_response_bytes = {bytes}\n"));
        }
        if let Some(url) = &self.public_url {
            out.insert_str(0, &format!("public_url = {}\n", toml_string(url)));
        }
        if let Some(token) = &self.admin_token {
            out.insert_str(0, &format!("admin_token = {}\n", toml_string(token)));
        }
        out.push_str(&format!(
            "\n[retry]\nattempts = {}\ninitial_backoff_ms = {}\nmax_backoff_ms = {}\njitter = 0.0\n",
            self.retry_attempts, self.retry_backoff_ms, self.retry_backoff_ms
        ));
        out.push_str("\n[queue]\npoll_interval_ms = 20\n");
        for line in &self.queue {
            out.push_str(line);
            out.push('\n');
        }
        for text in &self.extra_toml {
            out.push('\n');
            out.push_str(text);
            out.push('\n');
        }
        if !self.plugins.is_empty() {
            out.push_str("\n[plugins]\n");
            for (name, path) in &self.plugins {
                out.push_str(&format!("{} = {}\n", toml_string(name), toml_string(path)));
            }
        }
        for connector in &self.connectors {
            out.push('\n');
            out.push_str(connector);
        }
        out
    }

    /// Render and start the host.
    pub async fn start(&self) -> TestHost {
        TestHost::start(self.render()).await
    }
}

/// One `[[connector]]` table.
pub fn connector_toml(id: &str, fallback: &str, channel: &str, provider: &str) -> String {
    format!("[[connector]]\nid = {}\nfallback_message = {}\nchannel = {channel}\nprovider = {provider}\n", toml_string(id), toml_string(fallback))
}

/// `{ plugin = "bitrix24", application_token = "app-token-123", portal_url = "<fake>" }`.
pub fn bitrix_channel(bitrix: &FakeBitrix) -> String {
    format!("{{ plugin = \"bitrix24\", application_token = {}, portal_url = {} }}", toml_string(APP_TOKEN), toml_string(&bitrix.client_endpoint()))
}

/// `{ plugin = "dify", mode = "<mode>", base_url = "<fake>", api_key = "<key>" }`.
/// Modes: `chatflow`, `workflow`, `agent`.
pub fn dify_provider(dify: &FakeDify, mode: &str) -> String {
    format!("{{ plugin = \"dify\", mode = {}, base_url = {}, api_key = {} }}", toml_string(mode), toml_string(&dify.base_url()), toml_string(&dify.api_key()))
}

/// `{ plugin = "<name>" }` plus extra `key = value` pairs (values already TOML).
pub fn plugin_table(plugin: &str, extra: &[(&str, String)]) -> String {
    let mut out = format!("{{ plugin = {}", toml_string(plugin));
    for (k, v) in extra {
        out.push_str(&format!(", {k} = {v}"));
    }
    out.push_str(" }");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_config() {
        let toml = HostConfig::default()
            .plugin("echo", "/tmp/echo.wasm")
            .connector("a", "{ plugin = \"bitrix24\" }", &plugin_table("echo", &[("allowed_hosts", "[\"http://127.0.0.1:1\"]".into())]))
            .render();
        let config = switchboard::Config::from_toml_str(&toml).expect("the rendered configuration parses");
        assert_eq!(config.store, "memory");
        assert_eq!(config.sandbox.memory_limit_mb, 32);
        assert_eq!(config.retry.attempts, 3);
        assert_eq!(config.queue.poll_interval_ms, 20);
        assert_eq!(config.plugins["echo"].to_str(), Some("/tmp/echo.wasm"));
        assert_eq!(config.connectors[0].provider.settings["allowed_hosts"], "[\"http://127.0.0.1:1\"]");
        assert_eq!(config.sandbox.allow_private_networks, ["127.0.0.0/8"]);
        assert_eq!(config.connectors[0].fallback_message, FALLBACK);
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
