//! Event batches as columns: columns give back exactly the events they were made from, and columns
//! that do not fit together are refused as corrupt (the SDK then calls no plugin).

use connlog_plugin_sdk::event_columns::EventColumns;
use connlog_plugin_sdk::model::*;
use connlog_plugin_sdk::testing::fixtures::*;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Empty, ASCII and multi-byte text: spans must land on character boundaries.
    prop_oneof![Just(String::new()), "[a-z0-9 .:-]{1,12}", "\\PC{1,6}"]
}

fn event() -> impl Strategy<Value = ConnectionEvent> {
    (
        (
            any::<u128>(),
            any::<i64>(),
            any::<[u128; 3]>(),
            any::<bool>(),
        ),
        (text(), text(), 0u8..5, proptest::option::of(text())),
        proptest::option::of(any::<i32>()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        // Nil ids too: presence is carried by a flag, not by the value.
        proptest::option::of(prop_oneof![Just(0u128), any::<u128>()]),
        proptest::option::of(prop_oneof![Just(0u128), any::<u128>()]),
    )
        .prop_map(
            |(
                (id, time, [org, owner, ws], disconnected),
                (ws_name, agent, method, client_session),
                code,
                ip,
                ua,
                slug,
                reason,
                user,
                conn,
            )| {
                ConnectionEvent {
                    id: Uuid::from_u128(id),
                    time,
                    organization_id: Uuid::from_u128(org),
                    workspace_owner_id: Uuid::from_u128(owner),
                    workspace_id: Uuid::from_u128(ws),
                    workspace_name: ws_name,
                    agent_name: agent,
                    connection_method: ConnectionMethod::from_index(method).unwrap(),
                    code,
                    ip,
                    user_agent: ua,
                    user_id: user.map(Uuid::from_u128),
                    app_name_or_port: slug,
                    connection_id: conn.map(Uuid::from_u128),
                    disconnect_reason: reason,
                    client_session_id: client_session,
                    status: if disconnected {
                        ConnectionStatus::Disconnected
                    } else {
                        ConnectionStatus::Connected
                    },
                }
            },
        )
}

proptest! {
    #[test]
    fn columns_give_back_every_event_in_order(events in proptest::collection::vec(event(), 0..20)) {
        let columns = EventColumns::from_events(&events);
        prop_assert_eq!(columns.len(), events.len());
        prop_assert_eq!(columns.events().unwrap(), event_refs(&events));
    }
}

fn sample() -> Vec<ConnectionEvent> {
    vec![
        ssh_connect(uuid(1), T0, uuid(9)),
        ssh_disconnect(
            uuid(2),
            T0 + SECOND,
            uuid(9),
            Some(0),
            Some("client closed"),
        ),
        ConnectionEvent {
            ip: Some("héllo".to_string()),
            ..workspace_app(uuid(3), T0, Some(uuid(8)), 200)
        },
    ]
}

fn damaged(damage: impl FnOnce(&mut EventColumns)) -> EventColumns {
    let mut columns = EventColumns::from_events(&sample());
    damage(&mut columns);
    columns
}

#[test]
fn columns_that_do_not_fit_together_are_corrupt() {
    let cases: Vec<(&str, EventColumns, &str)> = vec![
        (
            "a uuid missing",
            damaged(|c| {
                c.uuids.pop();
            }),
            "uuids holds 35 entries for 3 events (expected 36)",
        ),
        (
            "a code too many",
            damaged(|c| c.codes.push(1)),
            "codes holds 4 entries for 3 events (expected 3)",
        ),
        (
            "flags missing",
            damaged(|c| c.flags.clear()),
            "flags holds 0 entries for 3 events (expected 3)",
        ),
        (
            "a method missing",
            damaged(|c| {
                c.methods.pop();
            }),
            "methods holds 2 entries for 3 events (expected 3)",
        ),
        (
            "a method that does not exist",
            damaged(|c| c.methods[1] = 5),
            "event 1: no method 5",
        ),
        (
            "an offset missing",
            damaged(|c| {
                c.text_ends.pop();
            }),
            "text-ends holds 20 entries for 3 events (expected 21)",
        ),
        (
            "an offset past the text",
            damaged(|c| *c.text_ends.last_mut().unwrap() += 1),
            "is not within the",
        ),
        (
            "offsets running backwards",
            damaged(|c| c.text_ends[1] = 0),
            "event 0: text span 3..0",
        ),
        (
            "an offset inside a character",
            damaged(|c| {
                // Event 2's ip is "héllo": end it after the first byte of 'é'.
                let ip = 2 * 7 + 2;
                let start = c.text_ends[ip - 1];
                c.text_ends[ip] = start + 2;
            }),
            "event 2: text span",
        ),
    ];
    for (what, columns, detail) in cases {
        match columns.events() {
            Err(JournalError::Corrupt(message)) => assert!(
                message.starts_with("event columns: ") && message.contains(detail),
                "{what}: {message}"
            ),
            other => panic!("{what}: expected a corrupt batch, got {other:?}"),
        }
    }
}
