//! Durability: a restart answers every query exactly as before (from a snapshot, from a
//! snapshot plus its tail, or by full replay); a snapshot is used only when it is this
//! plugin's and intact, and never hides an event (not one another writer appended, not
//! one that came after a purge); retention removes purged data from the disk for good,
//! while a restart still starts from a snapshot; damaged stores are refused with a clear
//! error, and the whole file is read at a start unless it is as connlog sealed it (a clean
//! stop, or its last checkpoint before a crash); a service that purged many rows is brought
//! up again to give back what they left; version-1 and version-2 stores are upgraded once
//! and answer in Coder's current shape.

mod service_support;
mod support;

use std::time::Duration;

use std::path::{Path, PathBuf};

use connlog::plugin::{Embedded, PluginSource};
use connlog::retention::RetentionScheduler;
use connlog::service::{self, ConnLog, RestoreSource, SnapshotPolicy, StoreCheck, store_path};
use connlog::store::SnapshotInfo;
use rusqlite::Connection;
use service_support::*;

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
    let mut service = open(data, PluginSource::Embedded(Embedded::Reference));
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
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    assert_full_replay(&service, "no snapshot");
    assert_eq!(answers(&mut service), before);
}

#[test]
fn a_restart_from_a_snapshot_and_its_tail_answers_every_query_as_before() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
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

    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    assert_snapshot(&service, tail_len);
    assert_eq!(answers(&mut service), before);

    // The same store by full replay answers the same, too.
    drop(service);
    forget_snapshot_record(data.path());
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    assert_full_replay(&service, "no snapshot");
    assert_eq!(answers(&mut service), before);
}

#[test]
fn a_clean_shutdown_saves_a_snapshot_and_the_next_start_loads_it() {
    let data = tempfile::tempdir().unwrap();
    let before = populated(data.path());
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    service.set_snapshot_policy(SnapshotPolicy {
        on_close_min_events: 1,
        ..NO_SNAPSHOTS
    });
    service.close().unwrap();

    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    assert_snapshot(&service, 0);
    assert_eq!(service.last_restore().rows, 1200);
    assert_eq!(answers(&mut service), before);
}

#[test]
fn a_snapshot_is_written_in_the_background_every_n_events() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    service.set_snapshot_policy(SnapshotPolicy {
        every_events: 500,
        ..NO_SNAPSHOTS
    });
    let events = mixed_events(0, 1200, "row");
    let (first, rest) = events.split_at(600);
    ingest_all(&mut service, first.to_vec(), 100);
    service.wait_for_snapshots();
    assert_eq!(
        service.counters().snapshots_saved,
        1,
        "{:?}",
        service.counters()
    );
    assert!(service.unsnapshotted_events() < 500);
    ingest_all(&mut service, rest.to_vec(), 100);
    service.wait_for_snapshots();
    assert!(
        service.counters().snapshots_saved >= 2,
        "{:?}",
        service.counters()
    );
    assert_eq!(
        snapshot_files(data.path()).len(),
        1,
        "replaced files are removed"
    );
    // Ingest may outrun a snapshot written meanwhile; the next one is asked for by the next
    // ingest. What counts is that the restart replays exactly what is uncovered.
    let uncovered = service.unsnapshotted_events();
    assert!(uncovered < 1200);
    let before = answers(&mut service);
    drop(service);
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    assert_snapshot(&service, uncovered);
    assert_eq!(answers(&mut service), before);
}

/// A snapshot due while ingest keeps coming (a load from concurrent callers) waits for
/// ingest to pause: its bring-up would merge every uncovered event a second time, beside
/// the load.
#[test]
fn a_due_snapshot_waits_for_ingest_to_pause() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    let pause = Duration::from_secs(2);
    service.set_snapshot_policy(SnapshotPolicy {
        every_events: 100,
        pause,
        ..NO_SNAPSHOTS
    });
    for batch in 0..5 {
        ingest_all(&mut service, mixed_events(batch * 100, 100, "row"), 100);
        assert_eq!(
            service.counters().snapshots_saved,
            0,
            "no snapshot while ingest keeps coming (after batch {batch})"
        );
    }
    let paused = std::time::Instant::now();
    service.wait_for_snapshots();
    assert!(paused.elapsed() >= pause / 2, "it waited for the pause");
    assert_eq!(service.counters().snapshots_saved, 1);
    assert_eq!(service.unsnapshotted_events(), 0);
}

/// The pair of the test above: past `BULK_SNAPSHOT_EVERY` times the policy's events, a
/// snapshot waiting for a pause is written at once.
#[test]
fn past_the_bulk_bound_a_snapshot_waits_for_no_pause() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    let every_events = 20;
    service.set_snapshot_policy(SnapshotPolicy {
        every_events,
        pause: Duration::from_secs(600),
        ..NO_SNAPSHOTS
    });
    ingest_all(&mut service, mixed_events(0, 100, "row"), 100);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        service.counters().snapshots_saved,
        0,
        "due, and waiting for a pause"
    );
    let bound = every_events * service::BULK_SNAPSHOT_EVERY;
    ingest_all(&mut service, mixed_events(100, bound, "row"), 100);
    support::eventually(
        Duration::from_secs(60),
        || service.counters().snapshots_saved > 0,
        || format!("no snapshot once {bound} events were uncovered"),
    );
    assert_eq!(
        service.counters().snapshots_saved,
        1,
        "written once {bound} events were uncovered"
    );
}

/// While ingest goes on, a due snapshot is saved by a forked copy of the process, from the
/// running instance (no event is merged a second time), and a restart starts from it.
#[test]
fn a_snapshot_due_while_ingest_goes_on_is_saved_by_a_fork_of_the_running_instance() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    service.set_snapshot_policy(SnapshotPolicy {
        every_events: 1_000,
        ..NO_SNAPSHOTS
    });
    let mut next = 0;
    support::eventually(
        Duration::from_secs(60),
        || {
            ingest_all(&mut service, mixed_events(next, 100, "row"), 100);
            next += 100;
            service.counters().snapshots_forked > 0
        },
        || "no snapshot was forked while ingest went on".to_string(),
    );
    service.set_snapshot_policy(NO_SNAPSHOTS);
    service.wait_for_snapshots();
    let counters = service.counters();
    assert_eq!(
        (counters.instance_restarts, counters.snapshot_writes_failed),
        (0, 0),
        "{counters:?}"
    );
    let uncovered = service.unsnapshotted_events();
    assert!(
        uncovered < service.merged_upto() as u64,
        "the snapshot covers some events"
    );
    let before = answers(&mut service);
    // No snapshot at the stop: the start must load the background one.
    service.crash();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    assert_snapshot(&service, uncovered);
    assert_eq!(answers(&mut service), before);
}

