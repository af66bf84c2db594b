//! CPU fairness between plugin calls.
//!
//! Running guest code is interrupted at every epoch tick (10 ms). A call
//! that has been running for more than [`HOG_AFTER_TICKS`] ticks (~20 ms) is
//! CPU-bound: from then on each of its slices needs one of a few shared
//! CPU slots, granted in turn (tokio's semaphore is fair) and handed back
//! one slice later. However many CPU-bound calls tenants start, together
//! they use at most that many cores; calls that stay under the threshold —
//! an adapter parsing JSON and waiting on HTTP — never wait for a slot, and
//! neither does the rest of the host.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use wasmtime::UpdateDeadline;

/// Ticks a call may run before it counts as CPU-bound (about 20 ms of CPU;
/// the shipped adapters use about 1 ms per call).
pub const HOG_AFTER_TICKS: u32 = 2;

/// How long a granted slot stays taken: one tick of guest code.
const SLICE: Duration = super::engine::EPOCH_TICK;

/// The CPU share of one call: how long it has run, and the slots it must
/// take turns for once it is CPU-bound.
pub struct CpuShare {
    slots: Arc<Semaphore>,
    ticks: u32,
}

impl CpuShare {
    pub fn new(slots: Arc<Semaphore>) -> Self {
        Self { slots, ticks: 0 }
    }

    /// What the guest does at an epoch tick: yield to the scheduler, and
    /// once CPU-bound, wait for its turn at a slot first.
    pub fn on_tick(&mut self) -> UpdateDeadline {
        self.ticks = self.ticks.saturating_add(1);
        if self.ticks <= HOG_AFTER_TICKS {
            return UpdateDeadline::Yield(1);
        }
        let slots = Arc::clone(&self.slots);
        UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                // A closed semaphore never happens (the runtime owns it); run on.
                if let Ok(slot) = slots.acquire_owned().await {
                    // Released by time, not by the guest: a guest that blocks
                    // in a host call right after its turn holds nothing.
                    tokio::spawn(async move {
                        tokio::time::sleep(SLICE).await;
                        drop(slot);
                    });
                }
            }),
        )
    }
}

/// CPU slots for CPU-bound calls by default: half the cores, at least one,
/// so the other half always serves everything else.
pub fn default_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(update: UpdateDeadline) {
        match update {
            UpdateDeadline::YieldCustom(_, wait) => wait.await,
            UpdateDeadline::Yield(_) => tokio::task::yield_now().await,
            _ => panic!("a tick always yields"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn short_calls_never_wait_and_cpu_bound_ones_take_turns() {
        let slots = Arc::new(Semaphore::new(1));
        let (mut first, mut second) = (CpuShare::new(Arc::clone(&slots)), CpuShare::new(Arc::clone(&slots)));
        for _ in 0..HOG_AFTER_TICKS {
            assert!(matches!(first.on_tick(), UpdateDeadline::Yield(1)), "under the threshold a call only yields");
            second.on_tick();
        }
        let started = tokio::time::Instant::now();
        run(first.on_tick()).await;
        assert_eq!(started.elapsed(), Duration::ZERO, "the free slot is granted at once");
        run(second.on_tick()).await;
        assert_eq!(started.elapsed(), SLICE, "the second CPU-bound call waits for the first one's slice");
        assert_eq!(slots.available_permits(), 0);
        tokio::time::sleep(SLICE).await;
        tokio::task::yield_now().await;
        assert_eq!(slots.available_permits(), 1, "slots come back after one slice");
    }
}
