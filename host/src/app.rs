//! The running host's shared state and its start-up.

use crate::config::Config;
use crate::connector::{self, Connector};
use crate::http::ApiError;
use crate::pipeline::Pipeline;
use crate::queue::{Job, JobQueue, MemoryQueue};
use crate::runtime::Runtime;
use crate::store::{self, StateStore};
use anyhow::Context;
use std::collections::HashMap;
use std::sync::Arc;

mod shipped {
    include!(concat!(env!("OUT_DIR"), "/shipped_plugins.rs"));
}

/// Plugins compiled into the binary by `build.rs` (`plugins/*`), by name.
pub const SHIPPED_PLUGINS: &[(&str, &[u8])] = shipped::SHIPPED;

/// Everything request handlers and workers share.
pub struct App {
    pub runtime: Arc<Runtime>,
    pub connectors: Arc<HashMap<String, Arc<Connector>>>,
    pub state: Arc<dyn StateStore>,
    pub state_ttl: std::time::Duration,
    pub queue: Arc<dyn JobQueue>,
    /// Bearer token of the admin API; `None` disables it.
    pub admin_token: Option<String>,
}

impl App {
    /// Load plugins, open the store, build connectors and start the workers.
    pub async fn start(config: &Config) -> anyhow::Result<Arc<Self>> {
        let runtime = Arc::new(load_runtime(config).await?);
        let state = store::open(&config.store).await.context("opening the state store")?;
        let connectors = Arc::new(connector::build_all(config, &runtime, &state)?);
        let state_ttl = std::time::Duration::from_secs(u64::from(config.state_ttl_seconds));
        let pipeline = Pipeline {
            runtime: Arc::clone(&runtime),
            connectors: Arc::clone(&connectors),
            retry: config.retry.clone(),
            state: Arc::clone(&state),
            state_ttl,
        };
        let queue = Arc::new(MemoryQueue::start(config.workers, Arc::new(pipeline)));
        let admin_token = config.admin_token.clone().filter(|token| !token.is_empty());
        Ok(Arc::new(Self { runtime, connectors, state, state_ttl, queue, admin_token }))
    }

    /// A connector by id, or 404.
    pub fn connector(&self, id: &str) -> Result<Arc<Connector>, ApiError> {
        self.connectors.get(id).cloned().ok_or_else(|| ApiError::NotFound(format!("no connector `{id}`")))
    }

    /// Queue a job, or 503 when the queue is full.
    pub async fn enqueue(&self, job: Job) -> Result<(), ApiError> {
        self.queue.enqueue(job).await.map_err(|e| ApiError::Unavailable(e.to_string()))
    }
}

/// Compile the shipped plugins and the configured extra ones.
pub async fn load_runtime(config: &Config) -> anyhow::Result<Runtime> {
    let sandbox = config.sandbox.clone();
    let extra = config.plugins.clone();
    tokio::task::spawn_blocking(move || {
        let mut runtime = Runtime::new(sandbox)?;
        for (name, wasm) in SHIPPED_PLUGINS {
            runtime.add_plugin(name, wasm)?;
        }
        for (name, path) in &extra {
            let wasm = std::fs::read(path).with_context(|| format!("reading plugin `{name}` from {}", path.display()))?;
            runtime.add_plugin(name, &wasm)?;
        }
        Ok(runtime)
    })
    .await?
}
