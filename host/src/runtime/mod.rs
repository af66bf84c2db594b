//! Running plugins: one engine, one pre-instantiated component per plugin,
//! a fresh sandboxed store per call.

mod compiled;
mod cpu;
mod engine;
mod host_api;
mod limits;
mod manifest;
mod network;
mod output;
mod policy;
mod rate_limit;
mod sandbox;
mod send;
mod validate;

pub use manifest::Manifest;
pub use network::{IpNet, NetworkPolicy};
pub use policy::AllowList;
pub use rate_limit::{OutboundLimiter, RateLimit};
pub use sandbox::{PluginContext, StateQuota};
pub use validate::{CONTRACT, Checked, InvalidPlugin};

use crate::bindings::{
    AddressedReply, CallbackResult, ChannelPluginPre, ConversationEvent, ConversationRef, HandoffPluginPre, HttpRequest, InboundMessage, OutboundMessage,
    PluginError, ProviderPluginPre, RequestError, Sender, TranscriptEntry, Translated,
};
use crate::config::SandboxConfig;
use anyhow::Context as _;
use futures::future::BoxFuture;
use sandbox::PluginState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store, Trap};

/// What a plugin is, decided from its exports.
#[derive(Clone)]
enum PluginKind {
    Channel(ChannelPluginPre<PluginState>),
    Provider(ProviderPluginPre<PluginState>),
    Handoff(HandoffPluginPre<PluginState>),
}

/// A compiled, pre-instantiated plugin component.
pub struct Plugin {
    pub name: String,
    /// What the plugin declared about itself.
    pub manifest: Manifest,
    kind: PluginKind,
}

impl Plugin {
    /// `"channel"`, `"provider"` or `"handoff"`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            PluginKind::Channel(_) => "channel",
            PluginKind::Provider(_) => "provider",
            PluginKind::Handoff(_) => "handoff",
        }
    }
}

/// A plugin bound to one connector side: the code plus what it may see.
#[derive(Clone)]
pub struct Binding {
    pub plugin: Arc<Plugin>,
    pub context: Arc<PluginContext>,
}

/// Why a plugin call produced no result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("plugin `{plugin}` ran past its {timeout:?} deadline and was stopped")]
    Timeout { plugin: String, timeout: Duration },
    #[error("plugin `{plugin}` exceeded its memory limit")]
    MemoryLimit { plugin: String },
    #[error("plugin `{plugin}` overflowed its stack (deep recursion)")]
    StackOverflow { plugin: String },
    #[error("plugin `{plugin}` tried to pass the host more than {limit} bytes at once (result or host-call arguments)")]
    ResultTooLarge { plugin: String, limit: usize },
    #[error("plugin `{plugin}` crashed: {detail}")]
    Trap { plugin: String, detail: String },
    /// A request would have exceeded the destination's rate limit; nothing
    /// was sent. Not a failure: run the call again after `retry_after`.
    #[error("plugin `{plugin}` is rate limited towards {destination}; its slot comes in {retry_after:?}")]
    RateLimited { plugin: String, destination: String, retry_after: Duration },
    #[error("plugin `{plugin}` is a {actual} plugin, not a {expected}")]
    WrongKind { plugin: String, expected: &'static str, actual: &'static str },
}

/// Loads plugins and runs calls into them.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    sandbox: SandboxConfig,
    plugins: HashMap<String, Arc<Plugin>>,
    /// Tenants' own versions of plugins, by tenant and name.
    tenant_plugins: HashMap<(String, String), Arc<Plugin>>,
    /// Slots CPU-bound calls take turns at (`cpu.rs`).
    cpu_slots: Arc<tokio::sync::Semaphore>,
    /// Where the loaded components came from.
    pub loads: LoadCounts,
}

/// How many components were compiled, or found compiled.
#[derive(Debug, Default)]
pub struct LoadCounts {
    pub compiled: std::sync::atomic::AtomicUsize,
    pub from_disk: std::sync::atomic::AtomicUsize,
    pub from_memory: std::sync::atomic::AtomicUsize,
}

