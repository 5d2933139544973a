//! The test vectors of spec "version D" §11 (`coder-connection-logs-current.md`), row by row,
//! through the real host: §11.3 (an event and what is stored of it), §11.5 (the deprecated
//! `type` of the API), §11.7 (query parsing: exact errors and their order), §11.8 (the
//! ten-row fixture and every query of its table) and §11.9 with §7.6 (the API's JSON, byte
//! for byte apart from ids and times).
//!
//! Every expected value is spelled out here from the spec's tables, never computed by the
//! vocabulary the plugins share, so that the kit judges them independently. A row that sends
//! what contract 0.1.0 cannot carry (a client session id, a web terminal's app, an
//! agent-reported port forward) is marked, and skipped for a 0.1.0 plugin.

use serde_json::Value;

use super::fixtures::*;
use super::spec_tables::{
    APP_FIXTURE, APP_FIXTURE_QUERIES, APP_FIXTURE_SHAPES, app_fixture_refusals,
};
use super::{Case, Check, Harness, names, same_ids};
use crate::model::ConnectionMethod::{PortForwarding, ReconnectingPty, Ssh, Tunnel};
use crate::model::*;

/// What a row needs of contract 0.2.0.
const CSID: Option<&str> = Some("client session ids");
const PTY_APP: Option<&str> = Some("a web terminal's app");
const AGENT_FORWARD: Option<&str> = Some("agent-reported port forwards");

pub fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(stored_cases());
    all.extend(type_cases());
    all.extend(parsing_cases());
    all.extend(fixture_cases());
    all.extend(json_cases());
    all
}

/// Case names built from table rows live as long as the kit's static names.
fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

// §11.3: `ReportConnection` → stored params.

/// What a row stores of one event: method, app, code, IP, reason, client session id.
type Stored = (
    ConnectionMethod,
    Option<&'static str>,
    Option<i32>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

fn stored_table() -> Vec<(&'static str, ConnectionEvent, Stored, Option<&'static str>)> {
    let pty = |e: ConnectionEvent| e.method(ReconnectingPty);
    vec![
        (
            "SSH Connect",
            connect(1, 1, 0).ip("127.0.0.1").session(CSID_VALUE),
            (Ssh, None, None, Some("127.0.0.1"), None, Some(CSID_VALUE)),
            CSID,
        ),
        (
            "VS Code Connect",
            connect(1, 1, 0).app("vscode").ip("8.8.8.8"),
            (Ssh, Some("vscode"), None, Some("8.8.8.8"), None, None),
            None,
        ),
        (
            "JetBrains Connect (localhost is 127.0.0.1)",
            connect(1, 1, 0).app("jetbrains").ip("localhost"),
            (Ssh, Some("jetbrains"), None, Some("127.0.0.1"), None, None),
            None,
        ),
        (
            "Reconnecting PTY Connect",
            pty(connect(1, 1, 0).ip("")),
            (ReconnectingPty, None, None, None, None, None),
            None,
        ),
        (
            "Unspecified Connect",
            connect(1, 1, 0).ip(""),
            (Ssh, None, None, None, None, None),
            None,
        ),
        (
            "SSH Disconnect",
            disconnect(1, 1, 0, Some(0), Some("")).ip(""),
            (Ssh, None, Some(0), None, None, None),
            None,
        ),
        (
            "SSH Disconnect (2)",
            disconnect(1, 1, 0, Some(500), Some("because error says so")).ip(""),
            (
                Ssh,
                None,
                Some(500),
                None,
                Some("because error says so"),
                None,
            ),
            None,
        ),
        (
            "VS Code Disconnect",
            disconnect(1, 1, 0, Some(0), None).app("vscode").ip(""),
            (Ssh, Some("vscode"), Some(0), None, None, None),
            None,
        ),
        (
            "Unfamiliar App Connect",
            connect(1, 1, 0)
                .app("Some-New-IDE")
                .ip("")
                .session(CSID_VALUE),
            (
                Ssh,
                Some("some_new_ide"),
                None,
                None,
                None,
                Some(CSID_VALUE),
            ),
            CSID,
        ),
        (
            "Unfamiliar App Disconnect",
            disconnect(1, 1, 0, Some(0), Some("because"))
                .app("Some-New-IDE")
                .ip("")
                .session(CSID_VALUE),
            (
                Ssh,
                Some("some_new_ide"),
                Some(0),
                None,
                Some("because"),
                Some(CSID_VALUE),
            ),
            CSID,
        ),
        (
            // The agent's app name is ignored: a forward's column holds its destination.
            "Port Forwarding Connect (agent-reported, no app)",
            agent_port_forward(1, 1, 0)
                .app("Some-App")
                .ip("")
                .session(CSID_VALUE),
            (PortForwarding, None, None, None, None, Some(CSID_VALUE)),
            AGENT_FORWARD,
        ),
        (
            // §11.2: METHOD_RECONNECTING_PTY with an app.
            "Reconnecting PTY Connect with an app",
            pty(connect(1, 1, 0).app("Some-App").ip("")),
            (ReconnectingPty, Some("some_app"), None, None, None, None),
            PTY_APP,
        ),
    ]
}

/// Coder's tests' client session id.
const CSID_VALUE: &str = super::fixtures::CSID;

fn stored_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = stored_table()
        .into_iter()
        .map(|(name, event, want, needs)| {
            let name = leak(format!("§11.3 {name}: stores {}", stored_text(&want)));
            Case::boxed("ingest", name, move |h| stores(h, &event, want)).needing(needs)
        })
        .collect();
    cases.push(
        Case::new(
            "ingest",
            "§2.3 a client session id that is not 32 lowercase hex characters is refused, nothing stored",
            malformed_session_ids,
        )
        .needs_0_2("client session ids"),
    );
    cases
}

