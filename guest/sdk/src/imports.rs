//! What a plugin may ask of its host, as traits. In a component these are the contract's
//! imports (`clock`, `directory`, `service-log`, `journal`); in native tests,
//! `testing::MemoryHost` (feature `testing`) implements them.

use crate::model::*;

/// The host's clock (`clock` in the contract).
pub trait HostClock {
    fn now(&self) -> UnixNanos;
}

/// Coder's `organizations` and `users` tables, read-only (`directory` in the contract).
pub trait HostDirectory {
    fn organization_by_id(&self, id: Uuid) -> Option<Organization>;
    /// Case-insensitive; deleted organizations are not found.
    fn organization_by_name(&self, name: &str) -> Option<Organization>;
    fn user_by_id(&self, id: Uuid) -> Option<User>;
    /// Case-insensitive; deleted users included, flagged.
    fn users_by_username(&self, username: &str) -> Vec<User>;
    /// Exact; deleted users included, flagged.
    fn users_by_email(&self, email: &str) -> Vec<User>;
}

/// Where the plugin's service-log lines go (`service-log` in the contract).
pub trait HostServiceLog {
    fn write_service_log(&mut self, lines: Vec<LogLine>);
}

/// The durable journal of accepted events (`journal` in the contract). Within one export
/// call the host applies every change or none: a call that returns an error is rolled back.
pub trait HostJournal {
    /// For each event: true when new, false when its ID is already stored.
    fn append(&mut self, events: &[ConnectionEvent]) -> Result<Vec<bool>, JournalError>;
    /// `append` that takes the events and hands them back, unchanged: a contract's binding
    /// can then pass their strings to the host as they are, where `append` copies each one.
    fn append_owned(
        &mut self,
        events: Vec<ConnectionEvent>,
    ) -> Result<(Vec<bool>, Vec<ConnectionEvent>), JournalError> {
        append_then_hand_back(self, events)
    }
    /// Every stored event of each session, in any order.
    fn session_events(
        &mut self,
        keys: &[SessionKey],
    ) -> Result<Vec<Vec<ConnectionEvent>>, JournalError>;
    /// Deletes the events behind these rows; returns how many events went.
    fn forget(&mut self, origins: &[RowOrigin]) -> Result<u64, JournalError>;
    fn write_snapshot_chunk(&mut self, chunk: &[u8]) -> Result<(), JournalError>;
    fn read_snapshot_chunk(&mut self) -> Result<Option<Vec<u8>>, JournalError>;
}

/// Every import at once, as a component has them.
pub trait PluginHost: HostClock + HostDirectory + HostServiceLog + HostJournal {}
impl<T: HostClock + HostDirectory + HostServiceLog + HostJournal> PluginHost for T {}

/// `HostJournal::append_owned` by way of `append`, for a host (or a contract version) that
/// copies the events anyway: append them, then hand them back.
pub(crate) fn append_then_hand_back<H: HostJournal + ?Sized>(
    host: &mut H,
    events: Vec<ConnectionEvent>,
) -> Result<(Vec<bool>, Vec<ConnectionEvent>), JournalError> {
    let fresh = host.append(&events)?;
    Ok((fresh, events))
}
