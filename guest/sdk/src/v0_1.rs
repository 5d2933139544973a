//! Contract `coder:connection-log@0.1.0` (`wit/v0.1.0`, frozen): the bindings wit-bindgen
//! generates for it, and [`Component`], which serves a [`ConnectionLogPlugin`] through them.
//! The glue converts between the contract's types and [`model`] and decides nothing; where
//! 0.1.0 lacks what the plugin trait has, it fills in what 0.1.0 meant:
//!
//! - no settings: [`ConnectionLogPlugin::configure`] gets none;
//! - a limit or retention of 0 meant "the default" and "forever": they become `None`;
//! - one error type for everything: a query's `Failed` becomes `storage(unavailable)`;
//! - a `connection-type` and a `slug-or-port` instead of a method, an app and a client
//!   session: they convert as migration 000614 does
//!   ([`connlog_vocabulary::upgrade`] and [`connlog_vocabulary::downgrade`]);
//! - one generation of service-log fields: the older one.
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

crate::wit_host_imports!(append: records);
crate::wit_formats_export!(service_log_fields: model::LogFields::Seed);
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
            service_log_fields: model::LogFields::Seed,
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
        let columns = columns_from_wit(events).map_err(journal_error_to_wit)?;
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

/// A 0.1.0 `(connection-type, slug-or-port)` as a method and an app.
fn upgrade(connection_type: &str, slug: Option<&str>) -> (model::ConnectionMethod, Option<String>) {
    let (method, app) = connlog_vocabulary::upgrade(connection_type, slug);
    (method, app.map(str::to_string))
}

/// A method and an app as a 0.1.0 `(connection-type, slug-or-port)`.
fn downgrade(method: model::ConnectionMethod, app: Option<&str>) -> (String, Option<String>) {
    let (connection_type, slug) = connlog_vocabulary::downgrade(method, app);
    (connection_type.to_string(), slug.map(str::to_string))
}

pub(crate) fn event_to_wit(e: model::ConnectionEvent) -> types::ConnectionEvent {
    let (connection_type, slug_or_port) =
        downgrade(e.connection_method, e.app_name_or_port.as_deref());
    crate::__event_record!(types::ConnectionEvent, e, uuid: uuid_to_wit, status: status_to_wit {
        connection_type,
        slug_or_port,
    })
}

pub(crate) fn event_from_wit(e: types::ConnectionEvent) -> model::ConnectionEvent {
    let (connection_method, app_name_or_port) =
        upgrade(&e.connection_type, e.slug_or_port.as_deref());
    crate::__event_record!(model::ConnectionEvent, e, uuid: uuid_from_wit, status: status_from_wit {
        connection_method,
        app_name_or_port,
        client_session_id: None,
    })
}

// `append_owned` is `append`, which copies: an event through this version and back would
// lose what 0.1.0 cannot say, such as its client session id.
use crate::imports::append_then_hand_back as append_owned;

pub(crate) fn row_to_wit(r: model::ConnectionLog) -> types::ConnectionLog {
    let (connection_type, slug_or_port) =
        downgrade(r.connection_method, r.app_name_or_port.as_deref());
    crate::__row_record!(types::ConnectionLog, r, uuid: uuid_to_wit {
        connection_type,
        slug_or_port,
    })
}

pub(crate) fn row_from_wit(r: types::ConnectionLog) -> model::ConnectionLog {
    let (connection_method, app_name_or_port) =
        upgrade(&r.connection_type, r.slug_or_port.as_deref());
    crate::__row_record!(model::ConnectionLog, r, uuid: uuid_from_wit {
        connection_method,
        app_name_or_port,
        client_session_id: None,
    })
}

/// 0.1.0's replay layout as the current one: each event's type and slug become a method and
/// an app (the only strings that differ), and the flags widen, keeping their bits.
fn columns_from_wit(c: types::EventColumns) -> Result<EventColumns, model::JournalError> {
    /// 0.1.0's strings per event: workspace name, agent name, type, ip, user agent, slug or
    /// port, disconnect reason.
    const STRINGS: usize = 7;
    const SLUG_OR_PORT: u8 = 1 << 4;
    let n = c.times.len();
    if c.flags.len() != n || c.text_ends.len() != n * STRINGS {
        return Err(model::JournalError::Corrupt(format!(
            "replay batch: {} flags and {} text ends for {n} events",
            c.flags.len(),
            c.text_ends.len()
        )));
    }
    let mut upgraded = EventColumns {
        uuids: c.uuids,
        times: c.times,
        codes: c.codes,
        flags: Vec::with_capacity(n),
        methods: Vec::with_capacity(n),
        text: String::with_capacity(c.text.len()),
        text_ends: Vec::with_capacity(n * STRINGS),
    };
    let mut start = 0usize;
    for (i, (&bits, ends)) in c.flags.iter().zip(c.text_ends.chunks(STRINGS)).enumerate() {
        let mut texts = [""; STRINGS];
        for (slot, &end) in texts.iter_mut().zip(ends) {
            *slot = c.text.get(start..end as usize).ok_or_else(|| {
                model::JournalError::Corrupt(format!("replay batch: event {i}: bad text span"))
            })?;
            start = end as usize;
        }
        let [
            workspace,
            agent,
            connection_type,
            ip,
            user_agent,
            slug,
            reason,
        ] = texts;
        let slug = (bits & SLUG_OR_PORT != 0).then_some(slug);
        let (method, app) = connlog_vocabulary::upgrade(connection_type, slug);
        let app_bit = if app.is_some() { SLUG_OR_PORT } else { 0 };
        upgraded
            .flags
            .push(u16::from(bits & !SLUG_OR_PORT | app_bit));
        upgraded.methods.push(method.index());
        for text in [
            workspace,
            agent,
            ip,
            user_agent,
            app.unwrap_or(""),
            reason,
            "",
        ] {
            upgraded.text.push_str(text);
            upgraded.text_ends.push(upgraded.text.len() as u32);
        }
    }
    Ok(upgraded)
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
