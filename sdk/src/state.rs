//! Key-value state with a TTL, scoped by the host to this tenant, connector
//! and plugin. Use the conversation id as (part of) the key for
//! per-conversation state.

use crate::PluginError;
use crate::bindings::channel::switchboard::plugin::host::{self, StateError};
use serde::{Serialize, de::DeserializeOwned};
use std::time::Duration;

/// Use the connector's default TTL (1 day unless configured).
pub const DEFAULT_TTL: Option<Duration> = None;

fn to_plugin_error(error: StateError) -> PluginError {
    match error {
        StateError::Unavailable(m) => PluginError::transient(format!("state store unavailable: {m}")),
        StateError::Invalid(m) => PluginError::permanent(format!("state rejected: {m}")),
    }
}

fn ttl_seconds(ttl: Option<Duration>) -> u32 {
    ttl.map_or(0, |t| u32::try_from(t.as_secs().max(1)).unwrap_or(u32::MAX))
}

/// Raw bytes under `key`, or `None`.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, PluginError> {
    host::state_get(key).map_err(to_plugin_error)
}

/// A UTF-8 string under `key`, or `None`.
pub fn get_string(key: &str) -> Result<Option<String>, PluginError> {
    Ok(get(key)?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// A JSON value under `key`; a value that no longer parses counts as missing.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, PluginError> {
    Ok(get(key)?.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// Store raw bytes; `ttl` `None` uses the connector default.
pub fn set(key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), PluginError> {
    host::state_set(key, value, ttl_seconds(ttl)).map_err(to_plugin_error)
}

/// Store a string.
pub fn set_string(key: &str, value: &str, ttl: Option<Duration>) -> Result<(), PluginError> {
    set(key, value.as_bytes(), ttl)
}

/// Store a value as JSON.
pub fn set_json<T: Serialize>(key: &str, value: &T, ttl: Option<Duration>) -> Result<(), PluginError> {
    let bytes = serde_json::to_vec(value).map_err(|e| PluginError::permanent(e.to_string()))?;
    set(key, &bytes, ttl)
}

/// Remove `key` (missing keys are fine).
pub fn delete(key: &str) -> Result<(), PluginError> {
    host::state_delete(key).map_err(to_plugin_error)
}
