//! The shared queue on Redis. Each lane is a list (`sb:q:lane:{lane}`, head
//! first); a lane with work and no worker sits in its tenant's ready sorted
//! set (`sb:q:ready:{tenant}`, scored by the time it may run). Claiming moves
//! a lane from there into `sb:q:leases` (scored by the lease's expiry) and
//! records the worker's token in `sb:q:owners`; every later step checks
//! that token, so a worker whose lease expired cannot touch a lane another
//! worker took over. Lanes whose lease expired (a crashed instance) go back
//! to ready. Every step is one Lua script: atomic on the server.
//!
//! One Redis server (or a primary with replicas) is supported; Redis
//! Cluster is not (the scripts touch keys of several slots).

use super::{Batch, DeadLetter, Enqueued, Envelope, Lease, QueueBackend, QueueError, QueueStats, decode, encode, now_ms};
use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;
use std::sync::LazyLock;
use std::time::Duration;

/// Shared by every host instance on the same Redis.
pub struct RedisQueue {
    connection: ConnectionManager,
    /// Key prefix, `{namespace}:q:`.
    prefix: String,
    /// Unique per process: part of every lease token.
    instance: String,
}

/// KEYS none; ARGV: prefix, now, dedupe ttl ms, then per job: lane, tenant,
/// dedupe key ("" = none), job id, created ms, payload. Returns the number
/// of duplicates.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local dup = 0
local seen = {}
for i = 4, #ARGV, 6 do
  local key = ARGV[i + 2]
  if key ~= '' and seen[key] == nil then
    seen[key] = redis.call('EXISTS', p .. 'dedupe:' .. key) == 1 and 'dup' or 'new'
  end
end
for i = 4, #ARGV, 6 do
  local lane, tenant, key, id, created, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  if key ~= '' and seen[key] == 'dup' then
    dup = dup + 1
  else
    if key ~= '' then
      redis.call('SET', p .. 'dedupe:' .. key, '1', 'PX', ttl)
      seen[key] = 'dup'
    end
    redis.call('RPUSH', p .. 'lane:' .. lane, payload)
    redis.call('ZADD', p .. 'created', created, id)
    if redis.call('HEXISTS', p .. 'owners', lane) == 0 then
      redis.call('ZADD', p .. 'ready:' .. tenant, 'NX', now, lane)
    end
  end
end
return dup
",
    )
});

/// ARGV: prefix, tenant, now, max, lease expiry, token prefix. Returns
/// [lane, token, head payload, ...].
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p, tenant, now, max, expiry, token = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local out = {}
local lanes = redis.call('ZRANGEBYSCORE', p .. 'ready:' .. tenant, '-inf', now, 'LIMIT', 0, max)
for n, lane in ipairs(lanes) do
  redis.call('ZREM', p .. 'ready:' .. tenant, lane)
  local head = redis.call('LINDEX', p .. 'lane:' .. lane, 0)
  if head then
    local t = token .. ':' .. redis.call('INCR', p .. 'lease-seq')
    redis.call('ZADD', p .. 'leases', expiry, lane)
    redis.call('HSET', p .. 'owners', lane, t)
    table.insert(out, lane)
    table.insert(out, t)
    table.insert(out, head)
  end
end
return out
",
    )
});

/// Shared by the scripts that end a lease: ARGV prefix, lane, token, tenant,
/// ready-at, then per script. `release()` hands the lane back; `owned()`
/// checks the token.
const LEASE_HELPERS: &str = r"
local p, lane, token, tenant, at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local function owned()
  return redis.call('HGET', p .. 'owners', lane) == token
end
local function release()
  redis.call('HDEL', p .. 'owners', lane)
  redis.call('ZREM', p .. 'leases', lane)
  if redis.call('LLEN', p .. 'lane:' .. lane) > 0 then
    redis.call('ZADD', p .. 'ready:' .. tenant, at, lane)
  end
end
if not owned() then return 0 end
";

/// ARGV[6] = job id: pop the head.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LEASE_HELPERS}
redis.call('LPOP', p .. 'lane:' .. lane)
redis.call('ZREM', p .. 'created', ARGV[6])
release()
return 1"
    ))
});

/// ARGV[6] = new head payload, ARGV[7] = dead letter id ("" = none), ARGV[8] = dead letter.
static CHECKPOINT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LEASE_HELPERS}
redis.call('LSET', p .. 'lane:' .. lane, 0, ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', p .. 'dead', ARGV[7], ARGV[8]) end
return 1"
    ))
});

/// ARGV[6] = new head payload: store it and make the lane ready at `at`.
static RESCHEDULE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LEASE_HELPERS}
redis.call('LSET', p .. 'lane:' .. lane, 0, ARGV[6])
release()
return 1"
    ))
});

