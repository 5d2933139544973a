//! An in-memory host for a plugin's native tests and benchmarks (feature `testing`).
//!
//! [`MemoryHost`] implements every import trait, so it is a [`PluginHost`](crate::PluginHost):
//! - a settable clock ([`MemoryHost::now`], [`MemoryHost::set_now`]);
//! - a directory built from organizations and users, plus the organization roles that
//!   [`MemoryHost::actor`] turns into an [`Actor`];
//! - a journal: events keyed by id, indexed by session, with snapshot chunks;
//! - the captured service-log lines.
//!
//! Like the real host, the journal can be transactional: [`MemoryHost::transaction`] runs
//! one plugin call and rolls the journal back when the call fails, as the host does when a
//! plugin call returns an error. Outside a transaction every journal call is applied at
//! once (no undo log is kept, so benchmarks pay nothing for it).
//!
//! Failure injection: [`MemoryHost::fail_next`] makes the next call of one journal
//! operation fail with [`JournalError::Unavailable`]; [`MemoryHost::calls`] counts calls.

use std::collections::{BTreeMap, HashMap};

use crate::imports::{HostClock, HostDirectory, HostJournal, HostServiceLog};
use crate::model::*;

/// A journal operation, for failure injection and call counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JournalOp {
    Append,
    SessionEvents,
    Forget,
    WriteSnapshotChunk,
    ReadSnapshotChunk,
}

/// How many times each journal operation and the service log were called.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub append: usize,
    pub session_events: usize,
    pub forget: usize,
    pub write_snapshot_chunk: usize,
    pub read_snapshot_chunk: usize,
    pub write_service_log: usize,
}

enum Undo {
    Inserted(Uuid),
    Removed(Box<ConnectionEvent>),
}

/// An in-memory host: clock, directory, journal and service log.
#[derive(Default)]
pub struct MemoryHost {
    now: UnixNanos,
    organizations: Vec<Organization>,
    users: Vec<User>,
    organization_roles: HashMap<Uuid, Vec<(Uuid, Vec<String>)>>,
    events: HashMap<Uuid, ConnectionEvent>,
    sessions: HashMap<SessionKey, Vec<Uuid>>,
    /// The chunks of the last snapshot written.
    snapshot: Vec<Vec<u8>>,
    snapshot_read_position: usize,
    /// Every service-log line written, in order.
    pub service_log: Vec<LogLine>,
    failures: Vec<JournalOp>,
    calls: CallCounts,
    undo: Option<Vec<Undo>>,
}

