//! Compiles the shipped plugins (`plugins/*`) to wasm components and embeds them.

fn main() {
    let plugins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let built = switchboard_wasm_builder::build_guests(&plugins, "switchboard-plugin-");
    switchboard_wasm_builder::write_embedded(&built, "SHIPPED", "shipped_plugins.rs");
}
