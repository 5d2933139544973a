//! The formats: Coder's API body (`api-page`, `api-response`, `api-rows`), Coder's
//! service-log lines (JSON and human), and `row-events`, whose JSON lines rebuild every
//! row in an empty store (`connlog export --format json | connlog ingest -`).

use serde_json::Value;

use super::fixtures::*;
use super::{Case, Check, Harness, same_rows};
use crate::events::{Parsed, parse_line, parse_time};
use crate::model::*;
use crate::responses::{INVALID_QUERY_MESSAGE, validation_body};

pub fn cases() -> Vec<Case> {
    let f = |name: &'static str, run: fn(&mut Harness) -> Check| Case::new("formats", name, run);
    vec![
        f(
            "api-page is the query's page rendered by api-response",
            api_page_is_api_response,
        ),
        f("the API body has Coder's shape", api_body_shape),
        f(
            "an empty page is Coder's empty body, with count_cap 2000",
            empty_body,
        ),
        f(
            "an invalid query gives Coder's 400 body",
            invalid_query_body,
        ),
        f(
            "api-rows renders each row as the API body does",
            api_rows_match_the_body,
        ),
        f(
            "a seed JSON service-log line reads back as the same event",
            |h| json_line_round_trip(h, LogFields::Seed),
        ),
        f(
            "a current JSON service-log line reads back as the same event",
            |h| json_line_round_trip(h, LogFields::Current),
        )
        .needs_0_2(CURRENT_LINE),
        f(
            "a seed human service-log line is one line naming the event, with [API]",
            |h| human_line(h, LogFields::Seed),
        ),
        f(
            "a current human service-log line is one line naming the event, without [API]",
            |h| human_line(h, LogFields::Current),
        )
        .needs_0_2(CURRENT_LINE),
        f(
            "each stored event is logged once per format; duplicates and refusals never",
            logged_once_per_format,
        ),
        f("current service-log lines carry the event as stored", |h| {
            logged_canonical(h, LogFields::Current, "cursor")
        })
        .needs_0_2(CURRENT_LINE),
        f(
            "seed service-log lines carry the event as stored, the app as its deprecated type",
            |h| logged_canonical(h, LogFields::Seed, "vscode"),
        ),
        f(
            "row-events: the defining event carries the row id, a disconnect follows the connect",
            row_events_shape,
        ),
    ]
    .into_iter()
    .chain(exact_line_cases())
    .chain(round_trip_cases())
    .collect()
}

/// What a case needs of contract 0.2.0 when it reads Coder's current line.
const CURRENT_LINE: &str = "the current service-log line";

/// The export round trips, by generation of line: the current line carries everything
/// (rows identical, ids included); the seed's carries no app outside the VS Code and
/// JetBrains names and no client session id, so its round trip is over rows without them.
fn round_trip_cases() -> Vec<Case> {
    let f = |name: &'static str, run: Box<dyn Fn(&mut Harness) -> Check>| {
        Case::boxed("formats", name, run)
    };
    vec![
        f(
            "current row-events lines ingested into an empty store give the same rows and answers",
            Box::new(|h| export_round_trip(h, LogFields::Current, current_events())),
        )
        .needs_0_2(CURRENT_LINE),
        f(
            "current row-events lines are stable: the rebuilt store exports the same lines",
            Box::new(|h| export_is_stable(h, LogFields::Current, current_events())),
        )
        .needs_0_2(CURRENT_LINE),
        f(
            "seed row-events lines ingested into an empty store give the same rows and answers",
            Box::new(|h| export_round_trip(h, LogFields::Seed, seed_events())),
        ),
        f(
            "seed row-events lines are stable: the rebuilt store exports the same lines",
            Box::new(|h| export_is_stable(h, LogFields::Seed, seed_events())),
        ),
    ]
}

/// [`mixed_events`] as the seed's line can carry them: SSH apps only of the names that are
/// also deprecated types.
fn seed_events() -> Vec<ConnectionEvent> {
    mixed_events()
        .into_iter()
        .map(|e| match e.app_name_or_port.as_deref() {
            Some("vscode" | "jetbrains") => e,
            _ if e.connection_method == ConnectionMethod::Ssh => e.no_app(),
            _ => e,
        })
        .collect()
}

