//! Replicas on PostgreSQL, through the real binary: two `connlog serve --store …` on one
//! private cluster. Ingest on either is durable in PostgreSQL before it is acknowledged
//! and visible on the other within a second (the live feed included); a replica killed
//! under load loses nothing it acknowledged while the other keeps serving; a purge on one
//! removes the rows everywhere (by the cutoff the database records, whatever each replica's
//! setting) and the events from the database; every replica applies one retention; a
//! replica starts from what `connlog migrate` moved; a new replica starts from the snapshot
//! another shared, and a purge leaves no shared snapshot holding its rows.

mod support;

use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::postgres::PrivateCluster;
use support::server::Server;
use support::*;

/// The spec's bound on how long an acknowledged event takes to reach every replica.
const VISIBLE_WITHIN: Duration = Duration::from_secs(1);

/// Event `n` of batch `batch`: a workspace-app open at `time`, with an id of its own.
fn web_event_id(batch: u32, n: u32) -> String {
    format!("{batch:08x}-0000-4000-8000-{n:012x}")
}

fn web_events(batch: u32, count: u32, time: &str) -> String {
    (0..count)
        .map(|n| Event::web(&web_event_id(batch, n), time, "workspace_app").line())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Two data directories: the first with a directory file and an owner token, the second
/// empty (it gets the directory shared by the first replica to start).
fn replica_dirs() -> (tempfile::TempDir, tempfile::TempDir, String) {
    let a = data_dir();
    let admin = token(a.path(), "admin");
    (a, tempfile::tempdir().unwrap(), admin)
}

fn replica(data: &Path, url: &str, serve_args: &[&str]) -> Server {
    let mut args = vec!["--store", url];
    args.extend_from_slice(serve_args);
    Server::start_args(data, &[], &args)
}

fn ingest(server: &Server, admin: &str, body: &str) -> (u16, String) {
    server.post("/api/v2/connectionlog/ingest", Some(admin), body)
}

fn count(server: &Server, admin: &str, q: &str) -> u64 {
    let (status, body) = server.get(&format!("/api/v2/connectionlog?limit=1&q={q}"), Some(admin));
    assert_eq!(status, 200, "{body}");
    body_json(&body)["count"].as_u64().unwrap()
}

/// Waits until `server` counts `want` rows for `q`; returns how long that took.
fn until_counted(server: &Server, admin: &str, q: &str, want: u64, within: Duration) -> Duration {
    let got = Cell::new(None);
    eventually(
        within,
        || {
            got.set(Some(count(server, admin, q)));
            got.get() == Some(want)
        },
        || {
            format!(
                "{} counts {:?} rows for {q:?}, not {want}",
                server.base,
                got.get()
            )
        },
    )
}

#[test]
fn events_acknowledged_by_one_replica_are_on_the_other_within_a_second() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("shared");
    let (a_dir, b_dir, admin) = replica_dirs();
    let a = replica(a_dir.path(), &url, &[]);
    let b = replica(b_dir.path(), &url, &[]);
    let time = "2026-11-20T10:00:00Z";

    let (status, body) = ingest(&a, &admin, &web_events(1, 40, time));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        cluster.connlog_events("shared").unwrap(),
        40,
        "durable before the answer"
    );
    let took = until_counted(&b, &admin, "", 40, VISIBLE_WITHIN);
    eprintln!("40 events from replica A on replica B after {took:?}");

    let (status, body) = ingest(&b, &admin, &web_events(2, 25, time));
    assert_eq!(status, 200, "{body}");
    until_counted(&a, &admin, "", 65, VISIBLE_WITHIN);
    assert_eq!(count(&b, &admin, ""), 65);

    // An event both replicas are sent is stored once.
    let (status, _) = ingest(&b, &admin, &web_events(1, 1, time));
    assert_eq!(status, 200);
    assert_eq!(cluster.connlog_events("shared").unwrap(), 65);

    // A session whose connect reaches one replica and whose disconnect reaches the other
    // is one completed row on both.
    let connect = Event::agent(CONNECT, "2026-11-20T11:00:00Z", "ssh", SESSION).line();
    let disconnect = Event::agent(DISCONNECT, "2026-11-20T11:30:00Z", "ssh", SESSION)
        .disconnect(Some(0), "client closed")
        .line();
    assert_eq!(ingest(&a, &admin, &connect).0, 200);
    assert_eq!(ingest(&b, &admin, &disconnect).0, 200);
    for server in [&a, &b] {
        until_counted(
            server,
            &admin,
            "method:ssh+status:completed",
            1,
            VISIBLE_WITHIN,
        );
        assert_eq!(count(server, &admin, "method:ssh"), 1);
    }
}

