//! Compiled plugins, kept so each distinct component is compiled once: in
//! process memory per engine, and on disk (`[sandbox] compiled_cache_dir`)
//! across restarts, keyed by the component's SHA-256 and the engine's
//! compatibility hash (a different wasmtime or engine configuration never
//! reads another's artifact).

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Already in this process.
    Memory,
    /// Deserialized from the on-disk cache.
    Disk,
    /// Compiled now.
    Compiled,
}

/// Per engine: its components by content hash.
type Compiled = Vec<(Engine, HashMap<[u8; 32], Component>)>;

/// The component for `wasm`, compiling it only if no cache has it. The lock
/// is held while compiling so concurrent loads of one plugin compile it once
/// (compilation itself runs on all cores).
pub fn load(engine: &Engine, wasm: &[u8], dir: Option<&Path>) -> anyhow::Result<(Component, Origin)> {
    static CACHE: OnceLock<Mutex<Compiled>> = OnceLock::new();
    let hash: [u8; 32] = Sha256::digest(wasm).into();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let index = match cache.iter().position(|(cached, _)| Engine::same(cached, engine)) {
        Some(index) => index,
        None => {
            cache.push((engine.clone(), HashMap::new()));
            cache.len() - 1
        }
    };
    let components = &mut cache[index].1;
    if let Some(component) = components.get(&hash) {
        return Ok((component.clone(), Origin::Memory));
    }
    let file = dir.map(|dir| artifact_path(dir, engine, &hash));
    let (component, origin) = match file.as_deref().and_then(|file| from_disk(engine, file)) {
        Some(component) => (component, Origin::Disk),
        None => {
            let component = Component::new(engine, wasm)?;
            if let Some(file) = &file {
                store(&component, file);
            }
            (component, Origin::Compiled)
        }
    };
    components.insert(hash, component.clone());
    Ok((component, origin))
}

fn artifact_path(dir: &Path, engine: &Engine, hash: &[u8; 32]) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
    dir.join(format!("{hex}-{:016x}.cwasm", hasher.finish()))
}

fn from_disk(engine: &Engine, file: &Path) -> Option<Component> {
    if !file.exists() {
        return None;
    }
    // SAFETY: the directory is the host's own and the file was written by
    // `store` below from `Component::serialize` of an engine with the same
    // compatibility hash (part of the name); wasmtime checks the header too.
    match unsafe { Component::deserialize_file(engine, file) } {
        Ok(component) => Some(component),
        Err(error) => {
            tracing::warn!(file = %file.display(), %error, "ignoring an unreadable compiled plugin; compiling it again");
            None
        }
    }
}

/// Write the artifact next to its final name, then rename: a crash never
/// leaves a half-written file under the real name.
fn store(component: &Component, file: &Path) {
    let result = (|| -> anyhow::Result<()> {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let partial = file.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&partial, component.serialize()?)?;
        std::fs::rename(&partial, file)?;
        Ok(())
    })();
    if let Err(error) = result {
        tracing::warn!(file = %file.display(), %error, "could not keep the compiled plugin; it will be compiled again next start");
    }
}
