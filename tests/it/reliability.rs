//! The job queue as users see it: redeliveries answered once, outages
//! ridden out with retries, a partial delivery resumed without resending,
//! dead letters replayed, conversations running concurrently and in order.

use crate::{SETTLE, WAIT, WAIT_RETRIES, deliver};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;
use switchboard_tests::bitrix_events::{self, EventParams};
use switchboard_tests::components;
use switchboard_tests::fake_dify;
use switchboard_tests::harness::{APP_TOKEN, FALLBACK, HostConfig, bitrix_channel, dify_provider, plugin_table, toml_string};
use switchboard_tests::{FakeBitrix, FakeDify, TestHost};

const CONNECTOR: &str = "support";
const ADMIN: &str = "reliability-admin-token";

/// A private chat with user `n` (its own conversation).
fn chat(bitrix: &FakeBitrix, n: u64, text: &str) -> EventParams {
    let mut p = EventParams::private(&bitrix.client_endpoint()).with_message(text);
    p.dialog_id = n.to_string();
    p.user_id = n;
    p
}

async fn dify_host(config: HostConfig) -> (FakeBitrix, FakeDify, TestHost) {
    let bitrix = FakeBitrix::start().await;
    let dify = FakeDify::start().await;
    let host = config.admin_token(ADMIN).connector(CONNECTOR, &bitrix_channel(&bitrix), &dify_provider(&dify, "chatflow")).start().await;
    (bitrix, dify, host)
}