/// ARGV[6] = job id, ARGV[7] = dead letter.
static BURY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LEASE_HELPERS}
redis.call('LPOP', p .. 'lane:' .. lane)
redis.call('ZREM', p .. 'created', ARGV[6])
redis.call('HSET', p .. 'dead', ARGV[6], ARGV[7])
release()
return 1"
    ))
});

static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(&format!("{LEASE_HELPERS}\nrelease()\nreturn 1")));

/// ARGV: prefix, expiry, then lane/token pairs.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p, expiry = ARGV[1], ARGV[2]
for i = 3, #ARGV, 2 do
  if redis.call('HGET', p .. 'owners', ARGV[i]) == ARGV[i + 1] then
    redis.call('ZADD', p .. 'leases', 'XX', expiry, ARGV[i])
  end
end
return 1
",
    )
});

/// ARGV: prefix, now. Lanes whose lease expired become ready now.
static RECLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p, now = ARGV[1], ARGV[2]
local lanes = redis.call('ZRANGEBYSCORE', p .. 'leases', '-inf', now, 'LIMIT', 0, 1000)
for _, lane in ipairs(lanes) do
  redis.call('ZREM', p .. 'leases', lane)
  redis.call('HDEL', p .. 'owners', lane)
  if redis.call('LLEN', p .. 'lane:' .. lane) > 0 then
    local tenant = string.match(lane, '^([^/]*)/')
    redis.call('ZADD', p .. 'ready:' .. tenant, 'NX', now, lane)
  end
end
return #lanes
",
    )
});

/// ARGV: prefix, now, id, lane, tenant, payload: move a dead letter back.
static REPLAY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p, now, id, lane, tenant, payload = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('HDEL', p .. 'dead', id) == 0 then return 0 end
redis.call('RPUSH', p .. 'lane:' .. lane, payload)
redis.call('ZADD', p .. 'created', now, id)
if redis.call('HEXISTS', p .. 'owners', lane) == 0 then
  redis.call('ZADD', p .. 'ready:' .. tenant, 'NX', now, lane)
end
return 1
",
    )
});

impl RedisQueue {
    /// The queue under `{namespace}:q:`; instances share work when they
    /// use the same Redis and namespace.
    pub fn new(connection: ConnectionManager, namespace: &str) -> Self {
        Self { connection, prefix: format!("{namespace}:q:"), instance: format!("{}-{:08x}", std::process::id(), fastrand::u32(..)) }
    }

    async fn ends_lease(&self, script: &Script, lease: &Lease, at_ms: u64, extra: &[Vec<u8>]) -> Result<(), QueueError> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(&self.prefix).arg(&lease.lane).arg(&lease.token).arg(&lease.tenant).arg(at_ms);
        for value in extra {
            invocation.arg(value.as_slice());
        }
        let owned: i64 = invocation.invoke_async(&mut self.connection.clone()).await.map_err(unavailable)?;
        if owned == 1 { Ok(()) } else { Err(QueueError::LeaseLost(lease.lane.clone())) }
    }
}

fn unavailable(error: redis::RedisError) -> QueueError {
    QueueError::Unavailable(error.to_string())
}

fn dead_bytes(dead: &DeadLetter) -> Result<Vec<u8>, QueueError> {
    serde_json::to_vec(dead).map_err(|e| QueueError::Unavailable(e.to_string()))
}

