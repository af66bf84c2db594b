//! The running host's shared state, its start-up and its shutdown.

use crate::config::{Config, QueueConfig};
use crate::connector::{self, Connector};
use crate::pipeline::Pipeline;
use crate::queue::retry::RetryPolicy;
use crate::queue::{Batch, BatchItem, Dispatcher, DispatcherHandle, Enqueued, Envelope, Job, Limits, QueueBackend, QueueError};
use crate::runtime::Runtime;
use crate::store::{self, StateStore};
use anyhow::Context;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

mod shipped {
    include!(concat!(env!("OUT_DIR"), "/shipped_plugins.rs"));
}

/// Plugins compiled into the binary by `build.rs` (`plugins/*`), by name.
pub const SHIPPED_PLUGINS: &[(&str, &[u8])] = shipped::SHIPPED;

/// How often expired state entries and dedupe records are purged.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(300);

/// Everything request handlers and workers share.
pub struct App {
    pub runtime: Arc<Runtime>,
    pub connectors: Arc<HashMap<String, Arc<Connector>>>,
    pub state: Arc<dyn StateStore>,
    pub state_ttl: Duration,
    pub queue: Arc<dyn QueueBackend>,
    queue_config: QueueConfig,
    /// Bearer token of the admin API; `None` disables it.
    pub admin_token: Option<String>,
    background: Mutex<Option<Background>>,
    /// Time a client has to send a request body.
    pub body_timeout: Duration,
    /// Webhooks being translated, per tenant.
    intake: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// The tasks that run while the host serves.
struct Background {
    dispatcher: DispatcherHandle,
    housekeeping: tokio::task::JoinHandle<()>,
}

/// Why the host could not take a request; the HTTP layer maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no connector `{0}`")]
    UnknownConnector(String),
    #[error("the webhook would create {jobs} jobs; at most {limit} per webhook are accepted")]
    TooManyJobs { jobs: usize, limit: usize },
    #[error("tenant `{tenant}` already has {limit} webhooks being processed; retry shortly")]
    TenantBusy { tenant: String, limit: usize },
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl App {
    /// Load plugins, open the store, build connectors; [`App::run`] starts the workers.
    pub async fn start(config: &Config) -> anyhow::Result<Arc<Self>> {
        crate::metrics::install();
        let runtime = Arc::new(load_runtime(config).await?);
        let stores = store::open(&config.store, &config.queue.namespace).await.context("opening the store")?;
        let connectors = Arc::new(connector::build_all(config, &runtime, &stores.state)?);
        let admin_token = config.admin_token.clone().filter(|token| !token.is_empty());
        Ok(Arc::new(Self {
            runtime,
            connectors,
            state: stores.state,
            state_ttl: Duration::from_secs(u64::from(config.state_ttl_seconds)),
            queue: stores.queue,
            queue_config: config.queue.clone(),
            admin_token,
            background: Mutex::new(None),
            intake: Mutex::new(HashMap::new()),
            body_timeout: Duration::from_millis(config.server.body_timeout_ms),
        }))
    }

    /// Start processing queued jobs (and the periodic housekeeping).
    pub fn run(self: &Arc<Self>, config: &Config) {
        let pipeline = Pipeline {
            runtime: Arc::clone(&self.runtime),
            connectors: Arc::clone(&self.connectors),
            state: Arc::clone(&self.state),
            state_ttl: self.state_ttl,
        };
        let queue = &config.queue;
        let tenants: BTreeSet<String> = self.connectors.values().map(|c| c.tenant.clone()).collect();
        let dispatcher = Dispatcher {
            queue: Arc::clone(&self.queue),
            handler: Arc::new(pipeline),
            limits: Limits {
                max_in_flight: queue.max_in_flight,
                max_in_flight_per_tenant: queue.max_in_flight_per_tenant,
                lease: Duration::from_secs(queue.lease_seconds),
                poll_interval: Duration::from_millis(queue.poll_interval_ms),
                shutdown_grace: Duration::from_secs(queue.shutdown_grace_seconds),
            },
            retry: RetryPolicy::new(&config.retry),
            tenants: tenants.into_iter().collect(),
        }
        .start();
        let housekeeping = tokio::spawn(housekeeping(Arc::clone(&self.state), Arc::clone(&self.queue)));
        *self.background.lock().unwrap_or_else(|p| p.into_inner()) = Some(Background { dispatcher, housekeeping });
    }

    /// Stop taking jobs, let running ones finish within the grace period
    /// and hand the rest back to the queue.
    pub async fn stop(&self) {
        let background = self.background.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(Background { dispatcher, housekeeping }) = background {
            housekeeping.abort();
            dispatcher.shutdown().await;
        }
    }

    /// A connector by id.
    pub fn connector(&self, id: &str) -> Result<Arc<Connector>, AppError> {
        self.connectors.get(id).cloned().ok_or_else(|| AppError::UnknownConnector(id.to_string()))
    }

    /// A slot for one webhook of `tenant` while it is verified and
    /// translated; refused at once when the tenant has all its slots busy.
    pub fn admit_webhook(&self, tenant: &str) -> Result<OwnedSemaphorePermit, AppError> {
        let limit = self.queue_config.max_webhooks_in_flight_per_tenant;
        let semaphore = {
            let mut intake = self.intake.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(intake.entry(tenant.to_string()).or_insert_with(|| Arc::new(Semaphore::new(limit))))
        };
        semaphore.try_acquire_owned().map_err(|_| {
            metrics::counter!("switchboard_webhooks_busy_total", "tenant" => tenant.to_string()).increment(1);
            AppError::TenantBusy { tenant: tenant.to_string(), limit }
        })
    }

    /// Record the jobs of one request durably, all or none. Each job may
    /// carry the platform's id for it; a job whose id was accepted before
    /// (within the dedupe TTL) is dropped as a duplicate.
    pub async fn accept(&self, connector: &Connector, jobs: Vec<(Job, Option<String>)>) -> Result<Enqueued, AppError> {
        let limit = self.queue_config.max_jobs_per_webhook;
        if jobs.len() > limit {
            return Err(AppError::TooManyJobs { jobs: jobs.len(), limit });
        }
        if jobs.is_empty() {
            return Ok(Enqueued::default());
        }
        let items = jobs
            .into_iter()
            .map(|(job, platform_id)| BatchItem {
                envelope: Envelope::new(&connector.tenant, job),
                dedupe_key: platform_id.filter(|id| !id.is_empty()).map(|id| format!("{}/{}:{id}", connector.tenant, connector.id)),
            })
            .collect();
        let batch = Batch { items, dedupe_ttl: Duration::from_secs(self.queue_config.dedupe_ttl_seconds) };
        let enqueued = self.queue.enqueue(batch).await?;
        metrics::counter!("switchboard_jobs_enqueued_total", "tenant" => connector.tenant.clone()).increment(enqueued.accepted as u64);
        if enqueued.duplicates > 0 {
            tracing::info!(connector = %connector.id, duplicates = enqueued.duplicates, "dropped redelivered messages");
            metrics::counter!("switchboard_duplicates_dropped_total", "connector" => connector.id.clone()).increment(enqueued.duplicates as u64);
        }
        Ok(enqueued)
    }
}

/// Purge expired state entries and dedupe records the backends do not
/// expire by themselves.
async fn housekeeping(state: Arc<dyn StateStore>, queue: Arc<dyn QueueBackend>) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        crate::metrics::upkeep();
        match state.purge_expired().await {
            Ok(0) => {}
            Ok(entries) => tracing::debug!(entries, "purged expired state entries"),
            Err(error) => tracing::warn!(%error, "could not purge expired state entries"),
        }
        if let Err(error) = queue.purge_expired().await {
            tracing::warn!(%error, "could not purge expired dedupe records");
        }
    }
}

