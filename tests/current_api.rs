//! Coder's current API ("version D", spec `coder-connection-logs-current.md`) end to end:
//! the real component behind the real HTTP server and CLI. The vector tables of spec §11 as
//! tables here: filtering (§11.8), the response JSON (§11.9, §7.6), what an event stores
//! (§11.3); both generations of Coder's service-log lines in and out; and a `0.1.0` plugin,
//! which speaks of connection types, kept working by the host's mapping.

mod support;

use std::path::Path;

use connlog::conformance::spec_tables::{
    APP_FIXTURE, APP_FIXTURE_QUERIES, CURRENT_LOG_FIELDS, app_fixture_refusals,
};
use support::server::Server;
use support::*;

/// Spec §2.3's client session id.
const CSID: &str = "0123456789abcdef0123456789abcdef";

/// An id for test object `n` of kind `tag` (events, connections, workspaces…).
fn uuid(tag: u32, n: usize) -> String {
    format!("{tag:08x}-0000-4000-8000-{n:012x}")
}

const EVENT: u32 = 0xe;
const CONNECTION: u32 = 0xc;
const WORKSPACE_TAG: u32 = 0x3;

/// A data directory whose compile cache is shared by every test here, so each process does
/// not compile the plugin again.
fn data() -> tempfile::TempDir {
    let data = data_dir();
    let shared = std::env::temp_dir().join("connlog-current-api-cache");
    std::fs::create_dir_all(&shared).unwrap();
    std::os::unix::fs::symlink(&shared, data.path().join(".cache")).unwrap();
    data
}

/// A server over a fresh data directory, and an owner's token.
fn serving() -> (tempfile::TempDir, Server, String) {
    let data = data();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());
    (data, server, admin)
}

/// Posts `lines` to the ingest endpoint; returns its answer.
fn ingest(server: &Server, token: &str, lines: &[String]) -> serde_json::Value {
    let (status, body) = server.post(
        "/api/v2/connectionlog/ingest",
        Some(token),
        &lines.join("\n"),
    );
    assert_eq!(status, 200, "{body}");
    body_json(&body)
}

/// `GET /api/v2/connectionlog` with `q`.
fn get(server: &Server, token: &str, q: &str) -> (u16, String) {
    let q: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    server.get(
        &format!("/api/v2/connectionlog?limit=100&q={q}"),
        Some(token),
    )
}

/// `connlog <args…>` that must succeed.
fn cli(data: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = connlog(data, args, stdin);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

// ---- §11.8: filtering ------------------------------------------------------------------

/// The fixture as Coder's current lines.
fn fixture_lines() -> Vec<String> {
    APP_FIXTURE
        .iter()
        .enumerate()
        .map(|(n, &(_, method, app))| {
            let id = uuid(EVENT, n);
            let time = format!("2025-07-10T10:00:{n:02}Z");
            let event = if method.is_terminal() {
                Event::agent(&id, &time, method.as_str(), &uuid(CONNECTION, n))
            } else {
                Event::web(&id, &time, method.as_str())
            };
            event.app(app.unwrap_or("")).line()
        })
        .collect()
}

/// The fixture's rows in a page, by letter, sorted.
fn letters(page: &serde_json::Value) -> String {
    let mut letters: Vec<char> = page["connection_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let n = (0..APP_FIXTURE.len())
                .find(|&n| row["id"] == uuid(EVENT, n).as_str())
                .unwrap_or_else(|| panic!("not a fixture row: {row}"));
            APP_FIXTURE[n].0
        })
        .collect();
    letters.sort_unstable();
    letters.into_iter().collect()
}

#[test]
fn the_fixture_of_spec_11_8_filters_as_coder_d3_does() {
    let (_data, server, admin) = serving();
    let answer = ingest(&server, &admin, &fixture_lines());
    assert_eq!(answer["accepted"], APP_FIXTURE.len(), "{answer}");

    // Spec §11.8, then the issue's "done when" queries of a current dashboard (the table
    // the conformance kit runs too).
    for (q, want) in APP_FIXTURE_QUERIES {
        let (status, body) = get(&server, &admin, q);
        assert_eq!(status, 200, "{q}: {body}");
        let page = body_json(&body);
        assert_eq!(letters(&page), want, "{q}");
        assert_eq!(page["count"], want.len(), "{q}: the count mirrors the rows");
    }
}

#[test]
fn bad_queries_get_coders_400_with_each_validation_in_order() {
    let (_data, server, admin) = serving();
    ingest(&server, &admin, &fixture_lines());
    for (q, validations) in app_fixture_refusals() {
        let (status, body) = get(&server, &admin, q);
        assert_eq!(status, 400, "{q}: {body}");
        let validations: Vec<_> = validations
            .into_iter()
            .map(|(field, detail)| serde_json::json!({"field": field, "detail": detail}))
            .collect();
        assert_eq!(
            body_json(&body),
            serde_json::json!({
                "message": "Invalid connection search query.",
                "validations": validations,
            }),
            "{q}"
        );
    }
}

