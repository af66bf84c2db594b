//! REST calls for one portal with token refreshing: pick the freshest
//! access token (the event's, or one refreshed earlier and stored per
//! portal), and when Bitrix24 answers `expired_token`, refresh it through
//! the OAuth server, store the new tokens and retry the call once.
//!
//! The host-facing effects (HTTP, state, logs, clock) go through [`Io`], so
//! the logic is unit-tested natively with a scripted one.

use crate::oauth::{OAuthClient, PortalTokens, RefreshError};
use crate::rest::{RestCall, RestFailure};
use serde_json::Value;
use switchboard_sdk::PluginError;

/// What a session needs from the host.
pub trait Io {
    /// One REST call with `token` as `auth`.
    fn send(&mut self, client_endpoint: &str, token: &str, call: &RestCall) -> Result<Value, RestFailure>;
    /// Exchange a refresh token for new tokens.
    fn refresh(&mut self, client: &OAuthClient, refresh_token: &str) -> Result<PortalTokens, RefreshError>;
    /// The tokens stored for a portal.
    fn load_tokens(&mut self, member_id: &str) -> Result<Option<PortalTokens>, PluginError>;
    /// Store a portal's tokens.
    fn save_tokens(&mut self, member_id: &str, tokens: &PortalTokens) -> Result<(), PluginError>;
    /// The refresh token recorded at ONAPPINSTALL for a portal, if any.
    fn installation_refresh_token(&mut self, member_id: &str) -> Option<String>;
    /// Unix seconds.
    fn now(&self) -> u64;
    /// A warning for the host log (never a secret).
    fn warn(&mut self, message: &str);
    /// An informational line for the host log (never a secret).
    fn info(&mut self, message: &str);
}

/// A borrowed [`Io`] works too (the caller keeps it, e.g. to inspect it).
impl<T: Io + ?Sized> Io for &mut T {
    fn send(&mut self, client_endpoint: &str, token: &str, call: &RestCall) -> Result<Value, RestFailure> {
        (**self).send(client_endpoint, token, call)
    }
    fn refresh(&mut self, client: &OAuthClient, refresh_token: &str) -> Result<PortalTokens, RefreshError> {
        (**self).refresh(client, refresh_token)
    }
    fn load_tokens(&mut self, member_id: &str) -> Result<Option<PortalTokens>, PluginError> {
        (**self).load_tokens(member_id)
    }
    fn save_tokens(&mut self, member_id: &str, tokens: &PortalTokens) -> Result<(), PluginError> {
        (**self).save_tokens(member_id, tokens)
    }
    fn installation_refresh_token(&mut self, member_id: &str) -> Option<String> {
        (**self).installation_refresh_token(member_id)
    }
    fn now(&self) -> u64 {
        (**self).now()
    }
    fn warn(&mut self, message: &str) {
        (**self).warn(message)
    }
    fn info(&mut self, message: &str) {
        (**self).info(message)
    }
}

