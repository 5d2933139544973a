//! Hot swaps between the embedded plugins while `connlog serve` takes the simulator's traffic
//! and answers queries: nothing acknowledged is lost, every query is answered, and what the
//! privacy plugin stored stays truncated after swapping back and after a restart.
//!
//! Phases, counted by a shared atomic the main thread bumps around each swap:
//!
//! | phase | plugin |
//! |---|---|
//! | 0 | reference |
//! | 1 | swapping to privacy (either plugin may take a batch) |
//! | 2 | privacy |
//! | 3 | swapping back to reference (either plugin may take a batch) |
//! | 4 | reference |
//!
//! The main thread bumps the phase to odd *before* it sends a swap request and to even only
//! *after* the swap's 200, so a batch whose writer read the same even phase before sending
//! it and after its acknowledgement was stored by that phase's plugin, and nothing else.

mod support;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use connlog::events::event_to_line;
use connlog::model::{ConnectionEvent, ConnectionStatus, Uuid};
use connlog::simulate::{ADMIN_USERNAME, Deployment, SimConfig, Summary, Traffic};
use serde_json::Value;
use support::server::Server;

/// Events delivered in all, the simulator's duplicates included.
const TOTAL_EVENTS: u64 = 36_000;
/// Events per ingest request.
const BATCH: usize = 200;
/// Writer threads; an event goes to the writer of its session (or of its own ID), so one
/// writer sends every delivery of an ID, in the simulator's order.
const WRITERS: usize = 2;
/// Events acknowledged in a stable phase before the main thread swaps out of it.
const SWAP_AFTER: u64 = 6_000;
/// Writers wait (until the swap starts) once this many events were sent in phase 0 or 2…
const HOLD_AT: u64 = 8_000;
/// …and (until the swap ends) once this many were sent during a swap, so that every phase
/// gets thousands of events whatever the machine's speed.
const HOLD_IN_SWAP_AT: u64 = 6_000;
/// During a swap each writer pauses this long between batches, so that events keep coming
/// for the whole swap (a second or so) rather than all at its start.
const PACE_IN_SWAP: Duration = Duration::from_millis(25);
/// Resend every this many batches the batch before it, as a client that timed out would.
const RESEND_EVERY: usize = 7;
/// Longest wait for the writers to reach a phase's quota.
const PHASE_DEADLINE: Duration = Duration::from_secs(60);

const INGEST: &str = "/api/v2/connectionlog/ingest";
const SWAP: &str = "/api/v2/connectionlog/plugin";

/// The simulated deployment's traffic, with the directory (and an owner token) written into
/// `data`.
struct Scenario {
    events: Vec<ConnectionEvent>,
    summary: Summary,
    admin_token: String,
}

fn scenario(data: &std::path::Path) -> Scenario {
    let config = SimConfig {
        seed: 42,
        orgs: 2,
        users: 30,
        workspaces: 40,
        days: 7,
        events: TOTAL_EVENTS,
        start: connlog::events::parse_time("2025-06-01T00:00:00Z").unwrap(),
        ..SimConfig::default()
    };
    let deployment = Deployment::generate(&config).unwrap();
    let mut directory = deployment.directory.clone();
    let admin_token = directory.create_token(ADMIN_USERNAME).unwrap();
    directory.save(&data.join("directory.json")).unwrap();
    let mut traffic = Traffic::new(&deployment, &config);
    let events: Vec<ConnectionEvent> = traffic.by_ref().collect();
    assert_eq!(events.len() as u64, TOTAL_EVENTS);
    Scenario {
        events,
        summary: traffic.summary().clone(),
        admin_token,
    }
}

/// Shared between the main thread, the writers and the reader.
struct Shared {
    phase: AtomicU64,
    /// Per phase, events acknowledged in batches sent and acknowledged within it.
    acked_in_phase: [AtomicU64; 5],
    /// Per phase, events of the batches sent in it.
    sent_in_phase: [AtomicU64; 5],
    /// Writers that have sent everything (or given up).
    writers_done: AtomicUsize,
    stop_reader: AtomicBool,
    /// Set by a writer that gave up: the main thread stops waiting for quotas.
    writer_failed: AtomicBool,
}

/// Stops the reader and releases held writers when dropped, even by a panic.
struct Release<'a>(&'a Shared);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.writer_failed.store(true, SeqCst);
            self.0.phase.store(4, SeqCst);
        }
        self.0.stop_reader.store(true, SeqCst);
    }
}

