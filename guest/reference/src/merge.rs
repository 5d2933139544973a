//! Which values a row keeps: a row is a pure function of the set of its events, so order
//! and duplication cannot matter (Coder's merge depends on the order of arrival). Events are
//! [`EventRef`]s and rows [`RowRef`]s that borrow the same text: merging copies no string.
//!
//! "Earliest" means the smallest `time`, ties broken by the smallest `id` (compared as UUID
//! bytes, which is also their textual order). Two events with the same `id` are one event:
//! the journal keeps only the first, so duplicates passed here are identical copies and
//! cannot change a minimum.
//!
//! | field | value |
//! |---|---|
//! | `id`, descriptive fields (method, app, client session id, ip, names, user…) | the defining event: the earliest connect, else the earliest disconnect |
//! | `connect_time` | the smallest `time` of all the session's events |
//! | `disconnect_time` | the earliest disconnect's `time` |
//! | `disconnect_reason`, `code` | each from the earliest disconnect carrying a non-empty value for that field |
//!
//! A connect's `code` and `disconnect_reason` are never read: the code is dropped by
//! validation (Coder's agent API stores no code for a connect) and the reason of an ongoing
//! session means nothing.

use hashbrown::HashMap;
use hashbrown::hash_map::Entry;

use crate::store::FoldBuild;
use connlog_plugin_sdk::model::*;

/// The ordering key that defines "earliest".
fn earliness(event: &EventRef) -> (UnixNanos, [u8; 16]) {
    (event.time, *event.id.as_bytes())
}

fn earliest<'a, 'e>(events: impl Iterator<Item = &'a EventRef<'e>>) -> Option<&'a EventRef<'e>> {
    events.min_by_key(|e| earliness(e))
}

/// The row of a web or tunnel event: it never merges. Its `code` is the event's (an HTTP
/// status, or 101/403 for a tunnel) and it has no disconnect.
pub fn event_row<'e>(event: &EventRef<'e>) -> RowRef<'e> {
    let disconnected = event.status == ConnectionStatus::Disconnected;
    ConnectionLog {
        id: event.id,
        connect_time: event.time,
        organization_id: event.organization_id,
        workspace_owner_id: event.workspace_owner_id,
        workspace_id: event.workspace_id,
        workspace_name: event.workspace_name,
        agent_name: event.agent_name,
        connection_method: event.connection_method,
        code: event.code,
        ip: event.ip,
        user_agent: event.user_agent,
        user_id: event.user_id,
        app_name_or_port: event.app_name_or_port,
        connection_id: event.connection_id,
        // Validation lets no web event be a disconnect; were one to reach here it would be
        // a complete point-in-time row, as Coder's upsert would store it.
        disconnect_time: disconnected.then_some(event.time),
        disconnect_reason: event.disconnect_reason.filter(|r| !r.is_empty()),
        client_session_id: event.client_session_id,
    }
}

/// The row of one agent-reported session, from all of its canonical events (any order,
/// duplicates allowed). `events` is never empty and shares one session key.
///
/// # Panics
/// When `events` is empty.
pub fn session_row<'a, 'e: 'a, I>(events: I) -> RowRef<'e>
where
    I: IntoIterator<Item = &'a EventRef<'e>>,
    I::IntoIter: Clone,
{
    let events = events.into_iter();
    let connects = || {
        events
            .clone()
            .filter(|e| e.status == ConnectionStatus::Connected)
    };
    let disconnects = || {
        events
            .clone()
            .filter(|e| e.status == ConnectionStatus::Disconnected)
    };

    let defining = earliest(connects())
        .or_else(|| earliest(disconnects()))
        .expect("session_row needs at least one event");
    let connect_time = events
        .clone()
        .map(|e| e.time)
        .min()
        .unwrap_or(defining.time);
    let closing = Closing::of(disconnects());

    ConnectionLog {
        id: defining.id,
        connect_time,
        organization_id: defining.organization_id,
        workspace_owner_id: defining.workspace_owner_id,
        workspace_id: defining.workspace_id,
        workspace_name: defining.workspace_name,
        agent_name: defining.agent_name,
        connection_method: defining.connection_method,
        code: closing.and_then(|c| c.code),
        ip: defining.ip,
        user_agent: defining.user_agent,
        user_id: defining.user_id,
        app_name_or_port: defining.app_name_or_port,
        connection_id: defining.connection_id,
        disconnect_time: closing.map(|c| c.time),
        disconnect_reason: closing.and_then(|c| c.reason),
        client_session_id: defining.client_session_id,
    }
}