fn body_of(h: &mut Harness, user: Uuid, q: &str, limit: u32, offset: u32) -> Result<Value, String> {
    let body = h
        .raw_api_page(user, q, limit, offset)?
        .map_err(|e| format!("api-page refuses {q:?}: {e:?}"))?;
    serde_json::from_str(&body).map_err(|e| format!("the API body for {q:?} is not JSON: {e}"))
}

fn api_page_is_api_response(h: &mut Harness) -> Check {
    h.store(vec![
        connect(1, 9, 0),
        disconnect(2, 9, 1, Some(0), Some("client closed")),
        connect(3, 10, 2),
        web(4, 0, Some(bob())),
    ])?;
    let pages = [
        (admin_id(), "", 0, 0),
        (admin_id(), "type:ssh", 1, 0),
        (admin_id(), "", 2, 1),
        (admin_id(), "status:ongoing", 0, 0),
        (org_auditor(), "", 0, 0),
        (member(), "", 0, 0),
    ];
    for (user, q, limit, offset) in pages {
        let page = h
            .raw_query(user, q, limit, offset)?
            .map_err(|e| format!("{q:?} is refused: {e:?}"))?;
        let rendered = h
            .service()?
            .api_response(page)
            .map_err(|e| format!("api-response failed: {e}"))?;
        let body = h
            .raw_api_page(user, q, limit, offset)?
            .map_err(|e| format!("api-page refuses {q:?}: {e:?}"))?;
        ensure!(
            body == rendered,
            "{q:?} as {} (limit {limit}, offset {offset}): api-page and api-response differ",
            id_name(user)
        );
    }
    let refused = h.raw_api_page(admin_id(), "color:blue", 0, 0)?;
    let invalid = h.invalid("color:blue")?;
    ensure_eq!(
        refused,
        Err(QueryError::InvalidQuery(invalid)),
        "api-page for color:blue"
    );
    Ok(())
}

