// The spec suite's test bodies, shared by two harnesses that each bring their own `World`
// and the fixtures of `common/fixtures.rs` into scope, then `include!` this file:
//
// - `guest/tests/spec_edge_cases.rs`: natively, `Plugin` + `MemoryHost`;
// - `tests/spec_component.rs`: through the real component, `connlog::service::ConnLog` over
//   a SQLite store, with the same directory.
//
// Coder's behaviour, spec §3 (upsert consequences of B and C that still apply) and §10
// (edge cases 1–30). Where PRODUCT.md deliberately differs from Coder, the test asserts our
// behaviour and its name says which difference.
//
// The ingest cases are a table; each runs four ways that must agree (PRODUCT.md
// difference 1): the batches as listed, all events in one batch, every event alone in
// reverse order, and a rebuild from the journal (natively a replay into a fresh plugin;
// through the component a restart of the service on the same data directory).
//
// No `mod` declarations and no inner attributes here: this file is `include!`d.

use connlog_guest::model::*;

struct Case {
    name: &'static str,
    batches: Vec<Vec<ConnectionEvent>>,
    check: fn(&[ConnectionLog]),
}

fn run(case: &Case) {
    let as_listed = {
        let mut w = World::new();
        for batch in &case.batches {
            for outcome in w.ingest(batch.clone()) {
                assert_eq!(outcome, EventOutcome::Stored, "{}", case.name);
            }
        }
        let rows = w.rows();
        assert_eq!(
            w.replayed_rows(),
            rows,
            "{}: a replay of the journal rebuilds the rows",
            case.name
        );
        rows
    };
    (case.check)(&as_listed);
    let all: Vec<ConnectionEvent> = case.batches.iter().flatten().cloned().collect();
    let mut one_batch = World::new();
    one_batch.ingest(all.clone());
    assert_eq!(one_batch.rows(), as_listed, "{}: in one batch", case.name);
    let mut reversed = World::new();
    for event in all.iter().rev() {
        reversed.ingest(vec![event.clone()]);
    }
    assert_eq!(
        reversed.rows(),
        as_listed,
        "{}: one by one, reversed",
        case.name
    );
    // Replaying every event again changes nothing.
    let outcomes = reversed.ingest(all);
    assert!(
        outcomes.iter().all(|o| *o == EventOutcome::Duplicate),
        "{}: replays are duplicates",
        case.name
    );
    assert_eq!(
        reversed.rows(),
        as_listed,
        "{}: replays change nothing",
        case.name
    );
}

