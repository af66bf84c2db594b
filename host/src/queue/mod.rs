//! Durable job queue: webhooks are acknowledged only after their jobs are
//! recorded; workers process them with retries, dead letters and replay.
//!
//! Jobs live in **lanes**, one per conversation (`tenant/connector/conversation`).
//! A lane runs one job at a time, in order; different lanes run
//! concurrently. A worker *claims* a lane's head job and holds a lease on the
//! lane until it completes, reschedules or buries the job. A failed attempt
//! is rescheduled by putting the lane back with a "not before" time: the
//! lane waits, nothing else does.
//!
//! Backends ([`QueueBackend`]):
//! * [`LocalQueue`]: lanes in process memory, persisted to the embedded redb
//!   store (survives `kill -9`) or kept only in memory (`store = "memory"`).
//! * [`RedisQueue`]: lanes as Redis lists with Lua-scripted claims and
//!   expiring leases, shared by several host instances.
//!
//! The [`Dispatcher`] claims lanes within the global and per-tenant limits
//! and runs a [`JobHandler`] for each.

mod dispatcher;
mod local;
mod redis;
pub mod retry;

pub use dispatcher::{Dispatcher, DispatcherHandle, Limits};
pub use local::LocalQueue;
pub use redis::RedisQueue;

use crate::bindings::{AddressedReply, InboundMessage};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Work for a worker. Serializable: it is stored until done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Job {
    /// A user message: route it (bot, operator, commands) and answer it.
    Answer { connector: String, message: InboundMessage },
    /// Deliver replies that did not come from a synchronous provider answer.
    Deliver { connector: String, reply: AddressedReply, origin: Origin },
    /// An administrator's request about one conversation.
    Admin { connector: String, conversation: String, action: AdminAction },
    /// The replies a job decided on, delivered one message at a time.
    /// `delivered` counts the messages the platform already accepted, so a
    /// retry resumes after the last one delivered and never resends it.
    Outbox { connector: String, conversation: String, deliveries: Vec<AddressedReply>, delivered: usize },
}

/// Which plugin produced a reply; it decides how its control signals count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// The channel itself (a welcome message).
    Channel,
    /// The bot provider, asynchronously (a callback).
    Provider,
    /// The help-desk plugin (operator messages, end of the operator chat).
    Handoff,
}

/// What an administrator can do with a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminAction {
    /// Hand it to a human operator.
    Handoff,
    /// Return it to the bot.
    Return,
    /// Forget its provider state.
    Reset,
}

impl Job {
    /// The connector the job belongs to.
    pub fn connector(&self) -> &str {
        match self {
            Job::Answer { connector, .. } | Job::Deliver { connector, .. } | Job::Admin { connector, .. } | Job::Outbox { connector, .. } => connector,
        }
    }

    /// The conversation the job belongs to.
    pub fn conversation_id(&self) -> &str {
        match self {
            Job::Answer { message, .. } => &message.conversation.id,
            Job::Deliver { reply, .. } => &reply.conversation.id,
            Job::Admin { conversation, .. } | Job::Outbox { conversation, .. } => conversation,
        }
    }

    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Job::Answer { .. } => "answer",
            Job::Deliver { .. } => "deliver",
            Job::Admin { .. } => "admin",
            Job::Outbox { .. } => "outbox",
        }
    }
}

/// A stored job: the work plus its bookkeeping.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique id (also the dead letter's id).
    pub id: String,
    /// The lane (conversation) the job runs in.
    pub lane: String,
    /// The tenant owning the connector (limits are per tenant).
    pub tenant: String,
    /// Attempts made so far.
    pub attempt: u32,
    /// When the job was accepted, in ms since the Unix epoch.
    pub created_ms: u64,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Position in the lane for the local backend (assigned on enqueue).
    #[serde(default)]
    pub seq: u64,
    pub job: Job,
}

impl Envelope {
    /// A new job for `tenant`, not yet attempted.
    pub fn new(tenant: &str, job: Job) -> Self {
        Envelope {
            id: new_id(),
            lane: lane_id(tenant, job.connector(), job.conversation_id()),
            tenant: tenant.to_string(),
            attempt: 0,
            created_ms: now_ms(),
            last_error: None,
            seq: 0,
            job,
        }
    }
}

/// `tenant/connector/conversation`: tenant and connector ids are slugs
/// (no `/`), so the tenant is everything before the first `/`.
pub fn lane_id(tenant: &str, connector: &str, conversation: &str) -> String {
    format!("{tenant}/{connector}/{conversation}")
}

/// Jobs accepted together: all are recorded or none. A job whose dedupe
/// key was accepted before (within the TTL) is dropped as a duplicate.
#[derive(Debug, Default)]
pub struct Batch {
    pub items: Vec<BatchItem>,
    pub dedupe_ttl: Duration,
}

/// One job of a [`Batch`] with its optional deduplication key.
#[derive(Debug)]
pub struct BatchItem {
    pub envelope: Envelope,
    /// `connector:platform-id`; `None` never counts as a duplicate.
    pub dedupe_key: Option<String>,
}

/// What happened to a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub accepted: usize,
    pub duplicates: usize,
}

