//! The calls that run the plugin under the service: each mutating one (ingest, purge, a
//! snapshot) in one journal transaction that commits only if the call succeeded, and a trap
//! in any call answered by rebuilding the instance from the store.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::restore::{bring_up_error, replay_range};
use super::{ConnLog, ServiceError, background, snapshot};
use crate::model::{
    self, Actor, ConnectionEvent, EventOutcome, LogFormat, LogLine, Page, QueryError, QueryRequest,
};
use crate::plugin::{PluginError, PluginInstance};
use crate::store::{Commit, Expect, Includes, Journal, SnapshotInfo};

/// A write transaction longer than this is logged with where its time went.
const SLOW_TRANSACTION: Duration = Duration::from_millis(100);

impl ConnLog {
    /// Validates, stores and merges a batch. When this returns `Ok`, every `Stored` event
    /// is durable.
    pub fn ingest(
        &mut self,
        events: Vec<ConnectionEvent>,
    ) -> Result<Vec<EventOutcome>, ServiceError> {
        self.ingest_group(vec![events])
            .pop()
            .expect("one answer per batch")
    }

    /// Stores several batches under one commit, and so one fsync: what group commit
    /// (`IngestQueue`) gathers from concurrent callers. Each batch runs in a savepoint of
    /// its own, so a batch that fails, fails alone: when the plugin traps, the batches
    /// before it are committed, the instance is rebuilt, and the batches after it go on in
    /// a new transaction. One answer per batch, in order; an `Ok` batch is durable.
    pub fn ingest_group(&mut self, batches: Vec<Vec<ConnectionEvent>>) -> Vec<BatchAnswer> {
        let answers = self.ingest_group_queued(batches);
        // A failed commit is in the answers; settling it rebuilds the instance.
        let _ = self.settle();
        answers.wait()
    }

    /// `ingest_group`, leaving the group's commit queued on the journal's inserter, so that
    /// the service can merge the next group while this one is made durable: the answers
    /// are final once `GroupAnswers::wait` returns, which needs no hold on the service.
    /// Anything else the service does waits for the commit first (`ConnLog::settle`).
    pub fn ingest_group_queued(&mut self, batches: Vec<Vec<ConnectionEvent>>) -> GroupAnswers {
        let mut answers: Vec<Option<BatchAnswer>> = std::iter::repeat_with(|| None)
            .take(batches.len())
            .collect();
        let mut rest: VecDeque<(usize, Vec<ConnectionEvent>)> =
            batches.into_iter().enumerate().collect();
        // Set only by the last round: a commit is queued once every batch has run.
        let mut queued = None;
        while let Some(&(first, _)) = rest.front() {
            match self.begin_ingest() {
                Ok(started) => queued = self.store_batches(&mut rest, &mut answers, started),
                Err(e) => {
                    // Nothing of the group ran: the first batch gets the error, and the
                    // others try again on their own.
                    rest.pop_front();
                    answers[first] = Some(Err(e));
                }
            }
        }
        if queued.is_none() {
            // What was queued before is settled before the service is let go, as by every
            // hold of it (`IngestQueue` counts on that).
            self.settled();
        }
        let answers: Vec<BatchAnswer> = answers
            .into_iter()
            .map(|a| a.expect("every batch is answered"))
            .collect();
        let stored = |answer: &BatchAnswer| {
            answer
                .iter()
                .flatten()
                .filter(|o| matches!(o, EventOutcome::Stored))
                .count() as u64
        };
        self.unsnapshotted += answers.iter().map(stored).sum::<u64>();
        if let (Some(pending), Some((_, slots))) = (self.queued.as_mut(), &queued) {
            pending.stored = slots.iter().map(|&slot| stored(&answers[slot])).sum();
        }
        self.writer.ingested();
        self.snapshot_if_due();
        self.answer_writer();
        GroupAnswers { answers, queued }
    }