#[test]
fn a_watcher_on_one_replica_sees_events_ingested_on_the_other() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("shared");
    let (a_dir, b_dir, admin) = replica_dirs();
    let a = replica(a_dir.path(), &url, &[]);
    let b = replica(b_dir.path(), &url, &["--watch-heartbeat", "200ms"]);

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(format!(
            "{}/api/v2/connectionlog/watch?format=ndjson",
            b.base
        ))
        .header("Coder-Session-Token", &admin)
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut feed = BufReader::new(response.body_mut().as_reader());

    let sent = Instant::now();
    assert_eq!(
        ingest(&a, &admin, &web_events(7, 3, "2026-11-20T10:00:00Z")).0,
        200
    );
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let mut line = String::new();
        assert!(feed.read_line(&mut line).unwrap() > 0, "the feed ended");
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "seen {seen:?} so far"
        );
        let message = body_json(&line);
        if let Some(id) = message["connection_log"]["id"].as_str() {
            seen.push(id.to_owned());
        }
    }
    seen.sort();
    let want: Vec<String> = (0..3).map(|n| web_event_id(7, n)).collect();
    assert_eq!(seen, want);
}

#[test]
fn a_replica_killed_under_load_loses_nothing_it_acknowledged_and_the_other_keeps_serving() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("shared");
    let (a_dir, b_dir, admin) = replica_dirs();
    let a = replica(a_dir.path(), &url, &[]);
    let b = replica(b_dir.path(), &url, &[]);

    // Four clients send batches of 50 to A until it dies; each counts what was
    // acknowledged.
    let acknowledged = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let base = a.base.clone();
    let clients: Vec<_> = (0..4u32)
        .map(|client| {
            let (acknowledged, stop, base, admin) = (
                acknowledged.clone(),
                stop.clone(),
                base.clone(),
                admin.clone(),
            );
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut batch = client * 10_000;
                while !stop.load(Ordering::SeqCst) {
                    let body = web_events(batch, 50, "2026-11-20T10:00:00Z");
                    let answer = agent
                        .post(format!("{base}/api/v2/connectionlog/ingest"))
                        .header("Coder-Session-Token", &admin)
                        .send(body.as_str());
                    match answer {
                        Ok(r) if r.status().as_u16() == 200 => *acknowledged.lock().unwrap() += 50,
                        _ => break,
                    }
                    batch += 1;
                }
            })
        })
        .collect();
    while *acknowledged.lock().unwrap() < 2_000 {
        std::thread::sleep(Duration::from_millis(20));
    }
    a.kill();
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    let acknowledged = *acknowledged.lock().unwrap();

    // Every acknowledged event is in the database (some sent just before the kill may be
    // too, unacknowledged), and B serves all of them.
    let stored = cluster.connlog_events("shared").unwrap() as u64;
    assert!(
        stored >= acknowledged,
        "{stored} stored < {acknowledged} acknowledged"
    );
    until_counted(&b, &admin, "", stored, Duration::from_secs(5));
    let (status, body) = ingest(&b, &admin, &web_events(99_999, 10, "2026-11-20T10:00:00Z"));
    assert_eq!(status, 200, "{body}");

    // A comes back with its copy and catches up with everything.
    let a = replica(a_dir.path(), &url, &[]);
    assert_eq!(count(&a, &admin, ""), stored + 10);
}

