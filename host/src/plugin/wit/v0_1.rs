//! Host bindings for contract `coder:connection-log@0.1.0` (`wit/v0.1.0`, frozen): the host's
//! imports under this version's names, the plugin's exports on the host's model, and the
//! conversions of what only 0.1.0 has. Where 0.1.0 lacks what the host asks, this module
//! says what 0.1.0 meant: no settings, a retention of 0 for "forever".

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
common_bindings!(journal_error: StorageError);

exports_impl!(ConnectionLogPlugin {
    fn describe(&self, store: &mut Store<HostState>) -> Call<(String, String)> {
        let info = self.coder_connection_log_plugin_info().call_describe(store)?;
        Ok((info.name, info.version))
    }

    /// 0.1.0 has no settings: any given is refused here, naming none as known.
    fn configure(
        &self,
        store: &mut Store<HostState>,
        log_formats: &[model::LogFormat],
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
});

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
