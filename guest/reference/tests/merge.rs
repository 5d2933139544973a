//! `merge::event_row` and `merge::session_row`: the table of which values a merged row
//! keeps (see `merge`), and its independence of order and duplication. Runs without the rest
//! of the plugin.

use connlog_plugin_sdk::model::*;
use connlog_plugin_sdk::testing::fixtures::*;
use connlog_reference::merge::{Closing, Groups, event_row, session_row};

const S: i64 = SECOND;

fn cid() -> Uuid {
    uuid_in(10, 1)
}

fn connect(n: u64, t: i64) -> ConnectionEvent {
    ssh_connect(uuid_in(20, n), T0 + t * S, cid())
}

fn disconnect(n: u64, t: i64, code: Option<i32>, reason: Option<&str>) -> ConnectionEvent {
    ssh_disconnect(uuid_in(20, n), T0 + t * S, cid(), code, reason)
}

/// Every permutation of `events`, each also with its first event duplicated.
fn every_order(events: &[ConnectionEvent]) -> Vec<Vec<ConnectionEvent>> {
    fn permute(
        rest: Vec<ConnectionEvent>,
        prefix: Vec<ConnectionEvent>,
        out: &mut Vec<Vec<ConnectionEvent>>,
    ) {
        if rest.is_empty() {
            let mut dup = prefix.clone();
            dup.push(prefix[0].clone());
            out.push(prefix);
            out.push(dup);
            return;
        }
        for i in 0..rest.len() {
            let mut r = rest.clone();
            let e = r.remove(i);
            let mut p = prefix.clone();
            p.push(e);
            permute(r, p, out);
        }
    }
    let mut out = Vec::new();
    permute(events.to_vec(), Vec::new(), &mut out);
    out
}

fn fold_all_orders(events: &[ConnectionEvent]) -> ConnectionLog {
    let reference = session_row(&event_refs(events)).into_owned();
    for order in every_order(events) {
        assert_eq!(
            session_row(&event_refs(&order)).into_owned(),
            reference,
            "order {:?}",
            order.iter().map(|e| e.id).collect::<Vec<_>>()
        );
    }
    reference
}

#[test]
fn a_web_row_is_its_event() {
    let e = workspace_app(uuid(7), T0, Some(uuid(8)), 403);
    let row = event_row(&e.as_event_ref()).into_owned();
    assert_eq!(
        row,
        ConnectionLog {
            id: e.id,
            connect_time: e.time,
            organization_id: e.organization_id,
            workspace_owner_id: e.workspace_owner_id,
            workspace_id: e.workspace_id,
            workspace_name: e.workspace_name.clone(),
            agent_name: e.agent_name.clone(),
            connection_method: ConnectionMethod::WorkspaceApp,
            code: Some(403),
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
            user_id: Some(uuid(8)),
            app_name_or_port: e.app_name_or_port.clone(),
            connection_id: None,
            disconnect_time: None,
            disconnect_reason: None,
            client_session_id: None,
        }
    );
    assert_eq!(SessionKey::of(&e), None, "web events never merge");
}

#[test]
fn session_key_is_the_triple() {
    let e = connect(1, 0);
    assert_eq!(
        SessionKey::of(&e),
        Some(SessionKey {
            connection_id: cid(),
            workspace_id: e.workspace_id,
            agent_name: "main".into()
        })
    );
}

#[test]
fn a_lone_connect_is_ongoing() {
    let c = connect(1, 0);
    let row = fold_all_orders(std::slice::from_ref(&c));
    assert_eq!(row.id, c.id);
    assert_eq!(row.connect_time, c.time);
    assert_eq!(
        (row.disconnect_time, row.code, row.disconnect_reason),
        (None, None, None)
    );
    assert_eq!(row.connection_id, Some(cid()));
}

#[test]
fn connect_then_disconnect() {
    let c = connect(1, 0);
    let d = disconnect(2, 60, Some(0), Some("client closed"));
    let row = fold_all_orders(&[c.clone(), d]);
    assert_eq!(row.id, c.id);
    assert_eq!(row.connect_time, T0);
    assert_eq!(row.disconnect_time, Some(T0 + 60 * S));
    assert_eq!(row.code, Some(0));
    assert_eq!(row.disconnect_reason.as_deref(), Some("client closed"));
}

