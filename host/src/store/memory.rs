use super::{Quota, StateStore, StoreError, check_value, entry_bytes, expiry_ms, now_ms};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// State kept in process memory; lost on restart.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// scope prefix → (keys, bytes) of the entries stored with `set_within`.
    usage: HashMap<String, (u64, u64)>,
}

struct Entry {
    expires: u64,
    value: Vec<u8>,
    /// The quota scope the entry counts against, if any.
    scope: Option<String>,
}

impl Inner {
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        if let Some(scope) = &entry.scope {
            self.release(scope, entry_bytes(key, entry.value.len()));
        }
        Some(entry)
    }

    fn release(&mut self, scope: &str, bytes: u64) {
        if let Some((keys, used)) = self.usage.get_mut(scope) {
            *keys = keys.saturating_sub(1);
            *used = used.saturating_sub(bytes);
            if *keys == 0 {
                self.usage.remove(scope);
            }
        }
    }
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut inner = self.lock();
        match inner.entries.get(key) {
            Some(entry) if entry.expires <= now_ms() => {
                inner.remove(key);
                Ok(None)
            }
            Some(entry) => Ok(Some(entry.value.clone())),
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        check_value(value)?;
        let mut inner = self.lock();
        inner.remove(key);
        inner.entries.insert(key.to_string(), Entry { expires: expiry_ms(ttl), value: value.to_vec(), scope: None });
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn set_within(&self, scope: &str, key: &str, value: &[u8], ttl: Duration, quota: Quota) -> Result<(), StoreError> {
        check_value(value)?;
        let mut inner = self.lock();
        let now = now_ms();
        let replaced = match inner.entries.get(key) {
            // An expired entry no longer counts: drop it first.
            Some(entry) if entry.expires <= now => {
                inner.remove(key);
                0
            }
            Some(entry) if entry.scope.is_some() => entry_bytes(key, entry.value.len()),
            _ => 0,
        };
        let (keys, bytes) = inner.usage.get(scope).copied().unwrap_or_default();
        let (keys, bytes) = if replaced > 0 { (keys, bytes.saturating_sub(replaced)) } else { (keys + 1, bytes) };
        let bytes = bytes + entry_bytes(key, value.len());
        quota.admits(keys, bytes)?;
        inner.entries.insert(key.to_string(), Entry { expires: expiry_ms(ttl), value: value.to_vec(), scope: Some(scope.to_string()) });
        inner.usage.insert(scope.to_string(), (keys, bytes));
        Ok(())
    }

    async fn delete_within(&self, _scope: &str, key: &str) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn purge_expired(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        let mut inner = self.lock();
        let expired: Vec<String> = inner.entries.iter().filter(|(_, entry)| entry.expires <= now).map(|(key, _)| key.clone()).collect();
        for key in &expired {
            inner.remove(key);
        }
        Ok(expired.len())
    }
}