fn count(texts: &[String], text: &str) -> usize {
    texts.iter().filter(|t| *t == text).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_delivered_three_times_is_answered_once() {
    let (bitrix, dify, host) = dify_host(HostConfig::default()).await;
    let body = bitrix_events::message_add(&chat(&bitrix, 101, "Where is my order?"));
    for _ in 0..3 {
        deliver(&host, CONNECTOR, body.clone()).await;
    }
    bitrix.wait_for_delivered(1, WAIT).await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(bitrix.delivered_texts(), ["Dify says: Where is my order?"], "one reply, not three");
    assert_eq!(dify.request_count(), 1, "one provider call: {:#?}", dify.requests());
    let (_, metrics) = host.get("/metrics").await;
    assert!(metrics.contains("switchboard_duplicates_dropped_total"), "duplicates are counted:\n{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_outage_is_ridden_out_and_every_message_answered_once() {
    let (bitrix, dify, host) = dify_host(HostConfig::default().retry(30, 50)).await;
    dify.fail_next(1000, 503, fake_dify::error_body(503, "service_unavailable", "Service Unavailable"));
    let texts: Vec<String> = (0..5).map(|n| format!("question {n}")).collect();
    for (n, text) in texts.iter().enumerate() {
        deliver(&host, CONNECTOR, bitrix_events::message_add(&chat(&bitrix, 200 + n as u64, text))).await;
    }
    dify.wait_for_requests(10, WAIT).await;
    assert!(bitrix.delivered_texts().is_empty(), "nothing is answered during the outage");
    dify.clear_failures();
    let delivered = bitrix.wait_for_delivered(5, WAIT_RETRIES).await;
    tokio::time::sleep(SETTLE).await;
    for text in &texts {
        assert_eq!(count(&bitrix.delivered_texts(), &format!("Dify says: {text}")), 1, "{text} answered once: {delivered:?}");
    }
    assert_eq!(bitrix.delivered_texts().len(), 5, "no fallback, no duplicate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refreshed_and_the_reply_delivered() {
    let bitrix = FakeBitrix::start().await;
    let dify = FakeDify::start().await;
    let channel = format!(
        "{{ plugin = \"bitrix24\", application_token = {}, portal_url = {}, client_id = {}, client_secret = {}, oauth_url = {} }}",
        toml_string(APP_TOKEN),
        toml_string(&bitrix.client_endpoint()),
        toml_string(FakeBitrix::CLIENT_ID),
        toml_string(FakeBitrix::CLIENT_SECRET),
        toml_string(&bitrix.oauth_url()),
    );
    let host = HostConfig::default().connector(CONNECTOR, &channel, &dify_provider(&dify, "chatflow")).start().await;
    bitrix.expire_unrefreshed_tokens();
    let p = chat(&bitrix, 301, "Token test").with_refresh_tokens("user-refresh-1", "bot-refresh-1");
    deliver(&host, CONNECTOR, bitrix_events::message_add(&p)).await;
    let delivered = bitrix.wait_for_delivered(1, WAIT).await;
    assert_eq!(delivered, ["Dify says: Token test"]);
    assert_eq!(bitrix.refresh_count(), 1, "one refresh: {:#?}", bitrix.refreshes());
    let sent = bitrix.calls_to("imbot.message.add");
    let last = sent.last().unwrap();
    assert!(bitrix.is_refreshed_token(&last.auth().unwrap()), "the reply used the refreshed token");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(bitrix.delivered_texts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_limit_exceeded_delays_the_reply_and_it_arrives_once() {
    let (bitrix, _dify, host) = dify_host(HostConfig::default().retry(10, 50)).await;
    bitrix.limit_next(2);
    deliver(&host, CONNECTOR, bitrix_events::message_add(&chat(&bitrix, 401, "Busy portal"))).await;
    let delivered = bitrix.wait_for_delivered(1, WAIT_RETRIES).await;
    assert_eq!(delivered, ["Dify says: Busy portal"]);
    tokio::time::sleep(SETTLE).await;
    assert_eq!(bitrix.call_count("imbot.message.add"), 3, "two refused, then delivered: {:#?}", bitrix.calls());
    assert_eq!(bitrix.delivered_texts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_on_the_second_of_three_messages_does_not_resend_the_first() {
    let bitrix = FakeBitrix::start().await;
    let host = HostConfig::default().plugin("echo", components::ECHO).connector(CONNECTOR, &bitrix_channel(&bitrix), &plugin_table("echo", &[])).start().await;
    bitrix.fail_message_add_at(2);
    deliver(&host, CONNECTOR, bitrix_events::message_add(&chat(&bitrix, 501, "one | two | three"))).await;
    let delivered = bitrix.wait_for_delivered(3, WAIT_RETRIES).await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(bitrix.delivered_texts(), ["echo: one", "echo: two", "echo: three"], "in order, none twice: {delivered:?}");
    assert_eq!(bitrix.call_count("imbot.message.add"), 4, "only the failed message was sent again");
}

async fn dead_letters(host: &TestHost) -> Vec<Value> {
    let (status, body) = host.request(Method::GET, "/admin/dead-letters", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let value: Value = serde_json::from_str(&body).unwrap();
    value["dead_letters"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_job_becomes_a_dead_letter_and_replay_answers_it() {
    let (bitrix, dify, host) = dify_host(HostConfig::default().retry(2, 50)).await;
    dify.fail_next(1000, 502, fake_dify::error_body(502, "bad_gateway", "Bad Gateway"));
    deliver(&host, CONNECTOR, bitrix_events::message_add(&chat(&bitrix, 601, "Are you there?"))).await;
    assert_eq!(bitrix.wait_for_delivered(1, WAIT_RETRIES).await, [FALLBACK], "the user gets the fallback");
    assert_eq!(dify.request_count(), 2, "both attempts reached Dify");

    let letters = dead_letters(&host).await;
    assert_eq!(letters.len(), 1, "{letters:#?}");
    let letter = &letters[0];
    assert_eq!(letter["connector"], CONNECTOR);
    assert_eq!(letter["kind"], "answer");
    assert!(letter["reason"].as_str().unwrap().contains("provider call"), "{letter}");
    let id = letter["id"].as_str().unwrap().to_string();

    dify.clear_failures();
    let (status, body) = host.request(Method::POST, &format!("/admin/dead-letters/{id}/replay"), Some(ADMIN)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let delivered = bitrix.wait_for_delivered(2, WAIT).await;
    assert_eq!(delivered[1], "Dify says: Are you there?");
    assert!(dead_letters(&host).await.is_empty(), "a replayed letter is gone");

    let (status, _) = host.request(Method::POST, &format!("/admin/dead-letters/{id}/replay"), Some(ADMIN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = host.request(Method::GET, "/admin/dead-letters", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_can_be_deleted_all_at_once() {
    let (bitrix, dify, host) = dify_host(HostConfig::default().retry(1, 10)).await;
    dify.fail_next(1000, 500, fake_dify::error_body(500, "internal_server_error", "Internal Server Error."));
    for n in 0..3 {
        deliver(&host, CONNECTOR, bitrix_events::message_add(&chat(&bitrix, 700 + n, "help"))).await;
    }
    bitrix.wait_for_delivered(3, WAIT).await;
    assert_eq!(dead_letters(&host).await.len(), 3);
    let (status, body) = host.request(Method::DELETE, "/admin/dead-letters", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["deleted"].as_array().unwrap().len(), 3);
    assert!(dead_letters(&host).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_do_not_queue_other_conversations_behind_them() {
    let (bitrix, dify, host) = dify_host(HostConfig::default()).await;
    dify.hold();
    for n in 0..40 {
        deliver(&host, CONNECTOR, bitrix_events::message_add(&chat(&bitrix, 800 + n, &format!("q{n}")))).await;
    }
    // Every conversation reaches the provider while the others still wait for it.
    dify.wait_for_requests(40, WAIT).await;
    assert_eq!(dify.max_in_flight(), 40, "all 40 conversations were at the provider at once");
    dify.release();
    bitrix.wait_for_delivered(40, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_conversation_is_answered_in_order_one_message_at_a_time() {
    let (bitrix, dify, host) = dify_host(HostConfig::default()).await;
    dify.set_response_delay(Duration::from_millis(50));
    for k in 0..6 {
        deliver(&host, CONNECTOR, bitrix_events::message_add(&chat(&bitrix, 900, &format!("part {k}")))).await;
    }
    let delivered = bitrix.wait_for_delivered(6, WAIT).await;
    let expected: Vec<String> = (0..6).map(|k| format!("Dify says: part {k}")).collect();
    assert_eq!(delivered, expected);
    assert_eq!(dify.max_in_flight(), 1, "one conversation never has two provider calls at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_at_its_limit_does_not_hold_up_another_tenant() {
    let bitrix = FakeBitrix::start().await;
    let (slow, fast) = (FakeDify::start().await, FakeDify::start().await);
    let connector = |id: &str, tenant: &str, dify: &FakeDify| {
        format!(
            "[[connector]]\nid = {}\ntenant = {}\nchannel = {}\nprovider = {}\n",
            toml_string(id),
            toml_string(tenant),
            bitrix_channel(&bitrix),
            dify_provider(dify, "chatflow")
        )
    };
    let mut config = HostConfig::default().queue("max_in_flight_per_tenant = 4");
    config.connectors.push(connector("slow", "tenant-a", &slow));
    config.connectors.push(connector("fast", "tenant-b", &fast));
    let host = config.start().await;
    slow.hold();
    for n in 0..30 {
        deliver(&host, "slow", bitrix_events::message_add(&chat(&bitrix, 1000 + n, "wait"))).await;
    }
    slow.wait_for_requests(4, WAIT).await;
    for n in 0..5 {
        deliver(&host, "fast", bitrix_events::message_add(&chat(&bitrix, 2000 + n, &format!("fast {n}")))).await;
    }
    let delivered = bitrix.wait_for_delivered(5, WAIT).await;
    assert!(delivered.iter().all(|t| t.starts_with("Dify says: fast")), "{delivered:?}");
    assert_eq!(slow.request_count(), 4, "tenant-a is held at its limit of 4");
    slow.release();
    bitrix.wait_for_delivered(35, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_portal_keep_to_its_leaky_bucket_without_spending_attempts() {
    let (rate, burst, n) = (10.0, 5, 30);
    let bitrix = FakeBitrix::start().await;
    let dify = FakeDify::start().await;
    let channel = bitrix_channel(&bitrix).replace(" }", &format!(", rate_limit_per_second = {rate}, rate_limit_burst = {burst} }}"));
    // Two attempts: a deferral that counted as one would end in the fallback.
    let host = HostConfig::default().retry(2, 50).connector(CONNECTOR, &channel, &dify_provider(&dify, "chatflow")).start().await;
    let texts: Vec<String> = (0..n).map(|k| format!("burst {k}")).collect();
    let started = std::time::Instant::now();
    let posts = texts.iter().enumerate().map(|(k, text)| deliver(&host, CONNECTOR, bitrix_events::message_add(&chat(&bitrix, 600 + k as u64, text))));
    futures::future::join_all(posts).await;
    let delivered = bitrix.wait_for_delivered(n, WAIT_RETRIES).await;
    tokio::time::sleep(SETTLE).await;
    let delivered_after = bitrix.calls_to("imbot.message.add").last().unwrap().at.duration_since(started);
    for text in &texts {
        assert_eq!(count(&delivered, &format!("Dify says: {text}")), 1, "{text} answered once: {delivered:#?}");
    }
    assert_eq!(bitrix.delivered_texts().len(), n, "no fallback, nothing twice");
    // Sends start no earlier than their slots: the burst at once, the rest one per 1/rate.
    let floor = Duration::from_secs_f64((n - burst) as f64 / rate);
    assert!(delivered_after >= floor, "{n} messages through a {rate}/s bucket (burst {burst}) took {delivered_after:?}, less than {floor:?}");
    // Slots more than a quarter of the call deadline away were deferred, not waited for.
    let (_, metrics) = host.get("/metrics").await;
    assert!(metrics.lines().any(|l| l.starts_with("switchboard_jobs_finished_total{") && l.contains("outcome=\"wait\"")), "no deferred job:\n{metrics}");
}
