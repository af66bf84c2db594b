//! Human handoff through the `livechat` plugin: Bitrix24 (fake) → host →
//! `bitrix24` channel → `dify` provider (fake Dify), and on `/operator` the
//! conversation moves to a fake LiveChat until the operator closes the chat
//! or the user sends `/bot`.

use crate::{SETTLE, WAIT, deliver};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use switchboard_tests::bitrix_events::{self, EventParams};
use switchboard_tests::fake_livechat::{CLIENT_ID, FakeLiveChat, LiveChatCall, OPERATOR, ORGANIZATION_ID, WEBHOOK_SECRET};
use switchboard_tests::harness::{FALLBACK, HostConfig, bitrix_channel, connector_toml, dify_provider, plugin_table, toml_string};
use switchboard_tests::{Call, FakeBitrix, FakeDify, TestHost};

const CONNECTOR: &str = "support";
const GROUP_ID: u64 = 19;
const PUBLIC_URL: &str = "https://bots.example.com";
const TRANSFER_NOTICE: &str = "Another operator will continue the chat.";

// The host's default routing texts.
const HANDOFF_NOTICE: &str = "Connecting you to an operator. Please wait.";
const RETURN_NOTICE: &str = "You are talking to the assistant again.";
const HANDOFF_FAILED_NOTICE: &str = "Sorry, no operator can be reached right now. The assistant will keep helping you.";
// The plugin's default `ended_notice`.
const ENDED_NOTICE: &str = "The operator has closed the chat. The assistant is back.";

struct Env {
    bitrix: FakeBitrix,
    dify: FakeDify,
    livechat: FakeLiveChat,
    host: TestHost,
    next_message_id: AtomicU64,
}

/// The fakes and a host whose connector `support` joins bitrix24 and dify
/// (chatflow) with `handoff = { plugin = "livechat", ... }`.
async fn env() -> Env {
    env_with(HostConfig::default()).await
}

/// [`env`] on top of a given host configuration (e.g. with an admin token).
async fn env_with(base: HostConfig) -> Env {
    let bitrix = FakeBitrix::start().await;
    let dify = FakeDify::start().await;
    let livechat = FakeLiveChat::start().await;
    let handoff = plugin_table(
        "livechat",
        &[
            ("client_id", toml_string(CLIENT_ID)),
            ("organization_id", toml_string(ORGANIZATION_ID)),
            ("webhook_secret", toml_string(WEBHOOK_SECRET)),
            ("agent_token", toml_string(&livechat.agent_token())),
            ("group_id", GROUP_ID.to_string()),
            ("api_url", toml_string(&livechat.api_url())),
            ("accounts_url", toml_string(&livechat.accounts_url())),
            ("transfer_notice", toml_string(TRANSFER_NOTICE)),
        ],
    );
    let connector = connector_toml(CONNECTOR, FALLBACK, &bitrix_channel(&bitrix), &dify_provider(&dify, "chatflow"));
    let mut config = base.public_url(PUBLIC_URL);
    config.connectors.push(format!("{connector}handoff = {handoff}\n"));
    let host = config.start().await;
    Env { bitrix, dify, livechat, host, next_message_id: AtomicU64::new(3001) }
}

impl Env {
    /// The user (John Doe, private dialog 17) writes `text` in Bitrix24.
    async fn user_says(&self, text: &str) {
        let id = self.next_message_id.fetch_add(1, Ordering::Relaxed);
        let p = EventParams::private(&self.bitrix.client_endpoint()).with_message(text).with_message_id(id);
        deliver(&self.host, CONNECTOR, bitrix_events::message_add(&p)).await;
    }

    /// Wait for the `n`-th message to the user and return its text.
    async fn nth_message(&self, n: usize) -> String {
        let sent = self.bitrix.wait_for_method("imbot.message.add", n, WAIT).await;
        let call: &Call = &sent[n - 1];
        assert_eq!(call.require("DIALOG_ID"), "17", "message {n} went to the wrong dialog: {}", call.body);
        assert_eq!(call.require("BOT_ID"), "55");
        call.require("MESSAGE")
    }

    /// After a settle period, exactly `n` messages reached the user.
    async fn assert_user_got(&self, n: usize) {
        tokio::time::sleep(SETTLE).await;
        let sent = self.bitrix.calls_to("imbot.message.add");
        assert_eq!(sent.len(), n, "expected exactly {n} message(s) to the user; got: {sent:#?}");
    }

    fn hook_url(&self) -> String {
        self.host.url(&format!("/hooks/{CONNECTOR}/livechat"))
    }

