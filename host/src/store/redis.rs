use super::{StateStore, StoreError, check_value};
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

    async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING").query_async::<String>(&mut self.connection.clone()).await.map(drop).map_err(unavailable)
    }
}