// ---- connlog's extension: `code:` ---------------------------------------------------

/// `code:` (not Coder's: Coder answers it with "not a valid query param") selects rows by
/// their code: the denied tunnels are `method:tunnel code:4xx`, the page's preset.
#[test]
fn the_code_extension_selects_denied_tunnels_and_refuses_bad_codes() {
    let (_data, server, admin) = serving();
    let at = |n: usize| format!("2025-07-10T11:00:{n:02}Z");
    let web = |n: usize, method: &str, code: i32| {
        Event::web(&uuid(EVENT, n), &at(n), method).code(Some(code))
    };
    let session = |n: usize| Event::agent(&uuid(EVENT, n), &at(n), "ssh", &uuid(CONNECTION, n));
    let lines: Vec<String> = [
        web(0, "tunnel", 101),
        web(1, "tunnel", 403),
        web(2, "tunnel", 403),
        web(3, "workspace_app", 403).app("code-server"),
        web(4, "port_forwarding", 404).app("8080"),
        session(5),
        Event {
            id: uuid(EVENT, 15),
            ..session(5).disconnect(Some(1), "exited")
        },
        session(6),
        web(7, "tunnel", 502),
    ]
    .iter()
    .map(Event::line)
    .collect();
    assert_eq!(ingest(&server, &admin, &lines)["accepted"], lines.len());

    let rows = |q: &str| -> Vec<usize> {
        let (status, body) = get(&server, &admin, q);
        assert_eq!(status, 200, "{q}: {body}");
        let page = body_json(&body);
        let mut rows: Vec<usize> = page["connection_logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (0..8)
                    .find(|&n| row["id"] == uuid(EVENT, n).as_str())
                    .unwrap()
            })
            .collect();
        assert_eq!(page["count"], rows.len(), "{q}: the count mirrors the rows");
        rows.sort_unstable();
        rows
    };
    for (q, want) in [
        ("method:tunnel code:4xx", &[1, 2][..]),
        ("METHOD:Tunnel CODE:4XX", &[1, 2]),
        ("code:4xx", &[1, 2, 3, 4]),
        ("code:403", &[1, 2, 3]),
        ("code:403 code:404", &[1, 2, 3, 4]),
        ("code:1xx,5xx", &[0, 7]),
        ("method:tunnel code:101", &[0]),
        ("code:1", &[5]),
        ("method:ssh code:1 status:completed", &[5]),
        // The ongoing session has no code (its `exit_code` is absent): it never matches.
        ("code:0", &[]),
        ("code:2xx", &[]),
    ] {
        assert_eq!(rows(q), want, "{q}");
    }
    let (_, body) = get(&server, &admin, "method:tunnel code:4xx");
    for row in body_json(&body)["connection_logs"].as_array().unwrap() {
        assert_eq!(row["type"], "tunnel", "{row}");
        assert_eq!(row["web_info"]["status_code"], 403, "{row}");
    }

    let forms = "(a 32-bit integer such as 403, or a class 1xx to 5xx)";
    for (q, detail) in [
        (
            "code:abc",
            format!(r#"Query param "code" has invalid value: "abc" is not a valid code {forms}"#),
        ),
        (
            "method:tunnel code:4xx,6xx,40x",
            format!(
                r#"Query param "code" has invalid values: "6xx", "40x" are not valid codes {forms}"#
            ),
        ),
    ] {
        let (status, body) = get(&server, &admin, q);
        assert_eq!(status, 400, "{q}: {body}");
        assert_eq!(
            body_json(&body),
            serde_json::json!({
                "message": "Invalid connection search query.",
                "validations": [{"field": "code", "detail": detail}],
            }),
            "{q}"
        );
    }
}

// ---- §11.9 and §7.6: the response JSON -------------------------------------------------

/// The row JSON with every UUID string written `…` and the `organization` and `user`
/// objects written `{…}`, as spec §7.6 writes its examples. The clock values stay: the
/// tests send the spec's own.
fn as_in_the_spec(body: &str) -> String {
    assert!(!body.contains("\\\""), "no escaped quotes expected: {body}");
    let ids: Vec<&str> = body
        .split('"')
        .enumerate()
        .map(|(i, part)| {
            let is_uuid = part.len() == 36 && connlog::model::Uuid::parse_str(part).is_ok();
            if i % 2 == 1 && is_uuid { "…" } else { part }
        })
        .collect();
    elide(&elide(&ids.join("\""), "organization"), "user")
}

