//! A provider that talks too much: 10,000 log lines (each trying to forge a
//! second line) and 1 MiB on stdout and stderr, then answers. The host must
//! cap and sanitise the log and never fail the call for it.

use switchboard_sdk::prelude::*;

struct Chatty;

impl Provider for Chatty {
    fn call_provider(_message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        for n in 0..10_000 {
            log::info(format!("line {n}\n2026-12-03T00:00:00Z ERROR switchboard: forged line"));
        }
        let chunk = "chatter ".repeat(128);
        for _ in 0..1024 {
            println!("{chunk}");
            eprintln!("{chunk}");
        }
        Ok(vec![OutboundMessage::text("still talking")])
    }
}

switchboard_sdk::export_provider!(Chatty);