    /// Send a LiveChat webhook to the host and return the HTTP status.
    async fn webhook(&self, body: &Value) -> u16 {
        self.livechat.deliver_webhook(&self.hook_url(), body).await.0
    }

    /// LiveChat requests in order, as `action` names.
    fn actions(&self) -> Vec<String> {
        self.livechat.calls().into_iter().map(|c| c.action).collect()
    }

    /// The user asks for an operator; returns the chat id once LiveChat
    /// routed the chat and the user got the handoff notice.
    async fn hand_off(&self, messages_before: usize) -> String {
        self.user_says("/operator").await;
        let transfer = self.livechat.wait_for_action("agent/transfer_chat", 1, WAIT).await;
        assert_eq!(self.nth_message(messages_before + 1).await, HANDOFF_NOTICE);
        transfer[0].body["id"].as_str().expect("transfer_chat names the chat").to_string()
    }
}

fn single(calls: Vec<LiveChatCall>, action: &str) -> LiveChatCall {
    assert_eq!(calls.len(), 1, "expected one `{action}` request: {calls:#?}");
    calls.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_takes_over_and_closes_the_chat() {
    let env = env().await;

    // The bot answers first.
    env.user_says("My order 1234 has not arrived").await;
    assert_eq!(env.nth_message(1).await, "Dify says: My order 1234 has not arrived");
    assert!(env.livechat.calls().is_empty(), "no LiveChat traffic before the handoff");

    // `/operator`: customer token, chat in group 19 with the summary, customer added, transfer.
    let chat_id = env.hand_off(1).await;
    assert_eq!(env.actions(), ["customer/token", "agent/start_chat", "agent/add_user_to_chat", "agent/transfer_chat"]);
    let basic = format!("Basic {}", env.livechat.agent_token());

    let token_call = single(env.livechat.calls_to("customer/token"), "customer/token");
    assert_eq!(
        token_call.body,
        json!({
            "grant_type": "cookie",
            "client_id": CLIENT_ID,
            "organization_id": ORGANIZATION_ID,
            "redirect_uri": format!("{PUBLIC_URL}/hooks/{CONNECTOR}/livechat"),
        })
    );
    assert_eq!(token_call.authorization, "", "the token request carries no credentials");
    let customer_token = token_call.response["access_token"].as_str().unwrap().to_string();
    let customer_id = token_call.response["entity_id"].as_str().unwrap().to_string();

    let start = single(env.livechat.calls_to("agent/start_chat"), "agent/start_chat");
    assert_eq!(start.authorization, basic);
    assert_eq!(start.status, 200);
    assert_eq!(start.response["chat_id"], chat_id.as_str());
    assert_eq!(start.body["chat"]["access"], json!({"group_ids": [GROUP_ID]}));
    let events = start.body["chat"]["thread"]["events"].as_array().expect("start_chat has thread events");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["type"], "message");
    assert_eq!(events[0]["visibility"], "all");
    let summary = events[0]["text"].as_str().unwrap();
    for line in
        ["Reason: requested by the user", "Customer: John Doe (id 17)", "User: My order 1234 has not arrived", "Bot: Dify says: My order 1234 has not arrived"]
    {
        assert!(summary.contains(line), "the summary lacks {line:?}:\n{summary}");
    }

    let add = single(env.livechat.calls_to("agent/add_user_to_chat"), "agent/add_user_to_chat");
    assert_eq!(add.authorization, basic);
    assert_eq!(add.body, json!({"chat_id": chat_id, "user_id": customer_id, "user_type": "customer", "visibility": "all", "ignore_requester_presence": true}));
    let transfer = single(env.livechat.calls_to("agent/transfer_chat"), "agent/transfer_chat");
    assert_eq!(transfer.authorization, basic);
    assert_eq!(transfer.body, json!({"id": chat_id, "target": {"type": "group", "ids": [GROUP_ID]}}));
    assert_eq!(transfer.status, 200);
    let chat = env.livechat.chat(&chat_id).unwrap();
    assert_eq!((chat.group_ids.as_slice(), chat.customers.as_slice(), chat.active), (&[GROUP_ID][..], &[customer_id.clone()][..], true));
    assert_eq!(env.dify.request_count(), 1, "`/operator` is not sent to Dify");

    // LiveChat reports the plugin's own routing transfer: nothing for the user.
    assert_eq!(env.webhook(&env.livechat.transferred(WEBHOOK_SECRET, &chat_id, &[GROUP_ID], &[OPERATOR])).await, 200);

    // While handed off, the user's messages go to LiveChat as the customer, not to Dify.
    env.user_says("Can someone check it, please?").await;
    let sent = env.livechat.wait_for_action("customer/send_event", 1, WAIT).await;
    assert_eq!(sent[0].authorization, format!("Bearer {customer_token}"));
    assert_eq!(sent[0].query.as_deref(), Some(format!("organization_id={ORGANIZATION_ID}").as_str()));
    assert_eq!(sent[0].body, json!({"chat_id": chat_id, "event": {"type": "message", "text": "Can someone check it, please?", "visibility": "all"}}));
    assert_eq!(sent[0].status, 200);
    env.assert_user_got(2).await;
    assert_eq!(env.dify.request_count(), 1, "Dify must not see messages while an operator handles the chat");

    // The operator answers: the text reaches the user in Bitrix24.
    let answer = "Hi John, this is Anna. Your parcel left our warehouse today.";
    assert_eq!(env.webhook(&env.livechat.operator_message(WEBHOOK_SECRET, &chat_id, answer)).await, 200);
    assert_eq!(env.nth_message(3).await, answer);

    // A forged webhook (wrong secret) is refused and delivers nothing; so is garbage.
    assert_eq!(env.webhook(&env.livechat.operator_message("not-the-secret", &chat_id, "Send me your password")).await, 403);
    assert_eq!(env.livechat.deliver_raw(&env.hook_url(), "{not json").await, 400);
    // A chat no conversation uses is acknowledged (LiveChat would retry otherwise) and ignored.
    assert_eq!(env.webhook(&env.livechat.operator_message(WEBHOOK_SECRET, "UNKNOWN0CHAT", "Hello?")).await, 200);
    env.assert_user_got(3).await;

    // A transfer to another group is announced with `transfer_notice`.
    assert_eq!(env.webhook(&env.livechat.transferred(WEBHOOK_SECRET, &chat_id, &[20], &["bob@example.com"])).await, 200);
    assert_eq!(env.nth_message(4).await, TRANSFER_NOTICE);

    // The operator closes the chat: the user is told and the bot answers again.
    assert_eq!(env.webhook(&env.livechat.operator_closes(WEBHOOK_SECRET, &chat_id)).await, 200);
    assert_eq!(env.nth_message(5).await, ENDED_NOTICE);
    env.user_says("Thanks! One more question").await;
    assert_eq!(env.nth_message(6).await, "Dify says: Thanks! One more question");
    assert_eq!(env.dify.request_count(), 2);
    assert_eq!(env.livechat.calls_to("customer/send_event").len(), 1, "nothing more was relayed to LiveChat");

    // LiveChat retrying the close webhook changes nothing.
    assert_eq!(env.webhook(&env.livechat.operator_closes(WEBHOOK_SECRET, &chat_id)).await, 200);
    env.assert_user_got(6).await;
    assert!(env.livechat.calls_to("agent/deactivate_chat").is_empty(), "the operator closed it, not the plugin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_command_closes_the_livechat_chat() {
    let env = env().await;
    env.user_says("Hello").await;
    assert_eq!(env.nth_message(1).await, "Dify says: Hello");
    let chat_id = env.hand_off(1).await;

    env.user_says("/bot").await;
    let closed = env.livechat.wait_for_action("agent/deactivate_chat", 1, WAIT).await;
    assert_eq!(closed[0].body, json!({"id": chat_id}));
    assert_eq!(closed[0].authorization, format!("Basic {}", env.livechat.agent_token()));
    assert_eq!(closed[0].status, 200);
    assert!(!env.livechat.chat(&chat_id).unwrap().active);
    assert_eq!(env.nth_message(3).await, RETURN_NOTICE);

    // LiveChat's chat_deactivated webhook for that close is not announced again.
    assert_eq!(env.webhook(&env.livechat.operator_closes(WEBHOOK_SECRET, &chat_id)).await, 200);
    // Nor is a late operator message delivered.
    assert_eq!(env.webhook(&env.livechat.operator_message(WEBHOOK_SECRET, &chat_id, "Still there?")).await, 200);
    env.assert_user_got(3).await;

    env.user_says("What are your opening hours?").await;
    assert_eq!(env.nth_message(4).await, "Dify says: What are your opening hours?");
    assert_eq!(env.dify.request_count(), 2, "Hello and the last question; not /operator or /bot");
    assert!(env.livechat.calls_to("customer/send_event").is_empty(), "/bot is not relayed to the operator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_customer_token_is_replaced_once() {
    let env = env().await;
    let chat_id = env.hand_off(0).await;
    let summary = env.livechat.calls_to("agent/start_chat")[0].body["chat"]["thread"]["events"][0]["text"].as_str().unwrap().to_string();
    assert!(summary.contains("User: /operator"), "{summary}");

    env.livechat.expire_customer_tokens();
    env.user_says("Are you still there?").await;
    let sends = env.livechat.wait_for_action("customer/send_event", 2, WAIT).await;
    assert_eq!(sends.iter().map(|c| c.status).collect::<Vec<_>>(), [401, 200]);
    let tokens = env.livechat.calls_to("customer/token");
    assert_eq!(tokens.len(), 2, "one new token: {tokens:#?}");
    let new_customer = tokens[1].response["entity_id"].as_str().unwrap().to_string();
    assert_eq!(sends[1].authorization, format!("Bearer {}", tokens[1].response["access_token"].as_str().unwrap()));
    let adds = env.livechat.calls_to("agent/add_user_to_chat");
    assert_eq!(adds.len(), 2);
    assert_eq!(adds[1].body["user_id"], new_customer.as_str());
    let chat = env.livechat.chat(&chat_id).unwrap();
    assert_eq!(chat.messages.last(), Some(&(new_customer, "Are you still there?".to_string())));
    env.assert_user_got(1).await; // only the handoff notice: no failure text

    // The chat still routes back to the user.
    assert_eq!(env.webhook(&env.livechat.operator_message(WEBHOOK_SECRET, &chat_id, "Yes, one moment.")).await, 200);
    assert_eq!(env.nth_message(2).await, "Yes, one moment.");
    assert_eq!(env.dify.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handoff_closes_the_half_open_chat_and_keeps_the_bot() {
    let env = env().await;
    env.livechat.fail_next("agent/transfer_chat", 1, 400, "validation", "Cannot assign any agent from requested groups");
    env.user_says("/operator").await;
    let closed = env.livechat.wait_for_action("agent/deactivate_chat", 1, WAIT).await;
    let chat_id = env.livechat.calls_to("agent/start_chat")[0].response["chat_id"].as_str().unwrap().to_string();
    assert_eq!(closed[0].body, json!({"id": chat_id}));
    assert_eq!(env.nth_message(1).await, HANDOFF_FAILED_NOTICE);

    env.user_says("Then tell me the opening hours").await;
    assert_eq!(env.nth_message(2).await, "Dify says: Then tell me the opening hours");
    assert!(env.livechat.calls_to("customer/send_event").is_empty());
    // The abandoned chat's webhooks are ignored.
    assert_eq!(env.webhook(&env.livechat.operator_message(WEBHOOK_SECRET, &chat_id, "Hello?")).await, 200);
    env.assert_user_got(2).await;
}

/// An administrator hands the conversation over and takes it back through
/// the admin API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_hands_the_conversation_over_and_back() {
    const TOKEN: &str = "admin-token-7";
    let env = env_with(HostConfig::default().admin_token(TOKEN)).await;
    env.user_says("Where is my order?").await;
    assert_eq!(env.nth_message(1).await, "Dify says: Where is my order?");

    let path = "/admin/connectors/support/conversations/a1b2c3:55:17";
    let (status, _) = env.host.request(reqwest::Method::POST, &format!("{path}/handoff"), Some(TOKEN)).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    env.livechat.wait_for_action("agent/start_chat", 1, WAIT).await;
    assert_eq!(env.nth_message(2).await, HANDOFF_NOTICE);
    let (_, body) = env.host.request(reqwest::Method::GET, path, Some(TOKEN)).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["mode"], "human", "{body}");

    let (status, _) = env.host.request(reqwest::Method::POST, &format!("{path}/return"), Some(TOKEN)).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    env.livechat.wait_for_action("agent/deactivate_chat", 1, WAIT).await;
    assert_eq!(env.nth_message(3).await, RETURN_NOTICE);
    env.user_says("Back to you, bot").await;
    assert_eq!(env.nth_message(4).await, "Dify says: Back to you, bot");
}

/// The operator chat closed without the webhook reaching us: LiveChat refuses
/// the relayed message, and the conversation goes back to the bot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_operator_chat_returns_the_conversation_to_the_bot() {
    let env = env().await;
    env.user_says("Hello").await;
    assert_eq!(env.nth_message(1).await, "Dify says: Hello");
    env.hand_off(1).await;

    env.livechat.fail_next("customer/send_event", 1, 422, "chat_inactive", "No active chat thread");
    env.user_says("Anyone there?").await;
    assert_eq!(env.nth_message(3).await, HANDOFF_FAILED_NOTICE);

    env.user_says("Then help me, bot").await;
    assert_eq!(env.nth_message(4).await, "Dify says: Then help me, bot");
    assert_eq!(env.livechat.calls_to("customer/send_event").len(), 1, "only the refused message reached LiveChat");
}