impl MemoryHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// A host whose clock reads `now`.
    pub fn at(now: UnixNanos) -> Self {
        Self {
            now,
            ..Self::default()
        }
    }

    /// A host whose directory holds these organizations and users, in this order (for
    /// tests that only read the directory).
    pub fn with_directory(
        organizations: impl IntoIterator<Item = Organization>,
        users: impl IntoIterator<Item = User>,
    ) -> Self {
        let mut host = Self::default();
        for organization in organizations {
            host.add_organization(organization);
        }
        for user in users {
            host.add_user(user);
        }
        host
    }

    // ----- clock ------------------------------------------------------------------------

    pub fn set_now(&mut self, now: UnixNanos) {
        self.now = now;
    }

    pub fn advance(&mut self, nanos: i64) {
        self.now = self.now.saturating_add(nanos);
    }

    // ----- directory --------------------------------------------------------------------

    pub fn add_organization(&mut self, organization: Organization) -> &mut Self {
        self.organizations.retain(|o| o.id != organization.id);
        self.organizations.push(organization);
        self
    }

    pub fn add_user(&mut self, user: User) -> &mut Self {
        self.users.retain(|u| u.id != user.id);
        self.users.push(user);
        self
    }

    /// Gives `user` these roles in `organization` (for [`MemoryHost::actor`]).
    pub fn grant_organization_roles(
        &mut self,
        user: Uuid,
        organization: Uuid,
        roles: &[&str],
    ) -> &mut Self {
        let entry = self.organization_roles.entry(user).or_default();
        entry.retain(|(org, _)| *org != organization);
        entry.push((
            organization,
            roles.iter().map(|r| (*r).to_string()).collect(),
        ));
        self
    }

    pub fn organizations(&self) -> &[Organization] {
        &self.organizations
    }

    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// The actor for a directory user: their site roles and organization roles. `None`
    /// when the directory has no such user.
    pub fn actor(&self, user: Uuid) -> Option<Actor> {
        let found = self.users.iter().find(|u| u.id == user)?;
        Some(Actor {
            user_id: found.id,
            site_roles: found.site_roles.clone(),
            organization_roles: self
                .organization_roles
                .get(&user)
                .cloned()
                .unwrap_or_default(),
        })
    }

    // ----- journal inspection -----------------------------------------------------------

    /// How many events the journal holds.
    pub fn journal_len(&self) -> usize {
        self.events.len()
    }

    pub fn journal_event(&self, id: Uuid) -> Option<&ConnectionEvent> {
        self.events.get(&id)
    }

    /// Every journaled event, ordered by time then id (the order replays use by default).
    pub fn journal_events(&self) -> Vec<ConnectionEvent> {
        let ordered: BTreeMap<(UnixNanos, Uuid), &ConnectionEvent> =
            self.events.values().map(|e| ((e.time, e.id), e)).collect();
        ordered.into_values().cloned().collect()
    }

    /// The snapshot chunks last written.
    pub fn snapshot_chunks(&self) -> &[Vec<u8>] {
        &self.snapshot
    }

    /// Replaces the stored snapshot (to test damaged or foreign snapshots).
    pub fn set_snapshot_chunks(&mut self, chunks: Vec<Vec<u8>>) {
        self.snapshot = chunks;
        self.snapshot_read_position = 0;
    }

    /// Starts a new snapshot: the next `write_snapshot_chunk` replaces the old one. Call it
    /// before `save_snapshot`, as the host does.
    pub fn begin_snapshot_write(&mut self) {
        self.snapshot.clear();
        self.snapshot_read_position = 0;
    }

    /// Rewinds reading to the first chunk. Call it before `load_snapshot`.
    pub fn begin_snapshot_read(&mut self) {
        self.snapshot_read_position = 0;
    }

    // ----- service log ------------------------------------------------------------------

    /// Takes the captured service-log lines.
    pub fn take_service_log(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.service_log)
    }

    // ----- failure injection and transactions -------------------------------------------

    /// The next call of `op` fails with `JournalError::Unavailable` and changes nothing.
    /// Several calls queue several failures.
    pub fn fail_next(&mut self, op: JournalOp) {
        self.failures.push(op);
    }

    /// How many calls each operation received so far.
    pub fn calls(&self) -> CallCounts {
        self.calls
    }

    pub fn reset_calls(&mut self) {
        self.calls = CallCounts::default();
    }

    /// Runs one plugin call as the real host does: every journal change inside it is one
    /// transaction, rolled back when the call returns `Err`. Service-log lines are not
    /// transactional (they are only written after the fallible work).
    pub fn transaction<T, E>(
        &mut self,
        call: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        let outer = self.undo.replace(Vec::new());
        let result = call(self);
        let undo = self.undo.take().unwrap_or_default();
        if result.is_err() {
            for step in undo.into_iter().rev() {
                match step {
                    Undo::Inserted(id) => {
                        self.remove_event(id);
                    }
                    Undo::Removed(event) => self.insert_event(*event),
                }
            }
            self.undo = outer;
        } else {
            self.undo = match outer {
                Some(mut o) => {
                    o.extend(undo);
                    Some(o)
                }
                None => None,
            };
        }
        result
    }

    fn injected(&mut self, op: JournalOp) -> Result<(), JournalError> {
        if let Some(position) = self.failures.iter().position(|f| *f == op) {
            self.failures.remove(position);
            return Err(JournalError::Unavailable(format!(
                "injected failure of {op:?}"
            )));
        }
        Ok(())
    }

    fn insert_event(&mut self, event: ConnectionEvent) {
        if let Some(key) = SessionKey::of(&event) {
            self.sessions.entry(key).or_default().push(event.id);
        }
        self.events.insert(event.id, event);
    }

    fn remove_event(&mut self, id: Uuid) -> Option<ConnectionEvent> {
        let event = self.events.remove(&id)?;
        if let Some(key) = SessionKey::of(&event)
            && let Some(ids) = self.sessions.get_mut(&key)
        {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.sessions.remove(&key);
            }
        }
        Some(event)
    }

    fn record(&mut self, step: Undo) {
        if let Some(log) = self.undo.as_mut() {
            log.push(step);
        }
    }
}

impl HostClock for MemoryHost {
    fn now(&self) -> UnixNanos {
        self.now
    }
}

impl HostDirectory for MemoryHost {
    fn organization_by_id(&self, id: Uuid) -> Option<Organization> {
        self.organizations.iter().find(|o| o.id == id).cloned()
    }

    fn organization_by_name(&self, name: &str) -> Option<Organization> {
        let wanted = name.to_lowercase();
        self.organizations
            .iter()
            .find(|o| o.name.to_lowercase() == wanted)
            .cloned()
    }

    fn user_by_id(&self, id: Uuid) -> Option<User> {
        self.users.iter().find(|u| u.id == id).cloned()
    }

    fn users_by_username(&self, username: &str) -> Vec<User> {
        let wanted = username.to_lowercase();
        self.users
            .iter()
            .filter(|u| u.username.to_lowercase() == wanted)
            .cloned()
            .collect()
    }

