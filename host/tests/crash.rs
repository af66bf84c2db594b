//! Crashes, restarts and clusters with the real `switchboard` binary as a
//! child process, against the fake Bitrix24 and Dify of the test crate.
//!
//! What must hold: every webhook that got a 2xx is answered exactly once at
//! the platform — after `kill -9` mid-burst and a restart (embedded store
//! and Redis), after SIGTERM (graceful), and with two instances on one
//! Redis when one of them is killed. Order per conversation is kept.

use futures::StreamExt as _;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use switchboard_tests::bitrix_events::{self, EventParams};
use switchboard_tests::child::free_port;
use switchboard_tests::harness::{HostConfig, bitrix_channel, dify_provider};
use switchboard_tests::{ChildHost, FakeBitrix, FakeDify};

/// Bound for every reply of a burst to arrive.
const DRAIN: Duration = Duration::from_secs(180);

/// Start this package's binary as a child process.
async fn start_host(config: &str, dir: &Path, name: &str) -> ChildHost {
    ChildHost::start(Path::new(env!("CARGO_BIN_EXE_switchboard")), config, dir, name).await
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn unique_namespace() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("crash{}x{nanos}", std::process::id())
}

/// A burst: `conversations` chats with `per_conversation` messages each.
struct Burst {
    bitrix: FakeBitrix,
    dify: FakeDify,
    /// Webhook bodies in posting order, with the reply each must get.
    webhooks: Vec<(String, String)>,
    conversations: usize,
}

impl Burst {
    async fn new(conversations: u64, per_conversation: u64) -> Burst {
        let bitrix = FakeBitrix::start().await;
        let dify = FakeDify::start().await;
        let mut webhooks = Vec::new();
        for k in 0..per_conversation {
            for c in 0..conversations {
                let text = format!("c{c} m{k}");
                let mut p = EventParams::private(&bitrix.client_endpoint()).with_message(&text);
                p.dialog_id = (10_000 + c).to_string();
                p.user_id = 10_000 + c;
                webhooks.push((bitrix_events::message_add(&p), format!("Dify says: {text}")));
            }
        }
        Burst { bitrix, dify, webhooks, conversations: conversations as usize }
    }

    fn config(&self, store: &str) -> HostConfig {
        let mut config = HostConfig::default().retry(10, 100).sandbox(64, 30_000);
        config.store = store.to_string();
        config.connector("support", &bitrix_channel(&self.bitrix), &dify_provider(&self.dify, "chatflow"))
    }

    /// Post every webhook (32 at a time) to `hosts` round-robin; every one
    /// must get 200. Like a platform, a conversation's next message is sent
    /// only after its previous one was acknowledged (one wave per message).
    async fn post_all(&self, hosts: &[&ChildHost]) {
        for (wave, webhooks) in self.webhooks.chunks(self.conversations).enumerate() {
            self.post_wave(hosts, wave * self.conversations, webhooks).await;
        }
    }

    async fn post_wave(&self, hosts: &[&ChildHost], offset: usize, webhooks: &[(String, String)]) {
        let client = reqwest::Client::new();
        let posts = webhooks.iter().enumerate().map(|(i, (body, _))| {
            let i = offset + i;
            let url = format!("{}/hooks/support", hosts[i % hosts.len()].url);
            let client = client.clone();
            let body = body.clone();
            async move {
                let response = client.post(url).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap();
                assert_eq!(response.status(), 200, "webhook {i} not accepted: {}", response.text().await.unwrap_or_default());
            }
        });
        futures::stream::iter(posts).buffer_unordered(32).collect::<Vec<()>>().await;
    }

    /// Wait until the number of delivered replies stops changing for `quiet`.
    async fn wait_quiet(&self, quiet: Duration) -> usize {
        let mut last = self.bitrix.delivered_texts().len();
        loop {
            tokio::time::sleep(quiet).await;
            let now = self.bitrix.delivered_texts().len();
            if now == last {
                return now;
            }
            last = now;
        }
    }

