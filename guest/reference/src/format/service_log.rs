//! Coder's `connection_log` service-log lines, in either generation of fields:
//!
//! - [`LogFields::Current`], Coder's current line (version D, spec §8): `ConnectionMethod`,
//!   `AppNameOrPort`, `ClientSessionID` and `IP`; `Time` in the human form is Go's
//!   `time.Time.String()`; no `[API]` prefix.
//! - [`LogFields::Seed`], the line of Coder's older docs ([connection logs]): the deprecated
//!   7-value `Type` (derived from the method and the app, as the API's `type`), `SlugOrPort`
//!   (a web event's slug or port) and `Ip`; `Time` in RFC 3339; the `[API]` prefix.
//!
//! [connection logs]: https://github.com/coder/coder/blob/main/docs/admin/monitoring/connection-logs.md
//!
//! Coder writes one line per event through `SlogExporter.ExportStruct`
//! (`enterprise/audit/backends/slog.go`): one field per struct field, named by the Go field;
//! `pqtype.Inet` becomes `IPNet.IP.String()` (a NULL inet has a nil IP, which Go prints as
//! `<nil>`); `sql.NullString` becomes its `.String` (`""` when NULL); `sql.NullInt32` and
//! `uuid.NullUUID` stay driver values, so JSON writes `null` and the human sink `<nil>` when
//! they are NULL (slog's `driverValue` golden test: `inval=<nil>`).
//!
//! - JSON (`slogjson`): `json.Marshal` of `ts, level, msg, caller, func, logger_names,
//!   fields`, with Go's HTML escaping (`"IP":"\u003cnil\u003e"` when absent). `fields` is in
//!   the order of the docs' JSON example.
//! - Human: `<2006-01-02 15:04:05.000> [info]  coderd: connection_log` then each field as
//!   `Key=value`, two spaces apart, in the order of the docs' human example; values quoted
//!   as slog's `entryhuman.quote` does; `Time` quoted as in the docs.
//!
//! We have no HTTP request, so neither form carries `request_id`.

use core::fmt::Write;

use super::go::{net_ip_string, push_json_str, slog_quote};
use super::timefmt::{go_time_string, human_millis, rfc3339_nano};
use connlog_plugin_sdk::model::*;
use connlog_vocabulary::LegacyType;

/// The file and line of `ExportStruct`'s log call, by generation (the code moved).
const CALLER_CURRENT: &str = "/home/coder/coder/enterprise/audit/backends/slog.go:36";
const CALLER_SEED: &str = "/home/coder/coder/enterprise/audit/backends/slog.go:38";
const FUNC: &str =
    "github.com/coder/coder/v2/enterprise/audit/backends.(*SlogExporter).ExportStruct";

/// One line, without a trailing newline. `logged_at` is when the line is written.
pub fn line(
    event: &ConnectionEvent,
    format: LogFormat,
    fields: LogFields,
    logged_at: UnixNanos,
) -> String {
    let values = field_values(event, fields);
    match format {
        LogFormat::Json => json_line(&values, fields, logged_at),
        LogFormat::Human => human_line(values, fields, logged_at),
    }
}

/// A field's value; each format writes it its own way.
enum Value {
    /// A JSON string; in the human form quoted by slog's rules.
    Text(String),
    Id(Uuid),
    /// `null` / `<nil>` when absent.
    MaybeId(Option<Uuid>),
    /// `null` / `<nil>` when absent.
    Code(Option<i32>),
    /// An RFC 3339 string in JSON; in the human form always quoted, in the generation's
    /// layout.
    Time(UnixNanos),
    /// A bare word in the human form.
    Status(ConnectionStatus),
}

