//! Refreshing expired Bitrix24 access tokens through the OAuth server
//! (`GET {oauth_url}/oauth/token/?grant_type=refresh_token&…`) and the
//! per-portal record of the freshest tokens. Everything but [`refresh`] is
//! pure. Neither the client secret nor any token ever appears in an error
//! message.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use switchboard_sdk::{PluginError, form, http};

/// Bitrix24's OAuth server, the default of `oauth_url`.
pub const DEFAULT_OAUTH_URL: &str = "https://oauth.bitrix.info";

/// How long refreshed tokens are kept: a Bitrix24 refresh token is valid for
/// 180 days (each refresh issues a new one).
pub const TOKENS_TTL: Duration = Duration::from_secs(180 * 24 * 60 * 60);

/// Access tokens live one hour (`expires_in: 3600`) unless the server says otherwise.
const DEFAULT_EXPIRES_IN: u64 = 3600;

const TIMEOUT: Duration = Duration::from_secs(20);

/// The state key of a portal's refreshed tokens.
pub fn tokens_key(member_id: &str) -> String {
    format!("tokens:{member_id}")
}

/// The application's OAuth credentials (`client_id`, `client_secret`) and
/// the OAuth server (`oauth_url`).
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// `oauth_url`, e.g. `https://oauth.bitrix.info`.
    pub oauth_url: String,
    /// The application's `client_id` (`app.xxxx` or `local.xxxx`).
    pub client_id: String,
    /// The application's `client_secret` (never logged).
    pub client_secret: String,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient").field("oauth_url", &self.oauth_url).field("client_id", &self.client_id).field("client_secret", &"…").finish()
    }
}

impl OAuthClient {
    /// Read the settings through `get`; `None` unless both `client_id` and
    /// `client_secret` are set (refreshing is then off).
    pub fn from_settings(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let setting = |key: &str| get(key).map(|value| value.trim().to_string()).filter(|value| !value.is_empty());
        Some(Self {
            client_id: setting("client_id")?,
            client_secret: setting("client_secret")?,
            oauth_url: setting("oauth_url").unwrap_or_else(|| DEFAULT_OAUTH_URL.to_string()),
        })
    }

    /// `{oauth_url}/oauth/token/?grant_type=refresh_token&client_id=…&client_secret=…&refresh_token=…`.
    /// A secret: never log it.
    pub fn refresh_url(&self, refresh_token: &str) -> String {
        let query = form::encode(&[
            ("grant_type".to_string(), "refresh_token".to_string()),
            ("client_id".to_string(), self.client_id.clone()),
            ("client_secret".to_string(), self.client_secret.clone()),
            ("refresh_token".to_string(), refresh_token.to_string()),
        ]);
        format!("{}/oauth/token/?{query}", self.oauth_url.trim().trim_end_matches('/'))
    }
}

/// The freshest tokens of one portal, kept under [`tokens_key`].
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortalTokens {
    /// OAuth access token.
    pub access_token: String,
    /// The refresh token issued with it (the previous one is used up).
    pub refresh_token: String,
    /// When `access_token` expires (Unix seconds).
    pub expires: u64,
    /// The portal's REST base URL, as the OAuth server reported it.
    pub client_endpoint: String,
    /// The portal.
    pub member_id: String,
}

impl std::fmt::Debug for PortalTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalTokens")
            .field("expires", &self.expires)
            .field("client_endpoint", &self.client_endpoint)
            .field("member_id", &self.member_id)
            .finish_non_exhaustive()
    }
}

impl PortalTokens {
    /// Whether the access token is still valid at `now` (Unix seconds),
    /// with a minute to spare.
    pub fn is_fresh(&self, now: u64) -> bool {
        !self.access_token.is_empty() && self.expires > now.saturating_add(60)
    }
}

/// Why a refresh failed.
#[derive(Clone, Debug)]
pub struct RefreshError {
    /// What to tell the host: `config` naming what to fix, or `transient`.
    pub error: PluginError,
    /// The server refused this refresh token (used up, expired, unknown):
    /// another refresh token of the portal may still work. False when every
    /// token would fail the same way (wrong client credentials, an
    /// unreachable or disallowed server).
    pub token_refused: bool,
}

impl RefreshError {
    fn fatal(error: PluginError) -> Self {
        Self { error, token_refused: false }
    }
}

