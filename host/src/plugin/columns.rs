//! The replay batch (`types.event-columns`): journaled events as columns, the host's side.
//!
//! A `list<connection-event>` crosses the component boundary one field and one string at a
//! time, and every string is a separate allocation in the plugin. As columns, a batch is a
//! few lists of integers plus one string holding all the text. The layout is the WIT
//! record's, as its comments in the contract define it; plugins decode exactly this.

use crate::model::{ConnectionEvent, ConnectionStatus, UnixNanos, Uuid};

/// UUIDs per event, each as two `u64` halves: id, organization, owner, workspace, user,
/// connection (nil when absent).
const UUIDS: usize = 6;
/// Strings per event: workspace name, agent name, ip, user agent, app name or port,
/// disconnect reason, client session id (empty when absent).
pub(crate) const STRINGS: usize = 7;

/// Bits of [`EventColumns::flags`], as the WIT record documents them.
pub(crate) mod flag {
    pub const DISCONNECTED: u16 = 1;
    pub const CODE: u16 = 1 << 1;
    pub const IP: u16 = 1 << 2;
    pub const USER_AGENT: u16 = 1 << 3;
    pub const APP_NAME_OR_PORT: u16 = 1 << 4;
    pub const DISCONNECT_REASON: u16 = 1 << 5;
    pub const USER_ID: u16 = 1 << 6;
    pub const CONNECTION_ID: u16 = 1 << 7;
    pub const CLIENT_SESSION_ID: u16 = 1 << 8;
}

/// Mirror of the WIT record `event-columns`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventColumns {
    pub uuids: Vec<u64>,
    pub times: Vec<UnixNanos>,
    pub codes: Vec<i32>,
    pub flags: Vec<u16>,
    /// [`ConnectionMethod::index`](crate::model::ConnectionMethod::index) of each event.
    pub methods: Vec<u8>,
    pub text: String,
    /// The end of each string in `text`, in bytes; each starts where the one before ends.
    pub text_ends: Vec<u32>,
}

impl EventColumns {
    /// The columns of `events`, in order.
    ///
    /// # Panics
    /// When the batch's text reaches 4 GiB (the host sends batches of thousands of events,
    /// each string capped by validation).
    pub fn from_events<S: AsRef<str>>(events: &[ConnectionEvent<S>]) -> Self {
        let text_bytes = events
            .iter()
            .map(|e| {
                strings(e)
                    .into_iter()
                    .flatten()
                    .map(|s| s.as_ref().len())
                    .sum::<usize>()
            })
            .sum();
        let mut columns = Self::with_capacity(events.len(), text_bytes);
        for event in events {
            columns.push(event);
        }
        columns
    }

    /// Empty columns with room for `events` events and `text_bytes` bytes of text.
    pub fn with_capacity(events: usize, text_bytes: usize) -> Self {
        Self {
            uuids: Vec::with_capacity(events * UUIDS * 2),
            times: Vec::with_capacity(events),
            codes: Vec::with_capacity(events),
            flags: Vec::with_capacity(events),
            methods: Vec::with_capacity(events),
            text: String::with_capacity(text_bytes),
            text_ends: Vec::with_capacity(events * STRINGS),
        }
    }

    /// Appends one event.
    ///
    /// # Panics
    /// When the text reaches 4 GiB.
    pub fn push<S: AsRef<str>>(&mut self, event: &ConnectionEvent<S>) {
        let nil = Uuid::nil();
        for id in [
            event.id,
            event.organization_id,
            event.workspace_owner_id,
            event.workspace_id,
            event.user_id.unwrap_or(nil),
            event.connection_id.unwrap_or(nil),
        ] {
            let (high, low) = id.as_u64_pair();
            self.uuids.extend([high, low]);
        }
        self.times.push(event.time);
        self.codes.push(event.code.unwrap_or(0));

        let present = [
            (
                event.status == ConnectionStatus::Disconnected,
                flag::DISCONNECTED,
            ),
            (event.code.is_some(), flag::CODE),
            (event.ip.is_some(), flag::IP),
            (event.user_agent.is_some(), flag::USER_AGENT),
            (event.app_name_or_port.is_some(), flag::APP_NAME_OR_PORT),
            (event.disconnect_reason.is_some(), flag::DISCONNECT_REASON),
            (event.user_id.is_some(), flag::USER_ID),
            (event.connection_id.is_some(), flag::CONNECTION_ID),
            (event.client_session_id.is_some(), flag::CLIENT_SESSION_ID),
        ];
        self.flags.push(
            present
                .into_iter()
                .filter(|(set, _)| *set)
                .fold(0, |bits, (_, bit)| bits | bit),
        );
        self.methods.push(event.connection_method.index());

        for text in strings(event) {
            self.text.push_str(text.map_or("", AsRef::as_ref));
            let end = u32::try_from(self.text.len())
                .expect("a replay batch holds less than 4 GiB of text");
            self.text_ends.push(end);
        }
    }

    /// How many events the columns hold.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

/// An event's strings in column order; `None` for an absent optional one.
fn strings<S: AsRef<str>>(event: &ConnectionEvent<S>) -> [Option<&S>; STRINGS] {
    [
        Some(&event.workspace_name),
        Some(&event.agent_name),
        event.ip.as_ref(),
        event.user_agent.as_ref(),
        event.app_name_or_port.as_ref(),
        event.disconnect_reason.as_ref(),
        event.client_session_id.as_ref(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConnectionMethod;

    /// Pins the layout plugins decode: a change here breaks every plugin's `replay`.
    #[test]
    fn one_event_as_columns() {
        let id = |n: u64| Uuid::from_u64_pair(n, n + 100);
        let event = ConnectionEvent {
            id: id(1),
            time: 42,
            organization_id: id(2),
            workspace_owner_id: id(3),
            workspace_id: id(4),
            workspace_name: "ws",
            agent_name: "main",
            connection_method: ConnectionMethod::ReconnectingPty,
            code: Some(7),
            ip: None,
            user_agent: Some("ua"),
            user_id: None,
            app_name_or_port: Some("cursor"),
            connection_id: Some(id(6)),
            disconnect_reason: Some("bye"),
            client_session_id: Some("0123456789abcdef0123456789abcdef"),
            status: ConnectionStatus::Disconnected,
        };
        let columns = EventColumns::from_events(&[event]);
        assert_eq!(
            columns.uuids,
            [1, 101, 2, 102, 3, 103, 4, 104, 0, 0, 6, 106]
        );
        assert_eq!(columns.times, [42]);
        assert_eq!(columns.codes, [7]);
        assert_eq!(columns.flags, [0b1_1011_1011]);
        assert_eq!(columns.methods, [1]);
        assert_eq!(
            columns.text,
            "wsmainuacursorbye0123456789abcdef0123456789abcdef"
        );
        assert_eq!(columns.text_ends, [2, 6, 6, 8, 14, 17, 49]);
        assert_eq!(columns.len(), 1);
    }
}