/// The event's fields, in the order of the docs' JSON example of that generation.
fn field_values(e: &ConnectionEvent, fields: LogFields) -> Vec<(&'static str, Value)> {
    let text = |s: Option<&String>| Value::Text(s.cloned().unwrap_or_default());
    let mut values = vec![
        ("ID", Value::Id(e.id)),
        ("OrganizationID", Value::Id(e.organization_id)),
        ("WorkspaceOwnerID", Value::Id(e.workspace_owner_id)),
        ("WorkspaceID", Value::Id(e.workspace_id)),
        ("WorkspaceName", Value::Text(e.workspace_name.clone())),
        ("AgentName", Value::Text(e.agent_name.clone())),
    ];
    let ip = Value::Text(ip_string(e));
    let user_agent = text(e.user_agent.as_ref());
    match fields {
        LogFields::Current => values.extend([
            (
                "ConnectionMethod",
                Value::Text(e.connection_method.as_str().to_string()),
            ),
            ("Code", Value::Code(e.code)),
            ("IP", ip),
            ("UserAgent", user_agent),
            ("UserID", Value::MaybeId(e.user_id)),
            ("AppNameOrPort", text(e.app_name_or_port.as_ref())),
            ("ConnectionID", Value::MaybeId(e.connection_id)),
            ("DisconnectReason", text(e.disconnect_reason.as_ref())),
            ("ClientSessionID", text(e.client_session_id.as_ref())),
        ]),
        LogFields::Seed => {
            let app = e.app_name_or_port.as_deref();
            let legacy_type = LegacyType::of(e.connection_method, app);
            // The seed's column held a web event's destination only.
            let slug = match e.connection_method {
                ConnectionMethod::WorkspaceApp | ConnectionMethod::PortForwarding => app,
                _ => None,
            };
            values.extend([
                ("Type", Value::Text(legacy_type.as_str().to_string())),
                ("Code", Value::Code(e.code)),
                ("Ip", ip),
                ("UserAgent", user_agent),
                ("UserID", Value::MaybeId(e.user_id)),
                (
                    "SlugOrPort",
                    Value::Text(slug.unwrap_or_default().to_string()),
                ),
                ("ConnectionID", Value::MaybeId(e.connection_id)),
                ("DisconnectReason", text(e.disconnect_reason.as_ref())),
            ]);
        }
    }
    values.extend([
        ("Time", Value::Time(e.time)),
        ("ConnectionStatus", Value::Status(e.status)),
    ]);
    values
}

/// `net.IP.String()` of the stored inet, or of a nil IP when there is none.
fn ip_string(event: &ConnectionEvent) -> String {
    match event.ip.as_deref() {
        None => "<nil>".to_string(),
        // Ingest stores only parseable IPs; anything else is written as given.
        Some(ip) => net_ip_string(ip).unwrap_or_else(|| ip.to_string()),
    }
}

fn status_str(status: ConnectionStatus) -> &'static str {
    match status {
        ConnectionStatus::Connected => "connected",
        ConnectionStatus::Disconnected => "disconnected",
    }
}

fn json_line(values: &[(&str, Value)], fields: LogFields, logged_at: UnixNanos) -> String {
    let caller = match fields {
        LogFields::Current => CALLER_CURRENT,
        LogFields::Seed => CALLER_SEED,
    };
    let mut out = String::with_capacity(900);
    out.push_str("{\"ts\":");
    push_json_str(&mut out, &rfc3339_nano(logged_at));
    out.push_str(",\"level\":\"INFO\",\"msg\":\"connection_log\",\"caller\":");
    push_json_str(&mut out, caller);
    out.push_str(",\"func\":");
    push_json_str(&mut out, FUNC);
    out.push_str(",\"logger_names\":[\"coderd\"],\"fields\":{");
    for (i, (key, value)) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{key}\":");
        match value {
            Value::Text(s) => push_json_str(&mut out, s),
            Value::Id(u) | Value::MaybeId(Some(u)) => {
                let _ = write!(out, "\"{}\"", u.hyphenated());
            }
            Value::MaybeId(None) | Value::Code(None) => out.push_str("null"),
            Value::Code(Some(c)) => {
                let _ = write!(out, "{c}");
            }
            Value::Time(t) => push_json_str(&mut out, &rfc3339_nano(*t)),
            Value::Status(s) => push_json_str(&mut out, status_str(*s)),
        }
    }
    out.push_str("}}");
    out
}

