//! Plugin flows through the row store: batching, the journal calls made, service-log
//! lines, atomicity, snapshots and replay.

mod common;

use common::*;
use connlog_plugin_sdk::ConnectionLogPlugin;
use connlog_plugin_sdk::model::*;
use connlog_plugin_sdk::testing::JournalOp;
use connlog_reference::ReferencePlugin;

#[test]
fn only_disconnected_sessions_are_read_back_in_one_call() {
    let mut w = World::new();
    w.ingest(vec![connect(1, 1, 0), connect(2, 2, 0), connect(3, 3, 0)]);
    assert_eq!(
        w.host.calls().session_events,
        0,
        "new sessions are folded from the batch"
    );
    w.ingest(vec![
        disconnect(4, 1, 5, Some(0), None),
        disconnect(5, 2, 6, Some(1), None),
    ]);
    assert_eq!(
        w.host.calls().session_events,
        0,
        "ongoing sessions are folded from their rows"
    );
    w.host.reset_calls();
    w.ingest(vec![
        disconnect(6, 1, 7, Some(2), Some("late")),
        disconnect(7, 2, 8, None, None),
        disconnect(8, 3, 9, Some(3), None),
        connect(9, 4, 0),
        web(10, 0, None),
    ]);
    let calls = w.host.calls();
    assert_eq!(
        (calls.append, calls.session_events),
        (1, 1),
        "sessions 1 and 2 are read back together"
    );
    assert_eq!(w.rows().len(), 5);
}

#[test]
fn one_service_log_line_per_stored_event_and_format_in_one_write() {
    let mut w = World::new();
    w.plugin
        .configure(PluginConfig::log_formats(&[
            LogFormat::Json,
            LogFormat::Human,
        ]))
        .expect("no settings");
    let mut bad = connect(9, 9, 0);
    bad.connection_id = None;
    w.ingest(vec![
        connect(1, 1, 0),
        bad,
        connect(1, 1, 0),
        web(2, 1, None),
    ]);
    let lines = w.host.take_service_log();
    let formats: Vec<LogFormat> = lines.iter().map(|l| l.format).collect();
    assert_eq!(
        formats,
        [
            LogFormat::Json,
            LogFormat::Human,
            LogFormat::Json,
            LogFormat::Human
        ]
    );
    assert_eq!(w.host.calls().write_service_log, 1);
    assert!(lines[0].line.contains(&eid(1).to_string()));
    assert!(lines[2].line.contains(&eid(2).to_string()));
    // Duplicates are not logged again.
    w.ingest(vec![connect(1, 1, 0)]);
    assert!(w.host.service_log.is_empty());
    assert_eq!(
        w.host.calls().write_service_log,
        1,
        "no write when nothing was stored"
    );
}

