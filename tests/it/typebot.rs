//! Bitrix24 → host → `bitrix24` channel → `typebot` provider → fake Typebot,
//! and the replies back out as Bitrix24 REST calls.

use crate::{SETTLE, WAIT, deliver};
use serde_json::{Value, json};
use switchboard_tests::bitrix_events::{self, EventParams};
use switchboard_tests::fake_typebot::{self, FakeTypebot, RETRY_MESSAGE, Step, TypebotRequest, image, rich_text};
use switchboard_tests::harness::{FALLBACK, HostConfig, bitrix_channel, plugin_table, toml_string};
use switchboard_tests::{Call, FakeBitrix, TestHost};

const CONNECTOR: &str = "typebot-support";

struct Env {
    bitrix: FakeBitrix,
    typebot: FakeTypebot,
    host: TestHost,
}

/// Fakes plus a host with one connector: bitrix24 → typebot (`start_url` of
/// the fake) with `extra` provider settings.
async fn env(extra: &[(&str, String)]) -> Env {
    let bitrix = FakeBitrix::start().await;
    let typebot = FakeTypebot::start().await;
    let mut settings = vec![("start_url", toml_string(&typebot.start_url()))];
    settings.extend(extra.iter().cloned());
    let host = HostConfig::default().connector(CONNECTOR, &bitrix_channel(&bitrix), &plugin_table("typebot", &settings)).start().await;
    Env { bitrix, typebot, host }
}

impl Env {
    fn private(&self) -> EventParams {
        EventParams::private(&self.bitrix.client_endpoint())
    }

    async fn say(&self, p: &EventParams, text: &str, message_id: u64) {
        let p = p.clone().with_message(text).with_message_id(message_id);
        deliver(&self.host, CONNECTOR, bitrix_events::message_add(&p)).await;
    }

    /// After a settle period, require exactly `n` calls of `method`.
    async fn assert_exactly(&self, method: &str, n: usize) -> Vec<Call> {
        tokio::time::sleep(SETTLE).await;
        let calls = self.bitrix.calls_to(method);
        assert_eq!(calls.len(), n, "expected exactly {n} `{method}` call(s); all calls: {:#?}", self.bitrix.calls());
        calls
    }
}

/// `(kind, session, status, message)` of each Typebot request.
fn trail(requests: &[TypebotRequest]) -> Vec<(&'static str, String, u16, String)> {
    requests
        .iter()
        .map(|r| {
            let kind = if r.is_start() {
                "start"
            } else if r.is_continue() {
                "continue"
            } else {
                "other"
            };
            (kind, r.session_id.clone().unwrap_or_default(), r.status, r.message_text().unwrap_or("").to_string())
        })
        .collect()
}

fn t(kind: &'static str, session: &str, status: u16, message: &str) -> (&'static str, String, u16, String) {
    (kind, session.to_string(), status, message.to_string())
}

