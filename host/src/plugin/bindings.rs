//! Host bindings for contract `coder:connection-log@0.1.0`. A later contract version gets
//! its own module beside this one (as Zed does), mapped onto the same `HostState`.

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "connection-log-plugin",
});

pub use coder::connection_log::{
    directory as wit_directory, journal as wit_journal, service_log as wit_service_log,
    types as wit_types,
};
pub use exports::coder::connection_log::{ingest as wit_ingest, query as wit_query};

/// The contract this module binds; a plugin must implement the same major (for 0.x: the
/// same minor) version.
pub const CONTRACT_PACKAGE: &str = "coder:connection-log";
pub const CONTRACT_VERSION: &str = "0.1.0";

connlog_guest::wit_model_conversions!();
