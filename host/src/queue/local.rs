//! Lanes in process memory; with the embedded store every change is also
//! written to redb before it takes effect, so a restart (even after
//! `kill -9`) finds every accepted job again. Leases live in memory only:
//! after a restart every lane is free.

use super::{Batch, DeadLetter, Enqueued, Envelope, Lease, QueueBackend, QueueError, QueueStats, decode, encode, now_ms};
use crate::store::Redb;
use crate::store::failed;
use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// (lane, seq) → envelope
const JOBS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("queue_jobs");
/// dedupe key → expiry (ms since the Unix epoch)
const DEDUPE: TableDefinition<&str, u64> = TableDefinition::new("queue_dedupe");
/// dead letter id → dead letter
const DEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("queue_dead");

/// The single-instance queue backend (memory or embedded store).
pub struct LocalQueue {
    lanes: Mutex<Lanes>,
    journal: Option<Redb>,
    work: Notify,
}

#[derive(Default)]
struct Lanes {
    lanes: HashMap<String, Lane>,
    /// Per tenant: (ready at, lane) of lanes that are neither empty nor leased.
    ready: HashMap<String, BTreeSet<(u64, String)>>,
    dedupe: HashMap<String, u64>,
    dead: BTreeMap<String, DeadLetter>,
    next_seq: u64,
    next_token: u64,
}

#[derive(Default)]
struct Lane {
    tenant: String,
    jobs: BTreeMap<u64, Envelope>,
    /// The lease token while a worker holds the lane.
    leased: Option<String>,
    /// When the lane is in `ready`, its time there.
    ready_at: Option<u64>,
}

impl Lanes {
    fn lane(&mut self, lane: &str) -> &mut Lane {
        self.lanes.entry(lane.to_string()).or_default()
    }

    /// Put the lane in the ready set at `at` if it has work and no worker.
    fn mark_ready(&mut self, lane_id: &str, at: u64) {
        let Some(lane) = self.lanes.get_mut(lane_id) else { return };
        if lane.leased.is_some() || lane.ready_at.is_some() || lane.jobs.is_empty() {
            if lane.jobs.is_empty() && lane.leased.is_none() {
                self.lanes.remove(lane_id);
            }
            return;
        }
        lane.ready_at = Some(at);
        let tenant = lane.tenant.clone();
        self.ready.entry(tenant).or_default().insert((at, lane_id.to_string()));
    }

    fn insert(&mut self, envelope: Envelope) {
        let lane_id = envelope.lane.clone();
        let lane = self.lane(&lane_id);
        lane.tenant = envelope.tenant.clone();
        lane.jobs.insert(envelope.seq, envelope);
        self.mark_ready(&lane_id, now_ms());
    }

    /// Check the lease and return the lane's head seq.
    fn owned(&mut self, lease: &Lease) -> Result<u64, QueueError> {
        let lane = self.lanes.get(&lease.lane).filter(|lane| lane.leased.as_deref() == Some(&lease.token));
        let head = lane.and_then(|lane| lane.jobs.keys().next().copied());
        head.ok_or_else(|| QueueError::LeaseLost(lease.lane.clone()))
    }

    fn unlease(&mut self, lane_id: &str, at: u64) {
        if let Some(lane) = self.lanes.get_mut(lane_id) {
            lane.leased = None;
        }
        self.mark_ready(lane_id, at);
    }

    fn is_duplicate(&self, key: &str, now: u64) -> bool {
        self.dedupe.get(key).is_some_and(|expires| *expires > now)
    }
}

impl LocalQueue {
    /// Jobs in memory only: lost when the process stops.
    pub fn in_memory() -> Self {
        Self { lanes: Mutex::new(Lanes::default()), journal: None, work: Notify::new() }
    }