    /// Inside an open write transaction: runs the batches of `rest`, each in a savepoint,
    /// until they are done or one traps, then commits what succeeded. An ingest group's
    /// commit is queued, unless the instance must be rebuilt after it: the commit, and the
    /// slots of the batches it holds.
    fn store_batches(
        &mut self,
        rest: &mut VecDeque<(usize, Vec<ConnectionEvent>)>,
        answers: &mut [Option<BatchAnswer>],
        started: Started,
    ) -> Option<(Arc<Commit>, Vec<usize>)> {
        let mut stored = Vec::new();
        // The batch whose failure left the instance to be rebuilt.
        let mut rebuild = None;
        while let Some((slot, events)) = rest.pop_front() {
            let log_mark = self.instance.state().pending_log.len();
            let outcome = match self.journal().and_then(|j| storage(j.savepoint())) {
                Ok(()) => self.instance.ingest_batch(events),
                Err(e) => {
                    answers[slot] = Some(Err(e));
                    continue;
                }
            };
            let failure = match outcome {
                Ok(Ok(outcomes)) => {
                    match self.journal().and_then(|j| storage(j.release_savepoint())) {
                        Ok(()) => {
                            stored.push((slot, outcomes));
                            continue;
                        }
                        // The plugin's memory holds the batch that the store refused.
                        Err(e) => {
                            rebuild = Some(slot);
                            e
                        }
                    }
                }
                Ok(Err(storage)) => ServiceError::Storage(storage),
                Err(trap) => {
                    rebuild = Some(slot);
                    ServiceError::Plugin(trap)
                }
            };
            self.instance.state_mut().pending_log.truncate(log_mark);
            answers[slot] = Some(Err(failure));
            if let Err(e) = self
                .journal()
                .and_then(|j| storage(j.rollback_to_savepoint()))
            {
                // What the batch wrote cannot be told apart: none of the group is kept.
                self.abandon_write(stored, answers, &e);
                return None;
            }
            if rebuild.is_some() {
                break;
            }
        }
        let batches = stored.len() as u64;
        // One commit is queued at a time: the one before this group's is settled first (by
        // now, with this group merged meanwhile, it is nearly always durable).
        if let Err(e) = self.settle() {
            // It failed, and the rebuild that followed dropped this group, merged behind it.
            fail_stored(stored, answers, &e);
            return None;
        }
        let committed = if rebuild.is_none() && started.through_inserter {
            self.queue_ingest_commit(batches).map(Some)
        } else {
            self.commit_write(started).map(|()| None)
        };
        match committed {
            Ok(queued) => {
                if queued.is_none() {
                    self.count_commit(batches);
                }
                let slots = stored.iter().map(|&(slot, _)| slot).collect();
                for (slot, outcomes) in stored {
                    answers[slot] = Some(Ok(outcomes));
                }
                if let Some(slot) = rebuild
                    && let Err(e) = self.rebuild()
                {
                    // The next call tries again (`attach_store`); the failed batch says why
                    // the instance is down.
                    answers[slot] = Some(Err(e));
                }
                queued.map(|commit| (commit, slots))
            }
            Err(e) => {
                self.abandon_write(stored, answers, &e);
                None
            }
        }
    }

    /// Queues the open ingest group's commit (the one before it settled).
    fn queue_ingest_commit(&mut self, batches: u64) -> Result<Arc<Commit>, ServiceError> {
        let commit = self.journal()?.queue_commit();
        let log = std::mem::take(&mut self.instance.state_mut().pending_log);
        self.queued = Some(QueuedCommit {
            commit: commit.clone(),
            log,
            batches,
            stored: 0,
        });
        Ok(commit)
    }

    /// Learns the outcome of the queued ingest commit, if there is one. A failed one leaves
    /// the instance ahead of the store, so it is rebuilt.
    fn settle(&mut self) -> Result<(), ServiceError> {
        match self.await_queued() {
            Some(Err(e)) => {
                self.rebuild()?;
                Err(ServiceError::Storage(e))
            }
            _ => Ok(()),
        }
    }

    /// `settle`, before anything the service does but merging the next ingest group
    /// (`service::lock`, `instance`, `open_write`), so that nothing is read, saved or sent
    /// that is not durable yet. A failure is for the queued group's callers to report.
    pub(super) fn settled(&mut self) {
        if let Err(e) = self.settle() {
            tracing::warn!(error = %e, "an ingest group's commit failed");
        }
    }

