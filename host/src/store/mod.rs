//! The stores. The embedded one (the default): one SQLite file in the data directory, and
//! snapshot files beside it. `postgres`: connlog's tables in a PostgreSQL database, which
//! `connlog migrate` fills from an embedded store.
//!
//! What the embedded store holds, and why that is enough (see README "Durability"):
//! - `events`: every accepted event in canonical form, once per id. Rows are a pure function
//!   of these events, so any plugin can rebuild them (replay) after a restart or a swap.
//! - `snapshots/*.snap` + `meta`: an optional snapshot of the plugin's state, valid only for
//!   the exact plugin build and journal position it records, plus `snapshot_purges`: the
//!   purges committed since it was written, which a restore from it applies again.
//! - `connlog.db-seal`: the file's identity as connlog last left it, after a clean stop or
//!   its last checkpoint (`seal`), so that the next start need not read every page to know
//!   the file is sound.

mod appended;
pub mod checkpointer;
mod inserter;
pub mod journal;
mod known_ids;
pub mod postgres;
pub mod seal;
pub mod snapshot_file;

pub use inserter::Commit;
pub use journal::{
    Expect, Includes, Journal, PendingPurge, ReplayCursor, SnapshotBytes, SnapshotInfo,
    SnapshotWrite, Sweep, WrittenSnapshot,
};

/// What a store's events table holds, in numbers two stores can be compared by (`connlog
/// migrate` checks the copy against the original with them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub events: u64,
    /// The lowest and highest `seq` held (0 when empty).
    pub first_seq: i64,
    pub last_seq: i64,
    /// Events per (connection method index, disconnect event or not), in that order.
    pub by_kind: Vec<(u8, bool, u64)>,
}
