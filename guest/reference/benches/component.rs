//! The reference plugin as a component (run by the `connlog` host) against a native build of
//! the same guest logic. It lives here, not in the host, because the host depends on no
//! plugin crate; this crate may depend on the host.
//!
//! `cargo bench -p connlog-reference --bench component` (set `BENCH_ROWS`, default 1,000,000;
//! `BENCH_ITERS` samples per query, default 21; `BENCH_ONLY` runs the queries whose name
//! contains it, handy under a profiler). Both sides are loaded with the same synthetic
//! deployment through `replay` (the same event columns the host sends), then answer the
//! same queries, as typed pages (`query`) and as Coder's JSON body (`api-page`, what the
//! API serves); the tables print medians and the component/native ratio. Replay time is
//! the `replay` calls alone, without making the synthetic events. Memory is the
//! component's real linear memory and the native store's own estimate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use connlog::plugin::{Clock, Embedded, Limits, PluginHost, PluginInstance, PluginSource};
use connlog_plugin_sdk::ConnectionLogPlugin;
use connlog_plugin_sdk::event_columns::EventColumns;
use connlog_plugin_sdk::model::*;
use connlog_plugin_sdk::testing::MemoryHost;
use connlog_reference::ReferencePlugin;

const BATCH: usize = 10_000;
const DAY: i64 = 86_400 * 1_000_000_000;
const START: i64 = 1_751_328_000 * 1_000_000_000; // 2025-07-01T00:00:00Z

/// A deterministic stream of canonical events, each session's events together.
struct Synthetic {
    rows: u64,
    next: u64,
    span: i64,
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ceb9fe1a85ec53);
    x ^ (x >> 33)
}

fn id(namespace: u64, n: u64) -> Uuid {
    let high = (namespace << 48) | (mix(n) >> 16);
    Uuid::from_u64_pair(high, (mix(n ^ namespace) & !(0xF << 12)) | (4 << 12))
}

/// Agent sessions: (method, the client's app).
const SESSION_KINDS: [(ConnectionMethod, Option<&str>); 8] = [
    (ConnectionMethod::Ssh, None),
    (ConnectionMethod::Ssh, Some("vscode")),
    (ConnectionMethod::Ssh, Some("cursor")),
    (ConnectionMethod::Ssh, Some("windsurf")),
    (ConnectionMethod::Ssh, Some("jetbrains")),
    (ConnectionMethod::ReconnectingPty, None),
    (ConnectionMethod::Ssh, Some("code_server")),
    (ConnectionMethod::Ssh, Some("zed")),
];
const WEB_METHODS: [ConnectionMethod; 3] = [
    ConnectionMethod::WorkspaceApp,
    ConnectionMethod::PortForwarding,
    ConnectionMethod::Tunnel,
];
const ORGS: u64 = 5;
const OWNERS: u64 = 500;
const WORKSPACES: u64 = 2_000;

impl Synthetic {
    fn new(rows: u64) -> Self {
        Self {
            rows,
            next: 0,
            span: 30 * DAY,
        }
    }

    fn row_events(&self, n: u64) -> Vec<ConnectionEvent> {
        let r = mix(n);
        let workspace = r % WORKSPACES;
        let owner = workspace % OWNERS;
        let org = owner % ORGS;
        let time = START + (self.span / self.rows as i64) * n as i64 + (r % 1_000_000) as i64;
        let base = ConnectionEvent {
            id: id(1, n),
            time,
            organization_id: id(2, org),
            workspace_owner_id: id(3, owner),
            workspace_id: id(4, workspace),
            workspace_name: format!("ws-{workspace}"),
            agent_name: "main".into(),
            connection_method: ConnectionMethod::Ssh,
            code: None,
            ip: Some(format!("fd7a:115c:a1e0::{:x}", workspace)),
            user_agent: None,
            user_id: None,
            app_name_or_port: None,
            connection_id: None,
            disconnect_reason: None,
            client_session_id: None,
            status: ConnectionStatus::Connected,
        };
        if r.is_multiple_of(5) {
            let method = WEB_METHODS[(r >> 8) as usize % WEB_METHODS.len()];
            return vec![ConnectionEvent {
                connection_method: method,
                code: Some(if method == ConnectionMethod::Tunnel {
                    101
                } else {
                    200
                }),
                ip: Some(format!("10.0.{}.{}", owner % 250, workspace % 250)),
                user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
                user_id: Some(id(3, (r >> 16) % OWNERS)),
                app_name_or_port: match method {
                    ConnectionMethod::PortForwarding => Some("8080".into()),
                    ConnectionMethod::WorkspaceApp => Some("code-server".into()),
                    _ => None,
                },
                ..base
            }];
        }
        let (method, app) = SESSION_KINDS[(r >> 8) as usize % SESSION_KINDS.len()];
        let connect = ConnectionEvent {
            connection_method: method,
            app_name_or_port: app.map(str::to_string),
            connection_id: Some(id(5, n)),
            ..base
        };
        if r % 10 == 1 {
            return vec![connect]; // ongoing
        }
        let disconnect = ConnectionEvent {
            id: id(6, n),
            time: connect.time + 60_000_000_000 + (r % 3_600) as i64 * 1_000_000_000,
            code: Some(if r.is_multiple_of(7) { 1 } else { 0 }),
            disconnect_reason: Some("client disconnected".into()),
            status: ConnectionStatus::Disconnected,
            ..connect.clone()
        };
        vec![connect, disconnect]
    }

