//! Hand-off between the webhook handlers and the workers.
//!
//! Handlers acknowledge the platform as soon as a job is queued; workers do
//! the slow part (provider calls, replies). [`JobQueue`] is the seam for a
//! durable backend; [`MemoryQueue`] keeps jobs in process memory and keeps
//! each conversation's jobs in order by routing them to one shard.

use crate::bindings::{AddressedReply, InboundMessage};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Work for a worker. Serializable so a durable queue can store it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Job {
    /// A user message: route it (bot, operator, commands) and answer it.
    Answer { connector: String, message: InboundMessage },
    /// Deliver replies that did not come from a synchronous provider answer.
    Deliver { connector: String, reply: AddressedReply, origin: Origin },
    /// An administrator's request about one conversation.
    Admin { connector: String, conversation: String, action: AdminAction },
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
            Job::Answer { connector, .. } | Job::Deliver { connector, .. } | Job::Admin { connector, .. } => connector,
        }
    }

    /// The conversation the job belongs to.
    pub fn conversation_id(&self) -> &str {
        match self {
            Job::Answer { message, .. } => &message.conversation.id,
            Job::Deliver { reply, .. } => &reply.conversation.id,
            Job::Admin { conversation, .. } => conversation,
        }
    }

    /// Jobs with the same key are processed in order.
    fn ordering_key(&self) -> (&str, &str) {
        (self.connector(), self.conversation_id())
    }
}

/// The queue is full or closed; the caller should answer 503.
#[derive(Debug, thiserror::Error)]
#[error("the job queue is full or shut down")]
pub struct QueueFull;

/// Processes jobs.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn handle(&self, job: Job);
}

/// Accepts jobs for processing.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    async fn enqueue(&self, job: Job) -> Result<(), QueueFull>;
}

/// In-process queue: `workers` shards, each drained by one task.
pub struct MemoryQueue {
    shards: Vec<mpsc::Sender<Job>>,
}

/// Jobs waiting per shard before `enqueue` reports [`QueueFull`].
const SHARD_CAPACITY: usize = 1024;

impl MemoryQueue {
    /// Start `workers` worker tasks feeding `handler`.
    pub fn start(workers: usize, handler: Arc<dyn JobHandler>) -> Self {
        let shards = (0..workers.max(1))
            .map(|_| {
                let (sender, mut receiver) = mpsc::channel::<Job>(SHARD_CAPACITY);
                let handler = Arc::clone(&handler);
                tokio::spawn(async move {
                    while let Some(job) = receiver.recv().await {
                        handler.handle(job).await;
                    }
                });
                sender
            })
            .collect();
        Self { shards }
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn enqueue(&self, job: Job) -> Result<(), QueueFull> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        job.ordering_key().hash(&mut hasher);
        let shard = (hasher.finish() % self.shards.len() as u64) as usize;
        self.shards[shard].try_send(job).map_err(|_| QueueFull)
    }
}