#[test]
fn a_snapshot_of_another_plugin_build_is_never_loaded() {
    let data = tempfile::tempdir().unwrap();
    let before = populated(data.path());
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
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

/// Saves a snapshot, lets `damage` change its file or record, and checks the next start
/// refuses the snapshot, replays instead, and answers as before.
fn damaged_snapshot_falls_back(damage: impl FnOnce(&Path, &SnapshotInfo), reason: &str) {
    let data = tempfile::tempdir().unwrap();
    let before = populated(data.path());
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    let info = service.save_snapshot().unwrap();
    assert!(info.chunks >= 1);
    drop(service);

    damage(&snapshot_path(data.path(), &info), &info);

    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    assert_full_replay(&service, reason);
    assert_eq!(service.counters().snapshots_refused, 1);
    assert_eq!(answers(&mut service), before);
}

fn snapshot_path(data: &Path, info: &SnapshotInfo) -> PathBuf {
    connlog::store::snapshot_file::path_of(
        &data.join(connlog::store::snapshot_file::DIR),
        &info.file,
    )
}

/// The chunks of a snapshot file, with the offset of each one's bytes.
fn chunks_of(file: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < file.len() {
        let len = u32::from_le_bytes(file[at..at + 4].try_into().unwrap()) as usize;
        chunks.push((at + 4, file[at + 4..at + 4 + len].to_vec()));
        at += 4 + len;
    }
    chunks
}

/// Flips a byte in the middle of the first chunk; returns the file's new bytes.
fn flip_snapshot_byte(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let (start, chunk) = chunks_of(&bytes).remove(0);
    bytes[start + chunk.len() / 2] ^= 0x10;
    std::fs::write(path, &bytes).unwrap();
    bytes
}

fn set_snapshot_meta(path: &Path, key: &str, value: &str) {
    let data = path.parent().unwrap().parent().unwrap();
    let conn = Connection::open(store_path(data)).unwrap();
    conn.execute("UPDATE meta SET value = ?1 WHERE key = ?2", [value, key])
        .unwrap();
}

/// A start reads the whole store file (SQLite's `quick_check`) unless the file is as
/// connlog sealed it (`store::seal`): by a clean stop, or after the last checkpoint before
/// a crash. A checkpoint while running (the WAL outgrew SQLite's 1,000 pages) is sealed
/// again; a write by anyone else is not.
#[test]
fn the_whole_store_is_checked_unless_the_file_is_as_connlog_sealed_it() {
    let data = tempfile::tempdir().unwrap();
    let reference = || PluginSource::Embedded(Embedded::Reference);
    let before = populated(data.path());
    let mut service = open(data.path(), reference());
    assert_eq!(service.store_check(), StoreCheck::CleanStop);
    assert_eq!(answers(&mut service), before);
    let db = store_path(data.path());
    let modified = || std::fs::metadata(&db).unwrap().modified().unwrap();
    let untouched = modified();
    ingest_all(&mut service, mixed_events(1200, 20_000, "row"), 1000);
    assert_ne!(modified(), untouched, "SQLite checkpointed into the file");
    // A crash: no shutdown, only the seal of the last checkpoint.
    service.crash();

    let mut service = open(data.path(), reference());
    assert_eq!(service.store_check(), StoreCheck::LastCheckpoint);
    assert_eq!(row_count(&mut service), 21_200);
    service.close().unwrap();
    assert_eq!(
        open(data.path(), reference()).store_check(),
        StoreCheck::CleanStop
    );

    // Another writer behind connlog's back: SQLite checkpoints its events into the file
    // when its connection closes.
    let other = connlog::store::Journal::connect(&db).unwrap();
    other.insert(&mixed_events(30_000, 10, "other")).unwrap();
    drop(other);
    let mut service = open(data.path(), reference());
    assert_eq!(service.store_check(), StoreCheck::WholeFile);
    assert_eq!(row_count(&mut service), 21_210);
}

/// Damage done after a crash, to a file sealed at its last checkpoint, is refused, at every
/// start: the write moved the file's change time.
#[test]
fn damage_after_a_crash_is_refused() {
    let data = tempfile::tempdir().unwrap();
    populated(data.path());
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    ingest_all(&mut service, mixed_events(1200, 100, "row"), 50);
    service.crash();
    damage_a_third(&store_path(data.path()));
    // Twice: a refused start must not seal the file it refused.
    for _ in 0..2 {
        let message = open_error(data.path());
        assert!(message.contains("connlog.db"), "{message}");
        assert!(
            message.contains("damaged") || message.contains("malformed"),
            "{message}"
        );
    }
}

/// Overwrites the middle third of the store file, then sets its modification time back
/// (as a careless copy tool might): only the change time still says it was written.
fn damage_a_third(db: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let meta = std::fs::metadata(db).unwrap();
    let third = meta.len() / 3;
    let mut file = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    file.seek(SeekFrom::Start(third)).unwrap();
    file.write_all(&vec![0x42; third as usize]).unwrap();
    file.set_modified(meta.modified().unwrap()).unwrap();
}

/// Damage done after a clean stop is refused as before, even when whoever wrote it set the
/// file's modification time back: the change time still moved. The stop saved a snapshot,
/// so the start itself reads none of the damaged pages: only the whole-file check can
/// find them.
#[test]
fn damage_after_a_clean_stop_is_refused() {
    let data = tempfile::tempdir().unwrap();
    populated(data.path());
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    service.set_snapshot_policy(SnapshotPolicy {
        on_close_min_events: 1,
        ..NO_SNAPSHOTS
    });
    service.close().unwrap();
    damage_a_third(&store_path(data.path()));
    let message = open_error(data.path());
    assert!(message.contains("connlog.db"), "{message}");
    assert!(
        message.contains("damaged") || message.contains("malformed"),
        "{message}"
    );
}

#[test]
fn a_damaged_snapshot_is_refused_and_the_journal_replayed() {
    damaged_snapshot_falls_back(
        |path, _| {
            flip_snapshot_byte(path);
        },
        "snapshot",
    );
}

#[test]
fn a_damaged_snapshot_with_a_matching_record_is_still_refused_by_the_plugin() {
    // Damage that also rewrote the host's record: the plugin's own checksum still catches it.
    damaged_snapshot_falls_back(
        |path, _| {
            let bytes = flip_snapshot_byte(path);
            use sha2::Digest;
            let mut hasher = sha2::Sha256::new();
            for (_, chunk) in chunks_of(&bytes) {
                hasher.update(&chunk);
            }
            set_snapshot_meta(path, "snapshot.sha256", &hex::encode(hasher.finalize()));
        },
        "loading the snapshot failed",
    );
}

#[test]
fn a_truncated_snapshot_is_refused() {
    damaged_snapshot_falls_back(
        |path, _| {
            let len = std::fs::metadata(path).unwrap().len();
            let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(len - 1000).unwrap();
        },
        "snapshot",
    );
}

#[test]
fn a_snapshot_missing_a_chunk_is_refused() {
    damaged_snapshot_falls_back(
        |path, _| {
            let bytes = std::fs::read(path).unwrap();
            let (last_start, _) = chunks_of(&bytes).pop().unwrap();
            std::fs::write(path, &bytes[..last_start - 4]).unwrap();
        },
        "snapshot",
    );
}

#[test]
fn a_missing_snapshot_file_is_refused() {
    damaged_snapshot_falls_back(|path, _| std::fs::remove_file(path).unwrap(), "missing");
}

#[test]
fn a_snapshot_ahead_of_the_journal_is_refused() {
    damaged_snapshot_falls_back(
        |path, _| set_snapshot_meta(path, "snapshot.last_seq", "99999999"),
        "journal does not hold it",
    );
}

#[test]
fn the_journal_hands_over_a_snapshot_only_if_it_matches_its_record() {
    use connlog::store::Journal;
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    ingest_all(&mut service, mixed_events(0, 100, "row"), 50);
    let info = service.save_snapshot().unwrap();
    drop(service);
    let mut journal = Journal::open(&store_path(data.path())).unwrap();
    assert_eq!(journal.snapshot_info().unwrap(), Some(info.clone()));
    let read_all = |journal: &mut Journal| -> Result<u64, String> {
        let mut n = 0;
        while let Some(chunk) = journal.read_snapshot_chunk().map_err(|e| e.to_string())? {
            n += chunk.len() as u64;
        }
        Ok(n)
    };
    journal.start_snapshot_read(&info).unwrap();
    assert_eq!(read_all(&mut journal), Ok(info.bytes));
    assert!(journal.snapshot_read_verified());

    let mut wrong = info.clone();
    wrong.sha256 = "0".repeat(64);
    journal.start_snapshot_read(&wrong).unwrap();
    let error = read_all(&mut journal).unwrap_err();
    assert!(error.contains("does not match its record"), "{error}");
    assert!(!journal.snapshot_read_verified());

    let mut longer = info.clone();
    longer.chunks += 1;
    journal.start_snapshot_read(&longer).unwrap();
    assert!(read_all(&mut journal).unwrap_err().contains("ends after"));

    let mut elsewhere = info.clone();
    elsewhere.file = "../connlog".into();
    assert!(journal.start_snapshot_read(&elsewhere).is_err());
}

// ---- retention ------------------------------------------------------------------------

#[test]
fn purged_rows_are_gone_from_the_disk_and_never_come_back() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path(), PluginSource::Embedded(Embedded::Reference));
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
    let old_snapshot = snapshot_files(data.path());
    assert_eq!(old_snapshot.len(), 1);

    let mut cfg = config(data.path(), PluginSource::Embedded(Embedded::Reference));
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
    // The snapshot still holding them is rewritten in the background and its file zeroed.
    service.wait_for_snapshots();
    assert_eq!(
        service.counters().snapshots_saved,
        1,
        "{:?}",
        service.counters()
    );
    let files = snapshot_files(data.path());
    assert_eq!(files.len(), 1);
    assert_ne!(files, old_snapshot, "the old snapshot file is gone");
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

    // Neither the new snapshot nor a full replay brings them back.
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    assert_snapshot(&service, 0);
    assert_eq!(answers(&mut service), after_purge);
    drop(service);
    forget_snapshot_record(data.path());
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    assert_full_replay(&service, "no snapshot");
    assert_eq!(answers(&mut service), after_purge);
}

