//! Structured logging into the host's log, tagged with tenant, connector and
//! plugin. Never log secrets.

use crate::bindings::channel::switchboard::plugin::host::{self, Level};

/// Debug detail.
pub fn debug(message: impl AsRef<str>) {
    host::log(Level::Debug, message.as_ref());
}

/// Normal operation.
pub fn info(message: impl AsRef<str>) {
    host::log(Level::Info, message.as_ref());
}

/// Something an operator should look at.
pub fn warn(message: impl AsRef<str>) {
    host::log(Level::Warn, message.as_ref());
}

/// A failure.
pub fn error(message: impl AsRef<str>) {
    host::log(Level::Error, message.as_ref());
}
