//! The plugin: ingest, query, retention, formats and state, over a `PluginHost`.
//!
//! Rows are a pure function of the journal: every stored event is appended to the journal
//! first, and a session's row is recomputed from all of its journaled events with
//! [`crate::merge::session_row`] (an ongoing session's row stands in for them: it is its
//! earliest connect, which disconnects alone close in place, as `session_row` would). So the
//! order of arrival, duplicates, restarts and replays can never change a row.
//!
//! Atomicity: each call makes every fallible host call (journal) before it touches memory.
//! A storage error therefore leaves the rows exactly as they were, and the host rolls back
//! the journal calls of the failed call.

use hashbrown::HashSet;

use connlog_plugin_sdk::model::*;
use connlog_plugin_sdk::{ConnectionLogPlugin, PluginHost};

use crate::merge::{Closing, Groups};
use crate::store::{FoldBuild, RowStore, SessionSlot};
use crate::{authz, format, search, validate};

/// Snapshot chunks are at most this many bytes (1 MiB).
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// The plugin's whole state.
///
/// Only the rows are part of a snapshot. The retention and the service-log formats are
/// settings the host re-sends after every instantiation (`set-retention`, `configure`), so a
/// snapshot never overrides the operator's current configuration.
#[derive(Default)]
pub struct ReferencePlugin {
    rows: RowStore,
    retention_nanos: Option<u64>,
    log_formats: Vec<LogFormat>,
    log_fields: LogFields,
}

