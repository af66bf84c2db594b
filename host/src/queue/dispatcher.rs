//! Runs queued jobs concurrently: claims ready lanes within the global and
//! per-tenant in-flight limits, runs each claimed job in its own task,
//! keeps the leases alive while the job runs and settles the outcome
//! (complete, reschedule with backoff, dead letter).
//!
//! A failed attempt never sleeps in a task: the lane goes back to the queue
//! with a "not before" time, so only that conversation waits.

use super::retry::RetryPolicy;
use super::{Attempt, DeadLetter, Envelope, Job, JobHandler, Lease, Outcome, Progress, QueueBackend, QueueError, now_ms};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;

/// How much runs at once and how leases behave.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Jobs running at once in this process.
    pub max_in_flight: usize,
    /// Jobs of one tenant running at once in this process.
    pub max_in_flight_per_tenant: usize,
    /// How long a claimed lane stays leased without renewal; a crashed
    /// instance's lanes are taken over after this.
    pub lease: Duration,
    /// How often to look for work that became ready without a local signal
    /// (retries coming due, jobs other instances enqueued).
    pub poll_interval: Duration,
    /// On shutdown, how long running jobs may take before they are handed back.
    pub shutdown_grace: Duration,
}

/// Claims and runs jobs until shut down.
pub struct Dispatcher {
    pub queue: Arc<dyn QueueBackend>,
    pub handler: Arc<dyn JobHandler>,
    pub limits: Limits,
    pub retry: RetryPolicy,
    /// The tenants whose lanes this process serves.
    pub tenants: Vec<String>,
}

/// Stops a running [`Dispatcher`].
pub struct DispatcherHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Leases of the jobs running now, by token, for renewal and hand-back.
type Held = Arc<Mutex<HashMap<String, Lease>>>;

struct Shared {
    queue: Arc<dyn QueueBackend>,
    handler: Arc<dyn JobHandler>,
    retry: RetryPolicy,
    held: Held,
    /// Signalled whenever a job finishes (a slot may be free).
    finished: Notify,
    in_flight: AtomicU64,
}