fn stored_text(want: &Stored) -> String {
    let (method, app, code, ip, reason, csid) = want;
    let or_null = |v: Option<String>| v.unwrap_or_else(|| "NULL".into());
    format!(
        "{method}, app {}, code {}, ip {}, reason {}, csid {}",
        or_null(app.map(str::to_string)),
        or_null(code.map(|c| c.to_string())),
        or_null(ip.map(str::to_string)),
        or_null(reason.map(str::to_string)),
        if csid.is_some() { "stored" } else { "NULL" }
    )
}

fn stores(h: &mut Harness, event: &ConnectionEvent, want: Stored) -> Check {
    h.store(vec![event.clone()])?;
    let rows = h.rows()?;
    let row = super::only(&rows)?;
    let (method, app, code, ip, reason, csid) = want;
    ensure_eq!(
        (
            row.connection_method,
            row.app_name_or_port.as_deref(),
            row.code
        ),
        (method, app, code),
        "method, app and code"
    );
    ensure_eq!(row.ip, h.expect_ip(ip), "IP");
    ensure_eq!(
        (
            row.disconnect_reason.as_deref(),
            row.client_session_id.as_deref()
        ),
        (reason, csid),
        "disconnect reason and client session id"
    );
    Ok(())
}

fn malformed_session_ids(h: &mut Harness) -> Check {
    let bad = [
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
        "01234567-89ab-cdef-0123-456789abcdef",
        "0123456789abcdef0123456789abcdeg",
    ];
    let events: Vec<ConnectionEvent> = bad
        .iter()
        .enumerate()
        .map(|(i, csid)| connect(i as u64 + 1, i as u64 + 1, 0).session(csid))
        .collect();
    let outcomes = h.ingest(events)?;
    for (csid, outcome) in bad.iter().zip(&outcomes) {
        match outcome {
            EventOutcome::Rejected(v) if v.field == "ClientSessionID" => {}
            other => {
                return Err(format!(
                    "{csid:?}: expected a ClientSessionID refusal, got {other:?}"
                ));
            }
        }
    }
    ensure_eq!(outcomes.len(), bad.len(), "outcomes");
    ensure_eq!(h.rows()?.len(), 0, "rows");
    ensure_eq!(h.journal_len()?, 0, "events in the journal");
    // An empty one is absent, as Coder's NULLIF makes it.
    h.store(vec![connect(9, 9, 0).session("")])?;
    ensure_eq!(
        super::only(&h.rows()?)?.client_session_id,
        None,
        "an empty client session id"
    );
    Ok(())
}

// §11.5: the deprecated `type`, as the API returns it.

