//! One behaviour suite for every queue backend: in memory, on the embedded
//! store, on Redis (the server at `REDIS_URL`; the run fails loudly when it
//! is unreachable). Each Redis test uses its own namespace.

use super::*;
use crate::store::{Redb, RedisStore};

fn unique(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{}-{}-{n}", std::process::id(), now_ms())
}

fn job(conversation: &str, action: AdminAction) -> Job {
    Job::Admin { connector: "support".into(), conversation: conversation.into(), action }
}

fn item(tenant: &str, conversation: &str, action: AdminAction, key: Option<&str>) -> BatchItem {
    BatchItem { envelope: Envelope::new(tenant, job(conversation, action)), dedupe_key: key.map(str::to_string) }
}

fn batch(items: Vec<BatchItem>) -> Batch {
    Batch { items, dedupe_ttl: Duration::from_secs(60) }
}

fn action_of(lease: &Lease) -> AdminAction {
    match &lease.envelope.job {
        Job::Admin { action, .. } => *action,
        other => panic!("unexpected job {other:?}"),
    }
}

const LEASE: Duration = Duration::from_secs(30);

async fn a_lane_runs_its_jobs_one_at_a_time_in_order(queue: &dyn QueueBackend) {
    let tenant = unique("t");
    let items = [AdminAction::Handoff, AdminAction::Return, AdminAction::Reset].map(|a| item(&tenant, "c1", a, None));
    assert_eq!(queue.enqueue(batch(items.into())).await.unwrap(), Enqueued { accepted: 3, duplicates: 0 });
    let mut seen = Vec::new();
    for _ in 0..3 {
        let leases = queue.claim(&tenant, 10, LEASE).await.unwrap();
        assert_eq!(leases.len(), 1, "one lane, one job at a time");
        assert!(queue.claim(&tenant, 10, LEASE).await.unwrap().is_empty(), "a leased lane is not handed out twice");
        seen.push(action_of(&leases[0]));
        queue.complete(&leases[0]).await.unwrap();
    }
    assert_eq!(seen, [AdminAction::Handoff, AdminAction::Return, AdminAction::Reset]);
    assert!(queue.claim(&tenant, 10, LEASE).await.unwrap().is_empty());
}

async fn different_lanes_run_concurrently_and_tenants_apart(queue: &dyn QueueBackend) {
    let (tenant, other) = (unique("t"), unique("other"));
    let items = (0..5).map(|i| item(&tenant, &format!("c{i}"), AdminAction::Reset, None)).chain([item(&other, "c0", AdminAction::Reset, None)]);
    queue.enqueue(batch(items.collect())).await.unwrap();
    assert_eq!(queue.claim(&tenant, 3, LEASE).await.unwrap().len(), 3, "up to `max` lanes at once");
    assert_eq!(queue.claim(&tenant, 10, LEASE).await.unwrap().len(), 2);
    let theirs = queue.claim(&other, 10, LEASE).await.unwrap();
    assert_eq!(theirs.len(), 1, "each tenant's lanes are claimed separately");
    assert_eq!(theirs[0].tenant, other);
}

async fn duplicates_are_dropped_within_and_across_batches(queue: &dyn QueueBackend) {
    let tenant = unique("t");
    let key = unique("support:msg");
    let first = queue.enqueue(batch(vec![item(&tenant, "c1", AdminAction::Reset, Some(&key))])).await.unwrap();
    assert_eq!(first, Enqueued { accepted: 1, duplicates: 0 });
    let again = queue.enqueue(batch(vec![item(&tenant, "c1", AdminAction::Reset, Some(&key))])).await.unwrap();
    assert_eq!(again, Enqueued { accepted: 0, duplicates: 1 });
    let other = unique("support:msg");
    let twice = vec![
        item(&tenant, "c2", AdminAction::Reset, Some(&other)),
        item(&tenant, "c2", AdminAction::Reset, Some(&other)),
        item(&tenant, "c2", AdminAction::Return, None),
    ];
    assert_eq!(queue.enqueue(batch(twice)).await.unwrap(), Enqueued { accepted: 2, duplicates: 1 });
    assert_eq!(queue.claim(&tenant, 10, LEASE).await.unwrap().len(), 2, "one lane per conversation");
}

async fn a_rescheduled_lane_waits_and_nothing_else_does(queue: &dyn QueueBackend) {
    let tenant = unique("t");
    queue.enqueue(batch(vec![item(&tenant, "slow", AdminAction::Reset, None), item(&tenant, "slow", AdminAction::Return, None)])).await.unwrap();
    let lease = queue.claim(&tenant, 10, LEASE).await.unwrap().remove(0);
    let retried = Envelope { attempt: 1, last_error: Some("provider 503".into()), ..lease.envelope.clone() };
    queue.reschedule(&lease, &retried, now_ms() + 300).await.unwrap();
    queue.enqueue(batch(vec![item(&tenant, "fast", AdminAction::Reset, None)])).await.unwrap();
    let now = queue.claim(&tenant, 10, LEASE).await.unwrap();
    assert_eq!(now.len(), 1, "only the other conversation is ready");
    assert_eq!(now[0].envelope.job.conversation_id(), "fast");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let later = queue.claim(&tenant, 10, LEASE).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].envelope.attempt, 1, "the retry carries its attempt count");
    assert_eq!(later[0].envelope.last_error.as_deref(), Some("provider 503"));
    assert_eq!(action_of(&later[0]), AdminAction::Reset, "the failed job stays at the head of its lane");
}

