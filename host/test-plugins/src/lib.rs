//! The plugins the host's tests load, as paths of components built from source (see
//! `build.rs`). Test-only: nothing shipped depends on this crate.

/// Crate `connlog-faulty-plugin`: the reference plugin, failing on marker events (a panic,
/// an endless loop, unbounded allocation, a panic in replay).
pub const FAULTY_PLUGIN: &str = env!("CONNLOG_FAULTY_PLUGIN");
