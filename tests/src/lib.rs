//! Test harness for the Switchboard integration tests.
//!
//! * [`fake_bitrix`]: an emulated Bitrix24 REST API (and OAuth server) that
//!   records every call and scripts failures (expired tokens, rate limits,
//!   the K-th call failing).
//! * [`fake_dify`]: an emulated Dify service API (chat, agent streaming,
//!   workflows) with switches for the failures Dify really produces.
//! * [`probe`]: a bare HTTP server that counts hits (an outbound-HTTP target).
//! * [`bitrix_events`]: Bitrix24 webhook bodies encoded exactly like PHP's
//!   `http_build_query`.
//! * [`harness`]: starts the real host ([`switchboard::Server`]) from TOML.
//! * [`child`]: the real `switchboard` binary as a child process.
//! * [`components`]: paths of the hostile test components built by `build.rs`.

pub mod bitrix_events;
pub mod child;
pub mod fake_bitrix;
pub mod fake_botone;
pub mod fake_dify;
pub mod fake_livechat;
pub mod fake_messenger;
pub mod fake_typebot;
pub mod harness;
pub mod probe;
mod util;

#[cfg(test)]
mod selftest;

/// Paths of the test components compiled by `build.rs`: `SPIN_LOOP`, `DEEP_RECURSION`,
/// `MEMORY_BOMB`, `FORBIDDEN_HTTP`, `ECHO` (each a `&str` path to a `.wasm`).
pub mod components {
    include!(concat!(env!("OUT_DIR"), "/components.rs"));
}

pub use bitrix_events::EventParams;
pub use child::ChildHost;
pub use fake_bitrix::{Call, FakeBitrix, Refresh};
pub use fake_botone::FakeBotOne;
pub use fake_dify::{DifyRequest, FakeDify};
pub use fake_messenger::{FakeMessenger, ReplyWebhook};
pub use harness::TestHost;
pub use probe::Probe;

/// Default bound for waiting on asynchronous results.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);
