//! The traffic generator: sessions and web events over simulated time, delivered in order.
//!
//! How it works:
//! - The budget is exactly `config.events` deliveries. Each activity (an agent session, a web
//!   event, a tunnel authorisation) reserves the deliveries it will make, duplicates included,
//!   before any is delivered, so the total is known up front and met exactly.
//! - An activity's start time comes from the share of the budget reserved so far, mapped
//!   through a weekly rhythm (busy working hours, quiet nights and weekends). Start times
//!   therefore only grow, and the traffic fills the whole window.
//! - Planned deliveries wait in a heap ordered by delivery time. A delivery leaves the heap
//!   once no activity yet to be planned could deliver earlier. The heap holds only what is in
//!   flight (open sessions, delayed deliveries), never the whole run.
//!
//! What it sends (Coder's current API, spec "version D"):
//! - Client sessions reported by agents, each with its own client session id, shared by
//!   all its connections and repeated on their disconnects: plain SSH (most naming no app,
//!   some Zed or SFTP, sometimes with an `ssh -L` port forward), IDE sessions of the VS Code
//!   and JetBrains families from the app registry (a main SSH connection, sometimes more,
//!   and agent-reported port forwards: `port_forwarding` with a connection id and no app),
//!   and web-terminal (`reconnecting_pty`) sessions, some opened by an IDE plugin.
//! - Web events from coderd, with no connection id: workspace-app opens, browser port
//!   forwards, tunnel authorisations.
//! - A share ([`LEGACY_SHARE`]) of client sessions and web events is delivered in the seed's
//!   line format, as from an older Coder. Those are made of what that format carries: no
//!   client session id, no agent port forward, and as an SSH app only `vscode` or
//!   `jetbrains` (the old types).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use connlog_vocabulary::AppFamily;

use crate::events::event_to_line_as;
use crate::model::{
    ConnectionEvent, ConnectionMethod, ConnectionStatus, LogFields, UnixNanos, Uuid,
};

use super::catalog::*;
use super::rng::SimRng;
use super::{Deployment, SimConfig, Summary, Workspace};

const SECOND: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * SECOND;
const DAY: i64 = 24 * HOUR;

/// Relative traffic in each UTC hour of a weekday; weekends get [`WEEKEND_FACTOR`] of it.
const HOURLY: [f64; 24] = [
    0.15, 0.1, 0.1, 0.1, 0.15, 0.25, 0.45, 0.7, 0.9, 1.0, 1.0, 1.0, 0.85, 0.95, 1.0, 1.0, 0.95,
    0.8, 0.6, 0.45, 0.35, 0.3, 0.25, 0.2,
];
const WEEKEND_FACTOR: f64 = 0.3;

/// Share of client sessions and web events delivered in the seed's line format.
pub const LEGACY_SHARE: f64 = 0.1;

/// Share of IDE app names sent in another spelling (`Cursor`, `Vscode-Insiders`), which the
/// plugin normalises.
const RAW_SPELLING_SHARE: f64 = 0.1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Activity {
    Ssh,
    VsCode,
    JetBrains,
    WebTerminal,
    WorkspaceApp,
    PortForward,
    Tunnel,
}

const ACTIVITY_MIX: [(Activity, u32); 7] = [
    (Activity::Ssh, 20),
    (Activity::VsCode, 16),
    (Activity::JetBrains, 6),
    (Activity::WebTerminal, 10),
    (Activity::WorkspaceApp, 30),
    (Activity::PortForward, 9),
    (Activity::Tunnel, 9),
];

/// A person as the traffic sees them: where they connect from.
#[derive(Clone, Debug)]
struct Person {
    id: Uuid,
    tailnet_ip: String,
    web_ip: String,
    /// Deleted users act only before this time.
    deleted_at: Option<UnixNanos>,
}

/// One delivered event and the generation of Coder's fields it is written in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub event: ConnectionEvent,
    pub fields: LogFields,
}

impl Delivery {
    /// The event as one NDJSON line in its generation's fields (no line ending).
    pub fn line(&self) -> String {
        event_to_line_as(&self.event, self.fields)
    }
}

struct Pending {
    deliver_at: UnixNanos,
    seq: u64,
    delivery: Delivery,
}

/// What the connections of one client session share.
struct ClientSession {
    ws_index: usize,
    agent_index: usize,
    ip: String,
    client_session_id: Option<String>,
    fields: LogFields,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deliver_at, self.seq).cmp(&(other.deliver_at, other.seq))
    }
}

