//! The events that rebuild a row, for `connlog export --format json|human`.
//!
//! - A web or tunnel row (no connection id): one `connected` event carrying every field of
//!   the row.
//! - A session row with no disconnect: its connect event (row id, `connect_time`).
//! - A session row whose disconnect is later than its connect: the connect event, then a
//!   disconnect event at `disconnect_time` carrying the row's code and reason, whose id is
//!   derived from the row id.
//! - A session row with `connect_time == disconnect_time`: only the disconnect event, with
//!   the row id. A row built from a lone disconnect looks exactly like this, and one built
//!   from a connect and a disconnect at the same instant (or a disconnect earlier than its
//!   connect) folds to the same row either way.
//!
//! Every event carries the row's method, app and client session id, which validation keeps
//! as they are. Connect events carry no code and no disconnect reason. Under the merge rules (see
//! `crate::merge`) the emitted events fold back into the row (tested below with a local fold).

use connlog_plugin_sdk::model::*;

/// A connect event, then a disconnect event when the row has a disconnect (only the
/// disconnect for a disconnect-only row); one event for a web or tunnel row. The event that
/// defines the row keeps its id; any other gets an id derived from it deterministically.
pub fn row_events(row: &ConnectionLog) -> Vec<ConnectionEvent> {
    let base = ConnectionEvent {
        id: row.id,
        time: row.connect_time,
        organization_id: row.organization_id,
        workspace_owner_id: row.workspace_owner_id,
        workspace_id: row.workspace_id,
        workspace_name: row.workspace_name.clone(),
        agent_name: row.agent_name.clone(),
        connection_method: row.connection_method,
        code: None,
        ip: row.ip.clone(),
        user_agent: row.user_agent.clone(),
        user_id: row.user_id,
        app_name_or_port: row.app_name_or_port.clone(),
        connection_id: row.connection_id,
        disconnect_reason: None,
        client_session_id: row.client_session_id.clone(),
        status: ConnectionStatus::Connected,
    };

    // A row without a connection id is one web or tunnel event; any other is a session.
    if row.connection_id.is_none() {
        return vec![ConnectionEvent {
            code: row.code,
            disconnect_reason: row.disconnect_reason.clone(),
            ..base
        }];
    }

    match row.disconnect_time {
        None => vec![base],
        Some(disconnect_time) if disconnect_time == row.connect_time => {
            vec![ConnectionEvent {
                code: row.code,
                disconnect_reason: row.disconnect_reason.clone(),
                status: ConnectionStatus::Disconnected,
                ..base
            }]
        }
        Some(disconnect_time) => {
            let disconnect = ConnectionEvent {
                id: derived_id(row.id, b"disconnect"),
                time: disconnect_time,
                code: row.code,
                disconnect_reason: row.disconnect_reason.clone(),
                status: ConnectionStatus::Disconnected,
                ..base.clone()
            };
            vec![base, disconnect]
        }
    }
}

