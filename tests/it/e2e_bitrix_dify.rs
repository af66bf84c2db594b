//! Bitrix24 → host → `bitrix24` channel → `dify` provider → fake Dify, and
//! the reply back out as Bitrix24 REST calls.

use crate::{SETTLE, WAIT, WAIT_RETRIES, deliver, hook};
use reqwest::StatusCode;
use serde_json::json;
use switchboard_tests::bitrix_events::{self, EventParams, http_build_query};
use switchboard_tests::fake_dify::{self, DifyRequest};
use switchboard_tests::harness::{APP_TOKEN, FALLBACK, HostConfig, bitrix_channel, connector_toml, dify_provider, toml_string};
use switchboard_tests::{Call, FakeBitrix, FakeDify, TestHost};

const CONNECTOR: &str = "support";

struct Env {
    bitrix: FakeBitrix,
    dify: FakeDify,
    host: TestHost,
}

/// Fakes plus a host with one connector `support`: bitrix24 → dify in `mode`.
async fn env(mode: &str) -> Env {
    env_forwarding(mode, &[]).await
}

/// [`env`] with `forward_secret_variables` on the connector.
async fn env_forwarding(mode: &str, forwarded: &[&str]) -> Env {
    let bitrix = FakeBitrix::start().await;
    let dify = FakeDify::start().await;
    let mut config = HostConfig::default();
    let names: Vec<String> = forwarded.iter().map(|name| toml_string(name)).collect();
    let connector = connector_toml(CONNECTOR, FALLBACK, &bitrix_channel(&bitrix), &dify_provider(&dify, mode));
    config.connectors.push(format!("{connector}forward_secret_variables = [{}]\n", names.join(", ")));
    let host = config.start().await;
    Env { bitrix, dify, host }
}

impl Env {
    fn private(&self) -> EventParams {
        EventParams::private(&self.bitrix.client_endpoint())
    }

    fn group(&self) -> EventParams {
        EventParams::group(&self.bitrix.client_endpoint())
    }

    /// Dify chat/workflow requests (file uploads left out).
    fn dify_calls(&self) -> Vec<DifyRequest> {
        self.dify.requests().into_iter().filter(|r| r.path != "/v1/files/upload").collect()
    }

    /// After a settle period, require exactly `n` calls of `method` (no duplicates).
    async fn assert_exactly(&self, method: &str, n: usize) -> Vec<Call> {
        tokio::time::sleep(SETTLE).await;
        let calls = self.bitrix.calls_to(method);
        assert_eq!(calls.len(), n, "expected exactly {n} `{method}` call(s); all calls: {:#?}", self.bitrix.calls());
        calls
    }
}

/// Every expected input must be present with exactly this string value.
fn assert_inputs(request: &DifyRequest, expected: &[(&str, &str)]) {
    let inputs = request.inputs();
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(k, v)| inputs.get(*k).and_then(|x| x.as_str()) != Some(*v))
        .map(|(k, v)| format!("{k}: expected {v:?}, got {:?}", inputs.get(*k)))
        .collect();
    assert!(wrong.is_empty(), "Dify inputs are wrong:\n  {}\nall inputs: {:#?}", wrong.join("\n  "), inputs);
}

