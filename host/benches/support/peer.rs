//! Events shaped like the data set Coder's own SQL is timed on: 4 organizations, 2,000
//! users, 5,000 workspaces; ssh 30 %, VS Code family 20 %, JetBrains 5 %, web terminal 10 %,
//! workspace apps 20 %, port forwards 7 %, tunnels 8 %; 90 days of connect times; 10 % of
//! agent sessions still ongoing. Delivered in time order, as agents report them: a session's
//! disconnect arrives when it happens, between later connects.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use connlog::model::{ConnectionEvent, ConnectionMethod, ConnectionStatus, Uuid};
use connlog::simulate::rng::SimRng;

use super::{T0, uuid};

const ORGS: u64 = 4;
const USERS: u64 = 2_000;
const WORKSPACES: u64 = 5_000;
const WINDOW_NS: i64 = 90 * 86_400 * 1_000_000_000;

const VSCODE: [&str; 4] = ["vscode", "cursor", "windsurf", "vscode-insiders"];
const JETBRAINS: [&str; 3] = ["goland", "pycharm", "intellij"];
const APPS: [&str; 4] = ["code-server", "jupyter", "grafana", "filebrowser"];

/// The events of `rows` rows, in delivery order.
pub struct PeerEvents {
    rng: SimRng,
    rows: u64,
    next_row: u64,
    /// Disconnects not yet due, by time.
    pending: BinaryHeap<Reverse<(i64, u64, EventKey)>>,
    ready: Option<ConnectionEvent>,
}

/// What a pending disconnect needs to rebuild its connect's fields.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct EventKey {
    row: u64,
    connect_time: i64,
    kind: u8,
}

pub fn events(rows: u64) -> PeerEvents {
    PeerEvents {
        rng: SimRng::new(7, 0),
        rows,
        next_row: 0,
        pending: BinaryHeap::new(),
        ready: None,
    }
}

impl Iterator for PeerEvents {
    type Item = ConnectionEvent;

    fn next(&mut self) -> Option<ConnectionEvent> {
        if let Some(event) = self.ready.take() {
            return Some(event);
        }
        let next_connect = (self.next_row < self.rows).then(|| self.connect_time(self.next_row));
        if let Some(Reverse((due, _, key))) = self.pending.peek().copied()
            && next_connect.is_none_or(|t| due <= t)
        {
            self.pending.pop();
            return Some(disconnect(key, due, &mut self.rng));
        }
        let row = self.next_row;
        self.next_row += 1;
        let time = next_connect?;
        let kind = self.rng.below(100) as u8;
        let key = EventKey {
            row,
            connect_time: time,
            kind,
        };
        let event = connect(key);
        if event.connection_id.is_some() && self.rng.below(10) != 0 {
            // Sessions last from a minute to about eight hours.
            let minutes = 1 + self.rng.below(480) * self.rng.below(480) / 480;
            let due = time + minutes as i64 * 60_000_000_000;
            self.pending.push(Reverse((due, row, key)));
        }
        Some(event)
    }
}

impl PeerEvents {
    /// Rows spread evenly over the 90 days, in order.
    fn connect_time(&self, row: u64) -> i64 {
        T0 + (i128::from(WINDOW_NS) * i128::from(row) / i128::from(self.rows.max(1))) as i64
    }
}

/// The connect event (or the only event) of a row.
fn connect(key: EventKey) -> ConnectionEvent {
    let n = key.row;
    let workspace = n.wrapping_mul(2_654_435_761) % WORKSPACES;
    let owner = workspace % USERS;
    let user = if n.is_multiple_of(5) {
        (owner + 1) % USERS
    } else {
        owner
    };
    let mut event = ConnectionEvent {
        id: uuid(4, n),
        time: key.connect_time,
        organization_id: uuid(1, workspace % ORGS),
        workspace_owner_id: uuid(2, owner),
        workspace_id: uuid(3, workspace),
        workspace_name: format!("ws-{workspace}"),
        agent_name: "main".into(),
        connection_method: ConnectionMethod::Ssh,
        code: None,
        ip: Some(format!("10.{}.{}.{}", owner >> 8, owner & 255, n % 200)),
        user_agent: None,
        user_id: None,
        app_name_or_port: None,
        connection_id: Some(uuid(5, n)),
        disconnect_reason: None,
        client_session_id: None,
        status: ConnectionStatus::Connected,
    };
    let pick = |names: &[&str]| names[(n % names.len() as u64) as usize].to_owned();
    match key.kind {
        0..30 => {}
        30..50 => event.app_name_or_port = Some(pick(&VSCODE)),
        50..55 => event.app_name_or_port = Some(pick(&JETBRAINS)),
        55..65 => event.connection_method = ConnectionMethod::ReconnectingPty,
        kind => {
            event.connection_id = None;
            event.user_id = Some(uuid(2, user));
            event.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0".into());
            match kind {
                65..85 => {
                    event.connection_method = ConnectionMethod::WorkspaceApp;
                    event.app_name_or_port = Some(pick(&APPS));
                    event.code = Some(if n.is_multiple_of(20) { 502 } else { 200 });
                }
                85..92 => {
                    event.connection_method = ConnectionMethod::PortForwarding;
                    event.app_name_or_port = Some((8000 + n % 100).to_string());
                    event.code = Some(200);
                }
                _ => {
                    event.connection_method = ConnectionMethod::Tunnel;
                    event.user_agent = None;
                    event.code = Some(if n.is_multiple_of(10) { 403 } else { 101 });
                }
            }
        }
    }
    event
}

fn disconnect(key: EventKey, time: i64, rng: &mut SimRng) -> ConnectionEvent {
    let connect = connect(key);
    let clean = rng.below(10) != 0;
    ConnectionEvent {
        id: uuid(6, key.row),
        time,
        code: Some(if clean { 0 } else { 255 }),
        disconnect_reason: Some(
            if clean {
                "client closed"
            } else {
                "connection lost"
            }
            .into(),
        ),
        status: ConnectionStatus::Disconnected,
        ..connect
    }
}

/// The header of [`csv_line`]'s file: Coder's `connection_logs` columns.
pub const CSV_HEADER: &str = "id,time,organization_id,workspace_owner_id,workspace_id,\
     workspace_name,agent_name,connection_method,code,ip,user_agent,user_id,app_name_or_port,\
     connection_id,disconnect_reason,client_session_id,status";

/// The event as one CSV line (no line ending), every field as text; none holds a comma or
/// a quote, so none is quoted.
pub fn csv_line(e: &ConnectionEvent) -> String {
    fn opt<T: ToString>(v: &Option<T>) -> String {
        v.as_ref().map(T::to_string).unwrap_or_default()
    }
    let uuid = |u: &Uuid| u.hyphenated().to_string();
    [
        uuid(&e.id),
        connlog::events::format_time(e.time),
        uuid(&e.organization_id),
        uuid(&e.workspace_owner_id),
        uuid(&e.workspace_id),
        e.workspace_name.clone(),
        e.agent_name.clone(),
        e.connection_method.as_str().to_owned(),
        opt(&e.code),
        opt(&e.ip),
        opt(&e.user_agent),
        e.user_id.as_ref().map(uuid).unwrap_or_default(),
        opt(&e.app_name_or_port),
        e.connection_id.as_ref().map(uuid).unwrap_or_default(),
        opt(&e.disconnect_reason),
        opt(&e.client_session_id),
        format!("{:?}", e.status).to_lowercase(),
    ]
    .join(",")
}
