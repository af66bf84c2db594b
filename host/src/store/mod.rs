//! Plugin state: one interface, three backends.
//!
//! * [`EmbeddedStore`] (default): a redb database file, survives restarts.
//! * [`RedisStore`]: shared by several host instances.
//! * [`MemoryStore`]: process memory only, for tests and throwaway runs.
//!
//! Keys are scoped by [`Scope`] so a plugin only ever sees its own tenant's,
//! connector's and plugin's entries.

mod embedded;
mod memory;
mod redis;

pub(crate) use embedded::failed;
pub use embedded::{EmbeddedStore, Redb};
pub use memory::MemoryStore;
pub use redis::RedisStore;

use crate::queue::{LocalQueue, QueueBackend, RedisQueue};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// Largest key a plugin may use, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value a plugin may store, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Failures of a state backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend is unreachable or failed.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// The key or value was rejected.
    #[error("invalid state entry: {0}")]
    Invalid(String),
    /// The scope would hold more than its quota allows.
    #[error("state quota exceeded: {0}")]
    QuotaExceeded(String),
}

/// What one scope (a tenant's connector's plugin) may keep at once. An
/// entry costs its key's and its value's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max_keys: u64,
    pub max_bytes: u64,
}

impl Quota {
    /// Whether a scope may hold `keys` entries of `bytes` in all.
    fn admits(&self, keys: u64, bytes: u64) -> Result<(), StoreError> {
        if keys > self.max_keys {
            return Err(self.too_many_keys());
        }
        if bytes > self.max_bytes {
            return Err(self.too_many_bytes());
        }
        Ok(())
    }

    fn too_many_keys(&self) -> StoreError {
        StoreError::QuotaExceeded(format!("at most {} keys per plugin and connector", self.max_keys))
    }

    fn too_many_bytes(&self) -> StoreError {
        StoreError::QuotaExceeded(format!("at most {} bytes of keys and values per plugin and connector", self.max_bytes))
    }
}

/// A key-value store with per-entry expiry.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// The value, or `None` when missing or expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Store `value`; it expires after `ttl`.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError>;
    /// Remove the key; a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Store a plugin's entry under `key` (which starts with `scope`'s
    /// [`Scope::prefix`]), unless the scope would then hold more than
    /// `quota`; the check and the write are one atomic step.
    async fn set_within(&self, scope: &str, key: &str, value: &[u8], ttl: Duration, quota: Quota) -> Result<(), StoreError>;
    /// Remove a plugin's entry stored with [`StateStore::set_within`],
    /// giving its share of the quota back.
    async fn delete_within(&self, scope: &str, key: &str) -> Result<(), StoreError>;
    /// Check that the backend answers (readiness probe).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Drop expired entries the backend does not expire by itself; returns
    /// how many were removed.
    async fn purge_expired(&self) -> Result<usize, StoreError> {
        Ok(0)
    }
}

/// The state store and the job queue of one backend.
pub struct Stores {
    pub state: Arc<dyn StateStore>,
    pub queue: Arc<dyn QueueBackend>,
    /// Several host instances may share this backend.
    pub shared: bool,
}

/// Open the state store and the job queue named by a config `store` value.
pub async fn open(spec: &str, namespace: &str) -> anyhow::Result<Stores> {
    if spec == "memory" {
        let queue = Arc::new(LocalQueue::in_memory());
        return Ok(Stores { state: Arc::new(MemoryStore::default()), queue, shared: false });
    }
    if let Some(dir) = spec.strip_prefix("embedded:") {
        let redb = Redb::open(std::path::Path::new(dir))?;
        let state = Arc::new(EmbeddedStore::open(redb.clone()).await?);
        let queue = Arc::new(LocalQueue::persistent(redb).await?);
        return Ok(Stores { state, queue, shared: false });
    }
    if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        let state = RedisStore::connect(spec).await?;
        let queue = Arc::new(RedisQueue::new(state.connection(), namespace));
        return Ok(Stores { state: Arc::new(state), queue, shared: true });
    }
    anyhow::bail!("unknown store {spec:?}: use `embedded:<dir>`, `redis://host:port` or `memory`")
}

/// Who owns a key: one tenant's connector's plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub tenant: String,
    pub connector: String,
    pub plugin: String,
}

impl Scope {
    /// The backend key for a plugin's `key`, after validation. Scope parts
    /// are slugs (no `:`), so different scopes can never collide.
    pub fn key(&self, key: &str) -> Result<String, StoreError> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(StoreError::Invalid(format!("keys must be 1 to {MAX_KEY_BYTES} bytes")));
        }
        Ok(format!("{}{key}", self.prefix()))
    }

    /// What every key of this scope starts with.
    pub fn prefix(&self) -> String {
        format!("sb:{}:{}:{}:", self.tenant, self.connector, self.plugin)
    }
}

/// The scope prefix of a key made by [`Scope::key`] (its parts hold no `:`).
fn scope_of(key: &str) -> Option<&str> {
    let mut colons = key.match_indices(':').map(|(at, _)| at);
    let end = colons.nth(3)?;
    key.starts_with("sb:").then(|| &key[..=end])
}

/// What an entry costs against its scope's quota.
fn entry_bytes(key: &str, value_len: usize) -> u64 {
    (key.len() + value_len) as u64
}

fn check_value(value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::Invalid(format!("values must be at most {MAX_VALUE_BYTES} bytes")));
    }
    Ok(())
}

use crate::queue::now_ms;

fn expiry_ms(ttl: Duration) -> u64 {
    now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
}

/// A store spec safe to log (no Redis password).
pub fn describe(spec: &str) -> String {
    redis::redact_url(spec)
}

#[cfg(test)]
mod conformance;
