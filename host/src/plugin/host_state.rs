//! The data every plugin `Store` carries, and what the contract's imports do, in the host's
//! own types. Each contract version's bindings (`wit/`) answer its imports by converting
//! their arguments and calling these methods, so every version behaves the same.

use std::sync::Arc;

use super::Limits;
use super::limiter::MemoryLimiter;
use crate::directory::Lookup;
use crate::model::{self, LogLine};
use crate::store::Journal;

/// Where `connection_log` service-log lines go (stderr, a file, …).
pub trait ServiceLogSink: Send + Sync {
    fn write(&self, lines: &[LogLine]);
}

/// A sink that drops every line.
pub struct NoServiceLog;

impl ServiceLogSink for NoServiceLog {
    fn write(&self, _lines: &[LogLine]) {}
}

/// The host's wall clock, or a fixed instant for reproducible output.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    System,
    Fixed(model::UnixNanos),
}

impl Clock {
    pub fn now(&self) -> model::UnixNanos {
        match self {
            Clock::System => {
                let since_epoch = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX)
            }
            Clock::Fixed(t) => *t,
        }
    }
}

pub struct HostState {
    pub(crate) limiter: MemoryLimiter,
    /// `None` only in the probe instance that reads `plugin-info` at load time.
    pub(crate) journal: Option<Journal>,
    pub(crate) directory: Arc<dyn Lookup + Send + Sync>,
    pub(crate) clock: Clock,
    /// Lines written during the current call; flushed only once its transaction commits,
    /// so no line describes an event that was not stored.
    pub(crate) pending_log: Vec<LogLine>,
    /// While set, `journal.forget` deletes nothing and reports 0: a restore applying a
    /// recorded purge again, whose events are already gone (and whose session keys may
    /// since have been reused by newer events that must stay).
    pub ignore_forget: bool,
    /// Set when an import needed the journal while none was attached (it was lent to the
    /// reader of an overlapped whole-journal replay, which then replays again with it).
    pub journal_missed: bool,
}

impl HostState {
    pub fn new(
        journal: Option<Journal>,
        directory: Arc<dyn Lookup + Send + Sync>,
        clock: Clock,
        limits: &Limits,
    ) -> Self {
        Self {
            limiter: MemoryLimiter::new(limits),
            journal,
            directory,
            clock,
            pending_log: Vec::new(),
            ignore_forget: false,
            journal_missed: false,
        }
    }

    /// The instance's linear memory, in bytes.
    pub fn linear_memory_bytes(&self) -> usize {
        self.limiter.linear_memory_bytes()
    }

    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    pub fn take_journal(&mut self) -> Option<Journal> {
        self.journal.take()
    }

    fn journal_mut(&mut self) -> Result<&mut Journal, model::StorageError> {
        self.journal_missed |= self.journal.is_none();
        self.journal.as_mut().ok_or_else(|| {
            model::StorageError::Unavailable("no store is attached to this instance".into())
        })
    }

    /// Attaches the journal again (after `take_journal`).
    pub fn attach_journal(&mut self, journal: Journal) {
        self.journal = Some(journal);
    }

    // ----- what the imports do -----

    /// `clock.now`.
    pub(super) fn clock_now(&self) -> model::UnixNanos {
        self.clock.now()
    }

    /// `directory.organization-by-id`.
    pub(super) fn directory_organization_by_id(
        &self,
        id: model::Uuid,
    ) -> Option<model::Organization> {
        self.directory.organization_by_id(id)
    }

    /// `directory.organization-by-name`.
    pub(super) fn directory_organization_by_name(&self, name: &str) -> Option<model::Organization> {
        self.directory.organization_by_name(name)
    }

    /// `directory.user-by-id`.
    pub(super) fn directory_user_by_id(&self, id: model::Uuid) -> Option<model::User> {
        self.directory.user_by_id(id)
    }

    /// `directory.users-by-username`.
    pub(super) fn directory_users_by_username(&self, username: &str) -> Vec<model::User> {
        self.directory.users_by_username(username)
    }

    /// `directory.users-by-email`.
    pub(super) fn directory_users_by_email(&self, email: &str) -> Vec<model::User> {
        self.directory.users_by_email(email)
    }

    /// `service-log.write`: held until the call's transaction commits.
    pub(super) fn service_log_write(&mut self, lines: impl IntoIterator<Item = LogLine>) {
        self.pending_log.extend(lines);
    }

    /// `journal.append`.
    pub(super) fn journal_append(
        &mut self,
        events: Vec<model::ConnectionEvent>,
    ) -> Result<Vec<bool>, model::StorageError> {
        self.journal_mut()?.append(events)
    }

    /// `journal.session-events`.
    pub(super) fn journal_session_events(
        &mut self,
        keys: &[model::SessionKey],
    ) -> Result<Vec<Vec<model::ConnectionEvent>>, model::StorageError> {
        self.journal_mut()?.session_events(keys)
    }

    /// `journal.forget`.
    pub(super) fn journal_forget(
        &mut self,
        origins: &[model::RowOrigin],
    ) -> Result<u64, model::StorageError> {
        if self.ignore_forget {
            return Ok(0);
        }
        self.journal_mut()?.forget(origins)
    }

    /// `journal.write-snapshot-chunk`.
    pub(super) fn journal_write_snapshot_chunk(
        &mut self,
        chunk: &[u8],
    ) -> Result<(), model::StorageError> {
        self.journal_mut()?.write_snapshot_chunk(chunk)
    }

    /// `journal.read-snapshot-chunk`.
    pub(super) fn journal_read_snapshot_chunk(
        &mut self,
    ) -> Result<Option<Vec<u8>>, model::StorageError> {
        self.journal_mut()?.read_snapshot_chunk()
    }
}
