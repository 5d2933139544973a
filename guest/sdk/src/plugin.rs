//! The trait a plugin implements: one method per export of the contract, on plain types.

use crate::imports::PluginHost;
use crate::model::*;

/// A connection-log plugin. [`export_plugin!`](crate::export_plugin) serves one as a
/// component: each export of the contract becomes a call of the method of the same name on
/// the one instance the component holds, created with [`new`](Self::new) on the first call.
///
/// The host serialises calls, never calls an export from inside an import, and treats a
/// panic (a trap) as the failure of that one call. Every journal change made inside a call
/// that returns an error is rolled back by the host, so a method should make its fallible
/// host calls before it changes its own state.
pub trait ConnectionLogPlugin: 'static {
    /// The name `plugin-info.describe` reports, such as `connlog-reference`.
    const NAME: &'static str;
    /// The version `plugin-info.describe` reports, usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;

    fn new() -> Self
    where
        Self: Sized;

    /// What the host passes once, after instantiation and before any other call: the
    /// service-log formats and the deployment's settings. An error refuses the settings, and
    /// the host does not serve with this plugin. A plugin with no settings refuses any key
    /// (see [`refuse_any_setting`](crate::refuse_any_setting)).
    fn configure(&mut self, config: PluginConfig) -> Result<(), SettingsError>;

    /// Validates, stores (through [`HostJournal::append`](crate::HostJournal::append)) and
    /// merges a batch: one outcome per event, in order. Rejecting one event never rejects
    /// another. A journal error means nothing of the batch was stored.
    fn ingest_batch(
        &mut self,
        host: &mut dyn PluginHost,
        events: Vec<ConnectionEvent>,
    ) -> Result<Vec<EventOutcome>, JournalError>;

    /// One page of the rows `actor` may read that match `request.q`, newest first, and the
    /// exact number of rows that match.
    fn query(
        &self,
        host: &dyn PluginHost,
        actor: &Actor,
        request: &QueryRequest,
    ) -> Result<Page, QueryError>;

    /// The page of [`query`](Self::query) as [`api_response`](Self::api_response) renders
    /// it, in one call.
    fn api_page(
        &self,
        host: &dyn PluginHost,
        actor: &Actor,
        request: &QueryRequest,
    ) -> Result<String, QueryError> {
        let page = self.query(host, actor, request)?;
        Ok(self.api_response(host, &page.rows, page.count))
    }

    /// The live feed: one answer per origin, in order. The row the origin names, as
    /// [`api_rows`](Self::api_rows) renders it, when it exists, `actor` may read it and `q`
    /// matches it; `None` otherwise. An invalid `q` is an error even with no origins.
    fn feed_rows(
        &self,
        host: &dyn PluginHost,
        actor: &Actor,
        q: &str,
        origins: &[RowOrigin],
    ) -> Result<Vec<Option<String>>, QueryError>;

    /// How long the operator keeps rows, in nanoseconds; `None` keeps them forever. Returns
    /// the retention the plugin will apply: the same, or shorter if the plugin's own
    /// settings say so (never longer). The host purges on that schedule.
    fn set_retention(&mut self, max_age_nanos: Option<u64>) -> Option<u64>;

    /// Deletes every row whose connect time is strictly before `now` minus the retention,
    /// from memory and from the journal.
    fn purge(
        &mut self,
        host: &mut dyn PluginHost,
        now: UnixNanos,
    ) -> Result<PurgeReport, JournalError>;

    /// The body Coder's `GET /api/v2/connectionlog` returns for these rows.
    fn api_response(&self, host: &dyn PluginHost, rows: &[ConnectionLog], count: u64) -> String;

    /// One API row (codersdk's `ConnectionLog` JSON) per row.
    fn api_rows(&self, host: &dyn PluginHost, rows: &[ConnectionLog]) -> Vec<String>;

    /// A `connection_log` service-log line for one event, with that generation's fields.
    fn service_log_line(
        &self,
        event: &ConnectionEvent,
        format: LogFormat,
        fields: LogFields,
        logged_at: UnixNanos,
    ) -> String;

    /// The events that rebuild a row: its connect, then its disconnect if it has one.
    fn row_events(&self, row: &ConnectionLog) -> Vec<ConnectionEvent>;

    /// Writes the whole state through
    /// [`HostJournal::write_snapshot_chunk`](crate::HostJournal::write_snapshot_chunk).
    fn save_snapshot(&self, host: &mut dyn PluginHost) -> Result<(), JournalError>;

    /// Replaces the state with the snapshot read through
    /// [`HostJournal::read_snapshot_chunk`](crate::HostJournal::read_snapshot_chunk). A
    /// snapshot that is not this plugin's is an error, and leaves the state empty.
    fn load_snapshot(&mut self, host: &mut dyn PluginHost) -> Result<(), JournalError>;

    /// Merges events already in the journal, without storing or logging them again. Any
    /// order, and any split into calls, must give the same rows. (The SDK has already
    /// decoded the batch; a batch that does not decode never reaches the plugin.)
    fn replay(
        &mut self,
        host: &mut dyn PluginHost,
        events: &[EventRef<'_>],
    ) -> Result<(), JournalError>;

    /// How many rows the plugin holds, and an estimate of the bytes they use.
    fn stats(&self) -> StateStats;
}

/// The settings check of a plugin that takes none: any key is unknown.
pub fn refuse_any_setting(settings: &[Setting]) -> Result<(), SettingsError> {
    match settings.first() {
        None => Ok(()),
        Some(setting) => Err(SettingsError::UnknownSetting {
            key: setting.key.clone(),
            known: Vec::new(),
        }),
    }
}