#[test]
fn the_retention_scheduler_purges_at_start_then_periodically_and_stops_when_dropped() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path(), PluginSource::Embedded(Embedded::Reference));
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
    // One row purged of the one left: the instance is brought up again to let it go.
    wait_for("a compaction after it", &|s| s.counters().compactions == 1);

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

// ---- another writer ---------------------------------------------------------------------

/// The disconnects of the sessions `mixed_events(0, count, tag)` left ongoing.
fn late_disconnects(count: u64, tag: &str) -> Vec<connlog::model::ConnectionEvent> {
    (0..count)
        .filter(|n| n % 4 == 1)
        .map(|n| session_events(n, T0 + (n as i64) * 60_000_000_000, tag)[1].clone())
        .collect()
}

/// Answers by full replay of the same store (the snapshot record is dropped first).
fn full_replay_answers(data: &Path) -> Vec<String> {
    forget_snapshot_record(data);
    let mut service = open(data, PluginSource::Embedded(Embedded::Reference));
    assert_full_replay(&service, "no snapshot");
    answers(&mut service)
}

#[test]
fn events_another_writer_appended_are_merged_before_the_next_write_and_never_hidden() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    ingest_all(&mut service, mixed_events(0, 300, "row"), 97);

    // Another writer: new rows, and the disconnects of sessions the plugin holds.
    let mut foreign = mixed_events(300, 100, "foreign");
    foreign.extend(late_disconnects(300, "row"));
    let seqs = foreign_append(data.path(), &foreign);
    assert!(seqs.iter().all(|&seq| seq > service.merged_upto()));
    assert_eq!(row_count(&mut service), 300, "not merged before a write");

    ingest_all(&mut service, mixed_events(400, 100, "row"), 97);
    assert_eq!(row_count(&mut service), 500, "merged by the next write");
    let info = service.save_snapshot().unwrap();
    assert_eq!(info.last_seq, service.merged_upto());
    assert_eq!(info.rows, 500);

    // More behind its back after the snapshot: the restart replays exactly those.
    let late = mixed_events(500, 40, "late");
    foreign_append(data.path(), &late);
    drop(service);
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    assert_snapshot(&service, late.len() as u64);
    let after = answers(&mut service);
    let text = after.concat();
    for marker in [
        "foreign-ws-300",
        "foreign-ws-399",
        "row-reason-1",
        "late-ws-539",
    ] {
        assert!(text.contains(marker), "{marker} is missing");
    }
    assert_eq!(row_count(&mut service), 540);
    drop(service);
    assert_eq!(full_replay_answers(data.path()), after);
}

