//! Compiles the hostile test components under `components/` to wasm32-wasip2
//! and generates `components.rs` with one path constant per component
//! (`SPIN_LOOP`, `MEMORY_BOMB`, `FORBIDDEN_HTTP`, `ECHO`).

use std::path::Path;

fn main() {
    let built = switchboard_wasm_builder::build_guests(Path::new("components"), "switchboard-test-");
    switchboard_wasm_builder::write_paths(&built, "components.rs");
}
