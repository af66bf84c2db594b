use super::{StateStore, StoreError, check_value, expiry_ms, now_ms};
use async_trait::async_trait;
use redb::{Database, TableDefinition};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// key → (expiry in ms since the Unix epoch, value)
const ENTRIES: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("state");

/// State in an embedded redb database (`<dir>/state.redb`). Survives
/// restarts; expired entries are dropped on read and by [`EmbeddedStore::purge_expired`].
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

impl EmbeddedStore {
    /// Open or create the database in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create store directory {}: {e}", dir.display()))?;
        let path = dir.join("state.redb");
        let db = Database::create(&path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        let txn = db.begin_write()?;
        txn.open_table(ENTRIES)?;
        txn.commit()?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Remove every expired entry; returns how many were removed.
    pub fn purge_expired(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        let txn = self.db.begin_write().map_err(failed)?;
        let removed = {
            let mut table = txn.open_table(ENTRIES).map_err(failed)?;
            table.extract_if(|_, (expires, _)| expires <= now).map_err(failed)?.count()
        };
        txn.commit().map_err(failed)?;
        Ok(removed)
    }

    async fn blocking<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db)).await.map_err(|e| StoreError::Unavailable(e.to_string()))?
    }
}

fn failed(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

#[async_trait]
impl StateStore for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(failed)?;
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
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(failed)?;
            txn.open_table(ENTRIES).map_err(failed)?.insert(key.as_str(), (expires, value.as_slice())).map_err(failed)?;
            txn.commit().map_err(failed)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_string();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(failed)?;
            txn.open_table(ENTRIES).map_err(failed)?.remove(key.as_str()).map_err(failed)?;
            txn.commit().map_err(failed)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(|db| db.begin_read().map(drop).map_err(failed)).await
    }
}
