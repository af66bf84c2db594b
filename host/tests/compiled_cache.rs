//! Plugins are compiled once: a restart loads them from the compiled cache
//! of the embedded store, and a damaged artifact is compiled again.

use std::path::Path;
use std::process::Command;

/// `switchboard check-config` on an embedded store in `dir`; its log.
fn start_once(dir: &Path) -> String {
    let config = dir.join("switchboard.toml");
    std::fs::write(&config, format!("store = \"embedded:{}\"\n", dir.join("data").display())).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["check-config", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .output()
        .expect("running switchboard");
    // The log goes to stdout (tracing's default), errors to stderr.
    let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{log}");
    log
}

#[test]
fn a_restart_loads_the_plugins_precompiled() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = switchboard::app::SHIPPED_PLUGINS.len();
    let first = start_once(dir.path());
    assert!(first.contains(&format!("compiled={shipped} precompiled=0")), "{first}");
    let artifacts: Vec<_> = std::fs::read_dir(dir.path().join("data/compiled")).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(artifacts.len(), shipped, "{artifacts:?}");

    let second = start_once(dir.path());
    assert!(second.contains(&format!("compiled=0 precompiled={shipped}")), "{second}");

    std::fs::write(&artifacts[0], b"not a compiled component").unwrap();
    let third = start_once(dir.path());
    assert!(third.contains(&format!("compiled=1 precompiled={}", shipped - 1)), "{third}");
    assert!(third.contains("ignoring an unreadable compiled plugin"), "{third}");
}