    fn next_batch(&mut self) -> Option<Vec<ConnectionEvent>> {
        if self.next >= self.rows {
            return None;
        }
        let mut batch = Vec::with_capacity(BATCH);
        while batch.len() < BATCH && self.next < self.rows {
            batch.extend(self.row_events(self.next));
            self.next += 1;
        }
        Some(batch)
    }
}

fn owner_actor() -> Actor {
    Actor {
        user_id: id(3, 0),
        site_roles: vec!["owner".into()],
        organization_roles: Vec::new(),
    }
}

fn queries(rows: u64) -> Vec<(&'static str, QueryRequest)> {
    let day = |d: i64| connlog::events::format_time(START + d * DAY);
    let q = |q: String, offset: u32| QueryRequest {
        q,
        limit: None,
        offset,
    };
    vec![
        ("first page, no filter", q(String::new(), 0)),
        // One row: what remains is the query itself, nearly free of boundary copying.
        (
            "first row only, no filter",
            QueryRequest {
                q: String::new(),
                limit: Some(1),
                offset: 0,
            },
        ),
        (
            "organization + type + status",
            q(
                format!("organization:{} type:ssh status:completed", id(2, 1)),
                0,
            ),
        ),
        ("type family (vscode)", q("type:vscode".into(), 0)),
        // Coder's current filters: a method, and apps by name.
        ("method + status", q("method:ssh status:ongoing".into(), 0)),
        (
            "apps (cursor, jetbrains)",
            q("app:cursor,jetbrains".into(), 0),
        ),
        ("one workspace", q(format!("workspace_id:{}", id(4, 7)), 0)),
        (
            "one day window",
            q(
                format!(
                    "connected_after:\"{}\" connected_before:\"{}\"",
                    day(10),
                    day(11)
                ),
                0,
            ),
        ),
        ("status:ongoing", q("status:ongoing".into(), 0)),
        (
            "deep page (offset rows/10)",
            q(String::new(), (rows / 10) as u32),
        ),
    ]
}