impl Runtime {
    /// Create a runtime with no plugins, sharing the process-wide engine.
    /// A runtime whose engine can run `max_in_flight` jobs at once.
    pub fn new(sandbox: SandboxConfig, max_in_flight: usize) -> anyhow::Result<Self> {
        let engine = shared_engine(max_in_flight, sandbox.memory_limit_bytes())?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        crate::bindings::host::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        let cpu_slots = Arc::new(tokio::sync::Semaphore::new(sandbox.cpu_bound_slots.unwrap_or_else(cpu::default_slots)));
        Ok(Self { engine, linker, sandbox, plugins: HashMap::new(), tenant_plugins: HashMap::new(), cpu_slots, loads: LoadCounts::default() })
    }

    /// Compile and add a plugin; a plugin with the same name is replaced.
    pub fn add_plugin(&mut self, name: &str, wasm: &[u8]) -> anyhow::Result<()> {
        let plugin = self.prepare(name, wasm)?;
        self.plugins.insert(name.to_string(), plugin);
        Ok(())
    }

    /// Compile and add a plugin only `tenant`'s connectors use; it takes
    /// precedence over a shipped or global plugin of the same name.
    pub fn add_tenant_plugin(&mut self, tenant: &str, name: &str, wasm: &[u8]) -> anyhow::Result<()> {
        let plugin = self.prepare(name, wasm).with_context(|| format!("tenant `{tenant}`"))?;
        self.tenant_plugins.insert((tenant.to_string(), name.to_string()), plugin);
        Ok(())
    }

    fn prepare(&self, name: &str, wasm: &[u8]) -> anyhow::Result<Arc<Plugin>> {
        let checked = self.check_plugin(wasm).with_context(|| format!("plugin `{name}` cannot be used"))?;
        let pre = self.linker.instantiate_pre(&checked.component)?;
        let kind = match checked.kind {
            "channel" => PluginKind::Channel(ChannelPluginPre::new(pre)?),
            "provider" => PluginKind::Provider(ProviderPluginPre::new(pre)?),
            _ => PluginKind::Handoff(HandoffPluginPre::new(pre)?),
        };
        Ok(Arc::new(Plugin { name: name.to_string(), manifest: checked.manifest, kind }))
    }

    /// Check a component as a plugin (`validate.rs`), without adding it.
    pub fn check_plugin(&self, wasm: &[u8]) -> Result<Checked, InvalidPlugin> {
        validate::check(&self.engine, &self.linker, wasm, self.sandbox.max_plugin_bytes, |wasm| {
            let (component, origin) = compiled::load(&self.engine, wasm, self.sandbox.compiled_cache_dir.as_deref())?;
            let counter = match origin {
                compiled::Origin::Compiled => &self.loads.compiled,
                compiled::Origin::Disk => &self.loads.from_disk,
                compiled::Origin::Memory => &self.loads.from_memory,
            };
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(component)
        })
    }

    /// The plugin `tenant`'s connectors get by `name`: the tenant's own, else
    /// the shipped or global one.
    pub fn plugin_for(&self, tenant: &str, name: &str) -> Option<Arc<Plugin>> {
        self.tenant_plugins.get(&(tenant.to_string(), name.to_string())).cloned().or_else(|| self.plugin(name))
    }

    /// A loaded plugin by name.
    pub fn plugin(&self, name: &str) -> Option<Arc<Plugin>> {
        self.plugins.get(name).cloned()
    }

    /// Names and kinds of all loaded plugins, sorted by name.
    pub fn plugin_names(&self) -> Vec<(String, &'static str)> {
        let mut names: Vec<_> = self.plugins.values().map(|p| (p.name.clone(), p.kind_name())).collect();
        names.sort();
        names
    }

    /// `channel.translate-in`.
    pub async fn translate_in(&self, binding: &Binding, request: HttpRequest) -> Result<Result<Translated, RequestError>, CallError> {
        let pre = channel(binding)?;
        self.run(binding, "translate-in", move |store| {
            Box::pin(async move {
                let plugin = pre.instantiate_async(&mut *store).await?;
                plugin.switchboard_plugin_channel().call_translate_in(&mut *store, &request).await
            })
        })
        .await
    }

