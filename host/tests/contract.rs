//! The released contract is frozen: `wit/since_v0.1.0` never changes (a
//! later version gets its own folder, as Zed's extension API does), and its
//! worlds declare everything a plugin may import, so toolchains in any
//! language generate the HTTP bindings too.

use sha2::{Digest, Sha256};
use std::path::Path;

const RELEASED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/since_v0.1.0");

/// SHA-256 of `wit/since_v0.1.0/plugin.wit` as released.
const PLUGIN_WIT_0_1_0: &str = "d77d75d1411120d838dc5c40212a5387997b64029df893432589e4f1f14cea43";

#[test]
fn the_released_contract_is_unchanged() {
    let text = std::fs::read(Path::new(RELEASED).join("plugin.wit")).unwrap();
    let hash: String = Sha256::digest(&text).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hash, PLUGIN_WIT_0_1_0, "wit/since_v0.1.0 is released and frozen: put changes in a new version folder (wit/since_v0.2.0)");
}

#[test]
fn every_world_imports_outbound_http_and_vendors_its_dependencies() {
    let text = std::fs::read_to_string(Path::new(RELEASED).join("plugin.wit")).unwrap();
    for world in ["channel-plugin", "provider-plugin", "handoff-plugin"] {
        let body = text.split(&format!("world {world} {{")).nth(1).unwrap_or_else(|| panic!("no world {world}"));
        let body = &body[..body.find('}').unwrap()];
        assert!(body.contains("import wasi:http/outgoing-handler@0.2.12;"), "{world}: {body}");
    }
    for dep in ["http", "io", "clocks", "random", "cli", "filesystem", "sockets"] {
        assert!(Path::new(RELEASED).join("deps").join(format!("{dep}.wit")).exists(), "wit/since_v0.1.0/deps/{dep}.wit is vendored");
    }
}
