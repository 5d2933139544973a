//! Write a connection-log plugin for connlog in plain Rust.
//!
//! connlog rebuilds [Coder](https://github.com/coder/coder)'s Connection Log around a
//! WebAssembly component plugin: the plugin turns Coder's connection events into the rows of
//! the log and answers queries over them. The host (`connlog`)
//! keeps every accepted event in a durable journal and calls the plugin through the
//! contract `coder:connection-log` (the WIT files under `wit/`). This crate hides that
//! contract: a plugin implements [`ConnectionLogPlugin`] on the plain types of [`model`],
//! reaches the host through the traits of [`imports`], and [`export_plugin!`] turns it into
//! the component's exports.
//!
//! # A complete minimal plugin
//!
//! Every event is a row of its own; no validation, merging, filter language or
//! authorization. (The reference plugin, crate `connlog-reference`, implements Coder's
//! real semantics and can be reused as a library.)
//!
//! ```
//! use connlog_plugin_sdk::model::*;
//! use connlog_plugin_sdk::{ConnectionLogPlugin, PluginHost, export_plugin};
//!
//! #[derive(Default)]
//! struct EveryEventARow {
//!     rows: Vec<ConnectionLog>,
//!     retention_nanos: Option<u64>,
//! }
//!
//! fn row_of(e: &ConnectionEvent) -> ConnectionLog {
//!     ConnectionLog {
//!         id: e.id,
//!         connect_time: e.time,
//!         organization_id: e.organization_id,
//!         workspace_owner_id: e.workspace_owner_id,
//!         workspace_id: e.workspace_id,
//!         workspace_name: e.workspace_name.clone(),
//!         agent_name: e.agent_name.clone(),
//!         connection_method: e.connection_method,
//!         code: e.code,
//!         ip: e.ip.clone(),
//!         user_agent: e.user_agent.clone(),
//!         user_id: e.user_id,
//!         app_name_or_port: e.app_name_or_port.clone(),
//!         connection_id: e.connection_id,
//!         disconnect_time: None,
//!         disconnect_reason: e.disconnect_reason.clone(),
//!         client_session_id: e.client_session_id.clone(),
//!     }
//! }
//!
//! impl ConnectionLogPlugin for EveryEventARow {
//!     const NAME: &'static str = "every-event-a-row";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!
//!     fn new() -> Self {
//!         Self::default()
//!     }
//!
//!     fn configure(&mut self, config: PluginConfig) -> Result<(), SettingsError> {
//!         connlog_plugin_sdk::refuse_any_setting(&config.settings)
//!     }
//!
//!     fn ingest_batch(
//!         &mut self,
//!         host: &mut dyn PluginHost,
//!         events: Vec<ConnectionEvent>,
//!     ) -> Result<Vec<EventOutcome>, JournalError> {
//!         // The journal first: if it fails, nothing has changed here either.
//!         let fresh = host.append(&events)?;
//!         let mut outcomes = Vec::with_capacity(events.len());
//!         for (event, new) in events.iter().zip(fresh) {
//!             if new {
//!                 self.rows.push(row_of(event));
//!                 outcomes.push(EventOutcome::Stored);
//!             } else {
//!                 outcomes.push(EventOutcome::Duplicate);
//!             }
//!         }
//!         Ok(outcomes)
//!     }
//!
//!     fn query(
//!         &self,
//!         _host: &dyn PluginHost,
//!         _actor: &Actor,
//!         request: &QueryRequest,
//!     ) -> Result<Page, QueryError> {
//!         let limit = request.limit.unwrap_or(DEFAULT_LIMIT);
//!         let mut rows = self.rows.clone();
//!         rows.sort_by_key(|r| std::cmp::Reverse((r.connect_time, r.id)));
//!         let count = rows.len() as u64;
//!         let page = rows.into_iter().skip(request.offset as usize).take(limit as usize);
//!         Ok(Page { rows: page.collect(), count })
//!     }
//!
//!     fn feed_rows(
//!         &self,
//!         host: &dyn PluginHost,
//!         _actor: &Actor,
//!         _q: &str,
//!         origins: &[RowOrigin],
//!     ) -> Result<Vec<Option<String>>, QueryError> {
//!         // Every row is one event's, so only single-event origins name a row here.
//!         Ok(origins
//!             .iter()
//!             .map(|origin| {
//!                 let RowOrigin::SingleEvent(id) = origin else { return None };
//!                 let row = self.rows.iter().find(|r| r.id == *id)?;
//!                 self.api_rows(host, std::slice::from_ref(row)).pop()
//!             })
//!             .collect())
//!     }
//!
//!     fn set_retention(&mut self, max_age_nanos: Option<u64>) -> Option<u64> {
//!         self.retention_nanos = max_age_nanos;
//!         max_age_nanos
//!     }
//!
//!     fn purge(
//!         &mut self,
//!         host: &mut dyn PluginHost,
//!         now: UnixNanos,
//!     ) -> Result<PurgeReport, JournalError> {
//!         let Some(retention) = self.retention_nanos else {
//!             return Ok(PurgeReport { purged: 0, cutoff: None });
//!         };
//!         let cutoff = now.saturating_sub(retention.min(i64::MAX as u64) as i64);
//!         let expired: Vec<RowOrigin> = self
//!             .rows
//!             .iter()
//!             .filter(|r| r.connect_time < cutoff)
//!             .map(|r| RowOrigin::SingleEvent(r.id))
//!             .collect();
//!         host.forget(&expired)?;
//!         self.rows.retain(|r| r.connect_time >= cutoff);
//!         Ok(PurgeReport { purged: expired.len() as u64, cutoff: Some(cutoff) })
//!     }
//!
//!     fn api_response(&self, host: &dyn PluginHost, rows: &[ConnectionLog], count: u64) -> String {
//!         let rows = self.api_rows(host, rows).join(",");
//!         format!(r#"{{"connection_logs":[{rows}],"count":{count},"count_cap":2000}}"#)
//!     }
//!
//!     fn api_rows(&self, _host: &dyn PluginHost, rows: &[ConnectionLog]) -> Vec<String> {
//!         rows.iter().map(|r| format!(r#"{{"id":"{}"}}"#, r.id)).collect()
//!     }
//!
//!     fn service_log_line(&self, e: &ConnectionEvent, _: LogFormat, _: LogFields, _: UnixNanos) -> String {
//!         format!("connection {} {}", e.id, e.connection_method)
//!     }
//!
//!     fn row_events(&self, row: &ConnectionLog) -> Vec<ConnectionEvent> {
//!         vec![ConnectionEvent {
//!             id: row.id,
//!             time: row.connect_time,
//!             organization_id: row.organization_id,
//!             workspace_owner_id: row.workspace_owner_id,
//!             workspace_id: row.workspace_id,
//!             workspace_name: row.workspace_name.clone(),
//!             agent_name: row.agent_name.clone(),
//!             connection_method: row.connection_method,
//!             code: row.code,
//!             ip: row.ip.clone(),
//!             user_agent: row.user_agent.clone(),
//!             user_id: row.user_id,
//!             app_name_or_port: row.app_name_or_port.clone(),
//!             connection_id: row.connection_id,
//!             disconnect_reason: row.disconnect_reason.clone(),
//!             client_session_id: row.client_session_id.clone(),
//!             status: ConnectionStatus::Connected,
//!         }]
//!     }
//!
//!     // No snapshot: a failed load makes the host rebuild the rows by replaying the journal.
//!     fn save_snapshot(&self, _host: &mut dyn PluginHost) -> Result<(), JournalError> {
//!         Ok(())
//!     }
//!
//!     fn load_snapshot(&mut self, _host: &mut dyn PluginHost) -> Result<(), JournalError> {
//!         self.rows.clear();
//!         Err(JournalError::Corrupt("this plugin keeps no snapshot".into()))
//!     }
//!
//!     fn replay(
//!         &mut self,
//!         _host: &mut dyn PluginHost,
//!         events: &[EventRef<'_>],
//!     ) -> Result<(), JournalError> {
//!         for event in events {
//!             if !self.rows.iter().any(|r| r.id == event.id) {
//!                 self.rows.push(row_of(&event.map_text(|s| s.to_string())));
//!             }
//!         }
//!         Ok(())
//!     }
//!
//!     fn stats(&self) -> StateStats {
//!         let bytes = self.rows.capacity() * std::mem::size_of::<ConnectionLog>();
//!         StateStats { rows: self.rows.len() as u64, memory_bytes: bytes as u64 }
//!     }
//! }
//!
//! export_plugin!(EveryEventARow);
//! ```
//!
//! # Building
//!
//! The plugin's `Cargo.toml` makes a `cdylib` and depends on this crate:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! connlog-plugin-sdk = { path = "…/guest/sdk" }   # or a git dependency
//! ```
//!
//! Then build a core module and turn it into a component:
//!
//! ```sh
//! cargo build --release --target wasm32-unknown-unknown
//! wasm-tools component new target/wasm32-unknown-unknown/release/my_plugin.wasm -o my-plugin.wasm
//! connlog conformance ./my-plugin.wasm     # every behaviour the host expects, case by case
//! connlog serve --plugin ./my-plugin.wasm
//! ```
//!
//! # Testing
//!
//! With the feature `testing`, `testing::MemoryHost` is a host in memory (clock,
//! directory, transactional journal with failure injection, captured service log), so a
//! plugin's logic is tested natively: `cargo test`, no wasm involved.
//!
//! # Contract versions
//!
//! Each supported version of the contract has a module holding its generated bindings and
//! the glue its export macro expands to: [`v0_3`] for `0.3.0`, the newest, which
//! [`export_plugin!`] exports; [`v0_2`] for `0.2.0` and [`v0_1`] for `0.1.0`, which
//! [`export_plugin_v0_2!`] and [`export_plugin_v0_1!`] export for hosts that know no later
//! version. The plain types and the traits are shared by every version; the glue fills in
//! what an older version lacks (0.1.0 has no settings, so a plugin exported for it is
//! configured with none).

