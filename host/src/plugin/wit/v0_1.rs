//! Host bindings for contract `coder:connection-log@0.1.0` (`wit/v0.1.0`, frozen): the host's
//! imports under this version's names, the plugin's exports on the host's model, and the
//! conversions of what only 0.1.0 has. Where 0.1.0 lacks what the host asks, this module
//! says what 0.1.0 meant: no settings, a retention of 0 for "forever", one generation of
//! service-log fields (its own), and a `connection-type` with a `slug-or-port` where the
//! host has a method, an app and a client session: they convert as migration 000614 does
//! ([`connlog_vocabulary::upgrade`], [`connlog_vocabulary::downgrade`]); a client session
//! id and a web terminal's app do not reach a 0.1.0 plugin.

use wasmtime::Store;
use wasmtime::component::{Component, HasSelf, Linker};

use super::{Call, ContractVersion, Exports, ExportsPre};
use crate::model;
use crate::plugin::HostState;
use crate::plugin::columns::EventColumns;

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "connection-log-plugin",
});

use coder::connection_log::{
    clock as wit_clock, directory as wit_directory, journal as wit_journal,
    service_log as wit_service_log, types as wit_types,
};
use exports::coder::connection_log::{ingest as wit_ingest, lifecycle, query as wit_query};

contract_version!(
    ConnectionLogPlugin,
    ConnectionLogPluginPre,
    env!("CONNLOG_CONTRACT_V0_1_0_VERSION")
);
common_bindings!(journal_error: StorageError, events: records);

exports_impl!(ConnectionLogPlugin, events: records {
    /// The feed came with 0.2.0.
    fn feed_rows(
        &self,
        _store: &mut Store<HostState>,
        _actor: model::Actor,
        _q: &str,
        _origins: Vec<model::RowOrigin>,
    ) -> Call<super::FeedRows> {
        Ok(None)
    }

    fn describe(&self, store: &mut Store<HostState>) -> Call<(String, String)> {
        let info = self.coder_connection_log_plugin_info().call_describe(store)?;
        Ok((info.name, info.version))
    }

    /// 0.1.0 has no settings: any given is refused here, naming none as known.
    fn configure(
        &self,
        store: &mut Store<HostState>,
        log_formats: &[model::LogFormat],
        _log_fields: model::LogFields,
        settings: &[model::Setting],
    ) -> Call<Result<(), model::SettingsError>> {
        if let Some(setting) = settings.first() {
            return Ok(Err(model::SettingsError::UnknownSetting {
                key: setting.key.clone(),
                known: Vec::new(),
            }));
        }
        let config = lifecycle::PluginConfig {
            service_log_formats: log_formats.iter().copied().map(Into::into).collect(),
        };
        self.coder_connection_log_lifecycle()
            .call_configure(store, &config)?;
        Ok(Ok(()))
    }

    /// 0.1.0 says "forever" with 0, and applies the retention as given.
    fn set_retention(
        &self,
        store: &mut Store<HostState>,
        max_age_nanos: Option<u64>,
    ) -> Call<Option<u64>> {
        self.coder_connection_log_retention()
            .call_set_retention(store, max_age_nanos.unwrap_or(0))?;
        Ok(max_age_nanos)
    }

    /// A 0.1.0 plugin writes its own generation of fields.
    fn service_log_line(
        &self,
        store: &mut Store<HostState>,
        event: model::ConnectionEvent,
        format: model::LogFormat,
        _fields: model::LogFields,
        logged_at: model::UnixNanos,
    ) -> Call<String> {
        self.coder_connection_log_formats().call_service_log_line(
            store,
            &event.into(),
            format.into(),
            logged_at,
        )
    }
});

/// A method and an app as 0.1.0's `(connection-type, slug-or-port)`.
fn downgrade(method: model::ConnectionMethod, app: Option<&str>) -> (String, Option<String>) {
    let (connection_type, slug) = connlog_vocabulary::downgrade(method, app);
    (connection_type.to_string(), slug.map(str::to_string))
}

/// 0.1.0's `(connection-type, slug-or-port)` as a method and an app.
fn upgrade(connection_type: &str, slug: Option<&str>) -> (model::ConnectionMethod, Option<String>) {
    let (method, app) = connlog_vocabulary::upgrade(connection_type, slug);
    (method, app.map(str::to_string))
}

impl From<model::ConnectionEvent> for wit_types::ConnectionEvent {
    fn from(e: model::ConnectionEvent) -> Self {
        let (connection_type, slug_or_port) =
            downgrade(e.connection_method, e.app_name_or_port.as_deref());
        event_record!(e {
            connection_type,
            slug_or_port
        })
    }
}

