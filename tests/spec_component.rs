//! Coder's behaviour, spec §3 and §10, through the real component: the same test bodies as
//! `guest/tests/spec_edge_cases.rs` (they live in `guest/tests/spec/edge_cases.rs`), run
//! against a `World` backed by `connlog::service::ConnLog` — the embedded reference
//! component, a SQLite store in a temporary data directory, and the same directory of
//! organizations and users as the native `World`.
//!
//! Not run here: the native-only tests of `spec_edge_cases.rs`, which inject storage
//! failures with `MemoryHost::fail_next`; a real SQLite file has no honest equivalent.

#[path = "../guest/tests/common/fixtures.rs"]
mod fixtures;

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use connlog::plugin::{Clock, ComponentCache, Limits, NoServiceLog, PluginHost, PluginSource};
use connlog::service::{ConnLog, ServiceConfig, ServiceError, store_path};
use connlog::store::Journal;
use connlog_guest::testing::MemoryHost;
use fixtures::*;

/// A compile cache shared by every test of this binary (and later runs), outside `~/.cache`.
/// The first caller compiles the component into it; the others wait and then load it.
fn cache() -> ComponentCache {
    static WARM: OnceLock<PathBuf> = OnceLock::new();
    let dir = WARM.get_or_init(|| {
        let dir = std::env::temp_dir().join("connlog-spec-component-cache");
        std::fs::create_dir_all(&dir).expect("creating the compile cache");
        PluginHost::new(Some(ComponentCache::new(dir.clone())))
            .and_then(|host| Ok(host.load(&PluginSource::Embedded)?))
            .expect("loading the embedded reference component");
        dir
    });
    ComponentCache::new(dir.clone())
}

/// The ingest suite's world, through the component: one `ConnLog` over one data directory.
struct World {
    data: tempfile::TempDir,
    directory: Arc<MemoryHost>,
    retention: Duration,
    /// `RefCell`: the bodies query through `&World`, and every component call needs
    /// `&mut ConnLog`. `Option`: a restart drops the service before opening the next.
    service: RefCell<Option<ConnLog>>,
}