/// Where and as whom to call: what the event (the reply context) or the
/// installation record gave.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Portal {
    /// REST base URL.
    pub client_endpoint: String,
    /// The portal's `member_id` (empty: tokens cannot be stored or looked up).
    pub member_id: String,
    /// The access token from the event.
    pub access_token: String,
    /// The refresh token that came with it, if any.
    pub refresh_token: String,
    /// When `access_token` expires (Unix seconds; 0 when unknown).
    pub expires: u64,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal")
            .field("client_endpoint", &self.client_endpoint)
            .field("member_id", &self.member_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// A series of REST calls to one portal.
pub struct Session<I: Io> {
    io: I,
    portal: Portal,
    oauth: Option<OAuthClient>,
    token: String,
    /// Tokens Bitrix24 answered `expired_token` for in this session.
    expired: Vec<String>,
    /// Whether this session got a new token from the OAuth server.
    refreshed: bool,
}

impl<I: Io> Session<I> {
    /// Start a session: the stored tokens of the portal are used instead of
    /// the event's when they expire later (they were refreshed after it).
    pub fn open(mut io: I, portal: Portal, oauth: Option<OAuthClient>) -> Self {
        let mut token = portal.access_token.clone();
        if let Some(stored) = load_stored(&mut io, &portal.member_id)
            && !stored.access_token.is_empty()
            && stored.expires > portal.expires
        {
            token = stored.access_token;
        }
        Self { io, portal, oauth, token, expired: Vec::new(), refreshed: false }
    }

    /// The access token calls are made with (for tests and logs of length only).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Call a method and return its `result`. After an `expired_token`
    /// answer the call is retried with a valid token: one another call stored
    /// meanwhile, else one refreshed from the OAuth server (at most one
    /// refresh per session). Failures are logged as warnings.
    pub fn call(&mut self, call: &RestCall) -> Result<Value, PluginError> {
        let result = self.call_refreshing(call);
        if let Err(error) = &result {
            self.io.warn(&error.message);
        }
        result
    }

    fn call_refreshing(&mut self, call: &RestCall) -> Result<Value, PluginError> {
        // Ends: each round either returns, or moves to a token not tried yet
        // (a stored one, finitely many) or to the session's only refresh.
        loop {
            let failure = match self.io.send(&self.portal.client_endpoint, &self.token, call) {
                Ok(result) => return Ok(result),
                Err(failure) => failure,
            };
            if !failure.is_expired_token() {
                return Err(failure.error);
            }
            if self.refreshed {
                return Err(self.fresh_token_refused(call));
            }
            let Some(oauth) = self.oauth.clone() else {
                // The classified error already names the settings that enable refreshing.
                return Err(failure.error);
            };
            self.expired.push(self.token.clone());
            self.token = self.fresh_token(&oauth).map_err(|mut error| {
                error.message = format!(
                    "Bitrix24 {}: the access token of portal {} expired and could not be refreshed: {}",
                    call.method,
                    self.member_label(),
                    error.message
                );
                error
            })?;
        }
    }

    fn fresh_token_refused(&self, call: &RestCall) -> PluginError {
        PluginError::config(format!(
            "Bitrix24 {} refused the freshly refreshed access token of portal {} as expired: check that \
             `client_id` and `client_secret` belong to the application installed on the portal",
            call.method,
            self.member_label()
        ))
    }

    fn member_label(&self) -> &str {
        if self.portal.member_id.is_empty() { "(unknown member_id)" } else { &self.portal.member_id }
    }

    /// A valid access token: one another call refreshed meanwhile, or a new
    /// one from the OAuth server (stored for the portal; sets `refreshed`).
    fn fresh_token(&mut self, oauth: &OAuthClient) -> Result<String, PluginError> {
        let member_id = self.portal.member_id.clone();
        let now = self.io.now();
        let stored = load_stored(&mut self.io, &member_id);
        if let Some(token) = self.refreshed_meanwhile(stored.as_ref(), now) {
            return Ok(token);
        }
        // The stored refresh token first: refreshing uses a refresh token up,
        // so after one refresh only the stored one is still valid.
        let mut candidates: Vec<String> = Vec::new();
        let installed = if member_id.is_empty() { None } else { self.io.installation_refresh_token(&member_id) };
        for candidate in [stored.map(|s| s.refresh_token), Some(self.portal.refresh_token.clone()), installed].into_iter().flatten() {
            if !candidate.is_empty() && !candidates.contains(&candidate) {
                candidates.push(candidate);
            }
        }
        if candidates.is_empty() {
            return Err(PluginError::config(
                "no refresh token is known for this portal (the event carried none and no installation is \
                 recorded): reinstall the application so ONAPPINSTALL reaches this connector",
            ));
        }
        let mut last_error = None;
        for refresh_token in &candidates {
            match self.io.refresh(oauth, refresh_token) {
                Ok(mut tokens) => {
                    if tokens.member_id.is_empty() {
                        tokens.member_id = member_id.clone();
                    }
                    if tokens.client_endpoint.is_empty() {
                        tokens.client_endpoint = self.portal.client_endpoint.clone();
                    }
                    if tokens.refresh_token.is_empty() {
                        tokens.refresh_token = refresh_token.clone();
                    }
                    if !member_id.is_empty()
                        && let Err(error) = self.io.save_tokens(&member_id, &tokens)
                    {
                        self.io.warn(&format!(
                            "refreshed the Bitrix24 access token of portal {member_id} but could not store it \
                             (later calls will refresh again): {}",
                            error.message
                        ));
                    }
                    let refreshed = format!("refreshed the Bitrix24 access token of portal {}", self.member_label());
                    self.io.info(&refreshed);
                    self.refreshed = true;
                    return Ok(tokens.access_token);
                }
                Err(RefreshError { error, token_refused: true }) => last_error = Some(error),
                Err(RefreshError { error, .. }) => return Err(error),
            }
        }
        // Another call may have refreshed (and used up our refresh token) meanwhile.
        let stored = load_stored(&mut self.io, &member_id);
        if let Some(token) = self.refreshed_meanwhile(stored.as_ref(), now) {
            return Ok(token);
        }
        Err(last_error.unwrap_or_else(|| PluginError::config("the Bitrix24 OAuth server refused every refresh token")))
    }

    /// The stored access token, if it is valid and was not refused in this session.
    fn refreshed_meanwhile(&self, stored: Option<&PortalTokens>, now: u64) -> Option<String> {
        stored.filter(|stored| stored.is_fresh(now) && !self.expired.contains(&stored.access_token)).map(|stored| stored.access_token.clone())
    }
}

/// The stored tokens; a state failure is logged and read as "none".
fn load_stored<I: Io>(io: &mut I, member_id: &str) -> Option<PortalTokens> {
    if member_id.is_empty() {
        return None;
    }
    match io.load_tokens(member_id) {
        Ok(stored) => stored,
        Err(error) => {
            let message = format!("cannot read the stored Bitrix24 tokens of portal {member_id}: {}", error.message);
            io.warn(&message);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::{self, MESSAGE_ADD};
    use serde_json::{Map, json};
    use std::collections::HashMap;
    use switchboard_sdk::ErrorKind;

    const NOW: u64 = 1_771_928_985;

    /// A scripted host: a portal that accepts `valid` tokens and answers
    /// `expired_token` for the rest, and an OAuth server that accepts the
    /// `grants` refresh tokens once each.
    #[derive(Default)]
    struct Script {
        valid: Vec<String>,
        grants: Vec<String>,
        refresh_failure: Option<RefreshError>,
        stored: HashMap<String, PortalTokens>,
        installed: Option<String>,
        failing_store: bool,
        sent: Vec<String>,
        refreshed_with: Vec<String>,
        warnings: Vec<String>,
        portal_refuses_all: bool,
        issued: u32,
        other_call_refreshes: bool,
    }

    impl Io for Script {
        fn send(&mut self, _endpoint: &str, token: &str, _call: &RestCall) -> Result<Value, RestFailure> {
            self.sent.push(token.to_string());
            if !self.portal_refuses_all && self.valid.iter().any(|valid| valid == token) {
                return Ok(json!(19880117));
            }
            rest::interpret_response(MESSAGE_ADD, 401, &[], br#"{"error":"expired_token","error_description":"The access token provided has expired."}"#, NOW)
        }

        fn refresh(&mut self, _client: &OAuthClient, refresh_token: &str) -> Result<PortalTokens, RefreshError> {
            self.refreshed_with.push(refresh_token.to_string());
            if self.other_call_refreshes {
                // Another call refreshes first and uses the token up.
                self.stored.insert("m1".into(), tokens("raced-token", "raced-refresh", NOW + 3600));
                self.valid.push("raced-token".into());
            }
            if let Some(failure) = &self.refresh_failure {
                return Err(failure.clone());
            }
            let Some(position) = self.grants.iter().position(|grant| grant == refresh_token) else {
                return Err(crate::oauth::parse_refresh_response(400, br#"{"error":"invalid_grant"}"#, NOW).unwrap_err());
            };
            self.grants.remove(position);
            self.issued += 1;
            let access = format!("fresh-{}", self.issued);
            self.valid.push(access.clone());
            let refresh = format!("fresh-refresh-{}", self.issued);
            self.grants.push(refresh.clone());
            Ok(PortalTokens { member_id: String::new(), ..tokens(&access, &refresh, NOW + 3600) })
        }

        fn load_tokens(&mut self, member_id: &str) -> Result<Option<PortalTokens>, PluginError> {
            Ok(self.stored.get(member_id).cloned())
        }

        fn save_tokens(&mut self, member_id: &str, tokens: &PortalTokens) -> Result<(), PluginError> {
            if self.failing_store {
                return Err(PluginError::transient("state store unavailable: down"));
            }
            self.stored.insert(member_id.to_string(), tokens.clone());
            Ok(())
        }

        fn installation_refresh_token(&mut self, _member_id: &str) -> Option<String> {
            self.installed.clone()
        }

        fn now(&self) -> u64 {
            NOW
        }

        fn warn(&mut self, message: &str) {
            self.warnings.push(message.to_string());
        }

        fn info(&mut self, _message: &str) {}
    }

    fn tokens(access: &str, refresh: &str, expires: u64) -> PortalTokens {
        PortalTokens {
            access_token: access.into(),
            refresh_token: refresh.into(),
            expires,
            client_endpoint: "https://p.bitrix24.com/rest/".into(),
            member_id: "m1".into(),
        }
    }

    fn portal() -> Portal {
        Portal {
            client_endpoint: "https://p.bitrix24.com/rest/".into(),
            member_id: "m1".into(),
            access_token: "event-token".into(),
            refresh_token: "event-refresh".into(),
            expires: NOW - 10,
        }
    }

    fn oauth() -> Option<OAuthClient> {
        Some(OAuthClient { oauth_url: "https://oauth.bitrix.info".into(), client_id: "app.1".into(), client_secret: "s3cr3t-value".into() })
    }

    fn call() -> RestCall {
        RestCall { method: MESSAGE_ADD, params: Map::new() }
    }

    #[test]
    fn a_valid_token_is_used_as_is() {
        let mut script = Script { valid: vec!["event-token".into()], ..Script::default() };
        let mut session = Session::open(&mut script, portal(), oauth());
        assert_eq!(session.call(&call()).unwrap(), json!(19880117));
        assert!(script.refreshed_with.is_empty());
        assert_eq!(script.sent, ["event-token"]);
    }

    #[test]
    fn an_expired_token_is_refreshed_stored_and_the_call_retried_once() {
        let mut script = Script { grants: vec!["event-refresh".into()], ..Script::default() };
        let mut session = Session::open(&mut script, portal(), oauth());
        assert_eq!(session.call(&call()).unwrap(), json!(19880117));
        assert_eq!(session.call(&call()).unwrap(), json!(19880117), "later calls use the new token");
        assert_eq!(script.sent, ["event-token", "fresh-1", "fresh-1"]);
        assert_eq!(script.refreshed_with, ["event-refresh"]);
        let stored = &script.stored["m1"];
        assert_eq!((stored.access_token.as_str(), stored.refresh_token.as_str()), ("fresh-1", "fresh-refresh-1"));
        assert_eq!(stored.member_id, "m1", "stored under the portal");
    }

    #[test]
    fn later_sessions_use_the_stored_token_when_it_is_newer() {
        let mut script = Script { valid: vec!["fresh-1".into(), "event-token".into()], ..Script::default() };
        script.stored.insert("m1".into(), tokens("fresh-1", "fresh-refresh-1", NOW + 3000));
        let session = Session::open(&mut script, portal(), oauth());
        assert_eq!(session.token(), "fresh-1");
        // A newer event beats an older refresh.
        let newer = Portal { expires: NOW + 3500, ..portal() };
        assert_eq!(Session::open(&mut script, newer, oauth()).token(), "event-token");
        // An old reply context without expiry: the stored token is newer.
        let unknown = Portal { expires: 0, ..portal() };
        assert_eq!(Session::open(&mut script, unknown, oauth()).token(), "fresh-1");
    }

    #[test]
    fn the_stored_refresh_token_goes_first_and_used_up_ones_are_skipped() {
        let mut script = Script { grants: vec!["stored-refresh".into()], ..Script::default() };
        script.stored.insert("m1".into(), tokens("stored-expired", "stored-refresh", NOW - 5));
        let mut session = Session::open(&mut script, Portal { expires: NOW - 100, ..portal() }, oauth());
        assert_eq!(session.token(), "stored-expired");
        session.call(&call()).unwrap();
        assert_eq!(script.refreshed_with, ["stored-refresh"]);

        // The stored one is used up: the event's is tried next, then the installation's.
        let mut script = Script { grants: vec!["installed-refresh".into()], installed: Some("installed-refresh".into()), ..Script::default() };
        script.stored.insert("m1".into(), tokens("stored-expired", "used-up", NOW - 5));
        Session::open(&mut script, portal(), oauth()).call(&call()).unwrap();
        assert_eq!(script.refreshed_with, ["used-up", "event-refresh", "installed-refresh"]);
    }

    #[test]
    fn a_token_another_call_refreshed_meanwhile_is_taken_without_refreshing() {
        let mut script = Script { valid: vec!["other-fresh".into()], ..Script::default() };
        let mut session = Session::open(&mut script, portal(), oauth());
        script_store(&mut session, tokens("other-fresh", "other-refresh", NOW + 3600));
        assert_eq!(session.call(&call()).unwrap(), json!(19880117));
        assert!(script.refreshed_with.is_empty());
        assert_eq!(script.sent, ["event-token", "other-fresh"]);
    }

    #[test]
    fn a_stored_token_refused_despite_its_expiry_leads_to_a_refresh() {
        let mut script = Script { grants: vec!["stored-refresh".into()], ..Script::default() };
        script.stored.insert("m1".into(), tokens("revoked", "stored-refresh", NOW + 3000));
        let newer_event = Portal { expires: NOW + 3500, ..portal() };
        let mut session = Session::open(&mut script, newer_event, oauth());
        assert_eq!(session.call(&call()).unwrap(), json!(19880117));
        assert_eq!(script.sent, ["event-token", "revoked", "fresh-1"]);
        assert_eq!(script.refreshed_with, ["stored-refresh"]);
    }

    /// Store tokens behind the session's back (another worker refreshing).
    fn script_store(session: &mut Session<&mut Script>, tokens: PortalTokens) {
        session.io.stored.insert("m1".into(), tokens);
    }

    #[test]
    fn losing_a_refresh_race_falls_back_to_the_winners_token() {
        let mut script = Script { other_call_refreshes: true, ..Script::default() };
        let mut session = Session::open(&mut script, portal(), oauth());
        assert_eq!(session.call(&call()).unwrap(), json!(19880117));
        assert_eq!(script.sent.last().map(String::as_str), Some("raced-token"));
    }

    #[test]
    fn without_client_credentials_the_error_names_the_settings() {
        let mut script = Script::default();
        let error = Session::open(&mut script, portal(), None).call(&call()).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(error.message.contains("`client_id`") && error.message.contains("`client_secret`"), "{}", error.message);
        assert!(script.refreshed_with.is_empty());
        assert_eq!(script.warnings.len(), 1, "the failure is logged");
    }

    #[test]
    fn a_failed_refresh_is_a_config_error_without_secrets() {
        let mut script = Script::default();
        let error = Session::open(&mut script, portal(), oauth()).call(&call()).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(error.message.contains("could not be refreshed") && error.message.contains("m1"), "{}", error.message);
        for secret in ["s3cr3t-value", "event-refresh", "event-token"] {
            assert!(!error.message.contains(secret), "{secret} leaked: {}", error.message);
        }
        assert_eq!(script.sent.len(), 1, "no retry without a new token");

        let wrong_client = crate::oauth::parse_refresh_response(401, br#"{"error":"invalid_client"}"#, NOW).unwrap_err();
        let mut script = Script { refresh_failure: Some(wrong_client), installed: Some("installed".into()), ..Script::default() };
        let error = Session::open(&mut script, portal(), oauth()).call(&call()).unwrap_err();
        assert!(error.message.contains("`client_secret`"), "{}", error.message);
        assert_eq!(script.refreshed_with, ["event-refresh"], "wrong credentials fail every token: stop at the first");
    }

    #[test]
    fn an_unreachable_oauth_server_is_transient() {
        let down = crate::oauth::parse_refresh_response(503, b"", NOW).unwrap_err();
        let mut script = Script { refresh_failure: Some(down), ..Script::default() };
        let error = Session::open(&mut script, portal(), oauth()).call(&call()).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Transient);
    }

    #[test]
    fn no_refresh_token_at_all() {
        let mut script = Script::default();
        let bare = Portal { refresh_token: String::new(), ..portal() };
        let error = Session::open(&mut script, bare, oauth()).call(&call()).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(error.message.contains("reinstall"), "{}", error.message);
    }

    #[test]
    fn a_refreshed_token_that_is_refused_again_is_not_refreshed_twice() {
        // The refresh works, but the portal refuses the new token too.
        let mut script = Script { grants: vec!["event-refresh".into()], portal_refuses_all: true, ..Script::default() };
        let mut session = Session::open(&mut script, portal(), oauth());
        for _ in 0..2 {
            let error = session.call(&call()).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Config);
            assert!(error.message.contains("freshly refreshed"), "{}", error.message);
        }
        assert_eq!(script.refreshed_with.len(), 1, "one refresh per session");
        assert_eq!(script.sent, ["event-token", "fresh-1", "fresh-1"]);
    }

    #[test]
    fn a_failing_store_still_delivers() {
        let mut script = Script { grants: vec!["event-refresh".into()], failing_store: true, ..Script::default() };
        Session::open(&mut script, portal(), oauth()).call(&call()).unwrap();
        assert!(script.warnings.iter().any(|w| w.contains("could not store")), "{:?}", script.warnings);
    }

    #[test]
    fn other_failures_are_not_refreshed() {
        struct Limited;
        impl Io for Limited {
            fn send(&mut self, _: &str, _: &str, _: &RestCall) -> Result<Value, RestFailure> {
                rest::interpret_response(MESSAGE_ADD, 503, &[], br#"{"error":"QUERY_LIMIT_EXCEEDED"}"#, NOW)
            }
            fn refresh(&mut self, _: &OAuthClient, _: &str) -> Result<PortalTokens, RefreshError> {
                unreachable!("a rate limit is not an expired token")
            }
            fn load_tokens(&mut self, _: &str) -> Result<Option<PortalTokens>, PluginError> {
                Err(PluginError::transient("state store unavailable"))
            }
            fn save_tokens(&mut self, _: &str, _: &PortalTokens) -> Result<(), PluginError> {
                unreachable!()
            }
            fn installation_refresh_token(&mut self, _: &str) -> Option<String> {
                None
            }
            fn now(&self) -> u64 {
                NOW
            }
            fn warn(&mut self, _: &str) {}
            fn info(&mut self, _: &str) {}
        }
        let error = Session::open(Limited, portal(), oauth()).call(&call()).unwrap_err();
        assert_eq!((error.kind, error.retry_after_ms), (ErrorKind::Transient, Some(1000)));
    }
}
