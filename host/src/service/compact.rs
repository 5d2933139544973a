//! Compaction: giving back what purged rows leave in the running instance.
//!
//! A purge removes rows from the plugin, but not all they cost: the reference plugin frees
//! a row's slot, not the interned strings and ids it used (client IPs and session ids are
//! nearly all distinct), and a WebAssembly instance never gives its linear memory back.
//! A service that purges every 10 minutes for months would hold more and more of rows
//! long gone. The snapshot written after a purge holds only what live rows use, so an
//! instance brought up from it holds nothing else. Once the rows purged since the running
//! instance was brought up reach a tenth of those it holds, the service brings the same
//! build up again beside it, from that snapshot, and swaps it in as a hot swap does (the
//! old instance keeps serving meanwhile; the switch is a short catch-up under the lock).
//! At Coder's 90-day retention that is about every 9 days at a steady rate, and at once
//! after a purge of 1M rows out of 10M.

use std::time::Instant;

use super::swap::{SwapReport, bring_up_beside};
use super::{ServiceError, SharedConnLog, lock, wait_for_snapshots};

/// Compact once the rows purged since the instance was brought up reach this fraction
/// (1 / N) of the rows it holds.
const PURGED_SHARE: u64 = 10;

/// What compaction tracks of the running instance; a bring-up (start, swap, rebuild or
/// compaction) starts it again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Compaction {
    /// Rows purged from the instance since it was brought up, whose leftovers it holds.
    pub(super) purged: u64,
    /// `purged` when a compaction of this instance last failed: the next try waits for a
    /// purge that removes more rows, instead of bringing a second instance up (and failing
    /// again, most likely for want of memory) at every scheduler tick.
    failed_at: Option<u64>,
}

impl Compaction {
    /// Whether the instance is worth bringing up again; `rows` (a plugin call) is asked
    /// only when rows were purged since the bring-up, or since a failed compaction.
    fn due(&self, rows: impl FnOnce() -> Result<u64, ServiceError>) -> Result<bool, ServiceError> {
        if self.purged == 0 || self.failed_at.is_some_and(|failed| self.purged <= failed) {
            return Ok(false);
        }
        Ok(self.purged >= rows()? / PURGED_SHARE)
    }
}

/// Brings the running plugin build up again, beside the running instance, once purges have
/// made that worth it (see the module's comment); `None` when not due, or when a swap put
/// another build in place meanwhile. Call it without holding the lock, after a purge: it
/// waits for the snapshot rewrite the purge asked for.
pub fn compact_if_due(shared: &SharedConnLog) -> Result<Option<SwapReport>, ServiceError> {
    {
        let mut service = lock(shared);
        let compaction = service.compaction;
        if !compaction.due(|| Ok(service.stats()?.rows))? {
            return Ok(None);
        }
    }
    let started = Instant::now();
    wait_for_snapshots(shared);
    let (config, plugin, compaction) = {
        let service = lock(shared);
        (
            service.config.clone(),
            service.plugin.clone(),
            service.compaction,
        )
    };
    let outcome = bring_up_beside(shared, &config, plugin.clone(), started, Some(&plugin));
    let mut service = lock(shared);
    match &outcome {
        Ok(None) => {
            tracing::info!("compaction dropped: a swap put another plugin build in place meanwhile")
        }
        Ok(Some(report)) => {
            service.counters.compactions += 1;
            tracing::info!(
                purged_rows = compaction.purged,
                rows = report.restore.rows,
                locked_ms = report.locked_for.as_millis() as u64,
                elapsed_ms = report.elapsed.as_millis() as u64,
                "plugin instance compacted: brought up again from the store after purges"
            );
        }
        Err(e) => {
            service.compaction.failed_at = Some(compaction.purged);
            tracing::warn!(error = %e, "compacting the plugin instance failed; the running one keeps serving, and the next purge that removes rows tries again");
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::service::{ConnLog, swap_plugin, test_config};

    /// When a compaction is due: a tenth of the rows purged, and after a failure only once
    /// a purge has removed more.
    #[test]
    fn compaction_is_due_after_a_tenth_purged_and_retried_only_after_more_purges() {
        let cases = [
            // (purged, failed_at, rows, due)
            (0, None, 0, false),
            (0, None, 1_000, false),
            (99, None, 1_000, false),
            (100, None, 1_000, true),
            (1, None, 5, true),
            (100, Some(100), 1_000, false),
            (101, Some(100), 1_000, true),
            (100, Some(150), 1_000, false),
        ];
        for (purged, failed_at, rows, due) in cases {
            let compaction = Compaction { purged, failed_at };
            let got = compaction.due(|| Ok(rows)).unwrap();
            assert_eq!(got, due, "{compaction:?} of {rows} rows");
        }
    }

    /// A swap that lands while a compaction brings its build up beside: the compaction puts
    /// nothing in place, and the swapped-in build keeps serving.
    #[test]
    fn a_compaction_never_undoes_a_swap_that_came_meanwhile() {
        let data = tempfile::tempdir().unwrap();
        let config = test_config(data.path());
        let shared = Arc::new(Mutex::new(ConnLog::open(config.clone()).unwrap()));
        // The compaction read the running build before the swap...
        let compacted = lock(&shared).plugin.clone();
        swap_plugin(&shared, &config.plugin).unwrap();
        let swapped_in = lock(&shared).plugin.clone();
        assert!(!Arc::ptr_eq(&compacted, &swapped_in));
        // ...and is ready after it.
        let outcome = bring_up_beside(
            &shared,
            &config,
            compacted.clone(),
            Instant::now(),
            Some(&compacted),
        )
        .unwrap();
        assert!(
            outcome.is_none(),
            "the compaction must not replace the swapped-in build"
        );
        assert!(Arc::ptr_eq(&lock(&shared).plugin, &swapped_in));
        assert_eq!(lock(&shared).counters().swaps, 1);
    }
}
