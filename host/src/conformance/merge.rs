//! Ingest and merge: which row a set of events makes, whatever their order, batching or
//! repetition; replays by `ID`; which events are refused.
//!
//! Each table case runs four ways that must agree: the batches as listed, all events in one
//! batch, every event alone in reverse order, and a restart that rebuilds the rows from the
//! journal. Sending every event again must then be reported as duplicates and change
//! nothing. Rows merge only on `(connection_id, workspace_id, agent_name)`; "earliest" is
//! the smallest time, then the smallest id.

use super::fixtures::*;
use super::{Case, Check, Harness, only, same_ids, same_rows};
use crate::model::*;

struct Table {
    name: &'static str,
    batches: fn() -> Vec<Vec<ConnectionEvent>>,
    /// Checks the rows; the harness says what the plugin is expected to store of IPs and
    /// user agents.
    check: fn(&Harness, &[ConnectionLog]) -> Check,
}

pub fn cases() -> Vec<Case> {
    let plain = table().into_iter().map(|entry| (None, entry));
    let current = current_table()
        .into_iter()
        .map(|(needs, e)| (Some(needs), e));
    let mut cases: Vec<Case> = plain
        .chain(current)
        .map(|(needs, entry)| {
            let name = entry.name;
            Case::boxed("merge", name, move |h| four_ways(h, &entry)).needing(needs)
        })
        .collect();
    cases.push(Case::new(
        "merge",
        "every order of one session's events gives the same row",
        every_order,
    ));
    cases.push(Case::new(
        "merge",
        "an event id already stored is a replay that changes nothing",
        replays_by_id,
    ));
    cases.push(Case::new(
        "ingest",
        "refused events are named by field and never affect their neighbours",
        refusals,
    ));
    cases
}

fn four_ways(h: &mut Harness, case: &Table) -> Check {
    let batches = (case.batches)();
    for batch in &batches {
        h.store(batch.clone())?;
    }
    let as_listed = h.rows()?;
    (case.check)(h, &as_listed)?;

    h.restart()?;
    same_rows(
        &h.rows()?,
        &as_listed,
        "after a restart replaying the journal",
    )?;

    let all: Vec<ConnectionEvent> = batches.iter().flatten().cloned().collect();
    let mut one_batch = h.fresh()?;
    one_batch.ingest(all.clone())?;
    same_rows(&one_batch.rows()?, &as_listed, "all in one batch")?;
    drop(one_batch);

    let mut reversed = h.fresh()?;
    for event in all.iter().rev() {
        reversed.ingest(vec![event.clone()])?;
    }
    same_rows(&reversed.rows()?, &as_listed, "one by one, reversed")?;
    let outcomes = reversed.ingest(all)?;
    ensure!(
        outcomes.iter().all(|o| *o == EventOutcome::Duplicate),
        "sent again, events were not all duplicates: {}",
        super::short(&outcomes)
    );
    same_rows(
        &reversed.rows()?,
        &as_listed,
        "after sending every event again",
    )
}

fn row_of(rows: &[ConnectionLog], session: u64) -> Result<&ConnectionLog, String> {
    rows.iter()
        .find(|r| r.connection_id == Some(cid(session)))
        .ok_or_else(|| format!("no row for session {}", id_name(cid(session))))
}