fn type_cases() -> Vec<Case> {
    let ssh = |app: Option<&str>| match app {
        Some(app) => connect(1, 1, 0).app(app),
        None => connect(1, 1, 0),
    };
    let table: Vec<(&str, ConnectionEvent, &str, &str, Option<&'static str>)> = vec![
        ("ssh + cursor", ssh(Some("cursor")), "ssh", "vscode", None),
        (
            "ssh + jetbrains",
            ssh(Some("jetbrains")),
            "ssh",
            "jetbrains",
            None,
        ),
        (
            "ssh + goland",
            ssh(Some("goland")),
            "ssh",
            "jetbrains",
            None,
        ),
        (
            "ssh + Code-Server",
            ssh(Some("Code-Server")),
            "ssh",
            "vscode",
            None,
        ),
        ("ssh + \"\"", ssh(Some("")), "ssh", "ssh", None),
        ("ssh + NULL", ssh(None), "ssh", "ssh", None),
        ("ssh + zed", ssh(Some("zed")), "ssh", "ssh", None),
        (
            "ssh + an_unregistered_ide",
            ssh(Some("an_unregistered_ide")),
            "ssh",
            "ssh",
            None,
        ),
        ("ssh + tunnel", ssh(Some("tunnel")), "ssh", "ssh", None),
        ("ssh + sftp", ssh(Some("sftp")), "ssh", "ssh", None),
        (
            "reconnecting_pty + cursor",
            ssh(Some("cursor")).method(ReconnectingPty),
            "reconnecting_pty",
            "reconnecting_pty",
            None,
        ),
        (
            "workspace_app + cursor",
            web(1, 0, None).app("cursor"),
            "workspace_app",
            "workspace_app",
            None,
        ),
        (
            "port_forwarding + 8080",
            web(1, 0, None).method(PortForwarding).app("8080"),
            "port_forwarding",
            "port_forwarding",
            None,
        ),
        (
            "tunnel + NULL",
            web(1, 0, None).method(Tunnel).no_app(),
            "tunnel",
            "tunnel",
            None,
        ),
        (
            "agent-reported port_forwarding",
            agent_port_forward(1, 1, 0),
            "port_forwarding",
            "port_forwarding",
            AGENT_FORWARD,
        ),
    ];
    table
        .into_iter()
        .map(|(name, event, method, deprecated, needs)| {
            let name = leak(format!("§11.5 {name} is type {deprecated:?}"));
            Case::boxed("formats", name, move |h| {
                h.store(vec![event.clone()])?;
                let body = api_body(h, "")?;
                let row = &body["connection_logs"][0];
                ensure_eq!(
                    (row["type"].as_str(), row["connection_method"].as_str()),
                    (Some(deprecated), Some(method)),
                    "type and connection_method"
                );
                ensure!(
                    row.get("type_display_name").is_none(),
                    "the row has C's type_display_name"
                );
                Ok(())
            })
            .needing(needs)
        })
        .collect()
}

fn api_body(h: &mut Harness, q: &str) -> Result<Value, String> {
    let body = h
        .raw_api_page(admin_id(), q, 0, 0)?
        .map_err(|e| format!("api-page refuses {q:?}: {e:?}"))?;
    serde_json::from_str(&body).map_err(|e| format!("the API body for {q:?} is not JSON: {e}"))
}

// §11.7: query parsing, and §6.2's order of errors.

fn invalid_value(key: &str, value: &str) -> Validation {
    Validation::new(
        key,
        format!("Query param \"{key}\" has invalid value: \"{value}\" is not a valid value"),
    )
}

fn combined() -> Validation {
    Validation::new("type", "type cannot be combined with method or app")
}

fn unknown_key(key: &str) -> Validation {
    Validation::new(key, format!("\"{key}\" is not a valid query param"))
}

fn more_than_once(key: &str, n: usize) -> Validation {
    Validation::new(
        key,
        format!(
            "Query param \"{key}\" provided more than once, found {n} times. Only provide 1 instance of this query param."
        ),
    )
}