    /// Jobs journaled to the embedded store; loads what a previous run left.
    pub async fn persistent(redb: Redb) -> Result<Self, crate::store::StoreError> {
        redb.write(|txn| {
            txn.open_table(JOBS).map_err(failed)?;
            txn.open_table(DEDUPE).map_err(failed)?;
            txn.open_table(DEAD).map_err(failed)?;
            Ok(())
        })
        .await?;
        let lanes = redb.read(load).await?;
        let pending: usize = lanes.lanes.values().map(|lane| lane.jobs.len()).sum();
        if pending > 0 {
            tracing::info!(jobs = pending, lanes = lanes.lanes.len(), "resuming jobs accepted before the restart");
        }
        Ok(Self { lanes: Mutex::new(lanes), journal: Some(redb), work: Notify::new() })
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Write to the journal (a no-op in memory).
    async fn journal(&self, work: impl FnOnce(&redb::WriteTransaction) -> Result<(), crate::store::StoreError> + Send + 'static) -> Result<(), QueueError> {
        match &self.journal {
            Some(redb) => redb.write(work).await.map_err(|e| QueueError::Unavailable(e.to_string())),
            None => Ok(()),
        }
    }

    /// Save the lane's head job under its seq.
    async fn journal_head(&self, envelope: &Envelope) -> Result<(), QueueError> {
        if self.journal.is_none() {
            return Ok(());
        }
        let (lane, seq, bytes) = (envelope.lane.clone(), envelope.seq, encode(envelope)?);
        self.journal(move |txn| {
            txn.open_table(JOBS).map_err(failed)?.insert((lane.as_str(), seq), bytes.as_slice()).map_err(failed)?;
            Ok(())
        })
        .await
    }
}

fn load(txn: &redb::ReadTransaction) -> Result<Lanes, crate::store::StoreError> {
    let mut lanes = Lanes::default();
    for entry in txn.open_table(JOBS).map_err(failed)?.iter().map_err(failed)? {
        let (key, value) = entry.map_err(failed)?;
        let mut envelope: Envelope = decode(value.value()).map_err(failed)?;
        envelope.seq = key.value().1;
        lanes.next_seq = lanes.next_seq.max(envelope.seq + 1);
        lanes.insert(envelope);
    }
    let now = now_ms();
    for entry in txn.open_table(DEDUPE).map_err(failed)?.iter().map_err(failed)? {
        let (key, expires) = entry.map_err(failed)?;
        if expires.value() > now {
            lanes.dedupe.insert(key.value().to_string(), expires.value());
        }
    }
    for entry in txn.open_table(DEAD).map_err(failed)?.iter().map_err(failed)? {
        let (key, value) = entry.map_err(failed)?;
        lanes.dead.insert(key.value().to_string(), decode(value.value()).map_err(failed)?);
    }
    Ok(lanes)
}

#[async_trait]
impl QueueBackend for LocalQueue {
    async fn enqueue(&self, batch: Batch) -> Result<Enqueued, QueueError> {
        let now = now_ms();
        let expires = now.saturating_add(u64::try_from(batch.dedupe_ttl.as_millis()).unwrap_or(u64::MAX));
        let mut accepted = Vec::new();
        let mut keys = Vec::new();
        let mut outcome = Enqueued::default();
        {
            let mut lanes = self.lanes();
            for mut item in batch.items {
                if let Some(key) = &item.dedupe_key {
                    if lanes.is_duplicate(key, now) || keys.contains(key) {
                        outcome.duplicates += 1;
                        continue;
                    }
                    keys.push(key.clone());
                }
                item.envelope.seq = lanes.next_seq;
                lanes.next_seq += 1;
                accepted.push(item.envelope);
            }
            // Reserve the keys now so a concurrent copy of this webhook is a duplicate.
            for key in &keys {
                lanes.dedupe.insert(key.clone(), expires);
            }
        }
        outcome.accepted = accepted.len();
        if accepted.is_empty() {
            return Ok(outcome);
        }
        let rows = accepted.iter().map(|e| Ok((e.lane.clone(), e.seq, encode(e)?))).collect::<Result<Vec<_>, QueueError>>()?;
        let journal_keys = keys.clone();
        let written = self
            .journal(move |txn| {
                let mut jobs = txn.open_table(JOBS).map_err(failed)?;
                for (lane, seq, bytes) in &rows {
                    jobs.insert((lane.as_str(), *seq), bytes.as_slice()).map_err(failed)?;
                }
                let mut dedupe = txn.open_table(DEDUPE).map_err(failed)?;
                for key in &journal_keys {
                    dedupe.insert(key.as_str(), expires).map_err(failed)?;
                }
                Ok(())
            })
            .await;
        let mut lanes = self.lanes();
        if let Err(error) = written {
            for key in &keys {
                lanes.dedupe.remove(key);
            }
            return Err(error);
        }
        for envelope in accepted {
            lanes.insert(envelope);
        }
        drop(lanes);
        self.work.notify_one();
        Ok(outcome)
    }

