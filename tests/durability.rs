//! Durability: a restart answers every query exactly as before (from a snapshot, from a
//! snapshot plus its tail, or by full replay); a snapshot is used only when it is this
//! plugin's and intact; retention removes purged data from the disk for good; damaged
//! stores are refused with a clear error.

mod service_support;
mod support;

use std::time::Duration;

use connlog::plugin::PluginSource;
use connlog::retention::RetentionScheduler;
use connlog::service::{self, ConnLog, RestoreSource, SnapshotPolicy, store_path};
use rusqlite::Connection;
use service_support::*;

fn assert_full_replay(service: &ConnLog, reason_contains: &str) {
    match &service.last_restore().source {
        RestoreSource::FullReplay { reason } => assert!(
            reason.contains(reason_contains),
            "full replay for an unexpected reason: {reason}"
        ),
        other => panic!("expected a full replay, got {other:?}"),
    }
}

fn assert_snapshot(service: &ConnLog, tail: u64) {
    assert!(
        matches!(
            service.last_restore().source,
            RestoreSource::Snapshot { .. }
        ),
        "expected a snapshot start, got {:?}",
        service.last_restore().source
    );
    assert_eq!(
        service.last_restore().events_replayed,
        tail,
        "tail replayed"
    );
}

/// A store with 1,200 rows (web rows, completed and ongoing sessions split across batches).
fn populated(data: &std::path::Path) -> Vec<String> {
    let mut service = open(data, PluginSource::Embedded);
    ingest_all(&mut service, mixed_events(0, 1200, "row"), 97);
    let before = answers(&mut service);
    assert_eq!(row_count(&mut service), 1200);
    drop(service);
    before
}

#[test]
fn a_restart_by_full_replay_answers_every_query_as_before() {
    let data = tempfile::tempdir().unwrap();
    let before = populated(data.path());
    let mut service = open(data.path(), PluginSource::Embedded);
    assert_full_replay(&service, "no snapshot");
    assert_eq!(answers(&mut service), before);
}

#[test]
fn a_restart_from_a_snapshot_and_its_tail_answers_every_query_as_before() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded);
    ingest_all(&mut service, mixed_events(0, 800, "row"), 97);
    let info = service.save_snapshot().unwrap();
    assert!(info.bytes > 0 && info.rows == 800, "{info:?}");
    // A tail after the snapshot, including disconnects of sessions the snapshot holds.
    let mut tail = mixed_events(800, 400, "row");
    tail.extend(
        (0..800)
            .filter(|n| n % 4 == 1)
            .map(|n| session_events(n, T0 + (n as i64) * 60_000_000_000, "row")[1].clone()),
    );
    let tail_len = tail.len() as u64;
    ingest_all(&mut service, tail, 50);
    let before = answers(&mut service);
    drop(service);

    let mut service = open(data.path(), PluginSource::Embedded);
    assert_snapshot(&service, tail_len);
    assert_eq!(answers(&mut service), before);

    // The same store by full replay answers the same, too.
    let mut conn = Connection::open(store_path(data.path())).unwrap();
    conn.execute("DELETE FROM meta WHERE key LIKE 'snapshot.%'", [])
        .unwrap();
    drop(conn.transaction().unwrap());
    drop(service);
    let mut service = open(data.path(), PluginSource::Embedded);
    assert_full_replay(&service, "no snapshot");
    assert_eq!(answers(&mut service), before);
}

#[test]
fn a_clean_shutdown_saves_a_snapshot_and_the_next_start_loads_it() {
    let data = tempfile::tempdir().unwrap();
    let before = populated(data.path());
    let mut service = open(data.path(), PluginSource::Embedded);
    service.set_snapshot_policy(SnapshotPolicy {
        every_events: 0,
        on_close_min_events: 1,
    });
    service.close().unwrap();

    let mut service = open(data.path(), PluginSource::Embedded);
    assert_snapshot(&service, 0);
    assert_eq!(service.last_restore().rows, 1200);
    assert_eq!(answers(&mut service), before);
}

