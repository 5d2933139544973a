//! The plugin: ingest, query, retention and state, over a `Host`.

use crate::host::{Directory, Host};
use crate::model::*;
use crate::store::RowStore;

/// The plugin's whole state.
#[derive(Default)]
pub struct Plugin {
    rows: RowStore,
    retention_nanos: u64,
    log_formats: Vec<LogFormat>,
}

impl Plugin {
    pub fn new() -> Self {
        Self::default()
    }

    /// Which service-log formats every stored event is written in.
    pub fn configure(&mut self, log_formats: Vec<LogFormat>) {
        self.log_formats = log_formats;
    }

    /// Validates, stores (through the journal) and merges a batch. A storage error means
    /// nothing of the batch was applied, in memory or in the journal.
    pub fn ingest_batch(&mut self, host: &mut dyn Host, events: Vec<ConnectionEvent>) -> Result<Vec<EventOutcome>, StorageError> {
        let _ = (host, events);
        todo!("Plugin::ingest_batch")
    }

    pub fn query(&self, directory: &dyn Directory, actor: &Actor, request: &QueryRequest) -> Result<Page, QueryError> {
        let _ = (directory, actor, request);
        todo!("Plugin::query")
    }

    /// 0 keeps rows forever.
    pub fn set_retention(&mut self, max_age_nanos: u64) {
        self.retention_nanos = max_age_nanos;
    }

    pub fn purge(&mut self, host: &mut dyn Host, now: UnixNanos) -> Result<PurgeReport, StorageError> {
        let _ = (host, now);
        todo!("Plugin::purge")
    }

    pub fn save_snapshot(&self, host: &mut dyn Host) -> Result<(), StorageError> {
        let _ = host;
        todo!("Plugin::save_snapshot")
    }

    pub fn load_snapshot(&mut self, host: &mut dyn Host) -> Result<(), StorageError> {
        let _ = host;
        todo!("Plugin::load_snapshot")
    }

    /// Merges events already in the journal: no append, no service log.
    pub fn replay(&mut self, host: &mut dyn Host, events: Vec<ConnectionEvent>) -> Result<(), StorageError> {
        let _ = (host, events);
        todo!("Plugin::replay")
    }

    pub fn stats(&self) -> StateStats {
        StateStats { rows: self.rows.len() as u64, memory_bytes: self.rows.memory_bytes() }
    }
}