impl From<wit_types::ConnectionEvent> for model::ConnectionEvent {
    fn from(e: wit_types::ConnectionEvent) -> Self {
        let (connection_method, app_name_or_port) =
            upgrade(&e.connection_type, e.slug_or_port.as_deref());
        event_record!(e {
            connection_method,
            app_name_or_port,
            client_session_id: None,
        })
    }
}

impl From<model::ConnectionLog> for wit_types::ConnectionLog {
    fn from(r: model::ConnectionLog) -> Self {
        let (connection_type, slug_or_port) =
            downgrade(r.connection_method, r.app_name_or_port.as_deref());
        row_record!(r {
            connection_type,
            slug_or_port
        })
    }
}

impl From<wit_types::ConnectionLog> for model::ConnectionLog {
    fn from(r: wit_types::ConnectionLog) -> Self {
        let (connection_method, app_name_or_port) =
            upgrade(&r.connection_type, r.slug_or_port.as_deref());
        row_record!(r {
            connection_method,
            app_name_or_port,
            client_session_id: None,
        })
    }
}

/// The host's replay batch in 0.1.0's layout: each event's method and app become a type and a
/// slug (the only strings that differ), the client session id is dropped, and the flags keep
/// their bits in one byte.
impl From<EventColumns> for wit_types::EventColumns {
    fn from(c: EventColumns) -> Self {
        use crate::plugin::columns::{STRINGS, flag};
        let mut legacy = Self {
            uuids: c.uuids,
            times: c.times,
            codes: c.codes,
            flags: Vec::with_capacity(c.flags.len()),
            text: String::with_capacity(c.text.len()),
            text_ends: Vec::with_capacity(c.text_ends.len()),
        };
        let mut start = 0usize;
        for ((&bits, &method), ends) in c
            .flags
            .iter()
            .zip(&c.methods)
            .zip(c.text_ends.chunks(STRINGS))
        {
            let mut texts = [""; STRINGS];
            for (slot, &end) in texts.iter_mut().zip(ends) {
                // The host built these columns: their spans are whole.
                *slot = &c.text[start..end as usize];
                start = end as usize;
            }
            let [
                workspace,
                agent,
                ip,
                user_agent,
                app,
                reason,
                _client_session,
            ] = texts;
            let method = model::ConnectionMethod::from_index(method)
                .expect("the host writes only methods it knows");
            let app = (bits & flag::APP_NAME_OR_PORT != 0).then_some(app);
            let (connection_type, slug) = connlog_vocabulary::downgrade(method, app);
            let slug_bit = if slug.is_some() {
                flag::APP_NAME_OR_PORT
            } else {
                0
            };
            let kept = bits & !(flag::APP_NAME_OR_PORT | flag::CLIENT_SESSION_ID) | slug_bit;
            legacy
                .flags
                .push(u8::try_from(kept).expect("0.1.0's flags fit in a byte"));
            for text in [
                workspace,
                agent,
                connection_type,
                ip,
                user_agent,
                slug.unwrap_or(""),
                reason,
            ] {
                legacy.text.push_str(text);
                legacy
                    .text_ends
                    .push(u32::try_from(legacy.text.len()).expect("under 4 GiB"));
            }
        }
        legacy
    }
}

impl From<model::QueryRequest> for wit_query::QueryRequest {
    fn from(r: model::QueryRequest) -> Self {
        Self {
            q: r.q,
            limit: r.limit,
            offset: r.offset,
        }
    }
}

impl From<wit_query::QueryError> for model::QueryError {
    fn from(e: wit_query::QueryError) -> Self {
        match e {
            wit_query::QueryError::InvalidQuery(v) => {
                Self::InvalidQuery(v.into_iter().map(Into::into).collect())
            }
            wit_query::QueryError::Storage(e) => Self::Storage(e.into()),
        }
    }
}

impl From<model::StorageError> for wit_journal::StorageError {
    fn from(e: model::StorageError) -> Self {
        match e {
            model::StorageError::Unavailable(m) => Self::Unavailable(m),
            model::StorageError::Corrupt(m) => Self::Corrupt(m),
        }
    }
}

impl From<wit_journal::StorageError> for model::StorageError {
    fn from(e: wit_journal::StorageError) -> Self {
        match e {
            wit_journal::StorageError::Unavailable(m) => Self::Unavailable(m),
            wit_journal::StorageError::Corrupt(m) => Self::Corrupt(m),
        }
    }
}