fn table() -> Vec<Table> {
    vec![
        Table {
            name: "connect then disconnect is one completed row",
            batches: || {
                vec![
                    vec![connect(1, 1, 0)],
                    vec![disconnect(2, 1, 60, Some(0), Some("client closed"))],
                ]
            },
            check: |_, rows| {
                let r = only(rows)?;
                ensure_eq!((r.id, r.connect_time), (eid(1), T0), "id and connect time");
                ensure_eq!(r.disconnect_time, Some(T0 + 60 * S), "disconnect time");
                ensure_eq!(
                    (r.code, r.disconnect_reason.as_deref()),
                    (Some(0), Some("client closed")),
                    "code and reason"
                );
                Ok(())
            },
        },
        Table {
            name: "connect and disconnect in one batch are one row",
            batches: || {
                vec![vec![
                    connect(1, 1, 0),
                    disconnect(2, 1, 60, Some(1), Some("x")),
                ]]
            },
            check: |_, rows| {
                let r = only(rows)?;
                ensure_eq!(
                    (r.disconnect_time, r.code),
                    (Some(T0 + 60 * S), Some(1)),
                    "disconnect time and code"
                );
                Ok(())
            },
        },
        Table {
            name: "a lone connect is an ongoing row",
            batches: || vec![vec![connect(1, 1, 0)]],
            check: |_, rows| {
                let r = only(rows)?;
                ensure_eq!(
                    (r.disconnect_time, r.code, r.disconnect_reason.as_deref()),
                    (None, None, None),
                    "disconnect fields"
                );
                ensure_eq!(r.connection_id, Some(cid(1)), "connection id");
                Ok(())
            },
        },
        Table {
            name: "a second, later connect with another IP changes nothing",
            batches: || {
                vec![
                    vec![connect(1, 1, 0).ip("10.0.0.1")],
                    vec![connect(2, 1, 30).ip("10.0.2.2")],
                ]
            },
            check: |h, rows| {
                let r = only(rows)?;
                ensure_eq!(
                    (r.id, r.connect_time, r.ip.clone()),
                    (eid(1), T0, h.expect_ip(Some("10.0.0.1"))),
                    "id, connect time and IP"
                );
                Ok(())
            },
        },
        Table {
            name: "a disconnect without a connect is a complete row at its own time",
            batches: || vec![vec![disconnect(1, 1, 60, Some(2), Some("lost"))]],
            check: |_, rows| {
                let r = only(rows)?;
                ensure_eq!(
                    (r.id, r.connect_time, r.disconnect_time),
                    (eid(1), T0 + 60 * S, Some(T0 + 60 * S)),
                    "id and times"
                );
                ensure_eq!(
                    (r.code, r.disconnect_reason.as_deref()),
                    (Some(2), Some("lost")),
                    "code and reason"
                );
                Ok(())
            },
        },
        Table {
            name: "an earlier connect arriving after the disconnect defines the row and its connect time",
            batches: || {
                vec![
                    vec![disconnect(1, 1, 60, Some(0), None)],
                    vec![connect(2, 1, 0).ip("10.1.1.1")],
                ]
            },
            check: |h, rows| {
                let r = only(rows)?;
                ensure_eq!(
                    (r.connect_time, r.disconnect_time),
                    (T0, Some(T0 + 60 * S)),
                    "times"
                );
                ensure_eq!(
                    (r.id, r.ip.clone()),
                    (eid(2), h.expect_ip(Some("10.1.1.1"))),
                    "the connect's id and IP"
                );
                Ok(())
            },
        },
        Table {
            name: "a second disconnect never overwrites the first's time, reason or code",
            batches: || {
                vec![
                    vec![connect(1, 1, 0)],
                    vec![disconnect(2, 1, 60, Some(1), Some("first"))],
                    vec![disconnect(3, 1, 90, Some(2), Some("second"))],
                ]
            },
            check: |_, rows| {
                let r = only(rows)?;
                ensure_eq!(r.disconnect_time, Some(T0 + 60 * S), "disconnect time");
                ensure_eq!(
                    (r.code, r.disconnect_reason.as_deref()),
                    (Some(1), Some("first")),
                    "code and reason"
                );
                Ok(())
            },
        },
        Table {
            name: "each disconnect field is filled once, independently of the others",
            batches: || {
                vec![
                    vec![connect(1, 1, 0)],
                    vec![disconnect(2, 1, 60, None, None)],
                    vec![disconnect(3, 1, 90, Some(4), Some("late reason"))],
                ]
            },
            check: |_, rows| {
                let r = only(rows)?;
                ensure_eq!(
                    r.disconnect_time,
                    Some(T0 + 60 * S),
                    "the first disconnect time"
                );
                ensure_eq!(
                    (r.code, r.disconnect_reason.as_deref()),
                    (Some(4), Some("late reason")),
                    "code and reason from the later disconnect"
                );
                Ok(())
            },
        },
        Table {
            name: "a connect after the disconnect never clears the disconnect fields",
            batches: || {
                vec![
                    vec![disconnect(1, 1, 60, Some(3), Some("gone"))],
                    vec![connect(2, 1, 90)],
                ]
            },
            check: |_, rows| {
                let r = only(rows)?;
                ensure_eq!(r.disconnect_time, Some(T0 + 60 * S), "disconnect time");
                ensure_eq!(
                    (r.code, r.disconnect_reason.as_deref()),
                    (Some(3), Some("gone")),
                    "code and reason"
                );
                ensure_eq!(
                    r.connect_time,
                    T0 + 60 * S,
                    "the earlier time as connect time"
                );
                Ok(())
            },
        },
        Table {
            name: "exit code 0 is kept as a value",
            batches: || {
                vec![
                    vec![connect(1, 1, 0)],
                    vec![disconnect(2, 1, 1, Some(0), None)],
                ]
            },
            check: |_, rows| {
                ensure_eq!(only(rows)?.code, Some(0), "code");
                Ok(())
            },
        },
        Table {
            name: "a disconnect without a code stores none",
            batches: || {
                vec![
                    vec![connect(1, 1, 0)],
                    vec![disconnect(2, 1, 1, None, None)],
                ]
            },
            check: |_, rows| {
                ensure_eq!(only(rows)?.code, None, "code");
                Ok(())
            },
        },
        Table {
            name: "a connect never stores a code, even when the agent sent one",
            batches: || vec![vec![connect(1, 1, 0).with(|e| e.code = Some(200))]],
            check: |_, rows| {
                ensure_eq!(only(rows)?.code, None, "code");
                Ok(())
            },
        },
        Table {
            name: "a connect never stores a disconnect reason",
            batches: || {
                vec![vec![
                    connect(1, 1, 0).with(|e| e.disconnect_reason = Some("odd".into())),
                ]]
            },
            check: |_, rows| {
                ensure_eq!(only(rows)?.disconnect_reason, None, "reason");
                Ok(())
            },
        },
        Table {
            name: "two identical web events are two rows",
            batches: || vec![vec![web(1, 0, Some(bob())), web(2, 0, Some(bob()))]],
            check: |_, rows| {
                ensure_eq!(rows.len(), 2, "rows");
                ensure!(
                    rows.iter()
                        .all(|r| r.connection_id.is_none() && r.disconnect_time.is_none()),
                    "a web row has a connection id or a disconnect time"
                );
                ensure_eq!(
                    rows.iter().map(|r| r.code).collect::<Vec<_>>(),
                    [Some(200), Some(200)],
                    "status codes"
                );
                Ok(())
            },
        },
        Table {
            name: "disconnect then an earlier connect in one batch corrects the connect time",
            batches: || {
                vec![vec![
                    disconnect(1, 1, 60, Some(0), Some("bye")),
                    connect(2, 1, 0),
                ]]
            },
            check: |_, rows| {
                let r = only(rows)?;
                ensure_eq!(
                    (r.id, r.connect_time, r.disconnect_time),
                    (eid(2), T0, Some(T0 + 60 * S)),
                    "id and times"
                );
                Ok(())
            },
        },
        Table {
            name: "disconnect then a later connect in one batch keeps reason and code",
            batches: || {
                vec![vec![
                    disconnect(1, 1, 60, Some(130), Some("signal")),
                    connect(2, 1, 90),
                ]]
            },
            check: |_, rows| {
                let r = only(rows)?;
                ensure_eq!(
                    (r.code, r.disconnect_reason.as_deref()),
                    (Some(130), Some("signal")),
                    "code and reason"
                );
                ensure_eq!(r.disconnect_time, Some(T0 + 60 * S), "disconnect time");
                Ok(())
            },
        },
        Table {
            name: "one connection id in two workspaces in one batch is two rows",
            batches: || {
                vec![vec![
                    connect(1, 1, 0),
                    connect(2, 1, 5).in_workspace(uuid_in(3, 2)),
                ]]
            },
            check: |_, rows| {
                let mut workspaces: Vec<Uuid> = rows.iter().map(|r| r.workspace_id).collect();
                workspaces.sort();
                same_ids(&workspaces, &[workspace(), uuid_in(3, 2)], "workspaces")
            },
        },
        Table {
            name: "one connection id with two agents is two rows",
            batches: || {
                vec![
                    vec![connect(1, 1, 0)],
                    vec![disconnect(2, 1, 5, Some(0), None).agent("other")],
                ]
            },
            check: |_, rows| {
                ensure_eq!(rows.len(), 2, "rows");
                let main = rows
                    .iter()
                    .find(|r| r.agent_name == "main")
                    .ok_or("no row for agent main")?;
                ensure_eq!(
                    main.disconnect_time,
                    None,
                    "main's row (the other agent's disconnect must not close it)"
                );
                Ok(())
            },
        },
        Table {
            name: "later events never change method, app, IP, names, organization, owner or id",
            batches: || {
                vec![
                    vec![connect(1, 1, 0).app("cursor")],
                    vec![
                        connect(2, 1, 10)
                            .ip("10.9.9.9")
                            .app("vscode")
                            .in_org(other_org())
                            .with(|e| e.workspace_name = "renamed".into()),
                        disconnect(3, 1, 20, Some(0), None)
                            .ip("10.8.8.8")
                            .method(ConnectionMethod::ReconnectingPty),
                    ],
                ]
            },
            check: |h, rows| {
                let r = only(rows)?;
                ensure_eq!(
                    (
                        r.id,
                        r.connection_method,
                        r.app_name_or_port.as_deref(),
                        r.ip.clone()
                    ),
                    (
                        eid(1),
                        ConnectionMethod::Ssh,
                        Some("cursor"),
                        h.expect_ip(Some("fd7a:115c:a1e0::1"))
                    ),
                    "id, method, app and IP"
                );
                ensure_eq!(
                    (r.organization_id, r.workspace_name.as_str()),
                    (org(), "dev"),
                    "organization and workspace name"
                );
                Ok(())
            },
        },
        Table {
            name: "the earliest connect defines the row whatever the arrival order",
            batches: || {
                vec![
                    vec![connect(2, 1, 10).ip("10.0.2.2")],
                    vec![connect(1, 1, 0).ip("10.0.0.1")],
                ]
            },
            check: |h, rows| {
                let r = only(rows)?;
                ensure_eq!(
                    (r.id, r.connect_time, r.ip.clone()),
                    (eid(1), T0, h.expect_ip(Some("10.0.0.1"))),
                    "id, connect time and IP"
                );
                Ok(())
            },
        },
        Table {
            name: "with skewed clocks the connect time never exceeds the disconnect time",
            batches: || {
                vec![
                    vec![connect(1, 1, 100)],
                    vec![disconnect(2, 1, 40, Some(0), None)],
                ]
            },
            check: |_, rows| {
                let r = only(rows)?;
                ensure_eq!(
                    (r.connect_time, r.disconnect_time),
                    (T0 + 40 * S, Some(T0 + 40 * S)),
                    "times"
                );
                ensure_eq!(r.id, eid(1), "id (the connect's)");
                Ok(())
            },
        },
        Table {
            name: "localhost becomes 127.0.0.1 and an IP that does not parse is absent",
            batches: || {
                vec![vec![
                    connect(1, 1, 0).ip("localhost"),
                    connect(2, 2, 1).ip("10.0.0.1:22"),
                    connect(3, 3, 2).ip("[::1]"),
                    connect(4, 4, 3).ip("::ffff:10.0.0.7"),
                ]]
            },
            check: |h, rows| {
                ensure_eq!(
                    row_of(rows, 1)?.ip,
                    h.expect_ip(Some("127.0.0.1")),
                    "localhost"
                );
                ensure_eq!(row_of(rows, 2)?.ip.as_deref(), None, "host:port");
                ensure_eq!(row_of(rows, 3)?.ip.as_deref(), None, "a bracketed address");
                ensure_eq!(
                    row_of(rows, 4)?.ip,
                    h.expect_ip(Some("10.0.0.7")),
                    "an IPv4-mapped address"
                );
                Ok(())
            },
        },
        Table {
            name: "agent app names are normalised, any normalised name is stored, an empty one is none",
            batches: || {
                vec![vec![
                    connect(1, 1, 0).app("  VS-Code  "),
                    connect(2, 2, 1).app("\x1b[31mvscode\x1b[0m"),
                    connect(3, 3, 2).app("Cursor"),
                    connect(4, 4, 3).app(&"é".repeat(70)),
                    // Coder's NormalizeAppName: blank but not empty is `unknown`.
                    connect(5, 5, 4).app(" \t "),
                    // Coder's NULLIF: empty is no app.
                    connect(6, 6, 5).app(""),
                    connect(7, 7, 6).app("Trae-CN"),
                ]]
            },
            check: |_, rows| {
                let apps = [
                    "vs_code".to_string(),
                    "[31mvscode[0m".to_string(),
                    "cursor".to_string(),
                    "é".repeat(64),
                    "unknown".to_string(),
                ];
                for (session, want) in (1..).zip(apps) {
                    ensure_eq!(
                        row_of(rows, session)?.app_name_or_port.as_deref(),
                        Some(want.as_str()),
                        "the app of session {session}"
                    );
                }
                ensure_eq!(row_of(rows, 6)?.app_name_or_port, None, "an empty app");
                ensure_eq!(
                    row_of(rows, 7)?.app_name_or_port.as_deref(),
                    Some("trae_cn"),
                    "\"Trae-CN\""
                );
                Ok(())
            },
        },
        Table {
            name: "connects at the same time: the smallest event id defines the row",
            batches: || {
                vec![
                    vec![connect(2, 1, 0).ip("10.0.2.2")],
                    vec![connect(1, 1, 0).ip("10.0.0.1")],
                ]
            },
            check: |h, rows| {
                let r = only(rows)?;
                ensure_eq!(
                    (r.id, r.ip.clone()),
                    (eid(1), h.expect_ip(Some("10.0.0.1"))),
                    "id and IP"
                );
                Ok(())
            },
        },
        Table {
            name: "disconnects at the same time: the smallest event id gives reason and code",
            batches: || {
                vec![
                    vec![disconnect(4, 1, 9, Some(2), Some("second"))],
                    vec![disconnect(3, 1, 9, Some(1), Some("first"))],
                ]
            },
            check: |_, rows| {
                let r = only(rows)?;
                ensure_eq!(
                    (r.id, r.code, r.disconnect_reason.as_deref()),
                    (eid(3), Some(1), Some("first")),
                    "id, code and reason"
                );
                Ok(())
            },
        },
        Table {
            name: "reason and code each come from the earliest disconnect that has one",
            batches: || {
                vec![
                    vec![connect(1, 1, 0), disconnect(5, 1, 40, Some(9), None)],
                    vec![disconnect(4, 1, 30, Some(7), Some("reason from the third"))],
                    vec![
                        disconnect(3, 1, 20, None, Some("reason from the second")),
                        disconnect(2, 1, 10, None, None),
                    ],
                ]
            },
            check: |_, rows| {
                let r = only(rows)?;
                ensure_eq!(r.disconnect_time, Some(T0 + 10 * S), "disconnect time");
                ensure_eq!(
                    r.disconnect_reason.as_deref(),
                    Some("reason from the second"),
                    "reason"
                );
                ensure_eq!(r.code, Some(7), "code");
                Ok(())
            },
        },
        Table {
            name: "the connect time is the earliest time of all the session's events",
            batches: || {
                vec![
                    vec![connect(1, 1, 50), disconnect(4, 1, 100, None, None)],
                    vec![disconnect(2, 1, -20, None, None), connect(3, 1, 10)],
                ]
            },
            check: |_, rows| {
                let r = only(rows)?;
                ensure_eq!(r.connect_time, T0 - 20 * S, "connect time");
                ensure_eq!(r.id, eid(3), "id (the earliest connect's)");
                ensure_eq!(r.disconnect_time, Some(T0 - 20 * S), "disconnect time");
                Ok(())
            },
        },
        Table {
            name: "a web row is its event",
            batches: || {
                vec![vec![
                    workspace_app(eid(7), T0, Some(bob()), 403).ip("10.2.3.4"),
                ]]
            },
            check: |h, rows| {
                let e = workspace_app(eid(7), T0, Some(bob()), 403).ip("10.2.3.4");
                let want = ConnectionLog {
                    id: e.id,
                    connect_time: e.time,
                    organization_id: e.organization_id,
                    workspace_owner_id: e.workspace_owner_id,
                    workspace_id: e.workspace_id,
                    workspace_name: e.workspace_name,
                    agent_name: e.agent_name,
                    connection_method: ConnectionMethod::WorkspaceApp,
                    code: Some(403),
                    ip: h.expect_ip(e.ip.as_deref()),
                    user_agent: h.expect_user_agent(e.user_agent.as_deref()),
                    user_id: Some(bob()),
                    app_name_or_port: e.app_name_or_port,
                    connection_id: None,
                    disconnect_time: None,
                    disconnect_reason: None,
                    client_session_id: None,
                };
                same_rows(rows, &[want], "the row")
            },
        },
    ]
}

