//! One behaviour suite, run against every backend. The Redis run needs the
//! server at `REDIS_URL` (default `redis://127.0.0.1:6379`) and fails loudly
//! when it is unreachable.

use super::*;

fn unique(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}:{}:{}:{n}", std::process::id(), now_ms())
}

async fn round_trip(store: &dyn StateStore) {
    let key = unique("round-trip");
    assert_eq!(store.get(&key).await.unwrap(), None);
    store.set(&key, b"conversation-1", Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"conversation-1"[..]));
    store.set(&key, b"conversation-2", Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"conversation-2"[..]));
    store.delete(&key).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    store.delete(&key).await.expect("deleting a missing key is not an error");
}

async fn expiry(store: &dyn StateStore) {
    let key = unique("expiry");
    store.set(&key, b"short-lived", Duration::from_millis(150)).await.unwrap();
    assert!(store.get(&key).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.get(&key).await.unwrap(), None, "entry must expire after its TTL");
}

async fn limits(store: &dyn StateStore) {
    let key = unique("limits");
    let too_big = vec![0u8; MAX_VALUE_BYTES + 1];
    assert!(matches!(store.set(&key, &too_big, Duration::from_secs(5)).await, Err(StoreError::Invalid(_))));
    store.ping().await.unwrap();
}

async fn scopes_are_isolated(store: &dyn StateStore) {
    let a = Scope { tenant: "tenant-a".into(), connector: "support".into(), plugin: "dify".into() };
    let b = Scope { tenant: "tenant-b".into(), ..a.clone() };
    let key = unique("scoped");
    store.set(&a.key(&key).unwrap(), b"a", Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.get(&b.key(&key).unwrap()).await.unwrap(), None, "another tenant must not see the entry");
    assert!(a.key("").is_err());
    assert!(a.key(&"k".repeat(MAX_KEY_BYTES + 1)).is_err());
}

async fn quotas_bound_each_scope(store: &dyn StateStore) {
    let scope = Scope { tenant: unique("quota").replace(':', "-"), connector: "support".into(), plugin: "dify".into() };
    let other = Scope { plugin: "typebot".into(), ..scope.clone() };
    let prefix = scope.prefix();
    let quota = Quota { max_keys: 3, max_bytes: 300 };
    let ttl = Duration::from_secs(60);
    let key = |n: u32| scope.key(&format!("k{n}")).unwrap();
    for n in 0..3 {
        store.set_within(&prefix, &key(n), b"v", ttl, quota).await.unwrap();
    }
    let refused = store.set_within(&prefix, &key(3), b"v", ttl, quota).await;
    assert!(matches!(refused, Err(StoreError::QuotaExceeded(ref m)) if m.contains("3 keys")), "{refused:?}");
    assert_eq!(store.get(&key(3)).await.unwrap(), None, "a refused write stores nothing");
    store.set_within(&prefix, &key(0), b"replaced", ttl, quota).await.expect("replacing a key does not add one");
    store.set_within(&other.prefix(), &other.key("k9").unwrap(), b"v", ttl, quota).await.expect("another scope has its own quota");

    store.delete_within(&prefix, &key(1)).await.unwrap();
    store.set_within(&prefix, &key(3), b"v", ttl, quota).await.expect("a deleted key gives its share back");

    let big = vec![b'x'; 290];
    let refused = store.set_within(&prefix, &key(0), &big, ttl, quota).await;
    assert!(matches!(refused, Err(StoreError::QuotaExceeded(ref m)) if m.contains("300 bytes")), "{refused:?}");

    // Entries that expired give their share back (once purged, where the
    // backend does not expire by itself).
    store.delete_within(&prefix, &key(3)).await.unwrap();
    store.set_within(&prefix, &key(4), b"v", Duration::from_millis(100), quota).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    store.purge_expired().await.unwrap();
    store.set_within(&prefix, &key(5), b"v", ttl, quota).await.expect("an expired entry no longer counts");
}

#[test]
fn a_key_names_its_scope() {
    let scope = Scope { tenant: "acme".into(), connector: "support".into(), plugin: "dify".into() };
    assert_eq!(scope_of(&scope.key("conversation:a:b").unwrap()), Some("sb:acme:support:dify:"));
    assert_eq!(scope_of("sb:acme:support"), None);
    assert_eq!(scope_of("other:a:b:c:d"), None);
}

async fn suite(store: &dyn StateStore) {
    round_trip(store).await;
    expiry(store).await;
    limits(store).await;
    scopes_are_isolated(store).await;
    quotas_bound_each_scope(store).await;
}

#[tokio::test]
async fn memory_backend() {
    suite(&MemoryStore::default()).await;
}

#[tokio::test]
async fn embedded_backend() {
    let dir = tempfile::tempdir().unwrap();
    suite(&EmbeddedStore::open(Redb::open(dir.path()).unwrap()).await.unwrap()).await;
}

#[tokio::test]
async fn embedded_backend_survives_reopen_and_purges_expired() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedStore::open(Redb::open(dir.path()).unwrap()).await.unwrap();
        store.set("kept", b"value", Duration::from_secs(60)).await.unwrap();
        store.set("gone", b"value", Duration::from_millis(1)).await.unwrap();
    }
    // The writer thread lets go of the file once its last handle is gone.
    let store = reopen(dir.path()).await;
    assert_eq!(store.get("kept").await.unwrap().as_deref(), Some(&b"value"[..]));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.purge_expired().await.unwrap(), 1);
}

async fn reopen(dir: &std::path::Path) -> EmbeddedStore {
    for _ in 0..100 {
        if let Ok(redb) = Redb::open(dir) {
            return EmbeddedStore::open(redb).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the embedded store was not released");
}

#[tokio::test]
async fn redis_backend() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let store = RedisStore::connect(&url).await.unwrap_or_else(|e| panic!("the Redis state tests need a Redis server at {url} (set REDIS_URL): {e:#}"));
    suite(&store).await;
}

#[tokio::test]
async fn open_understands_every_spec() {
    let dir = tempfile::tempdir().unwrap();
    assert!(open("memory", "sb").await.is_ok());
    assert!(open(&format!("embedded:{}", dir.path().display()), "sb").await.is_ok());
    let error = open("postgres://x", "sb").await.err().expect("unknown specs are rejected");
    assert!(error.to_string().contains("unknown store"));
}