#[test]
fn a_shutdown_snapshot_covers_only_what_the_plugin_merged() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    service.set_snapshot_policy(SnapshotPolicy {
        on_close_min_events: 1,
        ..NO_SNAPSHOTS
    });
    ingest_all(&mut service, mixed_events(0, 300, "row"), 97);
    let merged = service.merged_upto();
    // Between the last ingest and the snapshot written on shutdown.
    let mut foreign = mixed_events(300, 60, "foreign");
    foreign.extend(late_disconnects(300, "row"));
    foreign_append(data.path(), &foreign);
    service.close().unwrap();

    let conn = Connection::open(store_path(data.path())).unwrap();
    let last_seq: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'snapshot.last_seq'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last_seq, merged.to_string());
    drop(conn);

    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    assert_snapshot(&service, foreign.len() as u64);
    assert_eq!(row_count(&mut service), 360);
    let after = answers(&mut service);
    assert!(after.concat().contains("foreign-ws-359"));
    assert!(after.concat().contains("row-reason-297"));
    drop(service);
    assert_eq!(full_replay_answers(data.path()), after);
}

/// The service's clock in these tests.
const NOW: i64 = T0 + 1000 * HOUR;

fn retained_config(data: &Path) -> connlog::service::ServiceConfig {
    let mut cfg = config(data, PluginSource::Embedded(Embedded::Reference));
    cfg.retention = Duration::from_secs(24 * 3600);
    cfg
}

fn open_retained(data: &Path, policy: SnapshotPolicy) -> ConnLog {
    let mut service = open_with(retained_config(data));
    service.set_snapshot_policy(policy);
    service
}

fn seq_of(data: &Path, id: connlog::model::Uuid) -> i64 {
    let conn = Connection::open(store_path(data)).unwrap();
    conn.query_row(
        "SELECT seq FROM events WHERE id = ?1",
        [id.as_bytes()],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn an_event_after_the_newest_event_was_purged_gets_a_new_seq_and_is_not_hidden() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open_retained(data.path(), NO_REWRITE);
    let recent: Vec<_> = (0..50)
        .map(|n| web_event(n, NOW - HOUR + n as i64, "keep"))
        .collect();
    ingest_all(&mut service, recent, 50);
    let expired = web_event(100, NOW - 48 * HOUR, "expired");
    ingest_all(&mut service, vec![expired.clone()], 1);
    let newest = seq_of(data.path(), expired.id);
    let info = service.save_snapshot().unwrap();
    assert_eq!(info.last_seq, newest);

    assert_eq!(service.purge_now().unwrap().purged, 1);
    let next = web_event(101, NOW, "after-purge");
    ingest_all(&mut service, vec![next.clone()], 1);
    assert!(
        seq_of(data.path(), next.id) > newest,
        "no seq is handed out twice"
    );
    let expected = answers(&mut service);
    drop(service);

    let mut service = open_retained(data.path(), NO_REWRITE);
    assert_snapshot(&service, 1);
    assert_eq!(row_count(&mut service), 51);
    assert_eq!(answers(&mut service), expected);
    assert!(expected.concat().contains("after-purge-ws-101"));
}

/// The background writer's replay holds its read only while it reads a batch, so that the
/// WAL can start over beside a long job (`Journal::pause_read`). Resuming says whether
/// events were deleted meanwhile, which only a purge does: new events leave the view whole,
/// and the job goes on.
#[test]
fn a_paused_read_resumes_whole_across_ingest_and_not_across_a_purge() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open_retained(data.path(), NO_REWRITE);
    let recent = |from: u64| -> Vec<_> {
        (from..from + 20)
            .map(|n| web_event(n, NOW - HOUR + n as i64, "keep"))
            .collect()
    };
    ingest_all(&mut service, recent(0), 20);
    let reader = connlog::store::Journal::connect(&store_path(data.path())).unwrap();
    reader.begin_read().unwrap();

    reader.pause_read();
    ingest_all(&mut service, recent(20), 20);
    let expired = web_event(100, NOW - 48 * HOUR, "expired");
    ingest_all(&mut service, vec![expired], 1);
    assert!(
        reader.resume_read().unwrap(),
        "new events leave the view whole"
    );

    reader.pause_read();
    assert_eq!(service.purge_now().unwrap().purged, 1);
    assert!(!reader.resume_read().unwrap(), "the purge deleted an event");

    reader.pause_read();
    assert_eq!(service.purge_now().unwrap().purged, 0);
    ingest_all(&mut service, recent(40), 20);
    assert!(
        reader.resume_read().unwrap(),
        "nothing was deleted since the last resume"
    );
    reader.end_read();
    drop(service);

    // After a restart, a purge still counts.
    let mut service = open_retained(data.path(), NO_REWRITE);
    let late = connlog::store::Journal::connect(&store_path(data.path())).unwrap();
    late.begin_read().unwrap();
    late.pause_read();
    ingest_all(
        &mut service,
        vec![web_event(200, NOW - 48 * HOUR, "expired")],
        1,
    );
    assert_eq!(service.purge_now().unwrap().purged, 1);
    assert!(!late.resume_read().unwrap());
}

