//! The kit's fixtures: deterministic ids, event builders, the directory every case runs
//! over, and a mixed data set.

use std::collections::BTreeMap;

use crate::directory::Directory;
use crate::model::*;

pub const SECOND: i64 = 1_000_000_000;
pub const S: i64 = SECOND;
pub const HOUR: i64 = 3600 * SECOND;
/// 2025-07-10T10:00:00Z.
pub const T0: UnixNanos = 1_752_141_600 * SECOND;

/// A UUID in a namespace (`<ns>0000-…-4000-8000-<n>`), so ids of different kinds stay apart
/// and a failure message can name them.
pub fn uuid_in(namespace: u16, n: u64) -> Uuid {
    Uuid::from_u64_pair(
        ((namespace as u64) << 48) | 0x4000,
        0x8000_0000_0000_0000 | (n & 0x0000_ffff_ffff_ffff),
    )
}

/// The organization of every fixture event.
pub fn org() -> Uuid {
    uuid_in(1, 1)
}
pub fn other_org() -> Uuid {
    uuid_in(1, 2)
}
/// The workspace owner of every fixture event (`alice`).
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
/// Deleted.
pub fn carol() -> Uuid {
    uuid_in(30, 3)
}
/// A plain member of `org()`.
pub fn member() -> Uuid {
    uuid_in(30, 4)
}
/// Organization auditor of `org()`.
pub fn org_auditor() -> Uuid {
    uuid_in(30, 5)
}
/// Her email is stored in mixed case.
pub fn dave() -> Uuid {
    uuid_in(30, 6)
}
/// Site auditor.
pub fn site_auditor() -> Uuid {
    uuid_in(30, 7)
}
/// Organization auditor of both organizations.
pub fn two_org_auditor() -> Uuid {
    uuid_in(30, 8)
}

/// A short name for a fixture id in failure messages (`eid(3)`, `cid(1)`), else the UUID.
pub fn id_name(id: Uuid) -> String {
    let (high, low) = id.as_u64_pair();
    let n = low & 0x0000_ffff_ffff_ffff;
    if high & 0x0000_ffff_ffff_ffff == 0x4000 && low >> 48 == 0x8000 {
        let kind = match high >> 48 {
            1 => "org",
            3 => "workspace",
            10 => "cid",
            20 => "eid",
            30 => "user",
            _ => return id.to_string(),
        };
        return format!("{kind}({n})");
    }
    id.to_string()
}

/// An agent-reported SSH connect of session `connection_id`.
pub fn ssh_connect(id: Uuid, time: UnixNanos, connection_id: Uuid) -> ConnectionEvent {
    ConnectionEvent {
        id,
        time,
        organization_id: org(),
        workspace_owner_id: owner(),
        workspace_id: workspace(),
        workspace_name: "dev".to_string(),
        agent_name: "main".to_string(),
        connection_method: ConnectionMethod::Ssh,
        code: None,
        ip: Some("fd7a:115c:a1e0::1".to_string()),
        user_agent: None,
        user_id: None,
        app_name_or_port: None,
        connection_id: Some(connection_id),
        disconnect_reason: None,
        client_session_id: None,
        status: ConnectionStatus::Connected,
    }
}

/// An agent-reported SSH disconnect of session `connection_id`.
pub fn ssh_disconnect(
    id: Uuid,
    time: UnixNanos,
    connection_id: Uuid,
    code: Option<i32>,
    reason: Option<&str>,
) -> ConnectionEvent {
    ConnectionEvent {
        code,
        disconnect_reason: reason.map(str::to_string),
        status: ConnectionStatus::Disconnected,
        ..ssh_connect(id, time, connection_id)
    }
}

