//! A plugin built as a layer over another: it sees events on their way in, takes its own
//! settings, and may shorten the retention, and the plugin beneath does everything else.
//!
//! ```
//! use connlog_plugin_sdk::layer::{Layered, PluginLayer};
//! use connlog_plugin_sdk::model::{ConnectionEvent, Setting, SettingsError};
//! # use connlog_plugin_sdk::{ConnectionLogPlugin, PluginHost};
//! # use connlog_plugin_sdk::model::*;
//! # struct Beneath;
//! # impl ConnectionLogPlugin for Beneath {
//! #     const NAME: &'static str = "beneath"; const VERSION: &'static str = "0";
//! #     fn new() -> Self { Beneath }
//! #     fn configure(&mut self, c: PluginConfig) -> Result<(), SettingsError> { connlog_plugin_sdk::refuse_any_setting(&c.settings) }
//! #     fn ingest_batch(&mut self, _: &mut dyn PluginHost, e: Vec<ConnectionEvent>) -> Result<Vec<EventOutcome>, JournalError> { Ok(e.iter().map(|_| EventOutcome::Stored).collect()) }
//! #     fn query(&self, _: &dyn PluginHost, _: &Actor, _: &QueryRequest) -> Result<Page, QueryError> { Ok(Page { rows: vec![], count: 0 }) }
//! #     fn feed_rows(&self, _: &dyn PluginHost, _: &Actor, _: &str, o: &[RowOrigin]) -> Result<Vec<Option<String>>, QueryError> { Ok(vec![None; o.len()]) }
//! #     fn set_retention(&mut self, r: Option<u64>) -> Option<u64> { r }
//! #     fn purge(&mut self, _: &mut dyn PluginHost, _: UnixNanos) -> Result<PurgeReport, JournalError> { Ok(PurgeReport { purged: 0, cutoff: None }) }
//! #     fn api_response(&self, _: &dyn PluginHost, _: &[ConnectionLog], _: u64) -> String { String::new() }
//! #     fn api_rows(&self, _: &dyn PluginHost, _: &[ConnectionLog]) -> Vec<String> { vec![] }
//! #     fn service_log_line(&self, _: &ConnectionEvent, _: LogFormat, _: LogFields, _: UnixNanos) -> String { String::new() }
//! #     fn row_events(&self, _: &ConnectionLog) -> Vec<ConnectionEvent> { vec![] }
//! #     fn save_snapshot(&self, _: &mut dyn PluginHost) -> Result<(), JournalError> { Ok(()) }
//! #     fn load_snapshot(&mut self, _: &mut dyn PluginHost) -> Result<(), JournalError> { Ok(()) }
//! #     fn replay(&mut self, _: &mut dyn PluginHost, _: &[EventRef<'_>]) -> Result<(), JournalError> { Ok(()) }
//! #     fn stats(&self) -> StateStats { StateStats { rows: 0, memory_bytes: 0 } }
//! # }
//!
//! /// Keeps no user agent.
//! #[derive(Default)]
//! struct NoUserAgents;
//!
//! impl PluginLayer for NoUserAgents {
//!     const NAME: &'static str = "no-user-agents";
//!     const VERSION: &'static str = "1.0.0";
//!
//!     fn on_event(&self, event: &mut ConnectionEvent) {
//!         event.user_agent = None;
//!     }
//! }
//!
//! type Plugin = Layered<NoUserAgents, Beneath>;
//! // connlog_plugin_sdk::export_plugin!(Plugin);
//! ```

use crate::imports::PluginHost;
use crate::model::*;
use crate::plugin::ConnectionLogPlugin;

