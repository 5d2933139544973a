//! The embedded store: one SQLite file in the data directory.
//!
//! What it holds, and why that is enough (see README "Durability"):
//! - `events`: every accepted event in canonical form, once per id. Rows are a pure function
//!   of these events, so any plugin can rebuild them (replay) after a restart or a swap.
//! - `snapshot_chunks` + `meta`: an optional snapshot of the plugin's state, valid only for
//!   the exact plugin build and journal position it records.

pub mod journal;

pub use journal::{Journal, SnapshotInfo};