impl ConnectionLogPlugin for ReferencePlugin {
    const NAME: &'static str = "connlog-reference";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn new() -> Self {
        Self::default()
    }

    /// Which service-log formats and fields every stored event is written in. The reference
    /// plugin takes no settings: it keeps what Coder keeps.
    fn configure(&mut self, config: PluginConfig) -> Result<(), SettingsError> {
        connlog_plugin_sdk::refuse_any_setting(&config.settings)?;
        self.log_formats = config.service_log_formats;
        self.log_fields = config.service_log_fields;
        Ok(())
    }

    /// Validates, stores (through the journal) and merges a batch. A storage error means
    /// nothing of the batch was applied, in memory or in the journal.
    ///
    /// Outcomes, one per event in order: `Rejected` when validation refuses it (no other
    /// event is affected), `Duplicate` when its ID was already stored or appears earlier in
    /// this batch, `Stored` otherwise.
    fn ingest_batch(
        &mut self,
        host: &mut dyn PluginHost,
        events: Vec<ConnectionEvent>,
    ) -> Result<Vec<EventOutcome>, JournalError> {
        let mut outcomes = Vec::with_capacity(events.len());
        let mut candidates = Vec::with_capacity(events.len());
        let mut candidate_slots = Vec::with_capacity(events.len());
        let mut seen: HashSet<Uuid, FoldBuild> =
            HashSet::with_capacity_and_hasher(events.len(), FoldBuild);
        for event in events {
            match validate::canonicalize(event) {
                Err(validation) => outcomes.push(EventOutcome::Rejected(validation)),
                Ok(canonical) if !seen.insert(canonical.id) => {
                    outcomes.push(EventOutcome::Duplicate)
                }
                Ok(canonical) => {
                    candidate_slots.push(outcomes.len());
                    outcomes.push(EventOutcome::Stored);
                    candidates.push(canonical);
                }
            }
        }
        if candidates.is_empty() {
            return Ok(outcomes);
        }

        // Fallible host calls first.
        let (fresh, candidates) = host.append_owned(candidates)?;
        one_answer_each(fresh.len(), candidates.len(), "flags", "appended events")?;
        let mut stored = Vec::with_capacity(candidates.len());
        for ((slot, event), new) in candidate_slots.into_iter().zip(candidates).zip(fresh) {
            if new {
                stored.push(event);
            } else {
                outcomes[slot] = EventOutcome::Duplicate;
            }
        }
        let stored_refs: Vec<EventRef> = stored.iter().map(ConnectionEvent::as_event_ref).collect();
        let groups = Groups::new(&stored_refs);
        let known = self.known_sessions(host, &groups)?;
        let lines = self.service_log_lines(host, &stored);

        // Then memory, which cannot fail.
        self.merge(&groups, known);
        if !lines.is_empty() {
            host.write_service_log(lines);
        }
        Ok(outcomes)
    }

    /// One page of the rows `actor` may read that match `request.q`, newest first, with the
    /// exact count.
    ///
    /// As in Coder, `q` is parsed before authorization is applied: an invalid query is a 400
    /// for everyone, while a valid query from an actor who may read nothing is an empty
    /// page, never an error.
    fn query(
        &self,
        host: &dyn PluginHost,
        actor: &Actor,
        request: &QueryRequest,
    ) -> Result<Page, QueryError> {
        let filter =
            search::parse_filter(&request.q, actor, host).map_err(QueryError::InvalidQuery)?;
        let Some(visibility) = authz::visibility(actor) else {
            return Ok(Page {
                rows: Vec::new(),
                count: 0,
            });
        };
        let limit = request.limit.unwrap_or(DEFAULT_LIMIT);
        let (rows, count) = self.rows.query(&filter, &visibility, limit, request.offset);
        Ok(Page { rows, count })
    }

    /// As [`query`](Self::query): `q` is parsed first, so an invalid query is refused
    /// whoever asks; an actor who may read nothing gets `None` for every origin.
    fn feed_rows(
        &self,
        host: &dyn PluginHost,
        actor: &Actor,
        q: &str,
        origins: &[RowOrigin],
    ) -> Result<Vec<Option<String>>, QueryError> {
        let filter = search::parse_filter(q, actor, host).map_err(QueryError::InvalidQuery)?;
        let Some(visibility) = authz::visibility(actor) else {
            return Ok(vec![None; origins.len()]);
        };
        Ok(self
            .rows
            .rows_by_origin(&filter, &visibility, origins)
            .into_iter()
            .map(|row| row.map(|row| format::api::row_json(&row, host)))
            .collect())
    }

    /// `None` keeps rows forever. The operator's retention is applied as given.
    fn set_retention(&mut self, max_age_nanos: Option<u64>) -> Option<u64> {
        self.retention_nanos = max_age_nanos;
        max_age_nanos
    }

    /// Deletes every row whose `connect_time` is strictly before `now − retention`, all of
    /// them in one pass (Coder deletes at most 10,000 per tick), and the journal events
    /// behind them.
    fn purge(
        &mut self,
        host: &mut dyn PluginHost,
        now: UnixNanos,
    ) -> Result<PurgeReport, JournalError> {
        let Some(retention) = self.retention_nanos else {
            return Ok(PurgeReport {
                purged: 0,
                cutoff: None,
            });
        };
        let retention = i64::try_from(retention).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(retention);
        let origins = self.rows.expired(cutoff);
        if !origins.is_empty() {
            host.forget(&origins)?;
        }
        let purged = self.rows.remove_before(cutoff);
        Ok(PurgeReport {
            purged,
            cutoff: Some(cutoff),
        })
    }

    fn api_response(&self, host: &dyn PluginHost, rows: &[ConnectionLog], count: u64) -> String {
        format::api::response_json(rows, count, host)
    }

    fn api_rows(&self, host: &dyn PluginHost, rows: &[ConnectionLog]) -> Vec<String> {
        rows.iter()
            .map(|row| format::api::row_json(row, host))
            .collect()
    }

    fn service_log_line(
        &self,
        event: &ConnectionEvent,
        format: LogFormat,
        fields: LogFields,
        logged_at: UnixNanos,
    ) -> String {
        format::service_log::line(event, format, fields, logged_at)
    }

    fn row_events(&self, row: &ConnectionLog) -> Vec<ConnectionEvent> {
        format::row_events::row_events(row)
    }

    /// Writes the rows as a snapshot, in chunks of at most [`SNAPSHOT_CHUNK_BYTES`].
    fn save_snapshot(&self, host: &mut dyn PluginHost) -> Result<(), JournalError> {
        self.rows.encode(SNAPSHOT_CHUNK_BYTES, &mut |chunk| {
            host.write_snapshot_chunk(chunk)
        })
    }

    /// Replaces the rows with the snapshot. On any failure (storage, a foreign or damaged
    /// snapshot) the state is left empty, so the host can rebuild it by replaying the
    /// journal.
    fn load_snapshot(&mut self, host: &mut dyn PluginHost) -> Result<(), JournalError> {
        match RowStore::decode(&mut || host.read_snapshot_chunk()) {
            Ok(rows) => {
                self.rows = rows;
                Ok(())
            }
            Err(error) => {
                self.rows = RowStore::new();
                Err(error)
            }
        }
    }

    /// Merges events already in the journal: no append, no service log. The events are
    /// taken as the journal holds them (canonical when they were stored); any order and any
    /// split into calls gives the same rows.
    fn replay(
        &mut self,
        host: &mut dyn PluginHost,
        events: &[EventRef<'_>],
    ) -> Result<(), JournalError> {
        let groups = Groups::new(events);
        let known = self.known_sessions(host, &groups)?;
        self.merge(&groups, known);
        Ok(())
    }

    fn stats(&self) -> StateStats {
        StateStats {
            rows: self.rows.len() as u64,
            memory_bytes: self.rows.memory_bytes(),
        }
    }
}