/// `text` with the object under every `"key":{` written `{…}`.
fn elide(text: &str, key: &str) -> String {
    let open = format!("\"{key}\":{{");
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(&open) {
        let start = at + open.len() - 1;
        out.push_str(&rest[..start]);
        let mut depth = 0;
        let end = rest[start..]
            .char_indices()
            .find_map(|(i, c)| {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => return Some(start + i + 1),
                    '}' => depth -= 1,
                    _ => {}
                }
                None
            })
            .expect("a balanced object");
        out.push_str("{…}");
        rest = &rest[end..];
    }
    out + rest
}

/// The start every example row shares, up to and including its `ip`.
fn row_head(connect_time: &str, ip: &str) -> String {
    format!(
        r#"{{"id":"…","connect_time":"{connect_time}","organization":{{…}},"workspace_owner_id":"…","workspace_owner_username":"admin","workspace_id":"…","workspace_name":"dev","agent_name":"main","ip":"{ip}","#
    )
}

#[test]
fn rows_are_the_json_of_spec_7_6_byte_for_byte() {
    const T: &str = "2026-10-07T11:00:00Z";
    let connect =
        |n: usize, method: &str| Event::agent(&uuid(EVENT, n), T, method, &uuid(CONNECTION, n));
    // (example, its events, the row's JSON after `ip`)
    let cases: Vec<(&str, Vec<Event>, &str)> = vec![
        (
            "SSH from Cursor, completed",
            vec![
                connect(0, "ssh").app("Cursor").ip("192.168.0.1"),
                Event {
                    id: uuid(EVENT, 100),
                    time: "2026-10-07T12:00:00Z".into(),
                    ..connect(0, "ssh").app("Cursor").ip("192.168.0.1")
                }
                .disconnect(None, "example close reason"),
            ],
            r#""type":"vscode","connection_method":"ssh","app_name":"cursor","app_display_name":"Cursor","ssh_info":{"connection_id":"…","disconnect_time":"2026-10-07T12:00:00Z","disconnect_reason":"example close reason"}}"#,
        ),
        (
            "plain SSH",
            vec![connect(1, "ssh").ip("192.168.0.1")],
            r#""type":"ssh","connection_method":"ssh","ssh_info":{"connection_id":"…"}}"#,
        ),
        (
            "workspace app",
            vec![
                Event::web(&uuid(EVENT, 2), T, "workspace_app")
                    .app("code-server")
                    .user_agent("Mozilla/5.0 (X11; Linux x86_64)")
                    .ip("192.168.0.1"),
            ],
            r#""type":"workspace_app","connection_method":"workspace_app","web_info":{"user_agent":"Mozilla/5.0 (X11; Linux x86_64)","user":{…},"slug_or_port":"code-server","status_code":200}}"#,
        ),
        (
            "unregistered app over SSH",
            vec![connect(3, "ssh").app("Some-New-IDE").ip("192.168.0.1")],
            r#""type":"ssh","connection_method":"ssh","app_name":"some_new_ide","app_display_name":"some_new_ide","ssh_info":{"connection_id":"…"}}"#,
        ),
        (
            // The agent's app name is not a destination: no slug (§7.4), no session info.
            "agent-reported port forward",
            vec![
                connect(4, "port_forwarding")
                    .app("Some-App")
                    .csid(CSID)
                    .ip("192.168.0.1"),
            ],
            r#""type":"port_forwarding","connection_method":"port_forwarding","web_info":{"user_agent":"","user":null,"slug_or_port":"","status_code":0}}"#,
        ),
        (
            "web terminal with a client session id",
            vec![connect(5, "reconnecting_pty").csid(CSID).ip("192.168.0.1")],
            r#""type":"reconnecting_pty","connection_method":"reconnecting_pty","ssh_info":{"connection_id":"…","client_session_id":"0123456789abcdef0123456789abcdef"}}"#,
        ),
        (
            "tunnel",
            vec![
                Event::web(&uuid(EVENT, 6), T, "tunnel")
                    .user_agent("coder-cli/2.0.0")
                    .code(Some(101))
                    .ip("192.168.0.1"),
            ],
            r#""type":"tunnel","connection_method":"tunnel","web_info":{"user_agent":"coder-cli/2.0.0","user":{…},"slug_or_port":"","status_code":101}}"#,
        ),
    ];
    let (_data, server, admin) = serving();
    // Each example in its own workspace, so that one query finds exactly its row.
    let workspace = |n: usize| uuid(WORKSPACE_TAG, n);
    let lines: Vec<String> = cases
        .iter()
        .enumerate()
        .flat_map(|(n, (_, events, _))| {
            events
                .iter()
                .map(move |e| e.clone().workspace(&workspace(n)).line())
        })
        .collect();
    let answer = ingest(&server, &admin, &lines);
    assert_eq!(answer["rejected"], serde_json::json!([]), "{answer}");

    for (n, (example, _, tail)) in cases.iter().enumerate() {
        let (status, body) = get(&server, &admin, &format!("workspace_id:{}", workspace(n)));
        assert_eq!(status, 200, "{example}: {body}");
        let page = body_json(&body);
        assert_eq!(page["count"], 1, "{example}: {body}");
        let user = &page["connection_logs"][0]["web_info"]["user"];
        if user.is_object() {
            assert_eq!(user["id"], ADMIN, "{example}: the web user is the owner");
        }
        let want = format!(
            "{{\"connection_logs\":[{}{tail}],\"count\":1,\"count_cap\":2000}}\n",
            row_head(T, "192.168.0.1")
        );
        assert_eq!(as_in_the_spec(&body), want, "{example}");
    }

    // §11.9: nothing matches.
    let (status, body) = get(
        &server,
        &admin,
        &format!("method:ssh workspace_id:{}", workspace(2)),
    );
    assert_eq!(status, 200);
    assert_eq!(
        body,
        "{\"connection_logs\":[],\"count\":0,\"count_cap\":2000}\n"
    );
}

