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

/// Decide whether an ONAPPINSTALL may be recorded. With a configured token
/// it must match; otherwise the first installation of a portal wins, so a
/// forged ONAPPINSTALL cannot replace a genuine portal's token. To accept a
/// reinstall that brings a new token, set `application_token` to it.
pub fn check_install_token(received: &str, configured: Option<&str>, recorded: Option<&str>) -> Result<(), RequestError> {
    match (configured, recorded) {
        (Some(expected), _) if !same_secret(received, expected) => Err(forbidden("the installation's token differs from the configured one")),
        (None, Some(expected)) if !same_secret(received, expected) => Err(forbidden(
            "this portal is already installed with another token; to accept the new installation, \
             set `application_token` to the new token in the connector settings",
        )),
        _ => Ok(()),
    }
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
    fn first_installation_wins_unless_configured() {
        assert!(check_install_token("new", None, None).is_ok());
        assert!(check_install_token("same", None, Some("same")).is_ok());
        forbidden_text(check_install_token("other", None, Some("first")));
        assert!(check_install_token("other", Some("other"), Some("first")).is_ok());
        forbidden_text(check_install_token("forged", Some("cfg"), None));
    }
}
