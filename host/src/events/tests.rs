//! Reading and writing events: each field's rules, both generations of Coder's fields, precise
//! errors, the line reader, and the round trip through the output format.

use std::io;

use connlog_vocabulary::{AppFamily, app_family};
use serde_json::Value;

use super::*;
use crate::conformance::spec_tables::CURRENT_LOG_FIELDS;
use crate::model::{ConnectionEvent, ConnectionMethod, ConnectionStatus, LogFields, Uuid};

const ORG: &str = "a0f6e7b4-9f36-4c4b-8a2d-1f2e3d4c5b6a";
const OWNER: &str = "6dea7b1c-0b4e-4f44-9d7a-0d1d1a2b3c4d";
const WS: &str = "0e9d8c7b-6a5f-4e3d-8c1b-0a9f8e7d6c5b";
const CONN: &str = "7a6f1b2c-3d4e-4f5a-8b9c-0d1e2f3a4b5c";
const CSID: &str = "0123456789abcdef0123456789abcdef";
const BAD_CSID: &str = "0123456789ABCDEF0123456789ABCDEF";
const TAILNET_IP: &str = "fd7a:115c:a1e0:4c3d:9a1b:2c3d:4e5f:6a7b";

/// An agent's SSH connect in Coder's current fields.
fn agent_line() -> Value {
    serde_json::json!({
        "ID": "11111111-2222-4333-8444-555555555555",
        "OrganizationID": ORG,
        "WorkspaceOwnerID": OWNER,
        "WorkspaceID": WS,
        "WorkspaceName": "dev",
        "AgentName": "main",
        "ConnectionMethod": "ssh",
        "Code": null,
        "IP": TAILNET_IP,
        "UserAgent": "",
        "UserID": null,
        "AppNameOrPort": "",
        "ConnectionID": CONN,
        "DisconnectReason": "",
        "ClientSessionID": "",
        "Time": "2025-07-10T10:14:38.942776145Z",
        "ConnectionStatus": "connected"
    })
}

/// The same connect in the seed's fields.
fn seed_line() -> Value {
    serde_json::json!({
        "ID": "11111111-2222-4333-8444-555555555555",
        "Time": "2025-07-10T10:14:38.942776145Z",
        "OrganizationID": ORG,
        "WorkspaceOwnerID": OWNER,
        "WorkspaceID": WS,
        "WorkspaceName": "dev",
        "AgentName": "main",
        "Type": "ssh",
        "Code": null,
        "Ip": TAILNET_IP,
        "UserAgent": "",
        "UserID": null,
        "SlugOrPort": "",
        "ConnectionID": CONN,
        "DisconnectReason": "",
        "ConnectionStatus": "connected"
    })
}

fn parse_value(v: &Value) -> Result<Parsed, EventError> {
    parse_line(&v.to_string())
}