/// A purge leaves the interned strings of its rows (and linear memory, which a WebAssembly
/// instance never gives back) in the running instance. Once the rows purged since it was
/// brought up reach a tenth of those it holds, the service brings the same build up again
/// beside it, from the snapshot rewritten after the purge, which holds only what live rows
/// use. No query's answer changes.
#[test]
fn purges_of_many_rows_are_followed_by_a_compaction_that_gives_memory_back() {
    let data = tempfile::tempdir().unwrap();
    let mut service = open_retained(data.path(), SnapshotPolicy::default());
    // Distinct workspace names, IPs and user agents: every row interns strings of its own.
    let rows = |range: std::ops::Range<u64>, age: i64, tag: &str| -> Vec<_> {
        range
            .map(|n| web_event(n, NOW - age + n as i64, tag))
            .collect()
    };
    ingest_all(&mut service, rows(0..450, 72 * HOUR, "oldest"), 500);
    ingest_all(&mut service, rows(450..460, 54 * HOUR, "older"), 500);
    ingest_all(&mut service, rows(460..4000, 48 * HOUR, "old"), 500);
    ingest_all(&mut service, rows(4000..5000, HOUR, "keep"), 500);
    let shared = std::sync::Arc::new(std::sync::Mutex::new(service));
    let purge = |hours: u64| {
        let retention = Duration::from_secs(hours * 3600);
        connlog::retention::purge(&shared, Some(retention))
            .unwrap()
            .purged
    };

    // 450 rows purged, 4,550 left: under a tenth (455), not worth it; 10 more, 460 against
    // 4,540 left: due.
    assert_eq!(purge(60), 450);
    assert!(service::compact_if_due(&shared).unwrap().is_none());
    assert_eq!(purge(50), 10);
    assert!(service::compact_if_due(&shared).unwrap().is_some());

    assert_eq!(purge(24), 3540);
    let expected = answers(&mut service::lock(&shared));
    let purged_memory = service::lock(&shared).stats().unwrap().memory_bytes;
    let report = service::compact_if_due(&shared)
        .unwrap()
        .expect("3,540 purged rows against 1,000 held: due");
    assert!(
        matches!(report.restore.source, RestoreSource::Snapshot { .. }),
        "brought up from the snapshot rewritten after the purge: {:?}",
        report.restore.source
    );
    let mut service = service::lock(&shared);
    let compacted_memory = service.stats().unwrap().memory_bytes;
    assert!(
        compacted_memory * 2 < purged_memory,
        "memory after the purge {purged_memory} B, after the compaction {compacted_memory} B"
    );
    assert_eq!(answers(&mut service), expected);
    assert_eq!(row_count(&mut service), 1000);
    assert_eq!(service.counters().compactions, 2);
    drop(service);
    assert!(
        service::compact_if_due(&shared).unwrap().is_none(),
        "nothing purged since"
    );
}

// ---- retention with snapshots -------------------------------------------------------------

/// Rows to keep (`keep`, recent) and rows to purge (`purgeme`, two days old), ingested
/// interleaved, and a snapshot holding them all.
fn store_with_expiring_rows(data: &Path, policy: SnapshotPolicy) -> ConnLog {
    let mut service = open_retained(data, policy);
    let mut events = Vec::new();
    for n in 0..1000u64 {
        let time = NOW - 20 * HOUR + (n as i64) * 1_000_000_000;
        if n.is_multiple_of(2) {
            events.push(web_event(n, time, "keep"));
        } else {
            events.extend(session_events(n, time, "keep"));
        }
        if n % 150 == 7 {
            let old = 5000 + n;
            let time = NOW - 48 * HOUR + (n as i64) * 1_000_000_000;
            if n.is_multiple_of(2) {
                events.push(web_event(old, time, "purgeme"));
            } else {
                events.extend(session_events(old, time, "purgeme"));
            }
        }
    }
    ingest_all(&mut service, events, 128);
    service.save_snapshot().unwrap();
    service
}

fn recent_rows(first: u64, count: u64, tag: &str) -> Vec<connlog::model::ConnectionEvent> {
    let mut events = Vec::new();
    for n in first..first + count {
        let time = NOW - 10 * HOUR + (n as i64) * 1_000_000_000;
        if n.is_multiple_of(2) {
            events.push(web_event(n, time, tag));
        } else {
            events.extend(session_events(n, time, tag));
        }
    }
    events
}

fn pending_purges(data: &Path) -> usize {
    connlog::store::Journal::connect(&store_path(data))
        .unwrap()
        .pending_purges()
        .unwrap()
        .len()
}

#[test]
fn a_restart_after_a_purge_starts_from_the_snapshot_before_and_after_its_rewrite() {
    let data = tempfile::tempdir().unwrap();
    let mut service = store_with_expiring_rows(data.path(), NO_REWRITE);
    let before_purge = recent_rows(20_000, 40, "before");
    let after_purge = recent_rows(30_000, 30, "after");
    let tail = (before_purge.len() + after_purge.len()) as u64;
    ingest_all(&mut service, before_purge, 16);
    let report = service.purge_now().unwrap();
    assert_eq!(report.purged, 7);
    ingest_all(&mut service, after_purge, 16);
    let expected = answers(&mut service);
    assert!(!expected.concat().contains("purgeme"));
    let old_files = snapshot_files(data.path());
    assert_eq!(old_files.len(), 1);
    assert_eq!(pending_purges(data.path()), 1);
    drop(service);
    assert!(
        contains(&disk_bytes(data.path()), b"purgeme-ws"),
        "sanity: until the rewrite the old snapshot holds the purged rows"
    );

    // Before the rewrite (a crash would leave this): the old snapshot, and the purge
    // applied again at its place in the tail.
    let mut service = open_retained(data.path(), NO_SNAPSHOTS);
    assert_snapshot(&service, tail);
    assert_eq!(answers(&mut service), expected);
    // The start saw the stale snapshot and had it rewritten.
    service.wait_for_snapshots();
    let files = snapshot_files(data.path());
    assert_eq!(files.len(), 1);
    assert_ne!(files, old_files, "the old snapshot file is gone");
    assert_eq!(pending_purges(data.path()), 0);
    drop(service);
    let bytes = disk_bytes(data.path());
    for marker in [&b"purgeme-ws"[..], b"purgeme-reason"] {
        assert!(
            !contains(&bytes, marker),
            "{} is still on disk",
            String::from_utf8_lossy(marker)
        );
    }

    // After the rewrite: the new snapshot covers everything.
    let mut service = open_retained(data.path(), NO_SNAPSHOTS);
    assert_snapshot(&service, 0);
    assert_eq!(answers(&mut service), expected);
    drop(service);
    assert_eq!(full_replay_answers(data.path()), expected);
}