    async fn claim(&self, tenant: &str, max: usize, _lease: Duration) -> Result<Vec<Lease>, QueueError> {
        let now = now_ms();
        let mut lanes = self.lanes();
        let Lanes { lanes: all, ready, next_token, .. } = &mut *lanes;
        let Some(ready) = ready.get_mut(tenant) else { return Ok(Vec::new()) };
        let mut claimed = Vec::new();
        while claimed.len() < max {
            let Some((at, lane_id)) = ready.first().cloned() else { break };
            if at > now {
                break;
            }
            ready.pop_first();
            let Some(lane) = all.get_mut(&lane_id) else { continue };
            lane.ready_at = None;
            let Some(head) = lane.jobs.values().next().cloned() else { continue };
            *next_token += 1;
            let token = next_token.to_string();
            lane.leased = Some(token.clone());
            claimed.push(Lease { lane: lane_id, tenant: tenant.to_string(), token, envelope: head });
        }
        Ok(claimed)
    }

    async fn checkpoint(&self, lease: &Lease, envelope: &Envelope, dead: Option<DeadLetter>) -> Result<(), QueueError> {
        let seq = self.lanes().owned(lease)?;
        let mut envelope = envelope.clone();
        envelope.seq = seq;
        if let Some(dead) = &dead {
            let (id, bytes) = (dead.envelope.id.clone(), serde_json::to_vec(dead).map_err(|e| QueueError::Unavailable(e.to_string()))?);
            self.journal(move |txn| {
                txn.open_table(DEAD).map_err(failed)?.insert(id.as_str(), bytes.as_slice()).map_err(failed)?;
                Ok(())
            })
            .await?;
        }
        self.journal_head(&envelope).await?;
        let mut lanes = self.lanes();
        if let Some(dead) = dead {
            lanes.dead.insert(dead.envelope.id.clone(), dead);
        }
        if let Some(lane) = lanes.lanes.get_mut(&lease.lane) {
            lane.jobs.insert(seq, envelope);
        }
        Ok(())
    }

    async fn complete(&self, lease: &Lease) -> Result<(), QueueError> {
        let seq = self.lanes().owned(lease)?;
        let lane = lease.lane.clone();
        self.journal(move |txn| {
            txn.open_table(JOBS).map_err(failed)?.remove((lane.as_str(), seq)).map_err(failed)?;
            Ok(())
        })
        .await?;
        let mut lanes = self.lanes();
        if let Some(lane) = lanes.lanes.get_mut(&lease.lane) {
            lane.jobs.remove(&seq);
        }
        lanes.unlease(&lease.lane, now_ms());
        drop(lanes);
        self.work.notify_one();
        Ok(())
    }

    async fn reschedule(&self, lease: &Lease, envelope: &Envelope, at_ms: u64) -> Result<(), QueueError> {
        let seq = self.lanes().owned(lease)?;
        let mut envelope = envelope.clone();
        envelope.seq = seq;
        self.journal_head(&envelope).await?;
        let mut lanes = self.lanes();
        if let Some(lane) = lanes.lanes.get_mut(&lease.lane) {
            lane.jobs.insert(seq, envelope);
        }
        lanes.unlease(&lease.lane, at_ms);
        Ok(())
    }

    async fn bury(&self, lease: &Lease, dead: DeadLetter) -> Result<(), QueueError> {
        let seq = self.lanes().owned(lease)?;
        let (lane, id) = (lease.lane.clone(), dead.envelope.id.clone());
        let bytes = serde_json::to_vec(&dead).map_err(|e| QueueError::Unavailable(e.to_string()))?;
        self.journal(move |txn| {
            txn.open_table(JOBS).map_err(failed)?.remove((lane.as_str(), seq)).map_err(failed)?;
            txn.open_table(DEAD).map_err(failed)?.insert(id.as_str(), bytes.as_slice()).map_err(failed)?;
            Ok(())
        })
        .await?;
        let mut lanes = self.lanes();
        if let Some(lane) = lanes.lanes.get_mut(&lease.lane) {
            lane.jobs.remove(&seq);
        }
        lanes.dead.insert(dead.envelope.id.clone(), dead);
        lanes.unlease(&lease.lane, now_ms());
        drop(lanes);
        self.work.notify_one();
        Ok(())
    }

