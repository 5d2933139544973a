//! Fixtures shared by the plugin-level suites: ids, event builders, and the directory
//! every `World` is built over.
#![allow(dead_code)]

use connlog_plugin_sdk::model::*;
use connlog_plugin_sdk::testing::MemoryHost;
pub use connlog_plugin_sdk::testing::fixtures::*;

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
    fn method(self, m: ConnectionMethod) -> Self {
        self.with(|e| e.connection_method = m)
    }
    /// The app name or port, as sent.
    fn app(self, a: &str) -> Self {
        self.with(|e| e.app_name_or_port = Some(a.to_string()))
    }
    fn client_session(self, id: &str) -> Self {
        self.with(|e| e.client_session_id = Some(id.to_string()))
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

/// The directory of every `World`, with its clock at
/// `T0 + 1h`: an owner (`admin`), `bob`, a deleted `carol`, `dave` with a mixed-case email,
/// a plain `member`, an organization auditor of `org()`, and `alice`, the workspace owner.
pub fn directory() -> MemoryHost {
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
    host
}
