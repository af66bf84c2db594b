//! The `switchboard:plugin/host` interface: logging, settings, state.

use super::sandbox::PluginState;
use crate::bindings::host::{self, Level, StateError};
use crate::store::StoreError;
use std::time::Duration;

/// A state call that takes longer than this fails as `unavailable`.
const STATE_CALL_TIMEOUT: Duration = Duration::from_secs(5);

impl host::Host for PluginState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
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
        Ok(match context.scope.key(&key) {
            Ok(key) => bounded(context.state.set(&key, &value, ttl)).await,
            Err(error) => Err(error),
        }
        .map_err(into_wit))
    }

    async fn state_delete(&mut self, key: String) -> wasmtime::Result<Result<(), StateError>> {
        let context = &self.context;
        Ok(match context.scope.key(&key) {
            Ok(key) => bounded(context.state.delete(&key)).await,
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
    }
}