/// Merges of what only contract 0.2.0 carries, with what each needs of it.
fn current_table() -> Vec<(&'static str, Table)> {
    const OTHER_CSID: &str = "fedcba9876543210fedcba9876543210";
    vec![
        (
            "client session ids",
            Table {
                name: "the client session id comes from the defining event, as the app does",
                batches: || {
                    vec![
                        vec![disconnect(3, 1, 60, Some(0), None).session(OTHER_CSID)],
                        vec![connect(2, 1, 10).session(OTHER_CSID).app("goland")],
                        vec![connect(1, 1, 0).session(CSID).app("cursor")],
                    ]
                },
                check: |_, rows| {
                    let r = only(rows)?;
                    ensure_eq!(
                        (
                            r.id,
                            r.app_name_or_port.as_deref(),
                            r.client_session_id.as_deref()
                        ),
                        (eid(1), Some("cursor"), Some(CSID)),
                        "id, app and client session id"
                    );
                    Ok(())
                },
            },
        ),
        (
            "client session ids",
            Table {
                name: "connections of one client session share its id and stay separate rows",
                batches: || {
                    vec![vec![
                        connect(1, 1, 0).session(CSID),
                        connect(2, 2, 5).session(CSID),
                    ]]
                },
                check: |_, rows| {
                    ensure_eq!(rows.len(), 2, "rows");
                    ensure!(
                        rows.iter()
                            .all(|r| r.client_session_id.as_deref() == Some(CSID)),
                        "a row lost the client session id"
                    );
                    Ok(())
                },
            },
        ),
        (
            "agent-reported port forwards",
            Table {
                name: "an agent-reported port forward merges like a session and stores no app",
                batches: || {
                    vec![
                        vec![agent_port_forward(1, 1, 0).app("Some-App")],
                        vec![
                            disconnect(2, 1, 60, Some(0), Some("closed"))
                                .method(ConnectionMethod::PortForwarding),
                        ],
                    ]
                },
                check: |_, rows| {
                    let r = only(rows)?;
                    ensure_eq!(
                        (r.id, r.connection_method, r.app_name_or_port.as_deref()),
                        (eid(1), ConnectionMethod::PortForwarding, None),
                        "id, method and app"
                    );
                    ensure_eq!(
                        (r.disconnect_time, r.code, r.disconnect_reason.as_deref()),
                        (Some(T0 + 60 * S), Some(0), Some("closed")),
                        "disconnect fields"
                    );
                    Ok(())
                },
            },
        ),
        (
            "a web terminal's app",
            Table {
                name: "a web terminal keeps its client's app",
                batches: || {
                    vec![vec![
                        connect(1, 1, 0)
                            .method(ConnectionMethod::ReconnectingPty)
                            .app("Cursor"),
                    ]]
                },
                check: |_, rows| {
                    let r = only(rows)?;
                    ensure_eq!(
                        (r.connection_method, r.app_name_or_port.as_deref()),
                        (ConnectionMethod::ReconnectingPty, Some("cursor")),
                        "method and app"
                    );
                    Ok(())
                },
            },
        ),
    ]
}