/// What a session's disconnects decide of its row: its disconnect time (the earliest
/// disconnect's), and the reason and the code of the earliest disconnects that carry one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Closing<'e> {
    pub time: UnixNanos,
    pub reason: Option<&'e str>,
    pub code: Option<i32>,
}

impl<'e> Closing<'e> {
    /// `None` when there is no disconnect.
    fn of<'a, I>(disconnects: I) -> Option<Self>
    where
        'e: 'a,
        I: Iterator<Item = &'a EventRef<'e>> + Clone,
    {
        let first = earliest(disconnects.clone())?;
        let reason_source = earliest(
            disconnects
                .clone()
                .filter(|e| e.disconnect_reason.is_some_and(|r| !r.is_empty())),
        );
        let code_source = earliest(disconnects.filter(|e| e.code.is_some()));
        Some(Self {
            time: first.time,
            reason: reason_source.and_then(|e| e.disconnect_reason),
            code: code_source.and_then(|e| e.code),
        })
    }
}

/// A batch's events grouped by the row they make, without copying an event: a web or
/// tunnel event is a group of its own; a session's events are chained in arrival order.
pub struct Groups<'a> {
    events: &'a [EventRef<'a>],
    /// Per event, the index of the next event of its session, or `END`.
    next: Vec<u32>,
    /// The index of each group's first event, in order of first arrival.
    heads: Vec<u32>,
}

const END: u32 = u32::MAX;

impl<'a> Groups<'a> {
    pub fn new(events: &'a [EventRef<'a>]) -> Self {
        assert!(
            events.len() < END as usize,
            "a batch holds fewer than 2^32 events"
        );
        let mut next = vec![END; events.len()];
        let mut heads = Vec::new();
        let mut tails: HashMap<(Uuid, Uuid, &str), u32, FoldBuild> =
            HashMap::with_hasher(FoldBuild);
        for (i, event) in (0u32..).zip(events) {
            let Some(connection_id) = event.connection_id else {
                heads.push(i);
                continue;
            };
            match tails.entry((connection_id, event.workspace_id, event.agent_name)) {
                Entry::Occupied(mut tail) => {
                    next[*tail.get() as usize] = i;
                    *tail.get_mut() = i;
                }
                Entry::Vacant(slot) => {
                    slot.insert(i);
                    heads.push(i);
                }
            }
        }
        Self {
            events,
            next,
            heads,
        }
    }

    pub fn len(&self) -> usize {
        self.heads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// Each group's first event.
    pub fn firsts(&self) -> impl Iterator<Item = &'a EventRef<'a>> + '_ {
        self.heads.iter().map(|&i| &self.events[i as usize])
    }

    /// The events of group `group`, in arrival order.
    fn members(&self, group: usize) -> impl Iterator<Item = &'a EventRef<'a>> + Clone + '_ {
        core::iter::successors(Some(self.heads[group]), |&i| {
            Some(self.next[i as usize]).filter(|&n| n != END)
        })
        .map(|i| &self.events[i as usize])
    }

    /// When every event of group `group` is a session's disconnect: what they decide of
    /// its row. Merged with the row of the session while it is ongoing (exactly its
    /// earliest connect), they change nothing else (`RowStore::close`).
    pub fn only_disconnects(&self, group: usize) -> Option<Closing<'a>> {
        let first = &self.events[self.heads[group] as usize];
        let disconnected = |e: &EventRef| e.status == ConnectionStatus::Disconnected;
        if first.connection_id.is_none() || !self.members(group).all(disconnected) {
            return None;
        }
        Closing::of(self.members(group))
    }

    /// The row of group `group`, merged with `journaled`: the events of the same session
    /// the journal held before this batch (empty for a new session or a single event).
    pub fn row<'b>(&'b self, group: usize, journaled: &'b [EventRef<'b>]) -> RowRef<'b> {
        let first = &self.events[self.heads[group] as usize];
        if first.connection_id.is_none() {
            return event_row(first);
        }
        session_row(journaled.iter().chain(self.members(group)))
    }
}