impl Dispatcher {
    /// Start claiming; the returned handle stops it.
    pub fn start(self) -> DispatcherHandle {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(self.run(stopped));
        DispatcherHandle { stop, task }
    }

    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let shared = Arc::new(Shared {
            queue: Arc::clone(&self.queue),
            handler: Arc::clone(&self.handler),
            retry: self.retry.clone(),
            held: Held::default(),
            finished: Notify::new(),
            in_flight: AtomicU64::new(0),
        });
        let global = Arc::new(Semaphore::new(self.limits.max_in_flight.max(1)));
        let per_tenant: HashMap<String, Arc<Semaphore>> =
            self.tenants.iter().map(|tenant| (tenant.clone(), Arc::new(Semaphore::new(self.limits.max_in_flight_per_tenant.max(1))))).collect();
        let keeper = tokio::spawn(keep_leases(Arc::clone(&shared), self.limits.lease, stopped.clone()));
        let mut running = JoinSet::new();
        let mut start = 0usize;
        while !*stopped.borrow() {
            while running.try_join_next().is_some() {}
            let claimed = self.claim_round(&shared, &global, &per_tenant, start, &mut running).await;
            start = start.wrapping_add(1);
            if claimed == 0 {
                tokio::select! {
                    () = self.queue.wait_for_work(self.limits.poll_interval) => {}
                    () = shared.finished.notified(), if global.available_permits() == 0 => {}
                    _ = stopped.changed() => {}
                }
            }
        }
        self.drain(&shared, running).await;
        keeper.abort();
    }

    /// One pass over the tenants (starting at a rotating one, so none is
    /// always first); returns how many jobs were started.
    async fn claim_round(
        &self,
        shared: &Arc<Shared>,
        global: &Arc<Semaphore>,
        per_tenant: &HashMap<String, Arc<Semaphore>>,
        start: usize,
        running: &mut JoinSet<()>,
    ) -> usize {
        let mut started = 0;
        let count = self.tenants.len();
        for tenant in (0..count).map(|i| &self.tenants[(start + i) % count]) {
            let tenant_slots = &per_tenant[tenant];
            let free = global.available_permits().min(tenant_slots.available_permits());
            if free == 0 {
                continue;
            }
            let leases = match self.queue.claim(tenant, free, self.limits.lease).await {
                Ok(leases) => leases,
                Err(error) => {
                    tracing::warn!(%error, tenant, "could not claim jobs; retrying shortly");
                    tokio::time::sleep(self.limits.poll_interval).await;
                    return started;
                }
            };
            for lease in leases {
                let (Ok(slot), Ok(tenant_slot)) = (Arc::clone(global).try_acquire_owned(), Arc::clone(tenant_slots).try_acquire_owned()) else {
                    // Only this loop takes permits, so this cannot happen; hand the lane back rather than overrun.
                    let _ = self.queue.release(&lease, now_ms()).await;
                    continue;
                };
                started += 1;
                running.spawn(run_job(Arc::clone(shared), lease, [slot, tenant_slot]));
            }
        }
        started
    }

    /// Let running jobs finish within the grace period, then hand the rest back.
    async fn drain(&self, shared: &Arc<Shared>, mut running: JoinSet<()>) {
        let in_flight = running.len();
        if in_flight > 0 {
            tracing::info!(in_flight, grace = ?self.limits.shutdown_grace, "waiting for running jobs");
        }
        let finished = tokio::time::timeout(self.limits.shutdown_grace, async { while running.join_next().await.is_some() {} }).await;
        if finished.is_ok() {
            return;
        }
        running.abort_all();
        while running.join_next().await.is_some() {}
        let leases: Vec<Lease> = shared.held.lock().unwrap_or_else(|p| p.into_inner()).drain().map(|(_, lease)| lease).collect();
        tracing::warn!(jobs = leases.len(), "grace period over; handing unfinished jobs back to the queue");
        for lease in leases {
            if let Err(error) = self.queue.release(&lease, now_ms()).await {
                tracing::warn!(%error, lane = %lease.lane, "could not hand a job back; its lease will expire");
            }
        }
    }
}

impl DispatcherHandle {
    /// Stop claiming, let running jobs finish within the grace period and
    /// hand the rest back to the queue.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Renew the leases of running jobs and take over lanes whose lease expired.
async fn keep_leases(shared: Arc<Shared>, lease: Duration, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        let leases: Vec<Lease> = shared.held.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        if !leases.is_empty()
            && let Err(error) = shared.queue.renew(&leases, lease).await
        {
            // Reclaiming now could hand this instance's own running lanes to a second worker.
            tracing::warn!(%error, "could not renew job leases; not taking over expired ones this round");
            continue;
        }
        match shared.queue.reclaim_expired().await {
            Ok(0) => {}
            Ok(lanes) => tracing::warn!(lanes, "took over conversations whose worker stopped renewing its lease"),
            Err(error) => tracing::warn!(%error, "could not look for expired leases"),
        }
        publish_queue_stats(&shared).await;
    }
}

async fn publish_queue_stats(shared: &Shared) {
    if let Ok(stats) = shared.queue.stats().await {
        metrics::gauge!("switchboard_queue_depth").set(stats.depth as f64);
        metrics::gauge!("switchboard_queue_oldest_job_age_seconds").set(stats.oldest_age_ms as f64 / 1000.0);
        metrics::gauge!("switchboard_dead_letters").set(stats.dead_letters as f64);
    }
}