    /// `settled`, if the queued ingest commit is durable (or failed) by now.
    pub(super) fn settled_if_done(&mut self) {
        if self.queued.as_ref().is_some_and(|q| q.commit.is_done()) {
            self.settled();
        }
    }

    /// Waits for the queued ingest commit, if there is one, and on success does what
    /// `commit_write` does after a commit. Returns its outcome.
    pub(super) fn await_queued(&mut self) -> Option<Result<i64, model::StorageError>> {
        let queued = self.queued.take()?;
        let outcome = queued.commit.wait();
        if let Ok(journal) = self.journal() {
            journal.settle_commit(&outcome);
        }
        if let Ok(head) = outcome {
            self.count_commit(queued.batches);
            self.after_commit(head, queued.log, true);
        }
        Some(outcome)
    }

    fn count_commit(&mut self, batches: u64) {
        if batches > 0 {
            self.counters.ingest_commits += 1;
            self.counters.ingest_batches += batches;
        }
    }

    /// Gives every batch of `stored` the error, and rebuilds the instance, whose memory
    /// holds what the store did not keep.
    fn abandon_write(
        &mut self,
        stored: Vec<(usize, Vec<EventOutcome>)>,
        answers: &mut [Option<BatchAnswer>],
        error: &ServiceError,
    ) {
        fail_stored(stored, answers, error);
        let _ = self.rebuild();
    }

    pub fn query(
        &mut self,
        actor: Actor,
        request: QueryRequest,
    ) -> Result<Result<Page, QueryError>, ServiceError> {
        let outcome = self.instance()?.query(actor, request);
        self.recover_if_trapped(outcome)
    }

    /// Coder's response body for a page the caller already holds.
    pub fn api_response(&mut self, page: Page) -> Result<String, ServiceError> {
        let outcome = self.instance()?.api_response(page);
        self.recover_if_trapped(outcome)
    }

    /// A page as Coder's `GET /api/v2/connectionlog` body, in one plugin call.
    pub fn api_page(
        &mut self,
        actor: Actor,
        request: QueryRequest,
    ) -> Result<Result<String, QueryError>, ServiceError> {
        let outcome = self.instance()?.api_page(actor, request);
        self.recover_if_trapped(outcome)
    }

    pub fn api_rows(
        &mut self,
        rows: Vec<model::ConnectionLog>,
    ) -> Result<Vec<String>, ServiceError> {
        let outcome = self.instance()?.api_rows(rows);
        self.recover_if_trapped(outcome)
    }

    pub fn row_events(
        &mut self,
        row: model::ConnectionLog,
    ) -> Result<Vec<ConnectionEvent>, ServiceError> {
        let outcome = self.instance()?.row_events(row);
        self.recover_if_trapped(outcome)
    }

    pub fn service_log_line(
        &mut self,
        event: ConnectionEvent,
        format: LogFormat,
        fields: model::LogFields,
        logged_at: model::UnixNanos,
    ) -> Result<String, ServiceError> {
        let outcome = self
            .instance()?
            .service_log_line(event, format, fields, logged_at);
        self.recover_if_trapped(outcome)
    }

    /// Applies retention as of `now`: rows and their events are gone from memory and from
    /// the journal.
    ///
    /// One short transaction deletes the rows' events (`secure_delete` zeroes their bytes)
    /// and records the purge as pending for the stored snapshot, which still holds the
    /// rows. The background writer then writes a snapshot without them, zeroes the old
    /// file, and checkpoints and truncates the WAL, so no copy of them stays on disk; until
    /// then a restart applies the recorded purge again.
    pub fn purge(&mut self, now: model::UnixNanos) -> Result<model::PurgeReport, ServiceError> {
        self.purge_at(now, true)
    }

