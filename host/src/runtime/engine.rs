//! The one wasmtime engine: compiled code is shared by every plugin call.

use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: running guests yield and check their deadline this often.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Largest linear memory any plugin may be configured with (per-call caps
/// are lower and enforced by the store limiter).
const MAX_MEMORY_BYTES: usize = 512 * 1024 * 1024;

/// Build the engine: async support, epoch interruption for deadlines, and
/// the pooling allocator when the machine can reserve its address space.
pub fn build_engine() -> anyhow::Result<Engine> {
    match Engine::new(&config(true)) {
        Ok(engine) => Ok(engine),
        Err(error) => {
            tracing::warn!(%error, "pooling allocator unavailable; falling back to on-demand instance allocation");
            Engine::new(&config(false)).map_err(anyhow::Error::from)
        }
    }
    .inspect(start_epoch_ticker)
}

fn config(pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(256)
            .total_core_instances(1024)
            .total_memories(512)
            .total_tables(512)
            .total_stacks(256)
            .max_memory_size(MAX_MEMORY_BYTES)
            .max_unused_warm_slots(16);
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