/// Run one claimed job and settle its outcome with the queue.
async fn run_job(shared: Arc<Shared>, lease: Lease, _slots: [OwnedSemaphorePermit; 2]) {
    shared.held.lock().unwrap_or_else(|p| p.into_inner()).insert(lease.token.clone(), lease.clone());
    metrics::gauge!("switchboard_jobs_in_flight").set(shared.in_flight.fetch_add(1, Ordering::Relaxed) as f64 + 1.0);
    let envelope = lease.envelope.clone();
    let span = tracing::info_span!("job", job = %envelope.id, tenant = %envelope.tenant, connector = %envelope.job.connector(), conversation = %envelope.job.conversation_id(), kind = envelope.job.kind(), attempt = envelope.attempt + 1);
    settle(&shared, &lease).instrument(span).await;
    shared.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&lease.token);
    metrics::gauge!("switchboard_jobs_in_flight").set(shared.in_flight.fetch_sub(1, Ordering::Relaxed) as f64 - 1.0);
    shared.finished.notify_one();
}

async fn settle(shared: &Shared, lease: &Lease) {
    let envelope = &lease.envelope;
    let attempt = Attempt { number: envelope.attempt + 1, last: shared.retry.is_last_attempt(envelope, now_ms()) };
    let progress = LeaseProgress { queue: Arc::clone(&shared.queue), lease: lease.clone(), current: Mutex::new(envelope.clone()) };
    let outcome = shared.handler.handle(envelope, attempt, &progress).await;
    let current = progress.current.into_inner().unwrap_or_else(|p| p.into_inner());
    let result = match outcome {
        Outcome::Done => shared.queue.complete(lease).await.map(|()| "done"),
        // `current` may be in a later phase than the attempt started in (with a fresh budget).
        Outcome::Retry { reason, after } if !shared.retry.is_last_attempt(&current, now_ms()) => {
            let delay = shared.retry.delay(current.attempt + 1, after);
            tracing::warn!(%reason, retry_in = ?delay, "attempt failed; the conversation waits for the retry");
            let retried = Envelope { attempt: current.attempt + 1, last_error: Some(reason), ..current };
            let at = now_ms().saturating_add(millis(delay));
            shared.queue.reschedule(lease, &retried, at).await.map(|()| "retry")
        }
        Outcome::Wait { reason, after } if !shared.retry.is_too_old(&current, now_ms().saturating_add(millis(after))) => {
            tracing::info!(%reason, run_in = ?after, "the job waits (no attempt spent)");
            let at = now_ms().saturating_add(millis(after));
            shared.queue.reschedule(lease, &current, at).await.map(|()| "wait")
        }
        Outcome::Retry { reason, .. } | Outcome::Wait { reason, .. } | Outcome::Dead { reason } => {
            tracing::error!(%reason, "job failed for good; kept as a dead letter");
            let dead = DeadLetter { envelope: current, reason, buried_ms: now_ms() };
            shared.queue.bury(lease, dead).await.map(|()| "dead")
        }
    };
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(QueueError::LeaseLost(lane)) => {
            tracing::warn!(%lane, "the job's lease was lost (it ran longer than the lease); another worker owns the conversation now");
            "lease_lost"
        }
        Err(error) => {
            tracing::error!(%error, "could not record the job's outcome; it runs again when its lease expires");
            "unrecorded"
        }
    };
    metrics::counter!("switchboard_jobs_finished_total", "tenant" => lease.tenant.clone(), "outcome" => outcome).increment(1);
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Saves a handler's progress as the lane's head job.
struct LeaseProgress {
    queue: Arc<dyn QueueBackend>,
    lease: Lease,
    current: Mutex<Envelope>,
}

#[async_trait]
impl Progress for LeaseProgress {
    async fn save(&self, job: Job, dead: Option<(Job, String)>) -> Result<(), QueueError> {
        let previous = self.current.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // A new phase (the replies are decided) gets a fresh retry budget.
        let phase_changed = previous.job.kind() != job.kind();
        let updated = Envelope { attempt: if phase_changed { 0 } else { previous.attempt }, job, ..previous.clone() };
        let dead = dead.map(|(job, reason)| DeadLetter { envelope: Envelope { job, ..previous }, reason, buried_ms: now_ms() });
        self.queue.checkpoint(&self.lease, &updated, dead).await?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = updated;
        Ok(())
    }
}
