//! A well-behaved provider: answers `echo: {text}`. Used to prove the host
//! keeps serving normally next to hostile plugins.

use switchboard_sdk::prelude::*;

struct Echo;

impl Provider for Echo {
    fn call_provider(message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        Ok(vec![OutboundMessage::text(format!("echo: {}", message.text))])
    }
}

switchboard_sdk::export_provider!(Echo);
