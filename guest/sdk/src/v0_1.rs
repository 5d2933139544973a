//! Contract `coder:connection-log@0.1.0` (`wit/v0.1.0`): the bindings wit-bindgen generates
//! for it, and [`Component`], which serves a [`ConnectionLogPlugin`] through them. The glue
//! converts between the contract's types and [`model`] and decides nothing.
//!
//! A later contract version gets a module of its own beside this one.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::event_columns::EventColumns;
use crate::imports::{HostClock, HostDirectory, HostJournal, HostServiceLog};
use crate::model;
use crate::plugin::ConnectionLogPlugin;

wit_bindgen::generate!({
    path: "../../wit/v0.1.0",
    world: "connection-log-plugin",
    // The export macro is used by each plugin's crate, not here.
    pub_export_macro: true,
    default_bindings_module: "connlog_plugin_sdk::v0_1",
});

/// The contract's package name, `coder:connection-log`.
pub const CONTRACT_PACKAGE: &str = env!("CONNLOG_CONTRACT_V0_1_0_NAME");
/// The contract's version, `0.1.0`, as `plugin-info.describe` reports it.
pub const CONTRACT_VERSION: &str = env!("CONNLOG_CONTRACT_V0_1_0_VERSION");

use coder::connection_log::{clock, directory, journal, service_log, types};
use exports::coder::connection_log::{
    formats, ingest, lifecycle, plugin_info, query, retention, state,
};

/// The exports of contract 0.1.0, served by plugin `P`. [`export_plugin!`](crate::export_plugin)
/// names it; a plugin never uses it directly.
pub struct Component<P>(PhantomData<P>);

thread_local! {
    // One instance serves one host store, and the host serialises calls, so a RefCell
    // suffices. `dyn Any` because a static cannot be generic: the one `P` is checked on use.
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

fn with_plugin<P: ConnectionLogPlugin, T>(f: impl FnOnce(&mut P) -> T) -> T {
    INSTANCE.with(|instance| {
        let mut instance = instance.borrow_mut();
        let plugin = instance
            .get_or_insert_with(|| Box::new(P::new()))
            .downcast_mut::<P>()
            .expect("a component serves one plugin type");
        f(plugin)
    })
}

/// The host's imports, seen through the SDK's traits.
struct WitHost;

impl HostClock for WitHost {
    fn now(&self) -> model::UnixNanos {
        clock::now()
    }
}

impl HostDirectory for WitHost {
    fn organization_by_id(&self, id: model::Uuid) -> Option<model::Organization> {
        directory::organization_by_id(uuid_to_wit(id)).map(organization_from_wit)
    }
    fn organization_by_name(&self, name: &str) -> Option<model::Organization> {
        directory::organization_by_name(name).map(organization_from_wit)
    }
    fn user_by_id(&self, id: model::Uuid) -> Option<model::User> {
        directory::user_by_id(uuid_to_wit(id)).map(user_from_wit)
    }
    fn users_by_username(&self, username: &str) -> Vec<model::User> {
        directory::users_by_username(username)
            .into_iter()
            .map(user_from_wit)
            .collect()
    }
    fn users_by_email(&self, email: &str) -> Vec<model::User> {
        directory::users_by_email(email)
            .into_iter()
            .map(user_from_wit)
            .collect()
    }
}

impl HostServiceLog for WitHost {
    fn write_service_log(&mut self, lines: Vec<model::LogLine>) {
        let lines: Vec<service_log::LogLine> = lines
            .into_iter()
            .map(|l| service_log::LogLine {
                format: log_format_to_wit(l.format),
                line: l.line,
            })
            .collect();
        service_log::write(&lines);
    }
}

impl HostJournal for WitHost {
    fn append(
        &mut self,
        events: &[model::ConnectionEvent],
    ) -> Result<Vec<bool>, model::StorageError> {
        let events: Vec<types::ConnectionEvent> =
            events.iter().cloned().map(event_to_wit).collect();
        journal::append(&events).map_err(storage_error_from_wit)
    }
    fn session_events(
        &mut self,
        keys: &[model::SessionKey],
    ) -> Result<Vec<Vec<model::ConnectionEvent>>, model::StorageError> {
        let keys: Vec<journal::SessionKey> = keys.iter().cloned().map(session_key_to_wit).collect();
        let groups = journal::session_events(&keys).map_err(storage_error_from_wit)?;
        Ok(groups
            .into_iter()
            .map(|g| g.into_iter().map(event_from_wit).collect())
            .collect())
    }
    fn forget(&mut self, origins: &[model::RowOrigin]) -> Result<u64, model::StorageError> {
        let origins: Vec<journal::RowOrigin> =
            origins.iter().cloned().map(row_origin_to_wit).collect();
        journal::forget(&origins).map_err(storage_error_from_wit)
    }
    fn write_snapshot_chunk(&mut self, chunk: &[u8]) -> Result<(), model::StorageError> {
        journal::write_snapshot_chunk(chunk).map_err(storage_error_from_wit)
    }
    fn read_snapshot_chunk(&mut self) -> Result<Option<Vec<u8>>, model::StorageError> {
        journal::read_snapshot_chunk().map_err(storage_error_from_wit)
    }
}

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
        };
        with_plugin(|p: &mut P| p.configure(config));
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
            .map_err(storage_error_to_wit)?;
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

