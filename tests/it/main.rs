//! Integration tests: the real host with the real `bitrix24` and `dify`
//! plugins against fake Bitrix24 and Dify servers, and the sandbox against
//! hostile components. One binary (fast to link), one module per area.

mod botone;
mod e2e_bitrix_dify;
mod edge;
mod livechat;
mod messenger;
mod reliability;
mod routing;
mod sandbox;
mod setup;
mod typebot;

use reqwest::StatusCode;
use std::time::Duration;
use switchboard_tests::TestHost;

/// Bound for one reply to arrive.
pub const WAIT: Duration = switchboard_tests::WAIT;

/// Bound for replies that need the host's retries to run out first.
pub const WAIT_RETRIES: Duration = Duration::from_secs(40);

/// How long to watch for something that must NOT happen.
pub const SETTLE: Duration = Duration::from_millis(700);

/// `/hooks/{connector}`.
pub fn hook(connector: &str) -> String {
    format!("/hooks/{connector}")
}

/// Deliver a webhook the way Bitrix24 does and require the fast `200`.
pub async fn deliver(host: &TestHost, connector: &str, body: String) {
    let (status, text) = host.post_form(&hook(connector), body).await;
    assert_eq!(status, StatusCode::OK, "webhook for `{connector}` was not accepted: {text}");
}
