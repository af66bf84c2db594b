//! The per-call store data: WASI with nothing ambient, policy-checked HTTP,
//! memory limits, and the plugin's view of its connector.

use super::limits::CallLimits;
use super::output::CapturedOutput;
use super::policy::OutboundPolicy;
use crate::store::{Scope, StateStore};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Bytes of a plugin's stdout/stderr kept for the log, per call.
const CAPTURED_OUTPUT_BYTES: usize = 16 * 1024;

/// Everything a plugin may see of its connector: fixed when the connector is
/// built, shared by all calls.
pub struct PluginContext {
    pub scope: Scope,
    /// The plugin's settings, secrets included; never logged.
    pub settings: BTreeMap<String, String>,
    pub state: Arc<dyn StateStore>,
    pub default_ttl: Duration,
    pub state_quota: StateQuota,
    pub outbound: Arc<super::AllowList>,
    /// Which addresses outbound requests may reach.
    pub network: Arc<super::NetworkPolicy>,
    /// Leaky buckets per destination, when the settings ask for them.
    pub rate_limit: Option<Arc<super::OutboundLimiter>>,
    /// The tenant's outbound requests in flight (shared by its connectors).
    pub outbound_slots: Arc<tokio::sync::Semaphore>,
}

/// How much state one plugin may keep for its connector, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct StateQuota {
    pub quota: crate::store::Quota,
    /// Longer TTLs asked for are cut to this.
    pub max_ttl: Duration,
}

impl StateQuota {
    pub fn from_config(sandbox: &crate::config::SandboxConfig) -> Self {
        Self {
            quota: crate::store::Quota { max_keys: sandbox.max_state_keys, max_bytes: sandbox.max_state_bytes },
            max_ttl: Duration::from_secs(sandbox.max_state_ttl_seconds),
        }
    }
}

/// Store data of one plugin call.
pub struct PluginState {
    pub(super) context: Arc<PluginContext>,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub(super) policy: OutboundPolicy,
    pub(super) limits: CallLimits,
    pub(super) output: CapturedOutput,
    /// Log lines the plugin wrote in this call (beyond the cap they are dropped).
    pub(super) log_lines: usize,
}

impl PluginState {
    pub fn new(context: Arc<PluginContext>, limits: &crate::config::SandboxConfig) -> Self {
        let output = CapturedOutput::new(CAPTURED_OUTPUT_BYTES);
        let wasi = WasiCtx::builder()
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let call_timeout = Duration::from_millis(limits.call_timeout_ms);
        let policy = OutboundPolicy {
            allow: Arc::clone(&context.outbound),
            timeout: Duration::from_millis(limits.http_timeout_ms),
            max_response_bytes: limits.max_response_bytes,
            plugin: Arc::from(context.scope.plugin.as_str()),
            limiter: context.rate_limit.clone(),
            max_wait: super::rate_limit::MAX_WAIT_IN_CALL.min(call_timeout / 4),
            sent: false,
            deferred: None,
            denied: Default::default(),
            network: Arc::clone(&context.network),
            requests_left: limits.max_requests_per_call,
            slots: Arc::clone(&context.outbound_slots),
        };
        let limits = CallLimits::new(limits.memory_limit_bytes());
        Self { context, wasi, http: WasiHttpCtx::new(), table: ResourceTable::new(), policy, limits, output, log_lines: 0 }
    }

    /// What the plugin printed during the call (panic messages land here).
    pub fn captured_output(&self) -> String {
        super::host_api::log_line(String::from_utf8_lossy(&self.output.contents()).trim())
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.policy }
    }
}
