//! `validate::canonicalize`: every rule, every error field, the size limits and Go's IP
//! parsing. Runs without the rest of the plugin.

use connlog_plugin_sdk::model::*;
use connlog_plugin_sdk::testing::fixtures::*;
use connlog_reference::validate::{self, canonical_ip, canonicalize};

fn ssh() -> ConnectionEvent {
    ssh_connect(uuid(1), T0, uuid(100))
}

fn web() -> ConnectionEvent {
    workspace_app(uuid(2), T0, Some(uuid(200)), 200)
}

fn refused(event: ConnectionEvent) -> Validation {
    canonicalize(event).expect_err("the event should be refused")
}

fn field_of(event: ConnectionEvent) -> String {
    refused(event).field
}

#[test]
fn a_canonical_event_is_kept_unchanged() {
    for event in [
        ssh(),
        web(),
        ssh_disconnect(uuid(3), T0, uuid(100), Some(0), Some("bye")),
    ] {
        let once = canonicalize(event.clone()).unwrap();
        assert_eq!(once, event);
        assert_eq!(
            canonicalize(once.clone()).unwrap(),
            once,
            "canonicalising is idempotent"
        );
    }
}

#[test]
fn nil_identifiers_are_refused_with_their_field() {
    type Break = fn(&mut ConnectionEvent);
    let cases: [(&str, Break); 4] = [
        ("ID", |e| e.id = Uuid::nil()),
        ("OrganizationID", |e| e.organization_id = Uuid::nil()),
        ("WorkspaceOwnerID", |e| e.workspace_owner_id = Uuid::nil()),
        ("WorkspaceID", |e| e.workspace_id = Uuid::nil()),
    ];
    for (field, break_it) in cases {
        for mut event in [ssh(), web()] {
            break_it(&mut event);
            let v = refused(event);
            assert_eq!(v.field, field);
            assert_eq!(v.detail, "must not be the nil UUID");
        }
    }
}

#[test]
fn empty_names_are_refused() {
    let mut e = ssh();
    e.workspace_name.clear();
    assert_eq!(
        refused(e),
        Validation::new("WorkspaceName", "must not be empty")
    );
    let mut e = web();
    e.agent_name.clear();
    assert_eq!(
        refused(e),
        Validation::new("AgentName", "must not be empty")
    );
}

#[test]
fn size_limits_hold_at_the_boundary() {
    type Set = fn(&mut ConnectionEvent, String);
    let cases: [(&str, usize, Set); 6] = [
        ("WorkspaceName", validate::MAX_NAME_BYTES, |e, s| {
            e.workspace_name = s
        }),
        ("AgentName", validate::MAX_NAME_BYTES, |e, s| {
            e.agent_name = s
        }),
        ("Type", validate::MAX_RAW_TYPE_BYTES, |e, s| {
            e.connection_type = s
        }),
        ("UserAgent", validate::MAX_USER_AGENT_BYTES, |e, s| {
            e.user_agent = Some(s)
        }),
        ("SlugOrPort", validate::MAX_SLUG_OR_PORT_BYTES, |e, s| {
            e.slug_or_port = Some(s)
        }),
        (
            "DisconnectReason",
            validate::MAX_DISCONNECT_REASON_BYTES,
            |e, s| e.disconnect_reason = Some(s),
        ),
    ];
    for (field, max, set) in cases {
        let mut at_limit = ssh();
        set(&mut at_limit, "a".repeat(max));
        assert!(
            canonicalize(at_limit).is_ok(),
            "{field} of {max} bytes is accepted"
        );
        let mut over = ssh();
        set(&mut over, "a".repeat(max + 1));
        assert_eq!(
            refused(over),
            Validation::new(
                field,
                format!("must be at most {max} bytes; got {} bytes", max + 1)
            ),
        );
    }
    // Limits count bytes, not characters.
    let mut e = ssh();
    e.agent_name = "é".repeat(validate::MAX_NAME_BYTES / 2 + 1);
    assert_eq!(field_of(e), "AgentName");
}

#[test]
fn agent_types_are_normalised_as_coder_does() {
    let cases = [
        ("ssh", "ssh"),
        ("Cursor", "cursor"),
        ("  VS-Code  ", "vs_code"),
        ("\x1b[31mvscode\x1b[0m", "[31mvscode[0m"),
        ("code-server", "code_server"),
        ("my-Custom-IDE", "my_custom_ide"),
    ];
    for (raw, want) in cases {
        let mut e = ssh();
        e.connection_type = raw.to_string();
        assert_eq!(
            canonicalize(e).unwrap().connection_type,
            want,
            "type {raw:?}"
        );
    }
    let mut long = ssh();
    long.connection_type = "x".repeat(100);
    assert_eq!(canonicalize(long).unwrap().connection_type, "x".repeat(64));
}

