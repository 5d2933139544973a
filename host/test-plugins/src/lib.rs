//! The plugins the host's tests load, as paths of components built from source (see
//! `build.rs`). Test-only: nothing shipped depends on this crate.

/// Crate `connlog-faulty-plugin`: the reference plugin, failing on marker events (a panic,
/// an endless loop, unbounded allocation, a panic in replay).
pub const FAULTY_PLUGIN: &str = env!("CONNLOG_FAULTY_PLUGIN");

/// Crate `connlog-reference-v0-1`: the reference plugin exported for contract 0.1.0.
pub const REFERENCE_V0_1_PLUGIN: &str = env!("CONNLOG_REFERENCE_V0_1_PLUGIN");

/// Crate `connlog-reference-v0-2`: the reference plugin exported for contract 0.2.0, whose
/// events cross as lists of records.
pub const REFERENCE_V0_2_PLUGIN: &str = env!("CONNLOG_REFERENCE_V0_2_PLUGIN");

/// Crate `connlog-sessionless-plugin`: deliberately wrong, it ignores the session of
/// agent-reported events, so the conformance kit must fail it.
pub const SESSIONLESS_PLUGIN: &str = env!("CONNLOG_SESSIONLESS_PLUGIN");