#[allow(dead_code)]
impl World {
    /// The reference component over an empty store and the fixture [`directory`], with no
    /// service-log formats, no retention, and the clock fixed at `T0 + 1h` (as natively).
    fn new() -> Self {
        let data = tempfile::tempdir().expect("a temporary data directory");
        let directory = Arc::new(directory());
        let retention = Duration::ZERO;
        let service = open(&data, &directory, retention);
        Self {
            data,
            directory,
            retention,
            service: RefCell::new(Some(service)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut ConnLog) -> T) -> T {
        f(self
            .service
            .borrow_mut()
            .as_mut()
            .expect("the service is open"))
    }

    /// Ingests one batch (one transaction), expecting no storage error.
    fn ingest(&mut self, events: Vec<ConnectionEvent>) -> Vec<EventOutcome> {
        self.try_ingest(events).expect("no storage error")
    }

    fn try_ingest(
        &mut self,
        events: Vec<ConnectionEvent>,
    ) -> Result<Vec<EventOutcome>, StorageError> {
        match self.with(|s| s.ingest(events)) {
            Ok(outcomes) => Ok(outcomes),
            Err(ServiceError::Storage(e)) => Err(e),
            Err(other) => panic!("ingest failed: {other}"),
        }
    }

    /// Every row, newest first: the component's own answer to the site owner's empty query
    /// with no page limit (the same order as `Plugin::rows`: connect time, then id,
    /// descending).
    fn rows(&self) -> Vec<ConnectionLog> {
        let page = self
            .query_as(admin_id(), "", u32::MAX, 0)
            .expect("the empty query is valid");
        assert_eq!(
            page.rows.len() as u64,
            page.count,
            "one page holds every row"
        );
        page.rows
    }

    fn actor(&self, user: Uuid) -> Actor {
        self.directory.actor(user).expect("a directory user")
    }

    /// `q` as the site owner, default limit.
    fn query(&self, q: &str) -> Result<Page, QueryError> {
        self.query_as(admin_id(), q, 0, 0)
    }

    fn query_as(&self, user: Uuid, q: &str, limit: u32, offset: u32) -> Result<Page, QueryError> {
        let request = QueryRequest {
            q: q.to_string(),
            limit,
            offset,
        };
        let actor = self.actor(user);
        self.with(|s| s.query(actor, request))
            .expect("the component answers")
    }

    /// The validations of an invalid `q`.
    fn invalid(&self, q: &str) -> Vec<Validation> {
        match self.query(q) {
            Err(QueryError::InvalidQuery(v)) => v,
            other => panic!("{q:?} should be invalid, got {other:?}"),
        }
    }

    /// The rows after a real restart: the service is closed, and a new one (a new engine,
    /// component and instance) is opened on the same data directory and rebuilds its rows
    /// from the store. The world goes on with the restarted service.
    fn replayed_rows(&mut self) -> Vec<ConnectionLog> {
        drop(self.service.get_mut().take());
        let restarted = open(&self.data, &self.directory, self.retention);
        *self.service.get_mut() = Some(restarted);
        self.rows()
    }

    /// Sets the retention (0 keeps rows forever); a restart keeps it.
    fn set_retention(&mut self, max_age_nanos: u64) {
        self.retention = Duration::from_nanos(max_age_nanos);
        let retention = self.retention;
        self.with(|s| s.set_retention(retention))
            .expect("the component accepts the retention");
    }

    /// Applies retention as of `now` in one transaction, expecting no storage error.
    fn purge(&mut self, now: UnixNanos) -> PurgeReport {
        self.with(|s| s.purge(now)).expect("no storage error")
    }

    /// How many events the store's journal holds, read on a second connection.
    fn journal_len(&self) -> usize {
        let journal = Journal::open(&store_path(self.data.path())).expect("the store opens");
        journal.event_count().expect("the store counts its events") as usize
    }
}

fn open(data: &tempfile::TempDir, directory: &Arc<MemoryHost>, retention: Duration) -> ConnLog {
    ConnLog::open(ServiceConfig {
        data_dir: data.path().to_path_buf(),
        plugin: PluginSource::Embedded,
        directory: directory.clone(),
        limits: Limits::default(),
        log_formats: Vec::new(),
        service_log: Arc::new(NoServiceLog),
        retention,
        cache: Some(cache()),
        clock: Clock::Fixed(T0 + HOUR),
    })
    .expect("the service opens")
}

include!("../guest/tests/spec/edge_cases.rs");

/// `query.api-page` answers in one call what `formats.api-response` renders from `query`'s
/// page: the same body for every page shape and reader, and the same 400 validations.
#[test]
fn api_page_is_the_query_page_rendered_by_api_response() {
    let mut w = World::new();
    w.ingest(vec![
        ssh_connect(uuid(1), T0, uuid(9)),
        ssh_disconnect(
            uuid(2),
            T0 + SECOND,
            uuid(9),
            Some(0),
            Some("client closed"),
        ),
        ssh_connect(uuid(3), T0 + 2 * SECOND, uuid(10)),
        workspace_app(uuid(4), T0, Some(bob()), 200),
    ]);
    let pages = [
        (admin_id(), "", 0, 0),
        (admin_id(), "type:ssh", 1, 0),
        (admin_id(), "", 2, 1),
        (admin_id(), "status:ongoing", 0, 0),
        (org_auditor(), "", 0, 0),
        (member(), "", 0, 0),
    ];
    for (user, q, limit, offset) in pages {
        let request = QueryRequest {
            q: q.to_string(),
            limit,
            offset,
        };
        let actor = w.actor(user);
        let page = w.query_as(user, q, limit, offset).expect("a valid query");
        let rendered = w.with(|s| s.api_response(page)).expect("api-response");
        let body = w
            .with(|s| s.api_page(actor, request))
            .expect("the component answers")
            .expect("a valid query");
        assert_eq!(
            body, rendered,
            "{q:?} as {user} (limit {limit}, offset {offset})"
        );
    }

    let invalid = QueryRequest {
        q: "color:blue".into(),
        limit: 0,
        offset: 0,
    };
    let actor = w.actor(admin_id());
    let refused = w
        .with(|s| s.api_page(actor, invalid))
        .expect("the component answers");
    assert_eq!(
        refused,
        Err(QueryError::InvalidQuery(w.invalid("color:blue")))
    );
}