    /// Every webhook answered exactly once, each conversation in order.
    async fn assert_exactly_once_in_order(&self) {
        let total = self.webhooks.len();
        self.bitrix.wait_for_delivered(total, DRAIN).await;
        self.wait_quiet(Duration::from_millis(1500)).await;
        let delivered = self.bitrix.delivered_texts();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for text in &delivered {
            *counts.entry(text.as_str()).or_default() += 1;
        }
        let missing: Vec<&str> = self.webhooks.iter().map(|(_, r)| r.as_str()).filter(|r| !counts.contains_key(r)).collect();
        let twice: Vec<(&&str, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(missing.is_empty(), "{} acknowledged webhook(s) never answered, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
        assert!(twice.is_empty(), "{} repl(ies) delivered more than once, e.g. {:?}", twice.len(), &twice[..twice.len().min(5)]);
        assert_eq!(delivered.len(), total, "only the expected replies");
        let mut next: HashMap<String, u64> = HashMap::new();
        for text in &delivered {
            let body = text.trim_start_matches("Dify says: ");
            let (conversation, message) = body.split_once(' ').unwrap();
            let k: u64 = message.trim_start_matches('m').parse().unwrap();
            let expected = next.entry(conversation.to_string()).or_default();
            assert_eq!(k, *expected, "conversation {conversation} answered out of order");
            *expected += 1;
        }
    }
}

/// 1,000 webhooks; part answered, then `kill -9` while the rest wait at
/// the provider; restart; everything answered exactly once. `queue` lines
/// go into the `[queue]` table.
async fn kill_9_mid_burst(store: &str, queue: &[&str], dir: &Path) {
    let burst = Burst::new(250, 4).await;
    let config = queue.iter().fold(burst.config(store), |config, line| config.queue(line)).render();
    let host = start_host(&config, dir, "first").await;
    burst.dify.hold();
    burst.post_all(&[&host]).await;
    // Let a good part through, then hold the provider and let deliveries settle.
    burst.dify.release();
    burst.bitrix.wait_for_delivered(300, DRAIN).await;
    burst.dify.hold();
    let before = burst.wait_quiet(Duration::from_millis(700)).await;
    assert!(before < burst.webhooks.len(), "the crash must hit unfinished work");
    host.kill();

    // On Redis the killed instance's leases expire and the new instance reclaims them.
    let host = start_host(&config, dir, "second").await;
    burst.dify.release();
    burst.assert_exactly_once_in_order().await;
    drop(host);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_on_the_embedded_store_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("embedded:{}", dir.path().join("data").display());
    kill_9_mid_burst(&store, &[], dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_on_redis_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A unique queue namespace keeps parallel runs apart on one Redis.
    let namespace = format!("namespace = \"{}\"", unique_namespace());
    kill_9_mid_burst(&redis_url(), &[&namespace, "lease_seconds = 3"], dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_redis_share_the_work_and_survive_one_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let burst = Burst::new(100, 4).await;
    let config = burst.config(&redis_url()).queue(&format!("namespace = \"{}\"", unique_namespace())).queue("lease_seconds = 3").render();
    let (a, b) = (start_host(&config, dir.path(), "a").await, start_host(&config, dir.path(), "b").await);
    burst.dify.set_response_delay(Duration::from_millis(100));
    burst.dify.hold();
    burst.post_all(&[&a, &b]).await;
    burst.dify.release();
    burst.bitrix.wait_for_delivered(100, DRAIN).await;
    burst.dify.hold();
    burst.wait_quiet(Duration::from_millis(700)).await;
    a.kill();
    burst.dify.release();
    burst.assert_exactly_once_in_order().await;
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_running_jobs_exits_0_and_the_next_start_resumes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("embedded:{}", dir.path().join("data").display());
    let burst = Burst::new(20, 3).await;
    let config = burst.config(&store).queue("shutdown_grace_seconds = 20").render();
    let host = start_host(&config, dir.path(), "first").await;
    burst.dify.set_response_delay(Duration::from_millis(300));
    burst.post_all(&[&host]).await;
    burst.dify.wait_for_requests(20, Duration::from_secs(30)).await;
    let status = host.terminate();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let delivered = burst.bitrix.delivered_texts().len();
    assert!(delivered >= 20, "jobs running at SIGTERM were finished, not dropped ({delivered} delivered)");
    let host = start_host(&config, dir.path(), "second").await;
    burst.assert_exactly_once_in_order().await;
    drop(host);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_on_the_same_embedded_store_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("embedded:{}", dir.path().join("data").display());
    let burst = Burst::new(1, 1).await;
    let config = burst.config(&store).render();
    let _first = start_host(&config, dir.path(), "first").await;
    let path = dir.path().join("second.toml");
    std::fs::write(&path, config.replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{}\"", free_port()))).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard")).args(["serve", "--config"]).arg(&path).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already in use by another host instance") && stderr.contains("redis"), "{stderr}");
}
