//! Loading and running plugin components.
//!
//! - [`PluginHost`] (`engine`): one wasmtime `Engine` (components, epoch interruption), the
//!   `Linker` with our imports, the compiled-component cache, and the epoch ticker thread.
//! - [`LoadedPlugin`] (`load`): a compiled component, type-checked (`InstancePre`) against
//!   the contract version it implements, one of those this host speaks.
//! - [`PluginInstance`] (`instance`): one `Store` + instance. Every call gets a deadline and
//!   runs under the memory cap; after a trap the instance refuses further calls and must be
//!   rebuilt.
//! - [`HostState`] (`host_state`): what each `Store` carries, and what the imports do, in
//!   the host's own types; `wit` binds them, and the plugin's exports, to each contract
//!   version.

mod cache;
mod columns;
mod engine;
mod host_state;
mod instance;
mod limiter;
mod load;
mod wit;

use std::time::Duration;

pub use cache::ComponentCache;
pub use columns::EventColumns;
pub use engine::PluginHost;
pub use host_state::{Clock, HostState, NoServiceLog, ServiceLogSink};
pub use instance::{PluginInstance, StorageResult};
pub use load::{Embedded, LoadedPlugin, PluginSource, PluginSpec};
pub use wit::CONTRACT_PACKAGE;

/// What each instance may use.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The most linear memory the instance may hold, in bytes (all its memories together;
    /// the reference plugin has one).
    pub memory_bytes: usize,
    pub max_instances: usize,
    /// How long one call into the plugin may run before it is interrupted.
    pub call_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 2 << 30,
            max_instances: 16,
            call_deadline: Duration::from_secs(60),
        }
    }
}

/// The plugin's own account of itself (`plugin-info.describe`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    /// The contract version it implements, read off its exports.
    pub contract_version: &'static str,
}

/// Why a plugin could not be loaded, or why a call into it failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read plugin {source_name}: {reason}")]
    Unreadable { source_name: String, reason: String },
    #[error("{source_name} is not a connection-log plugin: {reason}")]
    NotAPlugin { source_name: String, reason: String },
    #[error(
        "{source_name} implements contract {CONTRACT_PACKAGE}@{found}, but this host supports only {}",
        wit::supported_list()
    )]
    IncompatibleContract { source_name: String, found: String },
    /// The plugin's own message; it never quotes a setting's value. Boxed: a rare error
    /// should not make every `Result` carrying a `PluginError` larger.
    #[error("{source_name} refused its settings: {error}")]
    SettingsRefused {
        source_name: String,
        error: Box<crate::model::SettingsError>,
    },
    #[error("plugin call `{call}` failed: {kind}: {detail}")]
    Trapped {
        call: &'static str,
        kind: TrapKind,
        detail: String,
    },
    #[error("the plugin instance is unusable after an earlier failure; it must be rebuilt")]
    Poisoned,
}

/// What went wrong inside a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapKind {
    /// The guest panicked (a Rust panic aborts to `unreachable`).
    Panic,
    /// The call ran past its deadline.
    Deadline,
    /// The guest asked for more memory than its cap.
    MemoryLimit,
    /// Any other trap.
    Other,
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrapKind::Panic => "the plugin panicked",
            TrapKind::Deadline => "the plugin ran past its deadline",
            TrapKind::MemoryLimit => "the plugin exceeded its memory limit",
            TrapKind::Other => "the plugin trapped",
        })
    }
}