    /// `channel.translate-out`.
    pub async fn translate_out(&self, binding: &Binding, reply: AddressedReply) -> Result<Result<(), PluginError>, CallError> {
        let pre = channel(binding)?;
        self.run(binding, "translate-out", move |store| {
            Box::pin(async move {
                let plugin = pre.instantiate_async(&mut *store).await?;
                plugin.switchboard_plugin_channel().call_translate_out(&mut *store, &reply).await
            })
        })
        .await
    }

    /// `channel.run-action`.
    pub async fn run_action(&self, binding: &Binding, name: String, args: Vec<(String, String)>) -> Result<Result<String, PluginError>, CallError> {
        let pre = channel(binding)?;
        self.run(binding, "run-action", move |store| {
            Box::pin(async move {
                let plugin = pre.instantiate_async(&mut *store).await?;
                plugin.switchboard_plugin_channel().call_run_action(&mut *store, &name, &args).await
            })
        })
        .await
    }

    /// `provider.call-provider`.
    pub async fn call_provider(&self, binding: &Binding, mut message: InboundMessage) -> Result<Result<Vec<OutboundMessage>, PluginError>, CallError> {
        let pre = provider(binding)?;
        message.conversation = withheld(message.conversation);
        self.run(binding, "call-provider", move |store| {
            Box::pin(async move {
                let plugin = pre.instantiate_async(&mut *store).await?;
                plugin.switchboard_plugin_provider().call_call_provider(&mut *store, &message).await
            })
        })
        .await
    }

    /// `handle-callback` of a provider or handoff plugin.
    pub async fn handle_callback(&self, binding: &Binding, request: HttpRequest) -> Result<Result<CallbackResult, RequestError>, CallError> {
        match binding.plugin.kind.clone() {
            PluginKind::Provider(pre) => {
                self.run(binding, "handle-callback", move |store| {
                    Box::pin(async move {
                        let plugin = pre.instantiate_async(&mut *store).await?;
                        plugin.switchboard_plugin_provider().call_handle_callback(&mut *store, &request).await
                    })
                })
                .await
            }
            PluginKind::Handoff(pre) => {
                self.run(binding, "handle-callback", move |store| {
                    Box::pin(async move {
                        let plugin = pre.instantiate_async(&mut *store).await?;
                        plugin.switchboard_plugin_handoff().call_handle_callback(&mut *store, &request).await
                    })
                })
                .await
            }
            PluginKind::Channel(_) => Err(wrong_kind(binding, "provider")),
        }
    }

    /// `provider.on-event`.
    pub async fn on_event(&self, binding: &Binding, conversation: ConversationRef, event: ConversationEvent) -> Result<Result<(), PluginError>, CallError> {
        let pre = provider(binding)?;
        let conversation = withheld(conversation);
        self.run(binding, "on-event", move |store| {
            Box::pin(async move {
                let plugin = pre.instantiate_async(&mut *store).await?;
                plugin.switchboard_plugin_provider().call_on_event(&mut *store, &conversation, &event).await
            })
        })
        .await
    }

    /// `handoff.start-handoff`.
    pub async fn start_handoff(
        &self,
        binding: &Binding,
        conversation: ConversationRef,
        customer: Sender,
        reason: String,
        transcript: Vec<TranscriptEntry>,
    ) -> Result<Result<(), PluginError>, CallError> {
        let pre = handoff(binding)?;
        let conversation = withheld(conversation);
        self.run(binding, "start-handoff", move |store| {
            Box::pin(async move {
                let plugin = pre.instantiate_async(&mut *store).await?;
                plugin.switchboard_plugin_handoff().call_start_handoff(&mut *store, &conversation, &customer, &reason, &transcript).await
            })
        })
        .await
    }

