//! The one place the WIT contract is turned into Rust. Generated code stays
//! private to the crate; the rest of the host imports the names it needs.

mod generated {
    pub mod channel {
        wasmtime::component::bindgen!({
            path: "../wit/since_v0.1.0",
            world: "switchboard:plugin/channel-plugin",
            imports: { default: async | trappable },
            exports: { default: async },
            additional_derives: [serde::Serialize, serde::Deserialize],
            // The worlds import wasi:http; the host links wasmtime-wasi's own
            // implementation of it, so reuse its bindings.
            with: {
                "wasi:http": wasmtime_wasi_http::p2::bindings::http,
                "wasi:io": wasmtime_wasi::p2::bindings::io,
                "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            },
        });
    }

    pub mod handoff {
        wasmtime::component::bindgen!({
            path: "../wit/since_v0.1.0",
            world: "switchboard:plugin/handoff-plugin",
            imports: { default: async | trappable },
            exports: { default: async },
            with: {
                "wasi:http": wasmtime_wasi_http::p2::bindings::http,
                "wasi:io": wasmtime_wasi::p2::bindings::io,
                "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
                "switchboard:plugin/types": super::channel::switchboard::plugin::types,
                "switchboard:plugin/host": super::channel::switchboard::plugin::host,
            },
        });
    }

    pub mod provider {
        wasmtime::component::bindgen!({
            path: "../wit/since_v0.1.0",
            world: "switchboard:plugin/provider-plugin",
            imports: { default: async | trappable },
            exports: { default: async },
            additional_derives: [serde::Serialize, serde::Deserialize],
            with: {
                "wasi:http": wasmtime_wasi_http::p2::bindings::http,
                "wasi:io": wasmtime_wasi::p2::bindings::io,
                "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
                "switchboard:plugin/types": super::channel::switchboard::plugin::types,
                "switchboard:plugin/host": super::channel::switchboard::plugin::host,
            },
        });
    }
}

pub(crate) use generated::channel::ChannelPluginPre;
pub(crate) use generated::channel::switchboard::plugin::host;
pub(crate) use generated::channel::switchboard::plugin::types::{
    AddressedReply, Author, CallbackResult, Control, ConversationEvent, ConversationRef, ErrorKind, HttpRequest, HttpResponse, InboundMessage, OutboundMessage,
    PluginError, RequestError, Sender, TranscriptEntry, Translated,
};
pub(crate) use generated::handoff::HandoffPluginPre;
pub(crate) use generated::provider::ProviderPluginPre;
