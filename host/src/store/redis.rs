use super::{Quota, StateStore, StoreError, check_value, entry_bytes};
use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// How long one command may take before it counts as failed. The client's
/// default (500 ms) is shorter than a loaded host's scheduling delays: lease
/// renewals then failed and running conversations were taken over twice.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// State in Redis, shared by every host instance pointing at it. Entries use
/// Redis' own expiry (`SET … PX`).
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
}

impl RedisStore {
    /// Connect to `url` (`redis://host:port/db`); fails if Redis does not answer.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let connection = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new_with_config(client, ConnectionManagerConfig::new().set_response_timeout(Some(RESPONSE_TIMEOUT))),
        )
        .await
        .map_err(|_| anyhow::anyhow!("Redis at {} did not answer within 5 s", redact_url(url)))?
        .map_err(|e| anyhow::anyhow!("cannot connect to Redis at {}: {e}", redact_url(url)))?;
        Ok(Self { connection })
    }

    /// The shared connection (the job queue uses it too).
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }
}

/// A Redis URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

fn unavailable(error: redis::RedisError) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

#[async_trait]
impl StateStore for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.connection.clone().get(key).await.map_err(unavailable)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        check_value(value)?;
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let options = redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(millis));
        self.connection.clone().set_options(key, value, options).await.map_err(unavailable)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.connection.clone().del(key).await.map_err(unavailable)
    }

    async fn set_within(&self, scope: &str, key: &str, value: &[u8], ttl: Duration, quota: Quota) -> Result<(), StoreError> {
        check_value(value)?;
        let (expiry, sizes) = usage_keys(scope);
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let verdict: i64 = SET_WITHIN
            .key(key)
            .key(expiry)
            .key(sizes)
            .arg(value)
            .arg(millis)
            .arg(super::now_ms())
            .arg(entry_bytes(key, value.len()))
            .arg(quota.max_keys)
            .arg(quota.max_bytes)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(unavailable)?;
        match verdict {
            1 => Ok(()),
            -1 => Err(quota.too_many_keys()),
            _ => Err(quota.too_many_bytes()),
        }
    }

    async fn delete_within(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let (expiry, sizes) = usage_keys(scope);
        DELETE_WITHIN.key(key).key(expiry).key(sizes).invoke_async::<()>(&mut self.connection.clone()).await.map_err(unavailable)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING").query_async::<String>(&mut self.connection.clone()).await.map(drop).map_err(unavailable)
    }
}

/// The two index keys of a quota scope: a sorted set of its keys by expiry
/// and a hash of their sizes (field `""` holds the total). `sbq:` never
/// starts a plugin's key (`sb:`), so the index cannot be overwritten.
fn usage_keys(scope: &str) -> (String, String) {
    let scope = scope.trim_start_matches("sb:");
    (format!("sbq:{scope}expiry"), format!("sbq:{scope}sizes"))
}

/// Atomically: forget index entries whose key expired, check the quota with
/// the new entry in place, write it and update the index. Returns 1 when
/// stored, -1 when over the key quota, -2 when over the byte quota.
static SET_WITHIN: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local key, expiry, sizes = KEYS[1], KEYS[2], KEYS[3]
local value, ttl, now, size = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local max_keys, max_bytes = tonumber(ARGV[5]), tonumber(ARGV[6])
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', expiry, '-inf', now)) do
  redis.call('HINCRBY', sizes, '', -tonumber(redis.call('HGET', sizes, gone) or '0'))
  redis.call('HDEL', sizes, gone)
  redis.call('ZREM', expiry, gone)
end
local old = redis.call('HGET', sizes, key)
local keys = redis.call('ZCARD', expiry)
local total = tonumber(redis.call('HGET', sizes, '') or '0') + size
if old then total = total - tonumber(old) else keys = keys + 1 end
if keys > max_keys then return -1 end
if total > max_bytes then return -2 end
redis.call('SET', key, value, 'PX', ttl)
redis.call('ZADD', expiry, now + ttl, key)
redis.call('HSET', sizes, key, size)
redis.call('HINCRBY', sizes, '', size - tonumber(old or '0'))
if redis.call('PTTL', expiry) < ttl then
  redis.call('PEXPIRE', expiry, ttl)
  redis.call('PEXPIRE', sizes, ttl)
end
return 1
",
    )
});

/// Atomically delete a plugin's key and give its share of the quota back.
static DELETE_WITHIN: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local key, expiry, sizes = KEYS[1], KEYS[2], KEYS[3]
redis.call('DEL', key)
local old = redis.call('HGET', sizes, key)
if old then
  redis.call('HINCRBY', sizes, '', -tonumber(old))
  redis.call('HDEL', sizes, key)
  redis.call('ZREM', expiry, key)
end
",
    )
});
