//! Shared set-up for the plugin-level suites: a plugin over a `MemoryHost` with a small
//! directory, and builders for events.
#![allow(dead_code)]

use connlog_guest::model::*;
use connlog_guest::plugin::Plugin;
use connlog_guest::testing::MemoryHost;
pub use connlog_guest::testing::fixtures::*;

pub const S: i64 = SECOND;
pub const HOUR: i64 = 3600 * SECOND;

/// The organization of every fixture event.
pub fn org() -> Uuid {
    uuid_in(1, 1)
}
/// A second organization.
pub fn other_org() -> Uuid {
    uuid_in(1, 2)
}
/// The workspace owner of every fixture event.
pub fn owner() -> Uuid {
    uuid_in(2, 1)
}
pub fn workspace() -> Uuid {
    uuid_in(3, 1)
}
/// Session (connection) ids.
pub fn cid(n: u64) -> Uuid {
    uuid_in(10, n)
}
/// Event ids.
pub fn eid(n: u64) -> Uuid {
    uuid_in(20, n)
}
/// Users of the directory.
pub fn admin_id() -> Uuid {
    uuid_in(30, 1)
}
pub fn bob() -> Uuid {
    uuid_in(30, 2)
}
pub fn carol() -> Uuid {
    uuid_in(30, 3)
}
pub fn member() -> Uuid {
    uuid_in(30, 4)
}
pub fn org_auditor() -> Uuid {
    uuid_in(30, 5)
}

/// A connect of session `cid(session)` with id `eid(n)` at `T0 + t` seconds.
pub fn connect(n: u64, session: u64, t: i64) -> ConnectionEvent {
    ssh_connect(eid(n), T0 + t * S, cid(session))
}

/// A disconnect of session `cid(session)` with id `eid(n)` at `T0 + t` seconds.
pub fn disconnect(
    n: u64,
    session: u64,
    t: i64,
    code: Option<i32>,
    reason: Option<&str>,
) -> ConnectionEvent {
    ssh_disconnect(eid(n), T0 + t * S, cid(session), code, reason)
}

/// A workspace-app event with id `eid(n)` at `T0 + t` seconds.
pub fn web(n: u64, t: i64, user: Option<Uuid>) -> ConnectionEvent {
    workspace_app(eid(n), T0 + t * S, user, 200)
}

/// Builder-style tweaks of an event.
pub trait Tweak: Sized {
    fn with(self, f: impl FnOnce(&mut ConnectionEvent)) -> Self;
    fn ip(self, ip: &str) -> Self {
        self.with(|e| e.ip = Some(ip.to_string()))
    }
    fn kind(self, t: &str) -> Self {
        self.with(|e| e.connection_type = t.to_string())
    }
    fn agent(self, a: &str) -> Self {
        self.with(|e| e.agent_name = a.to_string())
    }
    fn in_workspace(self, w: Uuid) -> Self {
        self.with(|e| e.workspace_id = w)
    }
    fn in_org(self, o: Uuid) -> Self {
        self.with(|e| e.organization_id = o)
    }
}

impl Tweak for ConnectionEvent {
    fn with(mut self, f: impl FnOnce(&mut ConnectionEvent)) -> Self {
        f(&mut self);
        self
    }
}

pub struct World {
    pub plugin: Plugin,
    pub host: MemoryHost,
}

impl World {
    /// A plugin with no service-log formats, a clock at `T0 + 1h`, and a directory with an
    /// owner (`admin`), `bob`, a deleted `carol` with a mixed-case email, a plain `member`,
    /// and an organization auditor of `org()`.
    pub fn new() -> Self {
        let mut host = MemoryHost::at(T0 + HOUR);
        host.add_organization(organization(org(), "coder"));
        host.add_organization(organization(other_org(), "other"));
        host.add_user(user(owner(), "alice", &[]));
        host.add_user(user(admin_id(), "admin", &["owner"]));
        host.add_user(user(bob(), "bob", &[]));
        let mut c = user(carol(), "carol", &[]);
        c.deleted = true;
        host.add_user(c);
        let mut mixed = user(uuid_in(30, 6), "dave", &[]);
        mixed.email = "Dave@Example.com".into();
        host.add_user(mixed);
        host.add_user(user(member(), "member", &["member"]));
        host.add_user(user(org_auditor(), "orgaudit", &[]));
        host.grant_organization_roles(org_auditor(), org(), &["organization-auditor"]);
        Self {
            plugin: Plugin::new(),
            host,
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
    ) -> Result<Vec<EventOutcome>, StorageError> {
        let plugin = &mut self.plugin;
        self.host.transaction(|h| plugin.ingest_batch(h, events))
    }

    pub fn rows(&self) -> Vec<ConnectionLog> {
        self.plugin.rows()
    }

    pub fn actor(&self, user: Uuid) -> Actor {
        self.host.actor(user).expect("a directory user")
    }

    /// `q` as the site owner, default limit.
    pub fn query(&self, q: &str) -> Result<Page, QueryError> {
        self.query_as(admin_id(), q, 0, 0)
    }

    pub fn query_as(
        &self,
        user: Uuid,
        q: &str,
        limit: u32,
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
        let mut fresh = Plugin::new();
        let events = self.host.journal_events();
        fresh.replay(&mut self.host, events).expect("replay");
        fresh.rows()
    }
}