    async fn release(&self, lease: &Lease, at_ms: u64) -> Result<(), QueueError> {
        let mut lanes = self.lanes();
        lanes.owned(lease)?;
        lanes.unlease(&lease.lane, at_ms);
        Ok(())
    }

    async fn renew(&self, _leases: &[Lease], _lease: Duration) -> Result<(), QueueError> {
        Ok(())
    }

    async fn reclaim_expired(&self) -> Result<usize, QueueError> {
        Ok(0)
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let lanes = self.lanes();
        let now = now_ms();
        let jobs = lanes.lanes.values().flat_map(|lane| lane.jobs.values());
        let (depth, oldest) = jobs.fold((0u64, now), |(depth, oldest), job| (depth + 1, oldest.min(job.created_ms)));
        Ok(QueueStats { depth, oldest_age_ms: now.saturating_sub(oldest), dead_letters: lanes.dead.len() as u64 })
    }

    async fn dead_letters(&self, connector: Option<&str>) -> Result<Vec<DeadLetter>, QueueError> {
        let lanes = self.lanes();
        let mut dead: Vec<DeadLetter> = lanes.dead.values().filter(|d| connector.is_none_or(|c| d.envelope.job.connector() == c)).cloned().collect();
        dead.sort_by_key(|d| d.buried_ms);
        Ok(dead)
    }

    async fn replay(&self, id: &str) -> Result<bool, QueueError> {
        let mut envelope = {
            let mut lanes = self.lanes();
            let Some(dead) = lanes.dead.get(id) else { return Ok(false) };
            let mut envelope = dead.envelope.clone();
            envelope.seq = lanes.next_seq;
            lanes.next_seq += 1;
            envelope
        };
        envelope.attempt = 0;
        envelope.created_ms = now_ms();
        envelope.last_error = None;
        let (id_owned, lane, seq, bytes) = (id.to_string(), envelope.lane.clone(), envelope.seq, encode(&envelope)?);
        self.journal(move |txn| {
            txn.open_table(DEAD).map_err(failed)?.remove(id_owned.as_str()).map_err(failed)?;
            txn.open_table(JOBS).map_err(failed)?.insert((lane.as_str(), seq), bytes.as_slice()).map_err(failed)?;
            Ok(())
        })
        .await?;
        let mut lanes = self.lanes();
        if lanes.dead.remove(id).is_none() {
            return Ok(false);
        }
        lanes.insert(envelope);
        drop(lanes);
        self.work.notify_one();
        Ok(true)
    }

    async fn delete_dead(&self, id: &str) -> Result<bool, QueueError> {
        if !self.lanes().dead.contains_key(id) {
            return Ok(false);
        }
        let id_owned = id.to_string();
        self.journal(move |txn| {
            txn.open_table(DEAD).map_err(failed)?.remove(id_owned.as_str()).map_err(failed)?;
            Ok(())
        })
        .await?;
        Ok(self.lanes().dead.remove(id).is_some())
    }

    async fn purge_expired(&self) -> Result<usize, QueueError> {
        let now = now_ms();
        let removed: Vec<String> = {
            let mut lanes = self.lanes();
            let expired: Vec<String> = lanes.dedupe.iter().filter(|(_, e)| **e <= now).map(|(k, _)| k.clone()).collect();
            for key in &expired {
                lanes.dedupe.remove(key);
            }
            expired
        };
        let count = removed.len();
        self.journal(move |txn| {
            let mut table = txn.open_table(DEDUPE).map_err(failed)?;
            table.retain(|_, expires| expires > now).map_err(failed)?;
            Ok(())
        })
        .await?;
        Ok(count)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.work.notified()).await;
    }
}