/// When the first delivery of an ID was sent and acknowledged.
#[derive(Clone, Copy, Debug)]
struct FirstDelivery {
    sent_in: u64,
    acked_in: u64,
}

impl FirstDelivery {
    /// The phase whose plugin stored the event, when that is certain.
    fn phase(self) -> Option<u64> {
        (self.sent_in == self.acked_in && self.sent_in.is_multiple_of(2)).then_some(self.sent_in)
    }
}

#[derive(Default)]
struct WriterReport {
    first: HashMap<Uuid, FirstDelivery>,
    acked: HashSet<Uuid>,
    requests: u64,
    resends: u64,
    /// Attempts that got no 200 (retried).
    failures: Vec<String>,
    gave_up: Option<String>,
}

/// Sends `events` in batches, recording the phase of each ID's first delivery.
fn writer(
    server: &Server,
    token: &str,
    shared: &Shared,
    events: &[ConnectionEvent],
) -> WriterReport {
    let mut report = WriterReport::default();
    let batches: Vec<&[ConnectionEvent]> = events.chunks(BATCH).collect();
    for (index, batch) in batches.iter().enumerate() {
        if shared.writer_failed.load(SeqCst) {
            report.gave_up = Some("stopped: another thread failed".into());
            return report;
        }
        // Hold on while a phase other than the last has had its share.
        let held = Instant::now();
        loop {
            let p = shared.phase.load(SeqCst);
            let quota = match p {
                0 | 2 => HOLD_AT,
                1 | 3 => HOLD_IN_SWAP_AT,
                _ => u64::MAX,
            };
            if shared.sent_in_phase[p as usize].load(SeqCst) < quota {
                break;
            }
            if held.elapsed() > PHASE_DEADLINE {
                report.gave_up = Some(format!("held in phase {p} for {PHASE_DEADLINE:?}"));
                shared.writer_failed.store(true, SeqCst);
                return report;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let body: String = batch.iter().map(|e| event_to_line(e) + "\n").collect();
        if shared.phase.load(SeqCst) % 2 == 1 {
            std::thread::sleep(PACE_IN_SWAP);
        }
        let sent_in = shared.phase.load(SeqCst);
        shared.sent_in_phase[sent_in as usize].fetch_add(batch.len() as u64, SeqCst);
        if let Err(e) = send_batch(server, token, &body, batch.len(), &mut report) {
            report.gave_up = Some(e);
            shared.writer_failed.store(true, SeqCst);
            return report;
        }
        let acked_in = shared.phase.load(SeqCst);
        if sent_in == acked_in && sent_in.is_multiple_of(2) {
            shared.acked_in_phase[sent_in as usize].fetch_add(batch.len() as u64, SeqCst);
        }
        for event in batch.iter() {
            report.acked.insert(event.id);
            report
                .first
                .entry(event.id)
                .or_insert(FirstDelivery { sent_in, acked_in });
        }
        // A client retrying a request it saw no answer to: a replay of stored events.
        if index % RESEND_EVERY == RESEND_EVERY - 1 {
            let previous = batches[index - 1];
            let body: String = previous.iter().map(|e| event_to_line(e) + "\n").collect();
            if let Err(e) = send_batch(server, token, &body, previous.len(), &mut report) {
                report.gave_up = Some(e);
                shared.writer_failed.store(true, SeqCst);
                return report;
            }
            report.resends += 1;
        }
    }
    report
}

/// POSTs one batch until it is acknowledged in full (a few tries).
fn send_batch(
    server: &Server,
    token: &str,
    body: &str,
    events: usize,
    report: &mut WriterReport,
) -> Result<(), String> {
    for _ in 0..5 {
        report.requests += 1;
        match server.try_post(INGEST, Some(token), body) {
            Ok((200, answer)) => {
                let v: Value = serde_json::from_str(&answer)
                    .map_err(|e| format!("ingest answer is not JSON ({e}): {answer}"))?;
                if v["accepted"] != events as u64 || v["rejected"] != serde_json::json!([]) {
                    return Err(format!("{events} events sent, answer {answer}"));
                }
                return Ok(());
            }
            Ok((status, answer)) => report.failures.push(format!("{status}: {answer}")),
            Err(e) => report.failures.push(e),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "a batch was never acknowledged: {:?}",
        report.failures
    ))
}

#[derive(Default)]
struct ReaderReport {
    queries: u64,
    count_queries: u64,
    last_count: u64,
    slowest: Duration,
    failures: Vec<String>,
}

/// Queries until told to stop: every answer must be a 200 with a page, and counts of an
/// unfiltered query and of `method:ssh` never go down (nothing is purged).
fn reader(server: &Server, token: &str, shared: &Shared) -> ReaderReport {
    let mut report = ReaderReport::default();
    let mut last_ssh = 0;
    while !shared.stop_reader.load(SeqCst) && report.failures.len() < 10 {
        for (path, is_count) in [
            ("/api/v2/connectionlog?limit=25", false),
            ("/api/v2/connectionlog?q=method%3Assh&limit=1", true),
        ] {
            let started = Instant::now();
            let answer = server.try_get(path, Some(token));
            report.slowest = report.slowest.max(started.elapsed());
            let page = match answer {
                Ok((200, body)) => match serde_json::from_str::<Value>(&body) {
                    Ok(v) if v["connection_logs"].is_array() && v["count"].is_u64() => v,
                    _ => {
                        report.failures.push(format!("{path}: not a page: {body}"));
                        continue;
                    }
                },
                Ok((status, body)) => {
                    report.failures.push(format!("{path}: {status} {body}"));
                    continue;
                }
                Err(e) => {
                    report.failures.push(e);
                    continue;
                }
            };
            let count = page["count"].as_u64().unwrap();
            let rows = page["connection_logs"].as_array().unwrap().len() as u64;
            let (last, limit) = if is_count {
                report.count_queries += 1;
                (&mut last_ssh, 1)
            } else {
                report.queries += 1;
                (&mut report.last_count, 25)
            };
            if count < *last || rows != count.min(limit) {
                report.failures.push(format!(
                    "{path}: count {count} after {last}, {rows} rows on the page"
                ));
            }
            *last = count;
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    report
}

fn wait_for_quota(shared: &Shared, phase: usize) {
    let started = Instant::now();
    eprintln!("phase {phase}: waiting for {SWAP_AFTER} events");
    while shared.acked_in_phase[phase].load(SeqCst) < SWAP_AFTER {
        assert!(
            !shared.writer_failed.load(SeqCst),
            "a writer failed in phase {phase}"
        );
        assert!(
            shared.writers_done.load(SeqCst) < WRITERS,
            "the writers ran out of events in phase {phase}"
        );
        assert!(
            started.elapsed() < PHASE_DEADLINE,
            "phase {phase}: only {} events acknowledged in {PHASE_DEADLINE:?}",
            shared.acked_in_phase[phase].load(SeqCst)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Swaps to `plugin` between phase `phase - 1` and `phase + 1`; the swap report.
fn swap(server: &Server, token: &str, shared: &Shared, plugin: &str, phase: u64) -> Value {
    assert_eq!(shared.phase.swap(phase, SeqCst), phase - 1);
    let body = serde_json::json!({ "plugin": plugin }).to_string();
    let (status, answer) = server.post(SWAP, Some(token), &body);
    shared.phase.store(phase + 1, SeqCst);
    assert_eq!(status, 200, "swap to {plugin}: {answer}");
    serde_json::from_str(&answer).unwrap()
}

/// Every row an owner sees, a page at a time.
fn all_rows(server: &Server, token: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    loop {
        let (status, body) = server.get(
            &format!("/api/v2/connectionlog?limit=2000&offset={}", rows.len()),
            Some(token),
        );
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        let got = page["connection_logs"].as_array().unwrap();
        rows.extend(got.iter().cloned());
        if got.len() < 2000 {
            return rows;
        }
    }
}

fn count(server: &Server, token: &str, q: &str) -> u64 {
    let (status, body) = server.get(
        &format!("/api/v2/connectionlog?limit=1&q={}", q.replace(':', "%3A")),
        Some(token),
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["count"]
        .as_u64()
        .unwrap()
}

/// The IP as the reference plugin stores and the API shows it (`localhost` is 127.0.0.1).
fn canonical(raw: &str) -> IpAddr {
    if raw == "localhost" {
        return IpAddr::from([127, 0, 0, 1]);
    }
    raw.parse()
        .unwrap_or_else(|_| panic!("the simulator sent {raw:?}"))
}

/// What the privacy plugin keeps by default: the /24 or the /48.
fn truncated(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], 0, 0, 0, 0, 0])
        }
    }
}

/// Rows checked against the phase of their defining event.
#[derive(Debug, Default)]
struct RowCheck {
    privacy: u64,
    reference: u64,
    unattributed: u64,
}

/// (1) every acknowledged event is in a row, the rows are the simulator's count, and (3)
/// rows defined by an event the privacy plugin stored hold its truncation, never the raw IP
/// or user agent, while rows defined under the reference plugin hold the raw values.
fn check_rows(
    server: &Server,
    scenario: &Scenario,
    first: &HashMap<Uuid, FirstDelivery>,
    acked: &HashSet<Uuid>,
) -> RowCheck {
    let token = scenario.admin_token.as_str();
    let rows = all_rows(server, token);
    let expected = scenario.summary.expected_rows();
    assert_eq!(rows.len() as u64, expected, "rows as the simulator expects");
    assert_eq!(count(server, token, ""), expected);
    assert_eq!(
        count(server, token, "status:ongoing"),
        scenario.summary.expected_ongoing()
    );

    let by_id: HashMap<&str, &Value> = rows
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    assert_eq!(by_id.len(), rows.len(), "row IDs are unique");
    let by_session: HashMap<&str, &Value> = rows
        .iter()
        .filter_map(|r| Some((r["ssh_info"]["connection_id"].as_str()?, r)))
        .collect();

    let events: HashMap<Uuid, &ConnectionEvent> =
        scenario.events.iter().map(|e| (e.id, e)).collect();
    assert_eq!(acked.len(), events.len(), "every event was acknowledged");
    // The sessions that have a row, by the row's defining event: an agent's port forward
    // shows no `ssh_info`, so its row is known only this way.
    let sessions_with_rows: HashSet<Uuid> = rows
        .iter()
        .filter_map(|r| events[&r["id"].as_str().unwrap().parse::<Uuid>().unwrap()].connection_id)
        .collect();
    for id in acked {
        let event = events[id];
        let key = id.to_string();
        match (event.connection_id, event.status) {
            (None, _) | (Some(_), ConnectionStatus::Connected) => {
                assert!(by_id.contains_key(key.as_str()), "acknowledged {key} lost");
            }
            (Some(session), ConnectionStatus::Disconnected)
                if !event.connection_method.is_terminal() =>
            {
                assert!(
                    sessions_with_rows.contains(&session),
                    "the port forward of acknowledged {key} is lost"
                );
            }
            (Some(session), ConnectionStatus::Disconnected) => {
                let row = by_session
                    .get(session.to_string().as_str())
                    .unwrap_or_else(|| panic!("the session of acknowledged {key} is lost"));
                assert!(
                    row["ssh_info"]["disconnect_time"].is_string(),
                    "acknowledged disconnect {key} is not in its row: {row}"
                );
            }
        }
    }

    let mut check = RowCheck::default();
    for row in &rows {
        let id: Uuid = row["id"].as_str().unwrap().parse().unwrap();
        let event = events[&id];
        let raw = canonical(event.ip.as_deref().unwrap());
        let stored: Option<IpAddr> = row["ip"].as_str().map(|ip| ip.parse().unwrap());
        let user_agent = row["web_info"]["user_agent"].as_str();
        match first[&id].phase() {
            Some(2) => {
                check.privacy += 1;
                assert_ne!(
                    stored,
                    Some(raw),
                    "privacy-phase row keeps the raw IP: {row}"
                );
                assert_eq!(stored, Some(truncated(raw)), "{row}");
                if let (Some(ua), Some(sent)) = (user_agent, event.user_agent.as_deref()) {
                    assert!(
                        ua != sent && !ua.contains('/'),
                        "raw user agent kept: {row}"
                    );
                }
            }
            Some(_) => {
                check.reference += 1;
                assert_eq!(stored, Some(raw), "reference-phase row: {row}");
                if let Some(ua) = user_agent {
                    // An agent's port forward has no user agent: `""` in `web_info`.
                    assert_eq!(ua, event.user_agent.as_deref().unwrap_or(""), "{row}");
                }
            }
            None => check.unattributed += 1,
        }
    }
    check
}

#[test]
fn swapping_plugins_under_load_loses_nothing_and_privacy_rows_stay_truncated() {
    let started = Instant::now();
    let data = tempfile::tempdir().unwrap();
    let scenario = scenario(data.path());
    let token = scenario.admin_token.as_str();
    let server = Server::start(data.path());

    let mut shares: Vec<Vec<ConnectionEvent>> = vec![Vec::new(); WRITERS];
    for event in &scenario.events {
        let key = event.connection_id.unwrap_or(event.id);
        shares[(key.as_u128() % WRITERS as u128) as usize].push(event.clone());
    }
    let shared = Shared {
        phase: AtomicU64::new(0),
        acked_in_phase: Default::default(),
        sent_in_phase: Default::default(),
        writers_done: AtomicUsize::new(0),
        stop_reader: AtomicBool::new(false),
        writer_failed: AtomicBool::new(false),
    };
    let (writers, reader_report, swaps) = std::thread::scope(|s| {
        let writers: Vec<_> = shares
            .iter()
            .map(|share| {
                s.spawn(|| {
                    let report = writer(&server, token, &shared, share);
                    shared.writers_done.fetch_add(1, SeqCst);
                    report
                })
            })
            .collect();
        let reader = s.spawn(|| reader(&server, token, &shared));
        // Should the main thread fail, the other threads stop rather than hang the test.
        let _release = Release(&shared);

        wait_for_quota(&shared, 0);
        let to_privacy = swap(&server, token, &shared, "privacy", 1);
        wait_for_quota(&shared, 2);
        let to_reference = swap(&server, token, &shared, "reference", 3);

        let writers: Vec<WriterReport> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        shared.stop_reader.store(true, SeqCst);
        (writers, reader.join().unwrap(), [to_privacy, to_reference])
    });
    let ingest_done = started.elapsed();

    let mut first = HashMap::new();
    let mut acked = HashSet::new();
    let (mut requests, mut resends, mut failures) = (0, 0, Vec::new());
    for w in writers {
        assert_eq!(w.gave_up, None, "a writer gave up");
        first.extend(w.first);
        acked.extend(w.acked);
        requests += w.requests;
        resends += w.resends;
        failures.extend(w.failures);
    }
    // (2) every query answered, and no ingest request refused or dropped.
    assert_eq!(reader_report.failures, Vec::<String>::new());
    assert!(reader_report.queries > 0 && reader_report.count_queries > 0);
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "ingest requests not acknowledged"
    );

    assert_eq!(
        swaps[0]["current"]["name"], "connlog-privacy",
        "{}",
        swaps[0]
    );
    assert_eq!(
        swaps[1]["current"]["name"], "connlog-reference",
        "{}",
        swaps[1]
    );
    assert_eq!(
        server.metric("connlog_plugin_swaps_total"),
        "connlog_plugin_swaps_total 2"
    );
    assert_eq!(
        server.metric("connlog_plugin_swap_failures_total"),
        "connlog_plugin_swap_failures_total 0"
    );

    let mut per_phase = [0u64; 5];
    let mut unattributed = 0;
    for delivery in first.values() {
        match delivery.phase() {
            Some(p) => per_phase[p as usize] += 1,
            None => unattributed += 1,
        }
    }
    let live = check_rows(&server, &scenario, &first, &acked);
    assert!(
        live.privacy >= 1000 && live.reference >= 1000,
        "too few rows attributed to a phase: {live:?}"
    );

    // A restart replays the journal: the privacy plugin's rows are still truncated.
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    let server = Server::start(data.path());
    let restarted = check_rows(&server, &scenario, &first, &acked);
    assert_eq!(
        (restarted.privacy, restarted.reference),
        (live.privacy, live.reference)
    );

    let elapsed_ms = |s: &Value| s["elapsed_ms"].as_f64().unwrap();
    eprintln!(
        "swap under load: {} events ({} distinct IDs) in {requests} requests ({resends} resends), all acknowledged {:.1} s after the start; \
         first deliveries per phase {per_phase:?}, {unattributed} across a swap; \
         swap to privacy {:.0} ms ({} replayed, {} caught up), back to reference {:.0} ms ({} replayed, {} caught up); \
         {} queries and {} count queries answered (slowest {:?}); rows checked {live:?}; total {:.1} s",
        scenario.events.len(),
        first.len(),
        ingest_done.as_secs_f64(),
        elapsed_ms(&swaps[0]),
        swaps[0]["events_replayed"],
        swaps[0]["events_caught_up"],
        elapsed_ms(&swaps[1]),
        swaps[1]["events_replayed"],
        swaps[1]["events_caught_up"],
        reader_report.queries,
        reader_report.count_queries,
        reader_report.slowest,
        started.elapsed().as_secs_f64(),
    );
}
