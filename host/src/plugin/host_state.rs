//! The data every plugin `Store` carries, and the host side of the contract's imports.

use std::sync::Arc;

use super::Limits;
use super::limiter::MemoryLimiter;
use super::wit::v0_1::*;
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

    fn journal_mut(&mut self) -> Result<&mut Journal, wit_journal::StorageError> {
        self.journal.as_mut().ok_or_else(|| {
            wit_journal::StorageError::Unavailable("no store is attached to this instance".into())
        })
    }
}

impl wit_types::Host for HostState {}

impl coder::connection_log::clock::Host for HostState {
    fn now(&mut self) -> wit_types::UnixNanos {
        self.clock.now()
    }
}

impl wit_directory::Host for HostState {
    fn organization_by_id(&mut self, id: wit_types::Uuid) -> Option<wit_directory::Organization> {
        self.directory.organization_by_id(id.into()).map(Into::into)
    }

    fn organization_by_name(&mut self, name: String) -> Option<wit_directory::Organization> {
        self.directory.organization_by_name(&name).map(Into::into)
    }

    fn user_by_id(&mut self, id: wit_types::Uuid) -> Option<wit_directory::User> {
        self.directory.user_by_id(id.into()).map(Into::into)
    }

    fn users_by_username(&mut self, username: String) -> Vec<wit_directory::User> {
        self.directory
            .users_by_username(&username)
            .into_iter()
            .map(Into::into)
            .collect()
    }

    fn users_by_email(&mut self, email: String) -> Vec<wit_directory::User> {
        self.directory
            .users_by_email(&email)
            .into_iter()
            .map(Into::into)
            .collect()
    }
}

impl wit_service_log::Host for HostState {
    fn write(&mut self, lines: Vec<wit_service_log::LogLine>) {
        self.pending_log.extend(lines.into_iter().map(|l| LogLine {
            format: l.format.into(),
            line: l.line,
        }));
    }
}

impl wit_journal::Host for HostState {
    fn append(
        &mut self,
        events: Vec<wit_types::ConnectionEvent>,
    ) -> Result<Vec<bool>, wit_journal::StorageError> {
        let events: Vec<model::ConnectionEvent> = events.into_iter().map(Into::into).collect();
        self.journal_mut()?.append(&events).map_err(Into::into)
    }

    fn session_events(
        &mut self,
        keys: Vec<wit_journal::SessionKey>,
    ) -> Result<Vec<Vec<wit_types::ConnectionEvent>>, wit_journal::StorageError> {
        let keys: Vec<model::SessionKey> = keys.into_iter().map(Into::into).collect();
        let groups = self
            .journal_mut()?
            .session_events(&keys)
            .map_err(wit_journal::StorageError::from)?;
        Ok(groups
            .into_iter()
            .map(|g| g.into_iter().map(Into::into).collect())
            .collect())
    }

    fn forget(
        &mut self,
        origins: Vec<wit_journal::RowOrigin>,
    ) -> Result<u64, wit_journal::StorageError> {
        if self.ignore_forget {
            return Ok(0);
        }
        let origins: Vec<model::RowOrigin> = origins.into_iter().map(Into::into).collect();
        self.journal_mut()?.forget(&origins).map_err(Into::into)
    }

    fn write_snapshot_chunk(&mut self, chunk: Vec<u8>) -> Result<(), wit_journal::StorageError> {
        self.journal_mut()?
            .write_snapshot_chunk(&chunk)
            .map_err(Into::into)
    }

    fn read_snapshot_chunk(&mut self) -> Result<Option<Vec<u8>>, wit_journal::StorageError> {
        self.journal_mut()?
            .read_snapshot_chunk()
            .map_err(Into::into)
    }
}