#[test]
fn a_snapshot_is_written_every_n_events() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded);
    service.set_snapshot_policy(SnapshotPolicy {
        every_events: 500,
        on_close_min_events: 0,
    });
    ingest_all(&mut service, mixed_events(0, 1200, "row"), 100);
    assert!(
        service.counters().snapshots_saved >= 2,
        "{:?}",
        service.counters()
    );
    assert!(service.unsnapshotted_events() < 500);
    let uncovered = service.unsnapshotted_events();
    let before = answers(&mut service);
    drop(service);
    let mut service = open(data.path(), PluginSource::Embedded);
    assert_snapshot(&service, uncovered);
    assert_eq!(answers(&mut service), before);
}

#[test]
fn a_snapshot_of_another_plugin_build_is_never_loaded() {
    let data = tempfile::tempdir().unwrap();
    let before = populated(data.path());
    let mut service = open(data.path(), PluginSource::Embedded);
    service.save_snapshot().unwrap();
    drop(service);

    // The fault-injection build is another component: another digest.
    let mut service = open(data.path(), faulty_plugin());
    assert_full_replay(&service, "another plugin build");
    assert_eq!(
        service.counters().snapshots_refused,
        0,
        "not damage, just not ours"
    );
    assert_eq!(answers(&mut service), before);
}

/// Saves a snapshot, lets `damage` change the store, and checks the next start refuses the
/// snapshot, replays instead, and answers as before.
fn damaged_snapshot_falls_back(damage: impl FnOnce(&Connection), reason: &str) {
    let data = tempfile::tempdir().unwrap();
    let before = populated(data.path());
    let mut service = open(data.path(), PluginSource::Embedded);
    let info = service.save_snapshot().unwrap();
    assert!(info.chunks >= 1);
    drop(service);

    let conn = Connection::open(store_path(data.path())).unwrap();
    damage(&conn);
    drop(conn);

    let mut service = open(data.path(), PluginSource::Embedded);
    assert_full_replay(&service, reason);
    assert_eq!(service.counters().snapshots_refused, 1);
    assert_eq!(answers(&mut service), before);
}

fn flip_snapshot_byte(conn: &Connection) -> Vec<u8> {
    let mut bytes: Vec<u8> = conn
        .query_row(
            "SELECT bytes FROM snapshot_chunks ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    conn.execute(
        "UPDATE snapshot_chunks SET bytes = ?1 WHERE seq = (SELECT min(seq) FROM snapshot_chunks)",
        [&bytes],
    )
    .unwrap();
    bytes
}

#[test]
fn a_damaged_snapshot_is_refused_and_the_journal_replayed() {
    damaged_snapshot_falls_back(
        |conn| {
            flip_snapshot_byte(conn);
        },
        "snapshot",
    );
}

#[test]
fn a_damaged_snapshot_with_a_matching_record_is_still_refused_by_the_plugin() {
    // Damage that also rewrote the host's record: the plugin's own checksum still catches it.
    damaged_snapshot_falls_back(
        |conn| {
            let bytes = flip_snapshot_byte(conn);
            use sha2::Digest;
            let digest = hex::encode(sha2::Sha256::digest(&bytes));
            conn.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'snapshot.sha256'",
                [digest],
            )
            .unwrap();
        },
        "loading the snapshot failed",
    );
}

#[test]
fn a_truncated_snapshot_is_refused() {
    damaged_snapshot_falls_back(
        |conn| {
            conn.execute(
                "UPDATE snapshot_chunks SET bytes = substr(bytes, 1, length(bytes) / 2) \
                 WHERE seq = (SELECT max(seq) FROM snapshot_chunks)",
                [],
            )
            .unwrap();
        },
        "snapshot",
    );
}

#[test]
fn a_snapshot_missing_a_chunk_is_refused() {
    damaged_snapshot_falls_back(
        |conn| {
            conn.execute(
                "DELETE FROM snapshot_chunks WHERE seq = (SELECT max(seq) FROM snapshot_chunks)",
                [],
            )
            .unwrap();
        },
        "snapshot",
    );
}

#[test]
fn a_snapshot_ahead_of_the_journal_is_refused() {
    damaged_snapshot_falls_back(
        |conn| {
            conn.execute(
                "UPDATE meta SET value = '99999999' WHERE key = 'snapshot.last_seq'",
                [],
            )
            .unwrap();
        },
        "journal does not hold it",
    );
}