/// What a layer adds to the plugin beneath it. Every hook has a default that changes
/// nothing.
pub trait PluginLayer: Default + 'static {
    /// The name `plugin-info.describe` reports for the layered plugin.
    const NAME: &'static str;
    /// The version it reports.
    const VERSION: &'static str;

    /// The setting keys this layer takes, named when a key is unknown to both it and the
    /// plugin beneath.
    const SETTINGS: &'static [&'static str] = &[];

    /// Takes the settings this layer knows and returns the others, which the plugin
    /// beneath then judges.
    fn configure(&mut self, settings: Vec<Setting>) -> Result<Vec<Setting>, SettingsError> {
        Ok(settings)
    }

    /// Rewrites an event before the plugin beneath validates, stores or logs it: what this
    /// leaves out never reaches the journal.
    fn on_event(&self, _event: &mut ConnectionEvent) {}

    /// Sees journaled events on their way to the plugin beneath's `replay`, with the host
    /// it replays for.
    fn on_replay(&mut self, _host: &mut dyn PluginHost, _events: &[EventRef<'_>]) {}

    /// Runs before the plugin beneath saves its snapshot.
    fn on_save(&self) {}

    /// The retention to ask of the plugin beneath, given the operator's (`None`: forever).
    /// A layer may shorten it; the result is never longer than the operator's.
    fn retention(&self, operator: Option<u64>) -> Option<u64> {
        operator
    }
}

/// Layer `L` over plugin `P`, itself a [`ConnectionLogPlugin`].
pub struct Layered<L, P> {
    pub layer: L,
    pub inner: P,
}

impl<L: PluginLayer, P: ConnectionLogPlugin> ConnectionLogPlugin for Layered<L, P> {
    const NAME: &'static str = L::NAME;
    const VERSION: &'static str = L::VERSION;

    fn new() -> Self {
        Self {
            layer: L::default(),
            inner: P::new(),
        }
    }

    fn configure(&mut self, config: PluginConfig) -> Result<(), SettingsError> {
        let PluginConfig {
            service_log_formats,
            service_log_fields,
            settings,
        } = config;
        let settings = self.layer.configure(settings)?;
        self.inner
            .configure(PluginConfig {
                service_log_formats,
                service_log_fields,
                settings,
            })
            .map_err(|e| match e {
                SettingsError::UnknownSetting { key, known } => SettingsError::UnknownSetting {
                    key,
                    known: L::SETTINGS
                        .iter()
                        .map(|k| k.to_string())
                        .chain(known)
                        .collect(),
                },
                invalid => invalid,
            })
    }

    fn ingest_batch(
        &mut self,
        host: &mut dyn PluginHost,
        mut events: Vec<ConnectionEvent>,
    ) -> Result<Vec<EventOutcome>, JournalError> {
        events.iter_mut().for_each(|e| self.layer.on_event(e));
        self.inner.ingest_batch(host, events)
    }

    fn query(
        &self,
        host: &dyn PluginHost,
        actor: &Actor,
        request: &QueryRequest,
    ) -> Result<Page, QueryError> {
        self.inner.query(host, actor, request)
    }

    fn api_page(
        &self,
        host: &dyn PluginHost,
        actor: &Actor,
        request: &QueryRequest,
    ) -> Result<String, QueryError> {
        self.inner.api_page(host, actor, request)
    }

    fn feed_rows(
        &self,
        host: &dyn PluginHost,
        actor: &Actor,
        q: &str,
        origins: &[RowOrigin],
    ) -> Result<Vec<Option<String>>, QueryError> {
        self.inner.feed_rows(host, actor, q, origins)
    }

    fn set_retention(&mut self, max_age_nanos: Option<u64>) -> Option<u64> {
        let asked = match (self.layer.retention(max_age_nanos), max_age_nanos) {
            (Some(layer), Some(operator)) => Some(layer.min(operator)),
            (layer, operator) => layer.or(operator),
        };
        self.inner.set_retention(asked)
    }

    fn purge(
        &mut self,
        host: &mut dyn PluginHost,
        now: UnixNanos,
    ) -> Result<PurgeReport, JournalError> {
        self.inner.purge(host, now)
    }

    fn api_response(&self, host: &dyn PluginHost, rows: &[ConnectionLog], count: u64) -> String {
        self.inner.api_response(host, rows, count)
    }

    fn api_rows(&self, host: &dyn PluginHost, rows: &[ConnectionLog]) -> Vec<String> {
        self.inner.api_rows(host, rows)
    }

    fn service_log_line(
        &self,
        event: &ConnectionEvent,
        format: LogFormat,
        fields: LogFields,
        logged_at: UnixNanos,
    ) -> String {
        self.inner
            .service_log_line(event, format, fields, logged_at)
    }

    fn row_events(&self, row: &ConnectionLog) -> Vec<ConnectionEvent> {
        self.inner.row_events(row)
    }

    fn save_snapshot(&self, host: &mut dyn PluginHost) -> Result<(), JournalError> {
        self.layer.on_save();
        self.inner.save_snapshot(host)
    }

    fn load_snapshot(&mut self, host: &mut dyn PluginHost) -> Result<(), JournalError> {
        self.inner.load_snapshot(host)
    }

    fn replay(
        &mut self,
        host: &mut dyn PluginHost,
        events: &[EventRef<'_>],
    ) -> Result<(), JournalError> {
        self.layer.on_replay(host, events);
        self.inner.replay(host, events)
    }

    fn stats(&self) -> StateStats {
        self.inner.stats()
    }
}