    /// `purge`; with `rewrite` off (a slice of a larger purge) the snapshot rewrite it
    /// needs is left owed, and the next purge with `rewrite` on asks for it.
    fn purge_at(
        &mut self,
        now: model::UnixNanos,
        rewrite: bool,
    ) -> Result<model::PurgeReport, ServiceError> {
        let started = Instant::now();
        self.attach_store()?;
        self.journal_mut()?.take_forgotten();
        let report = self.in_transaction(|instance| {
            let report = match instance.purge(now)? {
                Ok(report) => report,
                Err(e) => return Ok(Err(e)),
            };
            let journal = instance
                .state()
                .journal()
                .expect("in_transaction attaches the store");
            let (deleted, max_deleted_seq) = journal.forgotten();
            if let Some(cutoff) = report.cutoff
                && (deleted > 0 || report.purged > 0)
                && let Err(e) = journal.record_purge(cutoff, max_deleted_seq)
            {
                return Ok(Err(e));
            }
            Ok(Ok(report))
        });
        let report = match report {
            Ok(report) => report,
            Err(e) => {
                self.note_purge_time(started);
                return Err(e);
            }
        };
        // With no retention in force (the operator's is off and the plugin has none)
        // nothing was purged, and nothing is counted.
        if report.cutoff.is_some() {
            let forgotten = self.journal_mut()?.take_forgotten();
            self.counters.purges_run += 1;
            self.counters.rows_purged += report.purged;
            self.compaction.purged += report.purged;
            self.counters.events_purged += forgotten;
            if forgotten > 0 || report.purged > 0 {
                self.purge_generation += 1;
                self.rewrite_owed = true;
            }
            self.note_purge_time(started);
        }
        if rewrite && std::mem::take(&mut self.rewrite_owed) {
            self.writer.request(background::Work {
                snapshot: self.snapshot_policy.rewrite_after_purge,
                checkpoint: true,
                sweep: true,
                ..Default::default()
            });
        }
        Ok(report)
    }

    fn note_purge_time(&mut self, started: Instant) {
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counters.last_purge_locked_us = us;
        self.counters.max_purge_locked_us = self.counters.max_purge_locked_us.max(us);
    }

    /// `purge` as of the service's clock.
    pub fn purge_now(&mut self) -> Result<model::PurgeReport, ServiceError> {
        let now = self.now();
        self.purge(now)
    }

    /// The cutoff `purge_with(now, retention)` would apply: `now` minus the retention the
    /// plugin applies (that one, or shorter by the plugin's own); `None` when none applies.
    pub fn purge_cutoff(
        &mut self,
        now: model::UnixNanos,
        retention: Duration,
    ) -> Result<Option<model::UnixNanos>, ServiceError> {
        let applied = self.apply_retention(retention)?;
        if retention != self.config.retention {
            self.apply_retention(self.config.retention)?;
        }
        Ok(applied.map(|r| now.saturating_sub(i64::try_from(r.as_nanos()).unwrap_or(i64::MAX))))
    }

    /// `purge(now)` with this retention for this purge only; the service keeps its own (an
    /// operator's one-off `connlog purge --retention`).
    pub fn purge_with(
        &mut self,
        now: model::UnixNanos,
        retention: Duration,
    ) -> Result<model::PurgeReport, ServiceError> {
        self.purge_with_at(now, retention, true)
    }

    /// Purges exactly the rows connected before `cutoff`: one slice of a large purge
    /// (`retention::purge`). As a restore applies a recorded purge again: with a retention
    /// of 1 ns, `purge(cutoff + 1)` uses exactly `cutoff`. The snapshot rewrite waits for
    /// the purge's last hold (`purge_with`), so that one rewrite follows the whole pass
    /// instead of several competing with it for the disk.
    pub fn purge_before(
        &mut self,
        cutoff: model::UnixNanos,
    ) -> Result<model::PurgeReport, ServiceError> {
        self.purge_with_at(cutoff.saturating_add(1), Duration::from_nanos(1), false)
    }

    fn purge_with_at(
        &mut self,
        now: model::UnixNanos,
        retention: Duration,
        rewrite: bool,
    ) -> Result<model::PurgeReport, ServiceError> {
        if retention == self.config.retention {
            return self.purge_at(now, rewrite);
        }
        self.apply_retention(retention)?;
        let report = self.purge_at(now, rewrite);
        self.apply_retention(self.config.retention)?;
        report
    }

