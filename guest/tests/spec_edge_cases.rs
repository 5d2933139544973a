//! Coder's behaviour, spec §3 and §10, natively through `Plugin` + `MemoryHost`. The test
//! bodies live in `spec/edge_cases.rs`, which `tests/spec_component.rs` also runs through
//! the real component; see there for what each case covers.
//!
//! The tests after the `include!` are native-only: they inject storage failures with
//! `MemoryHost::fail_next`, which has no honest equivalent through the component over a
//! real SQLite file.

mod common;

use common::*;

include!("spec/edge_cases.rs");

// ----- Native only: failure injection ------------------------------------------------------

#[test]
fn edge_13_difference_5_storage_errors_reach_the_caller_and_store_nothing() {
    use connlog_guest::testing::JournalOp;
    let mut w = World::new();
    w.plugin.configure(vec![LogFormat::Json]);
    w.ingest(vec![connect(1, 1, 0)]);
    let rows = w.rows();
    let journal = w.host.journal_len();
    let lines = w.host.service_log.len();

    w.host.fail_next(JournalOp::Append);
    assert!(
        w.try_ingest(vec![disconnect(2, 1, 5, Some(0), None), web(3, 1, None)])
            .is_err()
    );
    w.host.fail_next(JournalOp::SessionEvents);
    assert!(
        w.try_ingest(vec![disconnect(2, 1, 5, Some(0), None), web(3, 1, None)])
            .is_err()
    );

    assert_eq!(w.rows(), rows, "memory untouched");
    assert_eq!(w.host.journal_len(), journal, "journal rolled back");
    assert_eq!(w.host.service_log.len(), lines, "nothing logged");
    // Nothing was acknowledged, so the retry is stored.
    assert_eq!(
        w.ingest(vec![disconnect(2, 1, 5, Some(0), None), web(3, 1, None)]),
        [EventOutcome::Stored, EventOutcome::Stored]
    );
    assert_eq!(w.rows().len(), 2);
}
