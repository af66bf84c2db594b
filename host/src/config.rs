//! Layered configuration: built-in defaults → TOML file → environment.
//!
//! Plugin settings (and `admin_token`) may reference secrets as `${NAME}`,
//! which is how secrets stay out of config files: a name from the
//! `[secrets] file`, else an environment variable whose name starts with one
//! of `[secrets] env_prefixes` (`SWITCHBOARD_SECRET_` by default), so a
//! connector cannot pull the host's own credentials (cloud keys, the admin
//! token) into a plugin. `SWITCHBOARD_LISTEN`,
//! `SWITCHBOARD_STORE` and `SWITCHBOARD_PUBLIC_URL` override the file.
//! See `examples/switchboard.toml` for a commented example.

use anyhow::{Context, bail, ensure};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The whole host configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on, e.g. `127.0.0.1:8080` (`:0` picks a free port).
    #[serde(default = "defaults::listen")]
    pub listen: String,
    /// Public base URL of this host (e.g. `https://bots.example.com`); used to
    /// tell plugins their webhook URL when they register with a platform.
    #[serde(default)]
    pub public_url: Option<String>,
    /// State store: `embedded:<dir>` (default), `redis://…`, or `memory`
    /// (nothing survives a restart; for tests).
    #[serde(default = "defaults::store")]
    pub store: String,
    /// Default lifetime of plugin state entries, in seconds (BitBot: 1 day).
    #[serde(default = "defaults::state_ttl_seconds")]
    pub state_ttl_seconds: u32,
    /// How accepted jobs are stored and run.
    #[serde(default)]
    pub queue: QueueConfig,
    /// Limits applied to every plugin call.
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// Retries of failing provider calls.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Limits of the HTTP server against slow and abusive clients.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where `${NAME}` references in plugin settings may come from.
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// Bearer token for the admin API (`/admin/...`); the API is off without it.
    #[serde(default)]
    pub admin_token: Option<String>,
    /// Extra plugin components by name; a name equal to a shipped plugin
    /// replaces it.
    #[serde(default)]
    pub plugins: BTreeMap<String, PathBuf>,
    /// Plugins of one tenant by name (`[tenant_plugins.acme] dify = "…"`):
    /// that tenant's connectors get its own version of a plugin, everyone
    /// else the shipped (or `[plugins]`) one.
    #[serde(default)]
    pub tenant_plugins: BTreeMap<String, BTreeMap<String, PathBuf>>,
    /// Connectors: one platform bot joined to one provider.
    #[serde(default, rename = "connector")]
    pub connectors: Vec<ConnectorConfig>,
}

/// Where `${NAME}` references in plugin settings may come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// Environment variables plugin settings may reference: only names
    /// starting with one of these.
    pub env_prefixes: Vec<String>,
    /// A TOML file of `NAME = "value"` lines, looked up before the
    /// environment (relative to the config file).
    pub file: Option<PathBuf>,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self { env_prefixes: vec!["SWITCHBOARD_SECRET_".into()], file: None }
    }
}

impl SecretsConfig {
    /// The secrets a plugin setting may reference, loaded once.
    fn source(&self, base: &Path) -> anyhow::Result<SecretSource<'_>> {
        let file = match &self.file {
            None => BTreeMap::new(),
            Some(file) => {
                let path = if file.is_relative() { base.join(file) } else { file.clone() };
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading the secrets file {}", path.display()))?;
                let table: BTreeMap<String, String> =
                    toml::from_str(&text).with_context(|| format!("the secrets file {} must hold `NAME = \"value\"` lines", path.display()))?;
                table
            }
        };
        Ok(SecretSource { file, env_prefixes: &self.env_prefixes })
    }
}

/// Resolves `${NAME}` in plugin settings.
struct SecretSource<'a> {
    file: BTreeMap<String, String>,
    env_prefixes: &'a [String],
}

impl SecretSource<'_> {
    fn lookup(&self, name: &str) -> anyhow::Result<String> {
        if let Some(value) = self.file.get(name) {
            return Ok(value.clone());
        }
        if !self.env_prefixes.iter().any(|prefix| name.starts_with(prefix.as_str())) {
            bail!(
                "`${{{name}}}` is neither in the secrets file nor an environment variable plugins may read: their names must start with {} \
                 (`[secrets] env_prefixes`)",
                self.env_prefixes.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(" or ")
            );
        }
        std::env::var(name).with_context(|| format!("environment variable `{name}` is not set"))
    }
}

