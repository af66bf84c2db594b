//! Generated bindings. Private: the SDK re-exports what authors need.

pub mod channel {
    wit_bindgen::generate!({
        path: "../wit/since_v0.1.0",
        world: "switchboard:plugin/channel-plugin",
        pub_export_macro: true,
        export_macro_name: "export_channel_world",
        default_bindings_module: "switchboard_sdk::__private::bindings::channel",
        with: {
            // The world imports wasi:http; the `wasip2` crate already has
            // those bindings (the SDK's `http` module uses them).
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
            "wasi:http/types@0.2.12": wasip2::http::types,
            "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        },
        generate_all,
    });
}

pub mod provider {
    wit_bindgen::generate!({
        path: "../wit/since_v0.1.0",
        world: "switchboard:plugin/provider-plugin",
        pub_export_macro: true,
        export_macro_name: "export_provider_world",
        default_bindings_module: "switchboard_sdk::__private::bindings::provider",
        with: {
            // The world imports wasi:http; the `wasip2` crate already has
            // those bindings (the SDK's `http` module uses them).
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
            "wasi:http/types@0.2.12": wasip2::http::types,
            "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
            "switchboard:plugin/types@0.1.0": super::channel::switchboard::plugin::types,
            "switchboard:plugin/host@0.1.0": super::channel::switchboard::plugin::host,
        },
    });
}

pub mod handoff {
    wit_bindgen::generate!({
        path: "../wit/since_v0.1.0",
        world: "switchboard:plugin/handoff-plugin",
        pub_export_macro: true,
        export_macro_name: "export_handoff_world",
        default_bindings_module: "switchboard_sdk::__private::bindings::handoff",
        with: {
            // The world imports wasi:http; the `wasip2` crate already has
            // those bindings (the SDK's `http` module uses them).
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
            "wasi:http/types@0.2.12": wasip2::http::types,
            "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
            "switchboard:plugin/types@0.1.0": super::channel::switchboard::plugin::types,
            "switchboard:plugin/host@0.1.0": super::channel::switchboard::plugin::host,
        },
    });
}
