//! Load driver: the `switchboard` binary as a child process against the fake
//! Bitrix24 and Dify servers of the test crate, on loopback.
//!
//! * `cargo bench -p switchboard --bench load` — the full scenarios on the
//!   release build (figures in `docs/benchmarks.md`);
//! * `cargo test -p switchboard --bench load` — the same scenarios at smoke
//!   scale on the debug build (CI: they must run, nothing is timed).
//!
//! Scenarios, each measured in the same invocation:
//! 1. **slow provider**: N conversations posted at once, Dify answering after
//!    1 s: time until the last reply reaches Bitrix24, p50/p99 of
//!    webhook → reply latency, peak RSS of the host, Dify calls in flight;
//! 2. **throughput**: zero-latency fakes, C concurrent clients: webhooks
//!    acknowledged and replies delivered per second on the memory, embedded
//!    and Redis stores, CPU seconds per 1,000 webhooks, against an axum
//!    hello-world server (a child process too) driven by the same client;
//! 3. **fair share**: one host, two tenants. The quiet tenant's messages
//!    arrive at a steady rate (Bitrix24 → Dify, zero latency); p50/p99 of
//!    their webhook → reply latency is measured alone, then while a noisy
//!    tenant's channel (`slow-channel`, which sleeps past its
//!    `translate-in` deadline) is flooded by parallel webhooks whose
//!    senders retry after `Retry-After`, as platforms do;
//! 4. **hostile suite**: every hostile test component (`tests/components/`)
//!    at once, each on its own tenant: the outcome of each plugin's calls,
//!    the host's peak RSS, and the quiet tenant's p99 alone and meanwhile.
//!
//! Set `LOAD_ONLY=slow`, `throughput`, `fair` or `hostile` to run one of them.

use futures::StreamExt as _;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use switchboard_tests::bitrix_events::{self, EventParams};
use switchboard_tests::child::{ProcessStats, free_port};
use switchboard_tests::harness::{HostConfig, bitrix_channel, dify_provider, plugin_table};
use switchboard_tests::{ChildHost, FakeBitrix, FakeDify};

/// How big each scenario is.
struct Scale {
    name: &'static str,
    slow_conversations: usize,
    provider_latency: Duration,
    throughput_webhooks: usize,
    clients: usize,
    /// Fair share: the quiet tenant's messages per run, and their rate.
    quiet_messages: usize,
    quiet_per_second: u32,
    /// Fair share: parallel senders flooding the noisy tenant.
    flood_senders: usize,
    /// Hostile suite: messages sent to each hostile plugin at once.
    hostile_messages: usize,
}

const FULL: Scale = Scale {
    name: "full",
    slow_conversations: 1000,
    provider_latency: Duration::from_secs(1),
    throughput_webhooks: 5000,
    clients: 32,
    quiet_messages: 400,
    quiet_per_second: 40,
    flood_senders: 500,
    hostile_messages: 4,
};
const SMOKE: Scale = Scale {
    name: "smoke",
    slow_conversations: 20,
    provider_latency: Duration::from_millis(200),
    throughput_webhooks: 40,
    clients: 4,
    quiet_messages: 10,
    quiet_per_second: 20,
    flood_senders: 20,
    hostile_messages: 1,
};

/// Bound for every reply of a scenario to arrive.
const DRAIN: Duration = Duration::from_secs(300);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("hello-world") {
        return hello_world(args[2].parse().expect("a port"));
    }
    // `cargo bench` passes `--bench`; `cargo test` does not.
    let scale = if args.iter().any(|a| a == "--bench") { FULL } else { SMOKE };
    let only = std::env::var("LOAD_ONLY").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        println!("# Switchboard load driver ({} scale, host binary {})\n", scale.name, host_binary().display());
        if only.is_empty() || only == "slow" {
            slow_provider(&scale, dir.path()).await;
        }
        if only.is_empty() || only == "throughput" {
            throughput(&scale, dir.path()).await;
        }
        if only.is_empty() || only == "fair" {
            fair_share(&scale, dir.path()).await;
        }
        if only.is_empty() || only == "hostile" {
            hostile_suite(&scale, dir.path()).await;
        }
    });
}

fn host_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_switchboard"))
}