pub mod event_columns;
pub mod imports;
mod instance;
pub mod layer;
pub mod model;
mod plugin;
mod since_v0_2;
pub mod v0_1;
pub mod v0_2;
pub mod v0_3;
mod wit_conversions;
mod wit_glue;

#[cfg(feature = "testing")]
pub mod testing;

pub use imports::{HostClock, HostDirectory, HostJournal, HostServiceLog, PluginHost};
pub use plugin::{ConnectionLogPlugin, refuse_any_setting};

/// Exports a [`ConnectionLogPlugin`] as the component's implementation of the newest
/// contract version, `0.3.0`. Use it once, in the plugin's `cdylib` crate.
///
/// It expands to nothing outside wasm32, so that the plugin's native tests still build: the
/// exports are named after the contract's functions
/// (`coder:connection-log/ingest@0.3.0#ingest-batch`), names a native linker refuses.
/// (The glue it names, [`v0_3::Component`], is type-checked natively all the same.)
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __ConnlogPluginComponent = $crate::v0_3::Component<$plugin>;
    $crate::v0_3::export_v0_3!(__ConnlogPluginComponent with_types_in $crate::v0_3);
        };
    };
}

/// Exports a [`ConnectionLogPlugin`] as an implementation of contract `0.2.0`, for hosts
/// that speak no later version. Use it instead of [`export_plugin!`], never beside it.
#[macro_export]
macro_rules! export_plugin_v0_2 {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __ConnlogPluginComponent = $crate::v0_2::Component<$plugin>;
    $crate::v0_2::export_v0_2!(__ConnlogPluginComponent with_types_in $crate::v0_2);
        };
    };
}

/// Exports a [`ConnectionLogPlugin`] as an implementation of contract `0.1.0`, for hosts
/// that speak only that version. The plugin gets no settings. Use it instead of
/// [`export_plugin!`], never beside it.
#[macro_export]
macro_rules! export_plugin_v0_1 {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __ConnlogPluginComponent = $crate::v0_1::Component<$plugin>;
    $crate::v0_1::export_v0_1!(__ConnlogPluginComponent with_types_in $crate::v0_1);
        };
    };
}
