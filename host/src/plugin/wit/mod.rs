//! The host's bindings, one module per contract version (as Zed does with `since_v0_x`):
//! each holds its `bindgen!`, the conversions between its generated types and the host's
//! [`model`], and its implementation of [`Exports`], so that the rest of the host names no
//! generated type and no version.
//!
//! What has not changed between versions is written once, as macros (`common.rs`) that
//! each version's module expands.

#[macro_use]
mod common;
#[macro_use]
mod since_v0_2;
pub mod v0_1;
pub mod v0_2;
pub mod v0_3;

use wasmtime::Store;
use wasmtime::component::{Component, Linker};

use crate::model;
use crate::plugin::columns::EventColumns;
use crate::plugin::host_state::HostState;

/// What a call into the plugin returns: `Err` is a trap, which poisons the instance.
pub type Call<T> = wasmtime::Result<T>;

/// What `feed-rows` answers: per origin, the row's API JSON or `None`; `None` as a whole when
/// the contract version has no feed (0.1.0).
pub type FeedRows = Option<Result<Vec<Option<String>>, model::QueryError>>;

/// A plugin's exports on the host's own types, whatever contract version it implements.
pub trait Exports: Send + Sync {
    /// The plugin's name and version.
    fn describe(&self, store: &mut Store<HostState>) -> Call<(String, String)>;
    /// A version without settings refuses any.
    fn configure(
        &self,
        store: &mut Store<HostState>,
        log_formats: &[model::LogFormat],
        log_fields: model::LogFields,
        settings: &[model::Setting],
    ) -> Call<Result<(), model::SettingsError>>;
    fn ingest_batch(
        &self,
        store: &mut Store<HostState>,
        events: Vec<model::ConnectionEvent>,
    ) -> Call<Result<Vec<model::EventOutcome>, model::StorageError>>;
    fn query(
        &self,
        store: &mut Store<HostState>,
        actor: model::Actor,
        request: model::QueryRequest,
    ) -> Call<Result<model::Page, model::QueryError>>;
    fn api_page(
        &self,
        store: &mut Store<HostState>,
        actor: model::Actor,
        request: model::QueryRequest,
    ) -> Call<Result<String, model::QueryError>>;
    /// The live feed's rows, one answer per origin; `None` when this contract version has
    /// no feed (0.1.0).
    fn feed_rows(
        &self,
        store: &mut Store<HostState>,
        actor: model::Actor,
        q: &str,
        origins: Vec<model::RowOrigin>,
    ) -> Call<FeedRows>;
    /// `None` keeps rows forever; returns the retention the plugin applies.
    fn set_retention(
        &self,
        store: &mut Store<HostState>,
        max_age_nanos: Option<u64>,
    ) -> Call<Option<u64>>;
    fn purge(
        &self,
        store: &mut Store<HostState>,
        now: model::UnixNanos,
    ) -> Call<Result<model::PurgeReport, model::StorageError>>;
    fn api_response(&self, store: &mut Store<HostState>, page: model::Page) -> Call<String>;
    fn api_rows(
        &self,
        store: &mut Store<HostState>,
        rows: Vec<model::ConnectionLog>,
    ) -> Call<Vec<String>>;
    fn service_log_line(
        &self,
        store: &mut Store<HostState>,
        event: model::ConnectionEvent,
        format: model::LogFormat,
        fields: model::LogFields,
        logged_at: model::UnixNanos,
    ) -> Call<String>;
    fn row_events(
        &self,
        store: &mut Store<HostState>,
        row: model::ConnectionLog,
    ) -> Call<Vec<model::ConnectionEvent>>;
    fn save_snapshot(&self, store: &mut Store<HostState>) -> Call<Result<(), model::StorageError>>;
    fn load_snapshot(&self, store: &mut Store<HostState>) -> Call<Result<(), model::StorageError>>;
    fn replay(
        &self,
        store: &mut Store<HostState>,
        batch: EventColumns,
    ) -> Call<Result<(), model::StorageError>>;
    fn stats(&self, store: &mut Store<HostState>) -> Call<model::StateStats>;
}

/// A compiled, type-checked component of one contract version, ready to instantiate.
pub trait ExportsPre: Send + Sync {
    fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Box<dyn Exports>>;
}

/// Type-checks a component against one version's world; `Err` says why it does not fit.
pub type TypeCheck = fn(&Linker<HostState>, &Component) -> Result<Box<dyn ExportsPre>, String>;

/// One contract version the host speaks.
pub struct ContractVersion {
    /// Such as `0.2.0`, from the `package` line of its WIT folder.
    pub version: &'static str,
    /// A linker holding the host's imports under this version's names.
    pub linker: fn(&wasmtime::Engine) -> wasmtime::Result<Linker<HostState>>,
    /// Type-checks a component against this version's world.
    pub pre: TypeCheck,
}

/// The package every version shares, `coder:connection-log`.
pub const CONTRACT_PACKAGE: &str = env!("CONNLOG_CONTRACT_V0_3_0_NAME");

/// Every version this host speaks, oldest first.
pub const SUPPORTED: [ContractVersion; 3] = [v0_1::VERSION, v0_2::VERSION, v0_3::VERSION];

/// `0.1.0, 0.2.0, 0.3.0`: for messages.
pub fn supported_list() -> String {
    SUPPORTED
        .iter()
        .map(|v| v.version)
        .collect::<Vec<_>>()
        .join(", ")
}
