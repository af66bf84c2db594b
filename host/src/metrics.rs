//! Prometheus metrics (`GET /metrics`), recorded with the `metrics` crate.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `switchboard_webhooks_total` | counter | `connector`, `outcome` (accepted, rejected, unavailable), `reason` |
//! | `switchboard_jobs_enqueued_total` | counter | `tenant` |
//! | `switchboard_webhooks_busy_total` | counter | `tenant` (webhooks answered 429: the tenant had all its intake slots busy) |
//! | `switchboard_duplicates_dropped_total` | counter | `connector` |
//! | `switchboard_jobs_finished_total` | counter | `tenant`, `outcome` (done, retry, wait, dead, lease_lost, unrecorded) |
//! | `switchboard_jobs_in_flight` | gauge | — |
//! | `switchboard_queue_depth` / `switchboard_queue_oldest_job_age_seconds` / `switchboard_dead_letters` | gauge | — |
//! | `switchboard_plugin_calls_total` | counter | `plugin`, `export`, `outcome` (ok, plugin_error, trap, stack_overflow, result_too_large, timeout, memory_cap, denied_host, rate_limited) |
//! | `switchboard_plugin_call_seconds` | histogram | `plugin`, `export` |
//! | `switchboard_provider_call_seconds` | histogram | `plugin`, `outcome` |
//! | `switchboard_deliveries_total` | counter | `connector`, `outcome` |

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the process-wide recorder (once; later calls reuse it).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let seconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0];
            let builder = PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds);
            match builder.and_then(|builder| builder.install_recorder()) {
                Ok(handle) => Some(handle),
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder not installed; /metrics stays empty");
                    None
                }
            }
        })
        .as_ref()
}

/// The current metrics in Prometheus text format.
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

/// Periodic housekeeping of the exporter.
pub fn upkeep() {
    if let Some(handle) = install() {
        handle.run_upkeep();
    }
}
