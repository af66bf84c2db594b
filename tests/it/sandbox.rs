//! Hostile provider components: the host must contain them (deadline, memory
//! limit, outbound-HTTP policy) and keep serving every other connector.

use crate::{SETTLE, WAIT, WAIT_RETRIES, deliver};
use switchboard_tests::bitrix_events::{self, EventParams};
use switchboard_tests::harness::{FALLBACK, HostConfig, bitrix_channel, connector_toml, plugin_table, toml_string};
use switchboard_tests::probe::Hit;
use switchboard_tests::{FakeBitrix, Probe, TestHost, components};

/// Memory cap per plugin call in these tests.
const MEMORY_LIMIT_MB: u32 = 32;
/// Wall-clock deadline per plugin call in these tests.
const CALL_TIMEOUT_MS: u64 = 1000;

/// A host with two connectors on the same fake portal: `hostile` (provider
/// `hostile_plugin`) and `friendly` (provider `echo`).
async fn hostile_and_friendly(hostile_plugin: &str, wasm: &str, settings: &[(&str, String)]) -> (FakeBitrix, TestHost) {
    let bitrix = FakeBitrix::start().await;
    let channel = bitrix_channel(&bitrix);
    let host = HostConfig::default()
        .sandbox(MEMORY_LIMIT_MB, CALL_TIMEOUT_MS)
        .plugin(hostile_plugin, wasm)
        .plugin("echo", components::ECHO)
        .connector("hostile", &channel, &plugin_table(hostile_plugin, settings))
        .connector("friendly", &channel, &plugin_table("echo", &[]))
        .start()
        .await;
    (bitrix, host)
}

/// The hostile call ends in the fallback message; the friendly connector
/// answers both while the hostile call runs and after it was stopped.
async fn contained(hostile_plugin: &str, wasm: &str, outcome: &str) {
    contained_with(hostile_plugin, wasm, &[], outcome).await;
}

/// [`contained`] with settings for the hostile plugin.
async fn contained_with(hostile_plugin: &str, wasm: &str, settings: &[(&str, String)], outcome: &str) {
    let (bitrix, host) = hostile_and_friendly(hostile_plugin, wasm, settings).await;
    let p = EventParams::private(&bitrix.client_endpoint());

    deliver(&host, "hostile", bitrix_events::message_add(&p.clone().with_message("Are you there?").with_message_id(3001))).await;
    // Sent while the hostile plugin is (probably still) running.
    deliver(&host, "friendly", bitrix_events::message_add(&p.clone().with_message("hello friend").with_message_id(3002))).await;

    let echoed = || bitrix.calls_to("imbot.message.add").into_iter().filter(|c| c.param("MESSAGE").is_some_and(|m| m.starts_with("echo: "))).count();
    let fallbacks = || bitrix.calls_to("imbot.message.add").into_iter().filter(|c| c.param("MESSAGE").as_deref() == Some(FALLBACK)).count();

    let sent = bitrix.wait_for_method("imbot.message.add", 2, WAIT_RETRIES).await;
    let mut messages: Vec<String> = sent.iter().map(|c| c.require("MESSAGE")).collect();
    messages.sort();
    assert_eq!(messages, vec![FALLBACK.to_string(), "echo: hello friend".to_string()], "calls: {sent:#?}");
    assert!(sent.iter().all(|c| c.require("DIALOG_ID") == "17" && c.require("BOT_ID") == "55"));

    // The host is still healthy and serves normally after stopping the plugin.
    let (status, _) = host.get("/healthz").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    deliver(&host, "friendly", bitrix_events::message_add(&p.clone().with_message("still there?").with_message_id(3003))).await;
    let sent = bitrix.wait_for_method("imbot.message.add", 3, WAIT).await;
    assert_eq!(sent[2].require("MESSAGE"), "echo: still there?");

    tokio::time::sleep(SETTLE).await;
    assert_eq!(fallbacks(), 1, "exactly one fallback for the hostile message: {:#?}", bitrix.calls());
    assert_eq!(echoed(), 2, "{:#?}", bitrix.calls());
    assert_counted(&host, hostile_plugin, outcome).await;
}

