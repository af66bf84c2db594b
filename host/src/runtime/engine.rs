//! The one wasmtime engine: compiled code is shared by every plugin call.

use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: running guests yield and check their deadline this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The wasm stack of one call: deep recursion traps here, cleanly.
pub const MAX_WASM_STACK_BYTES: usize = 512 * 1024;

/// The fiber stack a call runs on: the wasm stack plus room for the host
/// functions it calls.
const ASYNC_STACK_BYTES: usize = MAX_WASM_STACK_BYTES + 1024 * 1024;

/// Bytes of each pooled memory kept resident (zeroed in place) between calls.
const KEEP_RESIDENT_BYTES: usize = 1024 * 1024;

/// Decommits gathered into one batch (one TLB flush).
const DECOMMIT_BATCH: usize = 32;

/// Component instances the pool holds beyond the job queue's in-flight
/// limit: webhooks translate in while jobs run.
const WEBHOOK_HEADROOM: u32 = 256;

/// Build the engine: async support, epoch interruption for deadlines, and
/// the pooling allocator, sized for `max_in_flight` concurrent jobs with no
/// memory larger than the call's cap, when the machine can reserve its
/// address space. Without the pool the same bounds still hold: each call's
/// store limiter (`limits.rs`) enforces them.
pub fn build_engine(max_in_flight: usize, memory_bytes: usize) -> anyhow::Result<Engine> {
    let instances = u32::try_from(max_in_flight).unwrap_or(u32::MAX).saturating_add(WEBHOOK_HEADROOM);
    match Engine::new(&config(Some(Pool { instances, memory_bytes }))) {
        Ok(engine) => Ok(engine),
        Err(error) => {
            tracing::warn!(%error, "pooling allocator unavailable; allocating instances on demand (the per-call limits still apply)");
            Engine::new(&config(None)).map_err(anyhow::Error::from)
        }
    }
    .inspect(start_epoch_ticker)
}

/// The shape of the instance pool.
struct Pool {
    instances: u32,
    memory_bytes: usize,
}

fn config(pool: Option<Pool>) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true).max_wasm_stack(MAX_WASM_STACK_BYTES).async_stack_size(ASYNC_STACK_BYTES);
    if let Some(Pool { instances, memory_bytes }) = pool {
        // A Rust plugin component holds a few core instances (the guest,
        // the WASI adapter shims) and one or two memories and tables.
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(4))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(2))
            .total_stacks(instances)
            .max_memory_size(memory_bytes)
            // The same bounds as each call's limiter (`limits.rs`), so a
            // component that asks for more fails at instantiation, cleanly.
            .max_core_instances_per_component(super::limits::MAX_INSTANCES as u32)
            .max_memories_per_component(super::limits::MAX_MEMORIES as u32)
            .max_tables_per_component(super::limits::MAX_TABLES as u32)
            .table_elements(super::limits::MAX_TABLE_ELEMENTS)
            .max_unused_warm_slots(16)
            // Reset what a call touched with memset rather than madvise and
            // batch the rest: every madvise is a TLB shootdown on all cores.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES / 8)
            .async_stack_keep_resident(KEEP_RESIDENT_BYTES / 8)
            .pagemap_scan(wasmtime::Enabled::Auto)
            .decommit_batch_size(DECOMMIT_BATCH);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Advance the epoch from a thread that stops once the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("switchboard-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{Module, Store};

    const MIB: usize = 1024 * 1024;

    /// Instantiate a module with one memory of `pages` 64 KiB pages in a
    /// store without any limiter: only the engine's own bounds apply.
    fn instantiate_unlimited(engine: &Engine, pages: u32) -> wasmtime::Result<()> {
        let module = Module::new(engine, wat::parse_str(format!("(module (memory {pages}))"))?)?;
        let mut store = Store::new(engine, ());
        wasmtime::Instance::new(&mut store, &module, &[]).map(drop)
    }

    #[test]
    fn the_pool_holds_no_memory_larger_than_the_call_cap() {
        let engine = Engine::new(&config(Some(Pool { instances: 2, memory_bytes: 4 * MIB }))).expect("a two-slot pool fits any machine");
        instantiate_unlimited(&engine, 64).expect("4 MiB is within the cap");
        let error = instantiate_unlimited(&engine, 65).unwrap_err();
        assert!(format!("{error:#}").contains("memory"), "{error:#}");
    }
}
