//! A provider that needs the filesystem and raw TCP (`wasi:filesystem`,
//! `wasi:sockets`), which plugins may not import: the host must refuse to
//! load it, naming the import, before any call could try them.

use switchboard_sdk::prelude::*;

struct ForbiddenImports;

impl Provider for ForbiddenImports {
    fn call_provider(_message: InboundMessage) -> Result<Vec<OutboundMessage>, PluginError> {
        let fs = std::fs::read_dir("/").is_ok();
        let tcp = std::net::TcpStream::connect("127.0.0.1:6379").is_ok();
        Ok(vec![OutboundMessage::text(format!("fs={fs} tcp={tcp}"))])
    }
}

switchboard_sdk::export_provider!(ForbiddenImports);