/// `/metrics` counts a call of `plugin` that ended in `outcome`.
async fn assert_counted(host: &TestHost, plugin: &str, outcome: &str) {
    let (_, metrics) = host.get("/metrics").await;
    let counted = metrics.lines().any(|line| {
        line.starts_with("switchboard_plugin_calls_total{")
            && line.contains(&format!("plugin=\"{plugin}\""))
            && line.contains(&format!("outcome=\"{outcome}\""))
    });
    assert!(counted, "no {outcome} call of {plugin} in the metrics:\n{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spin_loop_is_stopped_by_the_deadline() {
    contained("spin-loop", components::SPIN_LOOP, "timeout").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_traps_at_the_stack_limit() {
    contained("deep-recursion", components::DEEP_RECURSION, "stack_overflow").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_larger_than_the_budget_is_refused_not_copied() {
    contained("huge-result", components::HUGE_RESULT, "result_too_large").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_call_arguments_larger_than_the_budget_are_refused() {
    contained_with("huge-log", components::HUGE_RESULT, &[("mode", toml_string("log"))], "result_too_large").await;
    contained_with("huge-state", components::HUGE_RESULT, &[("mode", toml_string("state"))], "result_too_large").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chatty_plugin_is_capped_and_still_answers() {
    let bitrix = FakeBitrix::start().await;
    let host =
        HostConfig::default().plugin("chatty", components::CHATTY).connector("chatty", &bitrix_channel(&bitrix), &plugin_table("chatty", &[])).start().await;
    let p = EventParams::private(&bitrix.client_endpoint()).with_message("say something");
    deliver(&host, "chatty", bitrix_events::message_add(&p)).await;
    let sent = bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "still talking");
    assert_counted(&host, "chatty", "ok").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_is_stopped_by_the_memory_limit() {
    contained("memory-bomb", components::MEMORY_BOMB, "memory_cap").await;
}

/// A host with one connector whose provider is `forbidden-http` aimed at `probe`.
async fn prober(probe: &Probe, allowed_hosts: Option<&str>) -> (FakeBitrix, TestHost) {
    let bitrix = FakeBitrix::start().await;
    let mut extra = vec![("target_port", toml_string(&probe.port().to_string()))];
    if let Some(allowed) = allowed_hosts {
        extra.push(("allowed_hosts", format!("[{}]", toml_string(allowed))));
    }
    let host = HostConfig::default()
        .sandbox(MEMORY_LIMIT_MB, CALL_TIMEOUT_MS)
        .plugin("forbidden-http", components::FORBIDDEN_HTTP)
        .connector("prober", &bitrix_channel(&bitrix), &plugin_table("forbidden-http", &extra))
        .start()
        .await;
    (bitrix, host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_http_to_an_unlisted_host_is_denied() {
    let probe = Probe::start().await;
    let (bitrix, host) = prober(&probe, None).await;
    let p = EventParams::private(&bitrix.client_endpoint()).with_message("probe").with_message_id(3101);
    deliver(&host, "prober", bitrix_events::message_add(&p)).await;

    let sent = bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "denied: request denied by host policy: 127.0.0.1 is not an allowed host");
    assert_eq!(probe.hit_count(), 0, "the denied request reached the server: {:?}", probe.hits());
    assert_counted(&host, "forbidden-http", "denied_host").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_that_looks_like_a_url_allows_nothing() {
    let probe = Probe::start().await;
    let bitrix = FakeBitrix::start().await;
    let settings = [("target_url", toml_string(&format!("http://{}/probe", probe.host_port())))];
    let host = HostConfig::default()
        .plugin("forbidden-http", components::FORBIDDEN_HTTP)
        .connector("prober", &bitrix_channel(&bitrix), &plugin_table("forbidden-http", &settings))
        .start()
        .await;
    let p = EventParams::private(&bitrix.client_endpoint()).with_message("probe").with_message_id(3103);
    deliver(&host, "prober", bitrix_events::message_add(&p)).await;

    let sent = bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "denied: request denied by host policy: 127.0.0.1 is not an allowed host");
    assert_eq!(probe.hit_count(), 0, "{:?}", probe.hits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_http_to_an_allowed_host_goes_through() {
    let probe = Probe::start().await;
    let (bitrix, host) = prober(&probe, Some(&format!("http://{}", probe.host_port()))).await;
    let p = EventParams::private(&bitrix.client_endpoint()).with_message("probe").with_message_id(3102);
    deliver(&host, "prober", bitrix_events::message_add(&p)).await;

    let sent = bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "allowed: 200");
    assert_eq!(probe.hits(), vec![Hit { method: "GET".into(), path: "/probe".into() }]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_get_no_environment_or_arguments() {
    // SAFETY: set before the host starts; no other thread reads it concurrently.
    unsafe { std::env::set_var("SWITCHBOARD_TEST_SECRET", "must-not-leak") };
    let bitrix = FakeBitrix::start().await;
    let host = HostConfig::default()
        .plugin("ambient-access", components::AMBIENT_ACCESS)
        .connector("ambient", &bitrix_channel(&bitrix), &plugin_table("ambient-access", &[]))
        .start()
        .await;
    let p = EventParams::private(&bitrix.client_endpoint()).with_message("what can you reach?").with_message_id(3201);
    deliver(&host, "ambient", bitrix_events::message_add(&p)).await;

    let sent = bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "env=0 args=0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_imports_the_filesystem_or_sockets_is_refused_at_load() {
    let bitrix = FakeBitrix::start().await;
    let config = HostConfig::default()
        .plugin("forbidden-imports", components::FORBIDDEN_IMPORTS)
        .connector("ambient", &bitrix_channel(&bitrix), &plugin_table("forbidden-imports", &[]))
        .render();
    let error = match switchboard::Server::start(switchboard::Config::from_toml_str(&config).unwrap()).await {
        Ok(_) => panic!("the host loaded a plugin that imports wasi:filesystem and wasi:sockets"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("plugin `forbidden-imports` cannot be used"), "{error}");
    assert!(error.contains("imports wasi:filesystem/") || error.contains("imports wasi:sockets/"), "{error}");
    assert!(error.contains("which plugins may not use"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_responses_are_cut_off() {
    let probe = Probe::start().await;
    let bitrix = FakeBitrix::start().await;
    let settings = [
        ("target_port", toml_string(&probe.port().to_string())),
        ("target_path", toml_string("/big")),
        ("allowed_hosts", format!("[{}]", toml_string(&format!("http://{}", probe.host_port())))),
    ];
    let host = HostConfig::default()
        .max_response_bytes(64 * 1024)
        .plugin("forbidden-http", components::FORBIDDEN_HTTP)
        .connector("big", &bitrix_channel(&bitrix), &plugin_table("forbidden-http", &settings))
        .start()
        .await;
    let p = EventParams::private(&bitrix.client_endpoint()).with_message("fetch").with_message_id(3301);
    deliver(&host, "big", bitrix_events::message_add(&p)).await;

    let sent = bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    let message = sent[0].require("MESSAGE");
    assert!(message.starts_with("denied: HTTP transport error"), "a 1 MiB body must not pass a 64 KiB cap: {message}");
    assert!(message.contains("body size exceeds limit: 65536"), "{message}");
    assert_eq!(probe.hits(), vec![Hit { method: "GET".into(), path: "/big".into() }]);
}

/// The reply of a `forbidden-http` provider (registered as `plugin`) that
/// requests `http://{target}:{port}/probe` with `allowed_hosts`.
async fn attempt(config: HostConfig, plugin: &str, target: &str, port: u16, allowed_hosts: &str) -> (FakeBitrix, TestHost) {
    let bitrix = FakeBitrix::start().await;
    let extra =
        [("target_host", toml_string(target)), ("target_port", toml_string(&port.to_string())), ("allowed_hosts", format!("[{}]", toml_string(allowed_hosts)))];
    let host = config
        .sandbox(MEMORY_LIMIT_MB, CALL_TIMEOUT_MS)
        .plugin(plugin, components::FORBIDDEN_HTTP)
        .connector("prober", &bitrix_channel(&bitrix), &plugin_table(plugin, &extra))
        .start()
        .await;
    let p = EventParams::private(&bitrix.client_endpoint()).with_message("probe");
    deliver(&host, "prober", bitrix_events::message_add(&p)).await;
    (bitrix, host)
}

/// Wait until `/metrics` counts a denied outbound request of `plugin`.
async fn wait_for_denial(host: &TestHost, plugin: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, metrics) = host.get("/metrics").await;
        let denied = metrics
            .lines()
            .any(|l| l.starts_with("switchboard_plugin_calls_total{") && l.contains(&format!("plugin=\"{plugin}\"")) && l.contains("outcome=\"denied_host\""));
        if denied {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no denied request of {plugin} counted:\n{metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_host_on_loopback_is_refused_unless_the_hoster_allows_loopback() {
    let probe = Probe::start().await;
    let allowed = format!("http://127.0.0.1:{}", probe.port());
    let (_bitrix, host) = attempt(HostConfig::default().public_networks_only(), "ssrf-loopback", "127.0.0.1", probe.port(), &allowed).await;
    wait_for_denial(&host, "ssrf-loopback").await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(probe.hit_count(), 0, "the request reached loopback: {:?}", probe.hits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_resolves_to_loopback_is_refused_after_resolution() {
    let probe = Probe::start().await;
    let allowed = format!("http://localhost:{}", probe.port());
    let (_bitrix, host) = attempt(HostConfig::default().public_networks_only(), "ssrf-localhost", "localhost", probe.port(), &allowed).await;
    wait_for_denial(&host, "ssrf-localhost").await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(probe.hit_count(), 0, "the request reached loopback through a name: {:?}", probe.hits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_metadata_and_ipv6_loopback_stay_refused_when_ipv4_loopback_is_allowed() {
    for (plugin, target, allowed) in [("ssrf-metadata", "169.254.169.254", "http://169.254.169.254"), ("ssrf-ipv6", "[::1]", "http://[::1]:9")] {
        let port = if target.starts_with('[') { 9 } else { 80 };
        let (bitrix, _host) = attempt(HostConfig::default(), plugin, target, port, allowed).await;
        let sent = bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
        let message = sent[0].require("MESSAGE");
        assert!(message.starts_with("denied: request denied by host policy"), "{target}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_without_a_scheme_allows_https_only() {
    let probe = Probe::start().await;
    let allowed = format!("127.0.0.1:{}", probe.port());
    let (bitrix, _host) = attempt(HostConfig::default(), "plain-http", "127.0.0.1", probe.port(), &allowed).await;
    let sent = bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert!(sent[0].require("MESSAGE").starts_with("denied: request denied by host policy"), "{:?}", sent[0].message());
    assert_eq!(probe.hit_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_info_cannot_pass_one_host_off_as_another() {
    let probe = Probe::start().await;
    let allowed = format!("http://127.0.0.1:{}", probe.port());
    // `http://127.0.0.1:PORT@127.0.0.2:PORT/probe` goes to 127.0.0.2, which is not allowed.
    let target = format!("127.0.0.1:{}@127.0.0.2", probe.port());
    let (bitrix, _host) = attempt(HostConfig::default(), "user-info", &target, probe.port(), &allowed).await;
    let sent = bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert!(sent[0].require("MESSAGE").starts_with("denied: "), "{:?}", sent[0].message());
    assert_eq!(probe.hit_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_flooding_a_slow_translate_in_gets_429s_while_another_tenant_is_served() {
    let bitrix = FakeBitrix::start().await;
    let connector = |id: &str, tenant: &str, channel: &str| {
        format!("[[connector]]\nid = {}\ntenant = {}\nchannel = {channel}\nprovider = {}\n", toml_string(id), toml_string(tenant), plugin_table("echo", &[]))
    };
    let mut config = HostConfig::default()
        .sandbox(MEMORY_LIMIT_MB, 20_000)
        .sandbox_line("translate_in_timeout_ms = 3000")
        .queue("max_webhooks_in_flight_per_tenant = 8")
        .plugin("slow-channel", components::SLOW_CHANNEL)
        .plugin("echo", components::ECHO);
    config.connectors.push(connector("slow", "tenant-slow", &plugin_table("slow-channel", &[])));
    config.connectors.push(connector("fast", "tenant-fast", &bitrix_channel(&bitrix)));
    let host = config.start().await;

    let flood = async {
        let answers = futures::future::join_all((0..40).map(|n| host.post_form("/hooks/slow", format!("n={n}")))).await;
        (answers, std::time::Instant::now())
    };
    let fast = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        for n in 0..3 {
            let p = EventParams::private(&bitrix.client_endpoint()).with_message(&format!("fast {n}"));
            deliver(&host, "fast", bitrix_events::message_add(&p)).await;
        }
        let sent = bitrix.wait_for_method("imbot.message.add", 3, WAIT).await;
        (sent, std::time::Instant::now())
    };
    let ((answers, flood_done), (sent, fast_done)) = tokio::join!(flood, fast);
    assert!(fast_done < flood_done, "the other tenant was answered while the flood was held at its deadline");
    assert!(sent.iter().all(|c| c.require("MESSAGE").starts_with("echo: fast")));
    let busy: Vec<&(reqwest::StatusCode, String)> = answers.iter().filter(|(status, _)| *status == reqwest::StatusCode::TOO_MANY_REQUESTS).collect();
    let timed_out = answers.iter().filter(|(status, body)| *status == reqwest::StatusCode::SERVICE_UNAVAILABLE && body.contains("plugin_timeout")).count();
    assert!(busy.len() >= 40 - 8, "all but the tenant's 8 slots are refused at once: {answers:?}");
    assert!(busy.iter().all(|(_, body)| body.contains("tenant_busy") && body.contains("tenant-slow")), "{busy:?}");
    assert_eq!(busy.len() + timed_out, 40, "the admitted ones stop at the translate-in deadline: {answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_requests_not_awaited_are_capped_per_call() {
    let probe = Probe::start().await;
    let bitrix = FakeBitrix::start().await;
    let extra =
        [("target_port", toml_string(&probe.port().to_string())), ("allowed_hosts", format!("[{}]", toml_string(&format!("http://{}", probe.host_port()))))];
    let host = HostConfig::default()
        .sandbox(MEMORY_LIMIT_MB, 20_000)
        .plugin("request-flood", components::REQUEST_FLOOD)
        .plugin("echo", components::ECHO)
        .connector("flood", &bitrix_channel(&bitrix), &plugin_table("request-flood", &extra))
        .connector("friendly", &bitrix_channel(&bitrix), &plugin_table("echo", &[]))
        .start()
        .await;
    let p = EventParams::private(&bitrix.client_endpoint());
    deliver(&host, "flood", bitrix_events::message_add(&p.clone().with_message("flood"))).await;
    deliver(&host, "friendly", bitrix_events::message_add(&p.clone().with_message("hello friend"))).await;
    let sent = bitrix.wait_for_method("imbot.message.add", 2, WAIT_RETRIES).await;
    let texts: Vec<String> = sent.iter().map(|c| c.require("MESSAGE")).collect();
    assert!(texts.contains(&"echo: hello friend".to_string()), "{texts:?}");
    let flood = texts.iter().find(|t| t.starts_with("sent ")).unwrap_or_else(|| panic!("the flood call answered: {texts:?}"));
    assert!(flood.starts_with("sent 32 of 50000"), "at most 32 requests per call: {flood}");
    assert_eq!(probe.hit_count(), 32, "only the admitted requests reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_requests_in_flight_are_capped_and_another_tenant_is_not_held_up() {
    let probe = Probe::start().await;
    let bitrix = FakeBitrix::start().await;
    let allowed = format!("[{}]", toml_string(&format!("http://{}", probe.host_port())));
    let flood = [("target_port", toml_string(&probe.port().to_string())), ("target_path", toml_string("/slow")), ("allowed_hosts", allowed.clone())];
    let single = [("target_port", toml_string(&probe.port().to_string())), ("allowed_hosts", allowed)];
    let channel = bitrix_channel(&bitrix);
    let mut config = HostConfig::default()
        .sandbox(MEMORY_LIMIT_MB, 20_000)
        .sandbox_line("max_outbound_in_flight_per_tenant = 4")
        .plugin("request-flood", components::REQUEST_FLOOD)
        .plugin("forbidden-http", components::FORBIDDEN_HTTP);
    // Two connectors of one noisy tenant, 32 slow requests each; one quiet tenant.
    for (id, tenant, plugin, settings) in [
        ("flood-a", "noisy", "request-flood", &flood[..]),
        ("flood-b", "noisy", "request-flood", &flood[..]),
        ("quiet", "quiet", "forbidden-http", &single[..]),
    ] {
        let table = connector_toml(id, FALLBACK, &channel, &plugin_table(plugin, settings));
        config.connectors.push(format!("{table}tenant = {}\n", toml_string(tenant)));
    }
    let host = config.start().await;
    let p = EventParams::private(&bitrix.client_endpoint());
    deliver(&host, "flood-a", bitrix_events::message_add(&p.clone().with_message("flood"))).await;
    deliver(&host, "flood-b", bitrix_events::message_add(&p.clone().with_message("flood"))).await;
    // The flood holds the tenant's slots now (each request takes 300 ms).
    tokio::time::sleep(switchboard_tests::probe::SLOW / 2).await;
    deliver(&host, "quiet", bitrix_events::message_add(&p.clone().with_message("one request"))).await;

    let sent = bitrix.wait_for_method("imbot.message.add", 3, WAIT_RETRIES).await;
    let texts: Vec<String> = sent.iter().map(|c| c.require("MESSAGE")).collect();
    // 64 requests of 300 ms through 4 slots take 4.8 s; the quiet tenant's
    // request did not queue behind them: it was answered first.
    assert_eq!(texts[0], "allowed: 200", "{texts:?}");
    assert!(texts[1..].iter().all(|t| t.starts_with("sent 32 of 50000")), "every admitted request completed, in turn: {texts:?}");
    assert_eq!(probe.max_slow_in_flight(), 4, "the noisy tenant never had more than its 4 requests in flight");
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_flood_stops_at_the_scope_quota_with_its_ttl_cut() {
    let bitrix = FakeBitrix::start().await;
    let channel = bitrix_channel(&bitrix);
    // A fresh connector id and queue namespace: Redis keeps what earlier
    // runs stored (their state and their dedupe records).
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let flood = format!("flood{run}");
    let mut config = HostConfig::default()
        .sandbox(MEMORY_LIMIT_MB, 20_000)
        .sandbox_line("max_state_bytes = 1048576")
        .sandbox_line("max_state_ttl_seconds = 3600")
        .plugin("state-flood", components::STATE_FLOOD)
        .plugin("echo", components::ECHO)
        .connector(&flood, &channel, &plugin_table("state-flood", &[]))
        .connector("friendly", &channel, &plugin_table("echo", &[]))
        .queue(&format!("namespace = \"{flood}\""));
    config.store = redis_url();
    let host = config.start().await;
    let p = EventParams::private(&bitrix.client_endpoint());
    deliver(&host, &flood, bitrix_events::message_add(&p.clone().with_message("fill it"))).await;
    deliver(&host, "friendly", bitrix_events::message_add(&p.clone().with_message("hello friend"))).await;

    let sent = bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;
    let mut messages: Vec<String> = sent.iter().map(|c| c.require("MESSAGE")).collect();
    messages.sort();
    // 16 values of 64 KiB and their keys are just over 1 MiB.
    assert_eq!(
        messages,
        ["echo: hello friend", "stored 15, then: state rejected: state quota exceeded: at most 1048576 bytes of keys and values per plugin and connector"]
    );

    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("sb:default:{flood}:state-flood:*")).query_async(&mut redis).await.unwrap();
    assert_eq!(keys.len(), 15, "{keys:?}");
    for key in keys {
        let ttl_ms: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut redis).await.unwrap();
        assert!((3_500_000..=3_600_000).contains(&ttl_ms), "{key} lives {ttl_ms} ms; asked for ten years, the ceiling is one hour");
        let _: () = redis::cmd("DEL").arg(&key).query_async(&mut redis).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reply_context_stays_on_the_host_and_callbacks_cannot_forge_it() {
    let bitrix = FakeBitrix::start().await;
    let host = HostConfig::default()
        .plugin("callback-forger", components::CALLBACK_FORGER)
        .connector("forger", &bitrix_channel(&bitrix), &plugin_table("callback-forger", &[]))
        .start()
        .await;
    let p = EventParams::private(&bitrix.client_endpoint()).with_message("what do you see?").with_message_id(3301);
    deliver(&host, "forger", bitrix_events::message_add(&p)).await;
    let sent = bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "context=[]", "the provider was given the channel's reply context");

    let callback = |conversation: String, text: &str| {
        // A context aiming the reply at another portal with another token.
        let forged = r#"{"client_endpoint":"http://127.0.0.1:1/rest/","bot_id":"55","dialog_id":"1","auth":"stolen"}"#;
        let body = serde_json::json!({"conversation": conversation, "reply_context": forged, "text": text});
        host.post_json("/hooks/forger/callback-forger", body)
    };
    let known = format!("{}:55:17", p.member_id);
    assert_eq!(callback(known, "with a forged context").await, reqwest::StatusCode::OK);
    let sent = bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;
    assert_eq!((sent[1].require("MESSAGE"), sent[1].require("DIALOG_ID")), ("with a forged context".to_string(), "17".to_string()));

    let unknown = format!("{}:55:999", p.member_id);
    assert_eq!(callback(unknown, "to a stranger").await, reqwest::StatusCode::OK);
    tokio::time::sleep(SETTLE).await;
    let texts: Vec<String> = bitrix.calls_to("imbot.message.add").iter().map(|c| c.require("MESSAGE")).collect();
    assert_eq!(texts, ["context=[]", "with a forged context"], "a reply to a conversation the connector never had was delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_plugins_take_turns_at_the_cpu_and_another_tenant_is_answered_meanwhile() {
    let bitrix = FakeBitrix::start().await;
    let channel = bitrix_channel(&bitrix);
    // Four spin loops would hold both runtime workers until their 4 s deadline;
    // with one CPU slot they take turns and the rest of the host keeps running.
    let host = HostConfig::default()
        .sandbox(MEMORY_LIMIT_MB, 4_000)
        .retry(1, 50)
        .sandbox_line("cpu_bound_slots = 1")
        .plugin("spin-loop", components::SPIN_LOOP)
        .plugin("echo", components::ECHO)
        .tenant_connector("spinner", "spinner", &channel, &plugin_table("spin-loop", &[]))
        .tenant_connector("quiet", "quiet", &channel, &plugin_table("echo", &[]))
        .start()
        .await;
    for n in 0..4 {
        let mut p = EventParams::private(&bitrix.client_endpoint()).with_message("spin");
        p.dialog_id = format!("{}", 500 + n);
        deliver(&host, "spinner", bitrix_events::message_add(&p)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    deliver(&host, "quiet", bitrix_events::message_add(&EventParams::private(&bitrix.client_endpoint()).with_message("still there?"))).await;

    let texts = bitrix.wait_for_delivered(5, WAIT_RETRIES).await;
    assert_eq!(texts[0], "echo: still there?", "the quiet tenant was answered while the spin loops ran: {texts:?}");
    assert!(texts[1..].iter().all(|t| t == FALLBACK), "{texts:?}");
    assert_counted(&host, "spin-loop", "timeout").await;
}