#[async_trait]
impl QueueBackend for RedisQueue {
    async fn enqueue(&self, batch: Batch) -> Result<Enqueued, QueueError> {
        let count = batch.items.len();
        if count == 0 {
            return Ok(Enqueued::default());
        }
        let mut invocation = ENQUEUE.prepare_invoke();
        let ttl = u64::try_from(batch.dedupe_ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        invocation.arg(&self.prefix).arg(now_ms()).arg(ttl);
        for item in &batch.items {
            let envelope = &item.envelope;
            invocation
                .arg(&envelope.lane)
                .arg(&envelope.tenant)
                .arg(item.dedupe_key.as_deref().unwrap_or_default())
                .arg(&envelope.id)
                .arg(envelope.created_ms)
                .arg(encode(envelope)?);
        }
        let duplicates: usize = invocation.invoke_async(&mut self.connection.clone()).await.map_err(unavailable)?;
        Ok(Enqueued { accepted: count - duplicates, duplicates })
    }

    async fn claim(&self, tenant: &str, max: usize, lease: Duration) -> Result<Vec<Lease>, QueueError> {
        let now = now_ms();
        let expiry = now + u64::try_from(lease.as_millis()).unwrap_or(u64::MAX / 2);
        let reply: Vec<Vec<u8>> = CLAIM
            .prepare_invoke()
            .arg(&self.prefix)
            .arg(tenant)
            .arg(now)
            .arg(max)
            .arg(expiry)
            .arg(&self.instance)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(unavailable)?;
        reply
            .chunks_exact(3)
            .map(|chunk| {
                Ok(Lease {
                    lane: String::from_utf8_lossy(&chunk[0]).into_owned(),
                    tenant: tenant.to_string(),
                    token: String::from_utf8_lossy(&chunk[1]).into_owned(),
                    envelope: decode::<Envelope>(&chunk[2])?,
                })
            })
            .collect()
    }

    async fn checkpoint(&self, lease: &Lease, envelope: &Envelope, dead: Option<DeadLetter>) -> Result<(), QueueError> {
        let (id, bytes) = match &dead {
            Some(dead) => (dead.envelope.id.clone().into_bytes(), dead_bytes(dead)?),
            None => (Vec::new(), Vec::new()),
        };
        self.ends_lease(&CHECKPOINT, lease, 0, &[encode(envelope)?, id, bytes]).await
    }

    async fn complete(&self, lease: &Lease) -> Result<(), QueueError> {
        self.ends_lease(&COMPLETE, lease, now_ms(), &[lease.envelope.id.clone().into_bytes()]).await
    }

    async fn reschedule(&self, lease: &Lease, envelope: &Envelope, at_ms: u64) -> Result<(), QueueError> {
        self.ends_lease(&RESCHEDULE, lease, at_ms, &[encode(envelope)?]).await
    }

    async fn bury(&self, lease: &Lease, dead: DeadLetter) -> Result<(), QueueError> {
        self.ends_lease(&BURY, lease, now_ms(), &[lease.envelope.id.clone().into_bytes(), dead_bytes(&dead)?]).await
    }

    async fn release(&self, lease: &Lease, at_ms: u64) -> Result<(), QueueError> {
        self.ends_lease(&RELEASE, lease, at_ms, &[]).await
    }

    async fn renew(&self, leases: &[Lease], lease: Duration) -> Result<(), QueueError> {
        if leases.is_empty() {
            return Ok(());
        }
        let expiry = now_ms() + u64::try_from(lease.as_millis()).unwrap_or(u64::MAX / 2);
        let mut invocation = RENEW.prepare_invoke();
        invocation.arg(&self.prefix).arg(expiry);
        for held in leases {
            invocation.arg(&held.lane).arg(&held.token);
        }
        invocation.invoke_async::<i64>(&mut self.connection.clone()).await.map_err(unavailable).map(drop)
    }

    async fn reclaim_expired(&self) -> Result<usize, QueueError> {
        RECLAIM.prepare_invoke().arg(&self.prefix).arg(now_ms()).invoke_async(&mut self.connection.clone()).await.map_err(unavailable)
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut connection = self.connection.clone();
        let (depth, oldest, dead): (u64, Vec<(String, u64)>, u64) = redis::pipe()
            .cmd("ZCARD")
            .arg(format!("{}created", self.prefix))
            .cmd("ZRANGE")
            .arg(format!("{}created", self.prefix))
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .cmd("HLEN")
            .arg(format!("{}dead", self.prefix))
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let oldest_age_ms = oldest.first().map_or(0, |(_, created)| now_ms().saturating_sub(*created));
        Ok(QueueStats { depth, oldest_age_ms, dead_letters: dead })
    }

    async fn dead_letters(&self, connector: Option<&str>) -> Result<Vec<DeadLetter>, QueueError> {
        let values: Vec<Vec<u8>> =
            redis::cmd("HVALS").arg(format!("{}dead", self.prefix)).query_async(&mut self.connection.clone()).await.map_err(unavailable)?;
        let mut dead = values.iter().map(|bytes| decode::<DeadLetter>(bytes)).collect::<Result<Vec<_>, _>>()?;
        dead.retain(|d| connector.is_none_or(|c| d.envelope.job.connector() == c));
        dead.sort_by_key(|d| d.buried_ms);
        Ok(dead)
    }

    async fn replay(&self, id: &str) -> Result<bool, QueueError> {
        let stored: Option<Vec<u8>> =
            redis::cmd("HGET").arg(format!("{}dead", self.prefix)).arg(id).query_async(&mut self.connection.clone()).await.map_err(unavailable)?;
        let Some(stored) = stored else { return Ok(false) };
        let mut envelope = decode::<DeadLetter>(&stored)?.envelope;
        envelope.attempt = 0;
        envelope.created_ms = now_ms();
        envelope.last_error = None;
        let replayed: i64 = REPLAY
            .prepare_invoke()
            .arg(&self.prefix)
            .arg(envelope.created_ms)
            .arg(id)
            .arg(&envelope.lane)
            .arg(&envelope.tenant)
            .arg(encode(&envelope)?)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(unavailable)?;
        Ok(replayed == 1)
    }

    async fn delete_dead(&self, id: &str) -> Result<bool, QueueError> {
        let removed: i64 =
            redis::cmd("HDEL").arg(format!("{}dead", self.prefix)).arg(id).query_async(&mut self.connection.clone()).await.map_err(unavailable)?;
        Ok(removed == 1)
    }

    async fn purge_expired(&self) -> Result<usize, QueueError> {
        // Redis expires deduplication keys by itself (`SET … PX`).
        Ok(0)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }
}