    /// Where a slice of the `rows` oldest rows connected before `cutoff` ends: just after
    /// the connect time of the `rows`-th oldest, as a site owner's query sees them (exact
    /// counts, pages by connect time). `None` when at most `rows` are that old, or when the
    /// plugin cannot tell (it refuses the filter): then one purge takes them all.
    pub fn purge_slice_end(
        &mut self,
        cutoff: model::UnixNanos,
        rows: u32,
    ) -> Result<Option<model::UnixNanos>, ServiceError> {
        let q = format!(
            "connected_before:\"{}\"",
            crate::events::format_time(cutoff.saturating_sub(1))
        );
        let mut page = |offset| {
            let request = QueryRequest {
                q: q.clone(),
                limit: 1,
                offset,
            };
            self.query(crate::directory::site_owner(), request)
                .map(Result::ok)
        };
        let Some(older) = page(0)? else {
            return Ok(None);
        };
        let Some(offset) = older
            .count
            .checked_sub(u64::from(rows))
            .filter(|&offset| offset > 0)
            .and_then(|offset| u32::try_from(offset).ok())
        else {
            return Ok(None);
        };
        let last = page(offset)?.and_then(|p| p.rows.into_iter().next());
        Ok(last
            .map(|row| row.connect_time.saturating_add(1))
            .filter(|&end| end < cutoff))
    }

    /// Gives the instance this retention; returns the one the plugin applies.
    fn apply_retention(&mut self, retention: Duration) -> Result<Option<Duration>, ServiceError> {
        let outcome = self
            .instance()?
            .set_retention(super::restore::retention_option(retention));
        self.recover_if_trapped(outcome)
    }

    /// The operator's retention (0: forever).
    pub fn retention(&self) -> Duration {
        self.config.retention
    }

    pub fn set_retention(&mut self, retention: Duration) -> Result<(), ServiceError> {
        self.config.retention = retention;
        self.writer
            .set_source(self.plugin.clone(), self.config.clone());
        self.apply_retention(retention).map(|_applied| ())
    }

    pub fn stats(&mut self) -> Result<model::StateStats, ServiceError> {
        let outcome = self.instance()?.stats();
        self.recover_if_trapped(outcome)
    }

    /// The plugin's linear memory: its state with the allocator's slack and whatever else
    /// the guest holds, the figure its memory cap (`--plugin-memory-mib`) bounds.
    pub fn plugin_linear_memory_bytes(&mut self) -> Result<u64, ServiceError> {
        Ok(self.instance()?.state().linear_memory_bytes() as u64)
    }

    /// Writes the plugin's state as the stored snapshot, now, under the caller's hold of
    /// the service: into a new file, then one small transaction records it (this plugin
    /// build, the position it covers: `merged_upto`) and drops the pending purges, which
    /// the running plugin has all applied. The file it replaces is zeroed and removed in
    /// the background (at once on shutdown).
    pub fn save_snapshot(&mut self) -> Result<SnapshotInfo, ServiceError> {
        let rows = self.stats()?.rows;
        let digest = self.plugin.digest.clone();
        let last_seq = self.merged_upto;
        let written = match snapshot::write_file(&mut self.instance, &digest, rows, last_seq) {
            Ok(written) => written,
            Err(trap @ ServiceError::Plugin(_)) => {
                self.rebuild()?;
                return Err(trap);
            }
            Err(e) => return Err(e),
        };
        let info = written.info.clone();
        self.journal()?
            .replace_snapshot(written, Expect::Anything, Includes::AllPurges)
            .map_err(ServiceError::Storage)?;
        self.absorb_background();
        self.snapshot_upto = last_seq;
        self.unsnapshotted = 0;
        self.writer.note_saved(info.bytes);
        self.writer.request(background::Work {
            sweep: true,
            ..Default::default()
        });
        tracing::info!(
            rows = info.rows,
            bytes = info.bytes,
            last_seq = info.last_seq,
            "snapshot saved"
        );
        Ok(info)
    }

    /// Runs a mutating call in one transaction; commits on success, rolls back otherwise.
    fn in_transaction<T>(
        &mut self,
        call: impl FnOnce(&mut PluginInstance) -> Result<Result<T, model::StorageError>, PluginError>,
    ) -> Result<T, ServiceError> {
        let started = self.begin_write()?;
        match call(&mut self.instance) {
            Ok(Ok(value)) => match self.commit_write(started) {
                Ok(()) => Ok(value),
                Err(e) => {
                    // The plugin's memory already holds what the disk refused.
                    self.rebuild()?;
                    Err(e)
                }
            },
            Ok(Err(storage)) => {
                self.journal()?.rollback();
                self.instance.state_mut().pending_log.clear();
                Err(ServiceError::Storage(storage))
            }
            Err(trap) => {
                self.rebuild()?;
                Err(ServiceError::Plugin(trap))
            }
        }
    }

