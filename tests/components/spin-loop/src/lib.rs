//! A provider whose `call-provider` never returns: it burns CPU forever.
//! The host must stop it with its per-call deadline (epoch interruption).

use switchboard_sdk::prelude::*;

struct SpinLoop;

impl Provider for SpinLoop {
    fn call_provider(_message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        let mut counter: u64 = 0;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
            std::hint::black_box(());
            if std::hint::black_box(counter) == u64::MAX {
                // Unreachable in practice; keeps the loop observable to the optimizer.
                return Ok(vec![OutboundMessage::text("spin-loop finished?!")]);
            }
        }
    }
}

switchboard_sdk::export_provider!(SpinLoop);
