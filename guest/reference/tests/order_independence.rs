//! Order never matters (in Coder it does, inside one batch): any permutation and duplication
//! of one session's events gives the row `session_row` gives for the set, whether ingested in one batch, in several, or
//! replayed from the journal; and ingesting any event again changes nothing.

mod common;

use common::*;
use connlog_plugin_sdk::ConnectionLogPlugin;
use connlog_plugin_sdk::model::*;
use connlog_reference::ReferencePlugin;
use connlog_reference::merge::session_row;
use connlog_reference::validate::canonicalize;
use proptest::prelude::*;

fn event_strategy() -> impl Strategy<Value = ConnectionEvent> {
    (
        any::<bool>(),
        0i64..4, // few distinct times: ties are frequent
        any::<u128>(),
        prop_oneof![
            Just(None),
            Just(Some("")),
            Just(Some("client closed")),
            Just(Some("timeout"))
        ],
        proptest::option::of(0i32..3),
        prop_oneof![
            Just("10.0.0.1"),
            Just("10.0.0.2"),
            Just("localhost"),
            Just("junk")
        ],
        // The descriptive fields Coder D added vary between a session's events too: the row
        // takes them from its defining event whatever the order.
        (
            prop_oneof![
                Just(ConnectionMethod::Ssh),
                Just(ConnectionMethod::ReconnectingPty),
                Just(ConnectionMethod::PortForwarding)
            ],
            prop_oneof![
                Just(None),
                Just(Some("")),
                Just(Some("vscode")),
                Just(Some("Cursor"))
            ],
            prop_oneof![
                Just(None),
                Just(Some("0123456789abcdef0123456789abcdef")),
                Just(Some("fedcba9876543210fedcba9876543210"))
            ],
        ),
    )
        .prop_map(
            |(is_disconnect, t, id, reason, code, ip, (method, app, csid))| {
                let id = Uuid::from_u128(id | 1);
                let base = if is_disconnect {
                    ssh_disconnect(id, T0 + t * S, cid(1), code, reason)
                } else {
                    ssh_connect(id, T0 + t * S, cid(1))
                };
                base.ip(ip).method(method).with(|e| {
                    e.app_name_or_port = app.map(str::to_string);
                    e.client_session_id = csid.map(str::to_string);
                })
            },
        )
}

/// A session's distinct events, an arrival order with duplicates, and batch boundaries.
fn scenario() -> impl Strategy<Value = (Vec<ConnectionEvent>, Vec<ConnectionEvent>, Vec<usize>)> {
    proptest::collection::vec(event_strategy(), 1..8)
        .prop_map(|mut events| {
            events.sort_by_key(|e| e.id);
            events.dedup_by_key(|e| e.id);
            events
        })
        .prop_flat_map(|events| {
            let n = events.len();
            let duplicates = proptest::collection::vec(0..n, 0..4);
            (Just(events), duplicates)
        })
        .prop_flat_map(|(events, duplicates)| {
            let mut arrivals = events.clone();
            arrivals.extend(duplicates.into_iter().map(|i| events[i].clone()));
            let len = arrivals.len();
            (
                Just(events),
                Just(arrivals).prop_shuffle(),
                proptest::collection::vec(1..=len, 0..4),
            )
        })
}

fn batches(events: &[ConnectionEvent], cuts: &[usize]) -> Vec<Vec<ConnectionEvent>> {
    let mut cuts: Vec<usize> = cuts.iter().copied().filter(|c| *c < events.len()).collect();
    cuts.sort();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([events.len()]) {
        if cut > start {
            out.push(events[start..cut].to_vec());
            start = cut;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn the_row_depends_only_on_the_set_of_events((events, arrivals, cuts) in scenario()) {
        let canonical: Vec<ConnectionEvent> = events.iter().map(|e| canonicalize(e.clone()).unwrap()).collect();
        let expected = session_row(&connlog_plugin_sdk::testing::fixtures::event_refs(&canonical)).into_owned();

        // One batch.
        let mut one = World::new();
        one.ingest(arrivals.clone());
        prop_assert_eq!(one.rows(), vec![expected.clone()]);

        // Several batches.
        let mut several = World::new();
        for batch in batches(&arrivals, &cuts) {
            several.ingest(batch);
        }
        prop_assert_eq!(several.rows(), vec![expected.clone()]);
        prop_assert_eq!(several.host.journal_len(), events.len());

        // Replayed from the journal, in arrival order and split into calls.
        let journal: Vec<ConnectionEvent> = arrivals.iter().map(|e| several.host.journal_event(e.id).unwrap().clone()).collect();
        let mut replayed = ReferencePlugin::new();
        for batch in batches(&journal, &cuts) {
            replayed.replay(&mut several.host, &event_refs(&batch)).unwrap();
        }
        prop_assert_eq!(replayed.rows(), vec![expected.clone()]);

        // Ingesting or replaying any event again changes nothing.
        for event in &arrivals {
            prop_assert_eq!(several.ingest(vec![event.clone()]), vec![EventOutcome::Duplicate]);
            let again = several.host.journal_event(event.id).unwrap().clone();
            replayed.replay(&mut several.host, &event_refs(&[again])).unwrap();
        }
        prop_assert_eq!(several.rows(), vec![expected.clone()]);
        prop_assert_eq!(replayed.rows(), vec![expected]);
    }
}