/// Sandbox limits for plugin calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Linear-memory cap per plugin call, in MiB.
    pub memory_limit_mb: u32,
    /// Largest plugin component accepted, in bytes.
    pub max_plugin_bytes: usize,
    /// Where compiled plugins are kept across restarts; default
    /// `<dir>/compiled` of an `embedded:<dir>` store, none otherwise.
    pub compiled_cache_dir: Option<PathBuf>,
    /// Wall-clock deadline per plugin call, in milliseconds.
    pub call_timeout_ms: u64,
    /// Timeout of one outbound HTTP request (connect and first byte), in ms.
    pub http_timeout_ms: u64,
    /// Largest outbound HTTP response body a plugin may read, in bytes.
    pub max_response_bytes: usize,
    /// Outbound HTTP requests one call may start (more fail at once).
    pub max_requests_per_call: usize,
    /// Cores' worth of CPU that CPU-bound plugin calls (running more than
    /// ~20 ms) share, in turns of 10 ms; default half the cores, at least 1.
    pub cpu_bound_slots: Option<usize>,
    /// Outbound HTTP requests of one tenant's plugins in flight at once, over
    /// all its calls; more wait for a slot (within their call's deadline).
    pub max_outbound_in_flight_per_tenant: usize,
    /// Deadline of `translate-in`, which runs while the platform waits for
    /// its HTTP answer (capped at `call_timeout_ms`).
    pub translate_in_timeout_ms: u64,
    /// Most bytes one call may move from the plugin to the host in one go:
    /// its result, or the arguments of one host call (`log`, `state-set`,
    /// HTTP writes). Counts every copy, so aliased data cannot amplify.
    pub max_result_bytes: usize,
    /// Keys one plugin may keep in state for one connector.
    pub max_state_keys: u64,
    /// Bytes (keys plus values) one plugin may keep in state for one connector.
    pub max_state_bytes: u64,
    /// Longest lifetime of a state entry; longer TTLs are cut to this.
    pub max_state_ttl_seconds: u64,
    /// Non-public networks plugins may reach (CIDR, e.g. `10.0.0.0/8`);
    /// loopback, private, link-local and other internal addresses are
    /// refused otherwise.
    pub allow_private_networks: Vec<String>,
}

/// The job queue: concurrency, deduplication, leases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Jobs (conversations) processed at once by this process.
    pub max_in_flight: usize,
    /// Jobs of one tenant processed at once by this process.
    pub max_in_flight_per_tenant: usize,
    /// Jobs one webhook may create; a larger webhook is refused (413).
    pub max_jobs_per_webhook: usize,
    /// Webhooks of one tenant being verified and translated at once; more
    /// are answered 429 (the platform retries), so one tenant's slow
    /// `translate-in` cannot hold every instance.
    pub max_webhooks_in_flight_per_tenant: usize,
    /// How long a platform message id is remembered to drop redeliveries.
    pub dedupe_ttl_seconds: u64,
    /// Lease of a running job; another instance takes a crashed instance's
    /// conversations over after this.
    pub lease_seconds: u64,
    /// How often to look for retries coming due and for jobs other
    /// instances accepted.
    pub poll_interval_ms: u64,
    /// On SIGTERM/Ctrl-C, how long running jobs may take before the rest
    /// is handed back to the queue.
    pub shutdown_grace_seconds: u64,
    /// Prefix of every queue key in Redis; instances sharing work use the same.
    pub namespace: String,
}

/// The HTTP server's limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Time a client has to send the request line and headers, in ms.
    pub header_timeout_ms: u64,
    /// Time a client has to send the request body, in ms.
    pub body_timeout_ms: u64,
    /// Connections open at once; more get one 503 and are closed.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { header_timeout_ms: 10_000, body_timeout_ms: 10_000, max_connections: 10_000 }
    }
}

/// How failed jobs are retried (timeouts, 5xx, 429, rate limits).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Total attempts for transient failures (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry.
    pub initial_backoff_ms: u64,
    /// Longest delay between attempts.
    pub max_backoff_ms: u64,
    /// Factor applied to the delay after each attempt.
    pub multiplier: f64,
    /// Random spread of each delay, as a fraction (0.2 = ±20 %).
    pub jitter: f64,
    /// A job older than this is not retried again: the user gets the
    /// fallback message and the job becomes a dead letter.
    pub max_age_seconds: u64,
}