fn only(rows: &[ConnectionLog]) -> &ConnectionLog {
    assert_eq!(rows.len(), 1, "exactly one row: {rows:#?}");
    &rows[0]
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "§3 B+C: connect then disconnect → one row with the disconnect's time, reason and code",
            batches: vec![
                vec![connect(1, 1, 0)],
                vec![disconnect(2, 1, 60, Some(0), Some("client closed"))],
            ],
            check: |rows| {
                let r = only(rows);
                assert_eq!((r.id, r.connect_time), (eid(1), T0));
                assert_eq!(r.disconnect_time, Some(T0 + 60 * S));
                assert_eq!(
                    (r.code, r.disconnect_reason.as_deref()),
                    (Some(0), Some("client closed"))
                );
            },
        },
        Case {
            name: "§3.2 C: connect then disconnect in the same batch → one row",
            batches: vec![vec![
                connect(1, 1, 0),
                disconnect(2, 1, 60, Some(1), Some("x")),
            ]],
            check: |rows| {
                let r = only(rows);
                assert_eq!((r.disconnect_time, r.code), (Some(T0 + 60 * S), Some(1)));
            },
        },
        Case {
            name: "§3.2 C: a single connect is ongoing",
            batches: vec![vec![connect(1, 1, 0)]],
            check: |rows| {
                let r = only(rows);
                assert_eq!(
                    (r.disconnect_time, r.code, r.disconnect_reason.as_deref()),
                    (None, None, None)
                );
                assert_eq!(r.connection_id, Some(cid(1)));
            },
        },
        Case {
            name: "§3 B+C: a second connect with a later time and another IP changes nothing",
            batches: vec![
                vec![connect(1, 1, 0).ip("10.0.0.1")],
                vec![connect(2, 1, 30).ip("10.0.0.2")],
            ],
            check: |rows| {
                let r = only(rows);
                assert_eq!(
                    (r.id, r.connect_time, r.ip.as_deref()),
                    (eid(1), T0, Some("10.0.0.1"))
                );
            },
        },
        Case {
            name: "§3 / §10.1: a disconnect without a connect is a complete row, connect_time = disconnect_time",
            batches: vec![vec![disconnect(1, 1, 60, Some(2), Some("lost"))]],
            check: |rows| {
                let r = only(rows);
                assert_eq!(
                    (r.id, r.connect_time, r.disconnect_time),
                    (eid(1), T0 + 60 * S, Some(T0 + 60 * S))
                );
                assert_eq!(
                    (r.code, r.disconnect_reason.as_deref()),
                    (Some(2), Some("lost"))
                );
            },
        },
        Case {
            name: "§3.2 C LEAST: disconnect then an earlier connect across batches corrects connect_time \
                   (difference 1: the connect now defines the row's id and fields; C keeps the disconnect's)",
            batches: vec![
                vec![disconnect(1, 1, 60, Some(0), None)],
                vec![connect(2, 1, 0).ip("10.1.1.1")],
            ],
            check: |rows| {
                let r = only(rows);
                assert_eq!((r.connect_time, r.disconnect_time), (T0, Some(T0 + 60 * S)));
                assert_eq!((r.id, r.ip.as_deref()), (eid(2), Some("10.1.1.1")));
            },
        },
        Case {
            name: "§3 B+C: a second disconnect never overwrites the first's time, reason or code",
            batches: vec![
                vec![connect(1, 1, 0)],
                vec![disconnect(2, 1, 60, Some(1), Some("first"))],
                vec![disconnect(3, 1, 90, Some(2), Some("second"))],
            ],
            check: |rows| {
                let r = only(rows);
                assert_eq!(r.disconnect_time, Some(T0 + 60 * S));
                assert_eq!(
                    (r.code, r.disconnect_reason.as_deref()),
                    (Some(1), Some("first"))
                );
            },
        },
        Case {
            name: "§3.1 B / §10.8: disconnect fields are write-once each independently \
                   (a reason arriving with a later disconnect fills the gap, the first time stays)",
            batches: vec![
                vec![connect(1, 1, 0)],
                vec![disconnect(2, 1, 60, None, None)],
                vec![disconnect(3, 1, 90, Some(4), Some("late reason"))],
            ],
            check: |rows| {
                let r = only(rows);
                assert_eq!(r.disconnect_time, Some(T0 + 60 * S));
                assert_eq!(
                    (r.code, r.disconnect_reason.as_deref()),
                    (Some(4), Some("late reason"))
                );
            },
        },
        Case {
            name: "§3.2 C: a connect after the disconnect never clears the disconnect fields",
            batches: vec![
                vec![disconnect(1, 1, 60, Some(3), Some("gone"))],
                vec![connect(2, 1, 90)],
            ],
            check: |rows| {
                let r = only(rows);
                assert_eq!(r.disconnect_time, Some(T0 + 60 * S));
                assert_eq!(
                    (r.code, r.disconnect_reason.as_deref()),
                    (Some(3), Some("gone"))
                );
                assert_eq!(r.connect_time, T0 + 60 * S, "LEAST keeps the earlier time");
            },
        },
        Case {
            name: "§3.2 C: code 0 is a value and is kept",
            batches: vec![
                vec![connect(1, 1, 0)],
                vec![disconnect(2, 1, 1, Some(0), None)],
            ],
            check: |rows| assert_eq!(only(rows).code, Some(0)),
        },
        Case {
            name: "§3.2 C / §10.10: a disconnect without a code keeps none \
                   (difference: Coder's agent API would store 0; our input says null)",
            batches: vec![
                vec![connect(1, 1, 0)],
                vec![disconnect(2, 1, 1, None, None)],
            ],
            check: |rows| assert_eq!(only(rows).code, None),
        },
        Case {
            name: "§10.10: a connect never stores a code, even when the agent sent one",
            batches: vec![vec![connect(1, 1, 0).with(|e| e.code = Some(200))]],
            check: |rows| assert_eq!(only(rows).code, None),
        },
        Case {
            name: "§3.1 B: a connect carrying a reason — B stores it on insert; \
                   PRODUCT.md's table takes the reason from disconnects only",
            batches: vec![vec![
                connect(1, 1, 0).with(|e| e.disconnect_reason = Some("odd".into())),
            ]],
            check: |rows| assert_eq!(only(rows).disconnect_reason, None),
        },
        Case {
            name: "§3.2 C / §10.6: two web events never merge, even with identical content",
            batches: vec![vec![web(1, 0, Some(bob())), web(2, 0, Some(bob()))]],
            check: |rows| {
                assert_eq!(rows.len(), 2);
                assert!(
                    rows.iter()
                        .all(|r| r.connection_id.is_none() && r.disconnect_time.is_none())
                );
                assert_eq!(
                    rows.iter().map(|r| r.code).collect::<Vec<_>>(),
                    [Some(200), Some(200)]
                );
            },
        },
        Case {
            name: "§10.2 (difference 1): disconnect then earlier connect in ONE batch still corrects connect_time",
            batches: vec![vec![
                disconnect(1, 1, 60, Some(0), Some("bye")),
                connect(2, 1, 0),
            ]],
            check: |rows| {
                let r = only(rows);
                assert_eq!(
                    (r.id, r.connect_time, r.disconnect_time),
                    (eid(2), T0, Some(T0 + 60 * S))
                );
            },
        },
        Case {
            name: "§10.3 (difference 1): disconnect then a later connect in one batch keeps reason and code",
            batches: vec![vec![
                disconnect(1, 1, 60, Some(130), Some("signal")),
                connect(2, 1, 90),
            ]],
            check: |rows| {
                let r = only(rows);
                assert_eq!(
                    (r.code, r.disconnect_reason.as_deref()),
                    (Some(130), Some("signal"))
                );
                assert_eq!(r.disconnect_time, Some(T0 + 60 * S));
            },
        },
        Case {
            name: "§10.4 (difference 1): one connection id in two workspaces in one batch → two rows",
            batches: vec![vec![
                connect(1, 1, 0),
                connect(2, 1, 5).in_workspace(uuid_in(3, 2)),
            ]],
            check: |rows| {
                assert_eq!(rows.len(), 2);
                let mut workspaces: Vec<Uuid> = rows.iter().map(|r| r.workspace_id).collect();
                workspaces.sort();
                assert_eq!(workspaces, [workspace(), uuid_in(3, 2)]);
            },
        },
        Case {
            name: "§10.5: one connection id with two agents → two rows (the key is the triple)",
            batches: vec![
                vec![connect(1, 1, 0)],
                vec![disconnect(2, 1, 5, Some(0), None).agent("other")],
            ],
            check: |rows| {
                assert_eq!(rows.len(), 2);
                let main = rows.iter().find(|r| r.agent_name == "main").unwrap();
                assert_eq!(
                    main.disconnect_time, None,
                    "the other agent's disconnect does not close it"
                );
            },
        },
        Case {
            name: "§10.7: later events never change type, IP, names, organization, owner or id",
            batches: vec![
                vec![connect(1, 1, 0)],
                vec![
                    connect(2, 1, 10)
                        .ip("10.9.9.9")
                        .kind("vscode")
                        .in_org(other_org())
                        .with(|e| e.workspace_name = "renamed".into()),
                    disconnect(3, 1, 20, Some(0), None)
                        .ip("10.8.8.8")
                        .kind("jetbrains"),
                ],
            ],
            check: |rows| {
                let r = only(rows);
                assert_eq!(
                    (r.id, r.connection_type.as_str(), r.ip.as_deref()),
                    (eid(1), "ssh", Some("fd7a:115c:a1e0::1"))
                );
                assert_eq!(
                    (r.organization_id, r.workspace_name.as_str()),
                    (org(), "dev")
                );
            },
        },
        Case {
            name: "§10.7 (difference 1): an earlier connect arriving late defines the row, whatever the order",
            batches: vec![
                vec![connect(2, 1, 10).ip("10.0.0.2")],
                vec![connect(1, 1, 0).ip("10.0.0.1")],
            ],
            check: |rows| {
                let r = only(rows);
                assert_eq!(
                    (r.id, r.connect_time, r.ip.as_deref()),
                    (eid(1), T0, Some("10.0.0.1"))
                );
            },
        },
        Case {
            name: "§10.9 (difference 1): with skewed clocks connect_time never exceeds disconnect_time",
            batches: vec![
                vec![connect(1, 1, 100)],
                vec![disconnect(2, 1, 40, Some(0), None)],
            ],
            check: |rows| {
                let r = only(rows);
                assert_eq!(
                    (r.connect_time, r.disconnect_time),
                    (T0 + 40 * S, Some(T0 + 40 * S))
                );
                assert_eq!(r.id, eid(1));
            },
        },
        Case {
            name: "§10.11: \"localhost\" becomes 127.0.0.1; host:port and other junk become absent",
            batches: vec![vec![
                connect(1, 1, 0).ip("localhost"),
                connect(2, 2, 1).ip("10.0.0.1:22"),
                connect(3, 3, 2).ip("[::1]"),
                connect(4, 4, 3).ip("::ffff:10.0.0.7"),
            ]],
            check: |rows| {
                let ip_of = |c: u64| {
                    rows.iter()
                        .find(|r| r.connection_id == Some(cid(c)))
                        .unwrap()
                        .ip
                        .clone()
                };
                assert_eq!(ip_of(1).as_deref(), Some("127.0.0.1"));
                assert_eq!((ip_of(2), ip_of(3)), (None, None));
                assert_eq!(ip_of(4).as_deref(), Some("10.0.0.7"));
            },
        },
        Case {
            name: "§10.12: agent app names are normalised and any normalised name is stored",
            batches: vec![vec![
                connect(1, 1, 0).kind("  VS-Code  "),
                connect(2, 2, 1).kind("\x1b[31mvscode\x1b[0m"),
                connect(3, 3, 2).kind("Cursor"),
                connect(4, 4, 3).kind(&"é".repeat(70)),
            ]],
            check: |rows| {
                let type_of = |c: u64| {
                    rows.iter()
                        .find(|r| r.connection_id == Some(cid(c)))
                        .unwrap()
                        .connection_type
                        .clone()
                };
                assert_eq!(type_of(1), "vs_code");
                assert_eq!(type_of(2), "[31mvscode[0m");
                assert_eq!(type_of(3), "cursor");
                assert_eq!(type_of(4), "é".repeat(64));
            },
        },
    ]
}