#[test]
fn a_lone_disconnect_is_a_complete_row() {
    let d = disconnect(2, 60, Some(1), Some("broken pipe"));
    let row = fold_all_orders(std::slice::from_ref(&d));
    assert_eq!(row.id, d.id);
    assert_eq!(row.connect_time, d.time);
    assert_eq!(row.disconnect_time, Some(d.time));
    assert_eq!(row.code, Some(1));
}

#[test]
fn the_earliest_connect_defines_the_row() {
    let mut early = connect(9, 0);
    early.ip = Some("10.0.0.1".into());
    let mut late = connect(1, 5);
    late.ip = Some("10.0.0.2".into());
    late.connection_method = ConnectionMethod::ReconnectingPty;
    late.app_name_or_port = Some("vscode".into());
    late.client_session_id = Some("0123456789abcdef0123456789abcdef".into());
    let row = fold_all_orders(&[early.clone(), late]);
    assert_eq!(
        (
            row.id,
            row.ip.as_deref(),
            row.connection_method,
            row.app_name_or_port,
            row.client_session_id
        ),
        (
            early.id,
            Some("10.0.0.1"),
            ConnectionMethod::Ssh,
            None,
            None
        )
    );
}

#[test]
fn ties_in_time_go_to_the_smallest_id() {
    let mut a = connect(1, 0);
    a.ip = Some("10.0.0.1".into());
    let mut b = connect(2, 0);
    b.ip = Some("10.0.0.2".into());
    let row = fold_all_orders(&[b, a.clone()]);
    assert_eq!((row.id, row.ip.as_deref()), (a.id, Some("10.0.0.1")));

    let d1 = disconnect(3, 9, Some(1), Some("first"));
    let d2 = disconnect(4, 9, Some(2), Some("second"));
    let row = fold_all_orders(&[d2, d1.clone()]);
    assert_eq!(
        (row.id, row.code, row.disconnect_reason.as_deref()),
        (d1.id, Some(1), Some("first"))
    );
}

#[test]
fn a_connect_defines_the_row_even_after_its_disconnect() {
    // Clock skew: the disconnect is stamped before the connect.
    let d = disconnect(1, 0, Some(0), None);
    let mut c = connect(2, 30);
    c.ip = Some("10.9.9.9".into());
    let row = fold_all_orders(&[d.clone(), c.clone()]);
    assert_eq!(row.id, c.id);
    assert_eq!(row.ip.as_deref(), Some("10.9.9.9"));
    assert_eq!(
        row.connect_time, d.time,
        "connect_time is the earliest time of all events"
    );
    assert_eq!(row.disconnect_time, Some(d.time));
    assert!(row.connect_time <= row.disconnect_time.unwrap());
}

#[test]
fn disconnect_fields_come_each_from_the_earliest_disconnect_that_has_one() {
    let c = connect(1, 0);
    let d1 = disconnect(2, 10, None, None);
    let d2 = disconnect(3, 20, None, Some("reason from the second"));
    let d3 = disconnect(4, 30, Some(7), Some("reason from the third"));
    let d4 = disconnect(5, 40, Some(9), None);
    let row = fold_all_orders(&[c, d1, d2, d3, d4]);
    assert_eq!(row.disconnect_time, Some(T0 + 10 * S));
    assert_eq!(
        row.disconnect_reason.as_deref(),
        Some("reason from the second")
    );
    assert_eq!(row.code, Some(7));
}

#[test]
fn exit_code_zero_is_a_value() {
    let row = fold_all_orders(&[
        connect(1, 0),
        disconnect(2, 10, Some(0), None),
        disconnect(3, 20, Some(5), None),
    ]);
    assert_eq!(row.code, Some(0));
}

#[test]
fn a_connects_code_and_reason_are_never_read() {
    let mut c = connect(1, 0);
    c.code = Some(200);
    c.disconnect_reason = Some("from a connect".into());
    let row = fold_all_orders(std::slice::from_ref(&c));
    assert_eq!((row.code, row.disconnect_reason), (None, None));
    let row = fold_all_orders(&[c, disconnect(2, 5, None, None)]);
    assert_eq!((row.code, row.disconnect_reason), (None, None));
}