/// Four events of one session in all 24 orders, one session per order, each event alone;
/// then all of them again.
fn every_order(h: &mut Harness) -> Check {
    let events = |s: u64| {
        let n = |k: u64| 1000 * s + k;
        [
            connect(n(1), s, 30).ip("10.0.1.1"),
            connect(n(2), s, 10).ip("10.0.0.2").app("vscode"),
            disconnect(n(3), s, 50, None, Some("first")),
            disconnect(n(4), s, 40, Some(7), None),
        ]
    };
    let mut orders = Vec::new();
    permutations(&mut [0, 1, 2, 3], 0, &mut orders);
    let mut all = Vec::new();
    for (i, order) in orders.iter().enumerate() {
        let session = i as u64 + 1;
        let events = events(session);
        for &k in order {
            h.store(vec![events[k].clone()])?;
        }
        all.extend(events);
    }
    let outcomes = h.ingest(all)?;
    ensure!(
        outcomes.iter().all(|o| *o == EventOutcome::Duplicate),
        "sent again, events were not all duplicates"
    );
    for restarted in [false, true] {
        if restarted {
            h.restart()?;
        }
        let rows = h.rows()?;
        ensure_eq!(rows.len(), orders.len(), "rows");
        let ip = h.expect_ip(Some("10.0.0.2"));
        for (i, order) in orders.iter().enumerate() {
            let session = i as u64 + 1;
            let r = row_of(&rows, session)?;
            let context = format!(
                "order {order:?}{}",
                if restarted { " after a restart" } else { "" }
            );
            ensure_eq!(
                (
                    r.id,
                    r.connect_time,
                    r.ip.as_deref(),
                    r.connection_method,
                    r.app_name_or_port.as_deref()
                ),
                (
                    eid(1000 * session + 2),
                    T0 + 10 * S,
                    ip.as_deref(),
                    ConnectionMethod::Ssh,
                    Some("vscode")
                ),
                "{context}: id, connect time, IP, method and app"
            );
            ensure_eq!(
                (r.disconnect_time, r.code, r.disconnect_reason.as_deref()),
                (Some(T0 + 40 * S), Some(7), Some("first")),
                "{context}: disconnect fields"
            );
        }
    }
    Ok(())
}