    /// `handoff.relay-message`.
    pub async fn relay_message(&self, binding: &Binding, mut message: InboundMessage) -> Result<Result<(), PluginError>, CallError> {
        let pre = handoff(binding)?;
        message.conversation = withheld(message.conversation);
        self.run(binding, "relay-message", move |store| {
            Box::pin(async move {
                let plugin = pre.instantiate_async(&mut *store).await?;
                plugin.switchboard_plugin_handoff().call_relay_message(&mut *store, &message).await
            })
        })
        .await
    }

    /// `handoff.end-handoff`.
    pub async fn end_handoff(&self, binding: &Binding, conversation: ConversationRef) -> Result<Result<(), PluginError>, CallError> {
        let pre = handoff(binding)?;
        let conversation = withheld(conversation);
        self.run(binding, "end-handoff", move |store| {
            Box::pin(async move {
                let plugin = pre.instantiate_async(&mut *store).await?;
                plugin.switchboard_plugin_handoff().call_end_handoff(&mut *store, &conversation).await
            })
        })
        .await
    }

    /// Run one call of `export` in a fresh store with the memory cap and
    /// deadline, and count it in the metrics.
    async fn run<T, E>(
        &self,
        binding: &Binding,
        export: &'static str,
        call: impl for<'a> FnOnce(&'a mut Store<PluginState>) -> BoxFuture<'a, wasmtime::Result<Result<T, E>>>,
    ) -> Result<Result<T, E>, CallError> {
        let started = Instant::now();
        let (result, denied) = self.run_in_store(binding, export, call).await;
        let outcome = match &result {
            _ if denied => "denied_host",
            Ok(Ok(_)) => "ok",
            Ok(Err(_)) => "plugin_error",
            Err(CallError::Timeout { .. }) => "timeout",
            Err(CallError::MemoryLimit { .. }) => "memory_cap",
            Err(CallError::Trap { .. }) => "trap",
            Err(CallError::StackOverflow { .. }) => "stack_overflow",
            Err(CallError::ResultTooLarge { .. }) => "result_too_large",
            Err(CallError::RateLimited { .. }) => "rate_limited",
            Err(CallError::WrongKind { .. }) => "wrong_kind",
        };
        let plugin = binding.plugin.name.clone();
        metrics::histogram!("switchboard_plugin_call_seconds", "plugin" => plugin.clone(), "export" => export).record(started.elapsed().as_secs_f64());
        metrics::counter!("switchboard_plugin_calls_total", "plugin" => plugin, "export" => export, "outcome" => outcome).increment(1);
        result
    }

    /// `translate-in` runs while the platform waits: it gets the shorter deadline.
    fn deadline(&self, export: &str) -> Duration {
        let call = Duration::from_millis(self.sandbox.call_timeout_ms);
        match export {
            "translate-in" => call.min(Duration::from_millis(self.sandbox.translate_in_timeout_ms)),
            _ => call,
        }
    }

    /// The call itself; also says whether the plugin tried a host it may not call.
    async fn run_in_store<R>(
        &self,
        binding: &Binding,
        export: &'static str,
        call: impl for<'a> FnOnce(&'a mut Store<PluginState>) -> BoxFuture<'a, wasmtime::Result<R>>,
    ) -> (Result<R, CallError>, bool) {
        let timeout = self.deadline(export);
        let mut store = Store::new(&self.engine, PluginState::new(Arc::clone(&binding.context), &self.sandbox));
        store.limiter(|state| &mut state.limits);
        store.set_hostcall_fuel(self.sandbox.max_result_bytes);
        // Yield to the scheduler at every epoch tick so a busy guest never
        // holds a runtime thread, and trap once the deadline has passed.
        let started = Instant::now();
        let mut cpu = cpu::CpuShare::new(Arc::clone(&self.cpu_slots));
        store.epoch_deadline_callback(move |_| if started.elapsed() >= timeout { Err(Trap::Interrupt.into()) } else { Ok(cpu.on_tick()) });
        store.set_epoch_deadline(1);
        // The epoch stops guest code; this timeout also stops a guest waiting
        // in a host call (HTTP, state) past its deadline.
        let outcome = tokio::time::timeout(timeout, call(&mut store)).await;
        let plugin = binding.plugin.name.clone();
        log_captured_output(&binding.context, &store.data().captured_output());
        let dropped = store.data().log_lines.saturating_sub(host_api::MAX_LOG_LINES_PER_CALL);
        if dropped > 0 {
            let scope = &binding.context.scope;
            tracing::warn!(tenant = %scope.tenant, connector = %scope.connector, plugin = %scope.plugin, dropped, "plugin logged more than {} lines in one call; the rest were dropped", host_api::MAX_LOG_LINES_PER_CALL);
        }
        let denied = store.data().policy.denied.load(std::sync::atomic::Ordering::Relaxed);
        if let Some((destination, retry_after)) = store.data().policy.deferred.clone() {
            return (Err(CallError::RateLimited { plugin, destination, retry_after }), denied);
        }
        let result = match outcome {
            Err(_) => Err(CallError::Timeout { plugin, timeout }),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(classify_trap(plugin, timeout, self.sandbox.max_result_bytes, &error)),
        };
        (result, denied)
    }
}