#[test]
fn the_journal_hands_over_a_snapshot_only_if_it_matches_its_record() {
    use connlog::store::Journal;
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded);
    ingest_all(&mut service, mixed_events(0, 100, "row"), 50);
    let info = service.save_snapshot().unwrap();
    drop(service);
    let mut journal = Journal::open(&store_path(data.path())).unwrap();
    let read_all = |journal: &mut Journal| -> Result<u64, String> {
        let mut n = 0;
        while let Some(chunk) = journal.read_snapshot_chunk().map_err(|e| e.to_string())? {
            n += chunk.len() as u64;
        }
        Ok(n)
    };
    journal.start_snapshot_read(&info);
    assert_eq!(read_all(&mut journal), Ok(info.bytes));
    assert!(journal.snapshot_read_verified());

    let mut wrong = info.clone();
    wrong.sha256 = "0".repeat(64);
    journal.start_snapshot_read(&wrong);
    let error = read_all(&mut journal).unwrap_err();
    assert!(error.contains("does not match its record"), "{error}");
    assert!(!journal.snapshot_read_verified());

    let mut longer = info.clone();
    longer.chunks += 1;
    journal.start_snapshot_read(&longer);
    assert!(read_all(&mut journal).unwrap_err().contains("ends after"));
}

// ---- retention ------------------------------------------------------------------------

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every byte of the store on disk: the database file and whatever WAL is left.
fn disk_bytes(data: &std::path::Path) -> Vec<u8> {
    let db = store_path(data);
    let mut bytes = std::fs::read(&db).unwrap();
    for suffix in ["-wal", "-journal"] {
        if let Ok(more) = std::fs::read(format!("{}{suffix}", db.display())) {
            bytes.extend(more);
        }
    }
    bytes
}

#[test]
fn purged_rows_are_gone_from_the_disk_and_never_come_back() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path(), PluginSource::Embedded);
    cfg.retention = Duration::from_secs(24 * 3600);
    let now = T0 + 1000 * HOUR;
    let mut service = open_with(cfg);

    // Old rows (to purge) and recent rows (to keep), with unique strings in each.
    let mut old = Vec::new();
    for n in 0..300u64 {
        let time = now - 200 * HOUR + (n as i64) * 1_000_000_000;
        if n % 2 == 0 {
            old.push(web_event(n, time, "purgeme"));
        } else {
            old.extend(session_events(n, time, "purgeme"));
        }
    }
    let mut recent = Vec::new();
    for n in 1000..1100u64 {
        let time = now - HOUR + (n as i64) * 1_000_000_000;
        if n % 2 == 0 {
            recent.push(web_event(n, time, "keepme"));
        } else {
            recent.extend(session_events(n, time, "keepme"));
        }
    }
    let old_ids: Vec<_> = old.iter().map(|e| e.id).collect();
    ingest_all(&mut service, old, 64);
    ingest_all(&mut service, recent, 64);
    // The snapshot holds the old rows too.
    service.save_snapshot().unwrap();
    service.close().unwrap();
    let before = disk_bytes(data.path());
    assert!(
        contains(&before, b"purgeme-agent-0"),
        "sanity: the strings are on disk"
    );

    let mut cfg = config(data.path(), PluginSource::Embedded);
    cfg.retention = Duration::from_secs(24 * 3600);
    let mut service = open_with(cfg);
    assert_snapshot(&service, 0);
    let report = service.purge(now).unwrap();
    assert_eq!(report.purged, 300);
    assert_eq!(row_count(&mut service), 100);
    let counters = service.counters();
    assert_eq!(
        (
            counters.purges_run,
            counters.rows_purged,
            counters.events_purged
        ),
        (1, 300, 450)
    );
    let after_purge = answers(&mut service);
    drop(service);

    let after = disk_bytes(data.path());
    for marker in [&b"purgeme"[..], b"purgeme-reason", b"purgeme-agent"] {
        assert!(
            !contains(&after, marker),
            "{:?} is still on disk",
            String::from_utf8_lossy(marker)
        );
    }
    for id in &old_ids {
        assert!(
            !contains(&after, id.as_bytes()),
            "purged event id {id} is still on disk"
        );
    }
    assert!(
        contains(&after, b"keepme-agent-1000"),
        "kept rows are still there"
    );

    // Neither replay nor a snapshot brings them back.
    let mut service = open(data.path(), PluginSource::Embedded);
    assert_full_replay(&service, "no snapshot");
    assert_eq!(answers(&mut service), after_purge);
    service.save_snapshot().unwrap();
    drop(service);
    let mut service = open(data.path(), PluginSource::Embedded);
    assert_snapshot(&service, 0);
    assert_eq!(answers(&mut service), after_purge);
}

