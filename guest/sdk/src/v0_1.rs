//! Contract `coder:connection-log@0.1.0` (`wit/v0.1.0`, frozen): the bindings wit-bindgen
//! generates for it, and [`Component`], which serves a [`ConnectionLogPlugin`] through them.
//! The glue converts between the contract's types and [`model`] and decides nothing; where
//! 0.1.0 lacks what the plugin trait has, it fills in what 0.1.0 meant:
//!
//! - no settings: [`ConnectionLogPlugin::configure`] gets none;
//! - a limit or retention of 0 meant "the default" and "forever": they become `None`;
//! - one error type for everything: a query's `Failed` becomes `storage(unavailable)`.
//!
//! A plugin exports this version with [`export_plugin_v0_1!`](crate::export_plugin_v0_1),
//! for hosts that speak only 0.1.0.

use std::marker::PhantomData;

use crate::event_columns::EventColumns;
use crate::instance::with_plugin;
use crate::model;
use crate::plugin::ConnectionLogPlugin;

wit_bindgen::generate!({
    path: "../../wit/v0.1.0",
    world: "connection-log-plugin",
    // The export macro is used by each plugin's crate, not here.
    pub_export_macro: true,
    default_bindings_module: "connlog_plugin_sdk::v0_1",
    export_macro_name: "export_v0_1",
});

/// The contract's package name, `coder:connection-log`.
pub const CONTRACT_PACKAGE: &str = env!("CONNLOG_CONTRACT_V0_1_0_NAME");
/// The contract's version, `0.1.0`, as `plugin-info.describe` reports it.
pub const CONTRACT_VERSION: &str = env!("CONNLOG_CONTRACT_V0_1_0_VERSION");

use coder::connection_log::{clock, directory, journal, service_log, types};
use exports::coder::connection_log::{
    formats, ingest, lifecycle, plugin_info, query, retention, state,
};

/// The exports of contract 0.1.0, served by plugin `P`.
/// [`export_plugin_v0_1!`](crate::export_plugin_v0_1) names it; a plugin never uses it
/// directly.
pub struct Component<P>(PhantomData<P>);

crate::wit_host_imports!();
crate::wit_formats_export!();
crate::wit_query_export!();

impl<P: ConnectionLogPlugin> plugin_info::Guest for Component<P> {
    fn describe() -> plugin_info::Info {
        plugin_info::Info {
            name: P::NAME.to_string(),
            version: P::VERSION.to_string(),
            contract_version: CONTRACT_VERSION.to_string(),
        }
    }
}

impl<P: ConnectionLogPlugin> lifecycle::Guest for Component<P> {
    fn configure(config: lifecycle::PluginConfig) {
        let config = model::PluginConfig {
            service_log_formats: config
                .service_log_formats
                .into_iter()
                .map(log_format_from_wit)
                .collect(),
            settings: Vec::new(),
        };
        // 0.1.0's `configure` cannot fail; a plugin that refuses to run without settings
        // can only trap, which the host reports as a failed load.
        if let Err(e) = with_plugin(|p: &mut P| p.configure(config)) {
            panic!("the plugin refuses to run without settings: {e}");
        }
    }
}

impl<P: ConnectionLogPlugin> ingest::Guest for Component<P> {
    fn ingest_event(
        event: types::ConnectionEvent,
    ) -> Result<ingest::EventOutcome, journal::StorageError> {
        let mut outcomes = Self::ingest_batch(vec![event])?;
        Ok(outcomes.pop().expect("one outcome per event"))
    }

    fn ingest_batch(
        events: Vec<types::ConnectionEvent>,
    ) -> Result<Vec<ingest::EventOutcome>, journal::StorageError> {
        let events = events.into_iter().map(event_from_wit).collect();
        let outcomes = with_plugin(|p: &mut P| p.ingest_batch(&mut WitHost, events))
            .map_err(journal_error_to_wit)?;
        Ok(outcomes
            .into_iter()
            .map(|o| match o {
                model::EventOutcome::Stored => ingest::EventOutcome::Stored,
                model::EventOutcome::Duplicate => ingest::EventOutcome::Duplicate,
                model::EventOutcome::Rejected(v) => {
                    ingest::EventOutcome::Rejected(validation_to_wit(v))
                }
            })
            .collect())
    }
}

impl<P: ConnectionLogPlugin> retention::Guest for Component<P> {
    fn set_retention(max_age: u64) {
        let max_age = (max_age != 0).then_some(max_age);
        with_plugin(|p: &mut P| p.set_retention(max_age));
    }

    fn purge(now: i64) -> Result<retention::PurgeReport, journal::StorageError> {
        let report =
            with_plugin(|p: &mut P| p.purge(&mut WitHost, now)).map_err(journal_error_to_wit)?;
        Ok(retention::PurgeReport {
            purged: report.purged,
            cutoff: report.cutoff,
        })
    }
}

impl<P: ConnectionLogPlugin> state::Guest for Component<P> {
    fn save_snapshot() -> Result<(), journal::StorageError> {
        with_plugin(|p: &mut P| p.save_snapshot(&mut WitHost)).map_err(journal_error_to_wit)
    }

    fn load_snapshot() -> Result<(), journal::StorageError> {
        with_plugin(|p: &mut P| p.load_snapshot(&mut WitHost)).map_err(journal_error_to_wit)
    }

    fn replay(events: types::EventColumns) -> Result<(), journal::StorageError> {
        let columns: EventColumns = columns_from_wit(events);
        let events = columns.events().map_err(journal_error_to_wit)?;
        with_plugin(|p: &mut P| p.replay(&mut WitHost, &events)).map_err(journal_error_to_wit)
    }

    fn stats() -> state::StateStats {
        let stats = with_plugin(|p: &mut P| p.stats());
        state::StateStats {
            rows: stats.rows,
            memory_bytes: stats.memory_bytes,
        }
    }
}

// ---- conversions of what only 0.1.0 has ---------------------------------------------------

fn query_request_from_wit(r: query::QueryRequest) -> model::QueryRequest {
    model::QueryRequest {
        q: r.q,
        limit: (r.limit != 0).then_some(r.limit),
        offset: r.offset,
    }
}

fn query_error_to_wit(e: model::QueryError) -> query::QueryError {
    match e {
        model::QueryError::InvalidQuery(v) => {
            query::QueryError::InvalidQuery(v.into_iter().map(validation_to_wit).collect())
        }
        model::QueryError::Failed(m) => {
            query::QueryError::Storage(journal::StorageError::Unavailable(m))
        }
    }
}

fn journal_error_to_wit(e: model::JournalError) -> journal::StorageError {
    match e {
        model::JournalError::Unavailable(m) => journal::StorageError::Unavailable(m),
        model::JournalError::Corrupt(m) => journal::StorageError::Corrupt(m),
    }
}

fn journal_error_from_wit(e: journal::StorageError) -> model::JournalError {
    match e {
        journal::StorageError::Unavailable(m) => model::JournalError::Unavailable(m),
        journal::StorageError::Corrupt(m) => model::JournalError::Corrupt(m),
    }
}

use coder::connection_log::{
    directory as wit_directory, journal as wit_journal, service_log as wit_service_log,
    types as wit_types,
};
crate::wit_model_conversions!();
