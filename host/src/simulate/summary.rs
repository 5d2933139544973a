//! What a simulation delivered, for the closing summary and for checks.

use std::collections::BTreeMap;
use std::fmt;

use connlog_vocabulary::{LegacyType, normalize_app_name};

use super::traffic::Delivery;
use crate::events::format_time;
use crate::model::{ConnectionMethod, ConnectionStatus, LogFields, UnixNanos};

/// How many apps the summary lists.
const TOP_APPS: usize = 10;

/// Counts of a simulation. [`Summary::record`] counts delivered events; the traffic generator
/// adds what only it knows (sessions, losses, duplicates, reorderings) when it plans them, so
/// those are final once the traffic is exhausted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events delivered, duplicates included.
    pub events: u64,
    /// Delivered events by connection method.
    pub by_method: BTreeMap<ConnectionMethod, u64>,
    /// Delivered events by Coder's deprecated 7-value `type` (what `type:` filters on).
    pub by_type: BTreeMap<String, u64>,
    /// Delivered SSH and web-terminal events by app, as sent (before the plugin normalises
    /// it); events without an app are not counted.
    pub by_app: BTreeMap<String, u64>,
    /// Events delivered in the seed's line format (`Type`, `SlugOrPort`, `Ip`).
    pub legacy_lines: u64,
    pub connects: u64,
    pub disconnects: u64,
    /// Agent-reported connections (each one row once merged), port forwards included.
    pub agent_sessions: u64,
    /// Client session ids given out, each shared by the connections of one client session.
    pub client_sessions: u64,
    /// Agent-reported port forwards (`port_forwarding` with a connection id).
    pub agent_port_forwards: u64,
    /// Distinct web and tunnel events (each one row).
    pub web_events: u64,
    /// Extra deliveries of an event already delivered (same `ID`).
    pub duplicates: u64,
    /// Sessions whose connect came after their disconnect, and web events delivered late.
    pub reordered: u64,
    /// SSH and web-terminal sessions whose disconnect was lost: they stay ongoing.
    pub lost_disconnects: u64,
    /// SSH and web-terminal sessions still open when the window ends: ongoing too.
    pub open_at_end: u64,
    pub first_time: Option<UnixNanos>,
    pub last_time: Option<UnixNanos>,
}

impl Summary {
    /// Counts one delivered event.
    pub fn record(&mut self, delivery: &Delivery) {
        let event = &delivery.event;
        self.events += 1;
        *self.by_method.entry(event.connection_method).or_default() += 1;
        let legacy_type =
            LegacyType::of(event.connection_method, event.app_name_or_port.as_deref());
        count(&mut self.by_type, legacy_type.as_str());
        if let Some(app) = &event.app_name_or_port
            && event.connection_method.is_terminal()
        {
            count(&mut self.by_app, app);
        }
        self.legacy_lines += u64::from(delivery.fields == LogFields::Seed);
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

    /// Rows `status:ongoing` should match: SSH and web-terminal sessions without a disconnect.
    /// (An agent-reported port forward can stay open too, but never matches `status:`.)
    pub fn expected_ongoing(&self) -> u64 {
        self.lost_disconnects + self.open_at_end
    }

    /// Events by app as the plugin stores it (normalised), most frequent first.
    pub fn apps(&self) -> Vec<(String, u64)> {
        let mut merged: BTreeMap<String, u64> = BTreeMap::new();
        for (raw, n) in &self.by_app {
            *merged.entry(normalize_app_name(raw)).or_default() += n;
        }
        let mut apps: Vec<(String, u64)> = merged.into_iter().collect();
        apps.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        apps
    }

    /// The traffic mix: events by method, the most frequent apps, and the legacy lines.
    pub fn write_mix(&self, out: &mut impl fmt::Write) -> fmt::Result {
        writeln!(out, "events by method:")?;
        for (method, n) in &self.by_method {
            writeln!(out, "  {:<18} {n:>9}", method.as_str())?;
        }
        let apps = self.apps();
        writeln!(
            out,
            "top apps (SSH and web terminal, {} in all):",
            apps.len()
        )?;
        for (app, n) in apps.iter().take(TOP_APPS) {
            writeln!(out, "  {app:<18} {n:>9}")?;
        }
        writeln!(
            out,
            "legacy lines:       {} (the seed's Type/SlugOrPort/Ip format)",
            self.legacy_lines
        )
    }
}

/// Adds one to `key`'s count, allocating the key only the first time.
fn count(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
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
            "agent sessions:     {} ({} lost disconnects, {} still open at the end, {} port forwards)",
            self.agent_sessions, self.lost_disconnects, self.open_at_end, self.agent_port_forwards
        )?;
        writeln!(f, "client sessions:    {}", self.client_sessions)?;
        writeln!(f, "web/tunnel events:  {}", self.web_events)?;
        writeln!(f, "duplicates:         {}", self.duplicates)?;
        writeln!(f, "reordered:          {}", self.reordered)?;
        writeln!(
            f,
            "expected rows:      {} ({} ongoing)",
            self.expected_rows(),
            self.expected_ongoing()
        )?;
        self.write_mix(f)
    }
}