#[test]
fn purges_in_a_running_service_are_followed_by_a_background_rewrite() {
    let data = tempfile::tempdir().unwrap();
    let mut service = store_with_expiring_rows(data.path(), NO_SNAPSHOTS);
    let old_files = snapshot_files(data.path());
    ingest_all(&mut service, recent_rows(20_000, 40, "before"), 16);
    assert_eq!(service.purge_now().unwrap().purged, 7);
    let counters = service.counters();
    assert!(counters.last_purge_locked_us > 0);
    assert_eq!(counters.max_purge_locked_us, counters.last_purge_locked_us);
    service.wait_for_snapshots();
    assert_eq!(
        service.counters().snapshots_saved,
        2,
        "{:?}",
        service.counters()
    );
    assert_eq!(service.unsnapshotted_events(), 0);
    let files = snapshot_files(data.path());
    assert_eq!(files.len(), 1);
    assert_ne!(files, old_files);
    assert_eq!(pending_purges(data.path()), 0);
    // A purge that finds nothing to delete records nothing and rewrites nothing.
    assert_eq!(service.purge_now().unwrap().purged, 0);
    service.wait_for_snapshots();
    assert_eq!(service.counters().snapshots_saved, 2);
    assert_eq!(pending_purges(data.path()), 0);
    let expected = answers(&mut service);
    drop(service);
    assert!(!contains(&disk_bytes(data.path()), b"purgeme"));
    let mut service = open_retained(data.path(), NO_SNAPSHOTS);
    assert_snapshot(&service, 0);
    assert_eq!(answers(&mut service), expected);
}

#[test]
fn snapshot_files_no_record_names_are_zeroed_and_removed_at_start() {
    let data = tempfile::tempdir().unwrap();
    populated(data.path());
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    let info = service.save_snapshot().unwrap();
    drop(service);
    // What crashes leave: an unfinished file, a finished one never recorded.
    let dir = data.path().join(connlog::store::snapshot_file::DIR);
    let unfinished = dir.join("00000000000000aa-00000001-0000.snap.tmp");
    let unrecorded = dir.join("00000000000000bb-00000001-0000.snap");
    let unrelated = dir.join("notes.txt");
    std::fs::write(&unfinished, b"leftover-secret").unwrap();
    std::fs::write(&unrecorded, b"unrecorded-secret").unwrap();
    std::fs::write(&unrelated, b"not ours").unwrap();

    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    assert_snapshot(&service, 0);
    service.wait_for_snapshots();
    assert!(!unfinished.exists() && !unrecorded.exists());
    assert!(unrelated.exists(), "only snapshot files are touched");
    assert!(snapshot_path(data.path(), &info).exists());
    drop(service);
    let bytes = disk_bytes(data.path());
    assert!(!contains(&bytes, b"leftover-secret") && !contains(&bytes, b"unrecorded-secret"));
}

/// A session's events, each at its own time and status, under session `n`'s key.
fn session_event(
    n: u64,
    id_kind: u64,
    time: i64,
    status: connlog::model::ConnectionStatus,
    tag: &str,
) -> connlog::model::ConnectionEvent {
    let [connect, disconnect] = session_events(n, time, tag);
    let event = match status {
        connlog::model::ConnectionStatus::Connected => connect,
        connlog::model::ConnectionStatus::Disconnected => disconnect,
    };
    connlog::model::ConnectionEvent {
        id: id(id_kind, n),
        time,
        ..event
    }
}

#[test]
fn a_purge_that_deleted_events_newer_than_the_snapshot_makes_the_restart_replay_everything() {
    use connlog::model::ConnectionStatus::{Connected, Disconnected};
    let data = tempfile::tempdir().unwrap();
    let mut service = open_retained(data.path(), NO_REWRITE);
    ingest_all(&mut service, recent_rows(0, 200, "keep"), 50);
    // A session known only by its disconnect: its row connects when it disconnected.
    let disconnect = session_event(9001, 5, NOW - HOUR, Disconnected, "late-connect");
    ingest_all(&mut service, vec![disconnect], 1);
    service.save_snapshot().unwrap();
    // Its connect arrives after the snapshot, two days back: now the row is expired.
    let connect = session_event(9001, 3, NOW - 48 * HOUR, Connected, "late-connect");
    ingest_all(&mut service, vec![connect], 1);
    assert_eq!(service.purge_now().unwrap().purged, 1);
    let expected = answers(&mut service);
    assert!(!expected.concat().contains("late-connect"));
    drop(service);

    // The snapshot's version of the row connects an hour ago: applying the cutoff to it
    // would keep it. The restart replays everything instead.
    let mut service = open_retained(data.path(), NO_REWRITE);
    assert_full_replay(&service, "deleted events it does not cover");
    assert_eq!(service.counters().snapshots_refused, 0, "not damage");
    assert_eq!(answers(&mut service), expected);
}

