//! What the plugin needs from its host, as traits. In the component these are WIT imports
//! (`component.rs`); natively, tests and benchmarks implement them directly.

use crate::model::*;

pub trait Clock {
    fn now(&self) -> UnixNanos;
}

/// Coder's `organizations` and `users` tables, read-only.
pub trait Directory {
    fn organization_by_id(&self, id: Uuid) -> Option<Organization>;
    /// Case-insensitive; deleted organizations are not found.
    fn organization_by_name(&self, name: &str) -> Option<Organization>;
    fn user_by_id(&self, id: Uuid) -> Option<User>;
    /// Case-insensitive; deleted users included, flagged.
    fn users_by_username(&self, username: &str) -> Vec<User>;
    /// Exact; deleted users included, flagged.
    fn users_by_email(&self, email: &str) -> Vec<User>;
}

pub trait ServiceLog {
    fn write_service_log(&mut self, lines: Vec<LogLine>);
}

/// The durable journal of accepted events (see `journal` in the WIT).
pub trait Journal {
    /// For each event: true when new, false when its ID is already stored.
    fn append(&mut self, events: &[ConnectionEvent]) -> Result<Vec<bool>, StorageError>;
    /// Every stored event of each session, in any order.
    fn session_events(
        &mut self,
        keys: &[SessionKey],
    ) -> Result<Vec<Vec<ConnectionEvent>>, StorageError>;
    /// Deletes the events behind these rows; returns how many events went.
    fn forget(&mut self, origins: &[RowOrigin]) -> Result<u64, StorageError>;
    fn write_snapshot_chunk(&mut self, chunk: &[u8]) -> Result<(), StorageError>;
    fn read_snapshot_chunk(&mut self) -> Result<Option<Vec<u8>>, StorageError>;
}

/// Everything at once, as the component's imports provide it.
pub trait Host: Clock + Directory + ServiceLog + Journal {}
impl<T: Clock + Directory + ServiceLog + Journal> Host for T {}
