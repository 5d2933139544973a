//! RowStore at scale: memory per row, upsert throughput, first pages with exact counts,
//! deep offsets and snapshot encode/decode.
//!
//! `cargo bench -p connlog-reference --bench store` builds 1M rows; `STORE_BENCH_ROWS=10000000`
//! builds ten million. One-shot figures (build, memory, snapshot) are printed to stderr.

use std::hint::black_box;
use std::time::Instant;

use connlog_plugin_sdk::model::*;
use connlog_reference::authz::Visibility;
use connlog_reference::search::{Filter, SessionStatus};
use connlog_reference::store::RowStore;
use criterion::{Criterion, criterion_group, criterion_main};

const SECOND: i64 = 1_000_000_000;
const DAY: i64 = 86_400 * SECOND;
const SPAN_DAYS: i64 = 30;
const T0: i64 = 1_750_000_000 * SECOND;

/// splitmix64: deterministic, no dependencies.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn uuid(&mut self) -> Uuid {
        let v = ((self.next() as u128) << 64) | self.next() as u128;
        // Version 4, RFC 4122 variant, as Coder's ids are.
        Uuid::from_u128((v & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62))
    }
}

/// Types with weights: agent-reported mostly, a fair share of web rows.
const TYPES: [(&str, u64); 12] = [
    ("ssh", 30),
    ("vscode", 20),
    ("cursor", 6),
    ("jetbrains", 6),
    ("reconnecting_pty", 8),
    ("sftp", 2),
    ("zed", 1),
    ("code_server", 2),
    ("windsurf", 1),
    ("workspace_app", 15),
    ("port_forwarding", 6),
    ("tunnel", 3),
];

struct World {
    orgs: Vec<Uuid>,
    /// (id, org index, ips)
    owners: Vec<(Uuid, usize, Vec<String>)>,
    /// (id, owner index, name)
    workspaces: Vec<(Uuid, usize, String)>,
}

impl World {
    fn new(rng: &mut Rng) -> Self {
        let orgs: Vec<Uuid> = (0..200).map(|_| rng.uuid()).collect();
        let owners = (0..2000)
            .map(|i| {
                let ips = (0..3)
                    .map(|_| {
                        format!(
                            "10.{}.{}.{}",
                            rng.below(256),
                            rng.below(256),
                            rng.below(256)
                        )
                    })
                    .collect();
                (
                    rng.uuid(),
                    (i * 7 + rng.below(3) as usize) % orgs.len(),
                    ips,
                )
            })
            .collect();
        let workspaces = (0..8000)
            .map(|i| (rng.uuid(), rng.below(2000) as usize, format!("ws-{i}")))
            .collect();
        Self {
            orgs,
            owners,
            workspaces,
        }
    }

    /// The `i`-th of `n` rows: time mostly increasing over 30 days, with some jitter.
    fn row(&self, rng: &mut Rng, i: u64, n: u64) -> ConnectionLog {
        let base = T0 + (i as i128 * (SPAN_DAYS * DAY) as i128 / n as i128) as i64;
        let jitter = if rng.below(10) == 0 {
            rng.below(120) as i64 * SECOND
        } else {
            0
        };
        let time = base - jitter;
        let (workspace_id, owner, workspace_name) =
            &self.workspaces[rng.below(self.workspaces.len() as u64) as usize];
        let (owner_id, org, ips) = &self.owners[*owner];
        let mut pick = rng.below(100);
        let ty = TYPES
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .unwrap()
            .0;
        let web = matches!(ty, "workspace_app" | "port_forwarding" | "tunnel");
        let agent = if rng.below(4) == 0 { "dev" } else { "main" };
        let disconnected = !web && rng.below(20) != 0;
        // The seed's kinds, as migration 000614 turns them into a method and an app.
        let slug = web.then(|| {
            ["code-server", "jupyter", "8080", "3000", "filebrowser"][rng.below(5) as usize]
        });
        let (method, app) = connlog_vocabulary::upgrade(ty, slug);
        ConnectionLog {
            id: rng.uuid(),
            connect_time: time,
            organization_id: self.orgs[*org],
            workspace_owner_id: *owner_id,
            workspace_id: *workspace_id,
            workspace_name: workspace_name.clone(),
            agent_name: agent.into(),
            connection_method: method,
            code: (disconnected && rng.below(3) == 0).then_some(if rng.below(4) == 0 {
                1
            } else {
                0
            }),
            ip: Some(ips[rng.below(3) as usize].clone()),
            user_agent: web.then(|| {
                format!(
                    "Mozilla/5.0 (X11; Linux x86_64) Chrome/{}.0",
                    120 + rng.below(10)
                )
            }),
            user_id: web.then_some(*owner_id),
            app_name_or_port: app.map(str::to_string),
            connection_id: (!web).then(|| rng.uuid()),
            disconnect_time: disconnected.then(|| time + (1 + rng.below(7200)) as i64 * SECOND),
            disconnect_reason: disconnected
                .then(|| ["", "client closed", "agent shutdown"][rng.below(3) as usize].into()),
            client_session_id: (!web && rng.below(2) == 0)
                .then(|| format!("{:032x}", rng.below(1 << 30))),
        }
    }
}