/// A host with one connector, `support`: Bitrix24 → Dify chatflow.
struct Rig {
    bitrix: FakeBitrix,
    dify: FakeDify,
    host: ChildHost,
}

impl Rig {
    async fn start(store: &str, queue: &[String], dir: &Path, name: &str) -> Rig {
        let bitrix = FakeBitrix::start().await;
        let dify = FakeDify::start().await;
        let mut config = HostConfig::default().retry(5, 100).sandbox(64, 30_000);
        config.store = store.to_string();
        let config = queue.iter().fold(config, |config, line| config.queue(line));
        let config = config.connector("support", &bitrix_channel(&bitrix), &dify_provider(&dify, "chatflow")).render();
        let host = ChildHost::start(&host_binary(), &config, dir, name).await;
        Rig { bitrix, dify, host }
    }

    /// The webhook of conversation `c` saying `text`.
    fn webhook(&self, c: usize, text: &str) -> String {
        let mut p = EventParams::private(&self.bitrix.client_endpoint()).with_message(text);
        p.dialog_id = (100_000 + c).to_string();
        p.user_id = 100_000 + c as u64;
        bitrix_events::message_add(&p)
    }

    async fn wait_for_delivered(&self, n: usize) -> Instant {
        let deadline = Instant::now() + DRAIN;
        while self.bitrix.delivered_count() < n {
            assert!(Instant::now() < deadline, "only {} of {n} replies arrived within {DRAIN:?}", self.bitrix.delivered_count());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Instant::now()
    }
}

/// Post `bodies` to `url`, `clients` at a time; every one must get 200.
/// Returns when each post started, in the order of `bodies`, and when the
/// last acknowledgement arrived.
async fn post_all(url: &str, bodies: Vec<String>, clients: usize) -> (Vec<Instant>, Instant) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(clients.max(1)).build().unwrap();
    let posts = bodies.into_iter().enumerate().map(|(i, body)| {
        let (client, url) = (client.clone(), url.to_string());
        async move {
            let started = Instant::now();
            let response = client.post(url).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap();
            let status = response.status();
            assert_eq!(status, 200, "webhook {i} not accepted: {}", response.text().await.unwrap_or_default());
            (i, started)
        }
    });
    let mut started = futures::stream::iter(posts).buffer_unordered(clients).collect::<Vec<_>>().await;
    let acked = Instant::now();
    started.sort_by_key(|(i, _)| *i);
    (started.into_iter().map(|(_, at)| at).collect(), acked)
}

/// Scenario 1: a burst of conversations against a provider that takes its time.
async fn slow_provider(scale: &Scale, dir: &Path) {
    let n = scale.slow_conversations;
    let store = format!("embedded:{}", dir.join("slow-data").display());
    let rig = Rig::start(&store, &[], dir, "slow").await;
    rig.dify.set_response_delay(scale.provider_latency);
    let texts: Vec<String> = (0..n).map(|c| format!("slow c{c}")).collect();
    let bodies = texts.iter().enumerate().map(|(c, text)| rig.webhook(c, text)).collect();
    let idle = ProcessStats::of(rig.host.pid());
    let t0 = Instant::now();
    let (started, acked) = post_all(&format!("{}/hooks/support", rig.host.url), bodies, n).await;
    let last = rig.wait_for_delivered(n).await;
    let stats = ProcessStats::of(rig.host.pid());
    let delivered: HashMap<String, Instant> = rig.bitrix.deliveries().into_iter().collect();
    let mut latencies: Vec<Duration> = texts
        .iter()
        .zip(&started)
        .map(|(text, start)| delivered.get(&format!("Dify says: {text}")).expect("every conversation answered").duration_since(*start))
        .collect();
    latencies.sort();
    println!("## Slow provider: {n} conversations posted at once, embedded store, Dify latency {:?}\n", scale.provider_latency);
    println!("| measure | value |\n|---|---|");
    println!("| all {n} webhooks acknowledged after | {:.2} s |", acked.duration_since(t0).as_secs_f64());
    println!("| last reply delivered after | {:.2} s |", last.duration_since(t0).as_secs_f64());
    println!(
        "| webhook → reply latency p50 / p99 / max | {} / {} / {} |",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap())
    );
    println!("| Dify calls in flight at most | {} |", rig.dify.max_in_flight());
    let in_flight = rig.dify.max_in_flight().max(1);
    println!("| host RSS idle → peak | {} → {} |", mib(idle.rss), mib(stats.peak_rss));
    println!(
        "| RSS per in-flight conversation ((peak − idle) / calls in flight) | {:.0} KiB |",
        stats.peak_rss.saturating_sub(idle.rss) as f64 / 1024.0 / in_flight as f64
    );
    println!("| host CPU time | {:.2} s |\n", stats.cpu_seconds);
}

