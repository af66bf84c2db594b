use super::{StateStore, StoreError, check_value, expiry_ms, now_ms};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// State kept in process memory; lost on restart.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, (u64, Vec<u8>)>>,
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut entries = self.entries.lock().expect("memory store lock poisoned");
        match entries.get(key) {
            Some((expires, _)) if *expires <= now_ms() => {
                entries.remove(key);
                Ok(None)
            }
            Some((_, value)) => Ok(Some(value.clone())),
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        check_value(value)?;
        let mut entries = self.entries.lock().expect("memory store lock poisoned");
        entries.insert(key.to_string(), (expiry_ms(ttl), value.to_vec()));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.entries.lock().expect("memory store lock poisoned").remove(key);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn purge_expired(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        let mut entries = self.entries.lock().expect("memory store lock poisoned");
        let before = entries.len();
        entries.retain(|_, (expires, _)| *expires > now);
        Ok(before - entries.len())
    }
}