#[test]
fn a_purge_on_one_replica_removes_the_rows_everywhere_and_the_events_from_the_database() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("shared");
    let (a_dir, b_dir, admin) = replica_dirs();
    let retention = ["--connection-logs-retention", "30d"];
    let start = |dir: &Path| {
        let mut args = vec!["--store", url.as_str()];
        args.extend_from_slice(&retention);
        Server::start_args(dir, &[], &args)
    };
    let a = start(a_dir.path());
    let b = start(b_dir.path());

    // 30 rows from a year ago, 20 from now: the old ones are past the retention.
    let old = "2025-11-20T10:00:00Z";
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(ingest(&a, &admin, &web_events(1, 30, old)).0, 200);
    assert_eq!(ingest(&b, &admin, &web_events(2, 20, &now)).0, 200);
    until_counted(&a, &admin, "", 50, VISIBLE_WITHIN);
    until_counted(&b, &admin, "", 50, VISIBLE_WITHIN);

    let purge = connlog(a_dir.path(), &["purge"], None);
    assert_eq!(purge.status.code(), Some(0), "{}", stderr(&purge));
    assert_eq!(json(&purge)["purged"], 30);
    assert_eq!(cluster.connlog_events("shared").unwrap(), 20);
    until_counted(&b, &admin, "", 20, VISIBLE_WITHIN);
    assert_eq!(count(&a, &admin, ""), 20);

    // A purge on B, with nothing left to purge, deletes nothing more, and rows stored
    // since are untouched.
    assert_eq!(ingest(&b, &admin, &web_events(3, 5, &now)).0, 200);
    let purge = connlog(b_dir.path(), &["purge"], None);
    assert_eq!(purge.status.code(), Some(0), "{}", stderr(&purge));
    assert_eq!(cluster.connlog_events("shared").unwrap(), 25);
    until_counted(&a, &admin, "", 25, VISIBLE_WITHIN);
}

