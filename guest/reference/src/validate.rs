//! Turning a raw event into a canonical one, or a precise refusal.
//!
//! A canonical event is what Coder would have handed its database and its service log
//! (`UpsertConnectionLogParams`), with our deliberate differences applied. Canonicalising a
//! canonical event gives it back unchanged.
//!
//! # Rules
//!
//! Every error names the input field in Coder's service-log spelling (`ConnectionID`, …).
//!
//! - `ID`, `OrganizationID`, `WorkspaceOwnerID`, `WorkspaceID`: the nil UUID is refused.
//! - `Time`: any instant is accepted. Every `i64` of nanoseconds (years 1677–2262) is a
//!   valid RFC 3339 instant, so there is nothing to refuse; the host refuses text it cannot
//!   parse before the event reaches the plugin.
//! - `WorkspaceName`, `AgentName`: must not be empty.
//! - `ConnectionMethod` decides the kind of event (Coder D, `sdk2db.go`):
//!   - `ssh` and `reconnecting_pty` are agent-reported sessions. Their `AppNameOrPort` is
//!     the client's app, normalised with Coder's `NormalizeAppName` (so a blank but
//!     non-empty name is `unknown`, as Coder stores it); an empty one is absent (`NULLIF`).
//!   - `port_forwarding` *with* a `ConnectionID` is an agent-reported port forward (D's
//!     `METHOD_PORT_FORWARDING`): a session like the two above, storing no app ("the
//!     agent's app name is ignored").
//!   - `workspace_app`, `tunnel`, and `port_forwarding` without a `ConnectionID` are web and
//!     tunnel events. A `workspace_app` or `tunnel` event with a `ConnectionID` is refused
//!     (it would be a session that never ends and that `status:` hides). They are
//!     point-in-time: status `connected`, no `DisconnectReason`. `Code` is the HTTP status
//!     (101/403 for tunnels) and is kept as sent. A web event's `AppNameOrPort` is its slug
//!     or port, kept as sent; a tunnel stores none (as migration 000614 drops it).
//!   - Agent-reported events need a non-nil `ConnectionID`. A connect never keeps a `Code`
//!     (Coder's agent API drops it even when the agent sent one). A disconnect keeps
//!     exactly the `Code` it carries, `null` included: Coder's agent API stores `0` for a
//!     disconnect without a status only because its protobuf field has no "absent"; our
//!     input format has `null`, and choosing `0` for it is the producer's business. A
//!     connect keeps its `DisconnectReason` (Coder keeps it for both actions, and it
//!     appears in the service log), but the merge never reads it.
//! - `ClientSessionID`: empty is absent; anything else must be 32 lowercase hex characters
//!   (Coder's column CHECK) or the event is refused, for every method. Coder's batcher
//!   would fail the whole batch on it; we refuse the one event.
//! - Empty strings mean absent (`UserAgent`, `AppNameOrPort`, `DisconnectReason`,
//!   `ClientSessionID`, `Ip`), as do nil UUIDs (`UserID`, `ConnectionID`).
//! - `Ip`: exactly `localhost` becomes `127.0.0.1`; anything else is parsed as Go's
//!   `net.ParseIP` does (no port, brackets, zone or prefix) and stored in Go's canonical
//!   text (`IP.String()`: IPv4-mapped IPv6 prints as dotted IPv4, IPv6 as RFC 5952). An
//!   address that does not parse is stored as absent, never refused, as in Coder.
//!
//! # Size limits (bytes of UTF-8)
//!
//! Bounded so that one event can never cost unbounded memory in the rows, the journal or
//! the service log. An oversized value is refused, not truncated: a silently shortened
//! name would merge into the wrong session.
//!
//! | field | limit | why |
//! |---|---|---|
//! | `WorkspaceName`, `AgentName` | [`MAX_NAME_BYTES`] = 256 | Coder names are ≤ 32/64 characters |
//! | `AppNameOrPort` of SSH or the web terminal (raw, before normalisation) | [`MAX_RAW_APP_BYTES`] = 1024 | normalisation keeps 64 characters anyway |
//! | `UserAgent` | [`MAX_USER_AGENT_BYTES`] = 2048 | real agents are < 512; well under HTTP header limits |
//! | `AppNameOrPort` of a web event | [`MAX_SLUG_OR_PORT_BYTES`] = 256 | an app slug or a port number |
//! | `DisconnectReason` | [`MAX_DISCONNECT_REASON_BYTES`] = 1024 | a short error text |
//! | `Ip` | [`MAX_IP_BYTES`] = 64 | the longest IPv6 text is 45; longer text cannot parse, so it is absent |

