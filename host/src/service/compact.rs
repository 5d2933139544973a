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
use super::{ConnLog, ServiceError, SharedConnLog, lock, wait_for_snapshots};

/// Compact once the rows purged since the instance was brought up reach this fraction
/// (1 / N) of the rows it holds.
const PURGED_SHARE: u64 = 10;

impl ConnLog {
    /// Whether the rows purged since the running instance was brought up are worth
    /// bringing it up again for.
    fn compaction_due(&mut self) -> Result<bool, ServiceError> {
        if self.purged_since_bring_up == 0 {
            return Ok(false);
        }
        let rows = self.stats()?.rows;
        Ok(self.purged_since_bring_up >= rows / PURGED_SHARE)
    }
}

/// Brings the running plugin build up again, beside the running instance, once purges have
/// made that worth it (see the module's comment); `None` when not due, or when a swap put
/// another build in place meanwhile. Call it without holding the lock, after a purge: it
/// waits for the snapshot rewrite the purge asked for.
pub fn compact_if_due(shared: &SharedConnLog) -> Result<Option<SwapReport>, ServiceError> {
    if !lock(shared).compaction_due()? {
        return Ok(None);
    }
    let started = Instant::now();
    wait_for_snapshots(shared);
    let (config, plugin, purged) = {
        let service = lock(shared);
        (
            service.config.clone(),
            service.plugin.clone(),
            service.purged_since_bring_up,
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
                purged_rows = purged,
                rows = report.restore.rows,
                locked_ms = report.locked_for.as_millis() as u64,
                elapsed_ms = report.elapsed.as_millis() as u64,
                "plugin instance compacted: brought up again from the store after purges"
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "compacting the plugin instance failed; the running one keeps serving, and the next purge tries again");
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::directory::Directory;
    use crate::model::LogFields;
    use crate::plugin::{
        Clock, ComponentCache, Embedded, Limits, NoServiceLog, PluginSource, PluginSpec,
    };
    use crate::service::{ServiceConfig, swap_plugin};

    /// A swap that lands while a compaction brings its build up beside: the compaction puts
    /// nothing in place, and the swapped-in build keeps serving.
    #[test]
    fn a_compaction_never_undoes_a_swap_that_came_meanwhile() {
        let data = tempfile::tempdir().unwrap();
        let cache = std::env::temp_dir().join("connlog-test-cache");
        let config = ServiceConfig {
            data_dir: data.path().to_path_buf(),
            plugin: PluginSpec::plain(PluginSource::Embedded(Embedded::Reference)),
            directory: Arc::new(Directory::new()),
            limits: Limits::default(),
            log_formats: Vec::new(),
            log_fields: LogFields::Current,
            service_log: Arc::new(NoServiceLog),
            retention: Duration::ZERO,
            cache: Some(ComponentCache::new(cache)),
            clock: Clock::Fixed(0),
        };
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