#[test]
fn ingest_cases_agree_in_every_order_and_on_replay() {
    for case in cases() {
        run(&case);
    }
}

#[test]
fn an_event_id_already_stored_is_a_replay_that_changes_nothing() {
    // §3 "duplicate connect → no-op", and PRODUCT.md: an ID names one event.
    let mut w = World::new();
    w.ingest(vec![connect(1, 1, 0).ip("10.0.0.1")]);
    let before = w.rows();
    let outcomes = w.ingest(vec![
        connect(1, 1, -50).ip("10.0.0.2"),
        disconnect(1, 1, 9, Some(1), Some("x")),
    ]);
    assert_eq!(outcomes, [EventOutcome::Duplicate, EventOutcome::Duplicate]);
    assert_eq!(w.rows(), before);
    // Inside one batch, the later copy is the duplicate.
    let outcomes = w.ingest(vec![web(5, 0, None), web(5, 1, None)]);
    assert_eq!(outcomes, [EventOutcome::Stored, EventOutcome::Duplicate]);
}

#[test]
fn refusals_follow_product_md_not_coder() {
    let mut w = World::new();
    let outcomes = w.ingest(vec![
        // §10.12 difference: Coder stores `unknown`; we refuse.
        connect(1, 1, 0).kind(" \t "),
        // Web events must carry no connection id.
        web(2, 0, None).with(|e| e.connection_id = Some(cid(9))),
        // Agent events must carry one.
        connect(3, 3, 0).with(|e| e.connection_id = None),
        // Rejecting never affects the neighbours.
        connect(4, 4, 0),
    ]);
    let fields: Vec<Option<String>> = outcomes
        .iter()
        .map(|o| match o {
            EventOutcome::Rejected(v) => Some(v.field.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        fields,
        [
            Some("Type".into()),
            Some("ConnectionID".into()),
            Some("ConnectionID".into()),
            None
        ]
    );
    assert_eq!(w.rows().len(), 1);
    assert_eq!(w.journal_len(), 1);
}

// ----- Query / filter: §10.14–27 ---------------------------------------------------------

fn web_rows(n: u64) -> Vec<ConnectionEvent> {
    (0..n)
        .map(|i| web(1000 + i, i as i64, Some(bob())))
        .collect()
}

#[test]
fn edge_14_limit_zero_means_100_and_there_is_no_maximum() {
    let mut w = World::new();
    w.ingest(web_rows(150));
    let page = w.query("").unwrap();
    assert_eq!((page.rows.len(), page.count), (100, 150));
    let page = w.query_as(admin_id(), "", 1000, 0).unwrap();
    assert_eq!((page.rows.len(), page.count), (150, 150));
    let page = w.query_as(admin_id(), "", 100, 140).unwrap();
    assert_eq!(page.rows.len(), 10);
}

#[test]
fn edge_15_difference_2_ties_are_ordered_by_id_descending() {
    let mut w = World::new();
    // Five rows at the same instant, two later ones.
    let mut events: Vec<ConnectionEvent> = (0..5).map(|i| web(10 + i, 0, None)).collect();
    events.push(connect(20, 1, 30));
    events.push(web(30, 60, None));
    w.ingest(events);
    let ids: Vec<Uuid> = w.query("").unwrap().rows.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        [
            eid(30),
            eid(20),
            eid(14),
            eid(13),
            eid(12),
            eid(11),
            eid(10)
        ]
    );
    // Paging one row at a time walks the same order.
    let paged: Vec<Uuid> = (0..7)
        .map(|o| w.query_as(admin_id(), "", 1, o).unwrap().rows[0].id)
        .collect();
    assert_eq!(paged, ids);
}

#[test]
fn edge_16_17_difference_3_counts_are_exact_and_agree_with_the_pages() {
    let mut w = World::new();
    w.ingest(web_rows(2500));
    let first = w.query("").unwrap();
    assert_eq!(first.count, 2500, "no 2001 cap");
    let mut seen = 0;
    let mut offset = 0;
    loop {
        let page = w.query_as(admin_id(), "", 700, offset).unwrap();
        assert_eq!(page.count, 2500);
        if page.rows.is_empty() {
            break;
        }
        seen += page.rows.len();
        offset += 700;
    }
    assert_eq!(seen, 2500);
}

#[test]
fn edge_18_status_never_returns_point_in_time_rows() {
    let mut w = World::new();
    w.ingest(vec![
        connect(1, 1, 0),                        // ongoing
        disconnect(2, 2, 5, Some(0), None),      // disconnect-only: completed
        web(3, 1, Some(bob())),                  // point-in-time
        web(4, 2, None).kind("port_forwarding"), // point-in-time
        web(5, 3, Some(bob()))
            .kind("tunnel")
            .with(|e| e.code = Some(101)),
    ]);
    let ids = |q: &str| {
        w.query(q)
            .unwrap()
            .rows
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("status:ongoing"), [eid(1)]);
    assert_eq!(ids("status:completed"), [eid(2)]);
    assert_eq!(w.query("").unwrap().count, 5);
}

#[test]
fn edge_19_user_filters_never_match_agent_rows() {
    let mut w = World::new();
    w.ingest(vec![
        connect(1, 1, 0),
        web(2, 1, Some(bob())),
        web(3, 2, None),
    ]);
    for q in ["username:bob", "user_email:bob@example.com"] {
        let page = w.query(q).unwrap();
        assert_eq!(
            page.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
            [eid(2)],
            "{q}"
        );
    }
}

#[test]
fn edge_20_the_whole_query_is_lowercased() {
    let mut w = World::new();
    let dave = uuid_in(30, 6);
    w.ingest(vec![web(1, 0, Some(dave))]);
    assert_eq!(
        w.query("user_email:Dave@Example.com").unwrap().count,
        0,
        "stored email is mixed case"
    );
    assert_eq!(w.query("username:DAVE").unwrap().count, 1);
}

#[test]
fn edge_21_username_ignores_deleted_users_user_email_does_not() {
    let mut w = World::new();
    w.ingest(vec![web(1, 0, Some(carol()))]);
    assert_eq!(w.query("username:carol").unwrap().count, 0);
    assert_eq!(w.query("user_email:carol@example.com").unwrap().count, 1);
}

#[test]
fn edge_22_unknown_names_match_nothing_unknown_organization_names_are_errors() {
    let mut w = World::new();
    w.ingest(vec![web(1, 0, Some(bob())), connect(2, 1, 0)]);
    for q in [
        "username:nobody",
        "workspace_owner:nobody",
        "workspace_owner_email:no@where",
        "user_email:no@where",
    ] {
        assert_eq!(w.query(q).unwrap().count, 0, "{q}");
    }
    assert_eq!(
        w.invalid("organization:nosuch"),
        [Validation::new(
            "organization",
            "Query param \"organization\" has invalid value: organization \"nosuch\" either does not exist, or you are unauthorized to view it"
        )]
    );
    assert_eq!(
        w.query(&format!("organization:{}", uuid_in(1, 99)))
            .unwrap()
            .count,
        0
    );
    assert_eq!(w.query("organization:coder").unwrap().count, 2);
}

#[test]
fn edge_23_quotes_keep_spaces_and_unquoted_colons_fail() {
    let mut w = World::new();
    w.ingest(vec![connect(1, 1, 0), connect(2, 2, 60)]);
    let page = w.query("connected_after:\"2025-07-10T10:00:30Z\"").unwrap();
    assert_eq!(page.rows.iter().map(|r| r.id).collect::<Vec<_>>(), [eid(2)]);
    assert_eq!(
        w.invalid("connected_after:2025-07-10T10:00:30Z"),
        [Validation::new(
            "q",
            "Query element \"connected_after:2025-07-10t10:00:30z\" can only contain 1 ':'"
        )]
    );
    assert_eq!(w.query("username:\"no such user\"").unwrap().count, 0);
}

#[test]
fn edge_24_bare_words_are_errors() {
    let w = World::new();
    assert_eq!(
        w.invalid("hello"),
        [Validation::new(
            "search",
            "\"search\" is not a valid query param"
        )]
    );
    assert_eq!(w.invalid("username:no such user")[0].field, "search");
}

#[test]
fn edge_25_an_empty_value_disables_the_filter() {
    let mut w = World::new();
    w.ingest(vec![connect(1, 1, 0), web(2, 1, None)]);
    assert_eq!(w.query("type:\"\"").unwrap().count, 2);
}

#[test]
fn edge_26_stored_app_names_are_reached_through_their_family() {
    let mut w = World::new();
    w.ingest(vec![
        connect(1, 1, 0).kind("cursor"),
        connect(2, 2, 1).kind("zed"),
        connect(3, 3, 2).kind("my-ide"),
        connect(4, 4, 3),
    ]);
    assert_eq!(
        w.invalid("type:cursor"),
        [Validation::new(
            "type",
            "Query param \"type\" has invalid value: \"cursor\" is not a valid value"
        )]
    );
    let ids = |q: &str| {
        let mut ids: Vec<Uuid> = w.query(q).unwrap().rows.iter().map(|r| r.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids("type:vscode"), [eid(1)]);
    assert_eq!(ids("type:ssh"), [eid(2), eid(4)]);
    assert_eq!(
        w.query("").unwrap().count,
        4,
        "my_ide is stored, reachable only without a type filter"
    );
}

#[test]
fn edge_27_unauthorized_readers_get_an_empty_page() {
    let mut w = World::new();
    w.ingest(vec![connect(1, 1, 0), web(2, 1, None).in_org(other_org())]);
    assert_eq!(
        w.query_as(member(), "", 0, 0).unwrap(),
        Page {
            rows: vec![],
            count: 0
        }
    );
    assert_eq!(
        w.query_as(bob(), "type:ssh", 0, 0).unwrap(),
        Page {
            rows: vec![],
            count: 0
        }
    );
    let audited = w.query_as(org_auditor(), "", 0, 0).unwrap();
    assert_eq!((audited.count, audited.rows[0].id), (1, eid(1)));
    assert_eq!(w.query("").unwrap().count, 2);
}

// ----- Retention: §10.28–30 --------------------------------------------------------------

#[test]
fn edge_28_purge_uses_connect_time_and_a_later_disconnect_starts_a_fresh_row() {
    let mut w = World::new();
    w.set_retention(HOUR as u64);
    w.ingest(vec![
        connect(1, 1, 0),  // ongoing, connected at T0
        connect(2, 2, 10), // exactly at the cutoff: kept (strictly before is purged)
        web(3, -5, None),
    ]);
    let now = T0 + 10 * S + HOUR;
    let report = w.purge(now);
    assert_eq!(
        report,
        PurgeReport {
            purged: 2,
            cutoff: Some(T0 + 10 * S)
        }
    );
    assert_eq!(w.rows().iter().map(|r| r.id).collect::<Vec<_>>(), [eid(2)]);
    assert_eq!(
        w.journal_len(),
        1,
        "the journal forgot the purged rows' events"
    );
    // The purged session's disconnect arrives: a fresh, complete row.
    w.ingest(vec![disconnect(4, 1, 7200, Some(0), Some("done"))]);
    let fresh = w
        .rows()
        .into_iter()
        .find(|r| r.connection_id == Some(cid(1)))
        .unwrap();
    assert_eq!(
        (fresh.id, fresh.connect_time, fresh.disconnect_time),
        (eid(4), T0 + 7200 * S, Some(T0 + 7200 * S))
    );
}

#[test]
fn edge_29_difference_4_one_purge_removes_every_expired_row() {
    let mut w = World::new();
    w.set_retention(HOUR as u64);
    let events: Vec<ConnectionEvent> = (0..15_000)
        .map(|i| web(10_000 + i, -(i as i64), None))
        .collect();
    w.ingest(events);
    w.ingest(vec![web(1, 2 * 3600, None)]);
    let report = w.purge(T0 + 2 * HOUR + S);
    assert_eq!(report.purged, 15_000);
    assert_eq!(w.rows().len(), 1);
}

#[test]
fn edge_30_purging_again_is_harmless() {
    let mut w = World::new();
    w.set_retention(HOUR as u64);
    w.ingest(vec![connect(1, 1, 0), web(2, 0, None)]);
    let now = T0 + 3 * HOUR;
    assert_eq!(w.purge(now).purged, 2);
    assert_eq!(
        w.purge(now),
        PurgeReport {
            purged: 0,
            cutoff: Some(now - HOUR)
        }
    );
}