fn human_line(
    mut values: Vec<(&'static str, Value)>,
    fields: LogFields,
    logged_at: UnixNanos,
) -> String {
    let mut out = String::with_capacity(700);
    match fields {
        LogFields::Current => {}
        LogFields::Seed => {
            // The seed's human example lists `Time` second, and carries the `[API]` prefix.
            if let Some(at) = values.iter().position(|(k, _)| *k == "Time") {
                let time = values.remove(at);
                values.insert(1, time);
            }
            out.push_str("[API] ");
        }
    }
    let _ = write!(
        out,
        "{} [info]  coderd: connection_log",
        human_millis(logged_at)
    );
    for (key, value) in values {
        let _ = write!(out, "  {key}=");
        match value {
            Value::Text(s) => out.push_str(&slog_quote(&s)),
            Value::Id(u) | Value::MaybeId(Some(u)) => {
                let _ = write!(out, "{}", u.hyphenated());
            }
            Value::MaybeId(None) | Value::Code(None) => out.push_str("<nil>"),
            Value::Code(Some(c)) => {
                let _ = write!(out, "{c}");
            }
            Value::Time(t) => {
                let text = match fields {
                    LogFields::Current => go_time_string(t),
                    LogFields::Seed => rfc3339_nano(t),
                };
                let _ = write!(out, "\"{text}\"");
            }
            Value::Status(s) => out.push_str(status_str(s)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn id(s: &str) -> Uuid {
        Uuid::parse_str(s).unwrap()
    }

    /// The docs' JSON example: an SSH connect.
    fn docs_json_event() -> ConnectionEvent {
        ConnectionEvent {
            id: id("ca5dfc63-dc43-463a-bb3e-38526866fd4b"),
            time: 1_752_142_478 * S + 942_776_145, // 2025-07-10T10:14:38.942776145Z
            organization_id: id("1a2bb67e-0117-4168-92e0-58138989a7f5"),
            workspace_owner_id: id("fe8f4bab-3128-41f1-8fec-1cc0755affe5"),
            workspace_id: id("05567e23-31e2-4c00-bd05-4d499d437347"),
            workspace_name: "dev".into(),
            agent_name: "main".into(),
            connection_method: ConnectionMethod::Ssh,
            code: None,
            ip: Some("fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7".into()),
            user_agent: None,
            user_id: None,
            app_name_or_port: None,
            connection_id: Some(id("7a6fafdc-e3d0-43cb-a1b7-1f19802d7908")),
            disconnect_reason: None,
            client_session_id: None,
            status: ConnectionStatus::Connected,
        }
    }

    /// The docs' human example: `code-server` opened as a workspace app.
    fn docs_human_event() -> ConnectionEvent {
        ConnectionEvent {
            id: id("f0249951-d454-48f6-9504-e73340fa07b7"),
            time: 1_751_525_836 * S + 144_719_000, // 2025-07-03T06:57:16.144719Z
            organization_id: id("0665a54f-0b77-4a58-94aa-59646fa38a74"),
            workspace_owner_id: id("6dea5f8c-ecec-4cf0-a5bd-bc2c63af2efa"),
            workspace_id: id("3c0b37c8-e58c-4980-b9a1-2732410480a5"),
            workspace_name: "dev".into(),
            agent_name: "main".into(),
            connection_method: ConnectionMethod::WorkspaceApp,
            code: Some(200),
            ip: Some("127.0.0.1".into()),
            user_agent: Some(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/100.0.4896.127 Safari/537.36"
                    .into(),
            ),
            user_id: Some(id("6dea5f8c-ecec-4cf0-a5bd-bc2c63af2efa")),
            app_name_or_port: Some("code-server".into()),
            connection_id: None,
            disconnect_reason: None,
            client_session_id: None,
            status: ConnectionStatus::Connected,
        }
    }

    #[test]
    fn docs_json_example() {
        // 2025-07-03T05:09:41.929840747Z
        let logged_at = 1_751_519_381 * S + 929_840_747;
        let got = line(
            &docs_json_event(),
            LogFormat::Json,
            LogFields::Seed,
            logged_at,
        );
        // The docs' example, compacted, without `request_id`.
        let want = concat!(
            r#"{"ts":"2025-07-03T05:09:41.929840747Z","level":"INFO","msg":"connection_log","#,
            r#""caller":"/home/coder/coder/enterprise/audit/backends/slog.go:38","#,
            r#""func":"github.com/coder/coder/v2/enterprise/audit/backends.(*SlogExporter).ExportStruct","#,
            r#""logger_names":["coderd"],"fields":{"#,
            r#""ID":"ca5dfc63-dc43-463a-bb3e-38526866fd4b","#,
            r#""OrganizationID":"1a2bb67e-0117-4168-92e0-58138989a7f5","#,
            r#""WorkspaceOwnerID":"fe8f4bab-3128-41f1-8fec-1cc0755affe5","#,
            r#""WorkspaceID":"05567e23-31e2-4c00-bd05-4d499d437347","#,
            r#""WorkspaceName":"dev","AgentName":"main","Type":"ssh","Code":null,"#,
            r#""Ip":"fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7","UserAgent":"","UserID":null,"SlugOrPort":"","#,
            r#""ConnectionID":"7a6fafdc-e3d0-43cb-a1b7-1f19802d7908","DisconnectReason":"","#,
            r#""Time":"2025-07-10T10:14:38.942776145Z","ConnectionStatus":"connected"}}"#
        );
        assert_eq!(got, want);
    }

    #[test]
    fn docs_human_example() {
        // The docs line was logged at 06:57:16.157.
        let logged_at = 1_751_525_836 * S + 157_123_456;
        let got = line(
            &docs_human_event(),
            LogFormat::Human,
            LogFields::Seed,
            logged_at,
        );
        // Coder's docs (docs/admin/monitoring/connection-logs.md), minus `request_id=…  `.
        let want = concat!(
            "[API] 2025-07-03 06:57:16.157 [info]  coderd: connection_log  ",
            "ID=f0249951-d454-48f6-9504-e73340fa07b7  Time=\"2025-07-03T06:57:16.144719Z\"  ",
            "OrganizationID=0665a54f-0b77-4a58-94aa-59646fa38a74  ",
            "WorkspaceOwnerID=6dea5f8c-ecec-4cf0-a5bd-bc2c63af2efa  ",
            "WorkspaceID=3c0b37c8-e58c-4980-b9a1-2732410480a5  WorkspaceName=dev  AgentName=main  ",
            "Type=workspace_app  Code=200  Ip=127.0.0.1  ",
            "UserAgent=\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/100.0.4896.127 Safari/537.36\"  ",
            "UserID=6dea5f8c-ecec-4cf0-a5bd-bc2c63af2efa  SlugOrPort=code-server  ConnectionID=<nil>  ",
            "DisconnectReason=\"\"  ConnectionStatus=connected"
        );
        assert_eq!(got, want);
    }

    #[test]
    fn absent_values_in_json() {
        let mut e = docs_human_event();
        e.ip = None;
        e.code = None;
        e.user_id = None;
        e.user_agent = None;
        e.app_name_or_port = None;
        e.status = ConnectionStatus::Disconnected;
        let got = line(&e, LogFormat::Json, LogFields::Seed, 0);
        assert!(got.starts_with(r#"{"ts":"1970-01-01T00:00:00Z","#));
        assert!(got.contains(
            r#""Code":null,"Ip":"\u003cnil\u003e","UserAgent":"","UserID":null,"SlugOrPort":"","ConnectionID":null,"#
        ));
        assert!(got.ends_with(r#""ConnectionStatus":"disconnected"}}"#));
        let v: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(v["fields"]["Ip"], "<nil>");
    }

    #[test]
    fn absent_and_awkward_values_in_human() {
        let mut e = docs_json_event();
        e.ip = None;
        e.code = Some(0);
        e.workspace_name = "my ws".into();
        e.disconnect_reason = Some("said \"bye\"\n".into());
        e.status = ConnectionStatus::Disconnected;
        let got = line(&e, LogFormat::Human, LogFields::Seed, 0);
        assert!(
            got.starts_with("[API] 1970-01-01 00:00:00.000 [info]  coderd: connection_log  ID=")
        );
        assert!(got.contains("  WorkspaceName=\"my ws\"  AgentName=main  Type=ssh  Code=0  Ip=<nil>  UserAgent=\"\"  UserID=<nil>  SlugOrPort=\"\"  ConnectionID=7a6fafdc-e3d0-43cb-a1b7-1f19802d7908  "));
        assert!(got.ends_with(
            "  DisconnectReason=\"said \\\"bye\\\"\\n\"  ConnectionStatus=disconnected"
        ));
        assert!(!got.contains('\n'));
    }

    #[test]
    fn ipv4_mapped_addresses_print_as_go_net_ip_does() {
        let mut e = docs_json_event();
        e.ip = Some("::ffff:10.1.2.3".into());
        assert!(line(&e, LogFormat::Human, LogFields::Seed, 0).contains("  Ip=10.1.2.3  "));
        assert!(line(&e, LogFormat::Json, LogFields::Seed, 0).contains(r#""Ip":"10.1.2.3""#));
        assert!(line(&e, LogFormat::Human, LogFields::Current, 0).contains("  IP=10.1.2.3  "));
        assert!(line(&e, LogFormat::Json, LogFields::Current, 0).contains(r#""IP":"10.1.2.3""#));
    }
    /// The seed's `Type` is the deprecated 7-value type, and its `SlugOrPort` a web event's
    /// destination only.
    #[test]
    fn seed_type_is_derived_from_method_and_app() {
        let mut e = docs_json_event();
        e.app_name_or_port = Some("cursor".into());
        e.client_session_id = Some("0123456789abcdef0123456789abcdef".into());
        let human = line(&e, LogFormat::Human, LogFields::Seed, 0);
        assert!(human.contains("  Type=vscode  "), "{human}");
        assert!(human.contains("  SlugOrPort=\"\"  "), "{human}");
        assert!(!human.contains("ClientSessionID") && !human.contains("cursor"));
        let json = line(&e, LogFormat::Json, LogFields::Seed, 0);
        assert!(json.contains(r#""Type":"vscode","#));
        let mut forward = docs_human_event();
        forward.connection_method = ConnectionMethod::PortForwarding;
        forward.app_name_or_port = Some("8080".into());
        let json = line(&forward, LogFormat::Json, LogFields::Seed, 0);
        assert!(json.contains(r#""Type":"port_forwarding","#));
        assert!(json.contains(r#""SlugOrPort":"8080","#));
    }

    /// 2026-10-07T11:34:37Z, the time of the current docs' examples.
    const OCT_7: i64 = 1_791_372_877 * S;

    /// Spec §8's JSON example: VS Code over SSH.
    #[test]
    fn current_json_example() {
        let e = ConnectionEvent {
            time: OCT_7 + 428_771_813,
            ip: Some("fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7".into()),
            app_name_or_port: Some("vscode".into()),
            ..docs_json_event()
        };
        let got = line(&e, LogFormat::Json, LogFields::Current, OCT_7 + 428_900_000);
        let want = concat!(
            r#"{"ts":"2026-10-07T11:34:37.4289Z","level":"INFO","msg":"connection_log","#,
            r#""caller":"/home/coder/coder/enterprise/audit/backends/slog.go:36","#,
            r#""func":"github.com/coder/coder/v2/enterprise/audit/backends.(*SlogExporter).ExportStruct","#,
            r#""logger_names":["coderd"],"fields":{"#,
            r#""ID":"ca5dfc63-dc43-463a-bb3e-38526866fd4b","#,
            r#""OrganizationID":"1a2bb67e-0117-4168-92e0-58138989a7f5","#,
            r#""WorkspaceOwnerID":"fe8f4bab-3128-41f1-8fec-1cc0755affe5","#,
            r#""WorkspaceID":"05567e23-31e2-4c00-bd05-4d499d437347","#,
            r#""WorkspaceName":"dev","AgentName":"main","ConnectionMethod":"ssh","Code":null,"#,
            r#""IP":"fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7","UserAgent":"","UserID":null,"#,
            r#""AppNameOrPort":"vscode","ConnectionID":"7a6fafdc-e3d0-43cb-a1b7-1f19802d7908","#,
            r#""DisconnectReason":"","ClientSessionID":"","#,
            r#""Time":"2026-10-07T11:34:37.428771813Z","ConnectionStatus":"connected"}}"#
        );
        assert_eq!(got, want);
        serde_json::from_str::<serde_json::Value>(&got).unwrap();
    }

    /// Spec §8's human example: code-server opened as a workspace app.
    #[test]
    fn current_human_example() {
        let e = ConnectionEvent {
            time: OCT_7 + 428_773_435,
            ..docs_human_event()
        };
        let got = line(
            &e,
            LogFormat::Human,
            LogFields::Current,
            OCT_7 + 428_999_999,
        );
        let want = concat!(
            "2026-10-07 11:34:37.428 [info]  coderd: connection_log  ",
            "ID=f0249951-d454-48f6-9504-e73340fa07b7  ",
            "OrganizationID=0665a54f-0b77-4a58-94aa-59646fa38a74  ",
            "WorkspaceOwnerID=6dea5f8c-ecec-4cf0-a5bd-bc2c63af2efa  ",
            "WorkspaceID=3c0b37c8-e58c-4980-b9a1-2732410480a5  WorkspaceName=dev  AgentName=main  ",
            "ConnectionMethod=workspace_app  Code=200  IP=127.0.0.1  ",
            "UserAgent=\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/100.0.4896.127 Safari/537.36\"  ",
            "UserID=6dea5f8c-ecec-4cf0-a5bd-bc2c63af2efa  AppNameOrPort=code-server  ConnectionID=<nil>  ",
            "DisconnectReason=\"\"  ClientSessionID=\"\"  ",
            "Time=\"2026-10-07 11:34:37.428773435 +0000 UTC\"  ConnectionStatus=connected"
        );
        assert_eq!(got, want);
    }

    #[test]
    fn current_line_with_a_client_session_and_absent_values() {
        let mut e = docs_json_event();
        e.connection_method = ConnectionMethod::ReconnectingPty;
        e.client_session_id = Some("0123456789abcdef0123456789abcdef".into());
        e.ip = None;
        e.code = Some(0);
        e.disconnect_reason = Some("because".into());
        e.status = ConnectionStatus::Disconnected;
        let human = line(&e, LogFormat::Human, LogFields::Current, 0);
        assert!(human.starts_with("1970-01-01 00:00:00.000 [info]  coderd: connection_log  ID="));
        assert!(human.contains(concat!(
            "  ConnectionMethod=reconnecting_pty  Code=0  IP=<nil>  UserAgent=\"\"  UserID=<nil>  ",
            "AppNameOrPort=\"\"  ConnectionID=7a6fafdc-e3d0-43cb-a1b7-1f19802d7908  ",
            "DisconnectReason=because  ClientSessionID=0123456789abcdef0123456789abcdef  ",
            "Time=\"2025-07-10 10:14:38.942776145 +0000 UTC\"  ConnectionStatus=disconnected"
        )));
        let json = line(&e, LogFormat::Json, LogFields::Current, 0);
        assert!(json.contains(concat!(
            r#""Code":0,"IP":"\u003cnil\u003e","UserAgent":"","UserID":null,"AppNameOrPort":"","#,
            r#""ConnectionID":"7a6fafdc-e3d0-43cb-a1b7-1f19802d7908","DisconnectReason":"because","#,
            r#""ClientSessionID":"0123456789abcdef0123456789abcdef","#
        )));
        assert!(!json.contains("Type") && !json.contains("SlugOrPort") && !json.contains("\"Ip\""));
    }
}
