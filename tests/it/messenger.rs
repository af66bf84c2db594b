//! Bitrix24 → host → `bitrix24` channel → `messenger` provider → fake
//! messenger service; the service's asynchronous reply webhooks →
//! `/hooks/{connector}/messenger` → Bitrix24 REST calls.

use crate::{SETTLE, WAIT, deliver};
use switchboard_tests::fake_messenger::{self, DEFAULT_TOKEN, ReplyWebhook, SentMessage, TASK_ID};
use switchboard_tests::harness::{APP_TOKEN, FALLBACK, HostConfig, bitrix_channel, plugin_table, toml_string};
use switchboard_tests::{Call, EventParams, FakeBitrix, FakeMessenger, TestHost, bitrix_events};

const CONNECTOR: &str = "assist";
const SECRET: &str = "whsec-4f9c2a7e1b8d";
const STAFF_DIALOG: &str = "chat99";

struct Env {
    bitrix: FakeBitrix,
    messenger: FakeMessenger,
    host: TestHost,
}

fn provider(messenger: &FakeMessenger, extra: &[(&str, String)]) -> String {
    let mut settings = vec![
        ("base_url", toml_string(&messenger.base_url())),
        ("token", toml_string(DEFAULT_TOKEN)),
        ("task_id", toml_string(TASK_ID)),
        ("webhook_secret", toml_string(SECRET)),
    ];
    settings.extend(extra.iter().cloned());
    plugin_table("messenger", &settings)
}

/// Fakes plus a host with one connector `assist`: bitrix24 → messenger.
async fn env() -> Env {
    let bitrix = FakeBitrix::start().await;
    let messenger = FakeMessenger::start().await;
    let host = HostConfig::default().connector(CONNECTOR, &bitrix_channel(&bitrix), &provider(&messenger, &[])).start().await;
    Env { bitrix, messenger, host }
}

/// Like [`env`], with `staff_dialog_id = "chat99"` in the Bitrix24 channel.
async fn env_with_staff_dialog(provider_extra: &[(&str, String)]) -> Env {
    let bitrix = FakeBitrix::start().await;
    let messenger = FakeMessenger::start().await;
    let channel = plugin_table(
        "bitrix24",
        &[
            ("application_token", toml_string(APP_TOKEN)),
            ("portal_url", toml_string(&bitrix.client_endpoint())),
            ("staff_dialog_id", toml_string(STAFF_DIALOG)),
        ],
    );
    let host = HostConfig::default().connector(CONNECTOR, &channel, &provider(&messenger, provider_extra)).start().await;
    Env { bitrix, messenger, host }
}

impl Env {
    fn private(&self) -> EventParams {
        EventParams::private(&self.bitrix.client_endpoint())
    }

    /// A private dialog with another user (`DIALOG_ID` = `user_id`).
    fn private_with(&self, user_id: u64) -> EventParams {
        let mut p = self.private();
        p.user_id = user_id;
        p.dialog_id = user_id.to_string();
        p.access_token = format!("user-access-token-{user_id}");
        p
    }

    /// The callback URL with the secret in the query, as configured in the service.
    fn callback_url(&self) -> String {
        self.host.url(&format!("/hooks/{CONNECTOR}/messenger?secret={SECRET}"))
    }

    /// The callback URL without a secret.
    fn bare_callback_url(&self) -> String {
        self.host.url(&format!("/hooks/{CONNECTOR}/messenger"))
    }

    /// Deliver a user message and wait for its `send_message_external`.
    async fn user_says(&self, p: &EventParams, sent_before: usize) -> SentMessage {
        deliver(&self.host, CONNECTOR, bitrix_events::message_add(p)).await;
        let sent = self.messenger.wait_for_sent(sent_before + 1, WAIT).await;
        sent[sent_before].clone()
    }