fn permutations(items: &mut [usize; 4], at: usize, out: &mut Vec<[usize; 4]>) {
    if at == items.len() {
        out.push(*items);
        return;
    }
    for i in at..items.len() {
        items.swap(at, i);
        permutations(items, at + 1, out);
        items.swap(at, i);
    }
}

fn replays_by_id(h: &mut Harness) -> Check {
    h.store(vec![connect(1, 1, 0).ip("10.0.0.1")])?;
    let before = h.rows()?;
    let outcomes = h.ingest(vec![
        connect(1, 1, -50).ip("10.0.0.2"),
        disconnect(1, 1, 9, Some(1), Some("x")),
    ])?;
    ensure_eq!(
        outcomes,
        [EventOutcome::Duplicate, EventOutcome::Duplicate],
        "outcomes of other events under a stored id"
    );
    same_rows(&h.rows()?, &before, "after the replays")?;
    let outcomes = h.ingest(vec![web(5, 0, None), web(5, 1, None)])?;
    ensure_eq!(
        outcomes,
        [EventOutcome::Stored, EventOutcome::Duplicate],
        "one id twice in one batch (the later copy is the duplicate)"
    );
    Ok(())
}

fn refusals(h: &mut Harness) -> Check {
    let outcomes = h.ingest(vec![
        // A tunnel is point-in-time: it never disconnects.
        web(1, 0, None)
            .method(ConnectionMethod::Tunnel)
            .no_app()
            .with(|e| e.status = ConnectionStatus::Disconnected),
        web(2, 0, None).with(|e| e.connection_id = Some(cid(9))),
        connect(3, 3, 0).with(|e| e.connection_id = None),
        connect(4, 4, 0),
        // Only a port forward may be agent-reported among the web methods.
        web(5, 0, None)
            .method(ConnectionMethod::Tunnel)
            .no_app()
            .with(|e| e.connection_id = Some(cid(5))),
    ])?;
    let fields: Vec<Option<String>> = outcomes
        .iter()
        .map(|o| match o {
            EventOutcome::Rejected(v) => Some(v.field.clone()),
            _ => None,
        })
        .collect();
    ensure_eq!(
        fields,
        [
            Some("ConnectionStatus".to_string()),
            Some("ConnectionID".to_string()),
            Some("ConnectionID".to_string()),
            None,
            Some("ConnectionID".to_string()),
        ],
        "refused fields (a disconnected tunnel, a workspace app with a connection id, an SSH event \
         without, a tunnel with one)"
    );
    ensure_eq!(outcomes[3], EventOutcome::Stored, "the valid neighbour");
    ensure_eq!(h.rows()?.len(), 1, "rows");
    ensure_eq!(h.journal_len()?, 1, "events in the journal");
    Ok(())
}