/// A workspace-app event: a web event, point-in-time, never merged.
pub fn workspace_app(id: Uuid, time: UnixNanos, user: Option<Uuid>, code: i32) -> ConnectionEvent {
    ConnectionEvent {
        id,
        time,
        organization_id: org(),
        workspace_owner_id: owner(),
        workspace_id: workspace(),
        workspace_name: "dev".to_string(),
        agent_name: "main".to_string(),
        connection_method: ConnectionMethod::WorkspaceApp,
        code: Some(code),
        ip: Some("127.0.0.1".to_string()),
        user_agent: Some("Mozilla/5.0".to_string()),
        user_id: user,
        app_name_or_port: Some("code-server".to_string()),
        connection_id: None,
        disconnect_reason: None,
        client_session_id: None,
        status: ConnectionStatus::Connected,
    }
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

/// An agent-reported port forward (D's `METHOD_PORT_FORWARDING`): a session with no app.
pub fn agent_port_forward(n: u64, session: u64, t: i64) -> ConnectionEvent {
    connect(n, session, t).method(ConnectionMethod::PortForwarding)
}

/// The client session id of Coder's tests.
pub const CSID: &str = "0123456789abcdef0123456789abcdef";

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
    /// The client's app, or a web event's slug or port, as sent.
    fn app(self, a: &str) -> Self {
        self.with(|e| e.app_name_or_port = Some(a.to_string()))
    }
    fn no_app(self) -> Self {
        self.with(|e| e.app_name_or_port = None)
    }
    fn session(self, csid: &str) -> Self {
        self.with(|e| e.client_session_id = Some(csid.to_string()))
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

pub fn user(id: Uuid, username: &str, site_roles: &[&str]) -> User {
    User {
        id,
        username: username.to_string(),
        email: format!("{username}@example.com"),
        name: username.to_string(),
        avatar_url: String::new(),
        status: "active".to_string(),
        login_type: "password".to_string(),
        created_at: T0,
        updated_at: T0,
        last_seen_at: T0,
        deleted: false,
        site_roles: site_roles.iter().map(|r| (*r).to_string()).collect(),
    }
}

pub fn organization(id: Uuid, name: &str) -> Organization {
    Organization {
        id,
        name: name.to_string(),
        display_name: name.to_string(),
        icon: String::new(),
    }
}

/// Two organizations (`coder`, `other`) and the users: the site owner `admin`, `bob`, a
/// deleted `carol`, `dave` with a mixed-case email, a plain `member`, `orgaudit` (auditor
/// of `coder`), `alice` (the workspace owner), a site `auditor` and `twoaudit` (auditor of
/// both organizations).
pub fn directory() -> Directory {
    let mut d = Directory::new();
    let built = (|| {
        d.add_organization(organization(org(), "coder"))?;
        d.add_organization(organization(other_org(), "other"))?;
        let none = BTreeMap::new;
        let auditor_of = |orgs: &[Uuid]| -> BTreeMap<Uuid, Vec<String>> {
            orgs.iter()
                .map(|o| (*o, vec!["organization-auditor".to_string()]))
                .collect()
        };
        d.add_user(user(owner(), "alice", &[]), none())?;
        d.add_user(user(admin_id(), "admin", &["owner"]), none())?;
        d.add_user(user(bob(), "bob", &[]), none())?;
        let mut c = user(carol(), "carol", &[]);
        c.deleted = true;
        d.add_user(c, none())?;
        let mut mixed = user(dave(), "dave", &[]);
        mixed.email = "Dave@Example.com".into();
        d.add_user(mixed, none())?;
        d.add_user(
            user(member(), "member", &["member"]),
            BTreeMap::from([(org(), Vec::new())]),
        )?;
        d.add_user(user(org_auditor(), "orgaudit", &[]), auditor_of(&[org()]))?;
        d.add_user(user(site_auditor(), "auditor", &["auditor"]), none())?;
        d.add_user(
            user(two_org_auditor(), "twoaudit", &[]),
            auditor_of(&[org(), other_org()]),
        )?;
        Ok::<_, crate::directory::DirectoryError>(())
    })();
    built.expect("the fixture directory is consistent");
    d
}

/// Every kind of row over both organizations that contract 0.1.0 can carry: completed,
/// ongoing and disconnect-only sessions of SSH from several apps and of the web terminal,
/// and web, port-forwarding and tunnel rows with and without users.
pub fn mixed_events() -> Vec<ConnectionEvent> {
    use ConnectionMethod::{ReconnectingPty, Ssh};
    let kinds = [
        (Ssh, None),
        (Ssh, Some("vscode")),
        (Ssh, Some("jetbrains")),
        (ReconnectingPty, None),
        (Ssh, Some("cursor")),
        (Ssh, Some("goland")),
        (Ssh, Some("some_new_ide")),
    ];
    let mut events = Vec::new();
    for s in 1..=15u64 {
        let t = s as i64 * 37;
        let (method, app) = kinds[s as usize % kinds.len()];
        let mut c = connect(100 + s, s, t)
            .method(method)
            .with(|e| e.app_name_or_port = app.map(str::to_string));
        if s % 4 == 0 {
            c = c.in_org(other_org());
        }
        if s % 5 == 0 {
            c = c.ip("10.0.0.9");
        }
        events.push(c.clone());
        if s % 3 != 0 {
            let reason = (s % 2 == 0).then_some("client closed");
            let mut d = disconnect(200 + s, s, t + 5 + s as i64, Some((s % 2) as i32), reason);
            d.organization_id = c.organization_id;
            events.push(d);
        }
    }
    events.push(disconnect(300, 50, 7, Some(1), Some("lost")));
    let users = [Some(bob()), None, Some(carol()), Some(dave()), Some(bob())];
    for i in 0..10u64 {
        let mut w = web(400 + i, 3 * i as i64, users[i as usize % users.len()]);
        match i % 3 {
            1 => w = w.method(ConnectionMethod::PortForwarding).app("8080"),
            2 => {
                w = w
                    .method(ConnectionMethod::Tunnel)
                    .no_app()
                    .with(|e| e.code = Some(101))
            }
            _ => {}
        }
        if i % 4 == 3 {
            w = w.in_org(other_org());
        }
        events.push(w);
    }
    events
}

/// [`mixed_events`] and what only contract 0.2.0 carries: client session ids (one shared by
/// two sessions), a web terminal's app, and agent-reported port forwards (an ongoing one
/// and a completed one with a session id).
pub fn current_events() -> Vec<ConnectionEvent> {
    let mut events = mixed_events();
    events.extend([
        connect(500, 60, 11).session(CSID),
        connect(501, 61, 12).session(CSID).app("Cursor"),
        disconnect(502, 61, 70, Some(0), None)
            .session(CSID)
            .app("Cursor"),
        connect(503, 62, 13)
            .method(ConnectionMethod::ReconnectingPty)
            .app("cursor"),
        agent_port_forward(504, 63, 14),
        agent_port_forward(505, 64, 15).session(CSID),
        disconnect(506, 64, 80, None, Some("forward closed"))
            .method(ConnectionMethod::PortForwarding)
            .session(CSID),
    ]);
    events
}
