//! Bringing a plugin instance up to date from the store, at start-up, after a failure and
//! for a swap: the stored snapshot when it is usable, then the journal events it does not
//! cover (applying again the purges since it was written), or else the whole journal.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::background::PendingRecord;
use super::{Compaction, ConnLog, ServiceConfig, ServiceError, store_path};
use crate::model;
use crate::plugin::{EventColumns, LoadedPlugin, PluginError, PluginInstance};
use crate::store::snapshot_file::OpenFailure;
use crate::store::{Journal, PendingPurge, ReplayCursor, SnapshotInfo, WrittenSnapshot};

/// How many events one replay call carries.
const REPLAY_BATCH: usize = 8192;

/// How many times a bring-up pins a new view when the snapshot it pinned was replaced
/// before it could open the file, before it settles for a full replay.
const BRING_UP_ATTEMPTS: usize = 3;

/// What a start-up or rebuild did to bring the plugin up to date.
#[derive(Clone, Debug)]
pub struct RestoreReport {
    /// Events fed to `replay`: the whole journal, or only the snapshot's tail.
    pub events_replayed: u64,
    pub rows: u64,
    pub elapsed: Duration,
    pub source: RestoreSource,
}

/// Where the rebuilt state came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreSource {
    /// The stored snapshot, then the events after it (with the purges committed since it
    /// was written applied again at their place).
    Snapshot {
        /// The journal position the snapshot covers.
        last_seq: i64,
        bytes: u64,
        load_time: Duration,
    },
    /// Every event of the journal, because no usable snapshot was stored.
    FullReplay { reason: String },
}

impl ConnLog {
    /// Replaces the instance with a fresh one brought up to date from the store. If that
    /// fails, the failed instance stays in place, poisoned, and the next call tries again.
    pub(super) fn rebuild(&mut self) -> Result<(), ServiceError> {
        self.bring_up_again()?;
        self.counters.instance_restarts += 1;
        tracing::info!(
            restarts = self.counters.instance_restarts,
            rows = self.last_restore.rows,
            elapsed_ms = self.last_restore.elapsed.as_millis() as u64,
            "plugin instance rebuilt from the store"
        );
        Ok(())
    }

    /// `rebuild` without counting a restart: after the store was filled in bulk.
    pub(super) fn bring_up_again(&mut self) -> Result<(), ServiceError> {
        // The store it is brought up from holds the queued group, or never will.
        self.await_queued();
        let journal = match self.instance.state_mut().take_journal() {
            Some(mut journal) => {
                journal.rollback();
                journal.abandon_snapshot_write();
                journal
            }
            None => Journal::connect(&store_path(&self.config.data_dir))
                .map_err(ServiceError::Rebuild)?,
        };
        let up =
            bring_up(&self.plugin, journal, &self.config, None).map_err(ServiceError::Rebuild)?;
        self.instance = up.instance;
        self.compaction = Compaction::default();
        self.unsnapshotted = up.report.events_replayed;
        self.set_merged_upto(up.upto);
        self.snapshot_upto = up.report.source.covers();
        self.last_restore = up.report;
        if up.snapshot_refused {
            self.counters.snapshots_refused += 1;
        }
        Ok(())
    }
}

/// A failed bring-up: a trap is reported as the plugin's failure, anything else as is.
pub(super) fn bring_up_error(error: anyhow::Error) -> ServiceError {
    match error.downcast::<PluginError>() {
        Ok(plugin) => ServiceError::Plugin(plugin),
        Err(other) => ServiceError::Rebuild(other),
    }
}

/// An instance brought up to date.
pub(super) struct BroughtUp {
    pub(super) instance: PluginInstance,
    pub(super) report: RestoreReport,
    /// The journal position it holds: every event with `seq <= upto`.
    pub(super) upto: i64,
    /// A stored snapshot of this plugin was refused (damaged or inconsistent).
    pub(super) snapshot_refused: bool,
    pub(super) pinned: Pinned,
}

