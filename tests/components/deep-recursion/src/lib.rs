//! A provider whose `call-provider` recurses without end. The frames are
//! small, so it is the wasm stack (not the guest's shadow stack in linear
//! memory) that overflows: the host must trap it at `max_wasm_stack` and keep
//! serving.

use switchboard_sdk::prelude::*;

struct DeepRecursion;

#[inline(never)]
fn descend(depth: u64, a: u64, b: u64, c: u64) -> u64 {
    if depth == u64::MAX {
        return a ^ b ^ c;
    }
    // Opaque to the optimiser: it cannot turn the recursion into a loop.
    std::hint::black_box(descend(depth + 1, b.rotate_left(3), c ^ depth, a.wrapping_add(1))).wrapping_sub(depth)
}

impl Provider for DeepRecursion {
    fn call_provider(message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        let depth = descend(message.text.len() as u64, 1, 2, 3);
        Ok(vec![OutboundMessage::text(format!("returned from the recursion ({depth})?!"))])
    }
}

switchboard_sdk::export_provider!(DeepRecursion);
