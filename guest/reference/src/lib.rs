//! The reference connection-log plugin: Coder's Connection Log semantics in plain Rust.
//!
//! [`ReferencePlugin`] implements [`ConnectionLogPlugin`](connlog_plugin_sdk::ConnectionLogPlugin);
//! with the default feature `component` this crate's `cdylib` exports it as a component.
//! Another plugin may reuse it, or any of its parts (validation, merging, the filter
//! language, the row store, the formats), as a library: depend on this crate with
//! `default-features = false` and export its own plugin.

pub mod authz;
pub mod format;
pub mod merge;
pub mod plugin;
pub mod search;
pub mod store;
pub mod validate;

pub use plugin::ReferencePlugin;

#[cfg(feature = "component")]
connlog_plugin_sdk::export_plugin!(ReferencePlugin);
