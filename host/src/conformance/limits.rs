//! Limits: a plugin call past its deadline or over the memory cap fails alone; the host
//! rebuilds the instance from the store and every stored row is still there.
//!
//! A well-behaved plugin never hits a limit by itself, so these cases push it there in ways
//! that hold for any plugin: a batch so large that journaling it alone (one SQLite insert
//! per event, made by the host for the plugin) takes longer than a short deadline, and an
//! event whose one string is larger than the memory cap, which the host must copy into the
//! plugin's memory before the plugin can see it. What they prove is that the host's limits
//! hold this plugin and that it comes back from the store intact.

use std::time::Duration;

use super::fixtures::*;
use super::{Case, Check, Harness, Options, same_rows, trap_kind};
use crate::model::*;
use crate::plugin::{Limits, TrapKind};

/// Runs a case without the warnings the host logs for the limits it is made to hit.
fn quietly(case: fn(&mut Harness) -> Check) -> impl Fn(&mut Harness) -> Check {
    move |h| {
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || case(h))
    }
}

pub fn cases() -> Vec<Case> {
    let l = |name: &'static str, run: fn(&mut Harness) -> Check| {
        Case::boxed("limits", name, quietly(run))
    };
    vec![
        l(
            "a call past its deadline fails alone and the service recovers every row",
            deadline,
        ),
        l(
            "a call over the memory cap fails alone and the service recovers every row",
            memory_cap,
        ),
        l(
            "a memory cap too small to start the plugin is refused, naming memory",
            too_small_to_start,
        ),
    ]
}

const DEADLINE: Duration = Duration::from_millis(100);
/// Far more than a deadline's worth of journal writes on any machine.
const LARGE_BATCH: u64 = 150_000;

/// Ingests `failing`, which must fail with a trap of `kind`; then checks that nothing of it
/// was stored, that every row is as before (also after a restart), and that the next batch
/// is stored.
fn fails_alone(h: &mut Harness, failing: Vec<ConnectionEvent>, kind: TrapKind) -> Check {
    h.store(mixed_events())?;
    let (rows, events) = (h.rows()?, h.journal_len()?);
    let outcome = h.service()?.ingest(failing);
    match outcome {
        Ok(_) => return Err("the call succeeded".into()),
        Err(e) => ensure_eq!(trap_kind(&e), Some(kind), "how the call failed ({e})"),
    }
    same_rows(&h.rows()?, &rows, "rows after the failed call")?;
    ensure_eq!(
        h.journal_len()?,
        events,
        "events in the journal after the failed call"
    );
    h.store(vec![web(9_999, 0, None)])?;
    ensure_eq!(h.rows()?.len(), rows.len() + 1, "rows after the next batch");
    Ok(())
}

fn deadline(h: &mut Harness) -> Check {
    let limits = Limits {
        call_deadline: DEADLINE,
        ..h.limits()
    };
    let mut h = h.fresh_with(Options {
        limits: Some(limits),
        ..Options::default()
    })?;
    let batch = (0..LARGE_BATCH)
        .map(|i| web(100_000 + i, i as i64, None))
        .collect();
    fails_alone(&mut h, batch, TrapKind::Deadline)
}

fn memory_cap(h: &mut Harness) -> Check {
    // The smallest cap the plugin starts and holds the data set under.
    for mib in [16usize, 32, 64, 128, 256] {
        let cap = mib << 20;
        let limits = Limits {
            memory_bytes: cap,
            ..h.limits()
        };
        let Ok(mut capped) = h.fresh_with(Options {
            limits: Some(limits),
            ..Options::default()
        }) else {
            continue;
        };
        let huge = web(100_000, 0, None).with(|e| e.user_agent = Some("x".repeat(cap + (1 << 20))));
        return fails_alone(&mut capped, vec![huge], TrapKind::MemoryLimit);
    }
    Err("the plugin does not start under a memory cap of 256 MiB".into())
}

fn too_small_to_start(h: &mut Harness) -> Check {
    let limits = Limits {
        memory_bytes: 0,
        ..h.limits()
    };
    match h.fresh_with(Options {
        limits: Some(limits),
        ..Options::default()
    }) {
        Ok(_) => Err("the plugin started with no memory at all".into()),
        Err(e) if e.to_lowercase().contains("memory") => Ok(()),
        Err(e) => Err(format!("refused without naming memory: {e}")),
    }
}