#[test]
fn the_retention_scheduler_purges_at_start_then_periodically_and_stops_when_dropped() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path(), PluginSource::Embedded);
    cfg.clock = connlog::plugin::Clock::System;
    cfg.retention = Duration::from_secs(3600);
    let mut service = open_with(cfg);
    let now = service.now();
    ingest_all(
        &mut service,
        vec![
            web_event(1, now - 3 * HOUR, "old"),
            web_event(2, now, "new"),
        ],
        10,
    );
    let shared = std::sync::Arc::new(std::sync::Mutex::new(service));
    let scheduler = RetentionScheduler::spawn(shared.clone(), Duration::from_millis(100));

    let wait_for = |what: &str, done: &dyn Fn(&mut ConnLog) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if done(&mut service::lock(&shared)) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("the purge at start", &|s| s.counters().rows_purged == 1);
    assert_eq!(row_count(&mut service::lock(&shared)), 1);

    // A late event, already expired: the next periodic run removes it.
    let late = web_event(3, now - 5 * HOUR, "late");
    ingest_all(&mut service::lock(&shared), vec![late], 10);
    wait_for("a periodic purge", &|s| s.counters().rows_purged == 2);
    assert!(service::lock(&shared).counters().purges_run >= 2);

    let stopping = std::time::Instant::now();
    drop(scheduler);
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "dropping stops the thread"
    );
    let runs = service::lock(&shared).counters().purges_run;
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        service::lock(&shared).counters().purges_run,
        runs,
        "no purge after drop"
    );
}

// ---- damaged stores ---------------------------------------------------------------------

/// A store of a few hundred pages, closed cleanly (WAL checkpointed into the file).
fn closed_store() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded);
    ingest_all(&mut service, mixed_events(0, 3000, "row"), 500);
    service.close().unwrap();
    let db = store_path(data.path());
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    data
}

fn open_error(data: &std::path::Path) -> String {
    match ConnLog::open(config(data, PluginSource::Embedded)) {
        Ok(_) => panic!("a damaged store was accepted"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn a_truncated_store_is_refused_clearly() {
    let data = closed_store();
    let db = store_path(data.path());
    let len = std::fs::metadata(&db).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    let before = std::fs::read(&db).unwrap();
    let error = open_error(data.path());
    assert!(error.contains("cannot be used"), "{error}");
    assert!(
        error.contains(&db.display().to_string()),
        "names the file: {error}"
    );
    assert!(
        error.contains("damaged") || error.contains("malformed"),
        "{error}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the damaged file is left as it was"
    );
}

#[test]
fn a_garbage_page_is_refused_clearly() {
    let data = closed_store();
    let db = store_path(data.path());
    let (page_size, root): (u64, u64) = {
        let conn = Connection::open(&db).unwrap();
        (
            conn.query_row("PRAGMA page_size", [], |r| r.get(0))
                .unwrap(),
            conn.query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .unwrap(),
        )
    };
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let mut bytes = std::fs::read(&db).unwrap();
    let start = ((root - 1) * page_size) as usize;
    let mut x: u32 = 0x2545_f491;
    for b in &mut bytes[start..start + page_size as usize] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    std::fs::write(&db, &bytes).unwrap();
    let error = open_error(data.path());
    assert!(error.contains("cannot be used"), "{error}");
    assert!(
        error.contains("damaged") || error.contains("malformed"),
        "{error}"
    );
}

#[test]
fn a_file_that_is_not_a_store_is_refused_clearly() {
    let data = tempfile::tempdir().unwrap();
    let db = store_path(data.path());
    std::fs::write(&db, vec![0x5au8; 64 * 1024]).unwrap();
    let error = open_error(data.path());
    assert!(error.contains("not a database"), "{error}");
    assert_eq!(std::fs::read(&db).unwrap(), vec![0x5au8; 64 * 1024]);
}

#[test]
fn a_store_from_a_newer_schema_is_refused() {
    let data = closed_store();
    let conn = Connection::open(store_path(data.path())).unwrap();
    conn.execute(
        "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let error = open_error(data.path());
    assert!(
        error.contains("schema version 99 is not supported"),
        "{error}"
    );
}

#[test]
fn after_a_clean_close_the_store_passes_integrity_check() {
    let data = closed_store();
    let conn = Connection::open(store_path(data.path())).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}
