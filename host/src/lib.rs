//! connlog: Coder's Connection Log as a WebAssembly component plugin.
//!
//! - [`plugin`]: loading, limiting and calling plugin components (wasmtime).
//! - [`store`]: the SQLite journal that makes accepted events durable.
//! - [`service`]: one plugin instance over one store, with transactions and recovery.
//! - [`events`]: event NDJSON (and Coder service-log lines) in and out.
//! - [`export`]: every row a caller may read, a page at a time, as CSV, NDJSON or log lines.
//! - [`directory`]: `directory.json`, the stand-in for Coder's users and organizations.
//! - [`duration`]: Go durations plus `d` and `w`, for retention.
//! - [`simulate`]: a deterministic Coder deployment and its traffic.
//! - [`server`]: Coder's REST API over HTTP (`connlog serve`).
//! - [`service_log`]: `--log-json` and `--log-human`, Coder's service-log sink.
//! - [`owner`]: one process owns a data directory; [`local`]: how others reach it.
//! - [`follow`]: Coder's service-log file followed as it grows.

pub mod cli;
pub mod conformance;
pub mod directory;
pub mod duration;
pub mod events;
pub mod export;
pub mod follow;
pub mod ingest;
pub mod local;
pub mod model;
pub mod owner;
pub mod plugin;
pub mod responses;
pub mod retention;
pub mod server;
pub mod service;
pub mod service_log;
pub mod simulate;
pub mod store;