fn api_body_shape(h: &mut Harness) -> Check {
    h.store(vec![
        connect(1, 1, 0),
        disconnect(2, 1, 60, Some(0), None),
        web(3, 120, Some(bob())),
    ])?;
    let body = body_of(h, admin_id(), "", 0, 0)?;
    ensure_eq!(body["count"].as_u64(), Some(2), "count");
    ensure_eq!(body["count_cap"].as_u64(), Some(2000), "count_cap");
    let rows = body["connection_logs"]
        .as_array()
        .ok_or("connection_logs is not an array")?;
    ensure_eq!(rows.len(), 2, "rows");
    let (web_row, ssh_row) = (&rows[0], &rows[1]);
    for (row, id, time) in [
        (web_row, eid(3), "2025-07-10T10:02:00Z"),
        (ssh_row, eid(1), "2025-07-10T10:00:00Z"),
    ] {
        let name = id_name(id);
        ensure_eq!(
            row["id"].as_str(),
            Some(id.to_string().as_str()),
            "{name}: id"
        );
        ensure_eq!(
            row["connect_time"].as_str(),
            Some(time),
            "{name}: connect_time"
        );
        ensure_eq!(
            row["organization"]["id"].as_str(),
            Some(org().to_string().as_str()),
            "{name}: organization.id"
        );
        ensure_eq!(
            row["organization"]["name"].as_str(),
            Some("coder"),
            "{name}: organization.name"
        );
        ensure_eq!(
            row["workspace_owner_id"].as_str(),
            Some(owner().to_string().as_str()),
            "{name}: workspace_owner_id"
        );
        ensure_eq!(
            row["workspace_owner_username"].as_str(),
            Some("alice"),
            "{name}: workspace_owner_username"
        );
        ensure_eq!(
            row["workspace_id"].as_str(),
            Some(workspace().to_string().as_str()),
            "{name}: workspace_id"
        );
        ensure_eq!(
            row["workspace_name"].as_str(),
            Some("dev"),
            "{name}: workspace_name"
        );
        ensure_eq!(
            row["agent_name"].as_str(),
            Some("main"),
            "{name}: agent_name"
        );
    }
    ensure_eq!(
        web_row["type"].as_str(),
        Some("workspace_app"),
        "web row: type"
    );
    ensure_eq!(
        web_row["connection_method"].as_str(),
        Some("workspace_app"),
        "web row: connection_method"
    );
    // D: no app for a web row, and C's type_display_name is gone from every row.
    for (row, name) in [(web_row, "web row"), (ssh_row, "ssh row")] {
        for key in ["app_name", "app_display_name", "type_display_name"] {
            ensure!(row.get(key).is_none(), "the {name} has {key}");
        }
    }
    ensure!(web_row.get("ssh_info").is_none(), "a web row has ssh_info");
    let web_info = &web_row["web_info"];
    // Coder writes a user agent it has none of as "".
    let user_agent = h.expect_user_agent(Some("Mozilla/5.0")).unwrap_or_default();
    ensure_eq!(
        web_info["user_agent"].as_str(),
        Some(user_agent.as_str()),
        "web_info.user_agent"
    );
    ensure_eq!(
        web_info["slug_or_port"].as_str(),
        Some("code-server"),
        "web_info.slug_or_port"
    );
    ensure_eq!(
        web_info["status_code"].as_i64(),
        Some(200),
        "web_info.status_code"
    );
    let user = &web_info["user"];
    ensure_eq!(
        user["id"].as_str(),
        Some(bob().to_string().as_str()),
        "web_info.user.id"
    );
    ensure_eq!(
        user["username"].as_str(),
        Some("bob"),
        "web_info.user.username"
    );
    ensure_eq!(
        user["email"].as_str(),
        Some("bob@example.com"),
        "web_info.user.email"
    );
    ensure_eq!(
        user["status"].as_str(),
        Some("active"),
        "web_info.user.status"
    );
    ensure_eq!(ssh_row["type"].as_str(), Some("ssh"), "ssh row: type");
    ensure_eq!(
        ssh_row["connection_method"].as_str(),
        Some("ssh"),
        "ssh row: connection_method"
    );
    ensure!(ssh_row.get("web_info").is_none(), "an ssh row has web_info");
    let ssh_info = &ssh_row["ssh_info"];
    ensure_eq!(
        ssh_info["connection_id"].as_str(),
        Some(cid(1).to_string().as_str()),
        "ssh_info.connection_id"
    );
    ensure_eq!(
        ssh_info["disconnect_time"].as_str(),
        Some("2025-07-10T10:01:00Z"),
        "ssh_info.disconnect_time"
    );
    ensure_eq!(
        ssh_info["exit_code"].as_i64(),
        Some(0),
        "ssh_info.exit_code (0 is a value)"
    );
    ensure!(
        ssh_info.get("disconnect_reason").is_none(),
        "an empty disconnect_reason is not omitted"
    );
    Ok(())
}

fn empty_body(h: &mut Harness) -> Check {
    h.store(vec![connect(1, 1, 0)])?;
    let body = h
        .raw_api_page(member(), "", 0, 0)?
        .map_err(|e| format!("api-page refuses the empty query: {e:?}"))?;
    ensure_eq!(
        body,
        r#"{"connection_logs":[],"count":0,"count_cap":2000}"#,
        "the body for a reader who may see nothing"
    );
    Ok(())
}

fn invalid_query_body(h: &mut Harness) -> Check {
    let validations = h.invalid("hello")?;
    ensure_eq!(
        validation_body(INVALID_QUERY_MESSAGE, &validations),
        r#"{"message":"Invalid connection search query.","validations":[{"field":"search","detail":"\"search\" is not a valid query param"}]}"#,
        "the 400 body for \"hello\""
    );
    Ok(())
}