async fn checkpoints_replace_the_head_job(queue: &dyn QueueBackend) {
    let tenant = unique("t");
    queue.enqueue(batch(vec![item(&tenant, "c1", AdminAction::Reset, None)])).await.unwrap();
    let lease = queue.claim(&tenant, 10, LEASE).await.unwrap().remove(0);
    let progressed = Envelope { job: job("c1", AdminAction::Handoff), ..lease.envelope.clone() };
    queue.checkpoint(&lease, &progressed, None).await.unwrap();
    queue.release(&lease, now_ms()).await.unwrap();
    let again = queue.claim(&tenant, 10, LEASE).await.unwrap().remove(0);
    assert_eq!(action_of(&again), AdminAction::Handoff, "a released lane resumes from the checkpoint");
    assert_eq!(again.envelope.id, lease.envelope.id);
}

async fn dead_letters_are_listed_replayed_and_deleted(queue: &dyn QueueBackend) {
    let tenant = unique("t");
    let conversation = unique("c");
    queue.enqueue(batch(vec![item(&tenant, &conversation, AdminAction::Reset, None), item(&tenant, &conversation, AdminAction::Return, None)])).await.unwrap();
    let lease = queue.claim(&tenant, 10, LEASE).await.unwrap().remove(0);
    let id = lease.envelope.id.clone();
    let dead = DeadLetter { envelope: Envelope { attempt: 4, ..lease.envelope.clone() }, reason: "gave up".into(), buried_ms: now_ms() };
    queue.bury(&lease, dead).await.unwrap();
    let next = queue.claim(&tenant, 10, LEASE).await.unwrap().remove(0);
    assert_eq!(action_of(&next), AdminAction::Return, "burying releases the lane to its next job");
    let listed = queue.dead_letters(Some("support")).await.unwrap();
    let letter = listed.iter().find(|d| d.envelope.id == id).expect("the dead letter is listed");
    assert_eq!(letter.reason, "gave up");
    assert!(queue.dead_letters(Some("another-connector")).await.unwrap().iter().all(|d| d.envelope.id != id));
    queue.complete(&next).await.unwrap();
    assert!(queue.replay(&id).await.unwrap());
    assert!(!queue.replay(&id).await.unwrap(), "a replayed letter is no longer dead");
    let replayed = queue.claim(&tenant, 10, LEASE).await.unwrap().remove(0);
    assert_eq!(replayed.envelope.attempt, 0, "a replay starts with fresh attempts");
    assert_eq!(action_of(&replayed), AdminAction::Reset);
    let dead = DeadLetter { envelope: replayed.envelope.clone(), reason: "again".into(), buried_ms: now_ms() };
    queue.bury(&replayed, dead).await.unwrap();
    assert!(queue.delete_dead(&id).await.unwrap());
    assert!(!queue.delete_dead(&id).await.unwrap());
    assert!(queue.dead_letters(None).await.unwrap().iter().all(|d| d.envelope.id != id));
}

async fn a_checkpoint_can_record_a_dead_letter(queue: &dyn QueueBackend) {
    let tenant = unique("t");
    queue.enqueue(batch(vec![item(&tenant, "c1", AdminAction::Reset, None)])).await.unwrap();
    let lease = queue.claim(&tenant, 10, LEASE).await.unwrap().remove(0);
    let dead = DeadLetter { envelope: lease.envelope.clone(), reason: "provider gave up".into(), buried_ms: now_ms() };
    let fallback = Envelope { job: job("c1", AdminAction::Return), ..lease.envelope.clone() };
    queue.checkpoint(&lease, &fallback, Some(dead)).await.unwrap();
    assert!(queue.dead_letters(None).await.unwrap().iter().any(|d| d.envelope.id == lease.envelope.id && d.reason == "provider gave up"));
    queue.complete(&lease).await.unwrap();
}

async fn stats_count_waiting_jobs(queue: &dyn QueueBackend) {
    let tenant = unique("t");
    let before = queue.stats().await.unwrap().depth;
    queue.enqueue(batch(vec![item(&tenant, "c1", AdminAction::Reset, None), item(&tenant, "c2", AdminAction::Reset, None)])).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().depth, before + 2);
}