/// Read the OAuth server's answer to a refresh: the new tokens, or an error
/// naming what to fix. `now` (Unix seconds) dates `expires_in`.
pub fn parse_refresh_response(status: u16, body: &[u8], now: u64) -> Result<PortalTokens, RefreshError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let text = |key: &str| match json.as_ref().and_then(|json| json.get(key)) {
        Some(Value::String(value)) => value.trim().to_string(),
        Some(Value::Number(value)) => value.to_string(),
        _ => String::new(),
    };
    let error = text("error");
    if (200..300).contains(&status) && error.is_empty() && !text("access_token").is_empty() {
        let expires = match text("expires").parse::<u64>() {
            Ok(at) if at > 0 => at,
            _ => now.saturating_add(text("expires_in").parse().unwrap_or(DEFAULT_EXPIRES_IN)),
        };
        return Ok(PortalTokens {
            access_token: text("access_token"),
            refresh_token: text("refresh_token"),
            expires,
            client_endpoint: text("client_endpoint"),
            member_id: text("member_id"),
        });
    }
    let code = if error.is_empty() { "no error code".to_string() } else { error.clone() };
    let description = text("error_description").trim_end_matches('.').to_string();
    let detail = if description.is_empty() {
        format!("the Bitrix24 OAuth server answered HTTP {status} {code}")
    } else {
        format!("the Bitrix24 OAuth server answered HTTP {status} {code}: {description}")
    };
    if http::is_transient_status(status) {
        return Err(RefreshError::fatal(PluginError::transient(detail)));
    }
    let (hint, token_refused) = match error.as_str() {
        "invalid_client" => (
            "Check the settings `client_id` and `client_secret`: they must be the credentials of the application \
             installed on the portal",
            false,
        ),
        "invalid_grant" | "expired_token" => (
            "The refresh token is used up or expired (it lives 180 days): reinstall the application on the portal, \
             or check that `client_id` and `client_secret` belong to the application the portal installed",
            true,
        ),
        _ if (200..300).contains(&status) => (
            "The answer has no access_token: check that `oauth_url` is Bitrix24's OAuth server \
             (https://oauth.bitrix.info)",
            false,
        ),
        _ => (
            "Check the settings `client_id`, `client_secret` and `oauth_url`, or reinstall the application on the \
             portal",
            true,
        ),
    };
    Err(RefreshError { error: PluginError::config(format!("{detail}. {hint}")), token_refused })
}

/// A transport failure of the refresh request. The URL carries the client
/// secret and the refresh token, so the SDK's message (which names it) is
/// not passed on.
pub fn transport_error(client: &OAuthClient, error: &http::HttpError) -> RefreshError {
    let host = client.oauth_url.trim();
    RefreshError::fatal(match error {
        http::HttpError::Denied(_) => PluginError::config(format!(
            "the host refused the request to the Bitrix24 OAuth server {host}: set `oauth_url = \"{host}\"` in \
             this plugin's settings or add the host to `allowed_hosts`"
        )),
        http::HttpError::InvalidUrl(_) => PluginError::config(format!("setting `oauth_url` = `{host}` is not an http(s) URL")),
        http::HttpError::Transport(_) => {
            PluginError::transient(format!("the Bitrix24 OAuth server {host} could not be reached (connection failed or timed out)"))
        }
    })
}

/// Exchange `refresh_token` for new tokens (the HTTP edge).
pub fn refresh(client: &OAuthClient, refresh_token: &str, now: u64) -> Result<PortalTokens, RefreshError> {
    exchange(client, refresh_token, now, TIMEOUT)
}