fn api_rows_match_the_body(h: &mut Harness) -> Check {
    h.store(mixed_events())?;
    let body = body_of(h, admin_id(), "", 1000, 0)?;
    let from_body = body["connection_logs"]
        .as_array()
        .ok_or("connection_logs is not an array")?
        .clone();
    let rows = h.rows()?;
    let lines = h
        .service()?
        .api_rows(rows.clone())
        .map_err(|e| format!("api-rows failed: {e}"))?;
    ensure_eq!(lines.len(), rows.len(), "lines");
    for (i, line) in lines.iter().enumerate() {
        ensure!(!line.contains('\n'), "api-rows line {i} holds a line break");
        let value: Value = serde_json::from_str(line)
            .map_err(|e| format!("api-rows line {i} is not JSON: {e}"))?;
        ensure!(
            value == from_body[i],
            "api-rows line {i} ({}) differs from the body's row",
            id_name(rows[i].id)
        );
    }
    Ok(())
}

fn sample_events() -> Vec<ConnectionEvent> {
    vec![
        connect(1, 1, 0),
        disconnect(2, 1, 60, Some(0), Some("client closed")),
        disconnect(3, 2, 61, None, None),
        web(4, 2, Some(bob())),
        web(5, 3, None)
            .method(ConnectionMethod::Tunnel)
            .no_app()
            .with(|e| e.code = Some(101)),
    ]
}

fn line(
    h: &mut Harness,
    event: &ConnectionEvent,
    format: LogFormat,
    fields: LogFields,
    at: UnixNanos,
) -> Result<String, String> {
    h.service()?
        .service_log_line(event.clone(), format, fields, at)
        .map_err(|e| format!("service-log-line failed: {e}"))
}

fn read_back(line: &str) -> Result<ConnectionEvent, String> {
    match parse_line(line) {
        Ok(Parsed::Event(event)) => Ok(event),
        Ok(Parsed::Skipped(reason)) => Err(format!("the line is skipped as {reason:?}")),
        Err(e) => Err(format!("the line is refused: {e}")),
    }
}

fn json_line_round_trip(h: &mut Harness, fields: LogFields) -> Check {
    let at = T0 + HOUR + 123_456_789;
    let mut events = sample_events();
    if fields == LogFields::Current {
        events.push(connect(6, 4, 9).app("cursor").session(CSID));
    }
    for event in events {
        let name = id_name(event.id);
        let text = line(h, &event, LogFormat::Json, fields, at)?;
        ensure!(!text.contains('\n'), "{name}: the line holds a line break");
        let value: Value =
            serde_json::from_str(&text).map_err(|e| format!("{name}: not JSON: {e}"))?;
        ensure_eq!(value["msg"].as_str(), Some("connection_log"), "{name}: msg");
        ensure_eq!(value["level"].as_str(), Some("INFO"), "{name}: level");
        let ts = value["ts"].as_str().and_then(|t| parse_time(t).ok());
        ensure_eq!(ts, Some(at), "{name}: ts (the logging time)");
        let back = read_back(&text).map_err(|e| format!("{name}: {e}"))?;
        ensure!(
            back == event,
            "{name}: read back as another event: {}",
            super::short(&back)
        );
    }
    Ok(())
}

fn human_line(h: &mut Harness, fields: LogFields) -> Check {
    // The seed's line carries the `[API]` prefix of its docs' example; the current one not.
    let prefix = match fields {
        LogFields::Current => "",
        LogFields::Seed => "[API] ",
    };
    {
        for event in sample_events() {
            let name = format!("{} ({fields:?})", id_name(event.id));
            let text = line(h, &event, LogFormat::Human, fields, T0)?;
            ensure!(!text.contains('\n'), "{name}: the line holds a line break");
            let head = format!("{prefix}2025-07-10 10:00:00.000 [info]  coderd: connection_log  ");
            ensure!(
                text.starts_with(&head),
                "{name}: the line does not start with {head:?}: {text:?}"
            );
            let id = format!("ID={}", event.id);
            ensure!(text.contains(&id), "{name}: the line does not hold {id}");
            let status = match event.status {
                ConnectionStatus::Connected => "ConnectionStatus=connected",
                ConnectionStatus::Disconnected => "ConnectionStatus=disconnected",
            };
            ensure!(
                text.ends_with(status),
                "{name}: the line does not end with {status}"
            );
        }
    }
    Ok(())
}

