//! Bitrix24 bot setup without hand-written REST calls: the portal installs
//! the app (ONAPPINSTALL), then the `register-bot` action registers the bot
//! and its commands from the connector's settings.

use crate::{SETTLE, WAIT, deliver};
use switchboard_tests::bitrix_events::{self, EventParams};
use switchboard_tests::harness::{HostConfig, dify_provider, plugin_table, toml_string};
use switchboard_tests::{FakeBitrix, FakeDify};

const PUBLIC_URL: &str = "https://bots.example.com";

/// The `install_secret` of [`install_verified_channel`].
const INSTALL_SECRET: &str = "install-s3cret";

/// A Bitrix24 channel with no configured `application_token`: the install
/// proves itself with `?install_secret=` in the handler URL, later events
/// are verified against the token stored at ONAPPINSTALL.
fn install_verified_channel(bitrix: &FakeBitrix) -> String {
    plugin_table(
        "bitrix24",
        &[
            ("portal_url", toml_string(&bitrix.client_endpoint())),
            ("install_secret", toml_string(INSTALL_SECRET)),
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

    let (status, body) = host.post_form(&format!("/hooks/support?install_secret={INSTALL_SECRET}"), bitrix_events::app_install(&portal)).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
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

/// A Bitrix24 channel that confirms installs with the OAuth server (the
/// fake's), with no `application_token` and no `install_secret`.
fn oauth_verified_channel(bitrix: &FakeBitrix) -> String {
    plugin_table(
        "bitrix24",
        &[
            ("portal_url", toml_string(&bitrix.client_endpoint())),
            ("client_id", toml_string(FakeBitrix::CLIENT_ID)),
            ("client_secret", toml_string(FakeBitrix::CLIENT_SECRET)),
            ("oauth_url", toml_string(&bitrix.oauth_url())),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_with_nothing_to_verify_it_is_refused() {
    let (bitrix, dify) = (FakeBitrix::start().await, FakeDify::start().await);
    let channel = plugin_table("bitrix24", &[("portal_url", toml_string(&bitrix.client_endpoint()))]);
    let host = HostConfig::default().connector("support", &channel, &dify_provider(&dify, "chatflow")).start().await;
    let portal = EventParams::private(&bitrix.client_endpoint());
    let (status, _) = host.post_form("/hooks/support", bitrix_events::app_install(&portal)).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "first come, first served is not a proof");
    let (status, _) = host.post_form("/hooks/support", bitrix_events::message_add(&portal.with_message("hi").with_message_id(4101))).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
    assert_eq!(dify.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth_server_confirms_an_install_and_forged_ones_neither_claim_nor_lock_out() {
    let (bitrix, dify) = (FakeBitrix::start().await, FakeDify::start().await);
    let host = HostConfig::default().connector("support", &oauth_verified_channel(&bitrix), &dify_provider(&dify, "chatflow")).start().await;
    let portal = EventParams::private(&bitrix.client_endpoint());
    let hook = "/hooks/support";

    // A forged install naming a portal the refresh token does not belong to.
    // (The forger's refresh token is a genuine one of its own portal.)
    let victim = EventParams { member_id: "victim-portal".into(), ..portal.clone() }.with_refresh_tokens("attackers-own-refresh-token", "x");
    let (forged_status, forged_body) = host.post_form(hook, bitrix_events::app_install(&victim)).await;
    assert_eq!(forged_status, reqwest::StatusCode::FORBIDDEN);
    let (status, _) = host.post_form(hook, bitrix_events::message_add(&victim.clone().with_message("claimed?").with_message_id(4201))).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "the forged install claimed nothing");

    // The genuine install: its refresh token is confirmed for its portal.
    deliver(&host, "support", bitrix_events::app_install(&portal)).await;
    let refreshes = bitrix.refreshes();
    assert_eq!(refreshes.last().map(|r| r.refresh_token.as_str()), Some(portal.refresh_token.as_str()), "{refreshes:#?}");
    deliver(&host, "support", bitrix_events::message_add(&portal.clone().with_message("hi").with_message_id(4202))).await;
    assert_eq!(bitrix.wait_for_method("imbot.message.add", 1, WAIT).await[0].require("MESSAGE"), "Dify says: hi");

    // A forged reinstall of the genuine portal (a refresh token the OAuth
    // server refuses, a new application token) cannot lock it out.
    let lockout = portal.clone().with_application_token("attacker-token").with_refresh_tokens("stolen-or-made-up", "x");
    bitrix.revoke_refresh_token("stolen-or-made-up");
    let (lockout_status, lockout_body) = host.post_form(hook, bitrix_events::app_install(&lockout)).await;
    assert_eq!(lockout_status, reqwest::StatusCode::FORBIDDEN);
    deliver(&host, "support", bitrix_events::message_add(&portal.clone().with_message("still mine").with_message_id(4203))).await;
    assert_eq!(bitrix.wait_for_method("imbot.message.add", 2, WAIT).await[1].require("MESSAGE"), "Dify says: still mine");

    // Every refusal reads the same: no oracle for installed portals.
    let (wrong_token_status, wrong_token_body) =
        host.post_form(hook, bitrix_events::message_add(&portal.clone().with_application_token("guess").with_message_id(4204))).await;
    let (unknown_status, unknown_body) =
        host.post_form(hook, bitrix_events::message_add(&EventParams { member_id: "never-installed".into(), ..portal.clone() }.with_message_id(4205))).await;
    assert_eq!([wrong_token_status, unknown_status], [reqwest::StatusCode::FORBIDDEN; 2]);
    for body in [&lockout_body, &wrong_token_body, &unknown_body] {
        assert_eq!(body, &forged_body);
    }
    assert!(forged_body.contains("could not be authenticated"), "{forged_body}");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(dify.request_count(), 2, "only the genuine portal's messages reached Dify");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_secret_in_the_handler_url_proves_an_install_and_a_reinstall() {
    let (bitrix, dify) = (FakeBitrix::start().await, FakeDify::start().await);
    let host = HostConfig::default().connector("support", &install_verified_channel(&bitrix), &dify_provider(&dify, "chatflow")).start().await;
    let portal = EventParams::private(&bitrix.client_endpoint());
    let with_secret = format!("/hooks/support?install_secret={INSTALL_SECRET}");
    for path in ["/hooks/support", "/hooks/support?install_secret=guess"] {
        let (status, _) = host.post_form(path, bitrix_events::app_install(&portal)).await;
        assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{path}");
    }
    let (status, _) = host.post_form(&with_secret, bitrix_events::app_install(&portal)).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    // A genuine reinstall brings a new application token; the secret proves it.
    let reinstalled = portal.clone().with_application_token("new-app-token");
    let (status, _) = host.post_form(&with_secret, bitrix_events::app_install(&reinstalled)).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let (status, _) = host.post_form("/hooks/support", bitrix_events::message_add(&portal.clone().with_message_id(4301))).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "the old token no longer counts");
    deliver(&host, "support", bitrix_events::message_add(&reinstalled.with_message("hi").with_message_id(4302))).await;
    assert_eq!(bitrix.wait_for_method("imbot.message.add", 1, WAIT).await[0].require("MESSAGE"), "Dify says: hi");
}