/// A paragraph of rich text leaves.
fn p(children: Value) -> Value {
    json!({"type": "p", "children": children})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_turn_conversation_with_buttons_continues_the_same_session() {
    let env = env(&[]).await;
    env.typebot.set_script(vec![
        Step::new()
            .bubble(rich_text(json!([p(json!([{"text": "Hi "}, {"text": "{{FIRST_NAME}}", "bold": true}, {"text": "!"}]))])))
            .bubble(image("http://cdn.example.com/public/typebots/demo.png?v=3"))
            .text("Do you want a demo?")
            .choices(&["Yes", "No"]),
        Step::new().text("Great, {{message}} it is! When suits you?").text_input(),
        Step::new().text("Booked for {{message}}.").text_input(),
    ]);
    let p = env.private();

    env.say(&p, "Hello", 3001).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 3, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "Hi [B]John[/B]!");
    assert_eq!(sent[0].require("DIALOG_ID"), "17");
    assert_eq!(sent[0].require("BOT_ID"), "55");
    assert!(sent[0].body.get("KEYBOARD").is_none(), "buttons belong on the last message only: {}", sent[0].body);
    assert_eq!(sent[1].body["ATTACH"], json!([{"LINK": {"NAME": "demo.png", "LINK": "http://cdn.example.com/public/typebots/demo.png?v=3"}}]));
    assert!(sent[1].body.get("KEYBOARD").is_none(), "{}", sent[1].body);
    assert_eq!(sent[2].require("MESSAGE"), "Do you want a demo?");
    assert_eq!(
        sent[2].body["KEYBOARD"],
        json!({"BUTTONS": [
            {"TEXT": "Yes", "ACTION": "SEND", "ACTION_VALUE": "Yes", "DISPLAY": "LINE"},
            {"TEXT": "No", "ACTION": "SEND", "ACTION_VALUE": "No", "DISPLAY": "LINE"}
        ]})
    );

    // Pressing "Yes" makes Bitrix24 send the button's ACTION_VALUE as the user's message.
    env.say(&p, "Yes", 3002).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 4, WAIT).await;
    assert_eq!(sent[3].require("MESSAGE"), "Great, Yes it is! When suits you?");
    assert!(sent[3].body.get("KEYBOARD").is_none(), "a text input offers no buttons: {}", sent[3].body);

    env.say(&p, "Friday 10:00", 3003).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 5, WAIT).await;
    assert_eq!(sent[4].require("MESSAGE"), "Booked for Friday 10:00.");

    let issued = env.typebot.issued_sessions();
    assert_eq!(issued.len(), 1, "one session for the whole conversation: {issued:?}");
    let requests = env.typebot.requests();
    assert_eq!(
        trail(&requests),
        vec![t("start", &issued[0], 200, "Hello"), t("continue", &issued[0], 200, "Yes"), t("continue", &issued[0], 200, "Friday 10:00"),]
    );
    assert_eq!(requests[1].path, format!("/api/v1/sessions/{}/continueChat", issued[0]));
    assert_eq!(requests[1].body, json!({"message": "Yes"}), "continueChat sends just the message");
    env.assert_exactly("imbot.message.add", 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_chat_sends_the_bitbot_variables_as_prefilled_variables() {
    let env = env(&[]).await;
    let p = env.private();
    env.say(&p, "What are your opening hours?", 3101).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "Echo: What are your opening hours?");

    let requests = env.typebot.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let start = &requests[0];
    assert_eq!(start.path, format!("/api/v1/typebots/{}/startChat", fake_typebot::PUBLIC_ID));
    assert_eq!(start.header("authorization"), None, "no api_key configured: no Authorization header");
    assert_eq!(start.body["message"], "What are your opening hours?");
    assert_eq!(start.body["isStreamEnabled"], false);
    assert_eq!(start.body["textBubbleContentFormat"], "richText");
    let endpoint = env.bitrix.client_endpoint();
    let expected = [
        ("event", "ONIMBOTMESSAGEADD"),
        ("client_endpoint", endpoint.as_str()),
        // Platform tokens stay with the channel unless the connector forwards them.
        ("access_token", ""),
        ("bot_access_token", ""),
        ("BOT_ID", "55"),
        ("DIALOG_ID", "17"),
        ("MESSAGE_ID", "3101"),
        ("MESSAGE", "What are your opening hours?"),
        ("USER_ID", "17"),
        ("FIRST_NAME", "John"),
        ("LAST_NAME", "Doe"),
        ("LANGUAGE", "en"),
    ];
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(k, v)| start.prefilled(k) != Some(*v))
        .map(|(k, v)| format!("{k}: expected {v:?}, got {:?}", start.body["prefilledVariables"].get(*k)))
        .collect();
    assert!(wrong.is_empty(), "prefilledVariables are wrong:\n  {}\nbody: {:#}", wrong.join("\n  "), start.body);
    let all_strings = start.body["prefilledVariables"].as_object().is_some_and(|vars| vars.values().all(Value::is_string));
    assert!(all_strings, "every prefilled variable is a string: {:#}", start.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rich_text_reaches_bitrix24_as_bbcode() {
    let env = env(&[]).await;
    env.typebot.set_script(vec![
        Step::new()
            .bubble(rich_text(json!([
                p(json!([{"text": "Your order is "}, {"text": "confirmed", "bold": true}, {"text": " and "}, {"text": "on its way", "italic": true}, {"text": "."}])),
                p(json!([{"text": ""}])),
                p(json!([
                    {"text": "Track it "},
                    {"type": "a", "url": "https://track.example.com/o/42", "children": [{"text": "here"}]},
                    {"text": "."}
                ])),
            ])))
            .text_input(),
    ]);
    env.say(&env.private(), "Where is my order?", 3201).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "Your order is [B]confirmed[/B] and [I]on its way[/I].\n\nTrack it [URL=https://track.example.com/o/42]here[/URL].");
    env.assert_exactly("imbot.message.add", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_session_is_restarted_and_the_user_still_gets_the_answer() {
    let env = env(&[]).await;
    let p = env.private();
    env.say(&p, "First question", 3301).await;
    env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;

    env.typebot.expire_sessions();
    env.say(&p, "Second question", 3302).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;
    assert_eq!(sent[1].require("MESSAGE"), "Echo: Second question", "the 404 must be recovered, not turned into the fallback");

    let issued = env.typebot.issued_sessions();
    assert_eq!(issued.len(), 2, "a new session must be started after the 404: {issued:?}");
    assert_eq!(
        trail(&env.typebot.requests()),
        vec![t("start", &issued[0], 200, "First question"), t("continue", &issued[0], 404, "Second question"), t("start", &issued[1], 200, "Second question"),],
        "expected: new session, expired session → 404, the message re-sent to a new session"
    );
    let restart = &env.typebot.requests()[2];
    assert_eq!(restart.prefilled("MESSAGE_ID"), Some("3302"), "the new session gets the variables too");

    // The new session is the one remembered from now on.
    env.say(&p, "Third question", 3303).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 3, WAIT).await;
    assert_eq!(sent[2].require("MESSAGE"), "Echo: Third question");
    assert_eq!(env.typebot.requests()[3].session_id.as_deref(), Some(issued[1].as_str()));
    env.assert_exactly("imbot.message.add", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_flow_makes_the_next_message_start_a_new_session() {
    let env = env(&[]).await;
    env.typebot.set_script(vec![Step::new().text("Rate us?").choices(&["Good", "Bad"]), Step::new().text("Thanks for your feedback!").text("Goodbye.")]);
    let p = env.private();
    env.say(&p, "Hi", 3401).await;
    env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;

    // Not an offered choice: Typebot repeats the question, the session goes on.
    env.say(&p, "Meh", 3402).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;
    assert_eq!(sent[1].require("MESSAGE"), RETRY_MESSAGE);
    assert!(sent[1].body.get("KEYBOARD").is_some(), "the choice is offered again: {}", sent[1].body);

    env.say(&p, "Good", 3403).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 4, WAIT).await;
    assert_eq!(sent[2].require("MESSAGE"), "Thanks for your feedback!");
    assert_eq!(sent[3].require("MESSAGE"), "Goodbye.");

    env.say(&p, "Hello again", 3404).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 5, WAIT).await;
    assert_eq!(sent[4].require("MESSAGE"), "Rate us?", "a fresh run of the flow");

    let issued = env.typebot.issued_sessions();
    assert_eq!(issued.len(), 2, "{issued:?}");
    assert_eq!(
        trail(&env.typebot.requests()),
        vec![
            t("start", &issued[0], 200, "Hi"),
            t("continue", &issued[0], 200, "Meh"),
            t("continue", &issued[0], 200, "Good"),
            // No continueChat on the ended session: the plugin forgot it.
            t("start", &issued[1], 200, "Hello again"),
        ]
    );
    env.assert_exactly("imbot.message.add", 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_marker_moves_the_open_line_to_an_operator() {
    let env = env(&[("handoff_marker", toml_string("[[handoff]]"))]).await;
    env.typebot.set_script(vec![Step::new().text("Let me find a colleague for you. [[handoff]]").text_input()]);
    let group = EventParams::group(&env.bitrix.client_endpoint());
    env.say(&group, "I want a human", 3501).await;

    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "Let me find a colleague for you.", "the marker is removed");
    assert_eq!(sent[0].require("DIALOG_ID"), "chat7");
    let handoff = env.bitrix.wait_for_method("imopenlines.bot.session.operator", 1, WAIT).await;
    assert_eq!(handoff[0].require("CHAT_ID"), "7");
    env.assert_exactly("imopenlines.bot.session.operator", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_variable_set_by_a_client_side_script_moves_the_open_line_to_an_operator() {
    let env = env(&[("handoff_variable", toml_string("handoff"))]).await;
    env.typebot.set_script(vec![
        Step::new().text("An operator will join you shortly.").action(fake_typebot::script_action("setVariable('handoff', 'Refund request')", "b1")),
    ]);
    let group = EventParams::group(&env.bitrix.client_endpoint());
    env.say(&group, "Refund please", 3601).await;

    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "An operator will join you shortly.");
    let handoff = env.bitrix.wait_for_method("imopenlines.bot.session.operator", 1, WAIT).await;
    assert_eq!(handoff[0].require("CHAT_ID"), "7");

    // Without the setting the same script is no handoff.
    let plain = self::env(&[]).await;
    plain.typebot.set_script(vec![
        Step::new().text("An operator will join you shortly.").action(fake_typebot::script_action("setVariable('handoff', 'Refund request')", "b1")),
    ]);
    plain.say(&EventParams::group(&plain.bitrix.client_endpoint()), "Refund please", 3602).await;
    plain.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    plain.assert_exactly("imopenlines.bot.session.operator", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_passed_to_continue_chat_as_attached_file_urls() {
    let env = env(&[]).await;
    let p = env.private();
    env.say(&p, "Hi", 3701).await;
    env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;

    let url = env.bitrix.download_url("48");
    let with_file = p.clone().with_message("Here is the invoice").with_file("48", "invoice.pdf", "file", &url).with_message_id(3702);
    deliver(&env.host, CONNECTOR, bitrix_events::message_add(&with_file)).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;
    assert_eq!(sent[1].require("MESSAGE"), "Echo: Here is the invoice");

    let requests = env.typebot.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(requests[1].body, json!({"message": {"type": "text", "text": "Here is the invoice", "attachedFileUrls": [url]}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_is_sent_as_bearer_and_a_wrong_one_is_not_retried() {
    let env = env(&[("api_key", toml_string("typebot-token-1"))]).await;
    env.typebot.require_api_key("typebot-token-1");
    let p = env.private();
    env.say(&p, "Hi", 3801).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "Echo: Hi");
    assert_eq!(env.typebot.requests()[0].header("authorization"), Some("Bearer typebot-token-1"));

    env.typebot.require_api_key("rotated-token");
    env.say(&p, "Again", 3802).await;
    let sent = env.bitrix.wait_for_method("imbot.message.add", 2, WAIT).await;
    assert_eq!(sent[1].require("MESSAGE"), FALLBACK);
    let requests = env.typebot.requests();
    assert_eq!(requests.len(), 2, "a 401 is a configuration error: not retried: {requests:#?}");
    assert_eq!(requests[1].status, 401);
    env.assert_exactly("imbot.message.add", 2).await;
}
