//! The reference connection-log plugin.
//!
//! Everything here is plain Rust that compiles and is tested natively. Only `component`
//! (wasm32) binds it to the WIT contract; the host sees nothing else.

pub mod appname;
pub mod authz;
pub mod event_columns;
pub mod format;
pub mod gostr;
pub mod host;
pub mod merge;
pub mod model;
pub mod plugin;
pub mod search;
pub mod store;
pub mod validate;
mod wit_conversions;

#[cfg(feature = "fault-injection")]
pub mod faults;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[cfg(target_arch = "wasm32")]
mod component;

/// The contract version this plugin implements.
pub const CONTRACT_VERSION: &str = "0.1.0";
/// This plugin's name, as `plugin-info` reports it.
pub const PLUGIN_NAME: &str = "connlog-reference";
