//! The `switchboard:plugin/host` interface: logging, settings, state.

use super::sandbox::PluginState;
use crate::bindings::host::{self, Level, StateError};
use crate::store::StoreError;
use std::time::Duration;

/// A state call that takes longer than this fails as `unavailable`.
const STATE_CALL_TIMEOUT: Duration = Duration::from_secs(5);

impl host::Host for PluginState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES_PER_CALL {
            return Ok(());
        }
        let message = log_line(&message);
        let scope = &self.context.scope;
        let (tenant, connector, plugin) = (&scope.tenant, &scope.connector, &scope.plugin);
        match level {
            Level::Trace => tracing::trace!(%tenant, %connector, %plugin, "{message}"),
            Level::Debug => tracing::debug!(%tenant, %connector, %plugin, "{message}"),
            Level::Info => tracing::info!(%tenant, %connector, %plugin, "{message}"),
            Level::Warn => tracing::warn!(%tenant, %connector, %plugin, "{message}"),
            Level::Error => tracing::error!(%tenant, %connector, %plugin, "{message}"),
        }
        Ok(())
    }

    async fn config_get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.context.settings.get(&key).cloned())
    }

    async fn config_keys(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self.context.settings.keys().cloned().collect())
    }

    async fn state_get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, StateError>> {
        let context = &self.context;
        Ok(match context.scope.key(&key) {
            Ok(key) => bounded(context.state.get(&key)).await,
            Err(error) => Err(error),
        }
        .map_err(into_wit))
    }

    async fn state_set(&mut self, key: String, value: Vec<u8>, ttl_seconds: u32) -> wasmtime::Result<Result<(), StateError>> {
        let context = &self.context;
        let ttl = if ttl_seconds == 0 { context.default_ttl } else { Duration::from_secs(u64::from(ttl_seconds)) };
        let ttl = ttl.min(context.state_quota.max_ttl);
        Ok(match context.scope.key(&key) {
            Ok(key) => bounded(context.state.set_within(&context.scope.prefix(), &key, &value, ttl, context.state_quota.quota)).await,
            Err(error) => Err(error),
        }
        .map_err(into_wit))
    }

    async fn state_delete(&mut self, key: String) -> wasmtime::Result<Result<(), StateError>> {
        let context = &self.context;
        Ok(match context.scope.key(&key) {
            Ok(key) => bounded(context.state.delete_within(&context.scope.prefix(), &key)).await,
            Err(error) => Err(error),
        }
        .map_err(into_wit))
    }
}

/// Epoch deadlines do not interrupt a guest blocked in a host call, so every
/// state call carries its own timeout.
async fn bounded<T>(call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(STATE_CALL_TIMEOUT, call).await.unwrap_or_else(|_| Err(StoreError::Unavailable("state store timed out".into())))
}

fn into_wit(error: StoreError) -> StateError {
    match error {
        StoreError::Unavailable(message) => {
            tracing::warn!(%message, "state store call failed");
            StateError::Unavailable("state store unavailable".into())
        }
        StoreError::Invalid(message) => StateError::Invalid(message),
        quota @ StoreError::QuotaExceeded(_) => StateError::Invalid(quota.to_string()),
    }
}

/// Lines one call may log; later ones are dropped (and counted once).
pub const MAX_LOG_LINES_PER_CALL: usize = 100;

/// Bytes of one log line; the rest is cut.
pub const MAX_LOG_LINE_BYTES: usize = 4096;

/// A plugin's message as one safe log line: control characters escaped (no
/// forged lines or terminal escapes), at most [`MAX_LOG_LINE_BYTES`].
pub fn log_line(message: &str) -> String {
    let mut line = String::with_capacity(message.len().min(MAX_LOG_LINE_BYTES) + 32);
    for (at, c) in message.char_indices() {
        if line.len() >= MAX_LOG_LINE_BYTES {
            line.push_str(&format!("… ({} more bytes cut)", message.len() - at));
            break;
        }
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}

#[cfg(test)]
mod log_tests {
    use super::*;

    #[test]
    fn control_characters_cannot_forge_lines() {
        assert_eq!(log_line("ok\n2026-12-03 ERROR admin logged in\r\u{1b}[31m"), "ok\\n2026-12-03 ERROR admin logged in\\r\\u{1b}[31m");
        assert_eq!(log_line("naïve – fine"), "naïve – fine");
    }

    #[test]
    fn long_lines_are_cut() {
        let line = log_line(&"é".repeat(10_000));
        assert!(line.len() < MAX_LOG_LINE_BYTES + 64, "{}", line.len());
        assert!(line.ends_with("more bytes cut)"), "{line}");
    }
}