fn parsing_cases() -> Vec<Case> {
    let table: Vec<(&str, Vec<Validation>)> = vec![
        ("type:cursor", vec![invalid_value("type", "cursor")]),
        ("type:unknown", vec![invalid_value("type", "unknown")]),
        ("type:ssh method:ssh", vec![combined()]),
        ("type:vscode app:cursor", vec![combined()]),
        // D3 has no `family:`: an unknown key, and no combination error.
        ("type:vscode family:vscode", vec![unknown_key("family")]),
        ("family:jetbrains", vec![unknown_key("family")]),
        ("method:vscode", vec![invalid_value("method", "vscode")]),
        ("method:unknown", vec![invalid_value("method", "unknown")]),
        (
            "method:jetbrains",
            vec![invalid_value("method", "jetbrains")],
        ),
        // An invalid type is no type: one error, not two.
        (
            "type:cursor method:ssh",
            vec![invalid_value("type", "cursor")],
        ),
        (
            "method:ssh method:tunnel",
            vec![more_than_once("method", 2)],
        ),
        ("type:ssh type:vscode", vec![more_than_once("type", 2)]),
        (
            "family:vscode type:vscode app:cursor method:vscode status:bogus",
            vec![
                invalid_value("status", "bogus"),
                invalid_value("method", "vscode"),
                combined(),
                unknown_key("family"),
            ],
        ),
        (
            "family:x type:Cursor method:Bogus status:bogus",
            vec![
                invalid_value("status", "bogus"),
                invalid_value("method", "bogus"),
                invalid_value("type", "cursor"),
                unknown_key("family"),
            ],
        ),
    ];
    let mut cases: Vec<Case> = table
        .into_iter()
        .map(|(q, want)| {
            let name = match want.len() {
                1 => leak(format!("§11.7 {q:?} is refused with exactly one error")),
                n => leak(format!("§11.7 {q:?} is refused with {n} errors, in order")),
            };
            Case::boxed("query", name, move |h| {
                ensure_eq!(h.invalid(q)?, want, "validations of {q:?}");
                Ok(())
            })
        })
        .collect();
    // Valid queries: the rows they match.
    let matches: Vec<(&str, Vec<u64>)> = vec![
        ("app:Code-Server", vec![1]),
        ("app:vscode app:Cursor app:cursor method:ssh", vec![2, 3]),
        // `type:""` is ignored, so it is never combined.
        ("type:\"\" method:ssh", vec![1, 2, 3, 4, 5]),
        // `app:vscode,` is `vscode` and `` (which normalises to `unknown`).
        ("app:vscode,", vec![3, 4]),
        // `app:` never matches a web slug, even one naming an app.
        ("app:code-server", vec![1]),
    ];
    cases.extend(matches.into_iter().map(|(q, want)| {
        let name = leak(format!(
            "§11.7 {q:?} matches {}",
            names(&want.iter().map(|&n| eid(n)).collect::<Vec<_>>())
        ));
        Case::boxed("query", name, move |h| {
            h.store(vec![
                connect(1, 1, 1).app("Code-Server"),
                connect(2, 2, 2).app("cursor"),
                connect(3, 3, 3).app("vscode"),
                connect(4, 4, 4).app(" "),
                connect(5, 5, 5),
                web(6, 6, None),
                web(7, 7, None).app("cursor"),
            ])?;
            let mut got = h.ids(q)?;
            got.sort();
            let want: Vec<Uuid> = want.iter().map(|&n| eid(n)).collect();
            same_ids(&got, &want, q)
        })
    }));
    cases
}

// §11.8: the ten-row fixture A..J and its queries.

/// [`APP_FIXTURE`] as events. Row `L` is `eid(L as u64)`: A is `eid(65)`.
fn fixture_a_to_j() -> Vec<ConnectionEvent> {
    APP_FIXTURE
        .iter()
        .map(|&(l, method, app)| {
            let event = match method {
                _ if method.is_terminal() => connect(l as u64, l as u64, l as i64 - 64),
                Tunnel => web(l as u64, l as i64 - 64, Some(owner())).with(|e| e.code = Some(101)),
                _ => web(l as u64, l as i64 - 64, Some(owner())),
            };
            event
                .method(method)
                .with(|e| e.app_name_or_port = app.map(str::to_string))
        })
        .collect()
}