impl<P: ConnectionLogPlugin> query::Guest for Component<P> {
    fn query(
        actor: types::Actor,
        request: query::QueryRequest,
    ) -> Result<query::Page, query::QueryError> {
        let (actor, request) = (actor_from_wit(actor), query_request_from_wit(request));
        let page = with_plugin(|p: &mut P| p.query(&WitHost, &actor, &request))
            .map_err(query_error_to_wit)?;
        Ok(query::Page {
            rows: page.rows.into_iter().map(row_to_wit).collect(),
            count: page.count,
        })
    }

    fn api_page(
        actor: types::Actor,
        request: query::QueryRequest,
    ) -> Result<String, query::QueryError> {
        let (actor, request) = (actor_from_wit(actor), query_request_from_wit(request));
        with_plugin(|p: &mut P| p.api_page(&WitHost, &actor, &request)).map_err(query_error_to_wit)
    }
}

impl<P: ConnectionLogPlugin> retention::Guest for Component<P> {
    fn set_retention(max_age: u64) {
        with_plugin(|p: &mut P| p.set_retention(max_age));
    }

    fn purge(now: i64) -> Result<retention::PurgeReport, journal::StorageError> {
        let report =
            with_plugin(|p: &mut P| p.purge(&mut WitHost, now)).map_err(storage_error_to_wit)?;
        Ok(retention::PurgeReport {
            purged: report.purged,
            cutoff: report.cutoff,
        })
    }
}

impl<P: ConnectionLogPlugin> formats::Guest for Component<P> {
    fn api_response(rows: Vec<types::ConnectionLog>, count: u64) -> String {
        let rows: Vec<model::ConnectionLog> = rows.into_iter().map(row_from_wit).collect();
        with_plugin(|p: &mut P| p.api_response(&WitHost, &rows, count))
    }

    fn api_rows(rows: Vec<types::ConnectionLog>) -> Vec<String> {
        let rows: Vec<model::ConnectionLog> = rows.into_iter().map(row_from_wit).collect();
        with_plugin(|p: &mut P| p.api_rows(&WitHost, &rows))
    }

    fn service_log_line(
        event: types::ConnectionEvent,
        format: service_log::LogFormat,
        logged_at: i64,
    ) -> String {
        let (event, format) = (event_from_wit(event), log_format_from_wit(format));
        with_plugin(|p: &mut P| p.service_log_line(&event, format, logged_at))
    }

    fn row_events(row: types::ConnectionLog) -> Vec<types::ConnectionEvent> {
        let row = row_from_wit(row);
        with_plugin(|p: &mut P| p.row_events(&row))
            .into_iter()
            .map(event_to_wit)
            .collect()
    }
}

impl<P: ConnectionLogPlugin> state::Guest for Component<P> {
    fn save_snapshot() -> Result<(), journal::StorageError> {
        with_plugin(|p: &mut P| p.save_snapshot(&mut WitHost)).map_err(storage_error_to_wit)
    }

    fn load_snapshot() -> Result<(), journal::StorageError> {
        with_plugin(|p: &mut P| p.load_snapshot(&mut WitHost)).map_err(storage_error_to_wit)
    }

    fn replay(events: types::EventColumns) -> Result<(), journal::StorageError> {
        let columns: EventColumns = columns_from_wit(events);
        let events = columns.events().map_err(storage_error_to_wit)?;
        with_plugin(|p: &mut P| p.replay(&mut WitHost, &events)).map_err(storage_error_to_wit)
    }

    fn stats() -> state::StateStats {
        let stats = with_plugin(|p: &mut P| p.stats());
        state::StateStats {
            rows: stats.rows,
            memory_bytes: stats.memory_bytes,
        }
    }
}

// ---- conversions -------------------------------------------------------------------------

use coder::connection_log::{
    directory as wit_directory, journal as wit_journal, service_log as wit_service_log,
    types as wit_types,
};
use query as wit_query;
crate::wit_model_conversions!();