/// A counter of `server`'s `/metrics`.
fn counter(server: &Server, name: &str) -> u64 {
    let line = server.metric(name);
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Purges `server` has run (on its schedule, or following another replica's).
fn purges_run(server: &Server) -> u64 {
    counter(server, "connlog_purges_total")
}

#[test]
fn a_replica_catching_up_with_a_purge_of_many_rows_applies_it_in_slices() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("shared");
    let (a_dir, b_dir, admin) = replica_dirs();
    let a = replica(a_dir.path(), &url, &[]);
    let b = replica(b_dir.path(), &url, &[]);
    // 5,000 rows from a year ago, a thousand a day, and 20 from now.
    for day in 0..5 {
        let old = format!("2025-11-0{}T10:00:00Z", day + 1);
        assert_eq!(ingest(&a, &admin, &web_events(day, 1_000, &old)).0, 200);
    }
    let now = time::OffsetDateTime::now_utc();
    let now_text = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(ingest(&a, &admin, &web_events(9, 20, &now_text)).0, 200);
    until_counted(&b, &admin, "", 5_020, VISIBLE_WITHIN);
    let before = [purges_run(&a), purges_run(&b)];

    // A purge of all 5,000 by a replica that stopped right after it, committed and
    // notified in one transaction as `PgStore::forget` does: whatever slices it ran, both
    // replicas read one cutoff covering them all.
    let cutoff = (now - time::Duration::days(30)).unix_timestamp_nanos() as i64;
    let mut client = cluster.client("shared");
    let mut tx = client.transaction().unwrap();
    let deleted = tx
        .execute("DELETE FROM connlog.events WHERE time_ns < $1", &[&cutoff])
        .unwrap();
    assert_eq!(deleted, 5_000);
    tx.execute(
        "UPDATE connlog.meta SET value = $1::bigint::text WHERE key = 'purge_cutoff'",
        &[&cutoff],
    )
    .unwrap();
    tx.execute(
        "UPDATE connlog.meta SET value = (value::bigint + 1)::text WHERE key = 'purges'",
        &[],
    )
    .unwrap();
    tx.execute("SELECT pg_notify('connlog_events', 'purge')", &[])
        .unwrap();
    tx.commit().unwrap();

    until_counted(&a, &admin, "", 20, VISIBLE_WITHIN);
    until_counted(&b, &admin, "", 20, VISIBLE_WITHIN);
    // Slices of 2,000 oldest rows, two days each, then the last hold: three purges, so that
    // requests waited for 2,000 rows at a time, never 5,000.
    eventually(
        VISIBLE_WITHIN,
        || [purges_run(&a), purges_run(&b)] == [before[0] + 3, before[1] + 3],
        || {
            format!(
                "purges run {:?}, before {before:?}",
                [purges_run(&a), purges_run(&b)]
            )
        },
    );
    assert_eq!(cluster.connlog_events("shared").unwrap(), 20);
}

#[test]
fn the_retention_schedule_runs_on_one_replica_at_a_time_and_moves_when_it_dies() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("shared");
    let (a_dir, b_dir, admin) = replica_dirs();
    let args = [
        "--connection-logs-retention",
        "30d",
        "--retention-interval",
        "100ms",
    ];
    let a = replica(a_dir.path(), &url, &args);
    let b = replica(b_dir.path(), &url, &args);
    assert_eq!(
        ingest(&b, &admin, &web_events(1, 30, "2025-11-20T10:00:00Z")).0,
        200
    );
    until_counted(&a, &admin, "", 0, Duration::from_secs(5));
    until_counted(&b, &admin, "", 0, Duration::from_secs(5));
    assert_eq!(cluster.connlog_events("shared").unwrap(), 0);
    // Every row purged: the replica that purged and the one that followed each bring their
    // plugin up again to give back what the rows left.
    for server in [&a, &b] {
        eventually(
            Duration::from_secs(10),
            || counter(server, "connlog_plugin_compactions_total") > 0,
            || format!("{}: no compaction after the purge", server.base),
        );
    }

    // One replica purges every 100 ms; the other only at start and on notices of purges
    // that deleted something (none from here on).
    eventually(
        Duration::from_secs(10),
        || purges_run(&a).max(purges_run(&b)) >= 5,
        || "no replica runs the schedule".into(),
    );
    let (leader, follower) = if purges_run(&a) > purges_run(&b) {
        (a, b)
    } else {
        (b, a)
    };
    let (led, followed) = (purges_run(&leader), purges_run(&follower));
    std::thread::sleep(Duration::from_millis(1_500));
    let (led, followed) = (purges_run(&leader) - led, purges_run(&follower) - followed);
    assert!(
        led >= 5 && followed == 0,
        "in 1.5 s the lead replica purged {led} times, the other {followed}"
    );

    // When the lead replica dies, the other takes the schedule over.
    leader.kill();
    let before = purges_run(&follower);
    eventually(
        Duration::from_secs(10),
        || purges_run(&follower) >= before + 10,
        || "the schedule did not move".into(),
    );
}