/// What the pinned view held besides the events: what a snapshot written from this
/// bring-up replaces and includes.
pub(super) struct Pinned {
    /// The snapshot file the record named.
    pub(super) snapshot_file: Option<String>,
    /// `Journal::purge_mark`: the purges this bring-up applied are those up to it.
    pub(super) purge_mark: i64,
    /// Purges no stored snapshot included.
    pending_purges: usize,
    /// The snapshot folder holds files the record does not name.
    pub(super) leftover_files: bool,
    /// On a replica's copy, the shared journal position the view holds exactly
    /// (`upstream::exact_position`): a snapshot written from it may be shared.
    pub(super) shared_position: Option<super::upstream::SharedPosition>,
}

impl BroughtUp {
    /// Writes this instance's snapshot to a new file, unrecorded (`snapshot::write_file`):
    /// it covers `upto`, and the purges up to the pinned mark.
    pub(super) fn write_snapshot_file(
        &mut self,
        plugin: &LoadedPlugin,
    ) -> Result<WrittenSnapshot, ServiceError> {
        super::snapshot::write_file(
            &mut self.instance,
            &plugin.digest,
            self.report.rows,
            self.upto,
        )
    }

    /// Records `written` (from `write_snapshot_file`) as the stored snapshot, if the
    /// record still names the one this instance was brought up from: false (and the file
    /// removed) when a newer one was recorded meanwhile. Purges committed after the pinned
    /// view stay pending for it, as they would for the one it replaces.
    pub(super) fn record_snapshot(&self, written: WrittenSnapshot) -> Result<bool, ServiceError> {
        self.pending_record(written)
            .record(
                self.instance
                    .state()
                    .journal()
                    .expect("bring_up attaches a journal"),
            )
            .map_err(ServiceError::Storage)
    }

    /// A snapshot file written from this instance, to record as `record_snapshot` does.
    pub(super) fn pending_record(&self, written: WrittenSnapshot) -> PendingRecord {
        PendingRecord {
            written,
            replaces: self.pinned.snapshot_file.clone(),
            purge_mark: self.pinned.purge_mark,
        }
    }
}

impl Pinned {
    /// A snapshot file is recorded, and purges since it was written: it still holds rows
    /// they removed.
    pub(super) fn stale_snapshot(&self) -> bool {
        self.snapshot_file.is_some() && self.pending_purges > 0
    }
}

impl RestoreSource {
    /// The journal position the stored snapshot covers, when it was used.
    pub(super) fn covers(&self) -> i64 {
        match self {
            RestoreSource::Snapshot { last_seq, .. } => *last_seq,
            RestoreSource::FullReplay { .. } => 0,
        }
    }
}

/// A configured instance over `journal`, holding nothing yet.
fn fresh_instance(
    plugin: &LoadedPlugin,
    journal: Journal,
    config: &ServiceConfig,
) -> anyhow::Result<PluginInstance> {
    let mut instance = plugin.instantiate(
        Some(journal),
        config.directory.clone(),
        config.clock,
        &config.limits,
    )?;
    if let Err(error) = instance.configure(
        &config.log_formats,
        config.log_fields,
        &plugin.spec.settings,
    )? {
        // Judged at load already; a plugin that changes its mind is refused all the same.
        return Err(PluginError::SettingsRefused {
            source_name: plugin.spec.source.describe(),
            error: Box::new(error),
        }
        .into());
    }
    instance.set_retention(retention_option(config.retention))?;
    Ok(instance)
}

