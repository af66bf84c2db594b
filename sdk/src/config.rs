//! The plugin's settings from the connector configuration (secrets included).

use crate::PluginError;
use crate::bindings::channel::switchboard::plugin::host;

/// A setting, or `None` when it is not configured or empty.
pub fn get(key: &str) -> Option<String> {
    host::config_get(key).filter(|value| !value.is_empty())
}

/// A setting that must be present; the error names the missing key.
pub fn require(key: &str) -> Result<String, PluginError> {
    get(key).ok_or_else(|| PluginError::config(format!("setting `{key}` is not configured")))
}

/// A setting, or `default` when absent.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_string())
}

/// A boolean setting (`true`/`yes`/`1`/`on`, case-insensitive).
pub fn flag(key: &str) -> bool {
    get(key).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "1" | "on"))
}

/// A duration setting in whole seconds (a positive integer), or
/// `default_seconds` when absent.
pub fn seconds(key: &str, default_seconds: u64) -> Result<std::time::Duration, PluginError> {
    parse_seconds(key, get(key).as_deref(), default_seconds)
}

/// [`seconds`] on a given value (testable without the host).
pub fn parse_seconds(key: &str, value: Option<&str>, default_seconds: u64) -> Result<std::time::Duration, PluginError> {
    match value.map(str::trim) {
        None | Some("") => Ok(std::time::Duration::from_secs(default_seconds)),
        Some(v) => match v.parse::<u64>() {
            Ok(secs) if secs > 0 => Ok(std::time::Duration::from_secs(secs)),
            _ => Err(PluginError::config(format!("setting `{key}` = `{v}` is not a positive integer"))),
        },
    }
}

/// All configured keys, sorted.
pub fn keys() -> Vec<String> {
    host::config_keys()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::time::Duration;

    #[test]
    fn seconds_setting() {
        assert_eq!(parse_seconds("timeout_seconds", None, 60).unwrap(), Duration::from_secs(60));
        assert_eq!(parse_seconds("timeout_seconds", Some("15"), 60).unwrap(), Duration::from_secs(15));
        assert_eq!(parse_seconds("timeout_seconds", Some("0"), 60).unwrap_err().kind, ErrorKind::Config);
        assert_eq!(parse_seconds("timeout_seconds", Some("soon"), 60).unwrap_err().kind, ErrorKind::Config);
    }
}
