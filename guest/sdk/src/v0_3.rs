//! Contract `coder:connection-log@0.3.0` (`wit/v0.3.0`), the newest: the bindings
//! wit-bindgen generates for it, and [`Component`], which serves a [`ConnectionLogPlugin`]
//! through them. The glue converts between the contract's types and [`model`] and decides
//! nothing. [`export_plugin!`](crate::export_plugin) exports this version.
//!
//! What 0.3.0 changed: `ingest-batch` and `journal.append` take events as columns
//! ([`EventColumns`]), as `replay` already did, so that a batch crosses the boundary in a
//! few block copies. Everything else reads as in 0.2.0 (`since_v0_2!`).

use std::marker::PhantomData;

use crate::event_columns::EventColumns;
use crate::instance::with_plugin;
use crate::model;
use crate::plugin::ConnectionLogPlugin;

wit_bindgen::generate!({
    path: "../../wit/v0.3.0",
    world: "connection-log",
    // The export macro is used by each plugin's crate, not here.
    pub_export_macro: true,
    default_bindings_module: "connlog_plugin_sdk::v0_3",
    export_macro_name: "export_v0_3",
});

/// The contract's package name, `coder:connection-log`.
pub const CONTRACT_PACKAGE: &str = env!("CONNLOG_CONTRACT_V0_3_0_NAME");
/// The contract's version, `0.3.0`.
pub const CONTRACT_VERSION: &str = env!("CONNLOG_CONTRACT_V0_3_0_VERSION");

use coder::connection_log::{clock, directory, journal, service_log, types};
use exports::coder::connection_log::{
    formats, ingest, lifecycle, plugin_info, query, retention, state,
};

/// The exports of contract 0.3.0, served by plugin `P`. [`export_plugin!`](crate::export_plugin)
/// names it; a plugin never uses it directly.
pub struct Component<P>(PhantomData<P>);

crate::since_v0_2!(append: columns);

impl<P: ConnectionLogPlugin> ingest::Guest for Component<P> {
    fn ingest_batch(
        events: types::EventColumns,
    ) -> Result<Vec<ingest::EventOutcome>, ingest::IngestError> {
        let columns = columns_from_wit(events);
        // A batch that does not decode is the host's mistake; nothing of it is stored.
        let events = columns
            .events()
            .map_err(|e| ingest::IngestError::MalformedColumns(e.to_string()))?
            .into_iter()
            .map(model::EventRef::into_owned)
            .collect();
        with_plugin(|p: &mut P| p.ingest_batch(&mut WitHost, events))
            .map(outcomes_to_wit)
            .map_err(ingest_error_to_wit)
    }
}

// The events are encoded as columns, a copy, so `append_owned` is `append`.
use crate::imports::append_then_hand_back as append_owned;

/// The two are field for field the same.
fn columns_to_wit(c: EventColumns) -> types::EventColumns {
    crate::__move_columns!(c => types::EventColumns)
}
