//! Checking a plugin component before it is used: every refusal names the
//! exact problem, with a machine-readable code for the admin API.

use super::manifest::Manifest;
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};

/// The contract version plugins are built against.
pub const CONTRACT: &str = "0.1.0";

/// The exports of each kind of plugin: interface and functions.
const KINDS: [(&str, &str, &[&str]); 3] = [
    ("channel", "switchboard:plugin/channel", &["translate-in", "translate-out", "run-action"]),
    ("provider", "switchboard:plugin/provider", &["call-provider", "handle-callback", "on-event"]),
    ("handoff", "switchboard:plugin/handoff", &["start-handoff", "relay-message", "handle-callback", "end-handoff"]),
];

/// Interfaces the host provides but plugins may not import: they would only
/// ever be refused at run time, so a component that needs them is refused now.
const FORBIDDEN_IMPORTS: [(&str, &str); 2] = [
    ("wasi:filesystem/", "plugins have no filesystem; keep data in `state`"),
    ("wasi:sockets/", "plugins reach the network only through wasi:http/outgoing-handler, to their allowed hosts"),
];

/// Why a component cannot be a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPlugin {
    #[error("the file is {size} bytes; plugins may be at most {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("the file is not WebAssembly (it does not start with `\\0asm`)")]
    NotWasm,
    #[error("the file is a core WebAssembly module, not a component: build it with `--target wasm32-wasip2` (or wrap it with `wasm-tools component new`)")]
    CoreModule,
    #[error("the component does not compile: {0}")]
    Compile(String),
    #[error("imports {import}, which plugins may not use: {why}")]
    ForbiddenImport { import: String, why: &'static str },
    #[error(
        "imports {0}, which the host does not provide (plugins may import switchboard:plugin/host@{CONTRACT}, wasi:http/outgoing-handler@0.2, wasi:io, wasi:clocks, wasi:random and wasi:cli)"
    )]
    UnknownImport(String),
    #[error("exports none of switchboard:plugin/channel, provider or handoff@{CONTRACT} (it exports: {0})")]
    NoPluginExport(String),
    #[error("missing export {0}")]
    MissingExport(String),
    #[error("its manifest is invalid: {0}")]
    Manifest(String),
}

impl InvalidPlugin {
    /// The machine-readable code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            InvalidPlugin::TooLarge { .. } => "plugin_too_large",
            InvalidPlugin::NotWasm => "plugin_not_wasm",
            InvalidPlugin::CoreModule => "plugin_not_a_component",
            InvalidPlugin::Compile(_) => "plugin_does_not_compile",
            InvalidPlugin::ForbiddenImport { .. } => "plugin_forbidden_import",
            InvalidPlugin::UnknownImport(_) => "plugin_unknown_import",
            InvalidPlugin::NoPluginExport(_) | InvalidPlugin::MissingExport(_) => "plugin_missing_export",
            InvalidPlugin::Manifest(_) => "plugin_bad_manifest",
        }
    }
}

/// A component that passed every check.
pub struct Checked {
    pub component: Component,
    /// `"channel"`, `"provider"` or `"handoff"`.
    pub kind: &'static str,
    pub manifest: Manifest,
    /// What it imports, for reports.
    pub imports: Vec<String>,
}

/// Check `wasm` as a plugin: size, format, compilation, imports, exports
/// and manifest, in that order. `compile` turns the bytes into a component
/// (a cache may answer).
pub fn check(
    engine: &Engine,
    linker: &Linker<impl Send + 'static>,
    wasm: &[u8],
    max_bytes: usize,
    compile: impl FnOnce(&[u8]) -> anyhow::Result<Component>,
) -> Result<Checked, InvalidPlugin> {
    if wasm.len() > max_bytes {
        return Err(InvalidPlugin::TooLarge { size: wasm.len(), limit: max_bytes });
    }
    if !wasm.starts_with(b"\0asm") {
        return Err(InvalidPlugin::NotWasm);
    }
    if wasmparser::Parser::is_core_wasm(wasm) {
        return Err(InvalidPlugin::CoreModule);
    }
    let component = compile(wasm).map_err(|error| InvalidPlugin::Compile(format!("{error:#}")))?;
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(name, _)| name.to_string()).collect();
    check_imports(&imports)?;
    linker.instantiate_pre(&component).map_err(|error| InvalidPlugin::UnknownImport(unknown_import(&error, &imports)))?;
    let kind = check_exports(engine, &component)?;
    let manifest = Manifest::read(wasm).map_err(|error| InvalidPlugin::Manifest(format!("{error:#}")))?;
    check_manifest(&manifest, kind)?;
    Ok(Checked { component, kind, manifest, imports })
}

