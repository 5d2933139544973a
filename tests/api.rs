//! `connlog serve` end to end: the real server on 127.0.0.1, spoken to over HTTP.

mod support;

use std::process::Command;

use support::server::Server;
use support::*;

const SIGNED_OUT: &str =
    "You are signed out or your session has expired. Please sign in again to continue.";

#[test]
fn ingest_then_query_over_http_and_acknowledged_events_survive_kill_9() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());

    let (status, body) = server.post(
        "/api/v2/connectionlog/ingest",
        Some(&admin),
        &sample_events(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "{\"accepted\":3,\"rejected\":[]}\n");

    let (status, body) = server.get("/api/v2/connectionlog?q=&limit=25&offset=0", Some(&admin));
    assert_eq!(status, 200, "{body}");
    let page = body_json(&body);
    assert_eq!(page["count"], 2);
    assert_eq!(page["count_cap"], 2000);
    assert_eq!(page["connection_logs"][0]["id"], CONNECT);
    assert_eq!(
        page["connection_logs"][1]["web_info"]["user"]["username"],
        "admin"
    );

    // SIGKILL: what was acknowledged is on disk, and the CLI gives the very same body.
    drop(server);
    let cli = connlog(
        data.path(),
        &["query", "--as", "admin", "--limit", "25"],
        None,
    );
    assert_eq!(cli.status.code(), Some(0), "{}", stderr(&cli));
    assert_eq!(stdout(&cli), body);
}

#[test]
fn coders_401_bodies() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());
    let detail = |body: &str| {
        let v = body_json(body);
        assert_eq!(v["message"], SIGNED_OUT, "{body}");
        v["detail"].as_str().unwrap().to_owned()
    };

    let (status, body) = server.get("/api/v2/connectionlog", None);
    assert_eq!(status, 401);
    assert_eq!(
        detail(&body),
        "Cookie \"coder_session_token\" or query parameter must be provided."
    );

    let (status, body) = server.get("/api/v2/connectionlog", Some("not-a-token"));
    assert_eq!(status, 401);
    assert_eq!(
        detail(&body),
        "Invalid API key format: incorrect amount of API key parts, expected 2 got 3"
    );

    let (status, body) = server.get(
        "/api/v2/connectionlog",
        Some("abcdefghij-abcdefghijabcdefghijab"),
    );
    assert_eq!(status, 401);
    assert_eq!(detail(&body), "API key is invalid.");

    let (id, _) = admin.split_once('-').unwrap();
    let (status, body) = server.get(
        "/api/v2/connectionlog",
        Some(&format!("{id}-abcdefghijabcdefghijab")),
    );
    assert_eq!(status, 401);
    assert_eq!(detail(&body), "API key secret is invalid.");

    // The ingest endpoint needs a token too.
    let (status, _) = server.post("/api/v2/connectionlog/ingest", None, &sample_events());
    assert_eq!(status, 401);

    // The query parameter works as in Coder.
    let (status, _) = server.get(
        &format!("/api/v2/connectionlog?coder_session_token={admin}"),
        None,
    );
    assert_eq!(status, 200);
}

#[test]
fn a_token_created_while_serving_works_at_once() {
    let data = data_dir();
    token(data.path(), "admin");
    let server = Server::start(data.path());
    let member = token(data.path(), "member");
    let (status, body) = server.get("/api/v2/connectionlog", Some(&member));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "{\"connection_logs\":[],\"count\":0,\"count_cap\":2000}\n"
    );
}

#[test]
fn pagination_is_checked_before_q_and_q_errors_are_coders_400() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());

    let (status, body) = server.get(
        "/api/v2/connectionlog?q=bogus:1&limit=-1&offset=abc",
        Some(&admin),
    );
    assert_eq!(status, 400);
    assert_eq!(
        body_json(&body),
        serde_json::json!({
            "message": "Query parameters have invalid values.",
            "validations": [
                {"field": "limit", "detail": "Query param \"limit\" must be a valid 32-bit positive integer: value is negative"},
                {"field": "offset", "detail": "Query param \"offset\" must be a valid 32-bit positive integer: strconv.ParseInt: parsing \"abc\": invalid syntax"}
            ]
        })
    );

    let (status, body) = server.get("/api/v2/connectionlog?limit=99999999999", Some(&admin));
    assert_eq!(status, 400);
    assert_eq!(
        body_json(&body)["validations"][0]["detail"],
        "Query param \"limit\" must be a valid 32-bit positive integer: strconv.ParseInt: parsing \"99999999999\": value out of range"
    );

    let (status, body) = server.get("/api/v2/connectionlog?q=bogus%3A1", Some(&admin));
    assert_eq!(status, 400);
    let v = body_json(&body);
    assert_eq!(v["message"], "Invalid connection search query.");
    assert!(!v["validations"].as_array().unwrap().is_empty(), "{body}");

    // The CLI prints the same body for the same query.
    drop(server);
    let cli = connlog(
        data.path(),
        &["query", "--as", "admin", "-q", "bogus:1"],
        None,
    );
    assert_eq!(cli.status.code(), Some(2));
    assert_eq!(stdout(&cli), body);
}