/// One connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// URL-safe id, used in `/hooks/{id}`.
    pub id: String,
    /// Owner of the connector; state and secrets are scoped by it.
    #[serde(default = "defaults::tenant")]
    pub tenant: String,
    /// Sent to the user when the provider fails after all retries.
    #[serde(default = "defaults::fallback_message")]
    pub fallback_message: String,
    /// The platform side.
    pub channel: PluginSection,
    /// The bot side.
    pub provider: PluginSection,
    /// Optional human handoff (a help-desk plugin such as LiveChat). Without
    /// it, a handoff moves the chat to the platform's own operator queue
    /// where the channel has one (Bitrix24 Open Lines).
    #[serde(default)]
    pub handoff: Option<PluginSection>,
    /// Keywords and notices of the conversation state machine.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// Variables the channel declares secret (platform tokens) that the
    /// provider may nevertheless see; the others arrive empty.
    #[serde(default)]
    pub forward_secret_variables: Vec<String>,
}

/// How users and the host move a conversation between the bot and a human.
/// A keyword matches when the user's whole message equals it (ignoring case
/// and surrounding spaces); an empty keyword is disabled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// The user asks for a human operator.
    pub handoff_command: String,
    /// The user asks to go back to the bot.
    pub return_command: String,
    /// The user asks for a fresh start: the provider forgets the conversation.
    pub reset_keyword: String,
    /// Sent to the user when a handoff starts (empty: nothing).
    pub handoff_notice: String,
    /// Sent to the user when the conversation returns to the bot.
    pub return_notice: String,
    /// Sent to the user after a reset.
    pub reset_notice: String,
    /// Sent when the handoff plugin cannot reach the help-desk.
    pub handoff_failed_notice: String,
    /// Lines of recent conversation kept for the operator.
    pub transcript_lines: usize,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            handoff_command: "/operator".into(),
            return_command: "/bot".into(),
            reset_keyword: "/reset".into(),
            handoff_notice: "Connecting you to an operator. Please wait.".into(),
            return_notice: "You are talking to the assistant again.".into(),
            reset_notice: "Conversation reset. How can I help?".into(),
            handoff_failed_notice: "Sorry, no operator can be reached right now. The assistant will keep helping you.".into(),
            transcript_lines: 20,
        }
    }
}

/// A plugin name and its settings.
#[derive(Clone, Deserialize)]
#[serde(try_from = "toml::Table")]
pub struct PluginSection {
    /// Name of a shipped plugin or one from `[plugins]`.
    pub plugin: String,
    /// Settings handed to the plugin: strings as written (after `${NAME}`
    /// expansion), other TOML values as JSON.
    pub settings: BTreeMap<String, String>,
    /// Settings whose value still holds `${NAME}` references.
    templated: BTreeSet<String>,
}

impl PluginSection {
    fn resolve_secrets(&mut self, secrets: &SecretSource) -> anyhow::Result<()> {
        for key in std::mem::take(&mut self.templated) {
            let value = self.settings.get_mut(&key).expect("templated settings exist");
            *value = expand(value, |name| secrets.lookup(name)).with_context(|| format!("setting `{key}`"))?;
        }
        Ok(())
    }
}

impl fmt::Debug for PluginSection {
    /// Settings may hold secrets: only their names are printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginSection").field("plugin", &self.plugin).field("settings", &self.settings.keys().collect::<Vec<_>>()).finish()
    }
}

impl TryFrom<toml::Table> for PluginSection {
    type Error = anyhow::Error;

    fn try_from(mut table: toml::Table) -> anyhow::Result<Self> {
        let plugin = match table.remove("plugin") {
            Some(toml::Value::String(name)) => name,
            Some(_) => bail!("`plugin` must be a string"),
            None => bail!("missing `plugin` (the plugin's name, e.g. \"dify\")"),
        };
        let mut templated = BTreeSet::new();
        let mut settings = BTreeMap::new();
        for (key, value) in table {
            let value = match value {
                toml::Value::String(text) => {
                    if text.contains("${") {
                        templated.insert(key.clone());
                    }
                    text
                }
                other => serde_json::to_string(&other)?,
            };
            settings.insert(key, value);
        }
        Ok(Self { plugin, settings, templated })
    }
}

