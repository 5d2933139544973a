//! Reading and writing events: each field's rules, precise errors, the line reader, and the round
//! trip through the output format.

use std::io;

use serde_json::Value;

use super::*;
use crate::model::{ConnectionEvent, ConnectionStatus, Uuid};

const ORG: &str = "a0f6e7b4-9f36-4c4b-8a2d-1f2e3d4c5b6a";
const OWNER: &str = "6dea7b1c-0b4e-4f44-9d7a-0d1d1a2b3c4d";
const WS: &str = "0e9d8c7b-6a5f-4e3d-8c1b-0a9f8e7d6c5b";
const CONN: &str = "7a6f1b2c-3d4e-4f5a-8b9c-0d1e2f3a4b5c";

fn agent_line() -> Value {
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
        "Ip": "fd7a:115c:a1e0:4c3d:9a1b:2c3d:4e5f:6a7b",
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
    assert_eq!(e.connection_type, "ssh");
    assert_eq!(e.code, None);
    assert_eq!(
        e.ip.as_deref(),
        Some("fd7a:115c:a1e0:4c3d:9a1b:2c3d:4e5f:6a7b")
    );
    assert_eq!(e.user_agent, None);
    assert_eq!(e.user_id, None);
    assert_eq!(e.slug_or_port, None);
    assert_eq!(e.connection_id.unwrap().to_string(), CONN);
    assert_eq!(e.disconnect_reason, None);
    assert_eq!(e.status, ConnectionStatus::Connected);
}

#[test]
fn reads_a_web_event_with_upper_ip() {
    let v = without(agent_line(), "Ip");
    let v = with(v, "IP", "127.0.0.1".into());
    let v = with(v, "Type", "workspace_app".into());
    let v = with(v, "Code", 200.into());
    let v = with(v, "UserAgent", "Mozilla/5.0".into());
    let v = with(v, "UserID", OWNER.into());
    let v = with(v, "SlugOrPort", "code-server".into());
    let v = with(v, "ConnectionID", Value::Null);
    let e = event(&v);
    assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(e.code, Some(200));
    assert_eq!(e.user_agent.as_deref(), Some("Mozilla/5.0"));
    assert_eq!(e.user_id.unwrap().to_string(), OWNER);
    assert_eq!(e.slug_or_port.as_deref(), Some("code-server"));
    assert_eq!(e.connection_id, None);
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
    // Optional fields may be left out altogether.
    let mut v = agent_line();
    for key in [
        "Code",
        "Ip",
        "UserAgent",
        "UserID",
        "SlugOrPort",
        "ConnectionID",
        "DisconnectReason",
    ] {
        v = without(v, key);
    }
    let e = event(&v);
    assert_eq!((e.code, e.ip, e.connection_id), (None, None, None));
    // A required id given as "" is the nil UUID: the plugin judges it.
    assert!(
        event(&with(agent_line(), "WorkspaceID", "".into()))
            .workspace_id
            .is_nil()
    );
    // "localhost" and bad IPs pass through: the plugin handles them.
    assert_eq!(
        event(&with(agent_line(), "Ip", "localhost".into()))
            .ip
            .as_deref(),
        Some("localhost")
    );
    assert_eq!(
        event(&with(agent_line(), "Ip", "not-an-ip".into()))
            .ip
            .as_deref(),
        Some("not-an-ip")
    );
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
            with(agent_line(), "SlugOrPort", 8080.into()),
            "wrong JSON type for `SlugOrPort`: expected a string or null, got a number",
        ),
        (
            with(agent_line(), "WorkspaceName", serde_json::json!(["dev"])),
            "wrong JSON type for `WorkspaceName`: expected a string, got an array",
        ),
        (
            with(agent_line(), "IP", "10.0.0.1".into()),
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
    ];
    for (v, want) in table {
        assert_eq!(error(&v), want, "{v}");
    }
    // Both Ip and IP set to the same value is fine.
    let v = with(
        agent_line(),
        "IP",
        "fd7a:115c:a1e0:4c3d:9a1b:2c3d:4e5f:6a7b".into(),
    );
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
        serde_json::json!({"msg": "connection_log", "fields": without(agent_line(), "Type")});
    assert_eq!(error(&bad_fields), "missing field `Type`");
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

#[test]
fn json_round_trip() {
    let full = ConnectionEvent {
        id: Uuid::parse_str("11111111-2222-4333-8444-555555555555").unwrap(),
        time: 1_752_142_478_942_776_145,
        organization_id: Uuid::parse_str(ORG).unwrap(),
        workspace_owner_id: Uuid::parse_str(OWNER).unwrap(),
        workspace_id: Uuid::parse_str(WS).unwrap(),
        workspace_name: "dev \"quoted\" ✓".into(),
        agent_name: "main".into(),
        connection_type: "VS-Code Insiders".into(),
        code: Some(-1),
        ip: Some("fd7a:115c:a1e0::1".into()),
        user_agent: Some("Mozilla/5.0 (X11)".into()),
        user_id: Some(Uuid::parse_str(OWNER).unwrap()),
        slug_or_port: Some("8080".into()),
        connection_id: Some(Uuid::parse_str(CONN).unwrap()),
        disconnect_reason: Some("client disconnected".into()),
        status: ConnectionStatus::Disconnected,
    };
    let bare = ConnectionEvent {
        code: None,
        ip: None,
        user_agent: None,
        user_id: None,
        slug_or_port: None,
        connection_id: None,
        disconnect_reason: None,
        status: ConnectionStatus::Connected,
        time: -1,
        ..full.clone()
    };
    for e in [full, bare] {
        let value = event_to_json(&e);
        assert_eq!(event(&value), e);
        let line = event_to_line(&e);
        assert_eq!(parse_line(&line), Ok(Parsed::Event(e.clone())));
        let mut buf = Vec::new();
        write_event_line(&mut buf, &e).unwrap();
        assert_eq!(buf, format!("{line}\n").into_bytes());
    }
}

#[test]
fn json_output_uses_coder_names_and_order() {
    let e = event(&agent_line());
    let line = event_to_line(&e);
    let keys: Vec<&str> = [
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
    ]
    .into();
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| line.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{line}");
    assert_eq!(event_to_json(&e), agent_line());
}