#[test]
fn a_one_off_purge_on_one_replica_removes_the_same_rows_on_replicas_that_keep_everything() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("shared");
    let (a_dir, b_dir, admin) = replica_dirs();
    let c_dir = tempfile::tempdir().unwrap();
    let a = replica(a_dir.path(), &url, &[]);
    let b = replica(b_dir.path(), &url, &[]);
    let c = replica(c_dir.path(), &url, &[]);
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(
        ingest(&a, &admin, &web_events(1, 30, "2025-11-20T10:00:00Z")).0,
        200
    );
    assert_eq!(ingest(&b, &admin, &web_events(2, 20, &now)).0, 200);
    until_counted(&b, &admin, "", 50, VISIBLE_WITHIN);
    until_counted(&c, &admin, "", 50, VISIBLE_WITHIN);
    assert!(b.stop().success());

    // No replica has a retention; A purges once with one of its own. C follows the cutoff
    // the database records on notice, not its own setting (which keeps everything), and B,
    // down meanwhile, catches up before it serves again.
    let purge = connlog(a_dir.path(), &["purge", "--retention", "30d"], None);
    assert_eq!(purge.status.code(), Some(0), "{}", stderr(&purge));
    assert_eq!(json(&purge)["purged"], 30);
    assert_eq!(cluster.connlog_events("shared").unwrap(), 20);
    until_counted(&c, &admin, "", 20, VISIBLE_WITHIN);
    let b = replica(b_dir.path(), &url, &[]);
    assert_eq!(count(&b, &admin, ""), 20);
    drop((a, b, c));
}

#[test]
fn every_replica_applies_the_same_retention_and_it_changes_only_while_none_runs() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("shared");
    let (a_dir, b_dir, _) = replica_dirs();
    let a = replica(a_dir.path(), &url, &["--connection-logs-retention", "30d"]);
    let serve = |data: &Path, retention: &str| {
        let args = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            url.as_str(),
            "--connection-logs-retention",
            retention,
        ];
        connlog(data, &args, None)
    };
    for other in ["90d", "0"] {
        let out = serve(b_dir.path(), other);
        assert_eq!(out.status.code(), Some(2), "{other}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!(
                "keep rows for 30d (0: forever), and this one was started with \
                 --connection-logs-retention {other}"
            )),
            "{other}: {}",
            stderr(&out)
        );
    }
    let b = replica(b_dir.path(), &url, &["--connection-logs-retention", "720h"]);
    drop(b);
    assert!(a.stop().success());

    // With no replica running, a replica started with another retention sets it.
    let b = replica(b_dir.path(), &url, &["--connection-logs-retention", "90d"]);
    let out = serve(a_dir.path(), "30d");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("keep rows for 90d"),
        "{}",
        stderr(&out)
    );
    drop(b);
}