/// A new instance over `journal`, configured and holding every stored row.
///
/// It works from a read transaction pinned on the instance's connection, so the snapshot
/// record, the pending purges and the journal are seen at one instant even while another
/// connection commits. The snapshot is used only if this exact plugin build wrote it, its
/// position is one the journal handed out, no purge since deleted events it does not cover,
/// and its bytes match their record (checked as they are read); otherwise, or if loading
/// it fails in any way, a fresh instance replays the whole journal. If the pinned snapshot
/// was replaced before its file could be opened, it pins a new view and starts again.
///
/// `beside` is the background writer's: a bring-up it can stop, beside the running service.
pub(super) fn bring_up(
    plugin: &LoadedPlugin,
    journal: Journal,
    config: &ServiceConfig,
    beside: Option<Beside<'_>>,
) -> anyhow::Result<BroughtUp> {
    let started = Instant::now();
    let mut journal = journal;
    for attempt in 1..=BRING_UP_ATTEMPTS {
        journal
            .begin_read()
            .map_err(|e| anyhow::anyhow!("reading the store: {e}"))?;
        let mut instance = fresh_instance(plugin, journal, config)?;
        let last_attempt = attempt == BRING_UP_ATTEMPTS;
        let result = restore_into(&mut instance, plugin, config, started, beside, last_attempt);
        if let Some(journal) = instance.state_mut().journal.as_mut() {
            journal.set_session_bound(None);
            journal.end_read();
        }
        match result? {
            Some(restored) => {
                return Ok(BroughtUp {
                    instance,
                    report: restored.report,
                    upto: restored.upto,
                    snapshot_refused: restored.refused,
                    pinned: restored.pinned,
                });
            }
            None => {
                journal = instance
                    .state_mut()
                    .take_journal()
                    .expect("bring_up attaches a journal");
            }
        }
    }
    unreachable!("the last attempt never asks for another")
}

struct Restored {
    report: RestoreReport,
    upto: i64,
    refused: bool,
    pinned: Pinned,
}

/// Why the stored snapshot was not used.
enum Refusal {
    /// Another plugin build's, or older than a purge that deleted events it does not
    /// cover: not damage.
    NotUsable(String),
    /// Damaged, or not matching the journal: counted and logged as a warning.
    Damaged(String),
    /// Replaced (and its file removed) after this view was pinned.
    Replaced,
}

