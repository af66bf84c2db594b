//! Convenience constructors for the contract's types.

use crate::{ErrorKind, OutboundMessage, PluginError, Translated};

impl OutboundMessage {
    /// A plain Markdown text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into(), buttons: Vec::new(), files: Vec::new(), control: None }
    }
}

impl Translated {
    /// Accept the webhook without producing messages (service events).
    pub fn ignored() -> Self {
        Self { event_id: None, messages: Vec::new(), direct_replies: Vec::new(), response: None }
    }
}

impl PluginError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), user_message: None, retry_after_ms: None }
    }

    /// A failure worth retrying (network error, timeout, 429, 5xx).
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }

    /// A failure retrying will not fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Permanent, message)
    }

    /// A configuration problem an administrator must fix.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// Ask the host to retry no earlier than `delay` from now (a service's
    /// `Retry-After` or rate-limit window).
    pub fn with_retry_after(mut self, delay: std::time::Duration) -> Self {
        self.retry_after_ms = Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Replace the connector's fallback text with a specific one for the user.
    pub fn with_user_message(mut self, text: impl Into<String>) -> Self {
        self.user_message = Some(text.into());
        self
    }
}