#[test]
fn a_replica_starts_from_a_migrated_store_and_refuses_a_directory_of_its_own() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("shared");
    let seed = tempfile::tempdir().unwrap();
    let out = connlog(seed.path(), &["simulate", "--events", "1200"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let auditor =
        body_json(&std::fs::read_to_string(seed.path().join("tokens.json")).unwrap())["auditor"]
            .as_str()
            .unwrap()
            .to_owned();
    let rows = {
        let alone = Server::start(seed.path());
        count(&alone, &auditor, "")
    };

    // The seed's own directory holds a store: a replica refuses it.
    let refused = connlog(
        seed.path(),
        &["serve", "--listen", "127.0.0.1:0", "--store", &url],
        None,
    );
    assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("holds a store of its own")
            && stderr(&refused).contains("connlog migrate"),
        "{}",
        stderr(&refused)
    );

    let out = connlog(
        seed.path(),
        &[
            "migrate",
            "--from",
            &seed.path().display().to_string(),
            "--to",
            &url,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // No directory file: the replica serves the one migrated, the auditor's token included.
    let fresh = tempfile::tempdir().unwrap();
    let replica = replica(fresh.path(), &url, &[]);
    assert_eq!(count(&replica, &auditor, ""), rows);

    // Stopped, its copy takes no writes of its own: they would never reach the others.
    drop(replica);
    let alone = [
        vec!["ingest", "-"],
        vec!["serve", "--listen", "127.0.0.1:0"],
    ];
    for args in alone {
        let out = connlog(
            fresh.path(),
            &args,
            Some(&web_events(5, 1, "2026-11-20T10:00:00Z")),
        );
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is a replica's copy of the shared store"),
            "{args:?}: {}",
            stderr(&out)
        );
    }

    // Another database is another store: this replica's copy is not of it.
    let other = cluster.create_database("other");
    let refused = connlog(
        fresh.path(),
        &["serve", "--listen", "127.0.0.1:0", "--store", &other],
        None,
    );
    assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("is a copy of another shared store"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn tokens_made_or_revoked_on_one_replica_hold_on_every_replica() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("shared");
    let (a_dir, b_dir, admin) = replica_dirs();
    let a = replica(a_dir.path(), &url, &[]);
    let b = replica(b_dir.path(), &url, &[]);
    // B had no directory file: it serves the one A shared, owner token included.
    assert_eq!(count(&b, &admin, ""), 0);

    let page =
        |server: &Server, token: &str| server.get("/api/v2/connectionlog?limit=1", Some(token)).0;
    let until = |server: &Server, token: &str, status: u16| {
        eventually(
            VISIBLE_WITHIN,
            || page(server, token) == status,
            || format!("{} still does not answer {status}", server.base),
        );
    };
    // Made through A (its server runs the command), used on B.
    let auditor = token(a_dir.path(), "orgaudit");
    until(&b, &auditor, 200);
    // One made through each replica at once: both are kept.
    let (one, two) = std::thread::scope(|s| {
        let one = s.spawn(|| token(a_dir.path(), "member"));
        let two = s.spawn(|| token(b_dir.path(), "member"));
        (one.join().unwrap(), two.join().unwrap())
    });
    for token in [&one, &two] {
        until(&a, token, 200);
        until(&b, token, 200);
    }
    // Revoked through B, refused on A.
    let out = connlog(b_dir.path(), &["token", "revoke", &auditor], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    until(&a, &auditor, 401);
    assert_eq!(page(&b, &auditor), 401);
    assert_eq!(page(&a, &one), 200);
}

/// The snapshot shared for the plugin build every replica here runs: its position and rows.
fn shared_snapshot(cluster: &PrivateCluster, database: &str) -> Option<(i64, i64)> {
    cluster
        .client(database)
        .query_opt("SELECT mark, rows FROM connlog.snapshots", &[])
        .unwrap()
        .map(|row| (row.get(0), row.get(1)))
}

fn shared_seq_high(cluster: &PrivateCluster, database: &str) -> i64 {
    cluster
        .client(database)
        .query_one("SELECT max(seq) FROM connlog.events", &[])
        .unwrap()
        .get(0)
}

/// How the replica's plugin was brought up at start: from a snapshot, and how many events
/// it replayed.
fn bring_up(server: &Server) -> (bool, u64) {
    let value = |name: &str| {
        server
            .metric(name)
            .split(' ')
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    (
        value("connlog_bring_up_from_snapshot") == 1,
        value("connlog_bring_up_events_replayed"),
    )
}

#[test]
fn a_new_replica_starts_from_the_snapshot_another_replica_shared() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("shared");
    let (a_dir, b_dir, admin) = replica_dirs();
    let a = replica(a_dir.path(), &url, &[]);
    let b = replica(b_dir.path(), &url, &[]);
    let time = "2026-11-20T10:00:00Z";

    // Twelve batches, taken in turn by the two replicas: a clean stop writes a snapshot
    // once 10,000 events are not covered by one.
    for batch in 0..12 {
        let server = if batch % 2 == 0 { &a } else { &b };
        let (status, body) = ingest(server, &admin, &web_events(batch, 1_000, time));
        assert_eq!(status, 200, "{body}");
    }
    until_counted(&a, &admin, "", 12_000, VISIBLE_WITHIN);
    // The follower moves past A's own last append at its next look.
    std::thread::sleep(Duration::from_millis(600));
    assert!(a.stop().success());
    let high = shared_seq_high(&cluster, "shared");
    assert_eq!(
        shared_snapshot(&cluster, "shared"),
        Some((high, 12_000)),
        "A shares the snapshot of its clean stop, holding every shared event"
    );

    // B takes more; a new replica loads the shared snapshot and replays only those.
    let (status, body) = ingest(&b, &admin, &web_events(100, 500, time));
    assert_eq!(status, 200, "{body}");
    let c_dir = tempfile::tempdir().unwrap();
    let c = replica(c_dir.path(), &url, &[]);
    assert_eq!(bring_up(&c), (true, 500));
    assert_eq!(count(&c, &admin, ""), 12_500);
    let (status, body) = ingest(&c, &admin, &web_events(101, 10, time));
    assert_eq!(status, 200, "{body}");
    until_counted(&b, &admin, "", 12_510, VISIBLE_WITHIN);
    assert_eq!(count(&c, &admin, ""), 12_510);
    drop(c);

    // A damaged shared snapshot is refused: the next new replica replays everything.
    cluster
        .client("shared")
        .execute(
            "UPDATE connlog.snapshot_chunks SET bytes = set_byte(bytes, 9, 255 - get_byte(bytes, 9)) \
             WHERE n = 0",
            &[],
        )
        .unwrap();
    let d_dir = tempfile::tempdir().unwrap();
    let d = replica(d_dir.path(), &url, &[]);
    assert_eq!(bring_up(&d), (false, 12_510));
    assert_eq!(count(&d, &admin, ""), 12_510);
    drop(d);

    // B's clean stop shares a newer snapshot in its place.
    assert!(b.stop().success());
    assert_eq!(
        shared_snapshot(&cluster, "shared"),
        Some((shared_seq_high(&cluster, "shared"), 12_510))
    );
}

#[test]
fn a_purge_deletes_the_shared_snapshot_holding_its_rows_and_a_later_one_goes_without_them() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("shared");
    let (a_dir, b_dir, admin) = replica_dirs();
    let args = [
        "--store",
        url.as_str(),
        "--connection-logs-retention",
        "30d",
    ];
    let a = Server::start_args(a_dir.path(), &[], &args);
    let b = Server::start_args(b_dir.path(), &[], &args);

    // 10,000 rows from a year ago (past the retention) and 2,000 from now.
    let old = "2025-11-20T10:00:00Z";
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for batch in 0..10 {
        assert_eq!(ingest(&a, &admin, &web_events(batch, 1_000, old)).0, 200);
    }
    for batch in 10..12 {
        assert_eq!(ingest(&b, &admin, &web_events(batch, 1_000, &now)).0, 200);
    }
    until_counted(&a, &admin, "", 12_000, VISIBLE_WITHIN);
    std::thread::sleep(Duration::from_millis(600));
    assert!(a.stop().success());
    assert_eq!(
        shared_snapshot(&cluster, "shared").map(|(_, rows)| rows),
        Some(12_000)
    );

    // B purges and deletes the events from the database: the shared snapshot, which holds
    // the purged rows, is stale at once and deleted on the purge's notice.
    let purge = connlog(b_dir.path(), &["purge"], None);
    assert_eq!(purge.status.code(), Some(0), "{}", stderr(&purge));
    assert_eq!(json(&purge)["purged"], 10_000);
    assert_eq!(cluster.connlog_events("shared").unwrap(), 2_000);
    eventually(
        VISIBLE_WITHIN,
        || shared_snapshot(&cluster, "shared").is_none(),
        || "the stale shared snapshot is still stored".into(),
    );

    // A comes back, purges the same rows on its notice-less catch-up, and shares a
    // snapshot without them at its clean stop; a new replica starts from that one.
    let a = Server::start_args(a_dir.path(), &[], &args);
    until_counted(&a, &admin, "", 2_000, VISIBLE_WITHIN);
    std::thread::sleep(Duration::from_millis(600));
    assert!(a.stop().success());
    assert_eq!(
        shared_snapshot(&cluster, "shared"),
        Some((shared_seq_high(&cluster, "shared"), 2_000))
    );
    let c_dir = tempfile::tempdir().unwrap();
    let c = Server::start_args(c_dir.path(), &[], &args);
    assert_eq!(bring_up(&c), (true, 0));
    assert_eq!(count(&c, &admin, ""), 2_000);
    drop(b);
}
