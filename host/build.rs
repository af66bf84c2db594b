//! Compiles the shipped plugins (`plugins/*`) to wasm components and embeds them.

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let plugins = std::path::Path::new(&manifest_dir).join("../plugins");
    let built = switchboard_wasm_builder::build_guests(&plugins, "switchboard-plugin-");
    switchboard_wasm_builder::write_embedded(&built, "SHIPPED", "shipped_plugins.rs");
}