/// The manifest must agree with the component and this host.
fn check_manifest(manifest: &Manifest, kind: &str) -> Result<(), InvalidPlugin> {
    if let Some(declared) = &manifest.kind
        && declared != kind
    {
        return Err(InvalidPlugin::Manifest(format!("it declares kind `{declared}` but exports the {kind} interface")));
    }
    if let Some(contract) = &manifest.contract
        && !compatible(contract)
    {
        return Err(InvalidPlugin::Manifest(format!("it was built for switchboard:plugin@{contract}; this host implements @{CONTRACT}")));
    }
    Ok(())
}

/// Whether a component built for `version` works with this host's contract:
/// semver, where for 0.x the minor version is the breaking one.
fn compatible(version: &str) -> bool {
    let parts = |v: &str| -> Option<(u64, u64, u64)> {
        let mut it = v.trim().split('.').map(|part| part.parse::<u64>().ok());
        Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
    };
    match (parts(version), parts(CONTRACT)) {
        (Some((0, minor, patch)), Some((0, host_minor, host_patch))) => minor == host_minor && patch <= host_patch,
        (Some((major, minor, _)), Some((host_major, host_minor, _))) => major == host_major && minor <= host_minor,
        _ => false,
    }
}

fn check_imports(imports: &[String]) -> Result<(), InvalidPlugin> {
    for import in imports {
        if let Some((_, why)) = FORBIDDEN_IMPORTS.iter().find(|(prefix, _)| import.starts_with(prefix)) {
            return Err(InvalidPlugin::ForbiddenImport { import: import.clone(), why });
        }
    }
    Ok(())
}

/// The import wasmtime could not satisfy, named as the component names it.
fn unknown_import(error: &wasmtime::Error, imports: &[String]) -> String {
    let detail = format!("{error:#}");
    imports.iter().find(|import| detail.contains(import.as_str())).cloned().unwrap_or(detail)
}

