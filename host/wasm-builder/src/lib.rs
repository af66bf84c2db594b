//! Used from `build.rs` files: compiles guest crates of this workspace to
//! `wasm32-wasip2` components, installing the target with rustup when it is
//! missing, and writes a Rust file listing the results.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// A compiled guest: its plugin name and the path of its `.wasm` file.
pub struct Built {
    pub name: String,
    pub path: PathBuf,
}

/// Compile every crate directory under `dir` (one level deep) whose package
/// name starts with `prefix`; the plugin name is the package name without the
/// prefix. Panics with an actionable message on failure (build scripts report
/// panics as build errors).
pub fn build_guests(dir: &Path, prefix: &str) -> Vec<Built> {
    println!("cargo:rerun-if-changed={}", dir.display());
    let workspace = workspace_root();
    // The workspace manifest holds the `plugin` profile and the lock file the versions.
    for path in ["sdk", "wit", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    let guests = guest_packages(dir, prefix);
    if guests.is_empty() {
        return Vec::new();
    }
    ensure_target();
    let target_dir = workspace.join("target").join("guests");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.current_dir(&workspace).args(["build", "--profile", "plugin", "--target", TARGET, "--target-dir"]).arg(&target_dir);
    for (package, _) in &guests {
        cargo.args(["-p", package]);
    }
    // Flags meant for the host build (coverage, sanitizers) must not leak into guests.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_PROFILE_RELEASE_DEBUG"] {
        cargo.env_remove(var);
    }
    let status = cargo.status().expect("failed to run cargo for the wasm plugins");
    assert!(status.success(), "building the wasm plugins under {} failed (see the errors above)", dir.display());
    guests
        .into_iter()
        .map(|(package, name)| Built { name, path: target_dir.join(TARGET).join("plugin").join(format!("{}.wasm", package.replace('-', "_"))) })
        .collect()
}

/// Write `const {const_name}: &[(&str, &[u8])]` embedding every built guest.
pub fn write_embedded(built: &[Built], const_name: &str, file: &str) {
    let entries: String = built.iter().map(|b| format!("    ({:?}, include_bytes!({:?})),\n", b.name, b.path.display().to_string())).collect();
    write_out(file, &format!("pub const {const_name}: &[(&str, &[u8])] = &[\n{entries}];\n"));
}

/// Write `pub const {NAME}: &str = "path"` for every built guest.
pub fn write_paths(built: &[Built], file: &str) {
    let consts: String =
        built.iter().map(|b| format!("pub const {}: &str = {:?};\n", b.name.to_uppercase().replace('-', "_"), b.path.display().to_string())).collect();
    write_out(file, &consts);
}

fn write_out(file: &str, contents: &str) {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set for build scripts"));
    std::fs::write(out.join(file), contents).expect("writing the generated plugin list");
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]")))
        .expect("the crate lives inside the Switchboard workspace")
        .to_path_buf()
}

fn guest_packages(dir: &Path, prefix: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let manifest = entry.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        let Some(package) = text.lines().find_map(|line| {
            let value = line.trim().strip_prefix("name")?.trim().strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_string())
        }) else {
            continue;
        };
        if let Some(name) = package.strip_prefix(prefix) {
            found.push((package.clone(), name.to_string()));
        }
    }
    found.sort();
    found
}

fn ensure_target() {
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN").ok();
    let mut list = Command::new("rustup");
    list.args(["target", "list", "--installed"]);
    if let Some(t) = &toolchain {
        list.args(["--toolchain", t]);
    }
    match list.output() {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == TARGET) => return,
        Ok(_) => {}
        // No rustup: trust the toolchain to have the target, cargo will say otherwise.
        Err(_) => return,
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (needed to build the plugins)");
    let mut add = Command::new("rustup");
    add.args(["target", "add", TARGET]);
    if let Some(t) = &toolchain {
        add.args(["--toolchain", t]);
    }
    let ok = add.status().is_ok_and(|s| s.success());
    assert!(
        ok,
        "the {TARGET} Rust target is missing and `rustup target add {TARGET}` failed; \
         install it by hand (rustup target add {TARGET}) and build again"
    );
}