fn logged_once_per_format(h: &mut Harness) -> Check {
    let mut h = h.fresh_with(super::Options {
        log_formats: vec![LogFormat::Json, LogFormat::Human],
        ..Default::default()
    })?;
    h.ingest(vec![
        connect(1, 1, 0),
        connect(9, 9, 0).with(|e| e.connection_id = None),
        connect(1, 1, 0),
        web(2, 1, None),
    ])?;
    let lines = h.take_service_log();
    let formats: Vec<LogFormat> = lines.iter().map(|l| l.format).collect();
    ensure_eq!(
        formats,
        [
            LogFormat::Json,
            LogFormat::Human,
            LogFormat::Json,
            LogFormat::Human
        ],
        "the formats of the lines written"
    );
    ensure!(
        lines[0].line.contains(&eid(1).to_string()) && lines[1].line.contains(&eid(1).to_string()),
        "the first two lines do not name eid(1)"
    );
    ensure!(
        lines[2].line.contains(&eid(2).to_string()) && lines[3].line.contains(&eid(2).to_string()),
        "the last two lines do not name eid(2)"
    );
    h.ingest(vec![connect(1, 1, 0)])?;
    ensure_eq!(h.take_service_log().len(), 0, "lines for a duplicate");
    Ok(())
}

fn logged_canonical(h: &mut Harness, fields: LogFields, app: &str) -> Check {
    let mut h = h.fresh_with(super::Options {
        log_formats: vec![LogFormat::Json],
        log_fields: fields,
        ..Default::default()
    })?;
    h.store(vec![connect(1, 1, 0).ip("localhost").app("  Cursor ")])?;
    let lines = h.take_service_log();
    ensure_eq!(lines.len(), 1, "lines");
    let event = read_back(&lines[0].line)?;
    // Coder writes an IP it has none of as Go's nil IP, `<nil>`.
    let ip = h
        .expect_ip(Some("127.0.0.1"))
        .unwrap_or_else(|| "<nil>".into());
    ensure_eq!(
        (
            event.ip.as_deref(),
            event.connection_method,
            event.app_name_or_port.as_deref()
        ),
        (Some(ip.as_str()), ConnectionMethod::Ssh, Some(app)),
        "IP, method and app in the line"
    );
    Ok(())
}

fn row_events_shape(h: &mut Harness) -> Check {
    h.store(mixed_events())?;
    for row in h.rows()? {
        let name = id_name(row.id);
        let events = h
            .service()?
            .row_events(row.clone())
            .map_err(|e| format!("row-events failed: {e}"))?;
        let web = row.connection_id.is_none();
        let statuses: Vec<ConnectionStatus> = events.iter().map(|e| e.status).collect();
        let want: &[ConnectionStatus] = match row.disconnect_time {
            _ if web => &[ConnectionStatus::Connected],
            None => &[ConnectionStatus::Connected],
            Some(t) if t == row.connect_time => &[ConnectionStatus::Disconnected],
            Some(_) => &[ConnectionStatus::Connected, ConnectionStatus::Disconnected],
        };
        ensure_eq!(statuses, want, "{name}: the events' statuses");
        ensure_eq!(events[0].id, row.id, "{name}: the defining event's id");
        if let Some(second) = events.get(1) {
            ensure!(second.id != row.id, "{name}: both events carry the row id");
            ensure_eq!(
                second.time,
                row.disconnect_time.unwrap_or_default(),
                "{name}: the disconnect's time"
            );
        }
    }
    Ok(())
}

/// The JSON lines `row-events` gives for every row, as `connlog export --format json`
/// writes them (each stamped with its event's time, so exports are stable).
fn export(h: &mut Harness, fields: LogFields) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for row in h.rows()? {
        let events = h
            .service()?
            .row_events(row)
            .map_err(|e| format!("row-events failed: {e}"))?;
        for event in events {
            let at = event.time;
            lines.push(line(h, &event, LogFormat::Json, fields, at)?);
        }
    }
    Ok(lines)
}