#[test]
fn service_lines_carry_the_canonical_event() {
    let mut w = World::new();
    w.plugin
        .configure(PluginConfig::log_formats(&[LogFormat::Json]))
        .expect("no settings");
    w.ingest(vec![connect(1, 1, 0).ip("localhost").app("  Cursor ")]);
    let line = &w.host.service_log[0].line;
    assert!(
        line.contains(r#""IP":"127.0.0.1""#) && line.contains(r#""AppNameOrPort":"cursor""#),
        "{line}"
    );
}

#[test]
fn service_lines_carry_the_configured_fields() {
    let mut w = World::new();
    w.plugin
        .configure(PluginConfig {
            service_log_fields: LogFields::Seed,
            ..PluginConfig::log_formats(&[LogFormat::Json, LogFormat::Human])
        })
        .expect("no settings");
    w.ingest(vec![connect(1, 1, 0).app("Cursor")]);
    let lines: Vec<&str> = w.host.service_log.iter().map(|l| l.line.as_str()).collect();
    assert!(lines[0].contains(r#""Type":"vscode""#), "{}", lines[0]);
    assert!(
        lines[1].starts_with("[API] ") && lines[1].contains("  Type=vscode  "),
        "{}",
        lines[1]
    );
}

#[test]
fn a_failing_session_fetch_leaves_rows_and_journal_untouched() {
    let mut w = World::new();
    w.plugin
        .configure(PluginConfig::log_formats(&[LogFormat::Json]))
        .expect("no settings");
    // A disconnected session: its next event reads the session back.
    w.ingest(vec![connect(1, 1, 0), disconnect(5, 1, 3, None, None)]);
    let before = (w.rows(), w.host.journal_len(), w.host.service_log.len());
    w.host.fail_next(JournalOp::SessionEvents);
    let result = w.try_ingest(vec![
        disconnect(2, 1, 5, Some(0), Some("bye")),
        web(3, 0, None),
        connect(4, 4, 0),
    ]);
    assert!(matches!(result, Err(JournalError::Unavailable(_))));
    assert_eq!(
        (w.rows(), w.host.journal_len(), w.host.service_log.len()),
        before
    );
}

#[test]
fn a_failing_forget_purges_nothing() {
    let mut w = World::new();
    w.plugin.set_retention(Some(HOUR as u64));
    w.ingest(vec![connect(1, 1, 0), web(2, 0, None)]);
    w.host.fail_next(JournalOp::Forget);
    let plugin = &mut w.plugin;
    assert!(
        w.host
            .transaction(|h| plugin.purge(h, T0 + 5 * HOUR))
            .is_err()
    );
    assert_eq!(w.rows().len(), 2);
    assert_eq!(w.host.journal_len(), 2);
}

#[test]
fn purge_saturates_instead_of_overflowing() {
    let mut w = World::new();
    w.plugin.set_retention(Some(u64::MAX));
    w.ingest(vec![connect(1, 1, 0)]);
    let report = w.plugin.purge(&mut w.host, T0).unwrap();
    assert_eq!(
        report,
        PurgeReport {
            purged: 0,
            cutoff: Some(T0 - i64::MAX)
        }
    );
    let report = w.plugin.purge(&mut w.host, i64::MIN + 5).unwrap();
    assert_eq!(report.cutoff, Some(i64::MIN));
}

#[test]
fn a_snapshot_restores_the_same_rows() {
    let mut w = World::new();
    w.ingest(vec![
        connect(1, 1, 0),
        disconnect(2, 1, 5, Some(0), Some("bye")),
        web(3, 1, Some(bob())),
        connect(4, 2, 9),
    ]);
    w.host.begin_snapshot_write();
    w.plugin.save_snapshot(&mut w.host).unwrap();
    w.host.begin_snapshot_read();
    let mut restored = ReferencePlugin::new();
    restored.load_snapshot(&mut w.host).unwrap();
    assert_eq!(restored.rows(), w.rows());
    assert_eq!(restored.stats().rows, 3);
    // The restored plugin keeps merging: the known session is recomputed from the journal.
    let outcome = w
        .host
        .transaction(|h| restored.ingest_batch(h, vec![disconnect(5, 2, 20, Some(3), None)]))
        .unwrap();
    assert_eq!(outcome, [EventOutcome::Stored]);
    let row = restored
        .rows()
        .into_iter()
        .find(|r| r.connection_id == Some(cid(2)))
        .unwrap();
    assert_eq!(
        (row.id, row.disconnect_time, row.code),
        (eid(4), Some(T0 + 20 * S), Some(3))
    );
}

#[test]
fn snapshots_are_written_in_chunks_of_at_most_one_mebibyte() {
    let mut w = World::new();
    let long = "u".repeat(2000);
    let events: Vec<ConnectionEvent> = (0..2000)
        .map(|i| web(10 + i, i as i64, None).with(|e| e.user_agent = Some(format!("{long}{i}"))))
        .collect();
    w.ingest(events);
    w.host.begin_snapshot_write();
    w.plugin.save_snapshot(&mut w.host).unwrap();
    assert!(
        w.host
            .snapshot_chunks()
            .iter()
            .all(|c| c.len() <= connlog_reference::plugin::SNAPSHOT_CHUNK_BYTES)
    );
    w.host.begin_snapshot_read();
    let mut restored = ReferencePlugin::new();
    restored.load_snapshot(&mut w.host).unwrap();
    assert_eq!(restored.rows(), w.rows());
}

#[test]
fn a_foreign_or_unreadable_snapshot_leaves_an_empty_state() {
    let mut w = World::new();
    w.ingest(vec![connect(1, 1, 0)]);
    let mut plugin = ReferencePlugin::new();
    let events = w.host.journal_events();
    plugin.replay(&mut w.host, &event_refs(&events)).unwrap();
    assert_eq!(plugin.stats().rows, 1);
    w.host
        .set_snapshot_chunks(vec![b"definitely not a connlog snapshot".to_vec()]);
    assert!(plugin.load_snapshot(&mut w.host).is_err());
    assert_eq!(plugin.stats().rows, 0);

    let events = w.host.journal_events();
    plugin.replay(&mut w.host, &event_refs(&events)).unwrap();
    w.host.fail_next(JournalOp::ReadSnapshotChunk);
    assert!(plugin.load_snapshot(&mut w.host).is_err());
    assert_eq!(plugin.stats().rows, 0);
}

#[test]
fn replay_rebuilds_and_never_appends_or_logs() {
    let mut w = World::new();
    w.plugin
        .configure(PluginConfig::log_formats(&[LogFormat::Json]))
        .expect("no settings");
    w.ingest(vec![
        connect(1, 1, 0),
        disconnect(2, 1, 5, Some(0), None),
        web(3, 1, None),
        disconnect(4, 2, 7, None, None),
    ]);
    w.host.take_service_log();
    w.host.reset_calls();
    let mut fresh = ReferencePlugin::new();
    fresh
        .configure(PluginConfig::log_formats(&[LogFormat::Json]))
        .expect("no settings");
    let mut journal = w.host.journal_events();
    journal.reverse();
    // Split so that the second call meets a session the first one created.
    let tail = journal.split_off(2);
    fresh.replay(&mut w.host, &event_refs(&journal)).unwrap();
    fresh.replay(&mut w.host, &event_refs(&tail)).unwrap();
    assert_eq!(fresh.rows(), w.rows());
    assert_eq!(w.host.calls().append, 0);
    assert!(w.host.service_log.is_empty());
    // Replaying everything again changes nothing.
    let events = w.host.journal_events();
    fresh.replay(&mut w.host, &event_refs(&events)).unwrap();
    assert_eq!(fresh.rows(), w.rows());
}

#[test]
fn stats_count_rows() {
    let mut w = World::new();
    w.ingest(vec![
        connect(1, 1, 0),
        disconnect(2, 1, 1, None, None),
        web(3, 0, None),
    ]);
    let stats = w.plugin.stats();
    assert_eq!(stats.rows, 2);
    assert!(stats.memory_bytes > 0);
}