/// Compile the shipped plugins and the configured extra ones.
pub async fn load_runtime(config: &Config) -> anyhow::Result<Runtime> {
    let mut sandbox = config.sandbox.clone();
    if sandbox.compiled_cache_dir.is_none()
        && let Some(dir) = config.store.strip_prefix("embedded:")
    {
        sandbox.compiled_cache_dir = Some(std::path::Path::new(dir).join("compiled"));
    }
    let extra = config.plugins.clone();
    let tenant_plugins = config.tenant_plugins.clone();
    let max_in_flight = config.queue.max_in_flight;
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let mut runtime = Runtime::new(sandbox, max_in_flight)?;
        for (name, wasm) in SHIPPED_PLUGINS {
            runtime.add_plugin(name, wasm)?;
        }
        for (name, path) in &extra {
            let wasm = std::fs::read(path).with_context(|| format!("reading plugin `{name}` from {}", path.display()))?;
            runtime.add_plugin(name, &wasm)?;
        }
        for (tenant, plugins) in &tenant_plugins {
            for (name, path) in plugins {
                let wasm = std::fs::read(path).with_context(|| format!("reading plugin `{name}` of tenant `{tenant}` from {}", path.display()))?;
                runtime.add_tenant_plugin(tenant, name, &wasm)?;
            }
        }
        let count = |counter: &std::sync::atomic::AtomicUsize| counter.load(std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            compiled = count(&runtime.loads.compiled),
            precompiled = count(&runtime.loads.from_disk),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "plugins loaded"
        );
        Ok(runtime)
    })
    .await?
}