use connlog_plugin_sdk::model::*;
use connlog_vocabulary::{is_client_session_id, normalize_app_name};

/// `WorkspaceName` and `AgentName`.
pub const MAX_NAME_BYTES: usize = 256;
/// An SSH or web-terminal app name as sent, before normalisation.
pub const MAX_RAW_APP_BYTES: usize = 1024;
/// `UserAgent`.
pub const MAX_USER_AGENT_BYTES: usize = 2048;
/// A web event's slug or port.
pub const MAX_SLUG_OR_PORT_BYTES: usize = 256;
/// `DisconnectReason`.
pub const MAX_DISCONNECT_REASON_BYTES: usize = 1024;
/// `Ip`: longer text is not an address and is stored as absent.
pub const MAX_IP_BYTES: usize = 64;

/// Validates and normalises one event: the app is normalised, the IP canonicalised, empty
/// strings become absent. The error names the input field (`ConnectionID`, …).
pub fn canonicalize(event: ConnectionEvent) -> Result<ConnectionEvent, Validation> {
    let ConnectionEvent {
        id,
        time,
        organization_id,
        workspace_owner_id,
        workspace_id,
        workspace_name,
        agent_name,
        connection_method: method,
        code,
        ip,
        user_agent,
        user_id,
        app_name_or_port,
        connection_id,
        disconnect_reason,
        client_session_id,
        status,
    } = event;

    not_nil("ID", id)?;
    not_nil("OrganizationID", organization_id)?;
    not_nil("WorkspaceOwnerID", workspace_owner_id)?;
    not_nil("WorkspaceID", workspace_id)?;
    required_name("WorkspaceName", &workspace_name)?;
    required_name("AgentName", &agent_name)?;

    let user_agent = optional("UserAgent", user_agent, MAX_USER_AGENT_BYTES)?;
    let disconnect_reason = optional(
        "DisconnectReason",
        disconnect_reason,
        MAX_DISCONNECT_REASON_BYTES,
    )?;
    let client_session_id = client_session(client_session_id)?;
    let user_id = user_id.filter(|u| !u.is_nil());
    let connection_id = connection_id.filter(|u| !u.is_nil());
    let ip = ip.and_then(into_canonical_ip);
    let agent_reported = is_agent_reported(method, connection_id.is_some());

    let app_name_or_port = match method {
        ConnectionMethod::Ssh | ConnectionMethod::ReconnectingPty => {
            optional("AppNameOrPort", app_name_or_port, MAX_RAW_APP_BYTES)?
                .map(|app| normalize_app_name(&app))
        }
        ConnectionMethod::WorkspaceApp | ConnectionMethod::PortForwarding if !agent_reported => {
            optional("AppNameOrPort", app_name_or_port, MAX_SLUG_OR_PORT_BYTES)?
        }
        // An agent's port forward and a tunnel have no app and no destination to keep.
        _ => None,
    };

    let code = if agent_reported {
        if connection_id.is_none() {
            return Err(Validation::new(
                "ConnectionID",
                format!(
                    "is required for an agent-reported event (method {method}); got none or the nil UUID"
                ),
            ));
        }
        match status {
            ConnectionStatus::Connected => None,
            ConnectionStatus::Disconnected => code,
        }
    } else {
        if let Some(cid) = connection_id {
            return Err(Validation::new(
                "ConnectionID",
                format!("must be absent for a {method} event, which never merges; got {cid}"),
            ));
        }
        if status != ConnectionStatus::Connected {
            return Err(Validation::new(
                "ConnectionStatus",
                format!(
                    "must be connected for a {method} event, which is point-in-time; got disconnected"
                ),
            ));
        }
        if disconnect_reason.is_some() {
            return Err(Validation::new(
                "DisconnectReason",
                format!(
                    "must be empty for a {method} event, which is point-in-time and never disconnects"
                ),
            ));
        }
        code
    };

    Ok(ConnectionEvent {
        id,
        time,
        organization_id,
        workspace_owner_id,
        workspace_id,
        workspace_name,
        agent_name,
        connection_method: method,
        code,
        ip,
        user_agent,
        user_id,
        app_name_or_port,
        connection_id,
        disconnect_reason,
        client_session_id,
        status,
    })
}

