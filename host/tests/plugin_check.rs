//! `switchboard plugin check`: the real binary checking real components
//! offline, as a marketplace author would before publishing.

use std::process::{Command, Output};
use switchboard_tests::components;

fn check(file: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard")).args(["plugin", "check", file]).output().expect("running switchboard")
}

#[test]
fn a_good_component_is_described() {
    let output = check(components::ECHO);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("OK, a provider plugin for switchboard:plugin@0.1.0"), "{stdout}");
    let imports = stdout.lines().find(|line| line.starts_with("imports: ")).expect("an imports line");
    assert!(imports.contains("switchboard:plugin/types@0.1.0"), "{stdout}");
}

#[test]
fn a_component_importing_sockets_or_the_filesystem_is_refused_by_name() {
    let output = check(components::FORBIDDEN_IMPORTS);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("which plugins may not use") && stderr.contains("[plugin_forbidden_import]"), "{stderr}");
}

#[test]
fn a_file_that_is_not_webassembly_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plugin.wasm");
    std::fs::write(&file, "<html>not a plugin</html>").unwrap();
    let output = check(file.to_str().unwrap());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not WebAssembly") && stderr.contains("[plugin_not_wasm]"), "{stderr}");
}
