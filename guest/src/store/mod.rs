//! The plugin's rows in memory: compact columns, interned strings and posting-list indexes,
//! so that ten million rows fit well under 1 GiB and a filtered first page with its exact
//! count takes milliseconds.

use crate::model::*;

/// All rows, ordered by `connect_time` descending then `id` descending (PRODUCT.md
/// difference 2). A row with a connection id is keyed by its session key, any other by its
/// id.
#[derive(Default)]
pub struct RowStore {}

impl RowStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        todo!("RowStore::len")
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains_session(&self, key: &SessionKey) -> bool {
        let _ = key;
        todo!("RowStore::contains_session")
    }

    /// Inserts the row, replacing the row with the same key (session key, else id).
    pub fn upsert(&mut self, row: ConnectionLog) {
        let _ = row;
        todo!("RowStore::upsert")
    }

    /// One page of the rows that pass `filter` and `visibility`, plus the exact count of all
    /// such rows. `limit` is already resolved (never 0 here).
    pub fn query(&self, filter: &Filter, visibility: &Visibility, limit: u32, offset: u32) -> (Vec<ConnectionLog>, u64) {
        let _ = (filter, visibility, limit, offset);
        todo!("RowStore::query")
    }

    /// The origins of every row whose `connect_time` is strictly before `cutoff`.
    pub fn expired(&self, cutoff: UnixNanos) -> Vec<RowOrigin> {
        let _ = cutoff;
        todo!("RowStore::expired")
    }

    /// Removes every row whose `connect_time` is strictly before `cutoff`; returns how many.
    pub fn remove_before(&mut self, cutoff: UnixNanos) -> u64 {
        let _ = cutoff;
        todo!("RowStore::remove_before")
    }

    /// Every row, newest first (tests, exports of everything).
    pub fn rows(&self) -> Vec<ConnectionLog> {
        todo!("RowStore::rows")
    }

    /// Serialises the store, calling `sink` with chunks of at most `chunk_size` bytes.
    pub fn encode(&self, chunk_size: usize, sink: &mut dyn FnMut(&[u8]) -> Result<(), StorageError>) -> Result<(), StorageError> {
        let _ = (chunk_size, sink);
        todo!("RowStore::encode")
    }

    /// Rebuilds a store from the chunks `encode` wrote. Fails on a snapshot of another
    /// format or a damaged one.
    pub fn decode(next_chunk: &mut dyn FnMut() -> Result<Option<Vec<u8>>, StorageError>) -> Result<Self, StorageError> {
        let _ = next_chunk;
        todo!("RowStore::decode")
    }

    /// Bytes of memory the rows and indexes use (an estimate from capacities).
    pub fn memory_bytes(&self) -> u64 {
        todo!("RowStore::memory_bytes")
    }
}
