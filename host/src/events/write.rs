//! Writing events back out in the input format, in either generation of Coder's fields.

use std::io::{self, Write};

use connlog_vocabulary::LegacyType;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::time::format_time;
use crate::model::{ConnectionEvent, ConnectionMethod, ConnectionStatus, LogFields};

/// An event as the input format's object, fields in the order of Coder's service log for
/// that generation (a `Value` would sort its keys, so this serialises itself):
/// - current (spec §8): `ID, OrganizationID, WorkspaceOwnerID, WorkspaceID, WorkspaceName,
///   AgentName, ConnectionMethod, Code, IP, UserAgent, UserID, AppNameOrPort, ConnectionID,
///   DisconnectReason, ClientSessionID, Time, ConnectionStatus`;
/// - seed: `ID, Time, OrganizationID, WorkspaceOwnerID, WorkspaceID, WorkspaceName,
///   AgentName, Type, Code, Ip, UserAgent, UserID, SlugOrPort, ConnectionID,
///   DisconnectReason, ConnectionStatus`.
struct Wire<'a> {
    event: &'a ConnectionEvent,
    fields: LogFields,
}

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.event;
        let seed = self.fields == LogFields::Seed;
        let time = format_time(e.time);
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("ID", &e.id)?;
        if seed {
            map.serialize_entry("Time", &time)?;
        }
        map.serialize_entry("OrganizationID", &e.organization_id)?;
        map.serialize_entry("WorkspaceOwnerID", &e.workspace_owner_id)?;
        map.serialize_entry("WorkspaceID", &e.workspace_id)?;
        map.serialize_entry("WorkspaceName", &e.workspace_name)?;
        map.serialize_entry("AgentName", &e.agent_name)?;
        if seed {
            let app = e.app_name_or_port.as_deref();
            map.serialize_entry("Type", LegacyType::of(e.connection_method, app).as_str())?;
        } else {
            map.serialize_entry("ConnectionMethod", e.connection_method.as_str())?;
        }
        map.serialize_entry("Code", &e.code)?;
        map.serialize_entry(if seed { "Ip" } else { "IP" }, text(&e.ip))?;
        map.serialize_entry("UserAgent", text(&e.user_agent))?;
        map.serialize_entry("UserID", &e.user_id)?;
        if seed {
            map.serialize_entry("SlugOrPort", &seed_slug(e))?;
        } else {
            map.serialize_entry("AppNameOrPort", text(&e.app_name_or_port))?;
        }
        map.serialize_entry("ConnectionID", &e.connection_id)?;
        map.serialize_entry("DisconnectReason", text(&e.disconnect_reason))?;
        if !seed {
            map.serialize_entry("ClientSessionID", text(&e.client_session_id))?;
            map.serialize_entry("Time", &time)?;
        }
        map.serialize_entry("ConnectionStatus", status_name(e.status))?;
        map.end()
    }
}

/// The seed's `SlugOrPort`: only web apps and port forwards had one; an SSH app travels as
/// the `Type` instead, as far as the 7 values can say it.
fn seed_slug(e: &ConnectionEvent) -> &str {
    match e.connection_method {
        ConnectionMethod::WorkspaceApp | ConnectionMethod::PortForwarding => {
            e.app_name_or_port.as_deref().unwrap_or("")
        }
        _ => "",
    }
}

/// `connected` or `disconnected`.
pub fn status_name(status: ConnectionStatus) -> &'static str {
    match status {
        ConnectionStatus::Connected => "connected",
        ConnectionStatus::Disconnected => "disconnected",
    }
}

/// The event in Coder's current fields, absent values written as Coder's service log writes
/// them: `null` for `Code`, `UserID` and `ConnectionID`, `""` for the strings.
pub fn event_to_json(event: &ConnectionEvent) -> Value {
    serde_json::to_value(Wire {
        event,
        fields: LogFields::Current,
    })
    .expect("an event always serialises")
}

/// The event as one NDJSON line of Coder's current fields (no line ending).
pub fn event_to_line(event: &ConnectionEvent) -> String {
    event_to_line_as(event, LogFields::Current)
}

/// The event as one NDJSON line of the given generation's fields (no line ending). The seed's
/// fields cannot carry an SSH app outside the VS Code and JetBrains families, a web
/// terminal's app, nor a client session id.
pub fn event_to_line_as(event: &ConnectionEvent, fields: LogFields) -> String {
    serde_json::to_string(&Wire { event, fields }).expect("an event always serialises")
}

/// Writes the event as one NDJSON line of Coder's current fields, with its line ending.
pub fn write_event_line<W: Write>(out: W, event: &ConnectionEvent) -> io::Result<()> {
    write_event_line_as(out, event, LogFields::Current)
}

/// Writes the event as one NDJSON line of the given generation's fields, with its line
/// ending.
pub fn write_event_line_as<W: Write>(
    mut out: W,
    event: &ConnectionEvent,
    fields: LogFields,
) -> io::Result<()> {
    serde_json::to_writer(&mut out, &Wire { event, fields })?;
    out.write_all(b"\n")
}

/// An absent string as Coder's service log writes it: `""`.
fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("")
}
