//! Event batches as columns (`types.event-columns`): what `ingest-batch`, `journal.append`
//! and `replay` take since contract 0.3.0 (`replay` only, in 0.2.0).
//!
//! A `list<connection-event>` crosses the component boundary one field and one string at a
//! time, and every string is a separate allocation on the receiving side. As columns, a
//! batch is a few lists of integers, which are copied in one go, plus one string holding all
//! the text; decoding lends [`EventRef`]s straight out of that string.
//!
//! The SDK decodes every batch the host sends ([`EventColumns::events`]) before the plugin
//! sees it, and encodes the events a plugin appends ([`EventColumns::from_events`]). The
//! host has the same pair on its own types.

use crate::model::*;

/// UUIDs per event, each as two `u64` halves: id, organization, owner, workspace, user,
/// connection.
const UUIDS: usize = 6;
/// Strings per event: workspace name, agent name, ip, user agent, app name or port,
/// disconnect reason, client session id.
const STRINGS: usize = 7;

/// Bits of [`EventColumns::flags`], as the WIT record documents them.
pub mod flag {
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
#[doc(hidden)]
#[macro_export]
macro_rules! __move_columns {
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

/// Mirror of the WIT record `event-columns`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventColumns {
    pub uuids: Vec<u64>,
    pub times: Vec<UnixNanos>,
    pub codes: Vec<i32>,
    pub flags: Vec<u16>,
    /// [`ConnectionMethod::index`] of each event.
    pub methods: Vec<u8>,
    pub text: String,
    pub text_ends: Vec<u32>,
}

impl EventColumns {
    /// The columns of `events`, in order.
    ///
    /// # Panics
    /// When the batch's text reaches 4 GiB (batches hold thousands of events, each string
    /// capped by validation).
    pub fn from_events<S: AsRef<str>>(events: &[ConnectionEvent<S>]) -> Self {
        let text_bytes = events.iter().map(text_len).sum();
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
                .expect("an event batch holds less than 4 GiB of text");
            self.text_ends.push(end);
        }
    }
}

impl EventColumns {
    /// How many events the columns hold.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// The events, borrowing their text from [`Self::text`]. Columns whose lengths do not
    /// match, or offsets that run backwards, past the text or into a character, are
    /// `Corrupt`: they can only come from a broken host.
    pub fn events(&self) -> Result<Vec<EventRef<'_>>, JournalError> {
        let n = self.len();
        let expected = [
            ("uuids", self.uuids.len(), n * UUIDS * 2),
            ("codes", self.codes.len(), n),
            ("flags", self.flags.len(), n),
            ("methods", self.methods.len(), n),
            ("text-ends", self.text_ends.len(), n * STRINGS),
        ];
        for (column, len, want) in expected {
            if len != want {
                return Err(corrupt(format!(
                    "{column} holds {len} entries for {n} events (expected {want})"
                )));
            }
        }

        let mut events = Vec::with_capacity(n);
        let mut start = 0usize;
        for i in 0..n {
            let mut texts = [""; STRINGS];
            for (slot, &end) in texts.iter_mut().zip(&self.text_ends[i * STRINGS..]) {
                let end = end as usize;
                *slot = self.text.get(start..end).ok_or_else(|| {
                    corrupt(format!(
                        "event {i}: text span {start}..{end} is not within the {} bytes of text",
                        self.text.len()
                    ))
                })?;
                start = end;
            }
            let uuids = &self.uuids[i * UUIDS * 2..][..UUIDS * 2];
            let uuid = |k: usize| Uuid::from_u64_pair(uuids[2 * k], uuids[2 * k + 1]);
            let bits = self.flags[i];
            let has = |bit: u16| bits & bit != 0;
            let connection_method = ConnectionMethod::from_index(self.methods[i])
                .ok_or_else(|| corrupt(format!("event {i}: no method {}", self.methods[i])))?;
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

fn text_len<S: AsRef<str>>(event: &ConnectionEvent<S>) -> usize {
    strings(event)
        .into_iter()
        .flatten()
        .map(|s| s.as_ref().len())
        .sum()
}

fn corrupt(detail: String) -> JournalError {
    JournalError::Corrupt(format!("event columns: {detail}"))
}