/// Is an event of this method (with or without a connection id) reported by an agent, so
/// that it merges into a session? A port forward is either: the agent reports it with its
/// connection, coderd's browser proxy without one. Any other method is one or the other.
pub fn is_agent_reported(method: ConnectionMethod, has_connection_id: bool) -> bool {
    method.is_terminal() || (method == ConnectionMethod::PortForwarding && has_connection_id)
}

/// Empty is absent; anything else must pass Coder's CHECK, or nothing of it is stored.
fn client_session(value: Option<String>) -> Result<Option<String>, Validation> {
    match value {
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if is_client_session_id(&v) => Ok(Some(v)),
        Some(v) => {
            // Quote short values only: the detail must stay small whatever was sent.
            let got = if v.len() <= 64 {
                format!("{v:?}")
            } else {
                format!("{} bytes", v.len())
            };
            Err(Validation::new(
                "ClientSessionID",
                format!(
                    "must be empty or exactly 32 lowercase hexadecimal characters (^[0-9a-f]{{32}}$, a UUID without dashes); got {got}"
                ),
            ))
        }
        None => Ok(None),
    }
}
fn not_nil(field: &str, id: Uuid) -> Result<(), Validation> {
    if id.is_nil() {
        Err(Validation::new(field, "must not be the nil UUID"))
    } else {
        Ok(())
    }
}

fn within(field: &str, value: &str, max: usize) -> Result<(), Validation> {
    if value.len() > max {
        Err(Validation::new(
            field,
            format!("must be at most {max} bytes; got {} bytes", value.len()),
        ))
    } else {
        Ok(())
    }
}

fn required_name(field: &str, value: &str) -> Result<(), Validation> {
    if value.is_empty() {
        return Err(Validation::new(field, "must not be empty"));
    }
    within(field, value, MAX_NAME_BYTES)
}

/// An optional string: empty means absent; too long is refused.
fn optional(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, Validation> {
    match value {
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => within(field, &v, max).map(|()| Some(v)),
        None => Ok(None),
    }
}

/// Coder's IP handling (`coderd/agentapi/connectionlog.go`): `localhost` is `127.0.0.1`,
/// anything else goes through Go's `net.ParseIP`, and the stored text is Go's
/// `IP.String()`. `None` when the text is not an address.
pub fn canonical_ip(raw: &str) -> Option<String> {
    into_canonical_ip(raw.to_owned())
}

/// [`canonical_ip`] for text the caller owns: dotted IPv4 text is kept as it came, without
/// a copy (most addresses are IPv4, and every event has one).
fn into_canonical_ip(raw: String) -> Option<String> {
    if raw == "localhost" {
        return Some("127.0.0.1".to_string());
    }
    if raw.is_empty() || raw.len() > MAX_IP_BYTES {
        return None;
    }
    // Go's `netip.ParseAddr` and Rust's parsers agree on the grammar we need: dotted
    // decimal IPv4 with exactly four fields and no leading zeros; IPv6 with at most one
    // `::`, groups of 1–4 hex digits and an optional dotted IPv4 tail. Go additionally
    // accepts a `%zone`, which `net.ParseIP` then refuses, and Rust refuses it outright.
    // So IPv4 text that parses is already what Go's `IP.String()` prints.
    if raw.contains('.') && !raw.contains(':') {
        return raw.parse::<std::net::Ipv4Addr>().is_ok().then_some(raw);
    }
    let v6 = raw.parse::<std::net::Ipv6Addr>().ok()?;
    Some(go_ipv6_string(v6))
}

/// Go's `net.IP.String()` for a 16-byte address: an IPv4-mapped address prints as dotted
/// IPv4; anything else as RFC 5952 text (lowercase, no leading zeros, the longest run of
/// two or more zero groups, the first such on a tie, shortened to `::`).
fn go_ipv6_string(v6: std::net::Ipv6Addr) -> String {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return v4.to_string();
    }
    let groups = v6.segments();
    let (mut best_start, mut best_len) = (usize::MAX, 0usize);
    let mut i = 0;
    while i < 8 {
        if groups[i] == 0 {
            let start = i;
            while i < 8 && groups[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best_start = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_start = usize::MAX;
    }
    let mut out = String::with_capacity(39);
    let mut i = 0;
    while i < 8 {
        if i == best_start {
            out.push_str("::");
            i += best_len;
            continue;
        }
        if !out.is_empty() && !out.ends_with(':') {
            out.push(':');
        }
        out.push_str(&format!("{:x}", groups[i]));
        i += 1;
    }
    out
}