    /// Opens the write transaction. Events another writer committed since the instance
    /// last merged are merged first, in the same transaction, so that `merged_upto` stays
    /// exact.
    pub(super) fn begin_write(&mut self) -> Result<Started, ServiceError> {
        self.open_write(false)
    }

    /// `begin_write` for an ingest group: its inserts run on the journal's inserter thread
    /// while the plugin merges (`Journal::begin_ingest`). Not on a replica, whose commit
    /// first pushes the group's rows to the shared store by reading them back.
    fn begin_ingest(&mut self) -> Result<Started, ServiceError> {
        self.open_write(self.upstream.is_none())
    }

    fn open_write(&mut self, through_inserter: bool) -> Result<Started, ServiceError> {
        // An ingest group may open behind a queued commit; nothing else does.
        if !through_inserter {
            self.settled();
        }
        self.attach_store()?;
        // Behind it, the inserter checks instead that no other writer came in between.
        let foreign = self.queued.is_none();
        let at = Instant::now();
        // Each write transaction starts its own list of the rows a replica must delete.
        let replica = self.upstream.is_some();
        let journal = self.journal_mut()?;
        journal.keep_forgotten_rows(replica);
        let begun = if through_inserter {
            journal.begin_ingest()
        } else {
            journal.begin()
        };
        begun.map_err(ServiceError::Storage)?;
        let waited = at.elapsed();
        if foreign {
            self.merge_foreign_events()?;
        }
        Ok(Started {
            at,
            waited,
            through_inserter,
        })
    }

    /// Commits the write transaction (durable once this returns `Ok`), moves `merged_upto`
    /// to what it holds, and only then writes the service-log lines of its calls.
    pub(super) fn commit_write(&mut self, started: Started) -> Result<(), ServiceError> {
        let called = started.at.elapsed();
        let journal = self
            .instance
            .state_mut()
            .journal
            .as_mut()
            .ok_or_else(no_store)?;
        let head = journal.last_seq().map_err(ServiceError::Storage)?;
        // A replica's events are durable in the shared store before they are here.
        if let Some(upstream) = &mut self.upstream {
            upstream
                .push(journal, self.merged_upto, head)
                .map_err(ServiceError::Storage)?;
        }
        journal.commit().map_err(ServiceError::Storage)?;
        if let Some(upstream) = &mut self.upstream {
            upstream.committed();
        }
        let log = std::mem::take(&mut self.instance.state_mut().pending_log);
        self.after_commit(head, log, started.through_inserter);
        let took = started.at.elapsed();
        if took > SLOW_TRANSACTION {
            tracing::info!(
                waited_for_write_lock_ms = started.waited.as_millis() as u64,
                call_ms = (called - started.waited).as_millis() as u64,
                commit_ms = (took - called).as_millis() as u64,
                "a slow write transaction"
            );
        }
        Ok(())
    }

    /// After a commit that left the journal's head at `head`: the instance has merged up
    /// to there, and the service-log lines of its calls are written only now.
    fn after_commit(&mut self, head: i64, log: Vec<LogLine>, through_inserter: bool) {
        // SQLite checkpoints the WAL into the file inside a commit when the WAL has grown
        // (an ingest group's commit only past `BACKSTOP_PAGES`: the checkpointer copies
        // its frames, and seals the file after).
        self.seal.refresh();
        if through_inserter {
            self.checkpointer.nudge();
        }
        self.set_merged_upto(head);
        if !log.is_empty() {
            self.config.service_log.write(&log);
        }
    }

