//! Writing events back out in the input format, fields in Coder's order.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

use super::time::format_time;
use crate::model::{ConnectionEvent, ConnectionStatus, Uuid};

/// The input format's object, fields in Coder's order (`serde_json` keeps that order when
/// writing through this struct; a `Value` sorts its keys).
#[derive(Serialize)]
struct WireEvent<'a> {
    #[serde(rename = "ID")]
    id: &'a Uuid,
    #[serde(rename = "Time")]
    time: String,
    #[serde(rename = "OrganizationID")]
    organization_id: &'a Uuid,
    #[serde(rename = "WorkspaceOwnerID")]
    workspace_owner_id: &'a Uuid,
    #[serde(rename = "WorkspaceID")]
    workspace_id: &'a Uuid,
    #[serde(rename = "WorkspaceName")]
    workspace_name: &'a str,
    #[serde(rename = "AgentName")]
    agent_name: &'a str,
    #[serde(rename = "Type")]
    connection_type: &'a str,
    #[serde(rename = "Code")]
    code: Option<i32>,
    #[serde(rename = "Ip")]
    ip: &'a str,
    #[serde(rename = "UserAgent")]
    user_agent: &'a str,
    #[serde(rename = "UserID")]
    user_id: Option<&'a Uuid>,
    #[serde(rename = "SlugOrPort")]
    slug_or_port: &'a str,
    #[serde(rename = "ConnectionID")]
    connection_id: Option<&'a Uuid>,
    #[serde(rename = "DisconnectReason")]
    disconnect_reason: &'a str,
    #[serde(rename = "ConnectionStatus")]
    status: &'static str,
}

impl<'a> WireEvent<'a> {
    fn new(e: &'a ConnectionEvent) -> Self {
        Self {
            id: &e.id,
            time: format_time(e.time),
            organization_id: &e.organization_id,
            workspace_owner_id: &e.workspace_owner_id,
            workspace_id: &e.workspace_id,
            workspace_name: &e.workspace_name,
            agent_name: &e.agent_name,
            connection_type: &e.connection_type,
            code: e.code,
            ip: e.ip.as_deref().unwrap_or(""),
            user_agent: e.user_agent.as_deref().unwrap_or(""),
            user_id: e.user_id.as_ref(),
            slug_or_port: e.slug_or_port.as_deref().unwrap_or(""),
            connection_id: e.connection_id.as_ref(),
            disconnect_reason: e.disconnect_reason.as_deref().unwrap_or(""),
            status: status_name(e.status),
        }
    }
}

/// `connected` or `disconnected`.
pub fn status_name(status: ConnectionStatus) -> &'static str {
    match status {
        ConnectionStatus::Connected => "connected",
        ConnectionStatus::Disconnected => "disconnected",
    }
}

/// The event in the input format, absent values written as Coder's service log writes them:
/// `null` for `Code`, `UserID` and `ConnectionID`, `""` for the strings.
pub fn event_to_json(event: &ConnectionEvent) -> Value {
    serde_json::to_value(WireEvent::new(event)).expect("an event always serialises")
}

/// The event as one NDJSON line (no line ending), fields in Coder's order.
pub fn event_to_line(event: &ConnectionEvent) -> String {
    serde_json::to_string(&WireEvent::new(event)).expect("an event always serialises")
}

/// Writes the event as one NDJSON line, with its line ending.
pub fn write_event_line<W: Write>(mut out: W, event: &ConnectionEvent) -> io::Result<()> {
    serde_json::to_writer(&mut out, &WireEvent::new(event))?;
    out.write_all(b"\n")
}
