//! Shared set-up for the plugin-level suites: the fixtures, and a `World` that is a plugin
//! over a `MemoryHost` holding the fixture directory.
#![allow(dead_code)]

mod fixtures;

pub use fixtures::*;

use connlog_plugin_sdk::ConnectionLogPlugin;
use connlog_plugin_sdk::model::*;
use connlog_plugin_sdk::testing::MemoryHost;
use connlog_reference::ReferencePlugin;

pub struct World {
    pub plugin: ReferencePlugin,
    pub host: MemoryHost,
}

impl World {
    /// A plugin with no service-log formats over the fixture [`directory`] (clock at
    /// `T0 + 1h`).
    pub fn new() -> Self {
        Self {
            plugin: ReferencePlugin::new(),
            host: directory(),
        }
    }

    /// Ingests one batch as the host does (one transaction), expecting no storage error.
    pub fn ingest(&mut self, events: Vec<ConnectionEvent>) -> Vec<EventOutcome> {
        let plugin = &mut self.plugin;
        self.host
            .transaction(|h| plugin.ingest_batch(h, events))
            .expect("no storage error")
    }

    pub fn try_ingest(
        &mut self,
        events: Vec<ConnectionEvent>,
    ) -> Result<Vec<EventOutcome>, JournalError> {
        let plugin = &mut self.plugin;
        self.host.transaction(|h| plugin.ingest_batch(h, events))
    }

    pub fn rows(&self) -> Vec<ConnectionLog> {
        self.plugin.rows()
    }

    pub fn actor(&self, user: Uuid) -> Actor {
        self.host.actor(user).expect("a directory user")
    }

    /// `q` as the site owner, default limit (Coder's page of 100).
    pub fn query(&self, q: &str) -> Result<Page, QueryError> {
        self.request(admin_id(), q, None, 0)
    }

    pub fn query_as(
        &self,
        user: Uuid,
        q: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Page, QueryError> {
        self.request(user, q, Some(limit), offset)
    }

    fn request(
        &self,
        user: Uuid,
        q: &str,
        limit: Option<u32>,
        offset: u32,
    ) -> Result<Page, QueryError> {
        let request = QueryRequest {
            q: q.to_string(),
            limit,
            offset,
        };
        self.plugin.query(&self.host, &self.actor(user), &request)
    }

    /// The validations of an invalid `q`.
    pub fn invalid(&self, q: &str) -> Vec<Validation> {
        match self.query(q) {
            Err(QueryError::InvalidQuery(v)) => v,
            other => panic!("{q:?} should be invalid, got {other:?}"),
        }
    }

    /// The rows a fresh plugin rebuilds by replaying this journal (in time order).
    pub fn replayed_rows(&mut self) -> Vec<ConnectionLog> {
        let mut fresh = ReferencePlugin::new();
        let events = self.host.journal_events();
        fresh
            .replay(&mut self.host, &event_refs(&events))
            .expect("replay");
        fresh.rows()
    }

    /// Sets the retention (`None` keeps rows forever).
    pub fn set_retention(&mut self, max_age_nanos: Option<u64>) {
        self.plugin.set_retention(max_age_nanos);
    }

    /// Applies retention as of `now` in one transaction, expecting no storage error.
    pub fn purge(&mut self, now: UnixNanos) -> PurgeReport {
        let plugin = &mut self.plugin;
        self.host
            .transaction(|h| plugin.purge(h, now))
            .expect("no storage error")
    }

    /// How many events the journal holds.
    pub fn journal_len(&self) -> usize {
        self.host.journal_len()
    }
}