#[test]
fn ingest_needs_an_owner_and_reports_rejected_lines() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let auditor = token(data.path(), "orgaudit");
    let server = Server::start(data.path());

    let (status, body) = server.post(
        "/api/v2/connectionlog/ingest",
        Some(&auditor),
        &sample_events(),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body_json(&body)["message"], "Forbidden.");

    let input = format!("{}\nnot json\n\n{}", sample_events(), r#"{"ID":"x"}"#);
    let (status, body) = server.post("/api/v2/connectionlog/ingest", Some(&admin), &input);
    assert_eq!(status, 200, "{body}");
    let v = body_json(&body);
    assert_eq!(v["accepted"], 3);
    let rejected = v["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{body}");
    assert_eq!(rejected[0]["line"], 4);
    assert_eq!(rejected[1]["line"], 6);

    // The organization auditor reads its organization's rows only.
    let (status, body) = server.get("/api/v2/connectionlog", Some(&auditor));
    assert_eq!(status, 200);
    assert_eq!(body_json(&body)["count"], 1);
}

#[test]
fn healthz_metrics_and_unknown_routes() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());

    assert_eq!(server.get("/healthz", None), (200, "OK".to_owned()));

    server.post(
        "/api/v2/connectionlog/ingest",
        Some(&admin),
        &format!("{}\nnot json", sample_events()),
    );
    server.get("/api/v2/connectionlog", Some(&admin));
    let (status, text) = server.get("/metrics", None);
    assert_eq!(status, 200);
    for line in [
        "connlog_events_ingested_total 3",
        "connlog_events_rejected_total 1",
        "connlog_rows 2",
        "connlog_plugin_restarts_total 0",
        "connlog_purges_total 0",
        "connlog_purge_locked_max_seconds 0",
        "connlog_snapshot_writes_failed_total 0",
        "connlog_ingest_commits_total 1",
        "connlog_ingest_batches_total 1",
        "connlog_query_duration_seconds_count 1",
        "connlog_query_duration_seconds_bucket{le=\"+Inf\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
    // The plugin's linear memory holds its state (the plugin's own estimate) and more.
    let gauge = |name: &str| -> u64 {
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '));
        value
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in:\n{text}"))
    };
    let state = gauge("connlog_plugin_memory_bytes");
    let linear = gauge("connlog_plugin_linear_memory_bytes");
    assert!(
        0 < state && state < linear,
        "state {state}, linear memory {linear}"
    );

    let (status, body) = server.get("/api/v2/nope", None);
    assert_eq!(status, 404);
    assert_eq!(body, "{\"message\":\"Route not found.\"}\n");
}

#[test]
fn swap_endpoint_refuses_bad_requests_before_touching_the_plugin() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let member = token(data.path(), "member");
    let server = Server::start(data.path());
    let (status, _) = server.post("/api/v2/connectionlog/plugin", Some(&member), "{}");
    assert_eq!(status, 403);
    let (status, body) = server.post("/api/v2/connectionlog/plugin", Some(&admin), "{\"pth\":1}");
    assert_eq!(status, 400);
    assert_eq!(
        body_json(&body)["message"],
        "Request body must be valid JSON."
    );
}

#[test]
fn the_swap_endpoint_swaps_plugins_and_queries_answer_the_same() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let plugins = tempfile::tempdir().unwrap();
    // The fault-injection build is another plugin build (another digest) of the same logic.
    std::fs::copy(
        connlog_test_plugins::FAULTY_PLUGIN,
        plugins.path().join("faulty.wasm"),
    )
    .unwrap();
    let server = Server::start_args(
        data.path(),
        &[],
        &["--plugin-dir", plugins.path().to_str().unwrap()],
    );
    server.post(
        "/api/v2/connectionlog/ingest",
        Some(&admin),
        &sample_events(),
    );
    let before = server.get("/api/v2/connectionlog", Some(&admin));
    assert_eq!(before.0, 200);

    let swap_to = |plugin: &str| {
        let body = serde_json::json!({ "plugin": plugin }).to_string();
        server.post("/api/v2/connectionlog/plugin", Some(&admin), &body)
    };
    let (status, body) = swap_to("faulty.wasm");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body_json(&body)["events_replayed"], 3, "{body}");
    assert_eq!(server.get("/api/v2/connectionlog", Some(&admin)), before);
    assert_eq!(
        server.metric("connlog_plugin_swaps_total"),
        "connlog_plugin_swaps_total 1"
    );
    let (status, body) = swap_to("reference");
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.get("/api/v2/connectionlog", Some(&admin)), before);

    let (status, body) = swap_to("missing.wasm");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("missing.wasm"), "{body}");
    assert_eq!(
        server.get("/api/v2/connectionlog", Some(&admin)),
        before,
        "the old plugin keeps serving"
    );
    assert_eq!(
        server.metric("connlog_plugin_swap_failures_total"),
        "connlog_plugin_swap_failures_total 1"
    );
}

