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

/// All configured keys, sorted.
pub fn keys() -> Vec<String> {
    host::config_keys()
}
