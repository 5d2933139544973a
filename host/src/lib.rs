//! connlog: Coder's Connection Log as a WebAssembly component plugin.
//!
//! - [`plugin`]: loading, limiting and calling plugin components (wasmtime).
//! - [`store`]: the SQLite journal that makes accepted events durable.
//! - [`service`]: one plugin instance over one store, with transactions and recovery.

pub mod plugin;
pub mod service;
pub mod store;
