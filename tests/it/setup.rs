//! Bitrix24 bot setup without hand-written REST calls: the portal installs
//! the app (ONAPPINSTALL), then the `register-bot` action registers the bot
//! and its commands from the connector's settings.

use crate::{SETTLE, WAIT, deliver};
use switchboard_tests::bitrix_events::{self, EventParams};
use switchboard_tests::harness::{HostConfig, dify_provider, plugin_table, toml_string};
use switchboard_tests::{FakeBitrix, FakeDify};

const PUBLIC_URL: &str = "https://bots.example.com";

/// A Bitrix24 channel with no configured `application_token`: events are
/// verified against the token stored at ONAPPINSTALL.
fn install_verified_channel(bitrix: &FakeBitrix) -> String {
    plugin_table(
        "bitrix24",
        &[
            ("portal_url", toml_string(&bitrix.client_endpoint())),
            ("bot_code", toml_string("support_bot")),
            ("bot_name", toml_string("Support")),
            ("commands", r#"[{ command = "help", title = "Help", params = "topic" }]"#.to_string()),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_then_register_bot_and_commands_from_settings() {
    let (bitrix, dify) = (FakeBitrix::start().await, FakeDify::start().await);
    let host =
        HostConfig::default().public_url(PUBLIC_URL).connector("support", &install_verified_channel(&bitrix), &dify_provider(&dify, "chatflow")).start().await;
    let portal = EventParams::private(&bitrix.client_endpoint());

    // Before the install nothing is trusted.
    let (status, _) = host.post_form("/hooks/support", bitrix_events::message_add(&portal.clone().with_message_id(4001))).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);

    deliver(&host, "support", bitrix_events::app_install(&portal)).await;
    bitrix.set_result("imbot.register", serde_json::json!(77));

    let connector = host.app().connector("support").expect("connector exists");
    let args = vec![("member_id".to_string(), portal.member_id.clone())];
    let report = host
        .app()
        .runtime
        .run_action(&connector.channel, "register-bot".into(), args)
        .await
        .expect("the plugin call completes")
        .unwrap_or_else(|e| panic!("register-bot failed: {:?}: {}", e.kind, e.message));
    assert!(report.contains("77"), "report names the new bot id: {report}");

    let register = bitrix.wait_for_method("imbot.register", 1, WAIT).await.remove(0);
    let hook = format!("{PUBLIC_URL}/hooks/support");
    assert_eq!(register.require("CODE"), "support_bot");
    assert_eq!(register.require("TYPE"), "O");
    assert_eq!(register.require("OPENLINE"), "Y");
    assert_eq!(register.require("EVENT_MESSAGE_ADD"), hook);
    assert_eq!(register.require("EVENT_WELCOME_MESSAGE"), hook);
    assert_eq!(register.require("EVENT_BOT_DELETE"), hook);
    assert_eq!(register.body["PROPERTIES"]["NAME"], "Support");

    let command = bitrix.wait_for_method("imbot.command.register", 1, WAIT).await.remove(0);
    assert_eq!(command.require("BOT_ID"), "77");
    assert_eq!(command.require("COMMAND"), "help");
    assert_eq!(command.require("EVENT_COMMAND_ADD"), hook);

    // After the install, the portal's events are verified against the stored token.
    deliver(&host, "support", bitrix_events::message_add(&portal.clone().with_message("hi").with_message_id(4002))).await;
    let sent = bitrix.wait_for_method("imbot.message.add", 1, WAIT).await;
    assert_eq!(sent[0].require("MESSAGE"), "Dify says: hi");

    let forged = portal.clone().with_application_token("forged").with_message_id(4003);
    let (status, _) = host.post_form("/hooks/support", bitrix_events::message_add(&forged)).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
    tokio::time::sleep(SETTLE).await;
    assert_eq!(dify.request_count(), 1, "only the verified message reached Dify");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_action_lists_the_known_ones() {
    let (bitrix, dify) = (FakeBitrix::start().await, FakeDify::start().await);
    let host = HostConfig::default().connector("support", &install_verified_channel(&bitrix), &dify_provider(&dify, "chatflow")).start().await;
    let connector = host.app().connector("support").expect("connector exists");
    let error = host
        .app()
        .runtime
        .run_action(&connector.channel, "frobnicate".into(), Vec::new())
        .await
        .expect("the plugin call completes")
        .expect_err("unknown actions fail");
    assert!(error.message.contains("register-bot"), "{}", error.message);
}
