//! The conversation state machine without a help-desk plugin: handoff to
//! the platform's operator queue (Bitrix24 Open Lines), reset, the bot's
//! handoff marker, and the admin API.

use crate::{SETTLE, WAIT, deliver};
use reqwest::{Method, StatusCode};
use switchboard_tests::bitrix_events::{self, EventParams};
use switchboard_tests::harness::{HostConfig, bitrix_channel, plugin_table, toml_string};
use switchboard_tests::{FakeBitrix, FakeDify, TestHost};

const CONNECTOR: &str = "support";
const ADMIN_TOKEN: &str = "admin-secret-1";
const HANDOFF_NOTICE: &str = "Connecting you to an operator. Please wait.";
const RESET_NOTICE: &str = "Conversation reset. How can I help?";

async fn start(extradify_settings: &[(&str, String)]) -> (FakeBitrix, FakeDify, TestHost) {
    let (bitrix, dify) = (FakeBitrix::start().await, FakeDify::start().await);
    let mut settings = vec![("mode", toml_string("chatflow")), ("base_url", toml_string(&dify.base_url())), ("api_key", toml_string(&dify.api_key()))];
    settings.extend(extradify_settings.iter().cloned());
    let host = HostConfig::default().admin_token(ADMIN_TOKEN).connector(CONNECTOR, &bitrix_channel(&bitrix), &plugin_table("dify", &settings)).start().await;
    (bitrix, dify, host)
}

fn open_line(bitrix: &FakeBitrix) -> EventParams {
    EventParams::group(&bitrix.client_endpoint())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_command_moves_the_open_line_to_the_operator_queue() {
    let (bitrix, dify, host) = start(&[]).await;
    deliver(&host, CONNECTOR, bitrix_events::message_add(&open_line(&bitrix).with_message("/operator").with_message_id(5001))).await;

    let handoff = bitrix.wait_for_method("imopenlines.bot.session.operator", 1, WAIT).await;
    assert_eq!(handoff[0].require("CHAT_ID"), "7");
    let notices = bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(notices[0].require("MESSAGE"), HANDOFF_NOTICE);
    assert_eq!(notices[0].require("DIALOG_ID"), "chat7");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(dify.request_count(), 0, "the command is not sent to the bot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_marker_in_a_dify_answer_hands_the_chat_over() {
    let (bitrix, dify, host) = start(&[("handoff_marker", toml_string("[[handoff]]"))]).await;
    dify.set_answer(Some("Let me find a colleague for you. [[handoff]]"));
    deliver(&host, CONNECTOR, bitrix_events::message_add(&open_line(&bitrix).with_message("I want a refund").with_message_id(5101))).await;

    let handoff = bitrix.wait_for_method("imopenlines.bot.session.operator", 1, WAIT).await;
    assert_eq!(handoff[0].require("CHAT_ID"), "7");
    let sent = bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "Let me find a colleague for you.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_keyword_starts_a_new_dify_conversation() {
    let (bitrix, dify, host) = start(&[]).await;
    let p = EventParams::private(&bitrix.client_endpoint());
    deliver(&host, CONNECTOR, bitrix_events::message_add(&p.clone().with_message("first").with_message_id(5201))).await;
    bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    deliver(&host, CONNECTOR, bitrix_events::message_add(&p.clone().with_message("/reset").with_message_id(5202))).await;
    let sent = bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;
    assert_eq!(sent[1].require("MESSAGE"), RESET_NOTICE);
    deliver(&host, CONNECTOR, bitrix_events::message_add(&p.clone().with_message("again").with_message_id(5203))).await;
    bitrix.wait_for_method("imbot.message.add", 3, WAIT).await;

    let requests = dify.requests();
    assert_eq!(requests.len(), 2, "`/reset` itself is not sent to Dify");
    assert_eq!(requests[0].conversation_id(), "", "the first message starts a conversation");
    assert_eq!(requests[1].conversation_id(), "", "after a reset Dify starts a new conversation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_shows_the_conversation_and_resets_it() {
    let (bitrix, dify, host) = start(&[]).await;
    let p = EventParams::private(&bitrix.client_endpoint());
    deliver(&host, CONNECTOR, bitrix_events::message_add(&p.clone().with_message("hello there").with_message_id(5301))).await;
    bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;

    let conversation = format!("{}:{}:{}", p.member_id, p.bot_id, p.dialog_id);
    let path = format!("/admin/connectors/{CONNECTOR}/conversations/{conversation}");
    let (status, _) = host.request(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = host.request(Method::GET, &path, Some("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = host.request(Method::GET, &path, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let record: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(record["mode"], "bot");
    assert_eq!(record["transcript"][0]["author"], "user");
    assert_eq!(record["transcript"][0]["text"], "hello there");
    assert_eq!(record["transcript"][1]["author"], "bot");
    assert!(!body.contains("access_token"), "no tokens in the admin view: {body}");

    let (status, _) = host.request(Method::POST, &format!("{path}/frobnicate"), Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = host.request(Method::POST, &format!("{path}/reset"), Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let sent = bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;
    assert_eq!(sent[1].require("MESSAGE"), RESET_NOTICE);

    deliver(&host, CONNECTOR, bitrix_events::message_add(&p.clone().with_message("new topic").with_message_id(5302))).await;
    bitrix.wait_for_method("imbot.message.add", 3, WAIT).await;
    assert_eq!(dify.requests()[1].conversation_id(), "");

    let (status, _) = host.request(Method::GET, "/admin/connectors/support/conversations/nobody", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_is_off_without_a_token() {
    let (bitrix, dify) = (FakeBitrix::start().await, FakeDify::start().await);
    let host =
        HostConfig::default().connector(CONNECTOR, &bitrix_channel(&bitrix), &switchboard_tests::harness::dify_provider(&dify, "chatflow")).start().await;
    let (status, body) = host.request(Method::POST, "/admin/connectors/support/conversations/x/reset", Some("anything")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("admin_token"), "{body}");
}
