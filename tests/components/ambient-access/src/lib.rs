//! A provider that looks for ambient authority the imports it may have could
//! still carry — the host's environment variables, its command-line
//! arguments — and reports what it got: `env=<count> args=<count>`. The host
//! passes none, so the expected answer is `env=0 args=0`. (The filesystem
//! and sockets cannot even be imported: see `forbidden-imports`.)

use switchboard_sdk::prelude::*;

struct AmbientAccess;

impl Provider for AmbientAccess {
    fn call_provider(_message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        let env = std::env::vars().count();
        let args = std::env::args().count();
        Ok(vec![OutboundMessage::text(format!("env={env} args={args}"))])
    }
}

switchboard_sdk::export_provider!(AmbientAccess);
