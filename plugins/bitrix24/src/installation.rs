//! The record kept for each portal that installed the application
//! (ONAPPINSTALL): its application token and OAuth tokens.

use crate::event::EventView;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use switchboard_sdk::RequestError;

/// How long an installation record is kept (about ten years: until the
/// portal reinstalls or uninstalls the application).
pub const RECORD_TTL: Duration = Duration::from_secs(3650 * 24 * 60 * 60);

/// The state key of a portal's installation record.
pub fn state_key(member_id: &str) -> String {
    format!("install:{member_id}")
}

/// What ONAPPINSTALL told us about one portal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Installation {
    /// Token Bitrix24 puts into every event of this portal.
    pub application_token: String,
    /// OAuth access token of the installing administrator (expires in 1 hour).
    pub access_token: String,
    /// OAuth refresh token.
    pub refresh_token: String,
    /// REST base URL, e.g. `https://portal.bitrix24.com/rest/`.
    pub client_endpoint: String,
    /// Portal domain.
    pub domain: String,
    /// Portal id.
    pub member_id: String,
    /// When `access_token` expires (Unix seconds, as Bitrix24 sends it).
    pub expires: String,
}

impl Installation {
    /// Read an ONAPPINSTALL event. `member_id` and `application_token` are
    /// required: without them later events cannot be verified.
    pub fn from_event(view: &EventView) -> Result<Self, RequestError> {
        let record = Self {
            application_token: view.auth("application_token"),
            access_token: view.auth("access_token"),
            refresh_token: view.auth("refresh_token"),
            client_endpoint: view.auth("client_endpoint"),
            domain: view.auth("domain"),
            member_id: view.auth("member_id"),
            expires: view.auth("expires"),
        };
        if record.member_id.is_empty() || record.application_token.is_empty() {
            return Err(RequestError::BadRequest("ONAPPINSTALL without auth[member_id] or auth[application_token]".into()));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::form::decode_nested;

    #[test]
    fn reads_an_install_event() {
        let tree = decode_nested(
            b"event=ONAPPINSTALL&auth%5Baccess_token%5D=at&auth%5Brefresh_token%5D=rt\
              &auth%5Bclient_endpoint%5D=https%3A%2F%2Fp.bitrix24.com%2Frest%2F&auth%5Bdomain%5D=p.bitrix24.com\
              &auth%5Bmember_id%5D=m1&auth%5Bexpires%5D=1700000000&auth%5Bapplication_token%5D=app",
        );
        let record = Installation::from_event(&EventView::new(&tree)).unwrap();
        assert_eq!(record.application_token, "app");
        assert_eq!(record.client_endpoint, "https://p.bitrix24.com/rest/");
        assert_eq!(record.member_id, "m1");
        assert_eq!(record.expires, "1700000000");
        assert_eq!(state_key(&record.member_id), "install:m1");
    }

    #[test]
    fn rejects_an_install_event_without_application_token() {
        let tree = decode_nested(b"event=ONAPPINSTALL&auth[member_id]=m1");
        assert!(matches!(Installation::from_event(&EventView::new(&tree)), Err(RequestError::BadRequest(_))));
    }

    #[test]
    fn ttl_fits_the_hosts_u32_seconds() {
        assert!(RECORD_TTL.as_secs() < u64::from(u32::MAX));
    }
}