fn event(v: &Value) -> ConnectionEvent {
    match parse_value(v) {
        Ok(Parsed::Event(e)) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn error(v: &Value) -> String {
    parse_value(v).expect_err("expected an error").to_string()
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v.as_object_mut().unwrap().insert(key.to_owned(), value);
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

fn with_all(mut v: Value, pairs: &[(&str, Value)]) -> Value {
    for (key, value) in pairs {
        v = with(v, key, value.clone());
    }
    v
}

/// The method, app and client session id an event was read with.
type Shape<'a> = (ConnectionMethod, Option<&'a str>, Option<&'a str>);

fn shape(e: &ConnectionEvent) -> Shape<'_> {
    (
        e.connection_method,
        e.app_name_or_port.as_deref(),
        e.client_session_id.as_deref(),
    )
}

#[test]
fn reads_an_agent_event() {
    let e = event(&agent_line());
    assert_eq!(e.id.to_string(), "11111111-2222-4333-8444-555555555555");
    assert_eq!(e.time, 1_752_142_478_942_776_145);
    assert_eq!(e.organization_id.to_string(), ORG);
    assert_eq!(e.workspace_owner_id.to_string(), OWNER);
    assert_eq!(e.workspace_id.to_string(), WS);
    assert_eq!(e.workspace_name, "dev");
    assert_eq!(e.agent_name, "main");
    assert_eq!(e.connection_method, ConnectionMethod::Ssh);
    assert_eq!(e.code, None);
    assert_eq!(e.ip.as_deref(), Some(TAILNET_IP));
    assert_eq!(e.user_agent, None);
    assert_eq!(e.user_id, None);
    assert_eq!(e.app_name_or_port, None);
    assert_eq!(e.connection_id.unwrap().to_string(), CONN);
    assert_eq!(e.disconnect_reason, None);
    assert_eq!(e.client_session_id, None);
    assert_eq!(e.status, ConnectionStatus::Connected);
    // The seed's spelling of the same connect reads the same.
    assert_eq!(event(&seed_line()), e);
}

#[test]
fn reads_a_web_event_with_upper_ip() {
    let v = without(seed_line(), "Ip");
    let v = with_all(
        v,
        &[
            ("IP", "127.0.0.1".into()),
            ("Type", "workspace_app".into()),
            ("Code", 200.into()),
            ("UserAgent", "Mozilla/5.0".into()),
            ("UserID", OWNER.into()),
            ("SlugOrPort", "code-server".into()),
            ("ConnectionID", Value::Null),
        ],
    );
    let e = event(&v);
    assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(e.code, Some(200));
    assert_eq!(e.user_agent.as_deref(), Some("Mozilla/5.0"));
    assert_eq!(e.user_id.unwrap().to_string(), OWNER);
    assert_eq!(
        shape(&e),
        (ConnectionMethod::WorkspaceApp, Some("code-server"), None)
    );
    assert_eq!(e.connection_id, None);
}

/// Each seed `Type`, as migration 000614 and the agent mapping read it (spec §2.1, §4.2,
/// §11.1, §11.2).
#[test]
fn seed_lines_map_as_migration_000614() {
    use ConnectionMethod::*;
    let table: &[(&str, &str, ConnectionMethod, Option<&str>)] = &[
        ("ssh", "", Ssh, None),
        ("vscode", "", Ssh, Some("vscode")),
        ("jetbrains", "", Ssh, Some("jetbrains")),
        ("reconnecting_pty", "", ReconnectingPty, None),
        (
            "workspace_app",
            "code-server",
            WorkspaceApp,
            Some("code-server"),
        ),
        ("port_forwarding", "8080", PortForwarding, Some("8080")),
        ("tunnel", "", Tunnel, None),
        // A slug on an agent or tunnel row is dropped; a family type overwrites it.
        ("ssh", "x", Ssh, None),
        ("tunnel", "x", Tunnel, None),
        ("vscode", "x", Ssh, Some("vscode")),
        ("workspace_app", "", WorkspaceApp, None),
        // An app name as the type is that app over SSH, passed on raw for the plugin.
        ("cursor", "", Ssh, Some("cursor")),
        ("Cursor", "", Ssh, Some("Cursor")),
        ("goland", "8080", Ssh, Some("goland")),
        ("Some-New-IDE", "", Ssh, Some("Some-New-IDE")),
        // Classified by the normalised name, as the plugin always classified the type.
        (
            " Workspace_App ",
            "code-server",
            WorkspaceApp,
            Some("code-server"),
        ),
        ("Tunnel", "", Tunnel, None),
        (" VSCode\t", "", Ssh, Some("vscode")),
        ("JetBrains", "", Ssh, Some("jetbrains")),
        ("SSH", "", Ssh, None),
        ("Reconnecting-PTY", "", ReconnectingPty, None),
    ];
    for &(t, slug, method, app) in table {
        let v = with_all(
            seed_line(),
            &[("Type", t.into()), ("SlugOrPort", slug.into())],
        );
        assert_eq!(
            shape(&event(&v)),
            (method, app, None),
            "Type {t:?}, SlugOrPort {slug:?}"
        );
    }
    // `Ip`, `IP`, or both when they agree.
    for keys in [&["Ip"][..], &["IP"], &["Ip", "IP"]] {
        let mut v = without(seed_line(), "Ip");
        for key in keys {
            v = with(v, key, "10.1.2.3".into());
        }
        assert_eq!(event(&v).ip.as_deref(), Some("10.1.2.3"), "{keys:?}");
    }
}

/// Coder's current fields: each method with an app, a slug or a port, and a client session
/// id (spec §2.5, §11.3). Values pass raw: the plugin normalises and checks them.
#[test]
fn current_lines_read_method_app_and_client_session() {
    use ConnectionMethod::*;
    // (ConnectionMethod, AppNameOrPort, ClientSessionID) in, the event's shape out.
    let table: &[(&str, &str, &str, Shape)] = &[
        ("ssh", "", "", (Ssh, None, None)),
        ("ssh", "vscode", "", (Ssh, Some("vscode"), None)),
        ("ssh", "cursor", CSID, (Ssh, Some("cursor"), Some(CSID))),
        (
            "ssh",
            "Some-New-IDE",
            CSID,
            (Ssh, Some("Some-New-IDE"), Some(CSID)),
        ),
        (
            "reconnecting_pty",
            "",
            CSID,
            (ReconnectingPty, None, Some(CSID)),
        ),
        (
            "reconnecting_pty",
            "some_app",
            "",
            (ReconnectingPty, Some("some_app"), None),
        ),
        (
            "workspace_app",
            "code-server",
            "",
            (WorkspaceApp, Some("code-server"), None),
        ),
        (
            "port_forwarding",
            "8080",
            "",
            (PortForwarding, Some("8080"), None),
        ),
        // An agent-reported port forward: no app, a client session id.
        (
            "port_forwarding",
            "",
            CSID,
            (PortForwarding, None, Some(CSID)),
        ),
        ("tunnel", "", "", (Tunnel, None, None)),
        // Malformed client session ids reach the plugin, which rejects them.
        ("ssh", "", BAD_CSID, (Ssh, None, Some(BAD_CSID))),
    ];
    for &(m, app, csid, want) in table {
        let v = with_all(
            agent_line(),
            &[
                ("ConnectionMethod", m.into()),
                ("AppNameOrPort", app.into()),
                ("ClientSessionID", csid.into()),
            ],
        );
        assert_eq!(shape(&event(&v)), want, "{m} {app:?} {csid:?}");
    }
    // Null and absent are absent too.
    for absent in [Some(Value::Null), None] {
        let mut v = agent_line();
        for key in ["AppNameOrPort", "ClientSessionID"] {
            v = match &absent {
                Some(null) => with(v, key, null.clone()),
                None => without(v, key),
            };
        }
        assert_eq!(shape(&event(&v)), (Ssh, None, None), "{absent:?}");
    }
}

/// A `Type` beside a `ConnectionMethod` is ignored; a line with a method and only the
/// seed's `SlugOrPort` reads its app from that.
#[test]
fn connection_method_wins_over_type() {
    use ConnectionMethod::*;
    let table: &[(&[(&str, &str)], Shape)] = &[
        // As Coder ignores an agent's legacy VSCODE once METHOD_SSH is given (§11.2).
        (&[("Type", "vscode")], (Ssh, None, None)),
        (
            &[("Type", "vscode"), ("AppNameOrPort", "cursor")],
            (Ssh, Some("cursor"), None),
        ),
        (
            &[("Type", "ssh"), ("ConnectionMethod", "tunnel")],
            (Tunnel, None, None),
        ),
        (&[("Type", "")], (Ssh, None, None)),
        (
            &[("Type", "workspace_app"), ("SlugOrPort", "code-server")],
            (Ssh, None, None),
        ),
        (
            &[
                ("ConnectionMethod", "workspace_app"),
                ("SlugOrPort", "jupyter"),
            ],
            (WorkspaceApp, None, None),
        ),
    ];
    for &(pairs, want) in table {
        let pairs: Vec<(&str, Value)> = pairs.iter().map(|&(k, v)| (k, v.into())).collect();
        let v = with_all(agent_line(), &pairs);
        assert_eq!(shape(&event(&v)), want, "{pairs:?}");
    }
    let slug_only = with_all(
        without(agent_line(), "AppNameOrPort"),
        &[
            ("ConnectionMethod", "workspace_app".into()),
            ("SlugOrPort", "jupyter".into()),
            ("ConnectionID", Value::Null),
        ],
    );
    assert_eq!(
        shape(&event(&slug_only)),
        (WorkspaceApp, Some("jupyter"), None)
    );
}

#[test]
fn method_and_type_errors() {
    let methods = "ssh, reconnecting_pty, workspace_app, port_forwarding, tunnel";
    let table: Vec<(Value, String)> =
        vec![
        (
            with(agent_line(), "ConnectionMethod", "vscode".into()),
            format!("unknown `ConnectionMethod` \"vscode\" (one of {methods})"),
        ),
        (
            with(agent_line(), "ConnectionMethod", "SSH".into()),
            format!("unknown `ConnectionMethod` \"SSH\" (one of {methods})"),
        ),
        (
            with(agent_line(), "ConnectionMethod", "".into()),
            format!("unknown `ConnectionMethod` \"\" (one of {methods})"),
        ),
        (
            with(agent_line(), "ConnectionMethod", 1.into()),
            "wrong JSON type for `ConnectionMethod`: expected a string, got a number".into(),
        ),
        (
            with(agent_line(), "ConnectionMethod", Value::Null),
            "wrong JSON type for `ConnectionMethod`: expected a string, got null".into(),
        ),
        (
            without(agent_line(), "ConnectionMethod"),
            "missing field `ConnectionMethod` (or the seed's `Type`)".into(),
        ),
        (
            without(seed_line(), "Type"),
            "missing field `ConnectionMethod` (or the seed's `Type`)".into(),
        ),
        (
            with(without(agent_line(), "ConnectionMethod"), "connectionMethod", "ssh".into()),
            "missing field `ConnectionMethod` (or the seed's `Type`) (found `connectionMethod`; \
             field names are case-sensitive)"
                .into(),
        ),
        (
            with(without(seed_line(), "Type"), "type", "ssh".into()),
            "missing field `ConnectionMethod` (or the seed's `Type`) (found `type`; field names \
             are case-sensitive)"
                .into(),
        ),
        (
            with(seed_line(), "Type", 3.into()),
            "wrong JSON type for `Type`: expected a string, got a number".into(),
        ),
        (
            with(agent_line(), "AppNameOrPort", 8080.into()),
            "wrong JSON type for `AppNameOrPort`: expected a string or null, got a number".into(),
        ),
        (
            with(agent_line(), "ClientSessionID", true.into()),
            "wrong JSON type for `ClientSessionID`: expected a string or null, got a boolean"
                .into(),
        ),
        (
            with(seed_line(), "SlugOrPort", 8080.into()),
            "wrong JSON type for `SlugOrPort`: expected a string or null, got a number".into(),
        ),
    ];
    for (v, want) in table {
        assert_eq!(error(&v), want, "{v}");
    }
    for empty in ["", "   ", "\t\u{0}\u{7f} \n"] {
        assert_eq!(
            error(&with(seed_line(), "Type", empty.into())),
            format!(
                "`Type` must name a connection type; {empty:?} is empty once control characters \
                 and surrounding spaces are removed"
            )
        );
    }
    // A long bad method is cut in the message.
    let msg = error(&with(
        agent_line(),
        "ConnectionMethod",
        "x".repeat(5000).into(),
    ));
    assert!(msg.len() < 250 && msg.contains("… (5000 bytes)"), "{msg}");
}

#[test]
fn absent_values() {
    let nil = "00000000-0000-0000-0000-000000000000";
    for absent in [Value::Null, "".into(), nil.into()] {
        let v = with(agent_line(), "ConnectionID", absent.clone());
        let v = with(v, "UserID", absent.clone());
        let e = event(&v);
        assert_eq!((e.connection_id, e.user_id), (None, None), "{absent}");
    }
    // Optional fields may be left out altogether, in either generation.
    for (line, keys) in [
        (
            agent_line(),
            &[
                "Code",
                "IP",
                "UserAgent",
                "UserID",
                "AppNameOrPort",
                "ConnectionID",
                "DisconnectReason",
                "ClientSessionID",
            ][..],
        ),
        (
            seed_line(),
            &[
                "Code",
                "Ip",
                "UserAgent",
                "UserID",
                "SlugOrPort",
                "ConnectionID",
                "DisconnectReason",
            ],
        ),
    ] {
        let mut v = line;
        for key in keys {
            v = without(v, key);
        }
        let e = event(&v);
        assert_eq!((e.code, e.ip, e.connection_id), (None, None, None));
        assert_eq!((e.app_name_or_port, e.client_session_id), (None, None));
    }
    // A required id given as "" is the nil UUID: the plugin judges it.
    assert!(
        event(&with(agent_line(), "WorkspaceID", "".into()))
            .workspace_id
            .is_nil()
    );
    // "localhost" and bad IPs pass through: the plugin handles them.
    for ip in ["localhost", "not-an-ip"] {
        assert_eq!(
            event(&with(agent_line(), "IP", ip.into())).ip.as_deref(),
            Some(ip)
        );
    }
}

#[test]
fn precise_errors() {
    let table: Vec<(Value, &str)> = vec![
        (without(agent_line(), "ID"), "missing field `ID`"),
        (
            without(agent_line(), "ConnectionStatus"),
            "missing field `ConnectionStatus`",
        ),
        (
            with(
                without(agent_line(), "WorkspaceName"),
                "workspaceName",
                "dev".into(),
            ),
            "missing field `WorkspaceName` (found `workspaceName`; field names are case-sensitive)",
        ),
        (
            with(agent_line(), "ID", "nope".into()),
            "`ID` is not a valid UUID: \"nope\"",
        ),
        (
            with(agent_line(), "ConnectionID", "123".into()),
            "`ConnectionID` is not a valid UUID: \"123\"",
        ),
        (
            with(agent_line(), "UserID", 5.into()),
            "wrong JSON type for `UserID`: expected a UUID string or null, got a number",
        ),
        (
            with(agent_line(), "ID", Value::Null),
            "wrong JSON type for `ID`: expected a string, got null",
        ),
        (
            with(agent_line(), "Time", "2025-07-10".into()),
            "`Time` is not RFC 3339: \"2025-07-10\"",
        ),
        (
            with(agent_line(), "Time", 1752142478.into()),
            "wrong JSON type for `Time`: expected a string, got a number",
        ),
        (
            with(agent_line(), "Time", "3000-01-01T00:00:00Z".into()),
            "`Time` is out of range: \"3000-01-01T00:00:00Z\" (must be between 1677-09-21T00:12:43.145224192Z and 2262-04-11T23:47:16.854775807Z)",
        ),
        (
            with(agent_line(), "ConnectionStatus", "open".into()),
            "unknown `ConnectionStatus` \"open\" (only \"connected\" and \"disconnected\")",
        ),
        (
            with(agent_line(), "ConnectionStatus", "Connected".into()),
            "unknown `ConnectionStatus` \"Connected\" (only \"connected\" and \"disconnected\")",
        ),
        (
            with(agent_line(), "Code", "200".into()),
            "wrong JSON type for `Code`: expected an integer or null, got a string",
        ),
        (
            with(agent_line(), "Code", 200.5.into()),
            "`Code` must be an integer in the 32-bit range, got 200.5",
        ),
        (
            with(agent_line(), "Code", 4_294_967_296_i64.into()),
            "`Code` must be an integer in the 32-bit range, got 4294967296",
        ),
        (
            with(agent_line(), "Code", true.into()),
            "wrong JSON type for `Code`: expected an integer or null, got a boolean",
        ),
        (
            with(agent_line(), "WorkspaceName", serde_json::json!(["dev"])),
            "wrong JSON type for `WorkspaceName`: expected a string, got an array",
        ),
        (
            with(agent_line(), "Ip", "10.0.0.1".into()),
            "`Ip` and `IP` disagree: \"10.0.0.1\" and \"fd7a:115c:a1e0:4c3d:9a1b:2c3d:4e5f:6a7b\"",
        ),
        (
            with(seed_line(), "IP", "10.0.0.1".into()),
            "`Ip` and `IP` disagree: \"fd7a:115c:a1e0:4c3d:9a1b:2c3d:4e5f:6a7b\" and \"10.0.0.1\"",
        ),
        (
            serde_json::json!([1, 2]),
            "expected a JSON object, got an array",
        ),
        (
            serde_json::json!("hello"),
            "expected a JSON object, got a string",
        ),
        // Fields are checked in Coder's order: the first bad one is reported.
        (
            with(
                without(agent_line(), "ConnectionMethod"),
                "ID",
                "nope".into(),
            ),
            "`ID` is not a valid UUID: \"nope\"",
        ),
    ];
    for (v, want) in table {
        assert_eq!(error(&v), want, "{v}");
    }
    // Both Ip and IP set to the same value is fine.
    let v = with(agent_line(), "Ip", TAILNET_IP.into());
    assert!(event(&v).ip.is_some());
}

#[test]
fn bad_json_reports_the_column() {
    assert_eq!(
        parse_line(r#"{"ID": }"#).unwrap_err().to_string(),
        "bad JSON at column 8: expected value"
    );
    assert_eq!(
        parse_line(r#"  {"ID": "x""#).unwrap_err().to_string(),
        "bad JSON at column 12: EOF while parsing an object"
    );
    let human = "[API] 2025-07-03 06:57:16.157 [info]  coderd: connection_log  ID=...";
    assert!(
        parse_line(human)
            .unwrap_err()
            .to_string()
            .contains("human-format service-log line")
    );
}

#[test]
fn long_values_are_cut_in_messages() {
    let long = "x".repeat(10_000);
    let msg = error(&with(agent_line(), "ID", long.into()));
    assert!(msg.len() < 200, "{msg}");
    assert!(msg.ends_with("… (10000 bytes)"), "{msg}");
}

/// The `fields` of spec §8's JSON example (VS Code over SSH), in its order. The example
/// elides the ids and part of the IP; they are filled in here (the ids from the docs' seed
/// example, the connection id's tail made up).
const CURRENT_EXAMPLE_FIELDS: &str = concat!(
    r#"{"ID":"ca5dfc63-dc43-463a-bb3e-38526866fd4b","#,
    r#""OrganizationID":"1a2bb67e-0117-4168-92e0-58138989a7f5","#,
    r#""WorkspaceOwnerID":"fe8f4bab-3128-41f1-8fec-1cc0755affe5","#,
    r#""WorkspaceID":"05567e23-31e2-4c00-bd05-4d499d437347","#,
    r#""WorkspaceName":"dev","AgentName":"main","ConnectionMethod":"ssh","Code":null,"#,
    r#""IP":"fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7","UserAgent":"","UserID":null,"#,
    r#""AppNameOrPort":"vscode","ConnectionID":"875e4c1a-90b2-4f3e-8d7c-6b5a4f3e2d1c","#,
    r#""DisconnectReason":"","ClientSessionID":"","Time":"2026-10-07T11:34:37.428771813Z","#,
    r#""ConnectionStatus":"connected"}"#
);

/// Coder's docs' JSON example of the seed's line (an SSH connect), whole.
const SEED_EXAMPLE_LINE: &str = r#"{"ts":"2025-07-03T05:09:41.929840747Z","level":"INFO","msg":"connection_log","caller":"/home/coder/coder/enterprise/audit/backends/slog.go:38","func":"github.com/coder/coder/v2/enterprise/audit/backends.(*SlogExporter).ExportStruct","logger_names":["coderd"],"fields":{"request_id":"916ad077-e120-4861-8640-f449d56d2bae","ID":"ca5dfc63-dc43-463a-bb3e-38526866fd4b","OrganizationID":"1a2bb67e-0117-4168-92e0-58138989a7f5","WorkspaceOwnerID":"fe8f4bab-3128-41f1-8fec-1cc0755affe5","WorkspaceID":"05567e23-31e2-4c00-bd05-4d499d437347","WorkspaceName":"dev","AgentName":"main","Type":"ssh","Code":null,"Ip":"fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7","UserAgent":"","UserID":null,"SlugOrPort":"","ConnectionID":"7a6fafdc-e3d0-43cb-a1b7-1f19802d7908","DisconnectReason":"","Time":"2025-07-10T10:14:38.942776145Z","ConnectionStatus":"connected"}}"#;

fn parsed_event(line: &str) -> ConnectionEvent {
    match parse_line(line) {
        Ok(Parsed::Event(e)) => e,
        other => panic!("expected an event from {line}, got {other:?}"),
    }
}

#[test]
fn whole_service_log_lines_of_both_generations() {
    // Current (spec §8): D's lines have no request_id and log from slog.go:36.
    let current = format!(
        r#"{{"ts":"2026-10-07T11:34:37.428915432Z","level":"INFO","msg":"connection_log","caller":"/home/coder/coder/enterprise/audit/backends/slog.go:36","func":"github.com/coder/coder/v2/enterprise/audit/backends.(*SlogExporter).ExportStruct","logger_names":["coderd"],"fields":{CURRENT_EXAMPLE_FIELDS}}}"#
    );
    let e = parsed_event(&current);
    assert_eq!(shape(&e), (ConnectionMethod::Ssh, Some("vscode"), None));
    assert_eq!(e.time, 1_791_372_877_428_771_813);
    assert_eq!(
        e.ip.as_deref(),
        Some("fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7")
    );
    // The writer gives the example's fields back, byte for byte.
    assert_eq!(event_to_line(&e), CURRENT_EXAMPLE_FIELDS);

    // The seed (the docs' example): the same fields but for the generation's own.
    let e = parsed_event(SEED_EXAMPLE_LINE);
    assert_eq!(shape(&e), (ConnectionMethod::Ssh, None, None));
    assert_eq!(e.id.to_string(), "ca5dfc63-dc43-463a-bb3e-38526866fd4b");
    assert_eq!(
        e.connection_id.unwrap().to_string(),
        "7a6fafdc-e3d0-43cb-a1b7-1f19802d7908"
    );
    assert_eq!(e.time, 1_752_142_478_942_776_145);
    let mut fields = serde_json::from_str::<Value>(SEED_EXAMPLE_LINE).unwrap()["fields"].clone();
    fields.as_object_mut().unwrap().remove("request_id");
    let written: Value = serde_json::from_str(&event_to_line_as(&e, LogFields::Seed)).unwrap();
    assert_eq!(written, fields);
}

#[test]
fn service_log_lines() {
    let fields = with(agent_line(), "request_id", "0d9b…".into());
    let line = serde_json::json!({
        "ts": "2025-07-10T10:14:38.95Z",
        "level": "INFO",
        "msg": "connection_log",
        "caller": "/home/coder/coder/enterprise/audit/backends/slog.go:38",
        "func": "github.com/coder/coder/v2/enterprise/audit/backends.(*SlogExporter).ExportStruct",
        "logger_names": ["coderd"],
        "fields": fields,
    });
    assert_eq!(event(&line), event(&agent_line()));
    let other = serde_json::json!({"ts": "2025-07-10T10:14:38.95Z", "level": "INFO", "msg": "started", "fields": {}});
    assert_eq!(
        parse_value(&other),
        Ok(Parsed::Skipped(SkipReason::OtherServiceLog {
            msg: "started".into()
        }))
    );
    let bad = serde_json::json!({"msg": "connection_log", "fields": "x"});
    assert_eq!(
        error(&bad),
        "wrong JSON type for `fields` of a service-log line: expected an object, got a string"
    );
    let missing = serde_json::json!({"msg": "connection_log"});
    assert_eq!(error(&missing), "missing field `fields`");
    let bad_fields =
        serde_json::json!({"msg": "connection_log", "fields": without(seed_line(), "Type")});
    assert_eq!(
        error(&bad_fields),
        "missing field `ConnectionMethod` (or the seed's `Type`)"
    );
    let bad_method = serde_json::json!({"msg": "connection_log", "fields": with(agent_line(), "ConnectionMethod", "jetbrains".into())});
    assert!(error(&bad_method).starts_with("unknown `ConnectionMethod` \"jetbrains\""));
}

#[test]
fn unknown_fields_are_ignored() {
    let v = with(
        agent_line(),
        "SomethingNew",
        serde_json::json!({"a": [1, 2]}),
    );
    assert_eq!(event(&v), event(&agent_line()));
}

/// The reader keeps a line's members as a list, not a map: what a map would give must hold.
#[test]
fn members_read_as_a_map_would() {
    // A repeated name: the last one wins.
    let line = r#"{"WorkspaceName": "first", "ID": "11111111-2222-4333-8444-555555555555", "OrganizationID": "ORG", "WorkspaceOwnerID": "OWNER", "WorkspaceID": "WS", "WorkspaceName": "second", "AgentName": "main", "ConnectionMethod": "ssh", "Time": "2025-07-10T10:14:38Z", "ConnectionStatus": "connected"}"#
        .replace("\"ORG\"", &format!("{ORG:?}"))
        .replace("\"OWNER\"", &format!("{OWNER:?}"))
        .replace("\"WS\"", &format!("{WS:?}"));
    assert_eq!(parsed_event(&line).workspace_name, "second");
    let repeated_wrong = line.replace(r#""WorkspaceName": "second""#, r#""WorkspaceName": 7"#);
    assert_eq!(
        parse_line(&repeated_wrong).unwrap_err().to_string(),
        "wrong JSON type for `WorkspaceName`: expected a string, got a number"
    );
    // Escapes are decoded, in names and in values.
    let escaped = line.replace(
        r#""AgentName": "main""#,
        r#""Agent\u004eame": "m\u00e4in \"x\"\n""#,
    );
    assert_eq!(parsed_event(&escaped).agent_name, "m\u{e4}in \"x\"\n");
    // Every JSON type is named in errors, nested ones included.
    for (value, got) in [
        ("[1, [2]]", "an array"),
        (r#"{"a": {"b": null}}"#, "an object"),
        ("true", "a boolean"),
        ("1.5e3", "a number"),
    ] {
        let wrong = line.replace(
            r#""AgentName": "main""#,
            &format!(r#""AgentName": {value}"#),
        );
        assert_eq!(
            parse_line(&wrong).unwrap_err().to_string(),
            format!("wrong JSON type for `AgentName`: expected a string, got {got}")
        );
    }
    // Of several names that differ only in case from a missing one, the first in sorted
    // order is named.
    let cased = line.replace(
        r#""AgentName": "main""#,
        r#""agentname": "a", "AGENTNAME": "b", "agentName": "c""#,
    );
    assert_eq!(
        parse_line(&cased).unwrap_err().to_string(),
        "missing field `AgentName` (found `AGENTNAME`; field names are case-sensitive)"
    );
}

#[test]
fn reader_numbers_lines_and_never_stops_at_a_bad_one() {
    let good = agent_line().to_string();
    let service = serde_json::json!({"msg": "connection_log", "fields": agent_line()}).to_string();
    let input = format!(
        "\u{feff}{good}\r\n\n   \n{{\"ID\": 1}}\nnot json\n{{\"msg\":\"http request\"}}\n{service}\n{good}"
    );
    let mut reader = EventReader::new(input.as_bytes());
    let items: Vec<_> = reader.by_ref().collect();
    let summary: Vec<String> = items
        .iter()
        .map(|item| match item {
            Ok(Line::Event { line, .. }) => format!("{line}:event"),
            Ok(Line::Skipped { line, reason }) => format!("{line}:skip:{reason:?}"),
            Err(e) => e.to_string(),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            "1:event".to_owned(),
            "2:skip:Blank".to_owned(),
            "3:skip:Blank".to_owned(),
            "line 4: wrong JSON type for `ID`: expected a string, got a number".to_owned(),
            "line 5: bad JSON at column 2: expected ident".to_owned(),
            "6:skip:OtherServiceLog { msg: \"http request\" }".to_owned(),
            "7:event".to_owned(),
            "8:event".to_owned(),
        ]
    );
    assert_eq!(
        reader.stats(),
        ReadStats {
            lines: 8,
            events: 3,
            blank: 2,
            other_service_log: 1,
            rejected: 2
        }
    );
    assert_eq!(reader.stats().skipped(), 3);
    assert_eq!(reader.line_number(), 8);
}

#[test]
fn reader_caps_line_length() {
    let good = agent_line().to_string();
    // A 3 MiB line between two good ones, read through a small buffer.
    let huge = format!("{{\"ID\":\"{}\"}}", "a".repeat(3 << 20));
    let input = format!("{good}\n{huge}\n{good}\n");
    let reader = EventReader::new(std::io::BufReader::with_capacity(4096, input.as_bytes()));
    let items: Vec<_> = reader.collect();
    assert_eq!(items.len(), 3);
    assert!(matches!(items[0], Ok(Line::Event { line: 1, .. })));
    assert_eq!(
        items[1].clone().unwrap_err().to_string(),
        "line 2: line is longer than 1048576 bytes"
    );
    assert!(matches!(items[2], Ok(Line::Event { line: 3, .. })));

    // Exactly at the limit is fine; one more byte is not.
    let reader = EventReader::with_max_line_bytes("abc\r\nabcd\n\n".as_bytes(), 3);
    let items: Vec<_> = reader.collect();
    assert!(matches!(
        &items[0],
        Err(LineError {
            line: 1,
            error: EventError::BadJson { .. }
        })
    ));
    assert!(matches!(
        &items[1],
        Err(LineError {
            line: 2,
            error: EventError::LineTooLong { limit: 3 }
        })
    ));
    assert!(matches!(
        &items[2],
        Ok(Line::Skipped {
            line: 3,
            reason: SkipReason::Blank
        })
    ));
}

#[test]
fn reader_reports_invalid_utf8_and_io_errors() {
    let input: &[u8] = b"\xff\xfe{}\n";
    let items: Vec<_> = EventReader::new(input).collect();
    assert_eq!(
        items[0].clone().unwrap_err().to_string(),
        "line 1: line is not valid UTF-8 (invalid byte at offset 0)"
    );

    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }
    let items: Vec<_> = EventReader::new(std::io::BufReader::new(Failing)).collect();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].clone().unwrap_err().to_string(),
        "line 1: read error: disk on fire"
    );
}

#[test]
fn empty_input() {
    let mut reader = EventReader::new(&b""[..]);
    assert!(reader.next().is_none());
    assert_eq!(reader.stats(), ReadStats::default());
    // No trailing newline on the last line is fine.
    let good = agent_line().to_string();
    assert_eq!(EventReader::new(good.as_bytes()).count(), 1);
}

fn full_event() -> ConnectionEvent {
    ConnectionEvent {
        id: Uuid::parse_str("11111111-2222-4333-8444-555555555555").unwrap(),
        time: 1_752_142_478_942_776_145,
        organization_id: Uuid::parse_str(ORG).unwrap(),
        workspace_owner_id: Uuid::parse_str(OWNER).unwrap(),
        workspace_id: Uuid::parse_str(WS).unwrap(),
        workspace_name: "dev \"quoted\" ✓".into(),
        agent_name: "main".into(),
        connection_method: ConnectionMethod::Ssh,
        code: Some(-1),
        ip: Some("fd7a:115c:a1e0::1".into()),
        user_agent: Some("Mozilla/5.0 (X11)".into()),
        user_id: Some(Uuid::parse_str(OWNER).unwrap()),
        app_name_or_port: Some("VS-Code Insiders".into()),
        connection_id: Some(Uuid::parse_str(CONN).unwrap()),
        disconnect_reason: Some("client disconnected".into()),
        client_session_id: Some(CSID.into()),
        status: ConnectionStatus::Disconnected,
    }
}

/// Events of every method with every kind of app, slug or port, with and without the
/// optional values.
fn assorted_events() -> Vec<ConnectionEvent> {
    let apps = [
        None,
        Some("vscode"),
        Some("jetbrains"),
        Some("cursor"),
        Some("Cursor"),
        Some("goland"),
        Some("zed"),
        Some("Some-New-IDE"),
        Some("code-server"),
        Some("8080"),
        Some("terminal"),
    ];
    let mut events = Vec::new();
    for method in ConnectionMethod::ALL {
        for app in apps {
            for (i, csid) in [None, Some(CSID)].into_iter().enumerate() {
                let full = full_event();
                let bare = ConnectionEvent {
                    code: None,
                    ip: None,
                    user_agent: None,
                    user_id: None,
                    connection_id: None,
                    disconnect_reason: None,
                    status: ConnectionStatus::Connected,
                    time: -1,
                    ..full.clone()
                };
                for base in [full, bare] {
                    events.push(ConnectionEvent {
                        connection_method: method,
                        app_name_or_port: app.map(str::to_owned),
                        client_session_id: csid.map(str::to_owned),
                        time: base.time + i as i64,
                        ..base
                    });
                }
            }
        }
    }
    events
}

/// What the seed's line can carry of an event: the 7-value type and a web slug, no client
/// session id (written by hand, not through the writer's own mapping).
fn seed_projection(e: &ConnectionEvent) -> ConnectionEvent {
    let app = e.app_name_or_port.as_deref();
    let app = match e.connection_method {
        ConnectionMethod::Ssh => match app.map(app_family) {
            Some(AppFamily::Vscode) => Some("vscode"),
            Some(AppFamily::Jetbrains) => Some("jetbrains"),
            _ => None,
        },
        ConnectionMethod::WorkspaceApp | ConnectionMethod::PortForwarding => app,
        ConnectionMethod::ReconnectingPty | ConnectionMethod::Tunnel => None,
    };
    ConnectionEvent {
        app_name_or_port: app.map(str::to_owned),
        client_session_id: None,
        ..e.clone()
    }
}

#[test]
fn writer_reader_round_trip_of_both_generations() {
    let events = assorted_events();
    assert_eq!(events.len(), 5 * 11 * 2 * 2);
    for e in &events {
        // The current fields carry everything.
        let line = event_to_line(e);
        assert_eq!(parse_line(&line), Ok(Parsed::Event(e.clone())), "{line}");
        assert_eq!(event(&event_to_json(e)), *e);
        let mut buf = Vec::new();
        write_event_line(&mut buf, e).unwrap();
        assert_eq!(buf, format!("{line}\n").into_bytes());
        let mut buf = Vec::new();
        write_event_line_as(&mut buf, e, LogFields::Current).unwrap();
        assert_eq!(buf, format!("{line}\n").into_bytes());
        // The seed's carry what they can, and that much exactly.
        let seed = event_to_line_as(e, LogFields::Seed);
        assert_eq!(
            parse_line(&seed),
            Ok(Parsed::Event(seed_projection(e))),
            "{seed}"
        );
        let mut buf = Vec::new();
        write_event_line_as(&mut buf, e, LogFields::Seed).unwrap();
        assert_eq!(buf, format!("{seed}\n").into_bytes());
    }
    // What the seed's line can carry comes back whole.
    let ide = ConnectionEvent {
        app_name_or_port: Some("jetbrains".into()),
        client_session_id: None,
        ..full_event()
    };
    assert_eq!(parsed_event(&event_to_line_as(&ide, LogFields::Seed)), ide);
}

fn key_order(line: &str, keys: &[&str]) {
    let value: Value = serde_json::from_str(line).unwrap();
    assert_eq!(value.as_object().unwrap().len(), keys.len(), "{line}");
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            line.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("no {k} in {line}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{line}");
}

#[test]
fn json_output_uses_coder_names_and_order() {
    let e = event(&agent_line());
    key_order(&event_to_line(&e), &CURRENT_LOG_FIELDS);
    assert_eq!(event_to_json(&e), agent_line());
    key_order(
        &event_to_line_as(&e, LogFields::Seed),
        &[
            "ID",
            "Time",
            "OrganizationID",
            "WorkspaceOwnerID",
            "WorkspaceID",
            "WorkspaceName",
            "AgentName",
            "Type",
            "Code",
            "Ip",
            "UserAgent",
            "UserID",
            "SlugOrPort",
            "ConnectionID",
            "DisconnectReason",
            "ConnectionStatus",
        ],
    );
    let seed: Value = serde_json::from_str(&event_to_line_as(&e, LogFields::Seed)).unwrap();
    assert_eq!(seed, seed_line());
}

/// The seed's `Type` is the deprecated 7-value type (spec §7.3); `SlugOrPort` only for web
/// apps and port forwards.
#[test]
fn seed_output_writes_the_deprecated_type() {
    use ConnectionMethod::*;
    let table: &[(ConnectionMethod, Option<&str>, &str, &str)] = &[
        (Ssh, None, "ssh", ""),
        (Ssh, Some("cursor"), "vscode", ""),
        (Ssh, Some("goland"), "jetbrains", ""),
        (Ssh, Some("zed"), "ssh", ""),
        (ReconnectingPty, Some("cursor"), "reconnecting_pty", ""),
        (
            WorkspaceApp,
            Some("code-server"),
            "workspace_app",
            "code-server",
        ),
        (PortForwarding, Some("8080"), "port_forwarding", "8080"),
        (PortForwarding, None, "port_forwarding", ""),
        (Tunnel, None, "tunnel", ""),
    ];
    for &(method, app, t, slug) in table {
        let e = ConnectionEvent {
            connection_method: method,
            app_name_or_port: app.map(str::to_owned),
            ..full_event()
        };
        let v: Value = serde_json::from_str(&event_to_line_as(&e, LogFields::Seed)).unwrap();
        assert_eq!(
            (v["Type"].as_str(), v["SlugOrPort"].as_str()),
            (Some(t), Some(slug)),
            "{method} {app:?}"
        );
        assert!(v.get("ClientSessionID").is_none() && v.get("IP").is_none());
    }
}
