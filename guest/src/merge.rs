//! Which values a row keeps (PRODUCT.md "Which values a merged row keeps"): a row is a pure
//! function of the set of its events, so order and duplication cannot matter.
//!
//! "Earliest" means the smallest `time`, ties broken by the smallest `id` (compared as UUID
//! bytes, which is also their textual order). Two events with the same `id` are one event:
//! the journal keeps only the first, so duplicates passed here are identical copies and
//! cannot change a minimum.
//!
//! | field | value |
//! |---|---|
//! | `id`, descriptive fields | the defining event: the earliest connect, else the earliest disconnect |
//! | `connect_time` | the smallest `time` of all the session's events |
//! | `disconnect_time` | the earliest disconnect's `time` |
//! | `disconnect_reason`, `code` | each from the earliest disconnect carrying a non-empty value for that field |
//!
//! A connect's `code` and `disconnect_reason` are never read: the code is dropped by
//! validation (spec §2.1 item 4) and the reason of an ongoing session means nothing.

use crate::model::*;

/// The ordering key that defines "earliest".
fn earliness(event: &ConnectionEvent) -> (UnixNanos, [u8; 16]) {
    (event.time, *event.id.as_bytes())
}

fn earliest<'a>(events: impl Iterator<Item = &'a ConnectionEvent>) -> Option<&'a ConnectionEvent> {
    events.min_by_key(|e| earliness(e))
}

/// The row of a web or tunnel event: it never merges. Its `code` is the event's (an HTTP
/// status, or 101/403 for a tunnel) and it has no disconnect.
pub fn single_event_row(event: &ConnectionEvent) -> ConnectionLog {
    let disconnected = event.status == ConnectionStatus::Disconnected;
    ConnectionLog {
        id: event.id,
        connect_time: event.time,
        organization_id: event.organization_id,
        workspace_owner_id: event.workspace_owner_id,
        workspace_id: event.workspace_id,
        workspace_name: event.workspace_name.clone(),
        agent_name: event.agent_name.clone(),
        connection_type: event.connection_type.clone(),
        code: event.code,
        ip: event.ip.clone(),
        user_agent: event.user_agent.clone(),
        user_id: event.user_id,
        slug_or_port: event.slug_or_port.clone(),
        connection_id: event.connection_id,
        // Validation lets no web event be a disconnect; were one to reach here it would be
        // a complete point-in-time row, as Coder's upsert would store it.
        disconnect_time: disconnected.then_some(event.time),
        disconnect_reason: event.disconnect_reason.clone().filter(|r| !r.is_empty()),
    }
}

/// The row of one agent-reported session, from all of its canonical events (any order,
/// duplicates allowed). `events` is never empty and shares one session key.
///
/// # Panics
/// When `events` is empty.
pub fn fold_session(events: &[ConnectionEvent]) -> ConnectionLog {
    let connects = || {
        events
            .iter()
            .filter(|e| e.status == ConnectionStatus::Connected)
    };
    let disconnects = || {
        events
            .iter()
            .filter(|e| e.status == ConnectionStatus::Disconnected)
    };

    let defining = earliest(connects())
        .or_else(|| earliest(disconnects()))
        .expect("fold_session needs at least one event");
    let connect_time = events.iter().map(|e| e.time).min().unwrap_or(defining.time);
    let first_disconnect = earliest(disconnects());
    let reason_source = earliest(disconnects().filter(|e| {
        e.disconnect_reason
            .as_deref()
            .is_some_and(|r| !r.is_empty())
    }));
    let code_source = earliest(disconnects().filter(|e| e.code.is_some()));

    ConnectionLog {
        id: defining.id,
        connect_time,
        organization_id: defining.organization_id,
        workspace_owner_id: defining.workspace_owner_id,
        workspace_id: defining.workspace_id,
        workspace_name: defining.workspace_name.clone(),
        agent_name: defining.agent_name.clone(),
        connection_type: defining.connection_type.clone(),
        code: code_source.and_then(|e| e.code),
        ip: defining.ip.clone(),
        user_agent: defining.user_agent.clone(),
        user_id: defining.user_id,
        slug_or_port: defining.slug_or_port.clone(),
        connection_id: defining.connection_id,
        disconnect_time: first_disconnect.map(|e| e.time),
        disconnect_reason: reason_source.and_then(|e| e.disconnect_reason.clone()),
    }
}

/// The session an agent-reported event belongs to; `None` for web and tunnel events.
pub fn session_key(event: &ConnectionEvent) -> Option<SessionKey> {
    event.connection_id.map(|connection_id| SessionKey {
        connection_id,
        workspace_id: event.workspace_id,
        agent_name: event.agent_name.clone(),
    })
}