/// What one throughput run measured.
struct Throughput {
    acks_per_second: f64,
    replies_per_second: f64,
    cpu_per_1000: f64,
    peak_rss: u64,
}

/// Scenario 2: zero-latency fakes, every store, against hello-world.
async fn throughput(scale: &Scale, dir: &Path) {
    let baseline = hello_world_rate(scale).await;
    let namespace = format!("namespace = \"load{}x{}\"", std::process::id(), unix_nanos());
    let stores = [
        ("memory", "memory".to_string(), vec![]),
        ("embedded (redb)", format!("embedded:{}", dir.join("throughput-data").display()), vec![]),
        ("Redis", std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()), vec![namespace]),
    ];
    let mut rows = Vec::new();
    for (label, store, queue) in stores {
        rows.push((label, throughput_on(scale, &store, &queue, dir).await));
    }
    println!("## Throughput: {} webhooks, {} concurrent clients, zero-latency fakes\n", scale.throughput_webhooks, scale.clients);
    println!("axum hello-world (same client, same run): **{baseline:.0} requests/s**\n");
    println!("| store | webhooks acked/s | % of hello-world | replies delivered/s | % of hello-world | host CPU s / 1,000 webhooks | host peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    for (label, t) in rows {
        println!(
            "| {label} | {:.0} | {:.1} % | {:.0} | {:.1} % | {:.3} | {} |",
            t.acks_per_second,
            100.0 * t.acks_per_second / baseline,
            t.replies_per_second,
            100.0 * t.replies_per_second / baseline,
            t.cpu_per_1000,
            mib(t.peak_rss)
        );
    }
    println!();
}

async fn throughput_on(scale: &Scale, store: &str, queue: &[String], dir: &Path) -> Throughput {
    let rig = Rig::start(store, queue, dir, "throughput").await;
    let url = format!("{}/hooks/support", rig.host.url);
    let warm_up = 50.min(scale.throughput_webhooks);
    let bodies = (0..warm_up).map(|c| rig.webhook(c, &format!("warm c{c}"))).collect();
    post_all(&url, bodies, scale.clients).await;
    rig.wait_for_delivered(warm_up).await;

    let n = scale.throughput_webhooks;
    let bodies = (0..n).map(|c| rig.webhook(warm_up + c, &format!("load c{c}"))).collect();
    let before = ProcessStats::of(rig.host.pid());
    let t0 = Instant::now();
    let (_, acked) = post_all(&url, bodies, scale.clients).await;
    let last = rig.wait_for_delivered(warm_up + n).await;
    let after = ProcessStats::of(rig.host.pid());
    Throughput {
        acks_per_second: n as f64 / acked.duration_since(t0).as_secs_f64(),
        replies_per_second: n as f64 / last.duration_since(t0).as_secs_f64(),
        cpu_per_1000: (after.cpu_seconds - before.cpu_seconds) * 1000.0 / n as f64,
        peak_rss: after.peak_rss,
    }
}

