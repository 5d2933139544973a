//! Contract `coder:connection-log@0.2.0` (`wit/v0.2.0`, frozen): the bindings wit-bindgen
//! generates for it, and [`Component`], which serves a [`ConnectionLogPlugin`] through them.
//! The glue converts between the contract's types and [`model`] and decides nothing. Events
//! cross as lists of records; everything else reads as in 0.3.0 (`since_v0_2!`). A plugin
//! exports this version with [`export_plugin_v0_2!`](crate::export_plugin_v0_2), for hosts
//! that speak only 0.1.0 and 0.2.0.

use std::marker::PhantomData;

use crate::event_columns::EventColumns;
use crate::instance::with_plugin;
use crate::model;
use crate::plugin::ConnectionLogPlugin;

wit_bindgen::generate!({
    path: "../../wit/v0.2.0",
    world: "plugin",
    // The export macro is used by each plugin's crate, not here.
    pub_export_macro: true,
    default_bindings_module: "connlog_plugin_sdk::v0_2",
    export_macro_name: "export_v0_2",
});

/// The contract's package name, `coder:connection-log`.
pub const CONTRACT_PACKAGE: &str = env!("CONNLOG_CONTRACT_V0_2_0_NAME");
/// The contract's version, `0.2.0`.
pub const CONTRACT_VERSION: &str = env!("CONNLOG_CONTRACT_V0_2_0_VERSION");

use coder::connection_log::{clock, directory, journal, service_log, types};
use exports::coder::connection_log::{
    formats, ingest, lifecycle, plugin_info, query, retention, state,
};

/// The exports of contract 0.2.0, served by plugin `P`.
/// [`export_plugin_v0_2!`](crate::export_plugin_v0_2) names it; a plugin never uses it
/// directly.
pub struct Component<P>(PhantomData<P>);

crate::since_v0_2!(append: records);

impl<P: ConnectionLogPlugin> ingest::Guest for Component<P> {
    fn ingest_batch(
        events: Vec<types::ConnectionEvent>,
    ) -> Result<Vec<ingest::EventOutcome>, ingest::IngestError> {
        let events = events.into_iter().map(event_from_wit).collect();
        with_plugin(|p: &mut P| p.ingest_batch(&mut WitHost, events))
            .map(outcomes_to_wit)
            .map_err(ingest_error_to_wit)
    }
}

/// `journal.append` without copying a string: this version's events and the model's have
/// the same fields, so the events go to the host as they are and come back unchanged.
fn append_owned(
    _: &mut WitHost,
    events: Vec<model::ConnectionEvent>,
) -> Result<(Vec<bool>, Vec<model::ConnectionEvent>), model::JournalError> {
    let events: Vec<types::ConnectionEvent> = events.into_iter().map(event_to_wit).collect();
    let fresh = journal::append(&events).map_err(journal_error_from_wit)?;
    Ok((fresh, events.into_iter().map(event_from_wit).collect()))
}
