//! Storage failures reach the caller and store nothing (an improvement on Coder, whose
//! batcher drops events after its retries). Natively only: failures are injected with
//! `MemoryHost::fail_next`, which a real SQLite file has no honest equivalent of. The rest
//! of Coder's edge cases run through the real host in the conformance kit
//! (`connlog conformance`).

mod common;

use common::*;
use connlog_plugin_sdk::ConnectionLogPlugin;
use connlog_plugin_sdk::model::*;
use connlog_plugin_sdk::testing::JournalOp;

#[test]
fn storage_errors_reach_the_caller_and_store_nothing() {
    let mut w = World::new();
    w.plugin
        .configure(PluginConfig::log_formats(&[LogFormat::Json]))
        .expect("no settings");
    // A disconnected session: its next event reads the session back.
    w.ingest(vec![connect(1, 1, 0), disconnect(4, 1, 3, None, None)]);
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
