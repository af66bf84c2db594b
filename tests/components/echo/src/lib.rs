//! A well-behaved provider: answers `echo: {text}`. Used to prove the host
//! keeps serving normally next to hostile plugins. A text with ` | ` in it
//! gets one message per part (`a | b` → `echo: a`, `echo: b`), for tests of
//! multi-message replies.

use switchboard_sdk::prelude::*;

struct Echo;

impl Provider for Echo {
    fn call_provider(message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        Ok(message.text.split(" | ").map(|part| OutboundMessage::text(format!("echo: {part}"))).collect())
    }
}

switchboard_sdk::export_provider!(Echo);