/// A claimed lane: its head job and the lease that lets this worker act on it.
#[derive(Debug, Clone)]
pub struct Lease {
    pub lane: String,
    pub tenant: String,
    /// Proves ownership to the backend; a lease that expired and was taken
    /// by another worker no longer matches.
    pub token: String,
    pub envelope: Envelope,
}

/// A job that failed for good, kept for inspection and replay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub envelope: Envelope,
    pub reason: String,
    pub buried_ms: u64,
}

/// Queue figures for `/metrics` and `/readyz`.
#[derive(Debug, Default, Clone, Copy)]
pub struct QueueStats {
    /// Jobs waiting or running.
    pub depth: u64,
    /// Age of the oldest waiting or running job, in ms.
    pub oldest_age_ms: u64,
    pub dead_letters: u64,
}

/// Failures of a queue backend.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The backend is unreachable or failed.
    #[error("job queue unavailable: {0}")]
    Unavailable(String),
    /// The lease expired and another worker took the lane over.
    #[error("the lease on lane `{0}` was lost")]
    LeaseLost(String),
    /// The batch is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
}

/// Stores jobs durably and hands out lanes to workers.
#[async_trait]
pub trait QueueBackend: Send + Sync + 'static {
    /// Record every job of the batch (minus duplicates) atomically.
    async fn enqueue(&self, batch: Batch) -> Result<Enqueued, QueueError>;
    /// Claim up to `max` ready lanes of `tenant`, leasing each for `lease`.
    async fn claim(&self, tenant: &str, max: usize, lease: Duration) -> Result<Vec<Lease>, QueueError>;
    /// Replace the head job (progress made); optionally record a dead letter
    /// for the job's original form at the same time.
    async fn checkpoint(&self, lease: &Lease, envelope: &Envelope, dead: Option<DeadLetter>) -> Result<(), QueueError>;
    /// The head job is done: remove it and release the lane.
    async fn complete(&self, lease: &Lease) -> Result<(), QueueError>;
    /// Store the updated head job and make the lane ready again at `at_ms`.
    async fn reschedule(&self, lease: &Lease, envelope: &Envelope, at_ms: u64) -> Result<(), QueueError>;
    /// Move the head job to the dead letters and release the lane.
    async fn bury(&self, lease: &Lease, dead: DeadLetter) -> Result<(), QueueError>;
    /// Give the lane back untouched (shutdown), ready at `at_ms`.
    async fn release(&self, lease: &Lease, at_ms: u64) -> Result<(), QueueError>;
    /// Extend the leases this worker holds.
    async fn renew(&self, leases: &[Lease], lease: Duration) -> Result<(), QueueError>;
    /// Make lanes whose lease expired (a crashed worker) ready again.
    async fn reclaim_expired(&self) -> Result<usize, QueueError>;
    async fn stats(&self) -> Result<QueueStats, QueueError>;
    /// Dead letters, oldest first, optionally of one connector.
    async fn dead_letters(&self, connector: Option<&str>) -> Result<Vec<DeadLetter>, QueueError>;
    /// Put a dead letter back into its lane with fresh attempts; false if unknown.
    async fn replay(&self, id: &str) -> Result<bool, QueueError>;
    /// Forget a dead letter; false if unknown.
    async fn delete_dead(&self, id: &str) -> Result<bool, QueueError>;
    /// Remove expired deduplication entries (periodic housekeeping).
    async fn purge_expired(&self) -> Result<usize, QueueError>;
    /// Resolves when a job may have become ready in this process (a local
    /// enqueue); workers also poll, for jobs other instances enqueue.
    async fn wait_for_work(&self, timeout: Duration);
}

/// How a worker finished with a job.
#[derive(Debug)]
pub enum Outcome {
    /// Done: remove it.
    Done,
    /// Try again later (no earlier than `after`, if given).
    Retry { reason: String, after: Option<Duration> },
    /// Not a failure (e.g. a rate limit's slot is later): run again after
    /// `after` without spending an attempt; the maximum age still applies.
    Wait { reason: String, after: Duration },
    /// Give up: keep it as a dead letter.
    Dead { reason: String },
}

/// Which attempt a handler runs, so the last one can send the fallback.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// No retry follows if this attempt fails.
    pub last: bool,
}

/// Lets a handler save progress on the job it runs.
#[async_trait]
pub trait Progress: Send + Sync {
    /// Replace the running job with `job`, optionally recording `dead` (the
    /// original job, failed for good) at the same time.
    async fn save(&self, job: Job, dead: Option<(Job, String)>) -> Result<(), QueueError>;
}

/// Processes jobs.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn handle(&self, envelope: &Envelope, attempt: Attempt, progress: &dyn Progress) -> Outcome;
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

fn new_id() -> String {
    format!("{:012x}{:016x}", now_ms(), fastrand::u64(..))
}

fn encode(envelope: &Envelope) -> Result<Vec<u8>, QueueError> {
    serde_json::to_vec(envelope).map_err(|e| QueueError::Unavailable(format!("cannot encode a job: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, QueueError> {
    serde_json::from_slice(bytes).map_err(|e| QueueError::Unavailable(format!("cannot decode a stored job: {e}")))
}

#[cfg(test)]
mod conformance;
