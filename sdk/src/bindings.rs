//! Generated bindings. Private: the SDK re-exports what authors need.

pub mod channel {
    wit_bindgen::generate!({
        path: "../wit",
        world: "switchboard:plugin/channel-plugin",
        pub_export_macro: true,
        export_macro_name: "export_channel_world",
        default_bindings_module: "switchboard_sdk::__private::bindings::channel",
        generate_all,
    });
}

pub mod provider {
    wit_bindgen::generate!({
        path: "../wit",
        world: "switchboard:plugin/provider-plugin",
        pub_export_macro: true,
        export_macro_name: "export_provider_world",
        default_bindings_module: "switchboard_sdk::__private::bindings::provider",
        with: {
            "switchboard:plugin/types@0.1.0": super::channel::switchboard::plugin::types,
            "switchboard:plugin/host@0.1.0": super::channel::switchboard::plugin::host,
        },
    });
}

pub mod handoff {
    wit_bindgen::generate!({
        path: "../wit",
        world: "switchboard:plugin/handoff-plugin",
        pub_export_macro: true,
        export_macro_name: "export_handoff_world",
        default_bindings_module: "switchboard_sdk::__private::bindings::handoff",
        with: {
            "switchboard:plugin/types@0.1.0": super::channel::switchboard::plugin::types,
            "switchboard:plugin/host@0.1.0": super::channel::switchboard::plugin::host,
        },
    });
}