/// What the store holds of a group's session before the group is merged.
enum Known<'g> {
    /// Nothing: a single event, or a session the store does not hold.
    Nothing,
    /// The events that fold into the session's row so far.
    Events(Vec<ConnectionEvent>),
    /// The session's ongoing row, which the group's disconnects close.
    Closes(SessionSlot, Closing<'g>),
}

impl ReferencePlugin {
    /// The retention in force, in nanoseconds; `None` keeps rows forever.
    pub fn retention(&self) -> Option<u64> {
        self.retention_nanos
    }

    /// Every row, newest first (tests and whole exports).
    pub fn rows(&self) -> Vec<ConnectionLog> {
        self.rows.rows()
    }

    /// For each group, what the store holds of its session. A new session is folded from
    /// the batch alone. An ongoing session (its row has no disconnect) is folded from its
    /// row: with no disconnect among its events the row is exactly its earliest connect, the
    /// only one of them a fold can read; a group of disconnects alone closes it in place.
    /// Only sessions already disconnected are read back from the journal (one
    /// `session_events` call for all of them).
    fn known_sessions<'g>(
        &self,
        host: &mut dyn PluginHost,
        groups: &Groups<'g>,
    ) -> Result<Vec<Known<'g>>, JournalError> {
        let mut known: Vec<Known> = (0..groups.len()).map(|_| Known::Nothing).collect();
        let mut disconnected = Vec::new();
        let mut keys = Vec::new();
        for (group, first) in groups.firsts().enumerate() {
            let Some(connection_id) = first.connection_id else {
                continue;
            };
            let found = self
                .rows
                .find_session(connection_id, first.workspace_id, first.agent_name);
            let Some(session) = found else {
                continue;
            };
            if !self.rows.is_ongoing(session) {
                disconnected.push(group);
                keys.extend(SessionKey::of(first));
            } else if let Some(closing) = groups.only_disconnects(group) {
                known[group] = Known::Closes(session, closing);
            } else {
                let row = self.rows.row_of(session);
                known[group] = Known::Events(format::row_events::row_events(&row));
            }
        }
        if keys.is_empty() {
            return Ok(known);
        }
        let answered = host.session_events(&keys)?;
        one_answer_each(answered.len(), keys.len(), "sessions", "keys")?;
        // Folding is idempotent, so the batch's own events, which the journal may already
        // hold, change nothing when merged in again.
        for (group, events) in disconnected.into_iter().zip(answered) {
            known[group] = Known::Events(events);
        }
        Ok(known)
    }

    /// Upserts the row of every group, or closes it. Cannot fail.
    fn merge(&mut self, groups: &Groups, known: Vec<Known>) {
        for (group, known) in known.into_iter().enumerate() {
            match known {
                Known::Nothing => self.rows.upsert(groups.row(group, &[])),
                Known::Events(events) => {
                    let events: Vec<EventRef> =
                        events.iter().map(ConnectionEvent::as_event_ref).collect();
                    self.rows.upsert(groups.row(group, &events));
                }
                Known::Closes(session, closing) => self.rows.close(session, &closing),
            }
        }
    }

    /// One line per stored event in each configured format, with the configured fields,
    /// stamped with the host's clock.
    fn service_log_lines(&self, host: &dyn PluginHost, stored: &[ConnectionEvent]) -> Vec<LogLine> {
        if self.log_formats.is_empty() || stored.is_empty() {
            return Vec::new();
        }
        let now = host.now();
        let mut lines = Vec::with_capacity(stored.len() * self.log_formats.len());
        for event in stored {
            for &format in &self.log_formats {
                lines.push(LogLine {
                    format,
                    line: format::service_log::line(event, format, self.log_fields, now),
                });
            }
        }
        lines
    }
}

/// The journal answers once per item asked about; any other count means it is broken.
fn one_answer_each(
    answered: usize,
    asked: usize,
    answers: &str,
    items: &str,
) -> Result<(), JournalError> {
    if answered == asked {
        return Ok(());
    }
    Err(JournalError::Unavailable(format!(
        "journal answered {answered} {answers} for {asked} {items}"
    )))
}