fn channel(binding: &Binding) -> Result<ChannelPluginPre<PluginState>, CallError> {
    match &binding.plugin.kind {
        PluginKind::Channel(pre) => Ok(pre.clone()),
        _ => Err(wrong_kind(binding, "channel")),
    }
}

fn provider(binding: &Binding) -> Result<ProviderPluginPre<PluginState>, CallError> {
    match &binding.plugin.kind {
        PluginKind::Provider(pre) => Ok(pre.clone()),
        _ => Err(wrong_kind(binding, "provider")),
    }
}

fn handoff(binding: &Binding) -> Result<HandoffPluginPre<PluginState>, CallError> {
    match &binding.plugin.kind {
        PluginKind::Handoff(pre) => Ok(pre.clone()),
        _ => Err(wrong_kind(binding, "handoff")),
    }
}

fn wrong_kind(binding: &Binding, expected: &'static str) -> CallError {
    CallError::WrongKind { plugin: binding.plugin.name.clone(), expected, actual: binding.plugin.kind_name() }
}

fn classify_trap(plugin: String, timeout: Duration, result_limit: usize, error: &wasmtime::Error) -> CallError {
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => return CallError::Timeout { plugin, timeout },
        Some(Trap::StackOverflow) => return CallError::StackOverflow { plugin },
        _ => {}
    }
    let detail = format!("{error:#}");
    // StoreLimits reports a refused memory.grow with this wording (trap_on_grow_failure).
    if detail.contains("growing memory") {
        return CallError::MemoryLimit { plugin };
    }
    // wasmtime's hostcall fuel (`Store::set_hostcall_fuel`); its error type is private.
    if detail.contains("fuel allocated for hostcalls has been exhausted") {
        return CallError::ResultTooLarge { plugin, limit: result_limit };
    }
    CallError::Trap { plugin, detail }
}

fn log_captured_output(context: &PluginContext, output: &str) {
    if !output.is_empty() {
        let scope = &context.scope;
        tracing::debug!(tenant = %scope.tenant, connector = %scope.connector, plugin = %scope.plugin, output, "plugin output");
    }
}

/// The conversation as providers and handoff plugins see it: the channel's
/// reply context (platform tokens, endpoints) stays on the host, which fills
/// it in again when they answer.
fn withheld(conversation: ConversationRef) -> ConversationRef {
    ConversationRef { reply_context: String::new(), ..conversation }
}

/// The process-wide engines, one per pool shape (instances, memory cap):
/// compiled code and the epoch ticker are shared by every runtime in the
/// process that asks for the same shape (tests start many servers; a
/// production process has exactly one).
fn shared_engine(max_in_flight: usize, memory_bytes: usize) -> anyhow::Result<Engine> {
    static ENGINES: OnceLock<Mutex<HashMap<(usize, usize), Engine>>> = OnceLock::new();
    let mut engines = ENGINES.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(engine) = engines.get(&(max_in_flight, memory_bytes)) {
        return Ok(engine.clone());
    }
    let engine = engine::build_engine(max_in_flight, memory_bytes)?;
    engines.insert((max_in_flight, memory_bytes), engine.clone());
    Ok(engine)
}