/// The plugin kind its exports implement, or the first export it lacks.
fn check_exports(engine: &Engine, component: &Component) -> Result<&'static str, InvalidPlugin> {
    let exports: Vec<(String, ComponentItem)> = component.component_type().exports(engine).map(|(name, item)| (name.to_string(), item.ty)).collect();
    for (kind, interface, functions) in KINDS {
        let Some((name, item)) = exports.iter().find(|(name, _)| name.split('@').next() == Some(interface)) else { continue };
        let ComponentItem::ComponentInstance(instance) = item else {
            return Err(InvalidPlugin::MissingExport(format!("{interface}@{CONTRACT} (it is not an interface instance)")));
        };
        let present: Vec<String> = instance.exports(engine).map(|(function, _)| function.to_string()).collect();
        if let Some(missing) = functions.iter().find(|function| !present.iter().any(|p| p == *function)) {
            return Err(InvalidPlugin::MissingExport(format!("{name}#{missing}")));
        }
        return Ok(kind);
    }
    let names: Vec<&str> = exports.iter().map(|(name, _)| name.as_str()).collect();
    Err(InvalidPlugin::NoPluginExport(if names.is_empty() { "nothing".into() } else { names.join(", ") }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SandboxConfig;
    use crate::runtime::Runtime;

    fn runtime() -> Runtime {
        Runtime::new(SandboxConfig::default(), 1).expect("a runtime")
    }

    fn refusal(wasm: &[u8]) -> InvalidPlugin {
        match runtime().check_plugin(wasm) {
            Ok(checked) => panic!("accepted as a {} plugin", checked.kind),
            Err(refusal) => refusal,
        }
    }

    fn component(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).expect("valid WAT")
    }

    #[test]
    fn the_shipped_plugins_pass() {
        for (name, wasm) in crate::app::SHIPPED_PLUGINS {
            let checked = runtime().check_plugin(wasm).unwrap_or_else(|e| panic!("{name}: {e}"));
            let expected = if *name == "bitrix24" {
                "channel"
            } else if *name == "livechat" {
                "handoff"
            } else {
                "provider"
            };
            assert_eq!(checked.kind, expected, "{name}");
            assert!(checked.imports.iter().any(|import| import.starts_with("wasi:http/outgoing-handler@0.2")), "{name}: {:?}", checked.imports);
        }
    }

    #[test]
    fn files_that_are_not_components_are_named_as_such() {
        assert_eq!(refusal(b"#!/bin/sh\necho hi"), InvalidPlugin::NotWasm);
        assert_eq!(refusal(&component("(module)")), InvalidPlugin::CoreModule);
        assert!(matches!(refusal(b"\0asm\x0d\0\x01\0garbage"), InvalidPlugin::Compile(_)));
        let runtime = Runtime::new(SandboxConfig { max_plugin_bytes: 4, ..Default::default() }, 1).unwrap();
        assert!(matches!(runtime.check_plugin(&component("(module)")), Err(InvalidPlugin::TooLarge { limit: 4, .. })));
    }

    #[test]
    fn exports_and_imports_are_checked_by_name() {
        assert_eq!(refusal(&component("(component)")), InvalidPlugin::NoPluginExport("nothing".into()));
        let half_provider = r#"(component
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func $f (canon lift (core func $i "f")))
            (instance $api (export "call-provider" (func $f)))
            (export "switchboard:plugin/provider@0.1.0" (instance $api)))"#;
        let missing = refusal(&component(half_provider));
        assert_eq!(missing.to_string(), "missing export switchboard:plugin/provider@0.1.0#handle-callback");
        assert_eq!(missing.code(), "plugin_missing_export");
        let stranger = refusal(&component(r#"(component (import "acme:evil/thing" (instance (export "steal" (func)))))"#));
        assert_eq!(stranger, InvalidPlugin::UnknownImport("acme:evil/thing".into()));
        let sockets = refusal(&component(r#"(component (import "wasi:sockets/tcp@0.2.0" (instance)))"#));
        assert!(compatible("0.1.0") && !compatible("0.2.0") && !compatible("1.0.0") && !compatible("0.1.9") && !compatible("x"));
        assert_eq!(sockets.code(), "plugin_forbidden_import");
        assert!(sockets.to_string().starts_with("imports wasi:sockets/tcp@0.2.0, which plugins may not use"), "{sockets}");
    }

    /// A provider whose exports are complete (by name) with `manifest` in
    /// its custom section.
    fn provider_with_manifest(manifest: &str) -> Vec<u8> {
        let mut wasm = component(
            r#"(component
                (core module $m (func (export "f")))
                (core instance $i (instantiate $m))
                (func $f (canon lift (core func $i "f")))
                (instance $api (export "call-provider" (func $f)) (export "handle-callback" (func $f)) (export "on-event" (func $f)))
                (export "switchboard:plugin/provider@0.1.0" (instance $api)))"#,
        );
        let name = "switchboard-manifest";
        let mut payload = vec![u8::try_from(name.len()).unwrap()];
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(manifest.as_bytes());
        wasm.push(0);
        wasm.push(u8::try_from(payload.len()).unwrap());
        wasm.extend(payload);
        wasm
    }

    #[test]
    fn the_manifest_must_agree_with_the_exports_and_the_host() {
        assert_eq!(runtime().check_plugin(&provider_with_manifest(r#"{"kind": "provider", "contract": "0.1.0"}"#)).unwrap().kind, "provider");
        let wrong_kind = refusal(&provider_with_manifest(r#"{"kind": "channel"}"#));
        assert_eq!(wrong_kind.to_string(), "its manifest is invalid: it declares kind `channel` but exports the provider interface");
        let newer = refusal(&provider_with_manifest(r#"{"contract": "0.2.0"}"#));
        assert!(newer.to_string().contains("built for switchboard:plugin@0.2.0"), "{newer}");
        assert_eq!(refusal(&provider_with_manifest("not json")).code(), "plugin_bad_manifest");
    }
}