async fn suite(queue: &dyn QueueBackend) {
    a_lane_runs_its_jobs_one_at_a_time_in_order(queue).await;
    different_lanes_run_concurrently_and_tenants_apart(queue).await;
    duplicates_are_dropped_within_and_across_batches(queue).await;
    a_rescheduled_lane_waits_and_nothing_else_does(queue).await;
    checkpoints_replace_the_head_job(queue).await;
    dead_letters_are_listed_replayed_and_deleted(queue).await;
    a_checkpoint_can_record_a_dead_letter(queue).await;
    stats_count_waiting_jobs(queue).await;
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn redis_queue(namespace: &str) -> RedisQueue {
    let store = RedisStore::connect(&redis_url()).await.expect("the queue tests need Redis at REDIS_URL");
    RedisQueue::new(store.connection(), namespace)
}

#[tokio::test]
async fn memory_queue_conforms() {
    suite(&LocalQueue::in_memory()).await;
}

#[tokio::test]
async fn embedded_queue_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let queue = LocalQueue::persistent(Redb::open(dir.path()).unwrap()).await.unwrap();
    suite(&queue).await;
}

#[tokio::test]
async fn redis_queue_conforms() {
    suite(&redis_queue(&unique("sbtest")).await).await;
}

#[tokio::test]
async fn embedded_queue_keeps_jobs_dedupe_and_dead_letters_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = "t";
    let (kept_id, dead_id) = {
        let queue = LocalQueue::persistent(Redb::open(dir.path()).unwrap()).await.unwrap();
        let items = vec![
            item(tenant, "done", AdminAction::Reset, Some("k-done")),
            item(tenant, "kept", AdminAction::Return, Some("k-kept")),
            item(tenant, "dead", AdminAction::Reset, None),
        ];
        queue.enqueue(batch(items)).await.unwrap();
        let leases = queue.claim(tenant, 10, LEASE).await.unwrap();
        let by = |c: &str| leases.iter().find(|l| l.envelope.job.conversation_id() == c).unwrap().clone();
        queue.complete(&by("done")).await.unwrap();
        let dead = by("dead");
        queue.bury(&dead, DeadLetter { envelope: dead.envelope.clone(), reason: "r".into(), buried_ms: now_ms() }).await.unwrap();
        // `kept` stays leased: a crash must not lose it.
        (by("kept").envelope.id, dead.envelope.id)
    };
    let queue = reopen(dir.path()).await;
    let leases = queue.claim(tenant, 10, LEASE).await.unwrap();
    assert_eq!(leases.len(), 1, "only the unfinished job is back: {leases:?}");
    assert_eq!(leases[0].envelope.id, kept_id);
    assert!(queue.dead_letters(None).await.unwrap().iter().any(|d| d.envelope.id == dead_id));
    let again = queue.enqueue(batch(vec![item(tenant, "done", AdminAction::Reset, Some("k-done"))])).await.unwrap();
    assert_eq!(again.duplicates, 1, "dedupe records survive the restart");
}

/// The writer thread lets go of the file shortly after the last handle is gone.
async fn reopen(dir: &std::path::Path) -> LocalQueue {
    for _ in 0..100 {
        if let Ok(redb) = Redb::open(dir) {
            return LocalQueue::persistent(redb).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the embedded store was not released");
}

#[tokio::test]
async fn redis_leases_expire_and_another_instance_takes_the_lane_over() {
    let namespace = unique("sbtest");
    let (crashed, survivor) = (redis_queue(&namespace).await, redis_queue(&namespace).await);
    crashed.enqueue(batch(vec![item("t", "c1", AdminAction::Reset, None), item("t", "c1", AdminAction::Return, None)])).await.unwrap();
    let lost = crashed.claim("t", 10, Duration::from_millis(500)).await.unwrap().remove(0);
    assert!(survivor.claim("t", 10, LEASE).await.unwrap().is_empty(), "a live lease is respected by other instances");
    assert_eq!(survivor.reclaim_expired().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(survivor.reclaim_expired().await.unwrap(), 1);
    let taken = survivor.claim("t", 10, LEASE).await.unwrap().remove(0);
    assert_eq!(taken.envelope.id, lost.envelope.id, "the unfinished job is the lane's head again");
    assert!(matches!(crashed.complete(&lost).await, Err(QueueError::LeaseLost(_))), "the old owner can no longer act");
    survivor.complete(&taken).await.unwrap();
    let next = survivor.claim("t", 10, LEASE).await.unwrap().remove(0);
    assert_eq!(action_of(&next), AdminAction::Return, "order is kept across the takeover");
}

#[tokio::test]
async fn redis_renewed_leases_do_not_expire() {
    let namespace = unique("sbtest");
    let queue = redis_queue(&namespace).await;
    queue.enqueue(batch(vec![item("t", "c1", AdminAction::Reset, None)])).await.unwrap();
    let lease = queue.claim("t", 10, Duration::from_millis(400)).await.unwrap().remove(0);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        queue.renew(std::slice::from_ref(&lease), Duration::from_millis(400)).await.unwrap();
        assert_eq!(queue.reclaim_expired().await.unwrap(), 0);
    }
    queue.complete(&lease).await.unwrap();
}