    /// POST a webhook and require `200 {"ok":true}`.
    async fn webhook_ok(&self, hook: &ReplyWebhook) {
        let (status, body) = self.messenger.post_webhook(&self.callback_url(), hook).await;
        assert_eq!(status, 200, "webhook rejected: {body}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&body).ok(), Some(serde_json::json!({"ok": true})), "{body}");
    }

    /// After a settle period, require exactly `n` calls of `method`.
    async fn assert_exactly(&self, method: &str, n: usize) -> Vec<Call> {
        tokio::time::sleep(SETTLE).await;
        let calls = self.bitrix.calls_to(method);
        assert_eq!(calls.len(), n, "expected exactly {n} `{method}` call(s); all calls: {:#?}", self.bitrix.calls());
        calls
    }
}

fn assert_chat_id_shape(chat_id: &str) {
    assert!(
        chat_id.len() >= 8 && chat_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "chat_id must be a URL-safe opaque id: {chat_id:?}"
    );
    assert!(!chat_id.contains("a1b2c3") && !chat_id.contains(':'), "chat_id must not expose the conversation id: {chat_id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_message_is_sent_and_the_async_reply_reaches_the_dialog() {
    let env = env().await;
    let p = env.private().with_message("What are your opening hours?").with_message_id(3001);
    let sent = env.user_says(&p, 0).await;

    assert_eq!(sent.status, 200);
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {DEFAULT_TOKEN}").as_str()));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.field("task_id"), Some(TASK_ID));
    assert_eq!(sent.message(), "What are your opening hours?");
    let chat_id = sent.chat_id().to_string();
    assert_chat_id_shape(&chat_id);
    assert_eq!(sent.body.as_object().map(|o| o.len()), Some(3), "exactly task_id, chat_id, message: {}", sent.body);

    // The answer comes later: nothing is sent to Bitrix24 until the webhook.
    tokio::time::sleep(SETTLE).await;
    assert!(env.bitrix.calls().is_empty(), "no reply before the webhook: {:#?}", env.bitrix.calls());

    env.webhook_ok(&ReplyWebhook::bot(&chat_id, "We are open 9:00-18:00, Monday to Friday.")).await;
    let calls = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(calls[0].require("DIALOG_ID"), "17");
    assert_eq!(calls[0].require("BOT_ID"), "55");
    assert_eq!(calls[0].require("MESSAGE"), "We are open 9:00-18:00, Monday to Friday.");
    assert!(calls[0].auth().is_some_and(|a| a == p.bot_access_token || a == p.access_token), "{:?}", calls[0].body);

    // The next message of the same conversation uses the same chat_id.
    let second = env.user_says(&p.clone().with_message("And on Saturday?").with_message_id(3002), 1).await;
    assert_eq!(second.chat_id(), chat_id, "chat_id must be stable per conversation");
    assert_eq!(second.message(), "And on Saturday?");
    env.assert_exactly("imbot.message.add", 1).await;
    assert_eq!(env.messenger.sent().len(), 2, "one send per user message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_conversations_get_their_own_replies() {
    let env = env().await;
    let a = env.private().with_message("Question from A").with_message_id(3101);
    let b = env.private_with(23).with_message("Question from B").with_message_id(3102);
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&a)).await;
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&b)).await;
    let sent = env.messenger.wait_for_sent(2, WAIT).await;
    let chat_of =
        |text: &str| -> String { sent.iter().find(|s| s.message() == text).unwrap_or_else(|| panic!("no send for {text:?}: {sent:#?}")).chat_id().to_string() };
    let (chat_a, chat_b) = (chat_of("Question from A"), chat_of("Question from B"));
    assert_chat_id_shape(&chat_a);
    assert_chat_id_shape(&chat_b);
    assert_ne!(chat_a, chat_b, "different conversations need different chat ids");

    // B is answered first, then A.
    env.webhook_ok(&ReplyWebhook::bot(&chat_b, "Answer for B")).await;
    let calls = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!((calls[0].require("DIALOG_ID"), calls[0].require("MESSAGE")), ("23".to_string(), "Answer for B".to_string()));

    env.webhook_ok(&ReplyWebhook::bot(&chat_a, "Answer for A")).await;
    let calls = env.bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;
    assert_eq!((calls[1].require("DIALOG_ID"), calls[1].require("MESSAGE")), ("17".to_string(), "Answer for A".to_string()));
    env.assert_exactly("imbot.message.add", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_of_the_users_own_message_is_ignored() {
    let env = env().await;
    let p = env.private().with_message("Hello there").with_message_id(3201);
    let chat_id = env.user_says(&p, 0).await.chat_id().to_string();

    env.webhook_ok(&ReplyWebhook::user(&chat_id, "Hello there")).await;
    tokio::time::sleep(SETTLE).await;
    assert!(env.bitrix.calls().is_empty(), "an echo must not be sent back: {:#?}", env.bitrix.calls());

    // The mapping is intact: the bot's answer still arrives.
    env.webhook_ok(&ReplyWebhook::bot(&chat_id, "Hi! How can I help?")).await;
    let calls = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(calls[0].require("MESSAGE"), "Hi! How can I help?");
    env.assert_exactly("imbot.message.add", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_encoded_webhook_is_accepted() {
    let env = env().await;
    let p = env.private().with_message("Form please").with_message_id(3301);
    let chat_id = env.user_says(&p, 0).await.chat_id().to_string();

    let (status, body) = env.messenger.post_webhook_form(&env.callback_url(), &ReplyWebhook::bot(&chat_id, "Sent as a form & decoded: 100%")).await;
    assert_eq!(status, 200, "{body}");
    let calls = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(calls[0].require("DIALOG_ID"), "17");
    assert_eq!(calls[0].require("MESSAGE"), "Sent as a form & decoded: 100%");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_delivers_the_text_then_forgets_the_chat() {
    let env = env().await;
    let p = env.private().with_message("That's all, thanks").with_message_id(3401);
    let chat_id = env.user_says(&p, 0).await.chat_id().to_string();

    env.webhook_ok(&ReplyWebhook::bot(&chat_id, "Goodbye! Have a nice day.").closing()).await;
    let calls = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(calls[0].require("DIALOG_ID"), "17");
    assert_eq!(calls[0].require("MESSAGE"), "Goodbye! Have a nice day.");

    // The mapping is gone: a later webhook for that chat is refused with 404.
    let (status, body) = env.messenger.post_webhook(&env.callback_url(), &ReplyWebhook::bot(&chat_id, "Are you still there?")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains(&chat_id), "the 404 names the unknown chat: {body}");
    env.assert_exactly("imbot.message.add", 1).await;

    // A new user message starts the dialog again under the same chat id.
    let again = env.user_says(&p.clone().with_message("One more thing").with_message_id(3402), 1).await;
    assert_eq!(again.chat_id(), chat_id);
    env.webhook_ok(&ReplyWebhook::bot(&chat_id, "Sure, go ahead.")).await;
    let calls = env.bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;
    assert_eq!(calls[1].require("MESSAGE"), "Sure, go ahead.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_chat_is_not_found() {
    let env = env().await;
    let (status, body) = env.messenger.post_webhook(&env.callback_url(), &ReplyWebhook::bot("sb-0000000000000000", "Hi")).await;
    assert_eq!(status, 404, "{body}");
    tokio::time::sleep(SETTLE).await;
    assert!(env.bitrix.calls().is_empty(), "{:#?}", env.bitrix.calls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_forwarding_notifies_staff_and_never_shows_the_panel_link_to_the_user() {
    let env = env_with_staff_dialog(&[]).await;
    let p = env.private().with_message("I want to talk to a human").with_message_id(3501);
    let chat_id = env.user_says(&p, 0).await.chat_id().to_string();

    let hook = ReplyWebhook::bot(&chat_id, "I am passing you to an operator.").forwarded();
    let panel = hook.get("panel_url").expect("the fake sends panel_url").to_string();
    let share = hook.get("share_url").expect("the fake sends share_url").to_string();
    env.webhook_ok(&hook).await;

    let calls = env.bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;
    let to_user: Vec<&Call> = calls.iter().filter(|c| c.require("DIALOG_ID") == "17").collect();
    let to_staff: Vec<&Call> = calls.iter().filter(|c| c.require("DIALOG_ID") == STAFF_DIALOG).collect();
    assert_eq!(to_user.len(), 1, "{calls:#?}");
    assert_eq!(to_user[0].require("MESSAGE"), "I am passing you to an operator.");
    assert_eq!(to_staff.len(), 1, "{calls:#?}");
    let notice = to_staff[0].require("MESSAGE");
    assert!(notice.contains("forwarded to an operator") && notice.contains(&panel), "staff notice: {notice}");

    // The operator answers from the panel: delivered to the user, no second notice.
    env.webhook_ok(&ReplyWebhook::operator(&chat_id, "Hello, this is Anna. How can I help?")).await;
    let calls = env.bitrix.wait_for_method("imbot.message.add", 3, WAIT).await;
    assert_eq!(calls[2].require("DIALOG_ID"), "17");
    assert_eq!(calls[2].require("MESSAGE"), "Hello, this is Anna. How can I help?");
    let calls = env.assert_exactly("imbot.message.add", 3).await;
    for call in calls.iter().filter(|c| c.require("DIALOG_ID") != STAFF_DIALOG) {
        let text = call.require("MESSAGE");
        assert!(!text.contains(&panel) && !text.contains(&share) && !text.contains("panel?dialog"), "staff link shown to the user: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_notice_can_be_turned_off() {
    let env = env_with_staff_dialog(&[("operator_notice", "false".to_string())]).await;
    let p = env.private().with_message("Human please").with_message_id(3601);
    let chat_id = env.user_says(&p, 0).await.chat_id().to_string();

    env.webhook_ok(&ReplyWebhook::bot(&chat_id, "Connecting you.").forwarded()).await;
    let calls = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(calls[0].require("DIALOG_ID"), "17");
    let calls = env.assert_exactly("imbot.message.add", 1).await;
    assert!(calls.iter().all(|c| c.require("DIALOG_ID") != STAFF_DIALOG), "{calls:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_missing_secret_is_forbidden_and_nothing_is_delivered() {
    let env = env().await;
    let p = env.private().with_message("Secret test").with_message_id(3701);
    let chat_id = env.user_says(&p, 0).await.chat_id().to_string();
    let hook = ReplyWebhook::bot(&chat_id, "Forged answer");
    let wrong = "whsec-guessed-0000";

    let attempts = [
        (env.host.url(&format!("/hooks/{CONNECTOR}/messenger?secret={wrong}")), vec![]),
        (env.bare_callback_url(), vec![]),
        (env.host.url(&format!("/hooks/{CONNECTOR}/messenger?secret=")), vec![]),
        (env.bare_callback_url(), vec![("x-switchboard-secret", wrong)]),
    ];
    for (url, headers) in &attempts {
        let (status, body) = env.messenger.post_webhook_with(url, &hook, headers).await;
        assert_eq!(status, 403, "{url} {headers:?}: {body}");
        assert!(!body.contains(SECRET) && !body.contains(wrong), "the response must not echo secrets: {body}");
    }
    tokio::time::sleep(SETTLE).await;
    assert!(env.bitrix.calls().is_empty(), "a forged webhook must not be delivered: {:#?}", env.bitrix.calls());

    // The right secret in the header works.
    let (status, body) =
        env.messenger.post_webhook_with(&env.bare_callback_url(), &ReplyWebhook::bot(&chat_id, "Real answer"), &[("x-switchboard-secret", SECRET)]).await;
    assert_eq!(status, 200, "{body}");
    let calls = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(calls[0].require("MESSAGE"), "Real answer");
    env.assert_exactly("imbot.message.add", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_token_gives_the_user_the_fallback_without_retries() {
    let env = env().await;
    env.messenger.set_token("rotated-token");
    let p = env.private().with_message("Hello?").with_message_id(3801);
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p)).await;

    let calls = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(calls[0].require("MESSAGE"), FALLBACK);
    assert_eq!(calls[0].require("DIALOG_ID"), "17");
    env.assert_exactly("imbot.message.add", 1).await;
    let sent = env.messenger.sent();
    assert_eq!(sent.len(), 1, "a 401 is a configuration error: not retried");
    assert_eq!(sent[0].status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_outage_is_retried_then_succeeds_silently() {
    let env = env().await;
    env.messenger.fail_next(1, 503, fake_messenger::error_body(503, "UNAVAILABLE", "Service Unavailable"));
    let p = env.private().with_message("Retry me").with_message_id(3901);
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p)).await;

    let sent = env.messenger.wait_for_sent(2, WAIT).await;
    let statuses: Vec<u16> = sent.iter().map(|s| s.status).collect();
    assert_eq!(statuses, vec![503, 200], "a 503 is transient: retried once, then accepted");
    assert_eq!(sent[0].chat_id(), sent[1].chat_id());
    tokio::time::sleep(SETTLE).await;
    assert!(env.bitrix.calls().is_empty(), "no fallback after a successful retry: {:#?}", env.bitrix.calls());
    assert_eq!(env.messenger.sent().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_keyword_forgets_the_chat() {
    let env = env().await;
    let p = env.private().with_message("Hello").with_message_id(3451);
    let chat_id = env.user_says(&p, 0).await.chat_id().to_string();

    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&p.clone().with_message("/reset").with_message_id(3452))).await;
    let calls = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(calls[0].require("MESSAGE"), "Conversation reset. How can I help?");

    // The host told the plugin to forget the conversation: its chat is unknown now.
    let (status, body) = env.messenger.post_webhook(&env.callback_url(), &ReplyWebhook::bot(&chat_id, "Late answer")).await;
    assert_eq!(status, 404, "{body}");
    env.assert_exactly("imbot.message.add", 1).await;
}
