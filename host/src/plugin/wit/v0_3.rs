//! Host bindings for contract `coder:connection-log@0.3.0` (`wit/v0.3.0`), the newest: the
//! host's imports under this version's names and the plugin's exports on the host's model.
//! What 0.3.0 changed: `ingest-batch` and `journal.append` take events as columns
//! ([`EventColumns`]), as `replay` already did, and `ingest-error` says when a batch's
//! columns do not fit together. The rest reads as in 0.2.0 (`since_v0_2!`).

use wasmtime::Store;
use wasmtime::component::{Component, HasSelf, Linker};

use super::{Call, ContractVersion, Exports, ExportsPre};
use crate::model;
use crate::plugin::HostState;
use crate::plugin::columns::{EventColumns, move_columns};

wasmtime::component::bindgen!({
    path: "../wit/v0.3.0",
    world: "connection-log",
    // Columns that do not fit together trap the plugin (`common_bindings!`).
    imports: { "coder:connection-log/journal.append": trappable },
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
    world: ConnectionLog,
    pre: ConnectionLogPre,
    version: env!("CONNLOG_CONTRACT_V0_3_0_VERSION"),
    events: columns
);

/// What a plugin appends (`common_bindings!`); the two are field for field the same.
impl From<wit_types::EventColumns> for EventColumns {
    fn from(c: wit_types::EventColumns) -> Self {
        move_columns!(c => Self)
    }
}

impl From<wit_ingest::IngestError> for model::StorageError {
    fn from(e: wit_ingest::IngestError) -> Self {
        match e {
            wit_ingest::IngestError::Journal(e) => e.into(),
            wit_ingest::IngestError::MalformedColumns(m) => {
                Self::Corrupt(format!("the plugin could not decode an ingest batch: {m}"))
            }
        }
    }
}