/// The reply must be authenticated with one of the event's tokens (bot token preferred by Bitrix24).
fn assert_authenticated(call: &Call, p: &EventParams) {
    let auth = call.auth().unwrap_or_else(|| panic!("{} was called without `auth`: {}", call.method, call.body));
    assert!(auth == p.bot_access_token || auth == p.access_token, "{} used auth {auth:?}, not a token from the event", call.method);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_answer() {
    let env = env("chatflow").await;
    let (status, _) = env.host.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = env.host.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_message_is_answered_by_dify_with_bitbot_variables() {
    let env = env("chatflow").await;
    let p = env.private().with_message("What are your opening hours?").with_message_id(1001);
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p)).await;

    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    let reply = &sent[0];
    assert_eq!(reply.require("BOT_ID"), "55");
    assert_eq!(reply.require("DIALOG_ID"), "17");
    assert_eq!(reply.require("MESSAGE"), "Dify says: What are your opening hours?");
    assert_authenticated(reply, &p);

    let requests = env.dify_calls();
    assert_eq!(requests.len(), 1, "one Dify request per message: {requests:#?}");
    let request = &requests[0];
    assert_eq!(request.path, "/v1/chat-messages");
    assert_eq!(request.header("authorization"), Some("Bearer dify-key"));
    assert_eq!(request.str_field("query"), Some("What are your opening hours?"));
    assert_eq!(request.conversation_id(), "", "the first message starts a new conversation");
    assert!(request.str_field("user").is_some_and(|u| !u.is_empty()), "Dify requires `user`: {}", request.body);
    let endpoint = env.bitrix.client_endpoint();
    assert_inputs(
        request,
        &[
            ("event", "ONIMBOTMESSAGEADD"),
            ("client_endpoint", endpoint.as_str()),
            // Platform tokens stay with the channel unless the connector forwards them.
            ("access_token", ""),
            ("user_access_token", ""),
            ("bot_access_token", ""),
            ("BOT_ID", "55"),
            ("DIALOG_ID", "17"),
            ("MESSAGE_ID", "1001"),
            ("MESSAGE", "What are your opening hours?"),
            ("AUTHOR_ID", "17"),
            ("USER_ID", "17"),
            ("FIRST_NAME", "John"),
            ("LAST_NAME", "Doe"),
            ("IS_BOT", "N"),
            ("IS_CONNECTOR", "N"),
            ("IS_NETWORK", "N"),
            ("IS_EXTRANET", "N"),
            ("LANGUAGE", "en"),
        ],
    );

    env.assert_exactly("imbot.message.add", 1).await;
    assert_eq!(env.dify_calls().len(), 1, "no duplicate Dify requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_tokens_reach_dify_only_per_forwarded_variable() {
    let env = env_forwarding("chatflow", &["bot_access_token"]).await;
    let p = env.private().with_message("Which token do you see?").with_message_id(1004);
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p)).await;
    env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    let request = &env.dify_calls()[0];
    assert_inputs(request, &[("bot_access_token", "bot-access-token-55"), ("access_token", ""), ("user_access_token", "")]);
    assert!(!request.body.to_string().contains("user-access-token-17"), "the user's token reached Dify: {}", request.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_variable_the_channel_does_not_declare_secret_is_a_config_error() {
    let bitrix = FakeBitrix::start().await;
    let dify = FakeDify::start().await;
    let connector = connector_toml(CONNECTOR, FALLBACK, &bitrix_channel(&bitrix), &dify_provider(&dify, "chatflow"));
    let mut config = HostConfig::default();
    config.connectors.push(format!("{connector}forward_secret_variables = [\"MESSAGE\"]\n"));
    let parsed = switchboard::Config::from_toml_str(&config.render()).unwrap();
    let error = format!("{:#}", switchboard::Server::start(parsed).await.err().expect("the host refuses to start"));
    assert!(error.contains("`MESSAGE`") && error.contains("access_token, user_access_token, bot_access_token"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_missing_a_required_setting_is_refused_with_its_description() {
    let bitrix = FakeBitrix::start().await;
    let provider = format!("{{ plugin = \"dify\", base_url = {} }}", toml_string("https://api.dify.ai/v1"));
    let config = HostConfig::default().connector(CONNECTOR, &bitrix_channel(&bitrix), &provider).render();
    let error =
        format!("{:#}", switchboard::Server::start(switchboard::Config::from_toml_str(&config).unwrap()).await.err().expect("the host refuses to start"));
    assert!(error.contains("the provider `dify` needs the setting(s) `api_key` (the Dify app's API key)"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_own_plugin_replaces_the_shipped_one_for_that_tenant_only() {
    let bitrix = FakeBitrix::start().await;
    let dify = FakeDify::start().await;
    // Tenant `acme` brings its own `dify` (here the echo component).
    let mut config = HostConfig::default().toml(&format!("[tenant_plugins.acme]\ndify = {}\n", toml_string(switchboard_tests::components::ECHO)));
    for (id, tenant) in [("acme-support", "acme"), ("other-support", "other")] {
        config = config.tenant_connector(id, tenant, &bitrix_channel(&bitrix), &dify_provider(&dify, "chatflow"));
    }
    let host = config.start().await;
    let p = EventParams::private(&bitrix.client_endpoint());
    deliver(&host, "acme-support", bitrix_events::message_add(&p.clone().with_message("hi from acme").with_message_id(1301))).await;
    deliver(&host, "other-support", bitrix_events::message_add(&p.clone().with_message("hi from other").with_message_id(1302))).await;
    let mut texts = bitrix.wait_for_delivered(2, WAIT).await;
    texts.sort();
    assert_eq!(texts, ["Dify says: hi from other", "echo: hi from acme"]);
    assert_eq!(dify.request_count(), 1, "only the other tenant's message reached the shipped Dify plugin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_line_group_chat_is_answered_in_the_chat() {
    let env = env("chatflow").await;
    let p = env.group().with_message("I need help with my order").with_message_id(1002);
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p)).await;

    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("BOT_ID"), "55");
    assert_eq!(sent[0].require("DIALOG_ID"), "chat7");
    assert_eq!(sent[0].require("MESSAGE"), "Dify says: I need help with my order");
    assert_authenticated(&sent[0], &p);

    let requests = env.dify_calls();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].str_field("query"), Some("I need help with my order"));
    assert_inputs(
        &requests[0],
        &[
            ("DIALOG_ID", "chat7"),
            ("CHAT_ID", "7"),
            ("CHAT_TITLE", "client chat John Doe"),
            ("CHAT_AUTHOR_ID", "17"),
            ("CHAT_ENTITY_ID", "separator|3|7778889966|13"),
            ("CHAT_ENTITY_DATA_1", "Y|DEAL|1|N|N|17|1765971491|0|0|0"),
            ("CHAT_ENTITY_DATA_2", "LEAD|0|COMPANY|0|CONTACT|1|DEAL|1"),
            ("IS_CONNECTOR", "Y"),
            ("MESSAGE_ID", "1002"),
        ],
    );
    env.assert_exactly("imbot.message.add", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_is_answered_with_imbot_command_answer() {
    let env = env("chatflow").await;
    let p = env.private().with_command("12", "help", "topic").with_message_id(1003);
    deliver(&env.host, CONNECTOR, bitrix_events::command_add(&p)).await;

    let sent = env.bitrix.wait_for_method("imbot.command.answer", 1, WAIT).await;
    let requests = env.dify_calls();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let query = requests[0].str_field("query").expect("Dify requires `query`").to_string();
    assert!(!query.is_empty(), "a command must not be sent as an empty query");
    assert_inputs(
        &requests[0],
        &[("event", "ONIMCOMMANDADD"), ("COMMAND_ID", "12"), ("COMMAND", "help"), ("COMMAND_PARAMS", "topic"), ("BOT_ID", "55"), ("DIALOG_ID", "17")],
    );

    let answer = &sent[0];
    assert_eq!(answer.require("COMMAND_ID"), "12");
    assert_eq!(answer.require("MESSAGE_ID"), "1003");
    assert_eq!(answer.require("MESSAGE"), format!("Dify says: {query}"));
    assert_authenticated(answer, &p);

    env.assert_exactly("imbot.command.answer", 1).await;
    assert!(env.bitrix.calls_to("imbot.message.add").is_empty(), "a command is answered with imbot.command.answer only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_without_text_is_described_to_dify() {
    let env = env("chatflow").await;
    let url = env.bitrix.download_url("48");
    let p = env.private().with_message("").with_file("48", "report.pdf", "file", &url).with_message_id(1004);
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p)).await;

    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    let requests = env.dify_calls();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].str_field("query"), Some("File sent: report.pdf"));
    assert_inputs(&requests[0], &[("file_id", "48"), ("MESSAGE_ID", "1004")]);
    assert_eq!(sent[0].require("DIALOG_ID"), "17");
    assert_eq!(sent[0].require("MESSAGE"), "Dify says: File sent: report.pdf");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_message_continues_the_dify_conversation() {
    let env = env("chatflow").await;
    let p = env.private();
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p.clone().with_message("First question").with_message_id(2001))).await;
    env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p.with_message("Second question").with_message_id(2002))).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;

    assert_eq!(sent[0].require("MESSAGE"), "Dify says: First question");
    assert_eq!(sent[1].require("MESSAGE"), "Dify says: Second question");
    let issued = env.dify.issued_conversations();
    assert_eq!(issued.len(), 1, "the second message must not start a new conversation: {issued:?}");
    let requests = env.dify_calls();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(requests[0].conversation_id(), "");
    assert_eq!(requests[1].conversation_id(), issued[0]);
    assert_eq!(requests[1].str_field("query"), Some("Second question"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgotten_conversation_is_restarted_and_the_user_still_gets_an_answer() {
    let env = env("chatflow").await;
    let p = env.private();
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p.clone().with_message("First question").with_message_id(2101))).await;
    env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;

    env.dify.forget_conversations();
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p.clone().with_message("Second question").with_message_id(2102))).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;
    assert_eq!(sent[1].require("MESSAGE"), "Dify says: Second question", "the 404 must be recovered, not turned into the fallback");

    let issued = env.dify.issued_conversations();
    assert_eq!(issued.len(), 2, "a new conversation must be started after the 404: {issued:?}");
    let requests = env.dify_calls();
    let trail: Vec<(&str, u16)> = requests.iter().map(|r| (r.conversation_id(), r.status)).collect();
    assert_eq!(trail, vec![("", 200), (issued[0].as_str(), 404), ("", 200)], "expected: new conversation, stale id → 404, retry with a new conversation");

    // The new conversation is the one remembered from now on.
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p.with_message("Third question").with_message_id(2103))).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 3, WAIT).await;
    assert_eq!(sent[2].require("MESSAGE"), "Dify says: Third question");
    let requests = env.dify_calls();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    assert_eq!(requests[3].conversation_id(), issued[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_outputs_become_reply_lines() {
    let env = env("workflow").await;
    env.dify.set_workflow_outputs(json!({"answer": "Your ticket is open", "topic": "billing"}));
    let p = env.private().with_message("Check my ticket").with_message_id(1005);
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p)).await;

    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    let message = sent[0].require("MESSAGE");
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines, vec!["answer: Your ticket is open", "topic: billing"], "whole MESSAGE: {message:?}");
    assert_eq!(sent[0].require("DIALOG_ID"), "17");

    let requests = env.dify_calls();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].path, "/v1/workflows/run");
    assert_eq!(requests[0].str_field("response_mode"), Some("blocking"));
    assert_eq!(requests[0].header("authorization"), Some("Bearer dify-key"));
    assert_inputs(&requests[0], &[("MESSAGE", "Check my ticket"), ("BOT_ID", "55"), ("DIALOG_ID", "17")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_app_answer_is_assembled_from_the_stream() {
    let env = env("agent").await;
    env.dify.set_agent_mode(true);
    env.dify.set_answer(Some("Hello from the agent. Everything is fine."));
    let p = env.private().with_message("Status?").with_message_id(1006);
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p)).await;

    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "Hello from the agent. Everything is fine.");
    let requests = env.dify_calls();
    let streamed = requests
        .iter()
        .find(|r| r.str_field("response_mode") == Some("streaming") && r.status == 200)
        .unwrap_or_else(|| panic!("no streaming request reached Dify: {requests:#?}"));
    assert_eq!(streamed.path, "/v1/chat-messages");
    assert_eq!(streamed.str_field("query"), Some("Status?"));
    env.assert_exactly("imbot.message.add", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_application_token_is_forbidden_and_nothing_is_processed() {
    let env = env("chatflow").await;
    let p = env.private().with_application_token("not-the-app-token").with_message_id(1007);
    assert_ne!(p.application_token, APP_TOKEN);
    let (status, body) = env.host.post_form(&hook(CONNECTOR), bitrix_events::message_add(&p)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "body: {body}");

    tokio::time::sleep(SETTLE).await;
    assert_eq!(env.dify.request_count(), 0, "a forged event must never reach Dify: {:#?}", env.dify.requests());
    assert!(env.bitrix.calls().is_empty(), "a forged event must not cause Bitrix24 calls: {:#?}", env.bitrix.calls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_failure_sends_the_fallback_message() {
    let env = env("chatflow").await;
    env.dify.fail_next(1000, 500, fake_dify::error_body(500, "internal_server_error", "Internal Server Error."));
    let p = env.private().with_message("Anyone there?").with_message_id(1008);
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p)).await;

    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT_RETRIES).await;
    assert_eq!(sent[0].require("MESSAGE"), FALLBACK);
    assert_eq!(sent[0].require("DIALOG_ID"), "17");
    assert_eq!(sent[0].require("BOT_ID"), "55");
    // 500 is transient: the host's default `retry.attempts` (3) are all used.
    assert_eq!(env.dify.request_count(), 3, "every attempt reached Dify");
    assert!(env.dify.requests().iter().all(|r| r.status == 500));
    env.assert_exactly("imbot.message.add", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_long_input_is_not_retried_and_the_user_gets_the_fallback() {
    let env = env_forwarding("chatflow", &["access_token"]).await;
    // Dify's default max length of a text-input variable; the BitBot tokens are longer.
    env.dify.set_max_input_length(Some(48));
    let mut p = env.private().with_message("Hello").with_message_id(1011);
    p.access_token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIyIiwicG9ydGFsIjoiYjI0In0.c2ln".into();
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p)).await;

    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), FALLBACK);
    let requests = env.dify.requests();
    assert_eq!(requests.len(), 1, "a configuration error is not retried");
    assert_eq!(requests[0].status, 400);
    env.assert_exactly("imbot.message.add", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markdown_answer_is_converted_to_bbcode() {
    let env = env("chatflow").await;
    env.dify.set_answer(Some("This is **bold** text"));
    let p = env.private().with_message("Format something").with_message_id(1009);
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p)).await;

    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "This is [B]bold[/B] text");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_key_nested_5000_levels_deep_is_a_400_with_a_reason() {
    let env = env("chatflow").await;
    let body = format!("event=ONIMBOTMESSAGEADD&data{}=1", "%5Bx%5D".repeat(5000));
    let (status, text) = env.host.post_form(&hook(CONNECTOR), body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "body: {text}");
    assert!(text.contains("nested 5000 levels deep"), "{text}");
    let (status, _) = env.host.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_event_is_rejected_with_a_reason() {
    let env = env("chatflow").await;
    let endpoint = env.bitrix.client_endpoint();
    // Authentic (right application token) but without data[PARAMS] / data[BOT].
    let body = http_build_query(&[
        ("event".into(), "ONIMBOTMESSAGEADD".into()),
        ("ts".into(), "1771928985".into()),
        ("auth[member_id]".into(), "a1b2c3".into()),
        ("auth[client_endpoint]".into(), endpoint),
        ("auth[application_token]".into(), APP_TOKEN.into()),
    ]);
    let (status, text) = env.host.post_form(&hook(CONNECTOR), body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "body: {text}");
    assert!(!text.trim().is_empty(), "a 400 must say what is wrong");

    tokio::time::sleep(SETTLE).await;
    assert_eq!(env.dify.request_count(), 0);
    assert!(env.bitrix.calls().is_empty(), "{:#?}", env.bitrix.calls());
}
