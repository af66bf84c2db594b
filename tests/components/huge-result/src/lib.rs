//! A provider that pushes far more data at the host than a call may move:
//! eight replies of 1 MiB each (`mode = result`, the default), one 4 MiB log
//! line (`mode = log`) or a 4 MiB state value (`mode = state`). Each fits in
//! the guest's own memory; the host must refuse to copy it (its per-call
//! result budget) rather than grow.

use switchboard_sdk::prelude::*;

const MIB: usize = 1024 * 1024;

struct HugeResult;

impl Provider for HugeResult {
    fn call_provider(_message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        let blob = "x".repeat(MIB);
        match config::get_or("mode", "result").as_str() {
            "log" => log::info(blob.repeat(4)),
            "state" => state::set_string("blob", &blob.repeat(4), None)?,
            _ => return Ok(vec![OutboundMessage::text(blob); 8]),
        }
        Ok(vec![OutboundMessage::text("the host copied it all?!")])
    }
}

switchboard_sdk::export_provider!(HugeResult);
