use super::{Quota, StateStore, StoreError, check_value, entry_bytes, expiry_ms, now_ms, scope_of};
use async_trait::async_trait;
use redb::{Database, ReadableDatabase as _, ReadableTable as _, Table, TableDefinition, WriteTransaction};
use std::any::Any;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::oneshot;

/// key → (expiry in ms since the Unix epoch, value)
const ENTRIES: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("state");

/// scope prefix → (keys, bytes) of the entries stored with `set_within`.
/// Expired entries count until [`EmbeddedStore::purge_expired`] removes them.
const USAGE: TableDefinition<&str, (u64, u64)> = TableDefinition::new("state_usage");

/// Write transactions waiting at most this many to share one commit.
const MAX_GROUP: usize = 512;

/// One redb database file with a single writer thread that commits
/// concurrent writes together (group commit): every write is durable when
/// its future resolves, and a burst of writes costs one `fsync`, not one each.
#[derive(Clone)]
pub struct Redb {
    db: Arc<Database>,
    writer: mpsc::Sender<PendingWrite>,
}

type Output = Box<dyn Any + Send>;

/// A write to run inside the writer's transaction.
type Apply = Box<dyn FnOnce(&WriteTransaction) -> Result<Output, StoreError> + Send>;

struct PendingWrite {
    apply: Apply,
    done: oneshot::Sender<Result<Output, StoreError>>,
}

impl Redb {
    /// Open or create `<dir>/state.redb`. A second process on the same file
    /// is refused: the embedded store serves one host instance.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create store directory {}: {e}", dir.display()))?;
        let path = dir.join("state.redb");
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => anyhow::anyhow!(
                "the embedded store {} is already in use by another host instance; the embedded store serves \
                 one instance: stop the other one, or use `store = \"redis://…\"` to run several",
                path.display()
            ),
            other => anyhow::anyhow!("cannot open {}: {other}", path.display()),
        })?;
        let db = Arc::new(db);
        let (writer, pending) = mpsc::channel::<PendingWrite>();
        let thread_db = Arc::clone(&db);
        std::thread::Builder::new().name("switchboard-redb".into()).spawn(move || commit_loop(&thread_db, &pending))?;
        Ok(Self { db, writer })
    }

    /// Run `work` in a write transaction shared with other writes; resolves
    /// once the transaction is durably committed. `work` must validate
    /// before it writes: an error does not undo its partial writes.
    pub async fn write<R: Send + 'static>(&self, work: impl FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static) -> Result<R, StoreError> {
        let (done, result) = oneshot::channel();
        let apply = Box::new(move |txn: &WriteTransaction| work(txn).map(|value| Box::new(value) as Output));
        self.writer.send(PendingWrite { apply, done }).map_err(|_| StoreError::Unavailable("the store writer stopped".into()))?;
        let output = result.await.map_err(|_| StoreError::Unavailable("the store writer stopped".into()))??;
        Ok(*output.downcast::<R>().expect("a write returns the type it was given"))
    }

    /// Run `work` on a read snapshot, off the async runtime.
    pub async fn read<R: Send + 'static>(&self, work: impl FnOnce(&redb::ReadTransaction) -> Result<R, StoreError> + Send + 'static) -> Result<R, StoreError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(failed)?;
            work(&txn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }
}

fn commit_loop(db: &Database, pending: &mpsc::Receiver<PendingWrite>) {
    while let Ok(first) = pending.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match pending.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        commit_group(db, group);
    }
}

fn commit_group(db: &Database, group: Vec<PendingWrite>) {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(error) => {
            for write in group {
                let _ = write.done.send(Err(failed(&error)));
            }
            return;
        }
    };
    let mut results = Vec::with_capacity(group.len());
    for write in group {
        results.push(((write.apply)(&txn), write.done));
    }
    match txn.commit() {
        Ok(()) => {
            for (result, done) in results {
                let _ = done.send(result);
            }
        }
        Err(error) => {
            for (_, done) in results {
                let _ = done.send(Err(failed(&error)));
            }
        }
    }
}