fn letters(ids: &[Uuid]) -> String {
    ids.iter()
        .map(|id| {
            let n = id.as_u64_pair().1 & 0xffff;
            char::from_u32(n as u32)
                .filter(char::is_ascii_uppercase)
                .map_or_else(|| super::fixtures::id_name(*id), String::from)
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether a row of the fixture, or a query, needs G's app, which contract 0.1.0 cannot
/// carry (it drops a web terminal's app).
fn needs_pty_app(letters: &str, filters_by_app: bool) -> Option<&'static str> {
    (letters.contains('G') && filters_by_app)
        .then_some(PTY_APP)
        .flatten()
}

fn fixture_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = APP_FIXTURE_QUERIES
        .into_iter()
        .map(|(q, rows)| {
            let shown = if rows.is_empty() { "none" } else { rows };
            let name = leak(format!("§11.8 {q:?} gives {shown}"));
            let needs = needs_pty_app(rows, q.to_lowercase().contains("app:"));
            Case::boxed("query", name, move |h| {
                h.store(fixture_a_to_j())?;
                let page = h.query(q)?;
                let mut got: Vec<Uuid> = page.rows.iter().map(|r| r.id).collect();
                got.sort();
                let want: Vec<Uuid> = rows.chars().map(|l| eid(l as u64)).collect();
                ensure!(
                    got == want,
                    "{q:?}: expected rows {rows:?}, got {:?}",
                    letters(&got)
                );
                ensure_eq!(page.count, want.len() as u64, "count for {q:?}");
                Ok(())
            })
            .needing(needs)
        })
        .collect();
    cases.extend(app_fixture_refusals().into_iter().map(|(q, want)| {
        let name = leak(format!("§11.8 {q:?} is a 400"));
        let want: Vec<Validation> = want
            .into_iter()
            .map(|(field, detail)| Validation::new(field, detail))
            .collect();
        Case::boxed("query", name, move |h| {
            h.store(fixture_a_to_j())?;
            ensure_eq!(h.invalid(q)?, want, "validations of {q:?}");
            Ok(())
        })
    }));
    cases.extend(
        APP_FIXTURE_SHAPES
            .into_iter()
            .map(|(letter, deprecated, method, app, slug)| {
                let name = leak(format!(
                    "§11.8 row {letter} is returned as type {deprecated}, method {method}, app {}, slug {}",
                    app.unwrap_or("–"),
                    slug.unwrap_or("–")
                ));
                let needs = needs_pty_app(&letter.to_string(), app.is_some());
                Case::boxed("formats", name, move |h| {
                    h.store(fixture_a_to_j())?;
                    let body = api_body(h, "")?;
                    let id = eid(letter as u64).to_string();
                    let row = body["connection_logs"]
                        .as_array()
                        .and_then(|rows| rows.iter().find(|r| r["id"].as_str() == Some(&id)))
                        .ok_or_else(|| format!("no row {letter} in the API body"))?;
                    ensure_eq!(
                        (
                            row["type"].as_str(),
                            row["connection_method"].as_str(),
                            row.get("app_name").and_then(Value::as_str),
                            row.get("web_info").map(|w| w["slug_or_port"].as_str()),
                        ),
                        (Some(deprecated), Some(method), app, slug.map(Some)),
                        "row {letter}: type, connection_method, app_name, web_info.slug_or_port"
                    );
                    Ok(())
                })
                .needing(needs)
            }),
    );
    cases
}

// §11.9 and §7.6: the API's JSON, byte for byte apart from ids and times.

/// Every row's keys up to `ip`, in the Go struct's order. `{IP}` is `"ip":"…",` or nothing
/// (omitempty).
const HEAD: &str = r#"{"id":"{ID}","connect_time":"2025-07-10T10:00:00Z","organization":{"id":"{ORG}","name":"coder","display_name":"coder","icon":""},"workspace_owner_id":"{OWNER}","workspace_owner_username":"alice","workspace_id":"{WS}","workspace_name":"dev","agent_name":"main",{IP}"#;

struct JsonRow {
    name: &'static str,
    events: Vec<ConnectionEvent>,
    /// The IP the reference stores, which the row shows.
    ip: &'static str,
    /// The user agent the reference stores, which `{UA}` shows.
    user_agent: Option<&'static str>,
    /// The row after [`HEAD`]; `{CID}`, `{UA}` and `{CSID}` are filled in, and a `web_info`
    /// user is shown as `{…}` (its id is checked apart).
    tail: &'static str,
    user: Option<Uuid>,
    needs: Option<&'static str>,
}

fn json_table() -> Vec<JsonRow> {
    vec![
        JsonRow {
            name: "§7.6 SSH from Cursor, completed",
            events: vec![
                connect(1, 1, 0).app("Cursor").ip("192.168.0.1"),
                disconnect(2, 1, 3600, None, Some("example close reason")),
            ],
            ip: "192.168.0.1",
            user_agent: None,
            tail: r#""type":"vscode","connection_method":"ssh","app_name":"cursor","app_display_name":"Cursor","ssh_info":{"connection_id":"{CID}","disconnect_time":"2025-07-10T11:00:00Z","disconnect_reason":"example close reason"}}"#,
            user: None,
            needs: None,
        },
        JsonRow {
            name: "§7.6 plain SSH: no app_name, app_display_name or web_info",
            events: vec![connect(1, 1, 0)],
            ip: "fd7a:115c:a1e0::1",
            user_agent: None,
            tail: r#""type":"ssh","connection_method":"ssh","ssh_info":{"connection_id":"{CID}"}}"#,
            user: None,
            needs: None,
        },
        JsonRow {
            name: "§7.6 workspace app: no app_name, no ssh_info, web_info with the slug",
            events: vec![web(1, 0, Some(owner()))],
            ip: "127.0.0.1",
            user_agent: Some("Mozilla/5.0"),
            tail: r#""type":"workspace_app","connection_method":"workspace_app","web_info":{"user_agent":"{UA}","user":{…},"slug_or_port":"code-server","status_code":200}}"#,
            user: Some(owner()),
            needs: None,
        },
        JsonRow {
            name: "§7.6 unregistered app Some-New-IDE over SSH",
            events: vec![connect(1, 1, 0).app("Some-New-IDE")],
            ip: "fd7a:115c:a1e0::1",
            user_agent: None,
            tail: r#""type":"ssh","connection_method":"ssh","app_name":"some_new_ide","app_display_name":"some_new_ide","ssh_info":{"connection_id":"{CID}"}}"#,
            user: None,
            needs: None,
        },
        JsonRow {
            name: "§11.9 tunnel: web_info with the user and status 101, no ssh_info",
            events: vec![
                web(1, 0, Some(owner()))
                    .method(Tunnel)
                    .no_app()
                    .with(|e| e.code = Some(101))
                    .with(|e| e.user_agent = Some(super::privacy::CURL.into())),
            ],
            ip: "127.0.0.1",
            user_agent: Some(super::privacy::CURL),
            tail: r#""type":"tunnel","connection_method":"tunnel","web_info":{"user_agent":"{UA}","user":{…},"slug_or_port":"","status_code":101}}"#,
            user: Some(owner()),
            needs: None,
        },
        JsonRow {
            name: "§10.1 a legacy jetbrains row: ssh with app jetbrains",
            events: vec![connect(1, 1, 0).app("jetbrains")],
            ip: "fd7a:115c:a1e0::1",
            user_agent: None,
            tail: r#""type":"jetbrains","connection_method":"ssh","app_name":"jetbrains","app_display_name":"JetBrains","ssh_info":{"connection_id":"{CID}"}}"#,
            user: None,
            needs: None,
        },
        JsonRow {
            name: "§3.3 devin is Devin Desktop",
            events: vec![connect(1, 1, 0).app("devin")],
            ip: "fd7a:115c:a1e0::1",
            user_agent: None,
            tail: r#""type":"vscode","connection_method":"ssh","app_name":"devin","app_display_name":"Devin Desktop","ssh_info":{"connection_id":"{CID}"}}"#,
            user: None,
            needs: None,
        },
        JsonRow {
            name: "§10.2 a workspace app whose slug is an app name has no app_name",
            events: vec![web(1, 0, None).app("cursor")],
            ip: "127.0.0.1",
            user_agent: Some("Mozilla/5.0"),
            tail: r#""type":"workspace_app","connection_method":"workspace_app","web_info":{"user_agent":"{UA}","user":null,"slug_or_port":"cursor","status_code":200}}"#,
            user: None,
            needs: None,
        },
        JsonRow {
            name: "§7.5 ssh_info carries the client session id, after exit_code",
            events: vec![
                connect(1, 1, 0).session(CSID_VALUE),
                disconnect(2, 1, 60, Some(0), Some("bye")).session(CSID_VALUE),
            ],
            ip: "fd7a:115c:a1e0::1",
            user_agent: None,
            tail: r#""type":"ssh","connection_method":"ssh","ssh_info":{"connection_id":"{CID}","disconnect_time":"2025-07-10T10:01:00Z","disconnect_reason":"bye","exit_code":0,"client_session_id":"{CSID}"}}"#,
            user: None,
            needs: CSID,
        },
        JsonRow {
            name: "§10.6 a web terminal with an app: type reconnecting_pty, app_name shown",
            events: vec![connect(1, 1, 0).method(ReconnectingPty).app("cursor")],
            ip: "fd7a:115c:a1e0::1",
            user_agent: None,
            tail: r#""type":"reconnecting_pty","connection_method":"reconnecting_pty","app_name":"cursor","app_display_name":"Cursor","ssh_info":{"connection_id":"{CID}"}}"#,
            user: None,
            needs: PTY_APP,
        },
        JsonRow {
            name: "§7.4 an agent-reported port forward: web_info with no user, user agent or slug",
            events: vec![
                agent_port_forward(1, 1, 0).session(CSID_VALUE),
                disconnect(2, 1, 60, None, None)
                    .method(PortForwarding)
                    .session(CSID_VALUE),
            ],
            ip: "fd7a:115c:a1e0::1",
            user_agent: None,
            tail: r#""type":"port_forwarding","connection_method":"port_forwarding","web_info":{"user_agent":"","user":null,"slug_or_port":"","status_code":0}}"#,
            user: None,
            needs: AGENT_FORWARD,
        },
    ]
}

fn json_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = json_table()
        .into_iter()
        .map(|row| {
            let (name, needs) = (row.name, row.needs);
            Case::boxed("formats", name, move |h| json_row(h, &row)).needing(needs)
        })
        .collect();
    cases.push(Case::new(
        "formats",
        "§11.9 method:ssh matching no rows is Coder's empty body",
        |h| {
            h.store(vec![web(1, 0, None)])?;
            let body = h
                .raw_api_page(admin_id(), "method:ssh", 0, 0)?
                .map_err(|e| format!("api-page refuses method:ssh: {e:?}"))?;
            ensure_eq!(
                body,
                r#"{"connection_logs":[],"count":0,"count_cap":2000}"#,
                "the body"
            );
            Ok(())
        },
    ));
    cases
}

