//! Retention: a purge removes every row whose connect time is strictly before
//! `now - retention`, with its events, in one pass (Coder stops at 10,000 rows a tick);
//! ongoing sessions included. Purging again is harmless; 0 keeps rows forever.
//!
//! The retention in force is the operator's, or the shorter of it and the plugin's own
//! maximum when the expectation profile has one (the privacy plugin's `max-retention`):
//! [`super::privacy::Rules::retention`].

use super::fixtures::*;
use super::privacy::cutoff;
use super::{Case, Check, Harness, same_ids};
use crate::model::*;

pub fn cases() -> Vec<Case> {
    let r = |name: &'static str, run: fn(&mut Harness) -> Check| Case::new("retention", name, run);
    vec![
        r(
            "a purge removes rows connected before the cutoff and keeps one exactly at it",
            purge_by_connect_time,
        ),
        r(
            "a purge removes the expired rows' events from the journal",
            purge_forgets_events,
        ),
        r(
            "a purged session's late disconnect starts a fresh, complete row",
            late_disconnect_after_purge,
        ),
        r(
            "purged rows stay gone after a restart",
            purged_rows_stay_gone,
        ),
        r(
            "one purge removes every expired row (15,000, no cap)",
            one_purge_removes_all,
        ),
        r(
            "purging again removes nothing and reports the same cutoff",
            purging_again,
        ),
        r("a retention of 0 keeps every row", retention_zero),
        r(
            "a retention beyond the clock's range purges nothing and saturates the cutoff",
            retention_saturates,
        ),
    ]
}

/// The retention in force (in nanoseconds, as an offset) once the operator's is `operator`.
fn in_force(h: &Harness, operator: u64) -> i64 {
    let retention = h.rules().retention(Some(operator)).unwrap_or(operator);
    i64::try_from(retention).unwrap_or(i64::MAX)
}

/// Retention 1 h; an ongoing session at T0, one at the cutoff, a web row before.
fn expiring(h: &mut Harness) -> Result<PurgeReport, String> {
    h.set_retention(HOUR as u64)?;
    h.store(vec![connect(1, 1, 0), connect(2, 2, 10), web(3, -5, None)])?;
    let retention = in_force(h, HOUR as u64);
    h.purge(T0 + 10 * S + retention)
}

fn purge_by_connect_time(h: &mut Harness) -> Check {
    let report = expiring(h)?;
    ensure_eq!(
        report,
        PurgeReport {
            purged: 2,
            cutoff: Some(T0 + 10 * S)
        },
        "the purge report"
    );
    let ids: Vec<Uuid> = h.rows()?.iter().map(|r| r.id).collect();
    same_ids(&ids, &[eid(2)], "rows left")
}

fn purge_forgets_events(h: &mut Harness) -> Check {
    expiring(h)?;
    ensure_eq!(h.journal_len()?, 1, "events left in the journal");
    Ok(())
}

fn late_disconnect_after_purge(h: &mut Harness) -> Check {
    expiring(h)?;
    h.store(vec![disconnect(4, 1, 7200, Some(0), Some("done"))])?;
    let rows = h.rows()?;
    let fresh = rows
        .iter()
        .find(|r| r.connection_id == Some(cid(1)))
        .ok_or("no row for the purged session's disconnect")?;
    ensure_eq!(
        (fresh.id, fresh.connect_time, fresh.disconnect_time),
        (eid(4), T0 + 7200 * S, Some(T0 + 7200 * S)),
        "the fresh row's id and times"
    );
    Ok(())
}

fn purged_rows_stay_gone(h: &mut Harness) -> Check {
    expiring(h)?;
    h.restart()?;
    let ids: Vec<Uuid> = h.rows()?.iter().map(|r| r.id).collect();
    same_ids(&ids, &[eid(2)], "rows after a restart")
}

fn one_purge_removes_all(h: &mut Harness) -> Check {
    h.set_retention(HOUR as u64)?;
    h.store(
        (0..15_000)
            .map(|i| web(10_000 + i, -(i as i64), None))
            .collect(),
    )?;
    h.store(vec![web(1, 2 * 3600, None)])?;
    let report = h.purge(T0 + 2 * HOUR + S)?;
    ensure_eq!(report.purged, 15_000, "rows purged");
    ensure_eq!(h.rows()?.len(), 1, "rows left");
    Ok(())
}

fn purging_again(h: &mut Harness) -> Check {
    h.set_retention(HOUR as u64)?;
    h.store(vec![connect(1, 1, 0), web(2, 0, None)])?;
    let now = T0 + 3 * HOUR;
    ensure_eq!(h.purge(now)?.purged, 2, "rows purged the first time");
    ensure_eq!(
        h.purge(now)?,
        PurgeReport {
            purged: 0,
            cutoff: Some(now - in_force(h, HOUR as u64))
        },
        "the second purge"
    );
    Ok(())
}

/// Unless the plugin has a maximum of its own, which then applies alone.
fn retention_zero(h: &mut Harness) -> Check {
    h.store(vec![connect(1, 1, -100_000), web(2, -200_000, None)])?;
    let now = T0 + 365 * 24 * HOUR;
    let want_cutoff = h.rules().retention(None).map(|r| cutoff(now, r));
    let expired = [T0 - 100_000 * S, T0 - 200_000 * S]
        .iter()
        .filter(|t| want_cutoff.is_some_and(|c| **t < c))
        .count();
    ensure_eq!(
        h.purge(now)?,
        PurgeReport {
            purged: expired as u64,
            cutoff: want_cutoff
        },
        "the purge report"
    );
    ensure_eq!(h.rows()?.len(), 2 - expired, "rows left");
    Ok(())
}

/// Unless the plugin has a shorter maximum of its own, which then applies.
fn retention_saturates(h: &mut Harness) -> Check {
    h.set_retention(u64::MAX)?;
    h.store(vec![connect(1, 1, 0)])?;
    ensure_eq!(
        h.purge(T0)?,
        PurgeReport {
            purged: 0,
            cutoff: Some(T0 - in_force(h, u64::MAX))
        },
        "the purge report"
    );
    ensure_eq!(
        h.purge(i64::MIN + 5)?.cutoff,
        Some(i64::MIN),
        "the cutoff near the clock's start"
    );
    ensure_eq!(h.rows()?.len(), 1, "rows left");
    Ok(())
}
