//! Host bindings for contract `coder:connection-log@0.2.0` (`wit/v0.2.0`, frozen): the
//! host's imports under this version's names, the plugin's exports on the host's model, and
//! the conversions of what 0.2.0 changed (settings, an error per interface, options, Coder's
//! connection methods), all of them shared with 0.3.0 (`since_v0_2!`). Events cross as lists
//! of records.

use wasmtime::Store;
use wasmtime::component::{Component, HasSelf, Linker};

use super::{Call, ContractVersion, Exports, ExportsPre};
use crate::model;
use crate::plugin::HostState;
use crate::plugin::columns::{EventColumns, move_columns};

wasmtime::component::bindgen!({
    path: "../wit/v0.2.0",
    world: "plugin",
});

use coder::connection_log::{
    clock as wit_clock, directory as wit_directory, journal as wit_journal,
    service_log as wit_service_log, types as wit_types,
};
use exports::coder::connection_log::{
    ingest as wit_ingest, lifecycle, query as wit_query, retention as wit_retention,
    state as wit_state,
};

since_v0_2!(
    world: Plugin,
    pre: PluginPre,
    version: env!("CONNLOG_CONTRACT_V0_2_0_VERSION"),
    events: records
);

impl From<wit_ingest::IngestError> for model::StorageError {
    fn from(e: wit_ingest::IngestError) -> Self {
        let wit_ingest::IngestError::Journal(e) = e;
        e.into()
    }
}