    fn users_by_email(&self, email: &str) -> Vec<User> {
        self.users
            .iter()
            .filter(|u| u.email == email)
            .cloned()
            .collect()
    }
}

impl HostServiceLog for MemoryHost {
    fn write_service_log(&mut self, lines: Vec<LogLine>) {
        self.calls.write_service_log += 1;
        self.service_log.extend(lines);
    }
}

impl HostJournal for MemoryHost {
    fn append(&mut self, events: &[ConnectionEvent]) -> Result<Vec<bool>, JournalError> {
        self.calls.append += 1;
        self.injected(JournalOp::Append)?;
        let mut fresh = Vec::with_capacity(events.len());
        for event in events {
            let new = !self.events.contains_key(&event.id);
            if new {
                self.insert_event(event.clone());
                self.record(Undo::Inserted(event.id));
            }
            fresh.push(new);
        }
        Ok(fresh)
    }

    fn session_events(
        &mut self,
        keys: &[SessionKey],
    ) -> Result<Vec<Vec<ConnectionEvent>>, JournalError> {
        self.calls.session_events += 1;
        self.injected(JournalOp::SessionEvents)?;
        Ok(keys
            .iter()
            .map(|key| {
                self.sessions
                    .get(key)
                    .map(|ids| {
                        ids.iter()
                            .filter_map(|id| self.events.get(id))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect())
    }

    fn forget(&mut self, origins: &[RowOrigin]) -> Result<u64, JournalError> {
        self.calls.forget += 1;
        self.injected(JournalOp::Forget)?;
        let mut removed = 0u64;
        for origin in origins {
            let ids: Vec<Uuid> = match origin {
                RowOrigin::SingleEvent(id) => vec![*id],
                RowOrigin::Session(key) => self.sessions.get(key).cloned().unwrap_or_default(),
            };
            for id in ids {
                if let Some(event) = self.remove_event(id) {
                    removed += 1;
                    self.record(Undo::Removed(Box::new(event)));
                }
            }
        }
        Ok(removed)
    }

    fn write_snapshot_chunk(&mut self, chunk: &[u8]) -> Result<(), JournalError> {
        self.calls.write_snapshot_chunk += 1;
        self.injected(JournalOp::WriteSnapshotChunk)?;
        self.snapshot.push(chunk.to_vec());
        Ok(())
    }

    fn read_snapshot_chunk(&mut self) -> Result<Option<Vec<u8>>, JournalError> {
        self.calls.read_snapshot_chunk += 1;
        self.injected(JournalOp::ReadSnapshotChunk)?;
        let chunk = self.snapshot.get(self.snapshot_read_position).cloned();
        if chunk.is_some() {
            self.snapshot_read_position += 1;
        }
        Ok(chunk)
    }
}

/// Builders for tests: deterministic ids and ready-made events.
pub mod fixtures {
    use crate::model::*;

    /// Borrowed views of `events`, as the merge takes them.
    pub fn event_refs(events: &[ConnectionEvent]) -> Vec<EventRef<'_>> {
        events.iter().map(ConnectionEvent::as_event_ref).collect()
    }

    /// A deterministic, non-nil UUID from a number (`00000000-0000-4000-8000-<n>`).
    pub fn uuid(n: u64) -> Uuid {
        Uuid::from_u64_pair(
            0x0000_0000_0000_4000,
            0x8000_0000_0000_0000 | (n & 0x0000_ffff_ffff_ffff),
        )
    }

    /// A UUID in a namespace, so that tests can keep ids of different kinds apart.
    pub fn uuid_in(namespace: u16, n: u64) -> Uuid {
        Uuid::from_u64_pair(
            ((namespace as u64) << 48) | 0x4000,
            0x8000_0000_0000_0000 | (n & 0x0000_ffff_ffff_ffff),
        )
    }

    pub const SECOND: i64 = 1_000_000_000;
    /// 2025-07-10T10:00:00Z, a base time for tests.
    pub const T0: UnixNanos = 1_752_141_600 * SECOND;

    /// An agent-reported SSH connect of session `connection_id`.
    pub fn ssh_connect(id: Uuid, time: UnixNanos, connection_id: Uuid) -> ConnectionEvent {
        ConnectionEvent {
            id,
            time,
            organization_id: uuid_in(1, 1),
            workspace_owner_id: uuid_in(2, 1),
            workspace_id: uuid_in(3, 1),
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

    /// A workspace-app event (a web event: point-in-time, never merges).
    pub fn workspace_app(
        id: Uuid,
        time: UnixNanos,
        user: Option<Uuid>,
        code: i32,
    ) -> ConnectionEvent {
        ConnectionEvent {
            id,
            time,
            organization_id: uuid_in(1, 1),
            workspace_owner_id: uuid_in(2, 1),
            workspace_id: uuid_in(3, 1),
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

    /// A directory user with these site roles.
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
}
