//! Event batches as columns (`types.event-columns`), the host's side: what it sends to
//! `replay` (and, since contract 0.3.0, to `ingest-batch`), and decodes from a plugin's
//! `journal.append`.
//!
//! A `list<connection-event>` crosses the component boundary one field and one string at a
//! time, and every string is a separate allocation on the receiving side. As columns, a
//! batch is a few lists of integers plus one string holding all the text. The layout is the
//! WIT record's, as its comments in the contract define it; the SDK has the same pair of
//! encoder and decoder on the plugin's types.

use crate::model::{ConnectionEvent, ConnectionMethod, ConnectionStatus, UnixNanos, Uuid};

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

/// Moves columns `$columns` into the struct `$to` of the same fields: the WIT record of a
/// contract version, or [`EventColumns`].
macro_rules! move_columns {
    ($columns:expr => $to:path) => {{
        let c = $columns;
        $to {
            uuids: c.uuids,
            times: c.times,
            codes: c.codes,
            flags: c.flags,
            methods: c.methods,
            text: c.text,
            text_ends: c.text_ends,
        }
    }};
}
pub(crate) use move_columns;

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

    /// The events, in order, each with its own strings. Columns whose lengths do not match,
    /// or whose text offsets run backwards, past the text or into a character, can only come
    /// from a broken plugin: `Err` says what is wrong.
    pub fn into_events(self) -> Result<Vec<ConnectionEvent>, String> {
        let n = self.len();
        for (column, len, want) in [
            ("uuids", self.uuids.len(), n * UUIDS * 2),
            ("codes", self.codes.len(), n),
            ("flags", self.flags.len(), n),
            ("methods", self.methods.len(), n),
            ("text-ends", self.text_ends.len(), n * STRINGS),
        ] {
            if len != want {
                return Err(format!(
                    "{column} holds {len} entries for {n} events (expected {want})"
                ));
            }
        }
        let mut events = Vec::with_capacity(n);
        let mut start = 0usize;
        for i in 0..n {
            let mut texts: [String; STRINGS] = Default::default();
            for (slot, &end) in texts.iter_mut().zip(&self.text_ends[i * STRINGS..]) {
                let end = end as usize;
                *slot = self
                    .text
                    .get(start..end)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        format!(
                            "event {i}: text span {start}..{end} is not a run of whole characters \
                         within the {} bytes of text",
                            self.text.len()
                        )
                    })?;
                start = end;
            }
            let uuids = &self.uuids[i * UUIDS * 2..][..UUIDS * 2];
            let uuid = |k: usize| Uuid::from_u64_pair(uuids[2 * k], uuids[2 * k + 1]);
            let bits = self.flags[i];
            let has = |bit: u16| bits & bit != 0;
            let connection_method = ConnectionMethod::from_index(self.methods[i])
                .ok_or_else(|| format!("event {i}: no method {}", self.methods[i]))?;
            let [
                workspace_name,
                agent_name,
                ip,
                user_agent,
                app,
                reason,
                client_session,
            ] = texts;
            events.push(ConnectionEvent {
                id: uuid(0),
                time: self.times[i],
                organization_id: uuid(1),
                workspace_owner_id: uuid(2),
                workspace_id: uuid(3),
                workspace_name,
                agent_name,
                connection_method,
                code: has(flag::CODE).then_some(self.codes[i]),
                ip: has(flag::IP).then_some(ip),
                user_agent: has(flag::USER_AGENT).then_some(user_agent),
                user_id: has(flag::USER_ID).then(|| uuid(4)),
                app_name_or_port: has(flag::APP_NAME_OR_PORT).then_some(app),
                connection_id: has(flag::CONNECTION_ID).then(|| uuid(5)),
                disconnect_reason: has(flag::DISCONNECT_REASON).then_some(reason),
                client_session_id: has(flag::CLIENT_SESSION_ID).then_some(client_session),
                status: if has(flag::DISCONNECTED) {
                    ConnectionStatus::Disconnected
                } else {
                    ConnectionStatus::Connected
                },
            });
        }
        Ok(events)
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

    fn id(n: u64) -> Uuid {
        Uuid::from_u64_pair(n, n + 100)
    }

    /// Every optional field set, as the layout test pins it.
    fn full_event() -> ConnectionEvent<&'static str> {
        ConnectionEvent {
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
        }
    }

    /// Pins the layout plugins decode: a change here breaks every plugin's `replay` and
    /// `ingest-batch`.
    #[test]
    fn one_event_as_columns() {
        let columns = EventColumns::from_events(&[full_event()]);
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

    #[test]
    fn columns_decode_to_the_events_they_were_made_from() {
        let full = full_event().map_text(|s| s.to_string());
        let bare = ConnectionEvent {
            id: id(7),
            code: None,
            ip: None,
            user_agent: None,
            user_id: None,
            app_name_or_port: None,
            connection_id: None,
            disconnect_reason: None,
            client_session_id: None,
            workspace_name: "é".to_string(),
            agent_name: String::new(),
            connection_method: ConnectionMethod::Tunnel,
            status: ConnectionStatus::Connected,
            ..full.clone()
        };
        let events = vec![full.clone(), bare, full];
        let decoded = EventColumns::from_events(&events).into_events();
        assert_eq!(decoded, Ok(events));
        assert_eq!(EventColumns::default().into_events(), Ok(Vec::new()));
    }

    /// A plugin's `journal.append` columns that do not fit together: what is wrong, per case.
    #[test]
    fn columns_that_do_not_fit_together_say_what_is_wrong() {
        let good = || EventColumns::from_events(&[full_event(), full_event()]);
        type Break = fn(&mut EventColumns);
        let cases: [(&str, Break, &str); 7] = [
            (
                "an id too few",
                |c| _ = c.uuids.pop(),
                "uuids holds 23 entries for 2 events (expected 24)",
            ),
            (
                "a code too many",
                |c| c.codes.push(0),
                "codes holds 3 entries for 2 events (expected 2)",
            ),
            (
                "no flags",
                |c| c.flags.clear(),
                "flags holds 0 entries for 2 events (expected 2)",
            ),
            (
                "a method too few",
                |c| _ = c.methods.pop(),
                "methods holds 1 entries for 2 events (expected 2)",
            ),
            (
                "an unknown method",
                |c| c.methods[1] = 9,
                "event 1: no method 9",
            ),
            (
                "text past its end",
                |c| *c.text_ends.last_mut().unwrap() += 1,
                "event 1: text span 66..99 is not a run of whole characters within the 98 bytes of text",
            ),
            (
                "offsets running backwards",
                |c| c.text_ends[7] = 1,
                "event 1: text span 49..1 is not a run of whole characters within the 98 bytes of text",
            ),
        ];
        for (what, break_it, expected) in cases {
            let mut columns = good();
            break_it(&mut columns);
            assert_eq!(columns.into_events(), Err(expected.to_string()), "{what}");
        }
    }

    #[test]
    fn a_text_span_ending_inside_a_character_is_refused() {
        let mut event = full_event();
        event.workspace_name = "é";
        let mut columns = EventColumns::from_events(&[event]);
        columns.text_ends[0] = 1;
        assert_eq!(
            columns.into_events(),
            Err(
                "event 0: text span 0..1 is not a run of whole characters within the 49 bytes \
                 of text"
                    .to_string()
            )
        );
    }
}
