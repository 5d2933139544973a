//! A test plugin: the reference plugin, except that marker events make it fail (see
//! [`faults`]). The host's isolation tests load it to check that a plugin's failure costs
//! one call, never the host or any data. It is built only for those tests.

pub mod faults;

use connlog_plugin_sdk::model::*;
use connlog_plugin_sdk::{ConnectionLogPlugin, PluginHost};
use connlog_reference::ReferencePlugin;

/// [`ReferencePlugin`] with the fault hooks in front of `ingest_batch` and `replay`.
pub struct FaultyPlugin(ReferencePlugin);

impl ConnectionLogPlugin for FaultyPlugin {
    const NAME: &'static str = "connlog-faulty-plugin";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn new() -> Self {
        Self(ReferencePlugin::new())
    }

    fn configure(&mut self, config: PluginConfig) {
        self.0.configure(config)
    }

    fn ingest_batch(
        &mut self,
        host: &mut dyn PluginHost,
        events: Vec<ConnectionEvent>,
    ) -> Result<Vec<EventOutcome>, StorageError> {
        events.iter().for_each(faults::on_event);
        self.0.ingest_batch(host, events)
    }

    fn query(
        &self,
        host: &dyn PluginHost,
        actor: &Actor,
        request: &QueryRequest,
    ) -> Result<Page, QueryError> {
        self.0.query(host, actor, request)
    }

    fn api_page(
        &self,
        host: &dyn PluginHost,
        actor: &Actor,
        request: &QueryRequest,
    ) -> Result<String, QueryError> {
        self.0.api_page(host, actor, request)
    }

    fn set_retention(&mut self, max_age_nanos: u64) {
        self.0.set_retention(max_age_nanos)
    }

    fn purge(
        &mut self,
        host: &mut dyn PluginHost,
        now: UnixNanos,
    ) -> Result<PurgeReport, StorageError> {
        self.0.purge(host, now)
    }

    fn api_response(&self, host: &dyn PluginHost, rows: &[ConnectionLog], count: u64) -> String {
        self.0.api_response(host, rows, count)
    }

    fn api_rows(&self, host: &dyn PluginHost, rows: &[ConnectionLog]) -> Vec<String> {
        self.0.api_rows(host, rows)
    }

    fn service_log_line(
        &self,
        event: &ConnectionEvent,
        format: LogFormat,
        logged_at: UnixNanos,
    ) -> String {
        self.0.service_log_line(event, format, logged_at)
    }

    fn row_events(&self, row: &ConnectionLog) -> Vec<ConnectionEvent> {
        self.0.row_events(row)
    }

    fn save_snapshot(&self, host: &mut dyn PluginHost) -> Result<(), StorageError> {
        self.0.save_snapshot(host)
    }

    fn load_snapshot(&mut self, host: &mut dyn PluginHost) -> Result<(), StorageError> {
        self.0.load_snapshot(host)
    }

    fn replay(
        &mut self,
        host: &mut dyn PluginHost,
        events: &[EventRef<'_>],
    ) -> Result<(), StorageError> {
        events.iter().for_each(faults::on_replay);
        self.0.replay(host, events)
    }

    fn stats(&self) -> StateStats {
        self.0.stats()
    }
}

connlog_plugin_sdk::export_plugin!(FaultyPlugin);