/// Replace every `${NAME}` with `lookup(NAME)`.
fn expand(text: &str, lookup: impl Fn(&str) -> anyhow::Result<String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').context("unterminated `${` reference")?;
        out.push_str(&lookup(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

mod defaults {
    pub fn listen() -> String {
        "127.0.0.1:8080".into()
    }
    pub fn store() -> String {
        "embedded:./data".into()
    }
    pub fn state_ttl_seconds() -> u32 {
        86_400
    }
    pub fn tenant() -> String {
        "default".into()
    }
    pub fn fallback_message() -> String {
        "Sorry, I can't answer right now. Please try again a little later.".into()
    }
}

impl SandboxConfig {
    /// The per-call memory cap in bytes.
    pub fn memory_limit_bytes(&self) -> usize {
        usize::try_from(self.memory_limit_mb).unwrap_or(usize::MAX).saturating_mul(1024 * 1024)
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            memory_limit_mb: 64,
            max_plugin_bytes: 16 * 1024 * 1024,
            compiled_cache_dir: None,
            call_timeout_ms: 30_000,
            http_timeout_ms: 20_000,
            max_response_bytes: 8 * 1024 * 1024,
            max_result_bytes: 1024 * 1024,
            translate_in_timeout_ms: 3000,
            max_requests_per_call: 32,
            max_outbound_in_flight_per_tenant: 256,
            cpu_bound_slots: None,
            max_state_keys: 100_000,
            max_state_bytes: 64 * 1024 * 1024,
            max_state_ttl_seconds: 30 * 24 * 3600,
            allow_private_networks: Vec::new(),
        }
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { attempts: 5, initial_backoff_ms: 1_000, max_backoff_ms: 30_000, multiplier: 2.0, jitter: 0.2, max_age_seconds: 900 }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 2048,
            max_in_flight_per_tenant: 1024,
            max_jobs_per_webhook: 100,
            max_webhooks_in_flight_per_tenant: 64,
            dedupe_ttl_seconds: 86_400,
            lease_seconds: 30,
            poll_interval_ms: 100,
            shutdown_grace_seconds: 10,
            namespace: "sb".into(),
        }
    }
}

impl Config {
    /// Parse TOML text, apply environment overrides, resolve secrets and
    /// validate. A relative secrets file is looked up in the working directory.
    pub fn from_toml_str(text: &str) -> anyhow::Result<Self> {
        Self::from_toml_in(text, Path::new("."))
    }

    fn from_toml_in(text: &str, base: &Path) -> anyhow::Result<Self> {
        let mut config: Config = toml::from_str(text).context("invalid configuration")?;
        config.apply_env_overrides()?;
        config.resolve_secrets(base)?;
        config.validate()?;
        Ok(config)
    }

    fn resolve_secrets(&mut self, base: &Path) -> anyhow::Result<()> {
        let secrets = self.secrets.source(base)?;
        for connector in &mut self.connectors {
            let sections = [Some(&mut connector.channel), Some(&mut connector.provider), connector.handoff.as_mut()];
            for section in sections.into_iter().flatten() {
                let plugin = section.plugin.clone();
                section.resolve_secrets(&secrets).with_context(|| format!("connector `{}`, plugin `{plugin}`", connector.id))?;
            }
        }
        Ok(())
    }

    /// Read and parse a TOML file; relative plugin paths resolve against
    /// the file's directory.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = Self::from_toml_in(&text, base).with_context(|| format!("in {}", path.display()))?;
        for file in config.plugins.values_mut().chain(config.tenant_plugins.values_mut().flat_map(|plugins| plugins.values_mut())) {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        Ok(config)
    }

    fn apply_env_overrides(&mut self) -> anyhow::Result<()> {
        if let Some(token) = &self.admin_token {
            // The hoster's own setting: any environment variable.
            let env = |name: &str| std::env::var(name).with_context(|| format!("environment variable `{name}` is not set"));
            self.admin_token = Some(expand(token, env).context("`admin_token`")?);
        }
        if let Ok(token) = std::env::var("SWITCHBOARD_ADMIN_TOKEN") {
            self.admin_token = Some(token);
        }
        if let Ok(listen) = std::env::var("SWITCHBOARD_LISTEN") {
            self.listen = listen;
        }
        if let Ok(store) = std::env::var("SWITCHBOARD_STORE") {
            self.store = store;
        }
        if let Ok(url) = std::env::var("SWITCHBOARD_PUBLIC_URL") {
            self.public_url = Some(url);
        }
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        ensure!(self.retry.attempts > 0, "`retry.attempts` must be at least 1");
        ensure!(self.retry.multiplier >= 1.0, "`retry.multiplier` must be at least 1");
        ensure!((0.0..=1.0).contains(&self.retry.jitter), "`retry.jitter` must be between 0 and 1");
        let queue = &self.queue;
        ensure!(queue.max_in_flight > 0, "`queue.max_in_flight` must be at least 1");
        ensure!(queue.max_in_flight <= 100_000, "`queue.max_in_flight` must be at most 100000");
        ensure!(queue.max_in_flight_per_tenant > 0, "`queue.max_in_flight_per_tenant` must be at least 1");
        ensure!(queue.max_jobs_per_webhook > 0, "`queue.max_jobs_per_webhook` must be at least 1");
        ensure!(queue.max_webhooks_in_flight_per_tenant > 0, "`queue.max_webhooks_in_flight_per_tenant` must be at least 1");
        ensure!(queue.lease_seconds >= 3, "`queue.lease_seconds` must be at least 3");
        ensure!(queue.poll_interval_ms > 0, "`queue.poll_interval_ms` must be positive");
        ensure!(is_slug(&queue.namespace), "`queue.namespace` must use only a-z, 0-9, `-` and `_`");
        ensure!(self.sandbox.memory_limit_mb >= 2, "`sandbox.memory_limit_mb` must be at least 2");
        ensure!(self.sandbox.call_timeout_ms > 0, "`sandbox.call_timeout_ms` must be positive");
        ensure!(
            self.server.header_timeout_ms > 0 && self.server.body_timeout_ms > 0,
            "`server.header_timeout_ms` and `server.body_timeout_ms` must be positive"
        );
        ensure!(self.server.max_connections > 0, "`server.max_connections` must be at least 1");
        ensure!(self.sandbox.cpu_bound_slots != Some(0), "`sandbox.cpu_bound_slots` must be at least 1");
        ensure!(self.sandbox.max_outbound_in_flight_per_tenant > 0, "`sandbox.max_outbound_in_flight_per_tenant` must be at least 1");
        ensure!(self.sandbox.translate_in_timeout_ms > 0, "`sandbox.translate_in_timeout_ms` must be positive");
        ensure!(self.sandbox.max_result_bytes >= 64 * 1024, "`sandbox.max_result_bytes` must be at least 65536");
        crate::runtime::NetworkPolicy::parse(&self.sandbox.allow_private_networks).map_err(|e| anyhow::anyhow!("`sandbox.allow_private_networks`: {e}"))?;
        if let Some(url) = &self.public_url {
            url::Url::parse(url).with_context(|| format!("`public_url` {url:?} is not a URL"))?;
        }
        for name in self.plugins.keys() {
            ensure!(is_slug(name), "plugin name {name:?} must use only a-z, 0-9, `-` and `_`");
        }
        for (tenant, plugins) in &self.tenant_plugins {
            ensure!(is_slug(tenant), "tenant {tenant:?} in `tenant_plugins` must use only a-z, 0-9, `-` and `_`");
            for name in plugins.keys() {
                ensure!(is_slug(name), "plugin name {name:?} of tenant {tenant:?} must use only a-z, 0-9, `-` and `_`");
            }
        }
        let mut seen = std::collections::HashSet::new();
        for connector in &self.connectors {
            ensure!(is_slug(&connector.id), "connector id {:?} must use only a-z, 0-9, `-` and `_`", connector.id);
            ensure!(is_slug(&connector.tenant), "tenant {:?} of connector {:?} must use only a-z, 0-9, `-` and `_`", connector.tenant, connector.id);
            ensure!(seen.insert(&connector.id), "connector id {:?} is used twice", connector.id);
        }
        Ok(())
    }
}

/// Ids that are safe in URLs and store keys.
pub fn is_slug(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_connectors_with_defaults_and_env_secrets() {
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("SWITCHBOARD_SECRET_TEST_DIFY_KEY", "secret-value") };
        let config = Config::from_toml_str(
            r#"
            [[connector]]
            id = "support"
            channel = { plugin = "bitrix24", application_token = "t" }
            provider = { plugin = "dify", api_key = "${SWITCHBOARD_SECRET_TEST_DIFY_KEY}", retries = 2 }
            "#,
        )
        .unwrap();
        let connector = &config.connectors[0];
        assert_eq!(connector.tenant, "default");
        assert_eq!(connector.provider.settings["api_key"], "secret-value");
        assert_eq!(connector.provider.settings["retries"], "2");
        assert!(!format!("{connector:?}").contains("secret-value"));
    }

    #[test]
    fn rejects_duplicate_ids_missing_env_and_bad_slugs() {
        let twice = "[[connector]]\nid='a'\nchannel={plugin='x'}\nprovider={plugin='y'}\n";
        assert!(
            Config::from_toml_str(&twice.repeat(2)).unwrap_err().to_string().contains("used twice")
                || format!("{:#}", Config::from_toml_str(&twice.repeat(2)).unwrap_err()).contains("used twice")
        );
        let missing = "[[connector]]\nid='a'\nchannel={plugin='x', k='${SWITCHBOARD_SECRET_SURELY_UNSET}'}\nprovider={plugin='y'}\n";
        assert!(format!("{:#}", Config::from_toml_str(missing).unwrap_err()).contains("SWITCHBOARD_SECRET_SURELY_UNSET` is not set"));
        let bad = "[[connector]]\nid='A B'\nchannel={plugin='x'}\nprovider={plugin='y'}\n";
        assert!(Config::from_toml_str(bad).is_err());
    }

    #[test]
    fn plugin_settings_cannot_read_the_hosts_own_environment() {
        // SAFETY: tests in this module do not read these variables concurrently.
        unsafe { std::env::set_var("SB_TEST_CLOUD_KEY", "host-credential") };
        let stealing = "[[connector]]\nid='a'\nchannel={plugin='x'}\nprovider={plugin='y', api_key='${SB_TEST_CLOUD_KEY}'}\n";
        let error = format!("{:#}", Config::from_toml_str(stealing).unwrap_err());
        assert!(error.contains("connector `a`, plugin `y`") && error.contains("setting `api_key`") && error.contains("SWITCHBOARD_SECRET_"), "{error}");
        assert!(!error.contains("host-credential"), "{error}");

        let prefixed = "[secrets]\nenv_prefixes = ['SB_TEST_']\n".to_string() + stealing;
        assert_eq!(Config::from_toml_str(&prefixed).unwrap().connectors[0].provider.settings["api_key"], "host-credential");
    }

    #[test]
    fn a_secrets_file_is_looked_up_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secrets.toml"), "DIFY_KEY = \"from-the-file\"\n").unwrap();
        let config = "[secrets]\nfile = 'secrets.toml'\n[[connector]]\nid='a'\nchannel={plugin='x'}\nprovider={plugin='y', api_key='Bearer ${DIFY_KEY}'}\n";
        std::fs::write(dir.path().join("switchboard.toml"), config).unwrap();
        let loaded = Config::load(&dir.path().join("switchboard.toml")).unwrap();
        assert_eq!(loaded.connectors[0].provider.settings["api_key"], "Bearer from-the-file");
        std::fs::write(dir.path().join("secrets.toml"), "not toml at all = = =").unwrap();
        let error = format!("{:#}", Config::load(&dir.path().join("switchboard.toml")).unwrap_err());
        assert!(error.contains("secrets file"), "{error}");
    }

    #[test]
    fn the_commented_example_loads() {
        // SAFETY: tests in this module do not read these variables concurrently.
        unsafe {
            std::env::set_var("SWITCHBOARD_SECRET_DIFY_API_KEY", "app-example");
            std::env::set_var("SWITCHBOARD_SECRET_BITRIX24_APPLICATION_TOKEN", "example-token");
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/switchboard.toml");
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(config.connectors[0].provider.settings["api_key"], "app-example");
        assert_eq!(config.sandbox.max_state_keys, SandboxConfig::default().max_state_keys);
    }
}
