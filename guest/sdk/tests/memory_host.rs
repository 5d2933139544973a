//! The in-memory host itself: journal, sessions, transactions, failure injection,
//! snapshots and directory. Runs without the rest of the plugin.

use connlog_plugin_sdk::model::*;
use connlog_plugin_sdk::testing::fixtures::*;
use connlog_plugin_sdk::testing::{JournalOp, MemoryHost};
use connlog_plugin_sdk::{HostClock, HostDirectory, HostJournal, HostServiceLog};

fn key(cid: Uuid) -> SessionKey {
    SessionKey {
        connection_id: cid,
        workspace_id: uuid_in(3, 1),
        agent_name: "main".into(),
    }
}

#[test]
fn append_reports_new_events_and_ignores_replays() {
    let mut host = MemoryHost::new();
    let c = ssh_connect(uuid(1), T0, uuid(100));
    let d = ssh_disconnect(uuid(2), T0 + SECOND, uuid(100), Some(0), None);
    assert_eq!(host.append(&[c.clone(), d.clone()]).unwrap(), [true, true]);
    let mut changed = c.clone();
    changed.agent_name = "other".into();
    assert_eq!(host.append(&[changed, d]).unwrap(), [false, false]);
    assert_eq!(host.journal_len(), 2);
    assert_eq!(
        host.journal_event(uuid(1)),
        Some(&c),
        "a replay never overwrites"
    );
}

#[test]
fn append_owned_answers_as_append_and_hands_the_events_back() {
    let mut host = MemoryHost::new();
    let c = ssh_connect(uuid(1), T0, uuid(100));
    let d = ssh_disconnect(uuid(2), T0 + SECOND, uuid(100), Some(0), None);
    host.append(std::slice::from_ref(&c)).unwrap();
    let (fresh, events) = host.append_owned(vec![c.clone(), d.clone()]).unwrap();
    assert_eq!(fresh, [false, true]);
    assert_eq!(events, [c, d]);
    assert_eq!(host.journal_len(), 2);
}

#[test]
fn session_events_answer_each_key_in_order() {
    let mut host = MemoryHost::new();
    let web = workspace_app(uuid(9), T0, None, 200);
    host.append(&[
        ssh_connect(uuid(1), T0, uuid(100)),
        ssh_connect(uuid(2), T0, uuid(200)),
        ssh_disconnect(uuid(3), T0, uuid(100), None, None),
        web,
    ])
    .unwrap();
    let answer = host
        .session_events(&[key(uuid(200)), key(uuid(300)), key(uuid(100))])
        .unwrap();
    let ids: Vec<Vec<Uuid>> = answer
        .iter()
        .map(|s| s.iter().map(|e| e.id).collect())
        .collect();
    assert_eq!(ids, vec![vec![uuid(2)], vec![], vec![uuid(1), uuid(3)]]);
}

#[test]
fn forget_removes_single_events_and_whole_sessions() {
    let mut host = MemoryHost::new();
    host.append(&[
        ssh_connect(uuid(1), T0, uuid(100)),
        ssh_disconnect(uuid(2), T0, uuid(100), None, None),
        ssh_connect(uuid(3), T0, uuid(200)),
        workspace_app(uuid(4), T0, None, 200),
    ])
    .unwrap();
    let removed = host
        .forget(&[
            RowOrigin::Session(key(uuid(100))),
            RowOrigin::SingleEvent(uuid(4)),
            RowOrigin::SingleEvent(uuid(77)),
        ])
        .unwrap();
    assert_eq!(removed, 3);
    assert_eq!(
        host.journal_events()
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        [uuid(3)]
    );
    assert_eq!(
        host.session_events(&[key(uuid(100))]).unwrap(),
        vec![vec![]]
    );
    // A forgotten event can be appended again.
    assert_eq!(
        host.append(&[workspace_app(uuid(4), T0, None, 200)])
            .unwrap(),
        [true]
    );
}

