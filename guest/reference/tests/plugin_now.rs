//! Plugin flows that need no row store: refusals and a failing journal append. (Flows that
//! go through the row store live in `plugin_flows.rs`.)

use connlog_plugin_sdk::ConnectionLogPlugin;
use connlog_plugin_sdk::model::*;
use connlog_plugin_sdk::testing::fixtures::*;
use connlog_plugin_sdk::testing::{JournalOp, MemoryHost};
use connlog_reference::ReferencePlugin;

#[test]
fn refused_events_touch_neither_journal_nor_service_log() {
    let mut plugin = ReferencePlugin::new();
    plugin
        .configure(PluginConfig::log_formats(&[
            LogFormat::Json,
            LogFormat::Human,
        ]))
        .expect("no settings");
    let mut host = MemoryHost::at(T0);
    let mut no_cid = ssh_connect(uuid(1), T0, uuid(100));
    no_cid.connection_id = None;
    let mut web_with_cid = workspace_app(uuid(2), T0, None, 200);
    web_with_cid.connection_id = Some(uuid(9));
    let mut nil_id = ssh_connect(Uuid::nil(), T0, uuid(100));
    nil_id.agent_name = "main".into();
    let outcomes = plugin
        .ingest_batch(&mut host, vec![no_cid, web_with_cid, nil_id])
        .unwrap();
    let fields: Vec<String> = outcomes
        .iter()
        .map(|o| match o {
            EventOutcome::Rejected(v) => v.field.clone(),
            other => panic!("expected a refusal, got {other:?}"),
        })
        .collect();
    assert_eq!(fields, ["ConnectionID", "ConnectionID", "ID"]);
    assert_eq!(host.calls().append, 0, "nothing to append");
    assert_eq!(host.journal_len(), 0);
    assert!(host.service_log.is_empty());
}

#[test]
fn a_failing_append_stores_nothing_and_logs_nothing() {
    let mut plugin = ReferencePlugin::new();
    plugin
        .configure(PluginConfig::log_formats(&[LogFormat::Json]))
        .expect("no settings");
    let mut host = MemoryHost::at(T0);
    host.fail_next(JournalOp::Append);
    let result = host.transaction(|h| {
        plugin.ingest_batch(
            h,
            vec![
                ssh_connect(uuid(1), T0, uuid(100)),
                workspace_app(uuid(2), T0, None, 200),
            ],
        )
    });
    assert!(matches!(result, Err(JournalError::Unavailable(_))));
    assert_eq!(host.journal_len(), 0);
    assert!(host.service_log.is_empty());
    assert_eq!(host.calls().session_events, 0);
}

#[test]
fn retention_zero_purges_nothing_and_reports_no_cutoff() {
    let mut plugin = ReferencePlugin::new();
    let mut host = MemoryHost::at(T0);
    plugin.set_retention(None);
    assert_eq!(
        plugin.purge(&mut host, T0).unwrap(),
        PurgeReport {
            purged: 0,
            cutoff: None
        }
    );
    assert_eq!(host.calls().forget, 0);
}
