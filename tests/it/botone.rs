//! Bitrix24 → host → `bitrix24` channel → `botone` provider → fake Bot.one,
//! and Bot.one's block callbacks → host → Bitrix24 REST calls.

use crate::{SETTLE, WAIT, deliver};
use serde_json::{Value, json};
use switchboard_tests::bitrix_events::{self, EventParams};
use switchboard_tests::fake_botone::{self, BOT_ID, Block, CALLBACK_TOKEN, FakeDialog, LOGIN, OTHER_BOT_ID, PASSWORD, Route};
use switchboard_tests::harness::{FALLBACK, HostConfig, bitrix_channel, plugin_table, toml_string};
use switchboard_tests::{FakeBitrix, FakeBotOne, TestHost};

const CONNECTOR: &str = "botone-support";

/// The conversation id of `EventParams::private` (`{member_id}:{BOT_ID}:{DIALOG_ID}`).
const PRIVATE_CONVERSATION: &str = "a1b2c3:55:17";

struct Env {
    bitrix: FakeBitrix,
    botone: FakeBotOne,
    host: TestHost,
}

fn provider(botone: &FakeBotOne, password: &str) -> String {
    plugin_table(
        "botone",
        &[
            ("base_url", toml_string(&botone.base_url())),
            ("login", toml_string(LOGIN)),
            ("password", toml_string(password)),
            ("bot_id", BOT_ID.to_string()),
            ("callback_token", toml_string(CALLBACK_TOKEN)),
            ("operator_command", "[\"operator\"]".into()),
        ],
    )
}

async fn env_with_password(password: &str) -> Env {
    let bitrix = FakeBitrix::start().await;
    let botone = FakeBotOne::start().await;
    let host = HostConfig::default().connector(CONNECTOR, &bitrix_channel(&bitrix), &provider(&botone, password)).start().await;
    Env { bitrix, botone, host }
}

async fn env() -> Env {
    env_with_password(fake_botone::PASSWORD).await
}

impl Env {
    fn private(&self) -> EventParams {
        EventParams::private(&self.bitrix.client_endpoint())
    }

    fn group(&self) -> EventParams {
        EventParams::group(&self.bitrix.client_endpoint())
    }

    /// `{host}/hooks/{connector}/botone`: the URL the bot's blocks call.
    fn callback_url(&self) -> String {
        self.host.url(&format!("/hooks/{CONNECTOR}/botone"))
    }

    /// A user message, then the dialog Bot.one created for it.
    async fn start_dialog(&self, p: &EventParams, n: usize) -> FakeDialog {
        deliver(&self.host, CONNECTOR, bitrix_events::message_add(p)).await;
        self.botone.wait_for_dialog(n, WAIT).await
    }

    /// Run a block and require the host's `200`.
    async fn block(&self, dialog: &FakeDialog, block: &Block) -> fake_botone::BlockRun {
        let run = self.botone.run_block(&self.callback_url(), dialog, block).await;
        assert_eq!(run.status, 200, "the host refused the block callback {}: {}", run.payload, run.body);
        run
    }