#[test]
fn a_restart_applies_each_recorded_purge_to_the_rows_as_they_were_then() {
    use connlog::model::ConnectionStatus::{Connected, Disconnected};
    let data = tempfile::tempdir().unwrap();
    let mut service = open_retained(data.path(), NO_REWRITE);
    ingest_all(&mut service, recent_rows(0, 200, "keep"), 50);
    ingest_all(
        &mut service,
        vec![
            web_event(9000, NOW - 48 * HOUR, "expired"),
            session_event(9002, 5, NOW - 2 * HOUR, Disconnected, "three-events"),
        ],
        2,
    );
    service.save_snapshot().unwrap();
    // Between the snapshot and the purge: a second disconnect of the same session.
    let second = session_event(9002, 6, NOW - HOUR, Disconnected, "three-events");
    ingest_all(&mut service, vec![second], 1);
    assert_eq!(
        service.purge_now().unwrap().purged,
        1,
        "only the expired web row"
    );
    // After the purge: its connect, two days back. The running plugin keeps the row
    // until the next purge.
    let connect = session_event(9002, 3, NOW - 48 * HOUR, Connected, "three-events");
    ingest_all(&mut service, vec![connect], 1);
    let expected = answers(&mut service);
    assert!(expected.concat().contains("three-events"));
    assert!(!expected.concat().contains("expired-ws"));
    drop(service);

    // The purge is applied again to the row as it was then (connected two hours ago), not
    // as the later connect makes it.
    let mut service = open_retained(data.path(), NO_REWRITE);
    assert_snapshot(&service, 2);
    assert_eq!(answers(&mut service), expected);
    drop(service);
    assert_eq!(full_replay_answers(data.path()), expected);
}

// ---- damaged stores ---------------------------------------------------------------------

/// A store of a few hundred pages, closed cleanly (WAL checkpointed into the file).
fn closed_store() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    ingest_all(&mut service, mixed_events(0, 3000, "row"), 500);
    service.close().unwrap();
    let db = store_path(data.path());
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    data
}