#[test]
fn connect_time_is_the_minimum_over_everything() {
    let events = [
        connect(1, 50),
        disconnect(2, -20, None, None),
        connect(3, 10),
        disconnect(4, 100, None, None),
    ];
    let row = fold_all_orders(&events);
    assert_eq!(row.connect_time, T0 - 20 * S);
    assert_eq!(row.id, uuid_in(20, 3), "earliest connect");
    assert_eq!(row.disconnect_time, Some(T0 - 20 * S));
}

#[test]
#[should_panic(expected = "at least one event")]
fn folding_nothing_is_a_bug() {
    session_row(&[]);
}

#[test]
fn a_batch_groups_by_session_key_and_never_groups_web_events() {
    let other_agent = |mut e: ConnectionEvent| {
        e.agent_name = "dev".into();
        e
    };
    let web = workspace_app(uuid_in(30, 1), T0, None, 200);
    let batch = vec![
        connect(1, 0),
        web.clone(),
        other_agent(connect(2, 5)),
        disconnect(3, 60, Some(0), Some("client disconnected")),
        web.clone(), // the same web event twice: still two rows' worth of groups
        other_agent(disconnect(4, 90, Some(1), None)),
    ];
    let refs = event_refs(&batch);
    let groups = Groups::new(&refs);
    assert_eq!(
        groups.len(),
        4,
        "main's session, dev's session and two web events"
    );
    let firsts: Vec<Uuid> = groups.firsts().map(|e| e.id).collect();
    assert_eq!(firsts, [batch[0].id, web.id, batch[2].id, web.id]);

    let none: &[EventRef] = &[];
    let web = web.as_event_ref();
    assert_eq!(
        groups.row(0, none),
        session_row([&refs[0], &refs[3]]),
        "main's events only"
    );
    assert_eq!(groups.row(1, none), event_row(&web));
    assert_eq!(groups.row(2, none), session_row([&refs[2], &refs[5]]));
    assert_eq!(groups.row(3, none), event_row(&web));

    // A session the journal already holds merges with its journaled events.
    let journaled = [disconnect(5, 30, Some(255), Some("timeout"))];
    let journaled = event_refs(&journaled);
    let merged = groups.row(0, &journaled);
    assert_eq!(merged, session_row([&refs[0], &refs[3], &journaled[0]]));
    assert_eq!(
        merged.disconnect_time,
        Some(T0 + 30 * S),
        "the earlier disconnect wins"
    );
}

/// A group of disconnects alone decides what `RowStore::close` changes in an ongoing row:
/// what `session_row` takes from them beside the row's connect. Any other group decides
/// nothing on its own.
#[test]
fn a_group_of_disconnects_alone_closes_an_ongoing_row_as_a_fold_would() {
    let web = workspace_app(uuid_in(30, 1), T0, None, 200);
    let cases: Vec<(&str, Vec<ConnectionEvent>, bool)> = vec![
        (
            "one disconnect",
            vec![disconnect(2, 60, Some(0), Some("closed"))],
            true,
        ),
        (
            "the earliest with a reason, the earliest with a code",
            vec![
                disconnect(2, 90, Some(1), Some("late")),
                disconnect(3, 60, None, Some("")),
                disconnect(4, 70, Some(255), None),
                disconnect(5, 80, None, Some("timeout")),
            ],
            true,
        ),
        (
            "a disconnect before the connect moves the connect time",
            vec![disconnect(2, -5, None, None)],
            true,
        ),
        (
            "a connect among them",
            vec![disconnect(2, 60, None, None), connect(3, 1)],
            false,
        ),
        ("a connect alone", vec![connect(3, 1)], false),
        ("a web event", vec![web], false),
    ];
    let ongoing = connect(1, 0);
    let its_connect = ongoing.as_event_ref();
    for (what, batch, closes) in cases {
        let refs = event_refs(&batch);
        let groups = Groups::new(&refs);
        assert_eq!(groups.len(), 1, "{what}");
        let closing = groups.only_disconnects(0);
        assert_eq!(closing.is_some(), closes, "{what}");
        let Some(Closing { time, reason, code }) = closing else {
            continue;
        };
        let folded = session_row(refs.iter().chain([&its_connect]));
        // What `RowStore::close` writes over the ongoing row.
        let closed = ConnectionLog {
            connect_time: ongoing.time.min(time),
            disconnect_time: Some(time),
            disconnect_reason: reason,
            code,
            ..session_row([&its_connect])
        };
        assert_eq!(closed, folded, "{what}");
    }
}
