//! The retention scheduler: purges expired rows at start, then periodically, as Coder's
//! dbpurge does (every 10 minutes), but without a cap per run; and `purge`, which runs a
//! large purge in slices so that requests wait at most one slice.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::model::PurgeReport;

use crate::service::{self, ServiceError, SharedConnLog};

/// Coder's purge interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Stops the scheduler when dropped.
pub struct RetentionScheduler {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RetentionScheduler {
    /// Runs a purge now, then every `interval`, on its own thread. Each purge holds the
    /// service's lock only for its transaction (the plugin's purge, deleting the rows'
    /// events, recording the purge); rewriting the snapshot and checkpointing the WAL
    /// happen afterwards on the service's snapshot writer, without the lock.
    pub fn spawn(service: SharedConnLog, interval: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("connlog-retention".into())
            .spawn(move || {
                loop {
                    let _ = run_once(&service);
                    // On every replica, whoever purged (errors are logged inside).
                    let _ = service::compact_if_due(&service);
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => continue,
                        // A message or a dropped sender: the scheduler is being stopped.
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            })
            .expect("spawning the retention thread");
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for RetentionScheduler {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One purge as of the service's clock, logged; `None` on a replica while another one leads
/// retention (it purges for all, and this one follows its notices).
pub fn run_once(shared: &SharedConnLog) -> Result<Option<PurgeReport>, ServiceError> {
    let mut service = service::lock(shared);
    match service.leads_retention() {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!("retention purge: another replica leads retention");
            return Ok(None);
        }
        Err(e) => {
            tracing::warn!(error = %e, "retention purge: which replica leads retention is unknown; it will run again");
            return Err(e);
        }
    }
    drop(service);
    let started = std::time::Instant::now();
    let outcome = purge(shared, None);
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match &outcome {
        Ok(report) if report.purged > 0 => tracing::info!(
            purged = report.purged,
            cutoff = report.cutoff,
            elapsed_ms,
            "retention purge"
        ),
        Ok(report) => tracing::debug!(
            cutoff = report.cutoff,
            elapsed_ms,
            "retention purge: nothing expired"
        ),
        Err(e) => tracing::warn!(error = %e, "retention purge failed; it will run again"),
    }
    outcome.map(Some)
}

/// Applies retention as of now (`retention`, or the service's own), every expired row in
/// one pass, but in slices: while more than `SLICE_ROWS` rows are older than the cutoff,
/// one hold of the service's lock purges the oldest `SLICE_ROWS` of them (a purge of its
/// own: the plugin's, deleting their events, recording it), then lets waiting requests
/// in. The last hold purges the rest at the cutoff itself, so the report and the rows left
/// are those of one purge whatever the slices were.
pub fn purge(
    shared: &SharedConnLog,
    retention: Option<Duration>,
) -> Result<PurgeReport, ServiceError> {
    let mut service = service::lock(shared);
    let now = service.now();
    let retention = retention.unwrap_or_else(|| service.retention());
    let mut purged = 0;
    if let Some(cutoff) = service.purge_cutoff(now, retention)? {
        (service, purged) = service::purge_slices(shared, service, cutoff)?;
    }
    let last = service.purge_with(now, retention)?;
    Ok(PurgeReport {
        purged: purged + last.purged,
        cutoff: last.cutoff,
    })
}