/// A redb error as a store error.
pub fn failed(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// State in the embedded redb database. Survives restarts; expired entries
/// are dropped on read and by [`EmbeddedStore::purge_expired`], which the
/// host runs periodically.
#[derive(Clone)]
pub struct EmbeddedStore {
    redb: Redb,
}

impl EmbeddedStore {
    /// The state tables in `redb`.
    pub async fn open(redb: Redb) -> Result<Self, StoreError> {
        redb.write(|txn| {
            txn.open_table(ENTRIES).map_err(failed)?;
            txn.open_table(USAGE).map(drop).map_err(failed)
        })
        .await?;
        Ok(Self { redb })
    }

    /// Remove every expired entry; returns how many were removed.
    pub async fn purge_expired(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        self.redb
            .write(move |txn| {
                let mut table = txn.open_table(ENTRIES).map_err(failed)?;
                let mut usage = txn.open_table(USAGE).map_err(failed)?;
                let mut removed = 0;
                for entry in table.extract_if(|_, (expires, _)| expires <= now).map_err(failed)? {
                    let (key, value) = entry.map_err(failed)?;
                    let (key, (_, value)) = (key.value(), value.value());
                    if let Some(scope) = scope_of(key) {
                        release(&mut usage, scope, entry_bytes(key, value.len()))?;
                    }
                    removed += 1;
                }
                Ok(removed)
            })
            .await
    }
}

#[async_trait]
impl StateStore for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_string();
        self.redb
            .read(move |txn| {
                let table = txn.open_table(ENTRIES).map_err(failed)?;
                let entry = table.get(key.as_str()).map_err(failed)?;
                Ok(entry.and_then(|guard| {
                    let (expires, value) = guard.value();
                    (expires > now_ms()).then(|| value.to_vec())
                }))
            })
            .await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        check_value(value)?;
        let (key, value, expires) = (key.to_string(), value.to_vec(), expiry_ms(ttl));
        self.redb
            .write(move |txn| {
                txn.open_table(ENTRIES).map_err(failed)?.insert(key.as_str(), (expires, value.as_slice())).map_err(failed)?;
                Ok(())
            })
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_string();
        self.redb
            .write(move |txn| {
                txn.open_table(ENTRIES).map_err(failed)?.remove(key.as_str()).map_err(failed)?;
                Ok(())
            })
            .await
    }

    async fn set_within(&self, scope: &str, key: &str, value: &[u8], ttl: Duration, quota: Quota) -> Result<(), StoreError> {
        check_value(value)?;
        let (scope, key, value, expires) = (scope.to_string(), key.to_string(), value.to_vec(), expiry_ms(ttl));
        self.redb
            .write(move |txn| {
                let mut table = txn.open_table(ENTRIES).map_err(failed)?;
                let mut usage = txn.open_table(USAGE).map_err(failed)?;
                let replaced = table.get(key.as_str()).map_err(failed)?.map(|old| entry_bytes(&key, old.value().1.len()));
                let (keys, bytes) = usage.get(scope.as_str()).map_err(failed)?.map(|used| used.value()).unwrap_or_default();
                let (keys, bytes) = match replaced {
                    Some(old) => (keys, bytes.saturating_sub(old)),
                    None => (keys + 1, bytes),
                };
                let bytes = bytes + entry_bytes(&key, value.len());
                quota.admits(keys, bytes)?;
                table.insert(key.as_str(), (expires, value.as_slice())).map_err(failed)?;
                usage.insert(scope.as_str(), (keys, bytes)).map_err(failed)?;
                Ok(())
            })
            .await
    }

    async fn delete_within(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let (scope, key) = (scope.to_string(), key.to_string());
        self.redb
            .write(move |txn| {
                let mut table = txn.open_table(ENTRIES).map_err(failed)?;
                let removed = table.remove(key.as_str()).map_err(failed)?.map(|old| entry_bytes(&key, old.value().1.len()));
                if let Some(bytes) = removed {
                    release(&mut txn.open_table(USAGE).map_err(failed)?, &scope, bytes)?;
                }
                Ok(())
            })
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.redb.read(|_| Ok(())).await
    }

    async fn purge_expired(&self) -> Result<usize, StoreError> {
        EmbeddedStore::purge_expired(self).await
    }
}

/// Give one entry's share of `scope`'s quota back.
fn release(usage: &mut Table<&str, (u64, u64)>, scope: &str, bytes: u64) -> Result<(), StoreError> {
    let Some((keys, used)) = usage.get(scope).map_err(failed)?.map(|used| used.value()) else {
        return Ok(());
    };
    if keys <= 1 {
        usage.remove(scope).map_err(failed)?;
    } else {
        usage.insert(scope, (keys - 1, used.saturating_sub(bytes))).map_err(failed)?;
    }
    Ok(())
}