/// Brings `instance` up from the pinned view; `None` when the pinned snapshot was replaced
/// meanwhile and another attempt should pin a new view.
fn restore_into(
    instance: &mut PluginInstance,
    plugin: &LoadedPlugin,
    config: &ServiceConfig,
    started: Instant,
    beside: Option<Beside<'_>>,
    last_attempt: bool,
) -> anyhow::Result<Option<Restored>> {
    let storage = |e: model::StorageError| anyhow::anyhow!("reading the store: {e}");
    let journal = instance
        .state()
        .journal()
        .expect("bring_up attaches a journal");
    let upto = journal.last_seq().map_err(storage)?;
    let high_water = journal.high_water().map_err(storage)?;
    let stored = journal.snapshot_info().map_err(storage)?;
    let purges = journal.pending_purges().map_err(storage)?;
    let snapshot_file = journal.recorded_snapshot_file().map_err(storage)?;
    let dir = journal.snapshot_dir();
    let recorded = snapshot_file
        .as_deref()
        .map(|f| crate::store::snapshot_file::path_of(&dir, f));
    let leftover_files = crate::store::snapshot_file::list(&dir)
        .map(|files| {
            files
                .iter()
                .any(|(path, _)| Some(path) != recorded.as_ref())
        })
        .unwrap_or(true);
    let pinned = Pinned {
        snapshot_file,
        purge_mark: journal.purge_mark().map_err(storage)?,
        pending_purges: purges.len(),
        leftover_files,
        shared_position: super::upstream::exact_position(journal).map_err(storage)?,
    };
    let path = store_path(&config.data_dir);
    let mut refused = false;
    let mut source = RestoreSource::FullReplay {
        reason: "no snapshot is stored".into(),
    };
    if let Some(info) = stored {
        let usable = if info.plugin_digest != plugin.digest {
            Err(Refusal::NotUsable(
                "the stored snapshot was written by another plugin build".to_string(),
            ))
        } else if info.last_seq > high_water {
            Err(Refusal::Damaged(format!(
                "the stored snapshot covers journal position {} but the journal does not hold it",
                info.last_seq
            )))
        } else if let Some(purge) = purges.iter().find(|p| p.max_deleted_seq > info.last_seq) {
            // That purge may have removed a row whose newer events changed it (an earlier
            // connect time arriving later): applying its cutoff to the snapshot's version of
            // the row would not remove the same rows.
            Err(Refusal::NotUsable(format!(
                "a purge since the stored snapshot deleted events it does not cover \
                 (up to position {}, the snapshot covers {})",
                purge.max_deleted_seq, info.last_seq
            )))
        } else {
            Ok(())
        };
        source = match usable.and_then(|()| load_snapshot(instance, &info, &path)) {
            Ok(load_time) => RestoreSource::Snapshot {
                last_seq: info.last_seq,
                bytes: info.bytes,
                load_time,
            },
            Err(Refusal::Replaced) if !last_attempt => return Ok(None),
            Err(refusal) => {
                let reason = match refusal {
                    Refusal::Damaged(reason) => {
                        refused = true;
                        tracing::warn!(%reason, "the stored snapshot was refused; replaying the whole journal");
                        reason
                    }
                    Refusal::NotUsable(reason) => {
                        tracing::info!(%reason, "replaying the whole journal");
                        reason
                    }
                    Refusal::Replaced => {
                        let reason = "the stored snapshot kept being replaced while it was opened"
                            .to_string();
                        tracing::info!(%reason, "replaying the whole journal");
                        reason
                    }
                };
                // Whatever a failed load left in the instance is thrown away.
                let journal = instance
                    .state_mut()
                    .take_journal()
                    .expect("bring_up attaches a journal");
                *instance = fresh_instance(plugin, journal, config)?;
                RestoreSource::FullReplay { reason }
            }
        };
    }
    let events_replayed = match &source {
        RestoreSource::Snapshot { last_seq, .. } => {
            replay_tail_with_purges(instance, *last_seq, upto, &purges, config, beside)?
        }
        // The journal holds no event of a purged row: replaying it all applies every purge.
        // The background writer (the one bring-up that can be cancelled) keeps to one
        // thread, so that the service it runs beside keeps the other core.
        RestoreSource::FullReplay { .. } if beside.is_none() => {
            replay_whole_overlapped(instance, plugin, config, upto)?
        }
        RestoreSource::FullReplay { .. } => replay_range(instance, 0, upto, Some(upto), beside)?,
    };
    let rows = instance.stats()?.rows;
    Ok(Some(Restored {
        report: RestoreReport {
            events_replayed,
            rows,
            elapsed: started.elapsed(),
            source,
        },
        upto,
        refused,
        pinned,
    }))
}

/// Loads the recorded snapshot into `instance`, verified against its record.
fn load_snapshot(
    instance: &mut PluginInstance,
    info: &SnapshotInfo,
    store: &Path,
) -> Result<Duration, Refusal> {
    let started = Instant::now();
    let journal = instance
        .state_mut()
        .journal
        .as_mut()
        .expect("bring_up attaches a journal");
    if let Err(failure) = journal.start_snapshot_read(info) {
        // The pinned record may be old: a newer snapshot may have replaced it and its file
        // been removed since. Only if the current record still names the file is it lost.
        let still_recorded = Journal::connect(store)
            .ok()
            .and_then(|j| j.recorded_snapshot_file().ok())
            .is_some_and(|current| current.as_deref() == Some(info.file.as_str()));
        return Err(match failure {
            OpenFailure::Busy => Refusal::Replaced,
            _ if !still_recorded => Refusal::Replaced,
            failure => Refusal::Damaged(failure.to_string()),
        });
    }
    let outcome = instance.load_snapshot();
    let journal = instance
        .state_mut()
        .journal
        .as_mut()
        .expect("bring_up attaches a journal");
    let verified = journal.snapshot_read_verified();
    journal.finish_snapshot_read();
    match outcome {
        Ok(Ok(())) if verified => Ok(started.elapsed()),
        Ok(Ok(())) => Err(Refusal::Damaged(
            "the plugin finished loading before the snapshot's end".into(),
        )),
        Ok(Err(e)) => Err(Refusal::Damaged(format!(
            "loading the snapshot failed: {e}"
        ))),
        Err(trap) => Err(Refusal::Damaged(format!(
            "loading the snapshot failed: {trap}"
        ))),
    }
}