// ---- §11.3: what an event stores ---------------------------------------------------------

/// What `connlog export --format json` says the row of event `id` stores: its line's
/// `fields` (Coder's current line is one field per stored column).
fn stored_fields<'a>(lines: &'a [serde_json::Value], id: &str) -> Option<&'a serde_json::Value> {
    lines
        .iter()
        .map(|line| &line["fields"])
        .find(|fields| fields["ID"] == id)
}

/// What a row stores, as its current service-log line shows it: method, app, code, IP,
/// disconnect reason, client session id. An absent string is "" and an absent IP "<nil>",
/// as Coder's log writes them.
type Stored = (
    &'static str,
    &'static str,
    serde_json::Value,
    &'static str,
    &'static str,
    &'static str,
);

#[test]
fn events_store_what_spec_11_3_says_and_bad_client_session_ids_are_refused() {
    // Each event is its own session (its own connection id), so it defines its own row.
    let event = |n: usize, kind: &str| {
        Event::agent(
            &uuid(EVENT, n),
            "2025-07-10T10:00:00Z",
            kind,
            &uuid(CONNECTION, n),
        )
        .ip("")
    };
    let null = serde_json::Value::Null;
    let code = |c: i32| serde_json::json!(c);
    // (case, the line sent, what is stored)
    let cases: Vec<(&str, String, Stored)> = vec![
        (
            "SSH Connect",
            event(0, "ssh").ip("127.0.0.1").csid(CSID).line(),
            ("ssh", "", null.clone(), "127.0.0.1", "", CSID),
        ),
        (
            "VS Code Connect (the seed's Type)",
            event(1, "vscode").ip("8.8.8.8").seed_line(),
            ("ssh", "vscode", null.clone(), "8.8.8.8", "", ""),
        ),
        (
            "JetBrains Connect",
            event(2, "jetbrains").ip("localhost").seed_line(),
            ("ssh", "jetbrains", null.clone(), "127.0.0.1", "", ""),
        ),
        (
            "Reconnecting PTY Connect",
            event(3, "reconnecting_pty").seed_line(),
            ("reconnecting_pty", "", null.clone(), "<nil>", "", ""),
        ),
        (
            "SSH Disconnect",
            event(4, "ssh").disconnect(Some(0), "").seed_line(),
            ("ssh", "", code(0), "<nil>", "", ""),
        ),
        (
            "SSH Disconnect (2)",
            event(5, "ssh")
                .disconnect(Some(500), "because error says so")
                .seed_line(),
            ("ssh", "", code(500), "<nil>", "because error says so", ""),
        ),
        (
            "VS Code Disconnect",
            event(6, "vscode").disconnect(Some(0), "").seed_line(),
            ("ssh", "vscode", code(0), "<nil>", "", ""),
        ),
        (
            "Unfamiliar App Connect",
            event(7, "ssh").app("Some-New-IDE").csid(CSID).line(),
            ("ssh", "some_new_ide", null.clone(), "<nil>", "", CSID),
        ),
        (
            "Unfamiliar App Disconnect",
            event(8, "ssh")
                .app("Some-New-IDE")
                .csid(CSID)
                .disconnect(Some(0), "because")
                .line(),
            ("ssh", "some_new_ide", code(0), "<nil>", "because", CSID),
        ),
        (
            "Port Forwarding Connect (agent-reported)",
            event(9, "port_forwarding")
                .app("Some-App")
                .csid(CSID)
                .line(),
            ("port_forwarding", "", null.clone(), "<nil>", "", CSID),
        ),
        (
            // A method given, the legacy type is ignored (§4.2).
            "METHOD_SSH beside Type vscode",
            event(10, "ssh")
                .line()
                .replacen('{', r#"{"Type":"vscode","#, 1),
            ("ssh", "", null.clone(), "<nil>", "", ""),
        ),
        (
            // connlog's earlier contract: an SSH client's app as the type.
            "an app name as the seed's Type",
            event(11, "Cursor").seed_line(),
            ("ssh", "cursor", null.clone(), "<nil>", "", ""),
        ),
    ];
    // (line, why it is refused): nothing of it may be stored.
    let refused = [
        (
            event(20, "ssh")
                .csid("0123456789ABCDEF0123456789abcdef")
                .line(),
            "ClientSessionID",
        ),
        (
            event(21, "ssh")
                .csid("01234567-89ab-cdef-0123-456789abcdef")
                .line(),
            "ClientSessionID",
        ),
        (event(22, "ssh").csid(&CSID[1..]).line(), "ClientSessionID"),
        (event(23, "vscode").line(), "ConnectionMethod"),
    ];
    // The refused lines sit between good ones: rejecting one never rejects its neighbours.
    let mut lines: Vec<String> = cases.iter().map(|(_, line, _)| line.clone()).collect();
    let mut refused_at = Vec::new();
    for (i, (line, _)) in refused.iter().enumerate() {
        let at = 2 + 3 * i;
        lines.insert(at, line.clone());
        refused_at.push(at as u64 + 1);
    }

    let (data, server, admin) = serving();
    let answer = ingest(&server, &admin, &lines);
    assert_eq!(answer["accepted"], cases.len(), "{answer}");
    let rejected = answer["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), refused.len(), "{answer}");
    for ((rejection, (_, field)), line) in rejected.iter().zip(&refused).zip(&refused_at) {
        assert_eq!(rejection["line"], *line, "{answer}");
        let error = rejection["error"].as_str().unwrap();
        assert!(error.contains(field), "{error}");
    }
    let csid_error = rejected[0]["error"].as_str().unwrap();
    assert!(
        csid_error.contains("32 lowercase hex") && csid_error.contains("0123456789ABCDEF"),
        "a clear reason that names the value: {csid_error}"
    );

    // Through the server, which owns the data directory.
    let export = cli(
        data.path(),
        &["export", "--format", "json", "--as", "admin"],
        None,
    );
    let exported: Vec<serde_json::Value> = export.lines().map(body_json).collect();
    for (n, (case, _, (method, app, code, ip, reason, csid))) in cases.iter().enumerate() {
        let fields = stored_fields(&exported, &uuid(EVENT, n))
            .unwrap_or_else(|| panic!("{case}: not stored:\n{export}"));
        let got = (
            fields["ConnectionMethod"].as_str().unwrap(),
            fields["AppNameOrPort"].as_str().unwrap(),
            fields["Code"].clone(),
            fields["IP"].as_str().unwrap(),
            fields["DisconnectReason"].as_str().unwrap(),
            fields["ClientSessionID"].as_str().unwrap(),
        );
        assert_eq!(
            got,
            (*method, *app, code.clone(), *ip, *reason, *csid),
            "{case}"
        );
        assert_eq!(fields["UserID"], serde_json::Value::Null, "{case}");
    }
    for n in 20..20 + refused.len() {
        assert!(
            stored_fields(&exported, &uuid(EVENT, n)).is_none(),
            "event {n} was stored"
        );
    }
    assert_eq!(exported.len(), cases.len(), "{export}");
    drop(server);
}

// ---- both generations of service-log lines ---------------------------------------------

/// Coder's docs example (the seed's line: `Type`, `SlugOrPort`, `Ip`), as published.
const DOCS_JSON_LINE: &str = r#"{"ts":"2025-07-03T05:09:41.929840747Z","level":"INFO","msg":"connection_log","caller":"/home/coder/coder/enterprise/audit/backends/slog.go:38","func":"github.com/coder/coder/v2/enterprise/audit/backends.(*SlogExporter).ExportStruct","logger_names":["coderd"],"fields":{"request_id":"916ad077-e120-4861-8640-f449d56d2bae","ID":"ca5dfc63-dc43-463a-bb3e-38526866fd4b","OrganizationID":"1a2bb67e-0117-4168-92e0-58138989a7f5","WorkspaceOwnerID":"fe8f4bab-3128-41f1-8fec-1cc0755affe5","WorkspaceID":"05567e23-31e2-4c00-bd05-4d499d437347","WorkspaceName":"dev","AgentName":"main","Type":"ssh","Code":null,"Ip":"fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7","UserAgent":"","UserID":null,"SlugOrPort":"","ConnectionID":"7a6fafdc-e3d0-43cb-a1b7-1f19802d7908","DisconnectReason":"","Time":"2025-07-10T10:14:38.942776145Z","ConnectionStatus":"connected"}}"#;

/// Spec §8's current line (VS Code over SSH), completed with ids.
const CURRENT_FIELDS: &str = r#"{"ID":"5e7d1c2a-9b8f-4e3d-a1c0-2f4b6d8e0a1c","OrganizationID":"1a2bb67e-0117-4168-92e0-58138989a7f5","WorkspaceOwnerID":"fe8f4bab-3128-41f1-8fec-1cc0755affe5","WorkspaceID":"05567e23-31e2-4c00-bd05-4d499d437347","WorkspaceName":"dev","AgentName":"main","ConnectionMethod":"ssh","Code":null,"IP":"fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7","UserAgent":"","UserID":null,"AppNameOrPort":"vscode","ConnectionID":"875e3a5c-9b1d-4f6e-8a2b-0c4d6e8f1a3b","DisconnectReason":"","ClientSessionID":"","Time":"2026-10-07T11:34:37.428771813Z","ConnectionStatus":"connected"}"#;

fn current_json_line() -> String {
    format!(
        r#"{{"ts":"2026-10-07T11:34:37.428773435Z","level":"INFO","msg":"connection_log","caller":"/home/coder/coder/enterprise/audit/backends/slog.go:36","func":"github.com/coder/coder/v2/enterprise/audit/backends.(*SlogExporter).ExportStruct","logger_names":["coderd"],"fields":{CURRENT_FIELDS}}}"#
    )
}

/// The docs' human example (code-server), as a seed NDJSON event. Its organization, owner
/// and user are this directory's.
fn docs_human_event() -> Event {
    Event::web(
        "f0249951-d454-48f6-9504-e73340fa07b7",
        "2025-07-03T06:57:16.144719Z",
        "workspace_app",
    )
    .workspace("3c0b37c8-e58c-4980-b9a1-2732410480a5")
    .app("code-server")
    .user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/100.0.4896.127 Safari/537.36")
}

/// The docs' human line from its `ID` on, without `request_id` (we have no request), with
/// this directory's ids.
fn docs_human_fields() -> String {
    format!(
        "ID=f0249951-d454-48f6-9504-e73340fa07b7  Time=\"2025-07-03T06:57:16.144719Z\"  OrganizationID={ORG}  WorkspaceOwnerID={ADMIN}  WorkspaceID=3c0b37c8-e58c-4980-b9a1-2732410480a5  WorkspaceName=dev  AgentName=main  Type=workspace_app  Code=200  Ip=127.0.0.1  UserAgent=\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/100.0.4896.127 Safari/537.36\"  UserID={ADMIN}  SlugOrPort=code-server  ConnectionID=<nil>  DisconnectReason=\"\"  ConnectionStatus=connected"
    )
}

/// The raw `fields` object of a JSON service-log line, keys in their written order.
fn fields_text(line: &str) -> &str {
    let start = line.find(r#""fields":{"#).expect("a fields object") + r#""fields":"#.len();
    line[start..].strip_suffix('}').expect("fields come last")
}

/// The keys of a `fields` object, in order: what precedes each `":` (no value of ours
/// holds one).
fn keys(fields: &str) -> Vec<&str> {
    let parts: Vec<&str> = fields.split("\":").collect();
    parts[..parts.len() - 1]
        .iter()
        .map(|part| part.rsplit_once('"').unwrap().1)
        .collect()
}

const SEED_KEYS: [&str; 16] = [
    "ID",
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
    "Time",
    "ConnectionStatus",
];

/// The line of `lines` that names event `id`.
fn line_of<'a>(lines: &'a str, id: &str) -> &'a str {
    lines
        .lines()
        .find(|l| l.contains(id))
        .unwrap_or_else(|| panic!("{id} missing from:\n{lines}"))
}

#[test]
fn both_generations_of_log_lines_ingest_and_both_export() {
    let data = data();
    let file = data.path().join("coder.log");
    std::fs::write(
        &file,
        [
            DOCS_JSON_LINE.to_owned(),
            current_json_line(),
            docs_human_event().seed_line(),
        ]
        .join("\n"),
    )
    .unwrap();
    let answer = cli(data.path(), &["ingest", file.to_str().unwrap()], None);
    assert_eq!(answer, "{\"accepted\":3,\"rejected\":[]}\n");

    // Each generation read as spec §2.1 and §8 say.
    let page = body_json(&cli(data.path(), &["query", "--as", "admin"], None));
    let row = |id: &str| {
        page["connection_logs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing from {page}"))
            .clone()
    };
    let docs = row("ca5dfc63-dc43-463a-bb3e-38526866fd4b");
    assert_eq!(docs["type"], "ssh", "{docs}");
    assert_eq!(docs["connection_method"], "ssh", "{docs}");
    assert_eq!(docs.get("app_name"), None, "{docs}");
    assert_eq!(docs["ip"], "fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7");
    let current = row("5e7d1c2a-9b8f-4e3d-a1c0-2f4b6d8e0a1c");
    assert_eq!(current["type"], "vscode", "{current}");
    assert_eq!(current["connection_method"], "ssh", "{current}");
    assert_eq!(current["app_name"], "vscode", "{current}");
    assert_eq!(current["app_display_name"], "VS Code", "{current}");
    let web = row("f0249951-d454-48f6-9504-e73340fa07b7");
    assert_eq!(web["web_info"]["slug_or_port"], "code-server");

    // Coder's current line by default: its fields in spec §8's order, the example as sent.
    let json = cli(
        data.path(),
        &["export", "--format", "json", "--as", "admin"],
        None,
    );
    for line in json.lines() {
        assert_eq!(keys(fields_text(line)), CURRENT_LOG_FIELDS, "{line}");
    }
    assert_eq!(
        fields_text(line_of(&json, "5e7d1c2a-9b8f-4e3d-a1c0-2f4b6d8e0a1c")),
        CURRENT_FIELDS
    );
    let human = cli(
        data.path(),
        &["export", "--format", "human", "--as", "admin"],
        None,
    );
    let code_server = line_of(&human, "f0249951");
    assert!(
        !code_server.starts_with("[API]")
            && code_server.contains(" [info]  coderd: connection_log  ID="),
        "{code_server}"
    );
    assert!(
        code_server.ends_with(&format!(
            "coderd: connection_log  ID=f0249951-d454-48f6-9504-e73340fa07b7  OrganizationID={ORG}  WorkspaceOwnerID={ADMIN}  WorkspaceID=3c0b37c8-e58c-4980-b9a1-2732410480a5  WorkspaceName=dev  AgentName=main  ConnectionMethod=workspace_app  Code=200  IP=127.0.0.1  UserAgent=\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/100.0.4896.127 Safari/537.36\"  UserID={ADMIN}  AppNameOrPort=code-server  ConnectionID=<nil>  DisconnectReason=\"\"  ClientSessionID=\"\"  Time=\"2025-07-03 06:57:16.144719 +0000 UTC\"  ConnectionStatus=connected"
        )),
        "{code_server}"
    );

    // The seed's line on request: the docs' examples come back as published.
    let seed = |format: &str| {
        cli(
            data.path(),
            &[
                "--log-fields",
                "seed",
                "export",
                "--format",
                format,
                "--as",
                "admin",
            ],
            None,
        )
    };
    let seed_json = seed("json");
    for line in seed_json.lines() {
        assert_eq!(keys(fields_text(line)), SEED_KEYS, "{line}");
    }
    let docs_fields = fields_text(DOCS_JSON_LINE).replace(
        r#""request_id":"916ad077-e120-4861-8640-f449d56d2bae","#,
        "",
    );
    assert_eq!(
        fields_text(line_of(&seed_json, "ca5dfc63-dc43-463a-bb3e-38526866fd4b")),
        docs_fields
    );
    // The deprecated type of ssh + vscode; the seed has no field for the app itself.
    let vscode = line_of(&seed_json, "5e7d1c2a-9b8f-4e3d-a1c0-2f4b6d8e0a1c");
    assert!(
        vscode.contains(
            r#""Type":"vscode","Code":null,"Ip":"fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7""#
        ) && vscode.contains(r#""SlugOrPort":"""#),
        "{vscode}"
    );
    let seed_human = seed("human");
    let code_server = line_of(&seed_human, "f0249951");
    assert!(code_server.starts_with("[API] "), "{code_server}");
    assert!(code_server.ends_with(&docs_human_fields()), "{code_server}");
    assert!(
        line_of(&seed_human, "5e7d1c2a")
            .contains("  Type=vscode  Code=<nil>  Ip=fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7  "),
        "{seed_human}"
    );
}

#[test]
fn a_current_json_export_ingested_into_an_empty_directory_gives_identical_rows() {
    let source = data();
    // Rows that only the current line can carry: apps outside the two families, a web
    // terminal's app, client session ids, a completed session.
    let mut lines = fixture_lines();
    let session = Event::agent(
        &uuid(EVENT, 50),
        "2025-07-11T09:00:00Z",
        "ssh",
        &uuid(CONNECTION, 50),
    )
    .app("zed")
    .csid(CSID);
    lines.push(session.line());
    lines.push(
        Event {
            id: uuid(EVENT, 51),
            time: "2025-07-11T10:00:00Z".into(),
            ..session.disconnect(Some(0), "client closed")
        }
        .line(),
    );
    lines.push(
        Event::agent(
            &uuid(EVENT, 52),
            "2025-07-11T09:30:00Z",
            "reconnecting_pty",
            &uuid(CONNECTION, 52),
        )
        .app("cursor")
        .csid(CSID)
        .line(),
    );
    cli(source.path(), &["ingest", "-"], Some(&lines.join("\n")));
    let json = cli(
        source.path(),
        &["export", "--format", "json", "--as", "admin"],
        None,
    );

    let copy = data();
    let answer = cli(copy.path(), &["ingest", "-"], Some(&json));
    assert_eq!(
        body_json(&answer)["rejected"],
        serde_json::json!([]),
        "{answer}"
    );
    let rows = |data: &Path| {
        cli(
            data,
            &["export", "--format", "ndjson", "--as", "admin"],
            None,
        )
    };
    let before = rows(source.path());
    assert_eq!(before.lines().count(), APP_FIXTURE.len() + 2);
    assert!(before.contains(CSID), "{before}");
    assert_eq!(rows(copy.path()), before, "same rows, ids included");
}

// ---- a 0.1.0 plugin ------------------------------------------------------------------------

#[test]
fn a_0_1_0_plugin_keeps_working_with_methods_and_apps_mapped_to_its_types() {
    let data = data();
    let plugin = ["--plugin", connlog_test_plugins::REFERENCE_V0_1_PLUGIN];
    let with_plugin = |args: &[&str], stdin: Option<&str>| {
        let args: Vec<&str> = plugin.iter().chain(args).copied().collect();
        cli(data.path(), &args, stdin)
    };
    let at = |n: usize| format!("2025-07-10T10:00:{n:02}Z");
    let agent =
        |n: usize, kind: &str| Event::agent(&uuid(EVENT, n), &at(n), kind, &uuid(CONNECTION, n));
    // (line, then the row: type, connection_method, app_name, ssh_info.client_session_id)
    let cases = [
        (
            agent(0, "vscode").seed_line(),
            ("vscode", "ssh", Some("vscode")),
        ),
        (
            agent(1, "ssh").app("Cursor").csid(CSID).line(),
            ("vscode", "ssh", Some("cursor")),
        ),
        (
            agent(2, "cursor").seed_line(),
            ("vscode", "ssh", Some("cursor")),
        ),
        (
            agent(3, "ssh").app("GoLand").line(),
            ("jetbrains", "ssh", Some("goland")),
        ),
        (
            // 0.1.0's types cannot say which app a web terminal came from (spec §11.1, down).
            agent(4, "reconnecting_pty").app("cursor").line(),
            ("reconnecting_pty", "reconnecting_pty", None),
        ),
        (
            Event::web(&uuid(EVENT, 5), &at(5), "workspace_app")
                .app("code-server")
                .line(),
            ("workspace_app", "workspace_app", None),
        ),
    ];
    let lines: Vec<String> = cases.iter().map(|(line, _)| line.clone()).collect();
    let answer = with_plugin(&["ingest", "-"], Some(&lines.join("\n")));
    assert_eq!(body_json(&answer)["accepted"], cases.len(), "{answer}");

    let page = body_json(&with_plugin(&["query", "--as", "admin"], None));
    let rows = page["connection_logs"].as_array().unwrap();
    assert_eq!(rows.len(), cases.len(), "{page}");
    for (n, (_, (legacy, method, app))) in cases.iter().enumerate() {
        let row = rows
            .iter()
            .find(|r| r["id"] == uuid(EVENT, n).as_str())
            .unwrap_or_else(|| panic!("row {n} missing from {page}"));
        assert_eq!(row["type"], *legacy, "{row}");
        assert_eq!(row["connection_method"], *method, "{row}");
        assert_eq!(row["app_name"].as_str(), *app, "{row}");
        assert_eq!(
            row["ssh_info"].get("client_session_id"),
            None,
            "0.1.0 cannot carry it: {row}"
        );
        if *method == "workspace_app" {
            assert_eq!(row["web_info"]["slug_or_port"], "code-server", "{row}");
        }
    }
    // Its filters speak D too: the host hands it the query as given.
    let ids = |q: &str| {
        let page = body_json(&with_plugin(&["query", "--as", "admin", "-q", q], None));
        page["connection_logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("app:cursor"), [uuid(EVENT, 2), uuid(EVENT, 1)]);
    assert_eq!(ids("method:ssh").len(), 4);
    assert_eq!(ids("type:vscode").len(), 3);
}