#[test]
fn a_type_empty_after_normalisation_is_refused() {
    for raw in ["", "   ", "\t\n\x07"] {
        let mut e = ssh();
        e.connection_type = raw.to_string();
        let v = refused(e);
        assert_eq!(v.field, "Type");
        assert!(
            v.detail.starts_with("must name a connection type"),
            "{}",
            v.detail
        );
    }
}

#[test]
fn web_types_are_recognised_after_normalisation() {
    for raw in [
        "workspace_app",
        "Workspace_App",
        " port-forwarding ",
        "TUNNEL",
    ] {
        let mut e = web();
        e.connection_type = raw.to_string();
        let c = canonicalize(e.clone()).unwrap_or_else(|v| panic!("{raw:?}: {v:?}"));
        assert!(
            connlog_reference::appname::is_web_type(&c.connection_type),
            "{raw:?} → {}",
            c.connection_type
        );
        e.connection_id = Some(uuid(9));
        assert_eq!(field_of(e), "ConnectionID", "{raw:?} with a connection id");
    }
}

#[test]
fn web_events_carry_no_connection_id_and_are_point_in_time() {
    let mut e = web();
    e.connection_id = Some(uuid(9));
    let v = refused(e);
    assert_eq!(v.field, "ConnectionID");
    assert!(
        v.detail
            .contains("must be absent for a workspace_app event"),
        "{}",
        v.detail
    );

    let mut e = web();
    e.connection_id = Some(Uuid::nil());
    assert_eq!(
        canonicalize(e).unwrap().connection_id,
        None,
        "the nil UUID means absent"
    );

    let mut e = web();
    e.connection_type = "tunnel".into();
    e.status = ConnectionStatus::Disconnected;
    let v = refused(e);
    assert_eq!(v.field, "ConnectionStatus");
    assert!(
        v.detail.contains("must be connected for a tunnel event"),
        "{}",
        v.detail
    );

    let mut e = web();
    e.disconnect_reason = Some("closed".into());
    assert_eq!(field_of(e), "DisconnectReason");
    let mut e = web();
    e.disconnect_reason = Some(String::new());
    assert!(canonicalize(e).is_ok(), "an empty reason is absent");
}

#[test]
fn web_events_keep_their_code() {
    for code in [None, Some(101), Some(200), Some(403), Some(500)] {
        let mut e = web();
        e.code = code;
        assert_eq!(canonicalize(e).unwrap().code, code);
    }
}

#[test]
fn agent_events_need_a_connection_id() {
    for missing in [None, Some(Uuid::nil())] {
        let mut e = ssh();
        e.connection_id = missing;
        let v = refused(e);
        assert_eq!(v.field, "ConnectionID");
        assert!(
            v.detail
                .contains("required for an agent-reported event (type ssh)"),
            "{}",
            v.detail
        );
    }
}

#[test]
fn a_connect_never_keeps_a_code_a_disconnect_keeps_what_it_says() {
    let mut connect = ssh();
    connect.code = Some(200);
    assert_eq!(
        canonicalize(connect).unwrap().code,
        None,
        "a connect never keeps a code"
    );
    for code in [None, Some(0), Some(1), Some(255), Some(-1)] {
        let d = ssh_disconnect(uuid(3), T0, uuid(100), code, None);
        assert_eq!(canonicalize(d).unwrap().code, code);
    }
}

#[test]
fn a_connect_keeps_its_reason() {
    let mut connect = ssh();
    connect.disconnect_reason = Some("odd but Coder logs it".into());
    assert_eq!(
        canonicalize(connect).unwrap().disconnect_reason.as_deref(),
        Some("odd but Coder logs it")
    );
}

#[test]
fn empty_strings_and_nil_uuids_mean_absent() {
    let mut e = web();
    e.user_agent = Some(String::new());
    e.slug_or_port = Some(String::new());
    e.ip = Some(String::new());
    e.user_id = Some(Uuid::nil());
    let c = canonicalize(e).unwrap();
    assert_eq!(
        (c.user_agent, c.slug_or_port, c.ip, c.user_id),
        (None, None, None, None)
    );
    let d = ssh_disconnect(uuid(3), T0, uuid(100), None, Some(""));
    assert_eq!(canonicalize(d).unwrap().disconnect_reason, None);
}

#[test]
fn whitespace_is_not_empty() {
    let mut e = web();
    e.user_agent = Some(" ".into());
    assert_eq!(canonicalize(e).unwrap().user_agent.as_deref(), Some(" "));
}

#[test]
fn any_time_is_accepted() {
    for t in [i64::MIN, -1, 0, T0, i64::MAX] {
        let mut e = ssh();
        e.time = t;
        assert_eq!(canonicalize(e).unwrap().time, t);
    }
}

