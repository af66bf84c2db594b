//! A provider that allocates (and touches) 1 MiB chunks forever without
//! freeing them. The host must stop it with its per-call memory limit.

use switchboard_sdk::prelude::*;

struct MemoryBomb;

const CHUNK: usize = 1024 * 1024;

impl Provider for MemoryBomb {
    fn call_provider(_message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut chunk = vec![0u8; CHUNK];
            // Touch every page so the memory is really committed.
            for i in (0..CHUNK).step_by(4096) {
                chunk[i] = (hoard.len() as u8).wrapping_add(1);
            }
            hoard.push(std::hint::black_box(chunk));
            if std::hint::black_box(hoard.len()) == usize::MAX {
                return Ok(vec![OutboundMessage::text("memory-bomb finished?!")]);
            }
        }
    }
}

switchboard_sdk::export_provider!(MemoryBomb);
