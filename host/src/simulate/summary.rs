//! What a simulation delivered, for the closing summary and for checks.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::{ConnectionEvent, ConnectionStatus, UnixNanos};

use super::traffic::is_web_type;
use crate::events::format_time;

/// Counts of a simulation. [`Summary::record`] counts delivered events; the traffic generator
/// adds what only it knows (sessions, losses, duplicates, reorderings) when it plans them, so
/// those are final once the traffic is exhausted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events delivered, duplicates included.
    pub events: u64,
    /// Delivered events by raw `Type`, as sent (before the plugin normalises it).
    pub by_type: BTreeMap<String, u64>,
    pub connects: u64,
    pub disconnects: u64,
    /// Agent-reported sessions (each one row once merged).
    pub agent_sessions: u64,
    /// Distinct web and tunnel events (each one row).
    pub web_events: u64,
    /// Extra deliveries of an event already delivered (same `ID`).
    pub duplicates: u64,
    /// Sessions whose connect came after their disconnect, and web events delivered late.
    pub reordered: u64,
    /// Sessions whose disconnect was lost: they stay ongoing.
    pub lost_disconnects: u64,
    /// Sessions still open when the window ends: ongoing too.
    pub open_at_end: u64,
    pub first_time: Option<UnixNanos>,
    pub last_time: Option<UnixNanos>,
}

impl Summary {
    /// Counts one delivered event.
    pub fn record(&mut self, event: &ConnectionEvent) {
        self.events += 1;
        if let Some(n) = self.by_type.get_mut(&event.connection_type) {
            *n += 1;
        } else {
            self.by_type.insert(event.connection_type.clone(), 1);
        }
        match event.status {
            ConnectionStatus::Connected => self.connects += 1,
            ConnectionStatus::Disconnected => self.disconnects += 1,
        }
        self.first_time = Some(self.first_time.map_or(event.time, |t| t.min(event.time)));
        self.last_time = Some(self.last_time.map_or(event.time, |t| t.max(event.time)));
    }

    /// Rows the plugin should hold after ingesting everything: one per session, one per web
    /// or tunnel event (duplicates are replays and reordering changes nothing).
    pub fn expected_rows(&self) -> u64 {
        self.agent_sessions + self.web_events
    }

    /// Rows that should have no disconnect time (`status:ongoing`).
    pub fn expected_ongoing(&self) -> u64 {
        self.lost_disconnects + self.open_at_end
    }

    /// Delivered events of agent-reported types.
    pub fn agent_events(&self) -> u64 {
        self.by_type
            .iter()
            .filter(|(t, _)| !is_web_type(t))
            .map(|(_, n)| n)
            .sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "events delivered:   {} ({} connect, {} disconnect)",
            self.events, self.connects, self.disconnects
        )?;
        if let (Some(a), Some(b)) = (self.first_time, self.last_time) {
            writeln!(
                f,
                "event times:        {} to {}",
                format_time(a),
                format_time(b)
            )?;
        }
        writeln!(
            f,
            "agent sessions:     {} ({} lost disconnects, {} still open at the end)",
            self.agent_sessions, self.lost_disconnects, self.open_at_end
        )?;
        writeln!(f, "web/tunnel events:  {}", self.web_events)?;
        writeln!(f, "duplicates:         {}", self.duplicates)?;
        writeln!(f, "reordered:          {}", self.reordered)?;
        writeln!(
            f,
            "expected rows:      {} ({} ongoing)",
            self.expected_rows(),
            self.expected_ongoing()
        )?;
        let mut types: Vec<(&String, &u64)> = self.by_type.iter().collect();
        types.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        write!(f, "by type:")?;
        for (t, n) in types {
            write!(f, "\n  {:<20} {n}", format!("{t:?}"))?;
        }
        Ok(())
    }
}