/// Replays the synthetic deployment in batches; returns the events sent and the time spent
/// in `replay` alone, not in making the events.
fn load(rows: u64, mut replay: impl FnMut(Vec<ConnectionEvent>)) -> (u64, Duration) {
    let (mut events, mut spent) = (0, Duration::ZERO);
    let mut source = Synthetic::new(rows);
    while let Some(batch) = source.next_batch() {
        events += batch.len() as u64;
        let started = Instant::now();
        replay(batch);
        spent += started.elapsed();
    }
    (events, spent)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time_query(iterations: usize, mut run: impl FnMut() -> u64) -> (Duration, u64) {
    let mut count = 0;
    for _ in 0..3 {
        count = run();
    }
    let samples = (0..iterations)
        .map(|_| {
            let started = Instant::now();
            count = run();
            started.elapsed()
        })
        .collect();
    (median(samples), count)
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run small then.
    let benching = std::env::args().any(|a| a == "--bench");
    let rows: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 1_000_000 } else { 20_000 });
    let iterations = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 21 } else { 3 });
    println!(
        "connlog plugin benchmark: {rows} rows, {BATCH}-event batches, medians of {iterations}"
    );

    // The component loads first: the native store lives in this process's heap, and left
    // in place it would slow the host side of every later component call.
    let host = PluginHost::new(None).expect("engine");
    let plugin = host
        .load(&PluginSource::Embedded(Embedded::Reference))
        .expect("reference plugin");
    let limits = Limits {
        memory_bytes: 4 << 30,
        call_deadline: Duration::from_secs(600),
        ..Limits::default()
    };
    let directory = Arc::new(connlog::directory::Directory::new());
    let mut component: PluginInstance = plugin
        .instantiate(None, directory, Clock::System, &limits)
        .expect("instance");
    let (events, component_load) = load(rows, |batch| {
        component
            .replay(host_columns(EventColumns::from_events(&batch)))
            .expect("no trap")
            .expect("component replay")
    });

    // Native: the guest logic linked into this process, fed the same columns the host sends.
    let mut native = ReferencePlugin::new();
    let mut native_host = MemoryHost::new();
    let (_, native_load) = load(rows, |batch| {
        let columns = EventColumns::from_events(&batch);
        let events = columns.events().expect("columns decode");
        native
            .replay(&mut native_host, &events)
            .expect("native replay")
    });
    let native_stats = native.stats();

    let component_stats = component.stats().expect("stats");
    assert_eq!(
        native_stats.rows, component_stats.rows,
        "both sides hold the same rows"
    );

    println!();
    println!("| load ({events} events) | native | component | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| replay time | {} | {} | {:.2}x |",
        fmt(native_load),
        fmt(component_load),
        component_load.as_secs_f64() / native_load.as_secs_f64()
    );
    println!(
        "| rows | {} | {} | |",
        native_stats.rows, component_stats.rows
    );
    let linear = component.state().linear_memory_bytes();
    println!(
        "| memory | {:.1} MiB estimated ({:.0} B/row) | {:.1} MiB linear memory ({:.0} B/row) | |",
        native_stats.memory_bytes as f64 / 1048576.0,
        native_stats.memory_bytes as f64 / rows as f64,
        linear as f64 / 1048576.0,
        linear as f64 / rows as f64
    );

    let actor = owner_actor();
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let queries: Vec<_> = queries(rows)
        .into_iter()
        .filter(|(n, _)| n.contains(only.as_str()))
        .collect();
    compare(
        "query (limit 100, exact count) | count",
        iterations,
        &queries,
        |request| {
            native
                .query(&native_host, &actor, request)
                .expect("native query")
                .count
        },
        |request| {
            component
                .query(host_actor(&actor), host_request(request))
                .expect("no trap")
                .expect("component query")
                .count
        },
    );
    // What `GET /api/v2/connectionlog` runs: the page rendered as Coder's body.
    compare(
        "the same, as Coder's JSON body (`api-page`) | body bytes",
        iterations,
        &queries,
        |request| {
            native
                .api_page(&native_host, &actor, request)
                .expect("native api-page")
                .len() as u64
        },
        |request| {
            component
                .api_page(host_actor(&actor), host_request(request))
                .expect("no trap")
                .expect("component api-page")
                .len() as u64
        },
    );
}

/// The host's copy of a batch: both sides mirror the WIT record field for field.
fn host_columns(c: EventColumns) -> connlog::plugin::EventColumns {
    connlog_plugin_sdk::__move_columns!(c => connlog::plugin::EventColumns)
}

fn host_actor(a: &Actor) -> connlog::model::Actor {
    connlog::model::Actor {
        user_id: a.user_id,
        site_roles: a.site_roles.clone(),
        organization_roles: a.organization_roles.clone(),
    }
}

fn host_request(r: &QueryRequest) -> connlog::model::QueryRequest {
    connlog::model::QueryRequest {
        q: r.q.clone(),
        limit: r.limit.unwrap_or(0),
        offset: r.offset,
    }
}

/// One table: every query timed on both sides, whose answers (a count, a body's length)
/// must agree; then the whole mix, one of each back to back.
fn compare(
    header: &str,
    iterations: usize,
    queries: &[(&str, QueryRequest)],
    mut native: impl FnMut(&QueryRequest) -> u64,
    mut component: impl FnMut(&QueryRequest) -> u64,
) {
    println!();
    println!("| {header} | native | component | ratio |");
    println!("|---|---|---|---|---|");
    let (mut native_sum, mut component_sum) = (Duration::ZERO, Duration::ZERO);
    for (name, request) in queries {
        let (native_time, native_answer) = time_query(iterations, || native(request));
        let (component_time, component_answer) = time_query(iterations, || component(request));
        assert_eq!(
            native_answer, component_answer,
            "{name}: the same answer on both sides"
        );
        println!(
            "| {name} | {native_answer} | {} | {} | {:.2}x |",
            fmt(native_time),
            fmt(component_time),
            component_time.as_secs_f64() / native_time.as_secs_f64()
        );
        native_sum += native_time;
        component_sum += component_time;
    }
    println!(
        "| all of the above, once each | | {} | {} | {:.2}x |",
        fmt(native_sum),
        fmt(component_sum),
        component_sum.as_secs_f64() / native_sum.as_secs_f64()
    );
}
