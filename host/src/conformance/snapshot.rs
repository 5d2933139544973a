//! State: a restart brings the plugin back to the state it had, whether it replays the
//! whole journal, loads its own snapshot, or loads the snapshot and replays the events
//! after it; the same questions get the same API bodies, and merging carries on.

use super::fixtures::*;
use super::{Case, Check, Harness, same_answers, same_rows};
use crate::service::RestoreSource;

pub fn cases() -> Vec<Case> {
    let s = |name: &'static str, run: fn(&mut Harness) -> Check| Case::new("snapshot", name, run);
    vec![
        s(
            "a restart replaying the whole journal answers every question as before",
            full_replay_start,
        ),
        s(
            "a start from the plugin's snapshot answers every question as before",
            snapshot_start,
        ),
        s(
            "a snapshot plus the events after it answers as the same events ingested at once",
            snapshot_and_tail,
        ),
        s(
            "after a snapshot start a known session still merges",
            merging_after_a_snapshot,
        ),
        s(
            "a purge after a snapshot stays applied across restarts",
            purge_after_a_snapshot,
        ),
        s("state stats count the rows", stats_count_rows),
    ]
}

/// Which way the last start went, so a case knows it tested the path it names.
fn expect_start(h: &mut Harness, snapshot: bool) -> Check {
    let source = &h.service()?.last_restore().source;
    match (snapshot, source) {
        (true, RestoreSource::Snapshot { .. }) | (false, RestoreSource::FullReplay { .. }) => {
            Ok(())
        }
        (true, RestoreSource::FullReplay { reason }) => {
            Err(format!("the restart did not use the snapshot: {reason}"))
        }
        (false, RestoreSource::Snapshot { .. }) => {
            Err("the restart used a snapshot, not a full replay".into())
        }
    }
}

fn save(h: &mut Harness) -> Check {
    h.service()?
        .save_snapshot()
        .map(|_| ())
        .map_err(|e| format!("save-snapshot failed: {e}"))
}

fn full_replay_start(h: &mut Harness) -> Check {
    h.store(mixed_events())?;
    let (rows, answers) = (h.rows()?, h.answers()?);
    h.restart()?;
    expect_start(h, false)?;
    same_rows(&h.rows()?, &rows, "rows after the restart")?;
    same_answers(&h.answers()?, &answers, "after the restart")
}

fn snapshot_start(h: &mut Harness) -> Check {
    h.store(mixed_events())?;
    let (rows, answers) = (h.rows()?, h.answers()?);
    save(h)?;
    h.restart()?;
    expect_start(h, true)?;
    same_rows(&h.rows()?, &rows, "rows after the restart")?;
    same_answers(&h.answers()?, &answers, "after the restart")
}

fn snapshot_and_tail(h: &mut Harness) -> Check {
    let events = mixed_events();
    let (head, tail) = events.split_at(events.len() * 3 / 5);
    h.store(head.to_vec())?;
    save(h)?;
    // The tail closes sessions the snapshot holds open.
    h.store(tail.to_vec())?;
    h.restart()?;
    expect_start(h, true)?;
    let mut at_once = h.fresh()?;
    at_once.store(events.clone())?;
    same_rows(&h.rows()?, &at_once.rows()?, "rows after the restart")?;
    same_answers(&h.answers()?, &at_once.answers()?, "after the restart")
}

fn merging_after_a_snapshot(h: &mut Harness) -> Check {
    h.store(vec![
        connect(1, 1, 0),
        disconnect(2, 1, 5, Some(0), Some("bye")),
        web(3, 1, Some(bob())),
        connect(4, 2, 9),
    ])?;
    save(h)?;
    h.restart()?;
    expect_start(h, true)?;
    h.store(vec![disconnect(5, 2, 20, Some(3), None)])?;
    let rows = h.rows()?;
    ensure_eq!(rows.len(), 3, "rows");
    let row = rows
        .iter()
        .find(|r| r.connection_id == Some(cid(2)))
        .ok_or("no row for session cid(2)")?;
    ensure_eq!(
        (row.id, row.disconnect_time, row.code),
        (eid(4), Some(T0 + 20 * S), Some(3)),
        "the session's id, disconnect time and code"
    );
    Ok(())
}

fn purge_after_a_snapshot(h: &mut Harness) -> Check {
    h.store(mixed_events())?;
    h.set_retention((3 * 60 * S) as u64)?;
    save(h)?;
    let report = h.purge(T0 + 6 * 60 * S)?;
    ensure!(
        report.purged > 0,
        "the purge removed nothing (check the data set)"
    );
    let (rows, answers) = (h.rows()?, h.answers()?);
    h.restart()?;
    same_rows(&h.rows()?, &rows, "rows after a restart")?;
    save(h)?;
    h.restart()?;
    expect_start(h, true)?;
    same_rows(
        &h.rows()?,
        &rows,
        "rows after a restart from a new snapshot",
    )?;
    same_answers(
        &h.answers()?,
        &answers,
        "after a restart from a new snapshot",
    )
}

fn stats_count_rows(h: &mut Harness) -> Check {
    h.store(mixed_events())?;
    let rows = h.rows()?.len() as u64;
    for restarted in [false, true] {
        if restarted {
            h.restart()?;
        }
        let stats = h
            .service()?
            .stats()
            .map_err(|e| format!("stats failed: {e}"))?;
        ensure_eq!(stats.rows, rows, "stats rows (restarted: {restarted})");
    }
    Ok(())
}