#[test]
fn ips_follow_go_net_parse_ip() {
    let cases: &[(&str, Option<&str>)] = &[
        ("localhost", Some("127.0.0.1")),
        ("127.0.0.1", Some("127.0.0.1")),
        ("0.0.0.0", Some("0.0.0.0")),
        ("255.255.255.255", Some("255.255.255.255")),
        ("::1", Some("::1")),
        ("::", Some("::")),
        ("0:0:0:0:0:0:0:0", Some("::")),
        ("FD7A:115C:A1E0::1", Some("fd7a:115c:a1e0::1")),
        (
            "fd7a:115c:a1e0:ab12:4843:cd96:626b:430b",
            Some("fd7a:115c:a1e0:ab12:4843:cd96:626b:430b"),
        ),
        (
            "2001:0db8:0000:0000:0000:0000:0000:0001",
            Some("2001:db8::1"),
        ),
        // The first of two equally long zero runs is shortened; a single zero group is not.
        ("2001:db8:0:0:1:0:0:1", Some("2001:db8::1:0:0:1")),
        ("2001:db8:0:1:1:1:1:1", Some("2001:db8:0:1:1:1:1:1")),
        ("1:0:0:2:0:0:0:3", Some("1:0:0:2::3")),
        ("1::2:3:4:5:6:7", Some("1:0:2:3:4:5:6:7")),
        // IPv4-mapped addresses print as IPv4 (Go's `To4`), IPv4-compatible ones do not.
        ("::ffff:1.2.3.4", Some("1.2.3.4")),
        ("::FFFF:102:304", Some("1.2.3.4")),
        ("::1.2.3.4", Some("::102:304")),
        ("64:ff9b::1.2.3.4", Some("64:ff9b::102:304")),
        // Not addresses: stored as absent.
        ("LOCALHOST", None),
        ("localhost:8080", None),
        ("1.2.3.4:80", None),
        ("[::1]", None),
        ("[::1]:22", None),
        ("fe80::1%eth0", None),
        ("10.0.0.0/8", None),
        ("::1/128", None),
        ("01.2.3.4", None),
        ("1.2.3.04", None),
        ("1.2.3", None),
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
        (" 1.2.3.4", None),
        ("1.2.3.4 ", None),
        ("1::2::3", None),
        ("1:2:3:4:5:6:7:8:9", None),
        ("1:2:3:4:5:6:7:8::", None),
        ("12345::1", None),
        ("::ffff:01.2.3.4", None),
        ("example.com", None),
        ("", None),
    ];
    for (raw, want) in cases {
        assert_eq!(canonical_ip(raw).as_deref(), *want, "ip {raw:?}");
        let mut e = ssh();
        e.ip = Some(raw.to_string());
        assert_eq!(
            canonicalize(e).unwrap().ip.as_deref(),
            *want,
            "event with ip {raw:?}"
        );
    }
    let long = format!("{}::1", "0:".repeat(40));
    assert_eq!(
        canonical_ip(&long),
        None,
        "text over the limit is not an address"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Canonical text parses back to the same address and is a fixed point.
        #[test]
        fn ipv6_text_round_trips(groups in proptest::array::uniform8(prop_oneof![Just(0u16), Just(0xffff), any::<u16>()])) {
            let addr = std::net::Ipv6Addr::from(groups);
            let text = canonical_ip(&addr.to_string()).expect("Rust's text parses");
            prop_assert_eq!(canonical_ip(&text), Some(text.clone()));
            match addr.to_ipv4_mapped() {
                Some(v4) => prop_assert_eq!(text, v4.to_string()),
                None => {
                    prop_assert_eq!(text.parse::<std::net::Ipv6Addr>().unwrap(), addr);
                    // Rust's `Display` follows RFC 5952 too, and so does Go for these.
                    prop_assert_eq!(text, addr.to_string());
                }
            }
        }

        /// Canonicalising any accepted event twice changes nothing.
        #[test]
        fn canonicalize_is_idempotent(
            raw_type in "[ -~]{0,20}",
            ip in prop_oneof![Just(String::new()), Just("localhost".to_string()), "[0-9a-fA-F:.]{0,20}"],
            disconnect in any::<bool>(),
            code in proptest::option::of(any::<i32>()),
        ) {
            let mut e = ssh();
            e.connection_type = raw_type;
            e.ip = Some(ip);
            e.code = code;
            if disconnect {
                e.status = ConnectionStatus::Disconnected;
            }
            if let Ok(once) = canonicalize(e) {
                prop_assert_eq!(canonicalize(once.clone()), Ok(once));
            }
        }
    }
}