/// The deployment's traffic, as an iterator of events in delivery order.
pub struct Traffic {
    rng: SimRng,
    start: UnixNanos,
    end: UnixNanos,
    total: u64,
    reserved: u64,
    emitted: u64,
    lost_share: f64,
    duplicate_share: f64,
    reorder_share: f64,
    workspaces: Vec<Workspace>,
    /// Cumulative activity weights of `workspaces`.
    workspace_weights: Vec<u64>,
    people: Vec<Person>,
    person_index: HashMap<Uuid, usize>,
    /// Organization id → indexes into `people` of its members.
    org_members: HashMap<Uuid, Vec<usize>>,
    /// Cumulative traffic weight of each hour of the window.
    hour_weights: Vec<f64>,
    heap: BinaryHeap<Reverse<Pending>>,
    /// The registry's VS Code and JetBrains apps, weighted.
    vscode_apps: Vec<(&'static str, u32)>,
    jetbrains_apps: Vec<(&'static str, u32)>,
    seq: u64,
    next_start: Option<UnixNanos>,
    last_delivery: Option<UnixNanos>,
    max_pending: usize,
    summary: Summary,
}

impl Traffic {
    /// The traffic of `deployment` as `config` describes it. Seeded by `config.seed` on its own
    /// stream, so the same config gives the same events.
    pub fn new(deployment: &Deployment, config: &SimConfig) -> Self {
        let mut rng = SimRng::new(config.seed, 1);
        let mut people = Vec::new();
        let mut person_index = HashMap::new();
        let mut org_members: HashMap<Uuid, Vec<usize>> = HashMap::new();
        for member in deployment.directory.members() {
            let index = people.len();
            let g = |rng: &mut SimRng| rng.below(0x1_0000);
            let tailnet_ip = format!(
                "fd7a:115c:a1e0:{:x}:{:x}:{:x}:{:x}:{:x}",
                g(&mut rng),
                g(&mut rng),
                g(&mut rng),
                g(&mut rng),
                g(&mut rng)
            );
            let web_ip = match rng.below(10) {
                0..=5 => format!(
                    "10.{}.{}.{}",
                    rng.below(256),
                    rng.below(256),
                    1 + rng.below(254)
                ),
                6..=7 => format!("198.51.100.{}", 1 + rng.below(254)),
                _ => format!("203.0.113.{}", 1 + rng.below(254)),
            };
            let user = &member.user;
            people.push(Person {
                id: user.id,
                tailnet_ip,
                web_ip,
                deleted_at: user.deleted.then_some(user.updated_at),
            });
            person_index.insert(user.id, index);
            for org in member.organization_roles.keys() {
                org_members.entry(*org).or_default().push(index);
            }
        }
        let mut total_weight = 0u64;
        let workspace_weights = deployment
            .workspaces
            .iter()
            .map(|w| {
                total_weight += u64::from(w.activity.max(1));
                total_weight
            })
            .collect();

        let start = config.start;
        let end = config.end();
        let hours = ((end - start + HOUR - 1) / HOUR) as usize;
        let mut cumulative = 0.0;
        let hour_weights = (0..hours)
            .map(|h| {
                let t = start + h as i64 * HOUR;
                let day = t.div_euclid(DAY);
                let hour = (t.rem_euclid(DAY) / HOUR) as usize;
                // 1970-01-01 was a Thursday: Monday is 0.
                let weekday = (day + 3).rem_euclid(7);
                let factor = if weekday >= 5 { WEEKEND_FACTOR } else { 1.0 };
                // The last hour may be partial.
                let span = ((end - t).min(HOUR)) as f64 / HOUR as f64;
                cumulative += HOURLY[hour] * factor * span;
                cumulative
            })
            .collect();

        Self {
            rng,
            start,
            end,
            total: config.events,
            reserved: 0,
            emitted: 0,
            lost_share: config.lost_disconnect_share,
            duplicate_share: config.duplicate_share,
            reorder_share: config.reorder_share,
            workspaces: deployment.workspaces.clone(),
            workspace_weights,
            people,
            person_index,
            org_members,
            hour_weights,
            heap: BinaryHeap::new(),
            vscode_apps: ide_mix(AppFamily::Vscode),
            jetbrains_apps: ide_mix(AppFamily::Jetbrains),
            seq: 0,
            next_start: None,
            last_delivery: None,
            max_pending: 0,
            summary: Summary::default(),
        }
    }

    /// How many events the iterator yields in all.
    pub fn total_events(&self) -> u64 {
        self.total
    }

    /// How many it has yielded so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// The simulated delivery time of the last event yielded, for progress displays.
    pub fn sim_time(&self) -> Option<UnixNanos> {
        self.last_delivery
    }

    /// Counts so far; complete once the iterator is exhausted.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Deliveries planned but not yet yielded.
    pub fn pending(&self) -> usize {
        self.heap.len()
    }

    /// The most deliveries ever waiting at once: the generator's memory high-water mark.
    pub fn max_pending(&self) -> usize {
        self.max_pending
    }

    /// Maps a share of the budget to a time in the window, following the weekly rhythm.
    fn time_at(&self, share: f64) -> UnixNanos {
        let total = *self.hour_weights.last().unwrap_or(&0.0);
        let target = share.clamp(0.0, 1.0) * total;
        let h = self
            .hour_weights
            .partition_point(|&c| c <= target)
            .min(self.hour_weights.len() - 1);
        let before = if h == 0 {
            0.0
        } else {
            self.hour_weights[h - 1]
        };
        let weight = self.hour_weights[h] - before;
        let frac = if weight > 0.0 {
            ((target - before) / weight).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let t = self.start + h as i64 * HOUR + (frac * HOUR as f64) as i64;
        t.min(self.end - 1)
    }

    fn push(&mut self, deliver_at: UnixNanos, delivery: Delivery) {
        self.seq += 1;
        self.heap.push(Reverse(Pending {
            deliver_at,
            seq: self.seq,
            delivery,
        }));
        self.max_pending = self.max_pending.max(self.heap.len());
    }

    /// Queues `event` and, if `duplicate`, a second delivery of it a little later.
    fn push_maybe_twice(
        &mut self,
        deliver_at: UnixNanos,
        event: ConnectionEvent,
        fields: LogFields,
        duplicate: bool,
    ) {
        let delivery = Delivery { event, fields };
        if duplicate {
            let later = deliver_at + self.rng.range_i64(SECOND / 10, 60 * SECOND);
            self.push(later, delivery.clone());
            self.summary.duplicates += 1;
        }
        self.push(deliver_at, delivery);
    }

    fn pick_workspace(&mut self) -> usize {
        let total = *self
            .workspace_weights
            .last()
            .expect("at least one workspace");
        let x = self.rng.below(total);
        self.workspace_weights.partition_point(|&c| c <= x)
    }

    /// Someone acting on a workspace at `t`: its owner, or with probability `other` another
    /// member of its organization who may act then.
    fn pick_actor(&mut self, ws: usize, t: UnixNanos, other: f64) -> usize {
        let owner = self.person_index[&self.workspaces[ws].owner_id];
        if !self.rng.chance(other) {
            return owner;
        }
        let members = &self.org_members[&self.workspaces[ws].organization_id];
        let candidate = members[self.rng.index(members.len())];
        match self.people[candidate].deleted_at {
            Some(deleted_at) if t >= deleted_at => owner,
            _ => candidate,
        }
    }

    fn plan(&mut self, t: UnixNanos) {
        let remaining = self.total - self.reserved;
        let activity = *self.rng.weighted(&ACTIVITY_MIX);
        let used = match activity {
            Activity::Ssh | Activity::VsCode | Activity::JetBrains | Activity::WebTerminal
                if remaining >= 2 =>
            {
                self.plan_client_session(t, activity, remaining)
            }
            Activity::Ssh | Activity::VsCode | Activity::JetBrains | Activity::WebTerminal => {
                self.plan_web(t, Activity::WorkspaceApp, remaining)
            }
            _ => self.plan_web(t, activity, remaining),
        };
        debug_assert!(used >= 1 && used <= remaining);
        self.reserved += used;
    }

    /// A client session reported by an agent: its main connection, then those opened beside
    /// it within the budget (`remaining` >= 2). Returns the deliveries it reserved.
    fn plan_client_session(&mut self, t: UnixNanos, activity: Activity, remaining: u64) -> u64 {
        let ws_index = self.pick_workspace();
        let agent_index = self.rng.index(self.workspaces[ws_index].agents.len());
        let legacy = self.rng.chance(LEGACY_SHARE);
        let owner = &self.people[self.person_index[&self.workspaces[ws_index].owner_id]];
        let ip = if self.rng.chance(0.03) {
            "localhost".to_owned()
        } else {
            owner.tailnet_ip.clone()
        };
        let session = ClientSession {
            ws_index,
            agent_index,
            ip,
            client_session_id: (!legacy).then(|| self.rng.hex32()),
            fields: if legacy {
                LogFields::Seed
            } else {
                LogFields::Current
            },
        };
        let (method, app) = match activity {
            Activity::Ssh if legacy => (ConnectionMethod::Ssh, None),
            Activity::Ssh => (
                ConnectionMethod::Ssh,
                self.rng.weighted(&SSH_APPS).map(str::to_owned),
            ),
            Activity::VsCode => (
                ConnectionMethod::Ssh,
                Some(self.ide_app(AppFamily::Vscode, legacy)),
            ),
            Activity::JetBrains => (
                ConnectionMethod::Ssh,
                Some(self.ide_app(AppFamily::Jetbrains, legacy)),
            ),
            _ if legacy => (ConnectionMethod::ReconnectingPty, None),
            _ => (
                ConnectionMethod::ReconnectingPty,
                self.rng.weighted(&PTY_APPS).map(str::to_owned),
            ),
        };
        let rng = &mut self.rng;
        let seconds = match activity {
            Activity::Ssh if rng.chance(0.1) => rng.range_i64(1, 10) as f64,
            Activity::Ssh => rng.log_normal(900.0, 1.3).clamp(2.0, 12.0 * 3600.0),
            Activity::VsCode => rng.log_normal(5400.0, 1.0).clamp(10.0, 16.0 * 3600.0),
            Activity::JetBrains => rng.log_normal(7200.0, 0.9).clamp(30.0, 16.0 * 3600.0),
            _ => rng.log_normal(480.0, 1.1).clamp(3.0, 8.0 * 3600.0),
        };
        let duration = (seconds * SECOND as f64) as i64 + rng.range_i64(0, SECOND - 1);
        // The web terminal is opened from the dashboard: a `workspace_app` event with slug
        // `terminal` comes first, and the agent reports the session a moment later.
        let connect_at = if activity == Activity::WebTerminal {
            (t + rng.range_i64(SECOND / 2, 3 * SECOND)).min(self.end - 1)
        } else {
            t
        };
        let mut used = self.plan_connection(
            &session,
            method,
            app.clone(),
            connect_at,
            duration,
            remaining,
        );
        if activity == Activity::WebTerminal && used < remaining && self.rng.chance(0.7) {
            let open = self.web_event(t, ws_index, Activity::WorkspaceApp, Some("terminal"));
            self.push_maybe_twice(open.time, open, session.fields, false);
            used += 1;
        }

        // Beside the main connection: IDEs open more SSH connections, and forward ports
        // through the agent (`ssh -L` does too); an older Coder reported no port forwards.
        let (more_ssh, forwards) = match activity {
            Activity::VsCode | Activity::JetBrains => (self.rng.below(3), self.rng.below(3)),
            Activity::Ssh => (0, u64::from(self.rng.chance(0.15))),
            _ => (0, 0),
        };
        let forwards = if legacy { 0 } else { forwards };
        let beside = (0..more_ssh)
            .map(|_| (ConnectionMethod::Ssh, app.clone()))
            .chain((0..forwards).map(|_| (ConnectionMethod::PortForwarding, None)));
        for (method, app) in beside.collect::<Vec<_>>() {
            let offset = self
                .rng
                .range_i64(SECOND / 10, (duration / 2).max(SECOND / 10));
            let length = self
                .rng
                .range_i64(SECOND / 10, (duration - offset).max(SECOND / 10));
            let at = connect_at + offset;
            if remaining - used < 2 || at >= self.end {
                break;
            }
            used += self.plan_connection(&session, method, app, at, length, remaining - used);
            self.summary.agent_port_forwards +=
                u64::from(method == ConnectionMethod::PortForwarding);
        }
        self.summary.client_sessions += u64::from(session.client_session_id.is_some());
        used
    }

    /// An IDE of `family` from the registry; an older Coder knew only the family's name.
    fn ide_app(&mut self, family: AppFamily, legacy: bool) -> String {
        if legacy {
            return family.as_str().to_owned();
        }
        let mix = match family {
            AppFamily::Jetbrains => &self.jetbrains_apps,
            _ => &self.vscode_apps,
        };
        let name = *self.rng.weighted(mix);
        if self.rng.chance(RAW_SPELLING_SHARE) {
            raw_spelling(name)
        } else {
            name.to_owned()
        }
    }

    /// One agent-reported connection of `session`: a connect and, unless lost or still open at
    /// the end, a disconnect that repeats its app and client session id. Needs
    /// `remaining` >= 2; returns the deliveries it reserved.
    fn plan_connection(
        &mut self,
        session: &ClientSession,
        method: ConnectionMethod,
        app: Option<String>,
        connect_at: UnixNanos,
        duration: i64,
        remaining: u64,
    ) -> u64 {
        let rng = &mut self.rng;
        let disconnect_at = connect_at.saturating_add(duration);
        let open_at_end = disconnect_at >= self.end;
        let lost = !open_at_end && rng.chance(self.lost_share);
        let has_disconnect = !open_at_end && !lost;
        let mut used = 1 + u64::from(has_disconnect);
        let mut dup_connect = false;
        let mut dup_disconnect = false;
        if used < remaining && rng.chance(self.duplicate_share) {
            dup_connect = true;
            used += 1;
        }
        if has_disconnect && used < remaining && rng.chance(self.duplicate_share) {
            dup_disconnect = true;
            used += 1;
        }
        let reorder = rng.chance(self.reorder_share);

        let ws = &self.workspaces[session.ws_index];
        let connect = ConnectionEvent {
            id: rng.uuid(),
            time: connect_at,
            organization_id: ws.organization_id,
            workspace_owner_id: ws.owner_id,
            workspace_id: ws.id,
            workspace_name: ws.name.clone(),
            agent_name: ws.agents[session.agent_index].name.clone(),
            connection_method: method,
            code: None,
            ip: Some(session.ip.clone()),
            user_agent: None,
            user_id: None,
            app_name_or_port: app,
            connection_id: Some(rng.uuid()),
            disconnect_reason: None,
            client_session_id: session.client_session_id.clone(),
            status: ConnectionStatus::Connected,
        };
        let disconnect = has_disconnect.then(|| {
            let reason = *rng.weighted(&DISCONNECT_REASONS);
            ConnectionEvent {
                id: rng.uuid(),
                time: disconnect_at,
                code: Some(*rng.weighted(&EXIT_CODES)),
                disconnect_reason: (!reason.is_empty()).then(|| reason.to_owned()),
                status: ConnectionStatus::Disconnected,
                ..connect.clone()
            }
        });
        let connect_delivery = match (reorder, has_disconnect) {
            (false, _) => connect_at,
            // Delivered after the disconnect, as from an agent that flushed out of order.
            (true, true) => disconnect_at + rng.range_i64(SECOND, 30 * SECOND),
            (true, false) => connect_at + rng.range_i64(SECOND, 120 * SECOND),
        };
        self.push_maybe_twice(connect_delivery, connect, session.fields, dup_connect);
        if let Some(d) = disconnect {
            self.push_maybe_twice(disconnect_at, d, session.fields, dup_disconnect);
        }
        self.summary.agent_sessions += 1;
        // Only SSH and web-terminal rows match `status:`, so only they count as ongoing.
        if method.is_terminal() {
            self.summary.lost_disconnects += u64::from(lost);
            self.summary.open_at_end += u64::from(open_at_end);
        }
        self.summary.reordered += u64::from(reorder);
        used
    }

    /// A web or tunnel event; returns the deliveries it reserved.
    fn plan_web(&mut self, t: UnixNanos, activity: Activity, remaining: u64) -> u64 {
        let duplicate = remaining >= 2 && self.rng.chance(self.duplicate_share);
        let reorder = self.rng.chance(self.reorder_share);
        let ws = self.pick_workspace();
        let fields = if self.rng.chance(LEGACY_SHARE) {
            LogFields::Seed
        } else {
            LogFields::Current
        };
        let event = self.web_event(t, ws, activity, None);
        let deliver_at = if reorder {
            event.time + self.rng.range_i64(5 * SECOND, 600 * SECOND)
        } else {
            event.time
        };
        self.summary.reordered += u64::from(reorder);
        self.push_maybe_twice(deliver_at, event, fields, duplicate);
        1 + u64::from(duplicate)
    }

    /// A web or tunnel event on the workspace at `t`, counted as one row to come.
    fn web_event(
        &mut self,
        t: UnixNanos,
        ws_index: usize,
        activity: Activity,
        slug: Option<&str>,
    ) -> ConnectionEvent {
        // coderd stamps web events with its own clock, rounded to microseconds.
        let t = t - t.rem_euclid(1000);
        let other_share = match activity {
            Activity::WorkspaceApp if slug.is_none() => 0.2,
            Activity::Tunnel => 0.15,
            _ => 0.08,
        };
        let actor = if slug.is_some() {
            self.person_index[&self.workspaces[ws_index].owner_id]
        } else {
            self.pick_actor(ws_index, t, other_share)
        };
        let rng = &mut self.rng;
        let ws = &self.workspaces[ws_index];
        let person = &self.people[actor];
        let is_owner = person.id == ws.owner_id;
        let agent = &ws.agents[rng.index(ws.agents.len())];
        let (connection_method, code, app_name_or_port, user_agent) = match activity {
            Activity::Tunnel => {
                let code = match (is_owner, rng.below(100)) {
                    (true, 0..=2) | (false, 0..=59) => 403,
                    _ => 101,
                };
                (
                    ConnectionMethod::Tunnel,
                    code,
                    None,
                    *rng.weighted(&CLI_AGENTS),
                )
            }
            Activity::PortForward => {
                let port = ws.ports[rng.index(ws.ports.len())];
                let code = if is_owner {
                    *rng.weighted(&PORT_CODES)
                } else {
                    *rng.weighted(&APP_CODES_OTHER)
                };
                (
                    ConnectionMethod::PortForwarding,
                    code,
                    Some(port.to_string()),
                    *rng.weighted(&BROWSER_AGENTS),
                )
            }
            _ => {
                let slug = match slug {
                    Some(s) => s.to_owned(),
                    None if rng.chance(0.2) => "terminal".to_owned(),
                    None => ws.apps[rng.index(ws.apps.len())].clone(),
                };
                let code = match (is_owner, slug.as_str()) {
                    (true, "terminal") => 200,
                    (true, _) => *rng.weighted(&APP_CODES_OWNER),
                    (false, _) => *rng.weighted(&APP_CODES_OTHER),
                };
                (
                    ConnectionMethod::WorkspaceApp,
                    code,
                    Some(slug),
                    *rng.weighted(&BROWSER_AGENTS),
                )
            }
        };
        let ip = if rng.chance(0.02) {
            "localhost".to_owned()
        } else {
            person.web_ip.clone()
        };
        self.summary.web_events += 1;
        ConnectionEvent {
            id: rng.uuid(),
            time: t,
            organization_id: ws.organization_id,
            workspace_owner_id: ws.owner_id,
            workspace_id: ws.id,
            workspace_name: ws.name.clone(),
            agent_name: agent.name.clone(),
            connection_method,
            code: Some(code),
            ip: Some(ip),
            user_agent: Some(user_agent.to_owned()),
            user_id: Some(person.id),
            app_name_or_port,
            connection_id: None,
            disconnect_reason: None,
            client_session_id: None,
            status: ConnectionStatus::Connected,
        }
    }
}

/// A registered name as some clients spell it (`cursor` → `Cursor`, `vscode_insiders` →
/// `Vscode-Insiders`); normalising gives the name back.
fn raw_spelling(name: &str) -> String {
    let words: Vec<String> = name
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect();
    words.join("-")
}

impl Traffic {
    /// The next event with the generation of fields it is written in.
    pub fn next_delivery(&mut self) -> Option<Delivery> {
        loop {
            if self.next_start.is_none() && self.reserved < self.total {
                // Jitter inside this activity's first slot keeps start times increasing.
                let share = (self.reserved as f64 + self.rng.f64()) / self.total as f64;
                self.next_start = Some(self.time_at(share));
            }
            let top = self.heap.peek().map(|p| p.0.deliver_at);
            match (top, self.next_start) {
                (Some(d), Some(s)) if d <= s => break,
                (_, Some(s)) => {
                    self.next_start = None;
                    self.plan(s);
                }
                (Some(_), None) => break,
                (None, None) => return None,
            }
        }
        let Reverse(pending) = self.heap.pop()?;
        self.emitted += 1;
        self.last_delivery = Some(pending.deliver_at);
        self.summary.record(&pending.delivery);
        Some(pending.delivery)
    }
}

/// The events alone; [`Traffic::next_delivery`] also tells which generation of fields each
/// is written in.
impl Iterator for Traffic {
    type Item = ConnectionEvent;

    fn next(&mut self) -> Option<ConnectionEvent> {
        self.next_delivery().map(|d| d.event)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.total - self.emitted).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Traffic {}