#[test]
fn the_swap_endpoint_never_reads_a_file_outside_the_plugin_directory() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let plugins = tempfile::tempdir().unwrap();
    let secret = data.path().join("secret.txt");
    std::fs::write(&secret, "SECRET=hunter2\n").unwrap();
    std::fs::write(plugins.path().join("notes.wasm"), "SECRET=hunter2\n").unwrap();
    std::os::unix::fs::symlink(&secret, plugins.path().join("link.wasm")).unwrap();
    let swap = |server: &Server, plugin: &str| {
        let body = serde_json::json!({ "plugin": plugin }).to_string();
        server.post("/api/v2/connectionlog/plugin", Some(&admin), &body)
    };
    {
        // Without --plugin-dir only embedded plugins can be named.
        let server = Server::start(data.path());
        let (status, body) = swap(&server, secret.to_str().unwrap());
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("--plugin-dir"), "{body}");
        let (status, body) = server.post(
            "/api/v2/connectionlog/plugin",
            Some(&admin),
            &serde_json::json!({ "path": secret }).to_string(),
        );
        assert_eq!(status, 400, "the old request shape is refused: {body}");
    }
    let server = Server::start_args(
        data.path(),
        &[],
        &["--plugin-dir", plugins.path().to_str().unwrap()],
    );
    for name in [
        secret.to_str().unwrap(),
        "../secret.txt",
        "sub/plugin.wasm",
        "..",
        "",
        "link.wasm",
    ] {
        let (status, body) = swap(&server, name);
        assert_eq!(status, 400, "{name:?}: {body}");
        assert!(!body.contains("hunter2"), "{name:?}: {body}");
    }
    // A file that is there but not a plugin: refused, its content never echoed.
    let (status, body) = swap(&server, "notes.wasm");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not a WebAssembly file"), "{body}");
    assert!(!body.contains("SECRET") && !body.contains("0x53"), "{body}");
}