/// [`refresh`] waiting at most `timeout` for the server.
pub fn exchange(client: &OAuthClient, refresh_token: &str, now: u64, timeout: Duration) -> Result<PortalTokens, RefreshError> {
    let response = http::Request::get(client.refresh_url(refresh_token))
        .header("accept", "application/json")
        .timeout(timeout)
        .send()
        .map_err(|error| transport_error(client, &error))?;
    parse_refresh_response(response.status, &response.body, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::ErrorKind;

    const NOW: u64 = 1_771_928_985;

    fn client() -> OAuthClient {
        OAuthClient { oauth_url: "https://oauth.bitrix.info/".into(), client_id: "local.6667fc928a50a9.70414732".into(), client_secret: "Ze&Ky+eY".into() }
    }

    fn settings(pairs: &[(&str, &str)]) -> Option<OAuthClient> {
        OAuthClient::from_settings(|key| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn settings_need_both_credentials() {
        assert_eq!(settings(&[]), None);
        assert_eq!(settings(&[("client_id", "app.1")]), None);
        assert_eq!(settings(&[("client_id", "app.1"), ("client_secret", "  ")]), None);
        let client = settings(&[("client_id", " app.1 "), ("client_secret", "s")]).unwrap();
        assert_eq!((client.client_id.as_str(), client.oauth_url.as_str()), ("app.1", DEFAULT_OAUTH_URL));
        let local = settings(&[("client_id", "app.1"), ("client_secret", "s"), ("oauth_url", "http://127.0.0.1:9")]);
        assert_eq!(local.unwrap().oauth_url, "http://127.0.0.1:9");
        assert!(!format!("{client:?}").contains("\"s\""), "Debug hides the secret");
    }

    #[test]
    fn refresh_url_has_the_documented_query() {
        assert_eq!(
            client().refresh_url("952f/2c69"),
            "https://oauth.bitrix.info/oauth/token/?grant_type=refresh_token&client_id=local.6667fc928a50a9.70414732\
             &client_secret=Ze%26Ky%2BeY&refresh_token=952f%2F2c69"
        );
    }

    #[test]
    fn parses_the_documented_answer() {
        let body = br#"{"access_token":"6b2e0667006e9f06006b12e4000000010000072c","expires":1771932585,"expires_in":3600,
            "scope":"app","domain":"oauth.bitrix.info","server_endpoint":"https://oauth.bitrix.info/rest/","status":"L",
            "client_endpoint":"https://p.bitrix24.com/rest/","member_id":"d41d8cd98f00b204e9800998ecf8427e",
            "user_id":1,"refresh_token":"5b4d8667006e9f06006b12e400000001000007"}"#;
        let tokens = parse_refresh_response(200, body, NOW).unwrap();
        assert_eq!(tokens.access_token, "6b2e0667006e9f06006b12e4000000010000072c");
        assert_eq!(tokens.refresh_token, "5b4d8667006e9f06006b12e400000001000007");
        assert_eq!(tokens.expires, 1_771_932_585);
        assert_eq!(tokens.client_endpoint, "https://p.bitrix24.com/rest/");
        assert_eq!(tokens.member_id, "d41d8cd98f00b204e9800998ecf8427e");
        assert!(tokens.is_fresh(NOW) && !tokens.is_fresh(1_771_932_585));
        let debug = format!("{tokens:?}");
        assert!(!debug.contains("6b2e0667") && !debug.contains("5b4d8667"), "{debug}");
        // Without `expires`, `expires_in` counts from now.
        let relative = parse_refresh_response(200, br#"{"access_token":"a","refresh_token":"r","expires_in":"1800"}"#, NOW);
        assert_eq!(relative.unwrap().expires, NOW + 1800);
        let bare = parse_refresh_response(200, br#"{"access_token":"a"}"#, NOW).unwrap();
        assert_eq!(bare.expires, NOW + 3600);
    }

    #[test]
    fn refused_refreshes_are_config_errors_naming_the_settings() {
        let wrong_client = parse_refresh_response(401, br#"{"error":"invalid_client","error_description":"Invalid client credentials"}"#, NOW).unwrap_err();
        assert_eq!(wrong_client.error.kind, ErrorKind::Config);
        assert!(wrong_client.error.message.contains("`client_id` and `client_secret`"), "{}", wrong_client.error.message);
        assert!(!wrong_client.token_refused, "every refresh token would fail the same way");
        let used_up = parse_refresh_response(400, br#"{"error":"invalid_grant","error_description":"Invalid grant"}"#, NOW).unwrap_err();
        assert_eq!(used_up.error.kind, ErrorKind::Config);
        assert!(used_up.error.message.contains("reinstall"), "{}", used_up.error.message);
        assert!(used_up.token_refused, "another refresh token may still work");
        let empty = parse_refresh_response(200, b"{}", NOW).unwrap_err();
        assert!(empty.error.message.contains("`oauth_url`"), "{}", empty.error.message);
        assert!(!empty.token_refused);
        let html = parse_refresh_response(404, b"<html>not found</html>", NOW).unwrap_err();
        assert_eq!(html.error.kind, ErrorKind::Config);
    }

    #[test]
    fn server_trouble_is_transient() {
        let unavailable = parse_refresh_response(503, b"", NOW).unwrap_err();
        assert_eq!((unavailable.error.kind, unavailable.token_refused), (ErrorKind::Transient, false));
        let failed = parse_refresh_response(500, br#"{"error":"INTERNAL_SERVER_ERROR"}"#, NOW).unwrap_err();
        assert_eq!(failed.error.kind, ErrorKind::Transient);
        let unreachable = transport_error(&client(), &http::HttpError::Transport("https://oauth.bitrix.info/oauth/token/?client_secret=Ze".into()));
        assert_eq!(unreachable.error.kind, ErrorKind::Transient);
        assert!(!unreachable.error.message.contains("Ze"), "the URL (with the secret) is never repeated");
        assert!(!unreachable.token_refused);
    }

    #[test]
    fn a_denied_oauth_host_says_how_to_allow_it() {
        let denied = transport_error(&client(), &http::HttpError::Denied("oauth.bitrix.info is not an allowed host".into()));
        assert_eq!(denied.error.kind, ErrorKind::Config);
        let message = &denied.error.message;
        assert!(message.contains("`oauth_url") && message.contains("`allowed_hosts`"), "{message}");
        assert!(!denied.token_refused);
        assert_eq!(tokens_key("m1"), "tokens:m1");
        assert!(TOKENS_TTL.as_secs() < u64::from(u32::MAX));
    }
}