fn rebuilt<'k>(h: &mut Harness<'k>, lines: &[String]) -> Result<Harness<'k>, String> {
    let events = lines
        .iter()
        .enumerate()
        .map(|(i, l)| read_back(l).map_err(|e| format!("exported line {i}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut copy = h.fresh()?;
    copy.store(events)?;
    Ok(copy)
}

/// The rows an empty store holds once the events exported from `rows` are ingested: the
/// same rows, but for what the plugin makes of the IPs and user agents it stored when it
/// meets them again. The identity, but for a plugin expected to pseudonymise IPs (the
/// pseudonym of a pseudonym is another pseudonym); and the texts that change with them,
/// as JSON strings.
fn stored_again(
    h: &Harness,
    rows: &[ConnectionLog],
) -> (Vec<ConnectionLog>, Vec<(String, String)>) {
    let mut renamed = Vec::new();
    let again = rows
        .iter()
        .map(|row| {
            let ip = h.expect_ip(row.ip.as_deref());
            let user_agent = h.expect_user_agent(row.user_agent.as_deref());
            for (old, new) in [(&row.ip, &ip), (&row.user_agent, &user_agent)] {
                if let (Some(old), Some(new)) = (old, new)
                    && old != new
                {
                    renamed.push((format!("{old:?}"), format!("{new:?}")));
                }
            }
            ConnectionLog {
                ip,
                user_agent,
                ..row.clone()
            }
        })
        .collect();
    (again, renamed)
}

fn rename(text: &str, renamed: &[(String, String)]) -> String {
    renamed
        .iter()
        .fold(text.to_string(), |text, (old, new)| text.replace(old, new))
}

fn export_round_trip(h: &mut Harness, fields: LogFields, events: Vec<ConnectionEvent>) -> Check {
    h.store(events)?;
    let lines = export(h, fields)?;
    let mut copy = rebuilt(h, &lines)?;
    let rows = h.rows()?;
    let (want_rows, renamed) = stored_again(h, &rows);
    same_rows(&copy.rows()?, &want_rows, "the rebuilt rows")?;
    let want: Vec<(String, String)> = h
        .answers()?
        .into_iter()
        .map(|(label, body)| (label, rename(&body, &renamed)))
        .collect();
    super::same_answers(&copy.answers()?, &want, "the rebuilt store")
}

fn export_is_stable(h: &mut Harness, fields: LogFields, events: Vec<ConnectionEvent>) -> Check {
    h.store(events)?;
    let lines = export(h, fields)?;
    let mut copy = rebuilt(h, &lines)?;
    let rows = h.rows()?;
    let (_, renamed) = stored_again(h, &rows);
    let again = export(&mut copy, fields)?;
    ensure_eq!(again.len(), lines.len(), "lines exported by the copy");
    if let Some(i) = (0..lines.len()).find(|&i| rename(&lines[i], &renamed) != again[i]) {
        return Err(format!("line {i} differs in the copy's export"));
    }
    Ok(())
}

/// A service-log line Coder's docs show, for an event stored through a service writing that
/// line: spec §8 (current) and the seed's docs (C §9). Placeholders: `{ID}`, `{ORG}`,
/// `{OWNER}`, `{WS}`, `{CID}`, `{USER}`, `{CSID}`, `{IP}` (the stored IP, `<nil>` when none)
/// and `{UA}` (the stored user agent).
struct ExactLine {
    name: &'static str,
    fields: LogFields,
    format: LogFormat,
    event: fn() -> ConnectionEvent,
    /// The IP and user agent the reference stores.
    ip: &'static str,
    user_agent: Option<&'static str>,
    /// The whole human line, or a JSON line's `fields` object.
    want: &'static str,
    needs: Option<&'static str>,
}

/// 2025-07-10T10:00:00.123456789Z: Go prints every digit of it.
const NANOS: UnixNanos = T0 + 123_456_789;
/// 2025-07-10T10:00:00.42Z: Go drops trailing zeros.
const TENTHS: UnixNanos = T0 + 420_000_000;

fn exact_lines() -> Vec<ExactLine> {
    vec![
        ExactLine {
            name: "the current JSON line has §8's fields in §8's order (VS Code over SSH)",
            fields: LogFields::Current,
            format: LogFormat::Json,
            event: || connect(1, 1, 0).app("vscode").with(|e| e.time = TENTHS),
            ip: "fd7a:115c:a1e0::1",
            user_agent: None,
            want: r#"{"ID":"{ID}","OrganizationID":"{ORG}","WorkspaceOwnerID":"{OWNER}","WorkspaceID":"{WS}","WorkspaceName":"dev","AgentName":"main","ConnectionMethod":"ssh","Code":null,"IP":"{IP}","UserAgent":"","UserID":null,"AppNameOrPort":"vscode","ConnectionID":"{CID}","DisconnectReason":"","ClientSessionID":"","Time":"2025-07-10T10:00:00.42Z","ConnectionStatus":"connected"}"#,
            needs: Some(CURRENT_LINE),
        },
        ExactLine {
            name: "the current JSON line carries the client session id and a disconnect's code",
            fields: LogFields::Current,
            format: LogFormat::Json,
            event: || {
                disconnect(1, 1, 0, Some(0), Some("bye"))
                    .session(CSID)
                    .with(|e| e.time = NANOS)
            },
            ip: "fd7a:115c:a1e0::1",
            user_agent: None,
            want: r#"{"ID":"{ID}","OrganizationID":"{ORG}","WorkspaceOwnerID":"{OWNER}","WorkspaceID":"{WS}","WorkspaceName":"dev","AgentName":"main","ConnectionMethod":"ssh","Code":0,"IP":"{IP}","UserAgent":"","UserID":null,"AppNameOrPort":"","ConnectionID":"{CID}","DisconnectReason":"bye","ClientSessionID":"{CSID}","Time":"2025-07-10T10:00:00.123456789Z","ConnectionStatus":"disconnected"}"#,
            needs: Some("client session ids"),
        },
        ExactLine {
            name: "the current human line is §8's code-server example",
            fields: LogFields::Current,
            format: LogFormat::Human,
            event: web_example,
            ip: "127.0.0.1",
            user_agent: Some(super::privacy::CHROME_ON_WINDOWS),
            want: r#"2025-07-10 11:00:00.000 [info]  coderd: connection_log  ID={ID}  OrganizationID={ORG}  WorkspaceOwnerID={OWNER}  WorkspaceID={WS}  WorkspaceName=dev  AgentName=main  ConnectionMethod=workspace_app  Code=200  IP={IP}  UserAgent="{UA}"  UserID={USER}  AppNameOrPort=code-server  ConnectionID=<nil>  DisconnectReason=""  ClientSessionID=""  Time="2025-07-10 10:00:00.123456789 +0000 UTC"  ConnectionStatus=connected"#,
            needs: Some(CURRENT_LINE),
        },
        ExactLine {
            name: "the current human line writes Time as Go's time.Time.String()",
            fields: LogFields::Current,
            format: LogFormat::Human,
            event: || connect(1, 1, 0).with(|e| e.time = T0),
            ip: "fd7a:115c:a1e0::1",
            user_agent: None,
            want: r#"2025-07-10 11:00:00.000 [info]  coderd: connection_log  ID={ID}  OrganizationID={ORG}  WorkspaceOwnerID={OWNER}  WorkspaceID={WS}  WorkspaceName=dev  AgentName=main  ConnectionMethod=ssh  Code=<nil>  IP={IP}  UserAgent=""  UserID=<nil>  AppNameOrPort=""  ConnectionID={CID}  DisconnectReason=""  ClientSessionID=""  Time="2025-07-10 10:00:00 +0000 UTC"  ConnectionStatus=connected"#,
            needs: Some(CURRENT_LINE),
        },
        ExactLine {
            name: "the seed JSON line: the deprecated 7-value Type, SlugOrPort and Ip",
            fields: LogFields::Seed,
            format: LogFormat::Json,
            event: || connect(1, 1, 0).app("cursor").with(|e| e.time = TENTHS),
            ip: "fd7a:115c:a1e0::1",
            user_agent: None,
            want: r#"{"ID":"{ID}","OrganizationID":"{ORG}","WorkspaceOwnerID":"{OWNER}","WorkspaceID":"{WS}","WorkspaceName":"dev","AgentName":"main","Type":"vscode","Code":null,"Ip":"{IP}","UserAgent":"","UserID":null,"SlugOrPort":"","ConnectionID":"{CID}","DisconnectReason":"","Time":"2025-07-10T10:00:00.42Z","ConnectionStatus":"connected"}"#,
            needs: None,
        },
        ExactLine {
            name: "the seed human line is its docs' code-server example",
            fields: LogFields::Seed,
            format: LogFormat::Human,
            event: web_example,
            ip: "127.0.0.1",
            user_agent: Some(super::privacy::CHROME_ON_WINDOWS),
            want: r#"[API] 2025-07-10 11:00:00.000 [info]  coderd: connection_log  ID={ID}  Time="2025-07-10T10:00:00.123456789Z"  OrganizationID={ORG}  WorkspaceOwnerID={OWNER}  WorkspaceID={WS}  WorkspaceName=dev  AgentName=main  Type=workspace_app  Code=200  Ip={IP}  UserAgent="{UA}"  UserID={USER}  SlugOrPort=code-server  ConnectionID=<nil>  DisconnectReason=""  ConnectionStatus=connected"#,
            needs: None,
        },
    ]
}

/// The docs' human example: code-server opened in a browser.
fn web_example() -> ConnectionEvent {
    web(1, 0, Some(bob())).with(|e| {
        e.time = NANOS;
        e.user_agent = Some(super::privacy::CHROME_ON_WINDOWS.into());
    })
}

fn exact_line_cases() -> Vec<Case> {
    exact_lines()
        .into_iter()
        .map(|line| {
            let (name, needs) = (line.name, line.needs);
            Case::boxed("formats", name, move |h| exact_line(h, &line)).needing(needs)
        })
        .collect()
}

/// The line written when the event is stored (the service's clock is `T0 + 1h`), so that it
/// carries the event as the plugin stored it.
fn exact_line(h: &mut Harness, line: &ExactLine) -> Check {
    let mut h = h.fresh_with(super::Options {
        log_formats: vec![line.format],
        log_fields: line.fields,
        ..Default::default()
    })?;
    let event = (line.event)();
    h.store(vec![event.clone()])?;
    let lines = h.take_service_log();
    let [written] = lines.as_slice() else {
        return Err(format!("{} lines written, expected one", lines.len()));
    };
    let ip = h.expect_ip(Some(line.ip)).unwrap_or_else(|| "<nil>".into());
    let want = line
        .want
        .replace("{ID}", &event.id.to_string())
        .replace("{ORG}", &org().to_string())
        .replace("{OWNER}", &owner().to_string())
        .replace("{WS}", &workspace().to_string())
        .replace("{CID}", &cid(1).to_string())
        .replace("{USER}", &bob().to_string())
        .replace("{CSID}", CSID)
        .replace(
            "{UA}",
            &h.expect_user_agent(line.user_agent).unwrap_or_default(),
        );
    let got = match line.format {
        LogFormat::Human => written.line.clone(),
        LogFormat::Json => {
            let value: Value = serde_json::from_str(&written.line)
                .map_err(|e| format!("the line is not JSON: {e}"))?;
            ensure_eq!(
                (
                    value["ts"].as_str(),
                    value["level"].as_str(),
                    value["msg"].as_str(),
                    value["logger_names"][0].as_str()
                ),
                (
                    Some("2025-07-10T11:00:00Z"),
                    Some("INFO"),
                    Some("connection_log"),
                    Some("coderd")
                ),
                "ts, level, msg and logger"
            );
            // The fields object, as written (its key order is the point).
            let (_, fields) = written
                .line
                .split_once(r#""fields":"#)
                .ok_or("the line has no fields")?;
            fields.strip_suffix('}').unwrap_or(fields).to_string()
        }
    };
    // Go's JSON escapes `<` and `>`: a nil IP is "\u003cnil\u003e".
    let want = match line.format {
        LogFormat::Json => {
            want.replace("{IP}", &ip.replace('<', "\\u003c").replace('>', "\\u003e"))
        }
        LogFormat::Human => want.replace("{IP}", &ip),
    };
    ensure!(
        got == want,
        "the line differs from Coder's at byte {}:\n  got  {got}\n  want {want}",
        got.bytes()
            .zip(want.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()))
    );
    Ok(())
}