fn json_row(h: &mut Harness, row: &JsonRow) -> Check {
    h.store(row.events.clone())?;
    let body = h
        .raw_api_page(admin_id(), "", 0, 0)?
        .map_err(|e| format!("api-page refuses the empty query: {e:?}"))?;
    if let Some(user) = row.user {
        let value: Value =
            serde_json::from_str(&body).map_err(|e| format!("the body is not JSON: {e}"))?;
        ensure_eq!(
            value["connection_logs"][0]["web_info"]["user"]["id"].as_str(),
            Some(user.to_string().as_str()),
            "web_info.user.id"
        );
    }
    let ip = match h.expect_ip(Some(row.ip)) {
        Some(ip) => format!(r#""ip":"{ip}","#),
        None => String::new(),
    };
    let user_agent = h.expect_user_agent(row.user_agent).unwrap_or_default();
    let want_row = format!("{HEAD}{}", row.tail)
        .replace("{ID}", &row.events[0].id.to_string())
        .replace("{ORG}", &org().to_string())
        .replace("{OWNER}", &owner().to_string())
        .replace("{WS}", &workspace().to_string())
        .replace("{IP}", &ip)
        .replace("{CID}", &cid(1).to_string())
        .replace("{UA}", &user_agent)
        .replace("{CSID}", CSID_VALUE);
    let want = format!(r#"{{"connection_logs":[{want_row}],"count":1,"count_cap":2000}}"#);
    let got = hide_user(&body);
    ensure!(
        got == want,
        "the body differs from Coder's at byte {}:\n  got  {got}\n  want {want}",
        got.bytes()
            .zip(want.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()))
    );
    Ok(())
}

/// The body with a `web_info` user object shown as `{…}`: a codersdk.User whose every
/// field is the directory's, checked elsewhere.
fn hide_user(body: &str) -> String {
    const KEY: &str = r#""user":{"#;
    let Some(start) = body.find(KEY) else {
        return body.to_string();
    };
    let open = start + KEY.len() - 1;
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in body[open..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '{' if !in_string => depth += 1,
            '}' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    let end = open + i + 1;
                    return format!("{}{{…}}{}", &body[..open], &body[end..]);
                }
            }
            _ => {}
        }
    }
    body.to_string()
}
