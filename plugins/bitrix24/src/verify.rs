//! Event authentication: Bitrix24 puts the portal's `application_token`
//! into every event; we compare it with the configured or recorded one.
//! Messages never reveal the expected token.

use switchboard_sdk::RequestError;

/// Check an event's `auth[application_token]`. The expected token is the
/// configured `application_token` setting if set, else the one recorded at
/// ONAPPINSTALL for the event's portal.
pub fn check_event_token(received: Option<&str>, configured: Option<&str>, recorded: Option<&str>) -> Result<(), RequestError> {
    let Some(expected) = configured.or(recorded) else {
        return Err(forbidden(
            "no application_token is configured and no installation is recorded for this portal \
             (install the application so ONAPPINSTALL reaches this connector, or set `application_token`)",
        ));
    };
    match received {
        None => Err(forbidden("the event carries no auth[application_token]")),
        Some(token) if same_secret(token, expected) => Ok(()),
        Some(_) => Err(forbidden(if configured.is_some() {
            "the event's token differs from the configured one"
        } else {
            "the event's token differs from the one recorded at installation"
        })),
    }
}

/// How an ONAPPINSTALL proves it comes from the portal it names. Without a
/// proof it is refused: a forged install must neither claim a portal nor
/// lock the genuine one out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallCheck {
    /// `application_token` is configured: the install must carry it.
    ConfiguredToken,
    /// `install_secret` is configured: the handler URL must carry it
    /// (`?install_secret=…`), which only the portal's administrator knows.
    InstallSecret,
    /// `client_id` and `client_secret` are configured: the install's refresh
    /// token is exchanged at Bitrix24's OAuth server, whose answer must name
    /// the same portal (`member_id`).
    OAuth,
}

impl InstallCheck {
    /// The strongest check the settings allow, or why none applies.
    pub fn choose(configured_token: bool, install_secret: bool, oauth_client: bool) -> Result<Self, RequestError> {
        match (configured_token, install_secret, oauth_client) {
            (true, _, _) => Ok(Self::ConfiguredToken),
            (_, true, _) => Ok(Self::InstallSecret),
            (_, _, true) => Ok(Self::OAuth),
            _ => Err(RequestError::Forbidden(
                "ONAPPINSTALL cannot be verified: set `application_token`, `install_secret` (and add \
                 `?install_secret=…` to the application's handler URL) or `client_id` + `client_secret`"
                    .into(),
            )),
        }
    }
}

/// An install's `application_token` against the configured one.
pub fn check_install_token(received: &str, configured: &str) -> Result<(), RequestError> {
    if same_secret(received, configured) { Ok(()) } else { Err(forbidden("the installation's token differs from the configured one")) }
}

/// The `install_secret` query parameter of the handler URL against the
/// configured secret.
pub fn check_install_secret(path_with_query: &str, configured: &str) -> Result<(), RequestError> {
    let query = path_with_query.split_once('?').map_or("", |(_, query)| query);
    let tree = switchboard_sdk::form::decode_nested(query.as_bytes());
    match switchboard_sdk::form::get_str(&tree, &["install_secret"]) {
        Some(secret) if same_secret(secret, configured) => Ok(()),
        Some(_) => Err(RequestError::Forbidden("ONAPPINSTALL carries a wrong install_secret".into())),
        None => Err(RequestError::Forbidden("ONAPPINSTALL without ?install_secret= in the handler URL".into())),
    }
}

/// The OAuth server's answer must be about the portal the install names.
pub fn check_oauth_member(event_member_id: &str, oauth_member_id: &str) -> Result<(), RequestError> {
    if !oauth_member_id.is_empty() && oauth_member_id == event_member_id {
        return Ok(());
    }
    Err(RequestError::Forbidden(format!(
        "ONAPPINSTALL names portal {event_member_id}, but Bitrix24's OAuth server issued its refresh token for {}",
        if oauth_member_id.is_empty() { "no portal" } else { oauth_member_id }
    )))
}

fn forbidden(detail: &str) -> RequestError {
    RequestError::Forbidden(format!("application_token does not match: {detail}"))
}

/// Compare two secrets in time that depends only on their lengths.
fn same_secret(left: &str, right: &str) -> bool {
    let (left, right) = (left.as_bytes(), right.as_bytes());
    left.len() == right.len() && left.iter().zip(right).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden_text(result: Result<(), RequestError>) -> String {
        match result {
            Err(RequestError::Forbidden(message)) => message,
            other => panic!("expected Forbidden, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_recorded_token() {
        assert!(check_event_token(Some("tok"), None, Some("tok")).is_ok());
    }

    #[test]
    fn configured_token_wins_over_the_recorded_one() {
        assert!(check_event_token(Some("cfg"), Some("cfg"), Some("rec")).is_ok());
        let message = forbidden_text(check_event_token(Some("rec"), Some("cfg"), Some("rec")));
        assert!(message.starts_with("application_token does not match"));
        assert!(!message.contains("cfg"), "must not reveal the expected token: {message}");
    }

    #[test]
    fn refuses_when_nothing_is_known() {
        let message = forbidden_text(check_event_token(Some("x"), None, None));
        assert!(message.contains("no installation is recorded"));
    }

    #[test]
    fn refuses_a_missing_or_wrong_token_without_revealing_it() {
        forbidden_text(check_event_token(None, None, Some("secret-token")));
        let message = forbidden_text(check_event_token(Some("guess"), None, Some("secret-token")));
        assert!(!message.contains("secret-token"));
    }

    #[test]
    fn an_install_needs_a_proof() {
        assert_eq!(InstallCheck::choose(true, true, true).unwrap(), InstallCheck::ConfiguredToken);
        assert_eq!(InstallCheck::choose(false, true, true).unwrap(), InstallCheck::InstallSecret);
        assert_eq!(InstallCheck::choose(false, false, true).unwrap(), InstallCheck::OAuth);
        let refused = InstallCheck::choose(false, false, false).unwrap_err();
        assert!(matches!(refused, RequestError::Forbidden(ref m) if m.contains("install_secret")), "{refused:?}");
    }

    #[test]
    fn install_tokens_and_secrets_are_compared_exactly() {
        assert!(check_install_token("cfg", "cfg").is_ok());
        forbidden_text(check_install_token("forged", "cfg"));
        assert!(check_install_secret("/hooks/support?install_secret=s3cr%2Bt", "s3cr+t").is_ok());
        forbidden_text(check_install_secret("/hooks/support?install_secret=guess", "s3cr+t"));
        forbidden_text(check_install_secret("/hooks/support", "s3cr+t"));
    }

    #[test]
    fn the_oauth_answer_must_name_the_installing_portal() {
        assert!(check_oauth_member("m1", "m1").is_ok());
        forbidden_text(check_oauth_member("victim", "attacker"));
        forbidden_text(check_oauth_member("m1", ""));
    }
}
