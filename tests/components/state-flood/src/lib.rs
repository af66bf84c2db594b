//! A provider that tries to fill the shared state store: it writes 64 KiB
//! values under new keys, each asking to live for ten years, until the host
//! refuses, then reports how far it got. The host must stop it at the
//! scope's quota and cut the lifetime to its ceiling.

use std::time::Duration;
use switchboard_sdk::prelude::*;

const VALUE_BYTES: usize = 64 * 1024;
const TEN_YEARS: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

struct StateFlood;

impl Provider for StateFlood {
    fn call_provider(message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        let value = vec![b'x'; VALUE_BYTES];
        for n in 0..100_000u32 {
            let key = format!("{}:{n}", message.conversation.id);
            if let Err(error) = state::set(&key, &value, Some(TEN_YEARS)) {
                return Ok(vec![OutboundMessage::text(format!("stored {n}, then: {}", error.message))]);
            }
        }
        Ok(vec![OutboundMessage::text("stored everything")])
    }
}

switchboard_sdk::export_provider!(StateFlood);
