//! The resource limits of one plugin call, counted over the whole store: a
//! component may hold several core instances, each with its own memories
//! and tables, so a cap per memory would let it allocate that cap many
//! times. Here the cap is on the sum.

use wasmtime::ResourceLimiter;

/// Core instances one call may create (a Rust component has one or two).
pub const MAX_INSTANCES: usize = 16;
/// Linear memories one call may create, in all its instances.
pub const MAX_MEMORIES: usize = 8;
/// Tables one call may create, in all its instances.
pub const MAX_TABLES: usize = 16;
/// Elements of one table (a Rust plugin's function table has a few thousand).
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Counts what a call's store has allocated.
#[derive(Debug)]
pub struct CallLimits {
    memory_cap: usize,
    memory_used: usize,
}

impl CallLimits {
    pub fn new(memory_cap: usize) -> Self {
        Self { memory_cap, memory_used: 0 }
    }
}

impl ResourceLimiter for CallLimits {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let used = self.memory_used.saturating_add(desired.saturating_sub(current));
        if used > self.memory_cap {
            // `classify_trap` recognises this wording as the memory cap.
            wasmtime::bail!("growing memory to {used} bytes in all exceeds the call's limit of {} bytes", self.memory_cap);
        }
        self.memory_used = used;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            wasmtime::bail!("growing a table to {desired} elements exceeds the limit of {MAX_TABLE_ELEMENTS}");
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{Engine, Module, Store};

    const MIB: usize = 1024 * 1024;

    /// A module with `count` memories of `pages` 64 KiB pages each.
    fn memories(count: usize, pages: u32) -> String {
        let memories: String = (0..count).map(|i| format!("(memory $m{i} {pages})")).collect();
        format!("(module {memories})")
    }

    fn instantiate(wat: &str, cap: usize) -> wasmtime::Result<()> {
        let engine = Engine::default();
        let module = Module::new(&engine, wat::parse_str(wat)?)?;
        let mut store = Store::new(&engine, CallLimits::new(cap));
        store.limiter(|limits| limits);
        wasmtime::Instance::new(&mut store, &module, &[]).map(drop)
    }

    #[test]
    fn the_memory_cap_counts_every_memory_of_the_call() {
        // Four memories of 8 MiB: each is under the 16 MiB cap, together they are not.
        let error = instantiate(&memories(4, 128), 16 * MIB).unwrap_err();
        assert!(format!("{error:#}").contains("growing memory"), "{error:#}");
        instantiate(&memories(2, 128), 16 * MIB).unwrap();
    }

    #[test]
    fn memories_per_call_are_bounded() {
        let error = instantiate(&memories(MAX_MEMORIES + 1, 0), 64 * MIB).unwrap_err();
        assert!(format!("{error:#}").contains("memory count"), "{error:#}");
    }

    #[test]
    fn tables_are_bounded_in_count_and_size() {
        let tables: String = (0..=MAX_TABLES).map(|i| format!("(table $t{i} 0 funcref)")).collect();
        assert!(instantiate(&format!("(module {tables})"), 64 * MIB).is_err());
        let error = instantiate(&format!("(module (table {} funcref))", MAX_TABLE_ELEMENTS + 1), 64 * MIB).unwrap_err();
        assert!(format!("{error:#}").contains("table"), "{error:#}");
    }
}
