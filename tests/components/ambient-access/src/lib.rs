//! A provider that tries every ambient authority a WebAssembly guest could
//! hope for — environment variables, the filesystem, raw TCP — and reports
//! what it got: `env=<count> fs=<result> tcp=<result>`. The host grants none
//! of them, so the expected answer is `env=0 fs=denied tcp=denied`.

use switchboard_sdk::prelude::*;

struct AmbientAccess;

fn outcome<T, E>(result: Result<T, E>) -> &'static str {
    if result.is_ok() { "granted" } else { "denied" }
}

impl Provider for AmbientAccess {
    fn call_provider(_message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        let env = std::env::vars().count();
        let fs = outcome(std::fs::read_dir("/").or_else(|_| std::fs::read_dir(".")));
        let port = config::require("target_port")?;
        let tcp = outcome(std::net::TcpStream::connect(format!("127.0.0.1:{port}")));
        Ok(vec![OutboundMessage::text(format!("env={env} fs={fs} tcp={tcp}"))])
    }
}

switchboard_sdk::export_provider!(AmbientAccess);