fn open_error(data: &std::path::Path) -> String {
    match ConnLog::open(config(data, PluginSource::Embedded(Embedded::Reference))) {
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

// ---- version-1 and version-2 stores ------------------------------------------------------

/// The events table of schema versions 1 and 2: a `connection_type` and a `slug_or_port`
/// where version 3 has a method, an app and a client session id. `{seq}` is where version 2
/// added AUTOINCREMENT.
const OLD_EVENTS_TABLE: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS events (
    seq                INTEGER PRIMARY KEY{seq},
    id                 BLOB    NOT NULL UNIQUE,
    time_ns            INTEGER NOT NULL,
    organization_id    BLOB    NOT NULL,
    workspace_owner_id BLOB    NOT NULL,
    workspace_id       BLOB    NOT NULL,
    workspace_name     TEXT    NOT NULL,
    agent_name         TEXT    NOT NULL,
    connection_type    TEXT    NOT NULL,
    code               INTEGER,
    ip                 TEXT,
    user_agent         TEXT,
    user_id            BLOB,
    slug_or_port       TEXT,
    connection_id      BLOB,
    disconnect_reason  TEXT,
    disconnected       INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS events_by_session
    ON events (connection_id, workspace_id, agent_name) WHERE connection_id IS NOT NULL;
";

/// Version 1's layout: no AUTOINCREMENT, the snapshot in the database.
fn v1_schema() -> String {
    OLD_EVENTS_TABLE.replace("{seq}", "")
        + "
CREATE TABLE IF NOT EXISTS snapshot_chunks (
    seq   INTEGER PRIMARY KEY,
    bytes BLOB NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('schema_version', '1');
"
}

/// Version 2's layout (up to commit d6c039f): AUTOINCREMENT, snapshots in files, purges
/// recorded for them.
fn v2_schema() -> String {
    OLD_EVENTS_TABLE.replace("{seq}", " AUTOINCREMENT")
        + "
CREATE TABLE IF NOT EXISTS snapshot_purges (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    high_water      INTEGER NOT NULL,
    cutoff          INTEGER NOT NULL,
    max_deleted_seq INTEGER NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('schema_version', '2');
"
}

/// A new store file at `data` in WAL mode, with `schema` applied.
fn old_store(data: &Path, schema: &str) -> Connection {
    let conn = Connection::open(store_path(data)).unwrap();
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .unwrap();
    conn.execute_batch(schema).unwrap();
    conn
}

fn schema_version(conn: &Connection) -> String {
    conn.query_row(
        "SELECT value FROM meta WHERE key = 'schema_version'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn a_version_1_store_is_upgraded_once_and_answers_as_before() {
    // What version 1 could hold: an SSH app as the type (`cursor`), no client session id.
    // The upgrade must turn it into the methods and apps Coder's migration 000614 gives.
    let events: Vec<_> = mixed_events(0, 600, "v1")
        .iter()
        .map(as_old_layout_holds)
        .collect();
    // The newest event was purged under version 1, freeing its seq there. It may be handed
    // out again after the upgrade: no snapshot survives the upgrade to claim it.
    let kept = &events[..events.len() - 1];

    let reference = tempfile::tempdir().unwrap();
    let mut service = open(
        reference.path(),
        PluginSource::Embedded(Embedded::Reference),
    );
    ingest_all(&mut service, kept.to_vec(), 97);
    let expected = answers(&mut service);
    drop(service);

    let data = tempfile::tempdir().unwrap();
    let conn = old_store(data.path(), &v1_schema());
    for event in &events {
        insert_old_layout_event(&conn, event);
    }
    let purged_seq: i64 = conn
        .query_row("SELECT max(seq) FROM events", [], |r| r.get(0))
        .unwrap();
    conn.execute("DELETE FROM events WHERE seq = ?1", [purged_seq])
        .unwrap();
    conn.execute(
        "INSERT INTO snapshot_chunks (bytes) VALUES (?1)",
        [b"v1-snapshot-secret".to_vec()],
    )
    .unwrap();
    for (key, value) in [
        ("snapshot.format", "1"),
        ("snapshot.last_seq", "1"),
        ("snapshot.chunks", "1"),
    ] {
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            [key, value],
        )
        .unwrap();
    }
    let seqs = |conn: &Connection| -> Vec<(i64, Vec<u8>)> {
        let mut stmt = conn
            .prepare("SELECT seq, id FROM events ORDER BY seq")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let before = seqs(&conn);
    drop(conn);

    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    assert_full_replay(&service, "no snapshot");
    assert_eq!(answers(&mut service), expected);
    let next = web_event(9999, T0, "after-upgrade");
    ingest_all(&mut service, vec![next.clone()], 1);
    drop(service);

    let conn = Connection::open(store_path(data.path())).unwrap();
    assert_eq!(schema_version(&conn), "3");
    let chunks_table: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'snapshot_chunks'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(chunks_table, 0);
    let mut after = seqs(&conn);
    let (next_seq, _) = after.pop().unwrap();
    assert_eq!(after, before, "every event keeps its seq");
    assert!(next_seq >= purged_seq);
    drop(conn);
    assert!(!contains(&disk_bytes(data.path()), b"v1-snapshot-secret"));

    // Opening it again is not another migration; from now on no seq is reused.
    let mut service = open_retained(data.path(), NO_SNAPSHOTS);
    assert_eq!(row_count(&mut service), 601);
    ingest_all(&mut service, vec![web_event(10_000, NOW, "newest")], 1);
    service.purge(NOW + 1000 * HOUR).unwrap();
    ingest_all(
        &mut service,
        vec![web_event(10_001, NOW + 1000 * HOUR, "after")],
        1,
    );
    assert!(seq_of(data.path(), web_event(10_001, 0, "").id) > next_seq + 1);
}

#[test]
fn a_version_2_store_answers_in_coders_current_shape_and_is_migrated_once() {
    // Every type a version-2 store held, and what the API shows of it after the upgrade
    // (spec §11.1 for the method and app, §7.3 for the deprecated type):
    // (old type, old slug or port, connection_method, app_name, type, web_info.slug_or_port)
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        &'a str,
        Option<&'a str>,
        &'a str,
        Option<&'a str>,
    );
    let cases: [Case; 9] = [
        ("ssh", None, "ssh", None, "ssh", None),
        // Migration 000614 drops a slug an SSH row should never have had.
        ("ssh", Some("leftover"), "ssh", None, "ssh", None),
        ("vscode", None, "ssh", Some("vscode"), "vscode", None),
        (
            "jetbrains",
            None,
            "ssh",
            Some("jetbrains"),
            "jetbrains",
            None,
        ),
        (
            "reconnecting_pty",
            None,
            "reconnecting_pty",
            None,
            "reconnecting_pty",
            None,
        ),
        (
            "workspace_app",
            Some("code-server"),
            "workspace_app",
            None,
            "workspace_app",
            Some("code-server"),
        ),
        (
            "port_forwarding",
            Some("8080"),
            "port_forwarding",
            None,
            "port_forwarding",
            Some("8080"),
        ),
        ("tunnel", None, "tunnel", None, "tunnel", Some("")),
        // connlog's earlier contract stored an SSH client's app name as the type.
        ("cursor", None, "ssh", Some("cursor"), "vscode", None),
    ];

    let data = tempfile::tempdir().unwrap();
    let conn = old_store(data.path(), &v2_schema());
    let mut ids = Vec::new();
    for (n, &(old_type, slug, method, ..)) in cases.iter().enumerate() {
        let n = n as u64;
        let time = T0 + n as i64 * HOUR;
        if method == "ssh" || method == "reconnecting_pty" {
            // A completed session: its connect and disconnect merge after the upgrade.
            let [connect, disconnect] = session_events(n, time, "v2");
            insert_old_layout_row(&conn, &connect, old_type, slug);
            insert_old_layout_row(&conn, &disconnect, old_type, slug);
            ids.push(connect.id.to_string());
        } else {
            let web = web_event(n, time, "v2");
            insert_old_layout_row(&conn, &web, old_type, slug);
            ids.push(web.id.to_string());
        }
    }
    let events: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    drop(conn);

    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    let page: serde_json::Value = serde_json::from_str(&query(&mut service, "", 100, 0)).unwrap();
    let rows = page["connection_logs"].as_array().unwrap();
    assert_eq!(page["count"], cases.len(), "nothing lost: {page}");
    let mut got_ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    got_ids.sort_unstable();
    let mut want_ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    want_ids.sort_unstable();
    assert_eq!(got_ids, want_ids, "every row keeps its id");
    for (id, (old_type, slug, method, app, legacy, web_slug)) in ids.iter().zip(cases) {
        let row = rows.iter().find(|r| r["id"] == id.as_str()).unwrap();
        let what = format!("({old_type}, {slug:?}): {row}");
        assert_eq!(row["connection_method"], method, "{what}");
        assert_eq!(row["app_name"].as_str(), app, "{what}");
        assert_eq!(row["type"], legacy, "{what}");
        assert_eq!(row["web_info"]["slug_or_port"].as_str(), web_slug, "{what}");
        assert_eq!(row.get("type_display_name"), None, "{what}");
    }
    // The plugin filters the upgraded rows as Coder's do (by position in `cases`).
    let matching = |service: &mut ConnLog, q: &str| -> Vec<usize> {
        let page: serde_json::Value = serde_json::from_str(&query(service, q, 100, 0)).unwrap();
        let mut found: Vec<usize> = page["connection_logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| ids.iter().position(|id| r["id"] == id.as_str()).unwrap())
            .collect();
        found.sort_unstable();
        found
    };
    for (q, want) in [
        ("method:ssh", vec![0, 1, 2, 3, 8]),
        ("type:vscode", vec![2, 8]),
        ("type:ssh", vec![0, 1]),
        ("app:cursor,jetbrains", vec![3, 8]),
        ("status:completed", vec![0, 1, 2, 3, 4, 8]),
    ] {
        assert_eq!(matching(&mut service, q), want, "{q}");
    }
    let expected = answers(&mut service);
    drop(service);

    let conn = Connection::open(store_path(data.path())).unwrap();
    assert_eq!(schema_version(&conn), "3");
    let count: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, events, "every event kept");
    // A migration rebuilds the table; a second open must leave it where it is.
    let root = |conn: &Connection| -> i64 {
        conn.query_row(
            "SELECT rootpage FROM sqlite_master WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let table = root(&conn);
    drop(conn);
    let mut service = open(data.path(), PluginSource::Embedded(Embedded::Reference));
    assert_eq!(answers(&mut service), expected);
    drop(service);
    let conn = Connection::open(store_path(data.path())).unwrap();
    assert_eq!(schema_version(&conn), "3");
    assert_eq!(root(&conn), table, "not migrated again");
}