/// After loading a snapshot covering `seq <= last_seq`: replays the tail up to `upto` in
/// segments, applying each pending purge where it happened (after the events up to its
/// high-water mark), so the instance goes through the states the running plugin went
/// through and ends up with the same rows.
fn replay_tail_with_purges(
    instance: &mut PluginInstance,
    last_seq: i64,
    upto: i64,
    purges: &[PendingPurge],
    config: &ServiceConfig,
    beside: Option<Beside<'_>>,
) -> anyhow::Result<u64> {
    let mut at = last_seq;
    let mut replayed = 0;
    for purge in purges {
        let end = purge.high_water.min(upto);
        if end > at {
            replayed += replay_range(instance, at, end, Some(end), beside)?;
            at = end;
        }
        reapply_purge(instance, purge.cutoff, config.retention)?;
    }
    if upto > at {
        replayed += replay_range(instance, at, upto, Some(upto), beside)?;
    }
    Ok(replayed)
}

/// Removes the rows a recorded purge removed, through the plugin's own retention: with a
/// retention of 1 ns, `purge(cutoff + 1)` uses exactly `cutoff`. The journal is left alone
/// (the events are gone already, and newer events may share a purged row's session key).
fn reapply_purge(
    instance: &mut PluginInstance,
    cutoff: model::UnixNanos,
    retention: Duration,
) -> anyhow::Result<()> {
    instance.state_mut().ignore_forget = true;
    let outcome = (|| -> anyhow::Result<()> {
        instance.set_retention(Some(Duration::from_nanos(1)))?;
        let report = instance
            .purge(cutoff.saturating_add(1))?
            .map_err(|e| anyhow::anyhow!("applying a recorded purge again: {e}"))?;
        anyhow::ensure!(
            report.cutoff == Some(cutoff),
            "applying a recorded purge again used cutoff {:?}, not {cutoff}",
            report.cutoff
        );
        instance.set_retention(retention_option(retention))?;
        Ok(())
    })();
    instance.state_mut().ignore_forget = false;
    outcome
}

/// A bring-up beside the running service: the background writer's.
#[derive(Clone, Copy)]
pub(super) struct Beside<'a> {
    /// Stops it between replay batches (the service is shutting down).
    pub cancel: &'a AtomicBool,
    /// Its replay holds the read only while it reads a batch, not while the plugin folds
    /// it (`Journal::pause_read`), and stops with `EventsDeleted` if any event was deleted
    /// since the bring-up pinned its view.
    pub pause_reads: bool,
}

/// A replay that paused its reads stopped because events were deleted (by a purge)
/// meanwhile: its instance may lack some of them and hold others.
#[derive(Debug, thiserror::Error)]
#[error("events were deleted while the instance was brought up")]
pub(super) struct EventsDeleted;

