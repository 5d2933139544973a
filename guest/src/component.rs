//! The WIT binding: converts between the contract's types and `model`, and routes every
//! export to the one `Plugin` this instance holds. Nothing here decides anything.

use std::cell::RefCell;

use crate::host::{Clock, Directory, Journal, ServiceLog};
use crate::model;
use crate::plugin::Plugin;

wit_bindgen::generate!({
    path: "../wit/v0.1.0",
    world: "connection-log-plugin",
});

use coder::connection_log::{clock, directory, journal, service_log, types};
use exports::coder::connection_log::{
    formats, ingest, lifecycle, plugin_info, query, retention, state,
};

thread_local! {
    // One instance serves one host store; the host serialises calls, so a RefCell suffices.
    static PLUGIN: RefCell<Plugin> = RefCell::new(Plugin::new());
}

fn with_plugin<T>(f: impl FnOnce(&mut Plugin) -> T) -> T {
    PLUGIN.with(|plugin| f(&mut plugin.borrow_mut()))
}

struct Component;
export!(Component);

/// The host's imports, seen through the traits the plugin logic is written against.
struct WitHost;

impl Clock for WitHost {
    fn now(&self) -> model::UnixNanos {
        clock::now()
    }
}

impl Directory for WitHost {
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

impl ServiceLog for WitHost {
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

impl Journal for WitHost {
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

impl plugin_info::Guest for Component {
    fn describe() -> plugin_info::Info {
        plugin_info::Info {
            name: crate::PLUGIN_NAME.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            contract_version: crate::CONTRACT_VERSION.to_string(),
        }
    }
}

impl lifecycle::Guest for Component {
    fn configure(config: lifecycle::PluginConfig) {
        let formats = config
            .service_log_formats
            .into_iter()
            .map(log_format_from_wit)
            .collect();
        with_plugin(|p| p.configure(formats));
    }
}

impl ingest::Guest for Component {
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
        let outcomes =
            with_plugin(|p| p.ingest_batch(&mut WitHost, events)).map_err(storage_error_to_wit)?;
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

impl query::Guest for Component {
    fn query(
        actor: types::Actor,
        request: query::QueryRequest,
    ) -> Result<query::Page, query::QueryError> {
        let (actor, request) = (actor_from_wit(actor), query_request_from_wit(request));
        let page =
            with_plugin(|p| p.query(&WitHost, &actor, &request)).map_err(query_error_to_wit)?;
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
        with_plugin(|p| p.api_page(&WitHost, &actor, &request)).map_err(query_error_to_wit)
    }
}

impl retention::Guest for Component {
    fn set_retention(max_age: u64) {
        with_plugin(|p| p.set_retention(max_age));
    }

    fn purge(now: i64) -> Result<retention::PurgeReport, journal::StorageError> {
        let report = with_plugin(|p| p.purge(&mut WitHost, now)).map_err(storage_error_to_wit)?;
        Ok(retention::PurgeReport {
            purged: report.purged,
            cutoff: report.cutoff,
        })
    }
}

impl formats::Guest for Component {
    fn api_response(rows: Vec<types::ConnectionLog>, count: u64) -> String {
        let rows: Vec<model::ConnectionLog> = rows.into_iter().map(row_from_wit).collect();
        crate::format::api::response_json(&rows, count, &WitHost)
    }

    fn api_rows(rows: Vec<types::ConnectionLog>) -> Vec<String> {
        rows.into_iter()
            .map(|r| crate::format::api::row_json(&row_from_wit(r), &WitHost))
            .collect()
    }

    fn service_log_line(
        event: types::ConnectionEvent,
        format: service_log::LogFormat,
        logged_at: i64,
    ) -> String {
        crate::format::service_log::line(
            &event_from_wit(event),
            log_format_from_wit(format),
            logged_at,
        )
    }

    fn row_events(row: types::ConnectionLog) -> Vec<types::ConnectionEvent> {
        crate::format::row_events::row_events(&row_from_wit(row))
            .into_iter()
            .map(event_to_wit)
            .collect()
    }
}

impl state::Guest for Component {
    fn save_snapshot() -> Result<(), journal::StorageError> {
        with_plugin(|p| p.save_snapshot(&mut WitHost)).map_err(storage_error_to_wit)
    }

    fn load_snapshot() -> Result<(), journal::StorageError> {
        with_plugin(|p| p.load_snapshot(&mut WitHost)).map_err(storage_error_to_wit)
    }

    fn replay(events: types::EventColumns) -> Result<(), journal::StorageError> {
        let batch = columns_from_wit(events);
        with_plugin(|p| p.replay(&mut WitHost, &batch)).map_err(storage_error_to_wit)
    }

    fn stats() -> state::StateStats {
        let stats = with_plugin(|p| p.stats());
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