/// What `type:ssh` parses to: SSH rows without a VS Code or JetBrains app.
fn type_ssh() -> Filter {
    let f = connlog_vocabulary::LegacyType::Ssh.filter();
    Filter {
        method: Some(f.method),
        excluded_app_names: f.excluded_apps.into_iter().map(str::to_string).collect(),
        ..Default::default()
    }
}

fn rows_wanted() -> u64 {
    std::env::var("STORE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn bench(c: &mut Criterion) {
    let n = rows_wanted();
    let mut rng = Rng(42);
    let world = World::new(&mut rng);
    let rows: Vec<ConnectionLog> = (0..n).map(|i| world.row(&mut rng, i, n)).collect();

    let mut store = RowStore::new();
    let started = Instant::now();
    for r in &rows {
        store.upsert(r.as_row_ref());
    }
    let build = started.elapsed();
    let bytes = store.memory_bytes();
    eprintln!(
        "[store] {} rows: upsert {:.2?} ({:.0} rows/s), memory_bytes {} MiB = {:.1} B/row",
        store.len(),
        build,
        n as f64 / build.as_secs_f64(),
        bytes >> 20,
        bytes as f64 / store.len() as f64
    );

    let built_report = store.memory_report();
    // Replacements (a disconnect arriving for an ongoing session).
    let ongoing: Vec<ConnectionLog> = rows
        .iter()
        .rev()
        .filter(|r| r.connection_id.is_some() && r.disconnect_time.is_none())
        .step_by(2)
        .cloned()
        .collect();
    let started = Instant::now();
    for r in &ongoing {
        let mut r = r.clone();
        r.disconnect_time = Some(r.connect_time + 60 * SECOND);
        store.upsert(r.as_row_ref());
    }
    let t = started.elapsed();
    eprintln!(
        "[store] {} replacements: {:.2?} ({:.0}/s)",
        ongoing.len(),
        t,
        ongoing.len() as f64 / t.as_secs_f64()
    );
    drop(rows);

    // Snapshot, 1 MiB chunks.
    let started = Instant::now();
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    store
        .encode(1 << 20, &mut |c| {
            chunks.push(c.to_vec());
            Ok(())
        })
        .unwrap();
    let enc = started.elapsed();
    let size: usize = chunks.iter().map(Vec::len).sum();
    let started = Instant::now();
    let mut it = chunks.into_iter();
    let back = RowStore::decode(&mut || Ok(it.next())).unwrap();
    let dec = started.elapsed();
    eprintln!(
        "[store] snapshot {} MiB ({:.1} B/row): encode {:.2?}, decode {:.2?}; decoded memory_bytes {:.1} B/row",
        size >> 20,
        size as f64 / n as f64,
        enc,
        dec,
        back.memory_bytes() as f64 / back.len() as f64
    );
    // Part by part, as built by upserts and as loaded from the snapshot (exactly sized).
    eprintln!("[store]   {:<24} {:>14} {:>10}", "", "built", "loaded");
    for ((part, built), (_, loaded)) in built_report.into_iter().zip(back.memory_report()) {
        eprintln!(
            "[store]   {part:<24} {:>8.1} MiB {:>6.1} B/row {:>6.1} B/row",
            built as f64 / (1 << 20) as f64,
            built as f64 / n as f64,
            loaded as f64 / n as f64
        );
    }

    let org = world.orgs[7];
    let last = T0 + SPAN_DAYS * DAY;
    let cases: Vec<(&str, Filter, Visibility, u32)> = vec![
        (
            "unfiltered first page",
            Filter::default(),
            Visibility::All,
            0,
        ),
        (
            "deep offset (len/2)",
            Filter::default(),
            Visibility::All,
            (n / 2) as u32,
        ),
        (
            "org + type:ssh + status",
            Filter {
                organization_id: Some(org),
                status: Some(SessionStatus::Completed),
                ..type_ssh()
            },
            Visibility::All,
            0,
        ),
        (
            "org + type:ssh + status, offset 1000",
            Filter {
                organization_id: Some(org),
                status: Some(SessionStatus::Completed),
                ..type_ssh()
            },
            Visibility::All,
            1000,
        ),
        (
            "last 7 days",
            Filter {
                connected_after: Some(last - 7 * DAY),
                ..Default::default()
            },
            Visibility::All,
            0,
        ),
        (
            "3-day window mid-range",
            Filter {
                connected_after: Some(T0 + 10 * DAY),
                connected_before: Some(T0 + 13 * DAY),
                ..Default::default()
            },
            Visibility::All,
            0,
        ),
        (
            "org visibility + 3-day window",
            Filter {
                connected_after: Some(T0 + 10 * DAY),
                connected_before: Some(T0 + 13 * DAY),
                ..Default::default()
            },
            Visibility::Organizations(vec![org, world.orgs[8]]),
            0,
        ),
        (
            "status ongoing",
            Filter {
                status: Some(SessionStatus::Ongoing),
                ..Default::default()
            },
            Visibility::All,
            0,
        ),
        (
            "method workspace_app",
            Filter {
                method: Some(ConnectionMethod::WorkspaceApp),
                ..Default::default()
            },
            Visibility::All,
            0,
        ),
        (
            "app cursor",
            Filter {
                app_names: Some(vec!["cursor".into()]),
                ..Default::default()
            },
            Visibility::All,
            0,
        ),
        (
            "owner",
            Filter {
                workspace_owner_ids: Some(vec![world.owners[3].0]),
                ..Default::default()
            },
            Visibility::All,
            0,
        ),
        (
            "workspace",
            Filter {
                workspace_id: Some(world.workspaces[5].0),
                ..Default::default()
            },
            Visibility::All,
            0,
        ),
    ];
    let mut group = c.benchmark_group(format!("store_{n}"));
    for (name, filter, vis, offset) in &cases {
        let (page, count) = store.query(filter, vis, 25, *offset);
        eprintln!("[store] {name}: count {count}, page {}", page.len());
        assert_eq!(
            back.query(filter, vis, 25, *offset),
            (page, count),
            "decoded store answers {name} the same"
        );
        group.bench_function(*name, |b| {
            b.iter(|| black_box(store.query(filter, vis, 25, *offset)))
        });
    }
    group.finish();

    // Retention on the decoded copy: the oldest 3 days (bulk), then 10 more minutes.
    let mut back = back;
    for cutoff in [T0 + 3 * DAY, T0 + 3 * DAY + 600 * SECOND] {
        let started = Instant::now();
        let expired = back.expired(cutoff).len();
        let listed = started.elapsed();
        let started = Instant::now();
        let purged = back.remove_before(cutoff);
        let t = started.elapsed();
        assert_eq!(purged as usize, expired);
        eprintln!("[store] purge {purged} rows: expired() {listed:.2?}, remove_before {t:.2?}");
    }
    drop(back);

    let mut group = c.benchmark_group(format!("store_{n}_snapshot"));
    group.sample_size(10);
    group.bench_function("encode", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            store
                .encode(1 << 20, &mut |c| {
                    bytes += c.len();
                    Ok(())
                })
                .unwrap();
            black_box(bytes)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
