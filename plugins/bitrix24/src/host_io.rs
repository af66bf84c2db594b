//! The host side of [`Session`]: REST and OAuth over `wasi:http`, tokens in
//! plugin state, the host log and clock.

use crate::installation::{self, Installation};
use crate::oauth::{self, OAuthClient, PortalTokens, RefreshError};
use crate::rest::{self, RestCall, RestFailure};
use crate::session::{Io, Portal, Session};
use serde_json::Value;
use switchboard_sdk::{PluginError, config, log, state};

/// [`Io`] through the host.
pub struct HostIo;

impl Io for HostIo {
    fn send(&mut self, client_endpoint: &str, token: &str, call: &RestCall) -> Result<Value, RestFailure> {
        rest::send(client_endpoint, token, call)
    }

    fn refresh(&mut self, client: &OAuthClient, refresh_token: &str) -> Result<PortalTokens, RefreshError> {
        oauth::refresh(client, refresh_token, rest::unix_now())
    }

    fn load_tokens(&mut self, member_id: &str) -> Result<Option<PortalTokens>, PluginError> {
        state::get_json(&oauth::tokens_key(member_id))
    }

    fn save_tokens(&mut self, member_id: &str, tokens: &PortalTokens) -> Result<(), PluginError> {
        state::set_json(&oauth::tokens_key(member_id), tokens, Some(oauth::TOKENS_TTL))
    }

    fn installation_refresh_token(&mut self, member_id: &str) -> Option<String> {
        match state::get_json::<Installation>(&installation::state_key(member_id)) {
            Ok(record) => record.map(|record| record.refresh_token).filter(|token| !token.is_empty()),
            Err(error) => {
                log::warn(format!("cannot read the Bitrix24 installation of {member_id}: {}", error.message));
                None
            }
        }
    }

    fn now(&self) -> u64 {
        rest::unix_now()
    }

    fn warn(&mut self, message: &str) {
        log::warn(message);
    }

    fn info(&mut self, message: &str) {
        log::info(message);
    }
}

/// A session with the connector's OAuth settings (`client_id`,
/// `client_secret`, `oauth_url`).
pub fn session(portal: Portal) -> Session<HostIo> {
    Session::open(HostIo, portal, OAuthClient::from_settings(config::get))
}
