//! Spec §11.8 end to end: Coder's `TestConnectionLogs/AppName` fixture of ten rows, every
//! query of its table (D3 rules: `type` with `method` or `app` is a 400), the shapes the
//! rows are returned in, and how an agent-reported port forward is stored and found.

mod common;

use ConnectionMethod::{PortForwarding, Tunnel};
use common::*;
use connlog::conformance::spec_tables::{
    APP_FIXTURE, APP_FIXTURE_QUERIES, APP_FIXTURE_SHAPES, app_fixture_refusals,
};
use connlog_plugin_sdk::ConnectionLogPlugin;
use connlog_plugin_sdk::model::*;
use serde_json::Value;

fn letter_of(id: Uuid) -> char {
    (0..APP_FIXTURE.len())
        .find(|&n| eid(n as u64) == id)
        .map(|n| APP_FIXTURE[n].0)
        .expect("a fixture row")
}

fn fixture() -> World {
    let mut w = World::new();
    let events = APP_FIXTURE
        .iter()
        .enumerate()
        .map(|(n, &(_, method, app))| {
            let (n, t) = (n as u64, n as i64);
            let event = if method.is_terminal() {
                connect(n, n, t)
            } else {
                let mut e = web(n, t, Some(owner()));
                if method == Tunnel {
                    e.code = Some(101);
                }
                e
            };
            event
                .method(method)
                .with(|e| e.app_name_or_port = app.map(str::to_string))
        })
        .collect();
    let outcomes = w.ingest(events);
    assert!(
        outcomes.iter().all(|o| *o == EventOutcome::Stored),
        "{outcomes:?}"
    );
    w
}

/// The letters `q` returns, in API order (newest first, so reversed), after checking
/// that the count is the number of rows.
fn letters(w: &World, q: &str) -> String {
    let page = w
        .query_as(admin_id(), q, 100, 0)
        .unwrap_or_else(|e| panic!("{q:?} should be valid: {e:?}"));
    assert_eq!(page.count, page.rows.len() as u64, "{q:?}: count = rows");
    let mut letters: Vec<char> = page.rows.iter().map(|r| letter_of(r.id)).collect();
    letters.sort_unstable();
    letters.into_iter().collect()
}

/// Spec §11.8's table (shared with the conformance kit and the REST API's tests).
#[test]
fn every_query_of_the_table() {
    let w = fixture();
    let mut failures = Vec::new();
    for (q, want) in APP_FIXTURE_QUERIES {
        let got = letters(&w, q);
        if got != want {
            failures.push(format!("{q:?}: got {got}, want {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Spec §11.8's 400s, and §6.2's order of errors.
#[test]
fn the_bad_requests_of_the_table() {
    let w = fixture();
    for (q, want) in app_fixture_refusals() {
        let want: Vec<Validation> = want
            .into_iter()
            .map(|(field, detail)| Validation::new(field, detail))
            .collect();
        assert_eq!(w.invalid(q), want, "{q:?}");
    }
}

/// Spec §11.8's returned shapes: (type, method, app_name, web slug) of each row, and
/// §10.4: every row `type:X` matches reads back as `type` X.
#[test]
fn the_rows_read_back_as_coder_returns_them() {
    let w = fixture();
    let rows = w.rows();
    let api: Vec<Value> = w
        .plugin
        .api_rows(&w.host, &rows)
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    let shape = |letter: char| {
        let i = rows.iter().position(|r| letter_of(r.id) == letter).unwrap();
        let v = &api[i];
        let text = |v: &Value| v.as_str().map(str::to_string);
        (
            text(&v["type"]).unwrap(),
            text(&v["connection_method"]).unwrap(),
            text(&v["app_name"]),
            text(&v["web_info"]["slug_or_port"]),
        )
    };
    let s = |t: &str| t.to_string();
    for (letter, t, method, app, slug) in APP_FIXTURE_SHAPES {
        assert_eq!(
            shape(letter),
            (s(t), s(method), app.map(s), slug.map(s)),
            "row {letter}"
        );
    }
    for t in [
        "ssh",
        "vscode",
        "jetbrains",
        "reconnecting_pty",
        "workspace_app",
        "port_forwarding",
        "tunnel",
    ] {
        for letter in letters(&w, &format!("type:{t}")).chars() {
            assert_eq!(shape(letter).0, t, "type:{t} matched row {letter}");
        }
    }
    assert_eq!(
        w.plugin.api_page(
            &w.host,
            &w.actor(admin_id()),
            &QueryRequest {
                q: "method:ssh app:8080".into(),
                limit: None,
                offset: 0,
            }
        ),
        Ok(r#"{"connection_logs":[],"count":0,"count_cap":2000}"#.to_string())
    );
}

/// Spec §2.5, §5 and §7.4: an agent's port forward merges like a session, stores no app,
/// is shown with `web_info`, and never matches `status:`; its client session id is kept.
#[test]
fn an_agent_port_forward() {
    let mut w = World::new();
    let csid = "0123456789abcdef0123456789abcdef";
    let forward = |e: ConnectionEvent| {
        e.method(PortForwarding)
            .app("Some-App")
            .client_session(csid)
    };
    w.ingest(vec![
        forward(connect(1, 1, 0)),
        forward(disconnect(2, 1, 60, Some(0), Some("closed"))),
        connect(3, 2, 10),
    ]);
    let rows = w.rows();
    assert_eq!(rows.len(), 2);
    let row = rows
        .iter()
        .find(|r| r.id == eid(1))
        .expect("one merged row");
    assert_eq!(
        (
            row.connection_method,
            row.app_name_or_port.as_deref(),
            row.client_session_id.as_deref()
        ),
        (PortForwarding, None, Some(csid))
    );
    assert_eq!(row.disconnect_time, Some(T0 + 60 * S));
    assert_eq!(letters_of(&w, "status:completed"), Vec::<Uuid>::new());
    assert_eq!(letters_of(&w, "status:ongoing"), vec![eid(3)]);
    assert_eq!(letters_of(&w, "method:port_forwarding"), vec![eid(1)]);
    assert_eq!(letters_of(&w, "type:port_forwarding"), vec![eid(1)]);
    let json: Value =
        serde_json::from_str(&w.plugin.api_rows(&w.host, std::slice::from_ref(row))[0]).unwrap();
    assert!(json.get("ssh_info").is_none() && json.get("app_name").is_none());
    assert_eq!(
        json["web_info"],
        serde_json::json!({"user_agent":"","user":null,"slug_or_port":"","status_code":0})
    );
}

fn letters_of(w: &World, q: &str) -> Vec<Uuid> {
    w.query_as(admin_id(), q, 100, 0)
        .unwrap()
        .rows
        .iter()
        .map(|r| r.id)
        .collect()
}