/// Feeds the stored events with `after < seq <= upto` back through the plugin's `replay`,
/// read batch by batch on the instance's own connection (inside a bring-up's pinned read,
/// every batch comes from the same view, or from one that holds the same events: see
/// `Beside::pause_reads`); `bound` limits what the plugin's own reads see meanwhile
/// (`Journal::set_session_bound`).
pub(super) fn replay_range(
    instance: &mut PluginInstance,
    after: i64,
    upto: i64,
    bound: Option<i64>,
    beside: Option<Beside<'_>>,
) -> anyhow::Result<u64> {
    fn journal(instance: &mut PluginInstance) -> anyhow::Result<&mut Journal> {
        instance
            .state_mut()
            .journal
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no store is attached"))
    }
    journal(instance)?.set_session_bound(bound);
    let mut cursor = ReplayCursor::new(after, upto);
    let mut replayed = 0u64;
    let pause_reads = beside.is_some_and(|b| b.pause_reads);
    let outcome = loop {
        if beside.is_some_and(|b| b.cancel.load(Ordering::Relaxed)) {
            break Err(anyhow::anyhow!("cancelled"));
        }
        let batch = match journal(instance)?.next_batch(&mut cursor, REPLAY_BATCH) {
            Ok(Some(batch)) => batch,
            Ok(None) => break Ok(replayed),
            Err(e) => break Err(e),
        };
        replayed += batch.len() as u64;
        if pause_reads {
            journal(instance)?.pause_read();
        }
        let replayed_batch = replay_batch(instance, batch);
        if pause_reads {
            match journal(instance)?.resume_read() {
                Ok(true) => {}
                Ok(false) => break Err(anyhow::anyhow!(EventsDeleted)),
                Err(e) => break Err(anyhow::anyhow!("reading the store: {e}")),
            }
        }
        if let Err(e) = replayed_batch {
            break Err(e);
        }
    };
    if let Ok(journal) = journal(instance) {
        journal.set_session_bound(None);
    }
    outcome
}

/// Batches a whole-journal replay's reader decodes ahead of the plugin.
const READ_AHEAD: usize = 2;

/// `replay_range(instance, 0, upto, …)` with the journal read on a second thread: the
/// pinned connection moves to a reader that decodes the next batches while the plugin
/// folds the current one, and comes back, still pinned, at the end. A whole-journal replay
/// hands each session over in one batch, so a plugin has no reason to read the journal
/// meanwhile; one that does finds none attached, and the replay is done again by a fresh
/// instance on one thread.
fn replay_whole_overlapped(
    instance: &mut PluginInstance,
    plugin: &LoadedPlugin,
    config: &ServiceConfig,
    upto: i64,
) -> anyhow::Result<u64> {
    let journal = instance
        .state_mut()
        .take_journal()
        .ok_or_else(|| anyhow::anyhow!("no store is attached"))?;
    instance.state_mut().journal_missed = false;
    let (send, batches) = std::sync::mpsc::sync_channel(READ_AHEAD);
    let (reader, outcome) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut cursor = ReplayCursor::new(0, upto);
            loop {
                let next = journal.next_batch(&mut cursor, REPLAY_BATCH);
                let more = matches!(next, Ok(Some(_)));
                if send.send(next).is_err() || !more {
                    break journal;
                }
            }
        });
        let mut replayed = 0u64;
        let outcome = loop {
            match batches.recv() {
                Ok(Ok(Some(batch))) => {
                    replayed += batch.len() as u64;
                    if let Err(e) = replay_batch(instance, batch) {
                        break Err(e);
                    }
                }
                Ok(Ok(None)) => break Ok(replayed),
                Ok(Err(e)) => break Err(e),
                Err(_) => break Err(anyhow::anyhow!("the journal reader stopped")),
            }
        };
        // A reader still decoding stops at its next batch.
        drop(batches);
        (reader.join(), outcome)
    });
    let journal = reader.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    instance.state_mut().attach_journal(journal);
    if std::mem::take(&mut instance.state_mut().journal_missed) {
        tracing::info!(
            "the plugin read the journal during a whole-journal replay; replaying again on one thread"
        );
        let journal = instance
            .state_mut()
            .take_journal()
            .expect("attached just above");
        *instance = fresh_instance(plugin, journal, config)?;
        return replay_range(instance, 0, upto, Some(upto), None);
    }
    outcome
}

/// Feeds one batch to the plugin's `replay`.
fn replay_batch(instance: &mut PluginInstance, batch: EventColumns) -> anyhow::Result<()> {
    match instance.replay(batch) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(anyhow::anyhow!("replaying the journal: {e}")),
        Err(trap) => Err(trap.into()),
    }
}

/// The operator's retention as the plugin takes it: 0 (Coder's "forever") is `None`.
pub(super) fn retention_option(retention: Duration) -> Option<Duration> {
    (!retention.is_zero()).then_some(retention)
}