/// Waits until `/metrics` shows `line`, or fails after a few seconds.
fn wait_for_metric(server: &Server, name: &str, line: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.metric(name) != line {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} never became {line:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn sighup_reloads_the_plugin_file_and_keeps_the_old_one_when_it_is_broken() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let plugin = data.path().join("plugin.wasm");
    std::fs::write(&plugin, connlog::plugin::Embedded::Reference.component()).unwrap();
    let server = Server::start_with(data.path(), &["--plugin", plugin.to_str().unwrap()]);
    server.post(
        "/api/v2/connectionlog/ingest",
        Some(&admin),
        &sample_events(),
    );
    let before = server.get("/api/v2/connectionlog", Some(&admin));

    let hangup = || {
        let status = Command::new("kill")
            .args(["-HUP", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    // A rebuilt plugin at the same path.
    std::fs::copy(connlog_test_plugins::FAULTY_PLUGIN, &plugin).unwrap();
    hangup();
    wait_for_metric(
        &server,
        "connlog_plugin_swaps_total",
        "connlog_plugin_swaps_total 1",
    );
    assert_eq!(server.get("/api/v2/connectionlog", Some(&admin)), before);

    // A broken file: the swap fails and the running plugin stays.
    std::fs::write(&plugin, b"not a plugin").unwrap();
    hangup();
    wait_for_metric(
        &server,
        "connlog_plugin_swap_failures_total",
        "connlog_plugin_swap_failures_total 1",
    );
    assert_eq!(server.get("/api/v2/connectionlog", Some(&admin)), before);
    assert_eq!(server.get("/healthz", None), (200, "OK".to_owned()));
}

#[test]
fn swap_settings_are_checked_and_a_refusal_keeps_the_running_plugin() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());
    let (status, body) = server.post(
        "/api/v2/connectionlog/ingest",
        Some(&admin),
        &sample_events(),
    );
    assert_eq!(status, 200, "{body}");
    let before = server.get("/api/v2/connectionlog", Some(&admin));
    assert_eq!(before.0, 200);
    let failures = || server.metric("connlog_plugin_swap_failures_total");

    // (request, must contain, must not contain, counts as a failed swap)
    let refused: &[(&str, &[&str], &[&str], bool)] = &[
        (
            r#"{"plugin":"privacy","settings":{"ip":"bogus"}}"#,
            &[r#"\"ip\""#, "truncate", "hmac", "drop", "keep"],
            &["bogus"],
            true,
        ),
        (
            r#"{"plugin":"privacy","settings":{"ip":"hmac","ip-hmac-key":"short"}}"#,
            &[r#"\"ip-hmac-key\""#, "16 bytes"],
            &["short"],
            true,
        ),
        (
            r#"{"plugin":"reference","settings":{"x":"1"}}"#,
            &[r#"\"x\""#],
            &[],
            true,
        ),
        (
            r#"{"plugin":"privacy","settings":{"ip":1}}"#,
            &["valid JSON"],
            &[],
            false,
        ),
    ];
    let mut failed = 0;
    for (request, names, hides, counted) in refused {
        let (status, body) = server.post("/api/v2/connectionlog/plugin", Some(&admin), request);
        assert_eq!(status, 400, "{request}: {body}");
        let v = body_json(&body);
        assert!(v["message"].is_string(), "{request}: {body}");
        for text in *names {
            assert!(
                body.contains(text),
                "{request}: {text:?} missing from {body}"
            );
        }
        for text in *hides {
            assert!(!body.contains(text), "{request}: {text:?} echoed in {body}");
        }
        assert_eq!(
            server.get("/api/v2/connectionlog", Some(&admin)),
            before,
            "{request}: the running plugin answers as before"
        );
        failed += u64::from(*counted);
        assert_eq!(
            failures(),
            format!("connlog_plugin_swap_failures_total {failed}"),
            "{request}"
        );
    }
    assert_eq!(
        server.metric("connlog_plugin_swaps_total"),
        "connlog_plugin_swaps_total 0"
    );

    // Valid settings: swapped, and from then on IPs are pseudonyms in fd00::/8.
    let (status, body) = server.post(
        "/api/v2/connectionlog/plugin",
        Some(&admin),
        r#"{"plugin":"privacy","settings":{"ip":"hmac","ip-hmac-key":"0123456789abcdef0123"}}"#,
    );
    assert_eq!(status, 200, "{body}");
    let report = body_json(&body);
    assert_eq!(report["previous"]["name"], "connlog-reference", "{body}");
    assert_eq!(report["current"]["name"], "connlog-privacy", "{body}");
    assert_eq!(
        server.get("/api/v2/connectionlog", Some(&admin)),
        before,
        "rows already stored are not rewritten"
    );
    const NEW: &str = "a1b2c3d4-0000-4000-8000-000000000001";
    let event = Event::web(NEW, "2025-07-11T09:00:00Z", "workspace_app")
        .ip("203.0.113.77")
        .line();
    let (status, body) = server.post("/api/v2/connectionlog/ingest", Some(&admin), &event);
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.get("/api/v2/connectionlog?limit=100", Some(&admin));
    assert_eq!(status, 200, "{body}");
    let page = body_json(&body);
    let row = page["connection_logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == NEW)
        .unwrap_or_else(|| panic!("{NEW} missing from {body}"));
    let ip = row["ip"].as_str().unwrap_or_else(|| panic!("no IP: {row}"));
    assert!(ip.starts_with("fd"), "{row}");
    assert!(ip.parse::<std::net::Ipv6Addr>().is_ok(), "{row}");
    assert!(!body.contains("203.0.113"), "{body}");
    assert_eq!(
        server.metric("connlog_plugin_swaps_total"),
        "connlog_plugin_swaps_total 1"
    );
}

#[test]
fn refusals_are_answered_even_when_the_body_is_still_being_sent() {
    // A body of a few megabytes: it is still on its way when the token is refused, and the
    // client must get its status, not a reset connection.
    let data = data_dir();
    token(data.path(), "admin");
    let member = token(data.path(), "member");
    let server = Server::start(data.path());
    let large = sample_events().repeat(4 << 20 >> 10);
    for path in [
        "/api/v2/connectionlog/ingest",
        "/api/v2/connectionlog/plugin",
    ] {
        for _ in 0..3 {
            let (status, body) = server
                .try_post(path, Some(&member), &large)
                .unwrap_or_else(|e| panic!("{path}: no answer to a refused request: {e}"));
            assert_eq!(status, 403, "{path}: {body}");
            let (status, body) = server
                .try_post(path, None, &large)
                .unwrap_or_else(|e| panic!("{path}: no answer to a refused request: {e}"));
            assert_eq!(status, 401, "{path}: {body}");
        }
    }
    // Nothing of it was taken.
    assert_eq!(
        server.metric("connlog_events_ingested_total"),
        "connlog_events_ingested_total 0"
    );
}