#[test]
fn injected_failures_hit_the_next_call_only_and_change_nothing() {
    let mut host = MemoryHost::new();
    host.fail_next(JournalOp::Append);
    let e = ssh_connect(uuid(1), T0, uuid(100));
    assert!(matches!(
        host.append(std::slice::from_ref(&e)),
        Err(JournalError::Unavailable(_))
    ));
    assert_eq!(host.journal_len(), 0);
    assert_eq!(host.append(&[e]).unwrap(), [true]);
    host.fail_next(JournalOp::SessionEvents);
    host.fail_next(JournalOp::Forget);
    assert!(host.session_events(&[key(uuid(100))]).is_err());
    assert!(host.forget(&[RowOrigin::Session(key(uuid(100)))]).is_err());
    assert_eq!(host.journal_len(), 1);
    let calls = host.calls();
    assert_eq!(
        (calls.append, calls.session_events, calls.forget),
        (2, 1, 1)
    );
}

#[test]
fn a_failed_transaction_rolls_the_journal_back() {
    let mut host = MemoryHost::new();
    host.append(&[
        ssh_connect(uuid(1), T0, uuid(100)),
        workspace_app(uuid(2), T0, None, 200),
    ])
    .unwrap();
    let result: Result<(), JournalError> = host.transaction(|h| {
        h.append(&[ssh_connect(uuid(3), T0, uuid(300))])?;
        h.forget(&[
            RowOrigin::Session(key(uuid(100))),
            RowOrigin::SingleEvent(uuid(2)),
        ])?;
        Err(JournalError::Unavailable("later step failed".into()))
    });
    assert!(result.is_err());
    let ids: Vec<Uuid> = host.journal_events().iter().map(|e| e.id).collect();
    assert_eq!(ids, [uuid(1), uuid(2)]);
    assert_eq!(
        host.session_events(&[key(uuid(100)), key(uuid(300))])
            .unwrap()[1],
        vec![]
    );

    let ok: Result<(), JournalError> =
        host.transaction(|h| h.append(&[ssh_connect(uuid(3), T0, uuid(300))]).map(drop));
    assert!(ok.is_ok());
    assert_eq!(host.journal_len(), 3);
}

#[test]
fn snapshots_are_written_and_read_in_chunks() {
    let mut host = MemoryHost::new();
    host.begin_snapshot_write();
    host.write_snapshot_chunk(b"ab").unwrap();
    host.write_snapshot_chunk(b"c").unwrap();
    host.begin_snapshot_read();
    assert_eq!(host.read_snapshot_chunk().unwrap(), Some(b"ab".to_vec()));
    assert_eq!(host.read_snapshot_chunk().unwrap(), Some(b"c".to_vec()));
    assert_eq!(host.read_snapshot_chunk().unwrap(), None);
    host.begin_snapshot_write();
    assert_eq!(host.snapshot_chunks().len(), 0);
}

#[test]
fn clock_directory_and_service_log() {
    let mut host = MemoryHost::at(T0);
    host.advance(SECOND);
    assert_eq!(host.now(), T0 + SECOND);
    let org = uuid_in(1, 1);
    host.add_organization(organization(org, "Coder"));
    let mut deleted = user(uuid(2), "Bob", &[]);
    deleted.deleted = true;
    host.add_user(user(uuid(1), "alice", &["auditor"]))
        .add_user(deleted);
    host.grant_organization_roles(uuid(2), org, &["organization-auditor"]);
    assert_eq!(host.organization_by_name("coder").map(|o| o.id), Some(org));
    assert_eq!(
        host.organization_by_id(org).map(|o| o.name),
        Some("Coder".into())
    );
    assert_eq!(
        host.users_by_username("BOB").len(),
        1,
        "case-insensitive, deleted included"
    );
    assert_eq!(host.users_by_email("alice@example.com").len(), 1);
    assert_eq!(host.users_by_email("ALICE@example.com").len(), 0, "exact");
    let actor = host.actor(uuid(2)).unwrap();
    assert_eq!(
        actor.organization_roles,
        vec![(org, vec!["organization-auditor".to_string()])]
    );
    assert_eq!(host.actor(uuid(1)).unwrap().site_roles, ["auditor"]);
    assert_eq!(host.actor(uuid(3)), None);

    host.write_service_log(vec![LogLine {
        format: LogFormat::Json,
        line: "{}".into(),
    }]);
    assert_eq!(host.take_service_log().len(), 1);
    assert!(host.service_log.is_empty());
}