    /// Inside the write transaction (so no one appends meanwhile): replays into the
    /// instance the events with `seq > merged_upto`, which another writer committed.
    fn merge_foreign_events(&mut self) -> Result<(), ServiceError> {
        let head = match self.journal()?.last_seq() {
            Ok(head) => head,
            Err(e) => {
                self.journal()?.rollback();
                return Err(ServiceError::Storage(e));
            }
        };
        if head <= self.merged_upto {
            return Ok(());
        }
        match replay_range(&mut self.instance, self.merged_upto, head, None, None) {
            Ok(merged) => {
                tracing::info!(
                    events = merged,
                    from = self.merged_upto,
                    to = head,
                    "merged events another writer appended to the journal"
                );
                self.set_merged_upto(head);
                self.unsnapshotted += merged;
                Ok(())
            }
            Err(e) => {
                // What a partial replay left in the instance is thrown away with it.
                self.rebuild()?;
                Err(bring_up_error(e))
            }
        }
    }

    pub(super) fn recover_if_trapped<T>(
        &mut self,
        outcome: Result<T, PluginError>,
    ) -> Result<T, ServiceError> {
        match outcome {
            Ok(value) => Ok(value),
            Err(error) => {
                if self.instance.is_poisoned() {
                    self.rebuild()?;
                }
                Err(ServiceError::Plugin(error))
            }
        }
    }

    /// The instance, with its store attached, once the queued ingest commit is settled.
    pub(super) fn instance(&mut self) -> Result<&mut PluginInstance, ServiceError> {
        self.settled();
        self.attach_store()?;
        Ok(&mut self.instance)
    }

    /// A rebuild that failed leaves the instance without its store (and possibly ahead of
    /// it): every call retries the rebuild first.
    fn attach_store(&mut self) -> Result<(), ServiceError> {
        if self.instance.state().journal().is_none() {
            self.rebuild()?;
        }
        Ok(())
    }

    pub(super) fn journal(&self) -> Result<&Journal, ServiceError> {
        self.instance.state().journal().ok_or_else(no_store)
    }

    fn journal_mut(&mut self) -> Result<&mut Journal, ServiceError> {
        self.instance
            .state_mut()
            .journal
            .as_mut()
            .ok_or_else(no_store)
    }
}

/// Gives every batch of `stored` the error: the store did not keep them.
fn fail_stored(
    stored: Vec<(usize, Vec<EventOutcome>)>,
    answers: &mut [Option<BatchAnswer>],
    error: &ServiceError,
) {
    let storage = match error {
        ServiceError::Storage(e) => e.clone(),
        other => model::StorageError::Unavailable(other.to_string()),
    };
    for (slot, _) in stored {
        answers[slot] = Some(Err(ServiceError::Storage(storage.clone())));
    }
}

/// One batch's answer from `ConnLog::ingest_group`.
pub type BatchAnswer = Result<Vec<EventOutcome>, ServiceError>;

/// `ConnLog::ingest_group_queued`'s answers: final, but for the batches of a queued
/// commit, which fail with it.
pub struct GroupAnswers {
    answers: Vec<BatchAnswer>,
    queued: Option<(Arc<Commit>, Vec<usize>)>,
}

impl GroupAnswers {
    /// The answers once the queued commit is durable, or failed.
    pub fn wait(mut self) -> Vec<BatchAnswer> {
        if let Some((commit, slots)) = self.queued
            && let Err(e) = commit.wait()
        {
            for slot in slots {
                self.answers[slot] = Err(ServiceError::Storage(e.clone()));
            }
        }
        self.answers
    }
}

/// An ingest group's commit, queued on the journal's inserter (`ingest_group_queued`), and
/// what the service does once it is durable.
pub(super) struct QueuedCommit {
    commit: Arc<Commit>,
    /// The service-log lines of the group's calls.
    log: Vec<LogLine>,
    batches: u64,
    /// The events the group stored, which `merged_upto` counts only once the commit is
    /// durable (`ConnLog::uncovered_since`).
    pub(super) stored: u64,
}

/// When a write transaction began, how long it waited for SQLite's write lock, and
/// whether it is an ingest group on the journal's inserter.
#[derive(Clone, Copy)]
pub(super) struct Started {
    at: Instant,
    waited: Duration,
    through_inserter: bool,
}

fn storage<T>(outcome: Result<T, model::StorageError>) -> Result<T, ServiceError> {
    outcome.map_err(ServiceError::Storage)
}

pub(super) fn no_store() -> ServiceError {
    ServiceError::Storage(model::StorageError::Unavailable("no store attached".into()))
}