    /// Run a `dialog`-only block, retrying `404` for a bounded time: the
    /// plugin stores the UUID mapping after Bot.one answered the create call.
    async fn block_by_uuid(&self, dialog: &FakeDialog, block: Block) -> fake_botone::BlockRun {
        let block = block.routed(Route::Uuid);
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let run = self.botone.run_block(&self.callback_url(), dialog, &block).await;
            if run.status != 404 || std::time::Instant::now() >= deadline {
                assert_eq!(run.status, 200, "the host refused the block callback {}: {}", run.payload, run.body);
                return run;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// After a settle period, require exactly `n` Bitrix24 calls of `method`.
    async fn assert_bitrix_exactly(&self, method: &str, n: usize) {
        tokio::time::sleep(SETTLE).await;
        let calls = self.bitrix.calls_to(method);
        assert_eq!(calls.len(), n, "expected exactly {n} `{method}` call(s); all calls: {:#?}", self.bitrix.calls());
    }

    /// The real host's provider binding of the connector.
    fn provider_binding(&self) -> switchboard::runtime::Binding {
        self.host.app().connectors.get(CONNECTOR).expect("the connector exists").provider.clone()
    }

    /// Call the provider's `on-event` inside the running host (the way the
    /// host's handoff routing will), with the event given as JSON in the
    /// host's serde form (`{"HandoffStarted": "reason"}`, `"HandoffEnded"`,
    /// `{"OperatorMessage": "text"}`, `"Reset"`).
    async fn on_event(&self, conversation_id: &str, event: Value) {
        let conversation = serde_json::from_value(json!({"id": conversation_id, "reply_context": ""})).unwrap();
        let event = serde_json::from_value(event.clone()).unwrap_or_else(|e| panic!("event {event}: {e}"));
        let outcome = self.host.app().runtime.on_event(&self.provider_binding(), conversation, event).await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("on-event returned an error: {error:?}"),
            Err(error) => panic!("on-event failed in the sandbox: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_message_creates_and_starts_a_dialog() {
    let env = env().await;
    let p = env.private().with_message("Hello, I need help").with_message_id(2001);
    let dialog = env.start_dialog(&p, 1).await;

    let creates = env.botone.requests_to("/create");
    assert_eq!(creates.len(), 1, "{creates:#?}");
    let create = &creates[0];
    assert_eq!(create.method, "POST");
    assert_eq!(create.path, format!("/api/v2/dialog/{BOT_ID}/create"));
    assert_eq!(create.header("authorization"), Some(fake_botone::basic(LOGIN, PASSWORD).as_str()));
    assert_eq!(create.status, 200);
    assert_eq!(create.body["response"], json!(true));
    assert!(create.body["variables"].is_string(), "`variables` must be a JSON string: {}", create.body);
    let variables = create.variables();
    for (key, expected) in [
        ("message", "Hello, I need help"),
        ("DIALOG_ID", "17"),
        ("BOT_ID", "55"),
        ("MESSAGE", "Hello, I need help"),
        ("MESSAGE_ID", "2001"),
        ("switchboard_conversation", PRIVATE_CONVERSATION),
    ] {
        assert_eq!(variables.get(key).and_then(Value::as_str), Some(expected), "variable {key}; all: {variables:#?}");
    }
    assert_eq!(dialog.bot_id, BOT_ID);
    assert_eq!(dialog.status, "in-process");

    // Bot messages arrive through callbacks: nothing is sent to the user now.
    env.assert_bitrix_exactly("imbot.message.add", 0).await;
    assert_eq!(env.botone.requests_to("/create").len(), 1, "exactly one dialog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_callback_reaches_the_user_and_the_answer_completes_the_block() {
    let env = env().await;
    let p = env.private().with_message("Where is my order?").with_message_id(2101);
    let dialog = env.start_dialog(&p, 1).await;

    let run = env.block(&dialog, &Block::question("What is your order number?").with_buttons(&["I don't know"])).await;
    let accepted: Value = serde_json::from_str(&run.body).expect("JSON answer");
    assert_eq!(accepted, json!({"ok": true, "conversation": PRIVATE_CONVERSATION, "waiting_for_answer": true}));

    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("BOT_ID"), "55");
    assert_eq!(sent[0].require("DIALOG_ID"), "17");
    assert_eq!(sent[0].require("MESSAGE"), "What is your order number?");
    let keyboard = sent[0].body.get("KEYBOARD").unwrap_or_else(|| panic!("buttons expected: {}", sent[0].body));
    assert!(keyboard.to_string().contains("I don't know"), "{keyboard}");

    // The user's answer completes the waiting block with its token.
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&env.private().with_message("42-17").with_message_id(2102))).await;
    let completes = env.botone.wait_for("/complete", 1, WAIT).await;
    assert_eq!(completes[0].status, 204);
    assert_eq!(completes[0].body["token"], json!(run.token));
    assert_eq!(completes[0].body["data"]["text"], json!("42-17"));
    assert_eq!(completes[0].body["data"]["user_id"], json!("17"));
    assert_eq!(completes[0].header("authorization"), None, "the vertex API is authorized by the block token alone");
    let completions = env.botone.completions();
    assert_eq!(completions.len(), 1);
    assert_eq!(completions[0].dialog, dialog.uuid);

    // The next block (by UUID only) reaches the same user; it does not wait.
    env.block_by_uuid(&dialog, Block::say("Your order ships tomorrow.")).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;
    assert_eq!(sent[1].require("MESSAGE"), "Your order ships tomorrow.");

    // No block waits now: the plugin asks Bot.one about the dialog, which
    // is still running, so the message is not passed on and nothing is created.
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&env.private().with_message("thanks").with_message_id(2103))).await;
    let reads = env.botone.wait_for(&format!("/conversation/{}", dialog.uuid), 1, WAIT).await;
    assert_eq!(reads[0].method, "GET");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(env.botone.requests_to("/complete").len(), 1, "no second completion");
    assert_eq!(env.botone.requests_to("/create").len(), 1, "a running dialog is not replaced");
    env.assert_bitrix_exactly("imbot.message.add", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_dialog_is_replaced_by_a_new_one() {
    let env = env().await;
    let first = env.start_dialog(&env.private().with_message("Hi").with_message_id(2201), 1).await;
    env.block(&first, &Block::say("Bye!")).await;
    env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    env.botone.set_status(&first.uuid, "completed");

    let second = env.start_dialog(&env.private().with_message("Hi again").with_message_id(2202), 2).await;
    assert_ne!(second.uuid, first.uuid);
    assert_eq!(second.variables.get("message"), Some(&json!("Hi again")));
    // The old dialog's callbacks no longer reach anyone; the new one's do.
    let (status, _) = env.botone.post_callback(&env.callback_url(), &env.botone.payload(&first, &Block::say("late").routed(Route::Uuid), "t")).await;
    assert_eq!(status, 404);
    env.block(&second, &Block::say("Welcome back")).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;
    assert_eq!(sent[1].require("MESSAGE"), "Welcome back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_forgets_the_dialog() {
    let env = env().await;
    let first = env.start_dialog(&env.private().with_message("Hi").with_message_id(2301), 1).await;
    env.block(&first, &Block::say("That is all, goodbye.").closing()).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "That is all, goodbye.");
    let (status, _) = env.botone.post_callback(&env.callback_url(), &env.botone.payload(&first, &Block::say("late"), "t")).await;
    assert_eq!(status, 404, "a closed dialog is forgotten");

    env.start_dialog(&env.private().with_message("New question").with_message_id(2302), 2).await;
    assert!(env.botone.requests_to(&format!("/conversation/{}", first.uuid)).is_empty(), "no status check after close");
}

fn with_token(payload: &Value, token: &str) -> Value {
    let mut payload = payload.clone();
    payload["callback_token"] = json!(token);
    payload
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialog_token_cannot_address_another_conversation() {
    let env = env().await;
    let first = env.start_dialog(&env.private().with_message("Hi").with_message_id(2451), 1).await;
    let second = env.start_dialog(&env.group().with_message("Hello").with_message_id(2452), 2).await;
    let url = env.callback_url();
    let to_second = env.botone.payload(&second, &Block::say("for the group"), "tok-2");
    let first_token = first.variables["switchboard_callback_token"].as_str().unwrap().to_string();
    let (status, body) = env.botone.post_callback(&url, &with_token(&to_second, &first_token)).await;
    assert_eq!(status, 403, "{body}");
    env.assert_bitrix_exactly("imbot.message.add", 0).await;
    let (status, body) = env.botone.post_callback(&url, &to_second).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await[0].require("MESSAGE"), "for the group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_callbacks_are_rejected() {
    let env = env().await;
    let dialog = env.start_dialog(&env.private().with_message("Hi").with_message_id(2401), 1).await;
    let url = env.callback_url();
    let good = env.botone.payload(&dialog, &Block::question("Name?"), "tok");

    assert_ne!(good["callback_token"], json!(CALLBACK_TOKEN), "dialogs get their own token, not the connector's secret");
    for token in ["not-the-secret", CALLBACK_TOKEN] {
        let mut wrong = good.clone();
        wrong["callback_token"] = json!(token);
        let (status, body) = env.botone.post_callback(&url, &wrong).await;
        assert_eq!(status, 403, "{body}");
        assert!(!body.contains(CALLBACK_TOKEN) && !body.contains("not-the-secret"), "{body}");
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("callback_token");
    assert_eq!(env.botone.post_callback(&url, &missing).await.0, 403);

    let (status, body) = env.botone.post_raw(&url, b"{not json".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    let mut no_text = good.clone();
    no_text.as_object_mut().unwrap().remove("text");
    let (status, body) = env.botone.post_callback(&url, &no_text).await;
    assert_eq!(status, 400);
    assert!(body.contains("missing field `text`"), "{body}");
    let mut bad_buttons = good.clone();
    bad_buttons["buttons"] = json!(["ok", 7]);
    let (status, body) = env.botone.post_callback(&url, &bad_buttons).await;
    assert_eq!(status, 400);
    assert!(body.contains("`buttons[1]`"), "{body}");
    let mut no_token = good.clone();
    no_token.as_object_mut().unwrap().remove("token");
    let (status, body) = env.botone.post_callback(&url, &no_token).await;
    assert_eq!(status, 400);
    assert!(body.contains("field `token`"), "{body}");

    let unknown = json!({"callback_token": good["callback_token"], "dialog": "00000000-0000-4000-a000-000000000000", "text": "hi"});
    let (status, body) = env.botone.post_callback(&url, &unknown).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("unknown dialog"), "{body}");
    // A named conversation is checked against the token before anything else.
    let unknown = json!({"callback_token": good["callback_token"], "conversation": "x:1:2", "text": "hi"});
    assert_eq!(env.botone.post_callback(&url, &unknown).await.0, 403);

    // A callback for another connector's plugin name is not ours.
    let (status, _) = env.botone.post_callback(&env.host.url(&format!("/hooks/{CONNECTOR}/dify")), &good).await;
    assert_eq!(status, 404);

    env.assert_bitrix_exactly("imbot.message.add", 0).await;
    assert!(env.botone.requests_to("/complete").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goto_command_moves_the_dialog_to_another_bot() {
    let env = env().await;
    let dialog = env.start_dialog(&env.private().with_message("Hi").with_message_id(2501), 1).await;
    env.block(&dialog, &Block::question("Anything else?")).await;
    env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;

    let p = env.private().with_command("12", "goto", "698").with_message_id(2502);
    deliver(&env.host, CONNECTOR, bitrix_events::command_add(&p)).await;
    let commands = env.botone.wait_for("/command", 1, WAIT).await;
    assert_eq!(commands[0].path, format!("/api/v2/conversation/{}/command", dialog.uuid));
    assert_eq!(commands[0].body, json!({"body": "goto 698"}));
    assert_eq!(commands[0].header("authorization"), Some(fake_botone::basic(LOGIN, PASSWORD).as_str()));
    assert_eq!(commands[0].status, 200);
    assert_eq!(env.botone.dialog(&dialog.uuid).bot_id, OTHER_BOT_ID);

    let answers = env.bitrix.wait_for_method("imbot.command.answer", 1, WAIT).await;
    assert_eq!(answers[0].require("COMMAND_ID"), "12");
    assert_eq!(answers[0].require("MESSAGE"), "Switched to bot 698.");

    // The waiting block belonged to the previous bot: the next message is
    // not used to complete it (Bot.one would refuse its token).
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&env.private().with_message("hello 698").with_message_id(2503))).await;
    env.botone.wait_for(&format!("/conversation/{}", dialog.uuid), 1, WAIT).await;
    assert!(env.botone.requests_to("/complete").is_empty());
    assert_eq!(env.botone.requests_to("/create").len(), 1);

    // `/goto` without a bot id explains itself and calls nothing.
    let p = env.private().with_command("12", "goto", "").with_message_id(2504);
    deliver(&env.host, CONNECTOR, bitrix_events::command_add(&p)).await;
    let answers = env.bitrix.wait_for_method("imbot.command.answer", 2, WAIT).await;
    assert!(answers[1].require("MESSAGE").contains("/goto"), "{}", answers[1].body);
    assert_eq!(env.botone.requests_to("/command").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_callback_moves_the_open_line_to_an_operator() {
    let env = env().await;
    let dialog = env.start_dialog(&env.group().with_message("I want a human").with_message_id(2601), 1).await;
    assert_eq!(dialog.variables.get("DIALOG_ID"), Some(&json!("chat7")));
    env.block(&dialog, &Block::say("Connecting you to an operator.").with_handoff("the customer asked for a human")).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("DIALOG_ID"), "chat7");
    assert_eq!(sent[0].require("MESSAGE"), "Connecting you to an operator.");
    let transfers = env.bitrix.wait_for_method("imopenlines.bot.session.operator", 1, WAIT).await;
    assert_eq!(transfers[0].require("CHAT_ID"), "7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_command_asks_for_a_human() {
    let env = env().await;
    let p = env.group().with_command("13", "operator", "").with_message_id(2651);
    deliver(&env.host, CONNECTOR, bitrix_events::command_add(&p)).await;
    let answers = env.bitrix.wait_for_method("imbot.command.answer", 1, WAIT).await;
    // `/operator` is also the host's default handoff command: the host answers with its notice.
    assert_eq!(answers[0].require("MESSAGE"), "Connecting you to an operator. Please wait.");
    env.bitrix.wait_for_method("imopenlines.bot.session.operator", 1, WAIT).await;
    assert!(env.botone.requests().is_empty(), "no Bot.one call for an operator command without a dialog");
}

/// The provider's `on-event` inside the real host: handoff stops the
/// dialog, operator messages are copied, the end resumes it, reset forgets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_events_reach_bot_one() {
    let env = env().await;
    let dialog = env.start_dialog(&env.private().with_message("Hi").with_message_id(2701), 1).await;
    // The plugin stores the dialog after the create call returns: wait until a
    // UUID-routed block is accepted.
    env.block_by_uuid(&dialog, Block::say("Hello!")).await;
    let base = format!("/api/v2/conversation/{}", dialog.uuid);
    let auth = fake_botone::basic(LOGIN, PASSWORD);

    env.on_event(PRIVATE_CONVERSATION, json!({"HandoffStarted": "the customer asked for a human"})).await;
    let stops = env.botone.requests_to("/stop");
    assert_eq!(stops.len(), 1, "{:#?}", env.botone.requests());
    assert_eq!((stops[0].path.as_str(), stops[0].status), (format!("{base}/stop").as_str(), 204));
    assert_eq!(stops[0].header("authorization"), Some(auth.as_str()));
    assert_eq!(env.botone.dialog(&dialog.uuid).status, "operator");

    env.on_event(PRIVATE_CONVERSATION, json!({"OperatorMessage": "Привет, я оператор."})).await;
    let sends = env.botone.requests_to("/send");
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].body, json!({"body": "Привет, я оператор."}));
    assert_eq!(sends[0].status, 204);
    assert_eq!(env.botone.dialog(&dialog.uuid).operator_messages, ["Привет, я оператор."]);

    env.on_event(PRIVATE_CONVERSATION, json!("HandoffEnded")).await;
    let starts = env.botone.requests_to("/start");
    assert_eq!(starts.len(), 1);
    assert_eq!((starts[0].path.as_str(), starts[0].status), (format!("{base}/start").as_str(), 204));
    assert_eq!(env.botone.dialog(&dialog.uuid).status, "in-process");

    // Events for a conversation without a dialog call nothing.
    let before = env.botone.requests().len();
    env.on_event("a1b2c3:55:999", json!({"HandoffStarted": ""})).await;
    assert_eq!(env.botone.requests().len(), before);

    // Reset forgets the dialog: its callbacks are unknown, the next message starts a new one.
    env.on_event(PRIVATE_CONVERSATION, json!("Reset")).await;
    let (status, _) = env.botone.post_callback(&env.callback_url(), &env.botone.payload(&dialog, &Block::say("late"), "t")).await;
    assert_eq!(status, 404);
    env.start_dialog(&env.private().with_message("Start over").with_message_id(2702), 2).await;
}

/// Operator handoff driven by the host itself: a block asks for a human →
/// the host starts the handoff and tells the provider (`on-event`
/// handoff-started → `/stop`); when the handoff ends → `/start`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_stop_and_start() {
    let env = env().await;
    let dialog = env.start_dialog(&env.group().with_message("I want a human").with_message_id(2801), 1).await;
    env.block(&dialog, &Block::say("Connecting you to an operator.").with_handoff("asked for a human")).await;
    env.bitrix.wait_for_method("imopenlines.bot.session.operator", 1, WAIT).await;
    let stops = env.botone.wait_for("/stop", 1, WAIT).await;
    assert_eq!(stops[0].path, format!("/api/v2/conversation/{}/stop", dialog.uuid));
    assert_eq!(env.botone.dialog(&dialog.uuid).status, "operator");
    // When the Open Line operator is done, Bitrix24 routes the user's next
    // message to the bot again: the host ends the handoff and Bot.one resumes.
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&env.group().with_message("thanks, back to the bot").with_message_id(2802))).await;
    let starts = env.botone.wait_for("/start", 1, WAIT).await;
    assert_eq!(starts[0].status, 204);
    assert_eq!(env.botone.dialog(&dialog.uuid).status, "in-process");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_reported_and_the_user_gets_the_fallback() {
    let env = env_with_password("not-the-password").await;
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&env.private().with_message("Hi").with_message_id(2901))).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), FALLBACK);
    let creates = env.botone.requests_to("/create");
    assert_eq!(creates.len(), 1, "a configuration error is not retried: {creates:#?}");
    assert_eq!(creates[0].status, 401);
    assert!(env.botone.dialogs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_one_outage_is_retried() {
    let env = env().await;
    env.botone.fail_next(1, 503, json!({"message": "Service Unavailable"}));
    let dialog = env.start_dialog(&env.private().with_message("Hi").with_message_id(3001), 1).await;
    let creates = env.botone.requests_to("/create");
    assert_eq!(creates.iter().map(|r| r.status).collect::<Vec<_>>(), [503, 200]);
    env.block(&dialog, &Block::say("Hello after the outage")).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "Hello after the outage");
}