/// Requests per second of an axum hello-world child process, posted the
/// same webhook bodies by the same client.
async fn hello_world_rate(scale: &Scale) -> f64 {
    let port = free_port();
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe).args(["hello-world", &port.to_string()]).spawn().unwrap();
    let url = format!("http://127.0.0.1:{port}/hooks/support");
    let deadline = Instant::now() + Duration::from_secs(10);
    while reqwest::get(format!("http://127.0.0.1:{port}/")).await.is_err() {
        assert!(Instant::now() < deadline, "the hello-world server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body = bitrix_events::message_add(&EventParams::private("http://127.0.0.1:1/rest/").with_message("hello"));
    let n = scale.throughput_webhooks;
    post_all(&url, vec![body.clone(); 50.min(n)], scale.clients).await;
    let t0 = Instant::now();
    let (_, acked) = post_all(&url, vec![body; n], scale.clients).await;
    let rate = n as f64 / acked.duration_since(t0).as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    rate
}

/// Scenario 3: a quiet tenant's latency alone and while a noisy tenant is flooded.
async fn fair_share(scale: &Scale, dir: &Path) {
    let bitrix = FakeBitrix::start().await;
    let dify = FakeDify::start().await;
    let mut config = HostConfig::default().retry(5, 100).sandbox(64, 30_000).plugin("slow-channel", switchboard_tests::components::SLOW_CHANNEL);
    config.store = "memory".into();
    config = config.tenant_connector("noisy", "noisy", &plugin_table("slow-channel", &[]), &dify_provider(&dify, "chatflow")).tenant_connector(
        "quiet",
        "quiet",
        &bitrix_channel(&bitrix),
        &dify_provider(&dify, "chatflow"),
    );
    let host = ChildHost::start(&host_binary(), &config.render(), dir, "fair").await;
    let quiet = |run: &str, i: usize| {
        let mut p = EventParams::private(&bitrix.client_endpoint()).with_message(&format!("quiet {run} {i}"));
        p.dialog_id = (200_000 + i).to_string();
        bitrix_events::message_add(&p)
    };
    let alone = quiet_latencies(scale, &host.url, &bitrix, "alone", &quiet).await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = tokio::spawn(flood_noisy(format!("{}/hooks/noisy", host.url), scale.flood_senders, stop.clone()));
    // Let the flood take the noisy tenant's slots first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let flooded = quiet_latencies(scale, &host.url, &bitrix, "flooded", &quiet).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = flood.await.unwrap();
    let stats = ProcessStats::of(host.pid());

    println!(
        "## Fair share: the quiet tenant's {} messages at {}/s, alone and while {} senders flood the noisy tenant\n",
        scale.quiet_messages, scale.quiet_per_second, scale.flood_senders
    );
    println!("| quiet tenant, webhook → reply | p50 | p99 | max |\n|---|---|---|---|");
    for (label, latencies) in [("alone", &alone), ("during the flood", &flooded)] {
        println!("| {label} | {} | {} | {} |", ms(percentile(latencies, 0.50)), ms(percentile(latencies, 0.99)), ms(*latencies.last().unwrap()));
    }
    let ratio = percentile(&flooded, 0.99).as_secs_f64() / percentile(&alone, 0.99).as_secs_f64();
    println!("\np99 during the flood / alone: **{ratio:.2}×** (target ≤ 1.2×)\n");
    let mut statuses: Vec<_> = answers.into_iter().collect();
    statuses.sort();
    let statuses: Vec<String> = statuses.iter().map(|(status, count)| format!("{count} × {status}")).collect();
    println!("Noisy tenant's webhooks answered: {}; host peak RSS {}\n", statuses.join(", "), mib(stats.peak_rss));
}

/// Post the quiet tenant's messages at the scale's steady rate; the latency
/// of each from its post to its reply at the fake Bitrix24, sorted.
async fn quiet_latencies(scale: &Scale, url: &str, bitrix: &FakeBitrix, run: &str, webhook: &impl Fn(&str, usize) -> String) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let url = format!("{url}/hooks/quiet");
    let mut tick = tokio::time::interval(Duration::from_secs(1) / scale.quiet_per_second);
    let mut posts = Vec::new();
    for i in 0..scale.quiet_messages {
        tick.tick().await;
        let (client, url, body) = (client.clone(), url.clone(), webhook(run, i));
        posts.push(tokio::spawn(async move {
            let started = Instant::now();
            let response = client.post(url).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap();
            assert_eq!(response.status(), 200, "the quiet tenant's webhook {i} was refused");
            started
        }));
    }
    let mut started = Vec::new();
    for post in posts {
        started.push(post.await.unwrap());
    }
    let deadline = Instant::now() + DRAIN;
    let prefix = format!("Dify says: quiet {run} ");
    loop {
        let delivered: HashMap<String, Instant> = bitrix.deliveries().into_iter().filter(|(text, _)| text.starts_with(&prefix)).collect();
        if delivered.len() == scale.quiet_messages {
            let mut latencies: Vec<Duration> = started.iter().enumerate().map(|(i, at)| delivered[&format!("{prefix}{i}")].duration_since(*at)).collect();
            latencies.sort();
            return latencies;
        }
        assert!(Instant::now() < deadline, "only {} of the quiet tenant's replies arrived", delivered.len());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Scenario 4: every hostile test component at once, each on its own
/// tenant, while a quiet tenant keeps being answered; first with CPU-bound
/// calls unthrottled (`cpu_bound_slots` = 1000, the baseline), then with
/// the default slots.
async fn hostile_suite(scale: &Scale, dir: &Path) {
    hostile_run(scale, dir, Some(1000)).await;
    hostile_run(scale, dir, None).await;
}

async fn hostile_run(scale: &Scale, dir: &Path, cpu_bound_slots: Option<usize>) {
    use switchboard_tests::components as c;
    let bitrix = FakeBitrix::start().await;
    let dify = FakeDify::start().await;
    let probe = switchboard_tests::Probe::start().await;
    let probe_port = probe.port().to_string();
    let probe_allowed = format!("[\"http://{}\"]", probe.host_port());
    let mut hostile: Vec<HostilePlugin> = vec![
        ("spin-loop", c::SPIN_LOOP, vec![]),
        ("memory-bomb", c::MEMORY_BOMB, vec![]),
        ("deep-recursion", c::DEEP_RECURSION, vec![]),
        ("huge-result", c::HUGE_RESULT, vec![]),
        ("chatty", c::CHATTY, vec![]),
        ("state-flood", c::STATE_FLOOD, vec![]),
        ("request-flood", c::REQUEST_FLOOD, vec![("target_port", format!("\"{probe_port}\"")), ("allowed_hosts", probe_allowed)]),
        // Allowed by name, refused by the SSRF guard (link-local: cloud metadata).
        (
            "forbidden-http",
            c::FORBIDDEN_HTTP,
            vec![("target_url", "\"http://169.254.169.254/latest/meta-data/\"".into()), ("allowed_hosts", "[\"http://169.254.169.254\"]".into())],
        ),
    ];
    // `LOAD_HOSTILE=spin-loop,chatty` runs only those.
    if let Ok(only) = std::env::var("LOAD_HOSTILE") {
        hostile.retain(|(name, _, _)| only.split(',').any(|wanted| wanted == *name));
    }
    // No retries: each hostile message runs once, to its limit.
    let mut config = HostConfig::default().retry(1, 100).sandbox(64, 5_000);
    if let Some(slots) = cpu_bound_slots {
        config = config.sandbox_line(&format!("cpu_bound_slots = {slots}"));
    }
    config.store = "memory".into();
    for (name, wasm, settings) in &hostile {
        config = config.plugin(name, wasm);
        config = config.tenant_connector(name, name, &bitrix_channel(&bitrix), &plugin_table(name, settings));
    }
    config = config.tenant_connector("quiet", "quiet", &bitrix_channel(&bitrix), &dify_provider(&dify, "chatflow"));
    let host = ChildHost::start(&host_binary(), &config.render(), dir, "hostile").await;
    let quiet = |run: &str, i: usize| {
        let mut p = EventParams::private(&bitrix.client_endpoint()).with_message(&format!("quiet {run} {i}"));
        p.dialog_id = (300_000 + i).to_string();
        bitrix_events::message_add(&p)
    };
    let alone = quiet_latencies(scale, &host.url, &bitrix, "alone", &quiet).await;
    let idle = ProcessStats::of(host.pid());

    let client = reqwest::Client::new();
    let per_component = scale.hostile_messages;
    let mut attacks = Vec::new();
    for (name, _, _) in &hostile {
        for i in 0..per_component {
            let mut p = EventParams::private(&bitrix.client_endpoint()).with_message(&format!("attack {i}"));
            p.dialog_id = format!("{}", 400_000 + attacks.len());
            let (client, url, body) = (client.clone(), format!("{}/hooks/{name}", host.url), bitrix_events::message_add(&p));
            attacks.push(tokio::spawn(async move {
                client.post(url).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.map(|r| r.status().as_u16())
            }));
        }
    }
    let during = quiet_latencies(scale, &host.url, &bitrix, "attacked", &quiet).await;
    for attack in attacks {
        assert_eq!(attack.await.unwrap().unwrap(), 200, "every hostile webhook is accepted (the plugin runs later)");
    }
    let expected = 2 * scale.quiet_messages + hostile.len() * per_component;
    let deadline = Instant::now() + DRAIN;
    while bitrix.delivered_count() < expected {
        assert!(Instant::now() < deadline, "only {} of {expected} replies arrived", bitrix.delivered_count());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let peak = ProcessStats::of(host.pid());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = ProcessStats::of(host.pid());
    let metrics = reqwest::get(format!("{}/metrics", host.url)).await.unwrap().text().await.unwrap();

    let slots = cpu_bound_slots.map_or("default (half the cores)".to_string(), |n| n.to_string());
    println!(
        "## Hostile suite: {per_component} message(s) to each of {} hostile plugins at once, each its own tenant; 5 s deadline, 64 MiB cap, no retries; `cpu_bound_slots` {slots}\n",
        hostile.len()
    );
    println!("| hostile plugin | outcomes of its calls |\n|---|---|");
    for (name, _, _) in &hostile {
        println!("| `{name}` | {} |", outcomes(&metrics, name));
    }
    println!("\n| quiet tenant, webhook → reply | p50 | p99 | max |\n|---|---|---|---|");
    for (label, latencies) in [("alone", &alone), ("during the attack", &during)] {
        println!("| {label} | {} | {} | {} |", ms(percentile(latencies, 0.50)), ms(percentile(latencies, 0.99)), ms(*latencies.last().unwrap()));
    }
    let ratio = percentile(&during, 0.99).as_secs_f64() / percentile(&alone, 0.99).as_secs_f64();
    println!(
        "\np99 during the attack / alone: **{ratio:.2}×**; host RSS idle {} → peak {} → {} two seconds after the last reply\n",
        mib(idle.rss),
        mib(peak.peak_rss),
        mib(settled.rss)
    );
}

/// A hostile plugin of scenario 4: name, component path, settings.
type HostilePlugin = (&'static str, &'static str, Vec<(&'static str, String)>);

/// `outcome × count` of a plugin's calls, from the host's `/metrics`.
fn outcomes(metrics: &str, plugin: &str) -> String {
    let mut found: Vec<String> = metrics
        .lines()
        .filter(|line| line.starts_with("switchboard_plugin_calls_total{") && line.contains(&format!("plugin=\"{plugin}\"")))
        .filter_map(|line| {
            let outcome = line.split("outcome=\"").nth(1)?.split('"').next()?;
            let export = line.split("export=\"").nth(1)?.split('"').next()?;
            let count = line.rsplit(' ').next()?;
            Some(format!("{export}: {count} × {outcome}"))
        })
        .collect();
    found.sort();
    found.join(", ")
}

/// Keep `senders` webhooks to the noisy tenant in flight until `stop`; a
/// sender told `429`/`503` waits for `Retry-After` (1 s when absent), as
/// platforms do. Returns how many answers of each status arrived.
async fn flood_noisy(url: String, senders: usize, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> HashMap<u16, usize> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(senders).build().unwrap();
    let tasks: Vec<_> = (0..senders)
        .map(|n| {
            let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut answers: HashMap<u16, usize> = HashMap::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let status = match client.post(&url).body(format!("event=ONIMBOTMESSAGEADD&n={n}")).send().await {
                        Ok(response) => {
                            let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(1);
                            let status = response.status().as_u16();
                            if status == 429 || status == 503 {
                                tokio::time::sleep(Duration::from_secs(retry_after)).await;
                            }
                            status
                        }
                        Err(_) => 0,
                    };
                    *answers.entry(status).or_default() += 1;
                }
                answers
            })
        })
        .collect();
    let mut total: HashMap<u16, usize> = HashMap::new();
    for task in tasks {
        for (status, count) in task.await.unwrap() {
            *total.entry(status).or_default() += count;
        }
    }
    total
}

/// The baseline server: reads the body, answers `ok`, on the host's runtime shape.
fn hello_world(port: u16) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let app = axum::Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .route("/hooks/{id}", axum::routing::post(|_body: axum::body::Bytes| async { "ok" }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn unix_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}