/// A UUID version 8 (RFC 9562 custom, RFC 4122 variant) computed from `id` and `label`: the
/// same inputs always give the same id, and it can never equal a random (version 4) id.
pub fn derived_id(id: Uuid, label: &[u8]) -> Uuid {
    // Two independent 64-bit hashes (FNV-1a over the bytes, finished with SplitMix64's
    // mixer), each seeded differently. Not cryptographic; only stability matters here.
    fn hash(seed: u64, parts: &[&[u8]]) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
        for part in parts {
            for &b in *part {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            h ^= 0xff; // part separator
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let parts: [&[u8]; 3] = [b"connlog-derived-event-id", id.as_bytes(), label];
    let hi = hash(0x0123_4567_89ab_cdef, &parts);
    let lo = hash(0xfedc_ba98_7654_3210, &parts);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hi.to_be_bytes());
    bytes[8..].copy_from_slice(&lo.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The merge rules of `crate::merge`'s table, written independently of `merge.rs`.
    fn fold(events: &[ConnectionEvent]) -> ConnectionLog {
        let earliest =
            |a: &&ConnectionEvent, b: &&ConnectionEvent| (a.time, a.id).cmp(&(b.time, b.id));
        let connects: Vec<&ConnectionEvent> = events
            .iter()
            .filter(|e| e.status == ConnectionStatus::Connected)
            .collect();
        let mut disconnects: Vec<&ConnectionEvent> = events
            .iter()
            .filter(|e| e.status == ConnectionStatus::Disconnected)
            .collect();
        disconnects.sort_by(earliest);
        let defining = connects
            .iter()
            .copied()
            .min_by(earliest)
            .or(disconnects.first().copied())
            .unwrap();
        let web = defining.connection_id.is_none();
        ConnectionLog {
            id: defining.id,
            connect_time: events.iter().map(|e| e.time).min().unwrap(),
            organization_id: defining.organization_id,
            workspace_owner_id: defining.workspace_owner_id,
            workspace_id: defining.workspace_id,
            workspace_name: defining.workspace_name.clone(),
            agent_name: defining.agent_name.clone(),
            connection_method: defining.connection_method,
            code: if web {
                defining.code
            } else {
                disconnects.iter().find_map(|e| e.code)
            },
            ip: defining.ip.clone(),
            user_agent: defining.user_agent.clone(),
            user_id: defining.user_id,
            app_name_or_port: defining.app_name_or_port.clone(),
            connection_id: defining.connection_id,
            disconnect_time: disconnects.first().map(|e| e.time),
            disconnect_reason: if web {
                defining.disconnect_reason.clone()
            } else {
                disconnects
                    .iter()
                    .find_map(|e| e.disconnect_reason.clone().filter(|r| !r.is_empty()))
            },
            client_session_id: defining.client_session_id.clone(),
        }
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn session_row() -> ConnectionLog {
        ConnectionLog {
            id: Uuid::parse_str("ca5dfc63-dc43-463a-bb3e-38526866fd4b").unwrap(),
            connect_time: 1_000,
            organization_id: id(1),
            workspace_owner_id: id(2),
            workspace_id: id(3),
            workspace_name: "dev".into(),
            agent_name: "main".into(),
            connection_method: ConnectionMethod::Ssh,
            code: None,
            ip: Some("10.0.0.1".into()),
            user_agent: None,
            user_id: None,
            app_name_or_port: Some("cursor".into()),
            connection_id: Some(id(4)),
            disconnect_time: None,
            disconnect_reason: None,
            client_session_id: Some("0123456789abcdef0123456789abcdef".into()),
        }
    }

    #[test]
    fn ongoing_session_is_one_connect() {
        let row = session_row();
        let events = row_events(&row);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id, row.id);
        assert_eq!(events[0].time, row.connect_time);
        assert_eq!(events[0].status, ConnectionStatus::Connected);
        assert_eq!(fold(&events), row);
    }

    #[test]
    fn completed_session_is_connect_then_disconnect() {
        let mut row = session_row();
        row.disconnect_time = Some(5_000);
        row.code = Some(0);
        row.disconnect_reason = Some("bye".into());
        let events = row_events(&row);
        assert_eq!(events.len(), 2);
        let (c, d) = (&events[0], &events[1]);
        assert_eq!(
            (c.id, c.time, c.status, c.code, c.disconnect_reason.clone()),
            (row.id, 1_000, ConnectionStatus::Connected, None, None)
        );
        assert_eq!(
            (d.time, d.status, d.code),
            (5_000, ConnectionStatus::Disconnected, Some(0))
        );
        assert_eq!(d.disconnect_reason.as_deref(), Some("bye"));
        assert_ne!(d.id, row.id);
        assert_eq!(
            d.id,
            derived_id(row.id, b"disconnect"),
            "stable across calls"
        );
        assert_eq!(d.id.get_version_num(), 8);
        assert_eq!(d.id.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(fold(&events), row);
    }

    #[test]
    fn disconnect_only_row_is_one_disconnect_with_the_row_id() {
        let mut row = session_row();
        row.disconnect_time = Some(row.connect_time);
        row.code = Some(255);
        let events = row_events(&row);
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].id, events[0].status, events[0].code),
            (row.id, ConnectionStatus::Disconnected, Some(255))
        );
        assert_eq!(fold(&events), row);
    }

    #[test]
    fn web_row_is_one_connected_event_with_its_status_code() {
        let mut row = session_row();
        row.connection_method = ConnectionMethod::PortForwarding;
        row.connection_id = None;
        row.client_session_id = None;
        row.code = Some(502);
        row.user_id = Some(id(9));
        row.user_agent = Some("curl/8".into());
        row.app_name_or_port = Some("8080".into());
        let events = row_events(&row);
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].id, events[0].status, events[0].code),
            (row.id, ConnectionStatus::Connected, Some(502))
        );
        assert_eq!(fold(&events), row);
    }

    #[test]
    fn derived_ids_differ_by_row_and_label() {
        let a = derived_id(id(1), b"disconnect");
        assert_ne!(a, derived_id(id(2), b"disconnect"));
        assert_ne!(a, derived_id(id(1), b"connect"));
        assert_eq!(a, derived_id(id(1), b"disconnect"));
    }

    fn opt_text() -> impl Strategy<Value = Option<String>> {
        prop_oneof![Just(None), "[a-z ]{1,8}".prop_map(Some)]
    }

    /// Rows as the merge rules can produce them: sessions have a connection id and get a
    /// code and reason only from a disconnect, which is never before the connect time.
    fn any_row() -> impl Strategy<Value = ConnectionLog> {
        use ConnectionMethod::*;
        // (method, whether it is a session): a port forward is either.
        let kinds = prop_oneof![
            Just((Ssh, true)),
            Just((ReconnectingPty, true)),
            Just((PortForwarding, true)),
            Just((WorkspaceApp, false)),
            Just((PortForwarding, false)),
            Just((Tunnel, false))
        ];
        (
            any::<u128>(),
            -1_000_000_000_000i64..4_000_000_000_000_000_000,
            kinds,
            prop::option::of(any::<i32>()),
            opt_text(),
            prop_oneof![
                Just(None),
                Just(Some(0i64)),
                (1i64..1_000_000_000_000).prop_map(Some)
            ],
            prop::option::of(any::<u128>()),
            (opt_text(), prop::option::of(any::<u128>())),
        )
            .prop_map(
                |(
                    row_id,
                    connect_time,
                    (method, session),
                    code,
                    reason,
                    gap,
                    user,
                    (text, csid),
                )| {
                    let web = !session;
                    let disconnect_time = if web {
                        None
                    } else {
                        gap.map(|g| connect_time + g)
                    };
                    let ended = disconnect_time.is_some();
                    ConnectionLog {
                        // Validation refuses nil ids.
                        id: Uuid::from_u128(row_id.max(1)),
                        connect_time,
                        organization_id: id(1),
                        workspace_owner_id: id(2),
                        workspace_id: id(3),
                        workspace_name: "ws".into(),
                        agent_name: "main".into(),
                        connection_method: method,
                        code: if web || ended { code } else { None },
                        ip: text.clone().map(|_| "192.168.0.9".to_string()),
                        user_agent: if web { text.clone() } else { None },
                        user_id: if web {
                            user.map(|u| Uuid::from_u128(u.max(1)))
                        } else {
                            None
                        },
                        // Validation keeps an app for SSH and the web terminal, a slug for a
                        // web event, nothing for an agent's port forward or a tunnel.
                        app_name_or_port: match (method, session) {
                            (Ssh | ReconnectingPty, _) => {
                                text.map(|t| connlog_vocabulary::normalize_app_name(&t))
                            }
                            (WorkspaceApp | PortForwarding, false) => text,
                            _ => None,
                        },
                        connection_id: if web { None } else { Some(id(4)) },
                        disconnect_time,
                        disconnect_reason: if ended { reason } else { None },
                        client_session_id: csid.map(|c| format!("{c:032x}")),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn events_fold_back_into_the_row(row in any_row()) {
            let events = row_events(&row);
            prop_assert!(!events.is_empty() && events.len() <= 2);
            prop_assert_eq!(events.iter().filter(|e| e.id == row.id).count(), 1);
            prop_assert!(events.iter().all(|e| e.status == ConnectionStatus::Disconnected || (e.code.is_none() && e.disconnect_reason.is_none()) || e.connection_id.is_none()));
            // Every event is one validation keeps as it is, so ingesting them stores this row.
            for e in &events {
                prop_assert_eq!(&crate::validate::canonicalize(e.clone()).unwrap(), e);
            }
            prop_assert_eq!(fold(&events), row.clone());
            // In any order.
            let mut reversed = events.clone();
            reversed.reverse();
            prop_assert_eq!(fold(&reversed), row.clone());
            // And again: stable.
            prop_assert_eq!(row_events(&row), events);
        }
    }
}
