//! The `connlog` binary end to end: events in, Coder's JSON out, exit codes as documented.

mod support;

use support::*;

#[test]
fn ingested_events_come_back_as_coder_rows() {
    let data = data_dir();
    let ingest = connlog(data.path(), &["ingest", "-"], Some(&sample_events()));
    assert_eq!(ingest.status.code(), Some(0), "stderr: {}", stderr(&ingest));
    assert_eq!(
        json(&ingest),
        serde_json::json!({"accepted": 3, "rejected": []})
    );

    // A new process: the rows come back from the store through a fresh plugin instance.
    let query = connlog(data.path(), &["query", "--as", "admin"], None);
    assert_eq!(query.status.code(), Some(0), "stderr: {}", stderr(&query));
    let body = json(&query);
    assert_eq!(body["count"], 2);
    assert_eq!(body["count_cap"], 2000);
    let rows = body["connection_logs"].as_array().unwrap();
    assert_eq!(rows[0]["id"], CONNECT, "newest first");
    assert_eq!(
        rows[0]["ssh_info"]["disconnect_time"],
        "2025-07-10T11:14:38Z"
    );
    assert_eq!(rows[0]["ssh_info"]["exit_code"], 200);
    assert_eq!(rows[1]["id"], WEB);
    assert_eq!(rows[1]["web_info"]["user"]["username"], "admin");
}

#[test]
fn a_replayed_file_changes_nothing() {
    let data = data_dir();
    connlog(data.path(), &["ingest", "-"], Some(&sample_events()));
    let first = stdout(&connlog(data.path(), &["query", "--as", "admin"], None));
    let again = connlog(data.path(), &["ingest", "-"], Some(&sample_events()));
    assert_eq!(
        json(&again),
        serde_json::json!({"accepted": 3, "rejected": []})
    );
    assert_eq!(
        stdout(&connlog(data.path(), &["query", "--as", "admin"], None)),
        first
    );
}

#[test]
fn rejected_lines_are_reported_and_the_rest_is_stored() {
    let data = data_dir();
    let input = format!(
        "{}\nnot json\n{}\n",
        event_line(
            CONNECT,
            "2025-07-10T10:14:38Z",
            ORG,
            "ssh",
            Some(SESSION),
            "connected"
        ),
        event_line(WEB, "2025-07-03T06:57:16Z", ORG, "ssh", None, "connected"),
    );
    let ingest = connlog(data.path(), &["ingest", "-"], Some(&input));
    assert_eq!(ingest.status.code(), Some(1));
    let answer = json(&ingest);
    assert_eq!(answer["accepted"], 1);
    let rejected = answer["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["line"], 2);
    assert_eq!(rejected[1]["line"], 3);
    assert!(
        rejected[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("ConnectionID"),
        "{answer}"
    );
    let query = json(&connlog(data.path(), &["query", "--as", "admin"], None));
    assert_eq!(query["count"], 1);
}

#[test]
fn an_invalid_query_prints_coders_400_body_and_exits_2() {
    let data = data_dir();
    let query = connlog(
        data.path(),
        &["query", "--as", "admin", "-q", "type:cursor"],
        None,
    );
    assert_eq!(query.status.code(), Some(2));
    assert_eq!(
        json(&query),
        serde_json::json!({
            "message": "Invalid connection search query.",
            "validations": [{"field": "type", "detail": "Query param \"type\" has invalid value: \"cursor\" is not a valid value"}]
        })
    );
}

#[test]
fn readers_see_only_what_their_roles_allow() {
    let data = data_dir();
    connlog(data.path(), &["ingest", "-"], Some(&sample_events()));
    let count =
        |user: &str| json(&connlog(data.path(), &["query", "--as", user], None))["count"].clone();
    assert_eq!(count("admin"), 2);
    assert_eq!(
        count("orgaudit"),
        1,
        "an organization auditor sees its organization only"
    );
    assert_eq!(count("member"), 0, "a member sees nothing");
}

#[test]
fn an_unknown_user_is_a_usage_error() {
    let data = data_dir();
    let query = connlog(data.path(), &["query", "--as", "nobody"], None);
    assert_eq!(query.status.code(), Some(2));
    assert!(stderr(&query).contains("nobody"), "{}", stderr(&query));
}

#[test]
fn a_plugin_that_is_not_a_plugin_is_refused_with_exit_3() {
    let data = data_dir();
    let bogus = data.path().join("bogus.wasm");
    std::fs::write(&bogus, b"\0asm not really").unwrap();
    let query = connlog(
        data.path(),
        &[
            "--plugin",
            bogus.to_str().unwrap(),
            "query",
            "--as",
            "admin",
        ],
        None,
    );
    assert_eq!(query.status.code(), Some(3));
    assert!(
        stderr(&query).contains("not a connection-log plugin"),
        "{}",
        stderr(&query)
    );
}

#[test]
fn a_damaged_store_is_reported_and_not_overwritten() {
    let data = data_dir();
    let store = data.path().join("connlog.db");
    std::fs::write(&store, vec![0x42u8; 8192]).unwrap();
    let query = connlog(data.path(), &["query", "--as", "admin"], None);
    assert_eq!(query.status.code(), Some(4), "stderr: {}", stderr(&query));
    assert!(stderr(&query).contains("connlog.db"), "{}", stderr(&query));
    assert_eq!(
        std::fs::read(&store).unwrap(),
        vec![0x42u8; 8192],
        "the damaged file is left for the operator"
    );
}

#[test]
fn purge_applies_retention_and_prints_the_cutoff() {
    let data = data_dir();
    connlog(data.path(), &["ingest", "-"], Some(&sample_events()));

    let forever = connlog(data.path(), &["purge", "--retention", "0"], None);
    assert_eq!(forever.status.code(), Some(0), "{}", stderr(&forever));
    assert_eq!(stdout(&forever), "{\"purged\":0,\"cutoff\":null}\n");
    // Without --retention: the global setting (0 here) applies.
    assert_eq!(
        stdout(&connlog(data.path(), &["purge"], None)),
        "{\"purged\":0,\"cutoff\":null}\n"
    );

    // The sample events are from 2025: a week's retention purges both rows.
    let purge = connlog(
        data.path(),
        &["--connection-logs-retention", "1w", "purge"],
        None,
    );
    assert_eq!(purge.status.code(), Some(0), "{}", stderr(&purge));
    let body = json(&purge);
    assert_eq!(body["purged"], 2);
    let cutoff = body["cutoff"].as_str().unwrap();
    assert!(cutoff.ends_with('Z') && cutoff.contains('T'), "{cutoff}");
    assert_eq!(
        stdout(&purge).find("\"purged\""),
        Some(1),
        "purged comes first"
    );
    let query = connlog(data.path(), &["query", "--as", "admin"], None);
    assert_eq!(json(&query)["count"], 0);

    let bad = connlog(data.path(), &["purge", "--retention", "30 days"], None);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn token_create_prints_the_token_once_and_stores_its_hash() {
    let data = data_dir();
    let out = connlog(data.path(), &["token", "create", "--user", "admin"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    let (id, secret) = token.split_once('-').unwrap();
    assert_eq!((id.len(), secret.len()), (10, 22));
    let directory = std::fs::read_to_string(data.path().join("directory.json")).unwrap();
    assert!(directory.contains(id) && !directory.contains(secret));

    let unknown = connlog(data.path(), &["token", "create", "--user", "nobody"], None);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("nobody"));

    let empty = tempfile::tempdir().unwrap();
    let none = connlog(empty.path(), &["token", "create", "--user", "admin"], None);
    assert_eq!(none.status.code(), Some(4));
    assert!(
        stderr(&none).contains("connlog simulate"),
        "{}",
        stderr(&none)
    );
}

#[test]
fn log_json_and_log_human_write_a_connection_log_line_per_event() {
    let data = data_dir();
    let log = data.path().join("service.json.log");
    let out = connlog(
        data.path(),
        &[
            "--log-json",
            log.to_str().unwrap(),
            "--log-human",
            "/dev/stderr",
            "ingest",
            "-",
        ],
        Some(&sample_events()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(lines.lines().count(), 3, "{lines}");
    for line in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["msg"], "connection_log");
        assert_eq!(v["level"], "INFO");
    }
    assert!(lines.contains(CONNECT) && lines.contains(WEB));
    let human: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.contains("connection_log"))
        .map(str::to_owned)
        .collect();
    assert_eq!(human.len(), 3, "{}", stderr(&out));
    assert!(
        human
            .iter()
            .any(|l| l.contains(&format!("ID={DISCONNECT}")))
    );

    // A replay is stored once, and logged only when stored.
    let again = connlog(
        data.path(),
        &["--log-json", log.to_str().unwrap(), "ingest", "-"],
        Some(&sample_events()),
    );
    assert_eq!(again.status.code(), Some(0));
    let after = std::fs::read_to_string(&log).unwrap();
    assert_eq!(after.lines().count(), 3, "{after}");
}

#[test]
fn every_command_has_help_with_examples() {
    let data = data_dir();
    for command in [
        "simulate",
        "ingest",
        "query",
        "export",
        "purge",
        "serve",
        "token create",
    ] {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.push("--help");
        let out = connlog(data.path(), &args, None);
        assert_eq!(out.status.code(), Some(0), "{command}");
        assert!(
            stdout(&out).contains("Examples:") || stdout(&out).contains("Example:"),
            "{command}: {}",
            stdout(&out)
        );
    }
    let top = connlog(data.path(), &["--help"], None);
    for command in [
        "simulate", "ingest", "query", "export", "purge", "serve", "token",
    ] {
        assert!(stdout(&top).contains(command), "{command}");
    }
    let unknown = connlog(data.path(), &["frobnicate"], None);
    assert_eq!(unknown.status.code(), Some(2));
}

/// `-o table`: Coder's `coder list -o table -c …` for connection rows.
#[test]
fn query_and_export_print_a_table_for_people() {
    let data = data_dir();
    let events = [
        Event::agent(CONNECT, "2025-07-10T10:14:38.942Z", "ssh", SESSION)
            .app("cursor")
            .csid("5e0a1c2d3b4f40718a9b0c1d2e3f4a5b"),
        // A hostile reason: it must stay on its row.
        Event::agent(DISCONNECT, "2025-07-10T11:16:40Z", "ssh", SESSION)
            .app("cursor")
            .csid("5e0a1c2d3b4f40718a9b0c1d2e3f4a5b")
            .disconnect(Some(0), "bye\nTIME  WHO\r\u{1b}[2J"),
        Event::agent(
            "b1f0a6f2-9c1e-4c53-8f0e-2f6d2a9b7c11",
            "2025-07-10T12:00:00Z",
            "reconnecting_pty",
            "3c9d1e2f-0a4b-4c5d-8e6f-7a8b9c0d1e2f",
        )
        .ip("fd7a:115c:a1e0::1"),
        Event::web(WEB, "2025-07-03T06:57:16.144719Z", "workspace_app")
            .app("code-server")
            .code(Some(403)),
    ]
    .map(|e| e.line())
    .join("\n");
    let ingest = connlog(data.path(), &["ingest", "-"], Some(&events));
    assert_eq!(ingest.status.code(), Some(0), "{}", stderr(&ingest));

    let table = |args: &[&str]| {
        let out = connlog(data.path(), args, None);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let expected = "\
TIME                  WHO    WORKSPACE  AGENT  METHOD            APP          DURATION  CODE  IP
2025-07-10 12:00:00Z  admin  admin/dev  main   reconnecting_pty               ongoing         fd7a:115c:a1e0::1
2025-07-10 10:14:38Z  admin  admin/dev  main   ssh               Cursor       1h2m      0     127.0.0.1
2025-07-03 06:57:16Z  admin  admin/dev  main   workspace_app     code-server            403   127.0.0.1
";
    assert_eq!(table(&["query", "--as", "admin", "-o", "table"]), expected);
    // One spelling of the format across commands: export's -o is short for --format.
    for format in [
        ["-o", "table"],
        ["--format", "table"],
        ["--output", "table"],
    ] {
        let mut args = vec!["export", "--as", "admin"];
        args.extend(format);
        assert_eq!(table(&args), expected, "{format:?}");
    }
    assert_eq!(
        table(&[
            "query",
            "--as",
            "admin",
            "-o",
            "table",
            "-q",
            "method:ssh",
            "-c",
            "time,who,method,app",
            "-c",
            "client_session_id,disconnect_reason",
        ]),
        "\
TIME                  WHO    METHOD  APP     CLIENT SESSION ID                 DISCONNECT REASON
2025-07-10 10:14:38Z  admin  ssh     Cursor  5e0a1c2d3b4f40718a9b0c1d2e3f4a5b  bye\\nTIME  WHO\\r\\u{1b}[2J
"
    );
    // No rows: the header alone; Coder's JSON stays the default.
    assert_eq!(
        table(&["export", "-o", "table", "--as", "member", "-c", "time,who"]),
        "TIME  WHO\n"
    );
    assert!(table(&["query", "--as", "admin"]).starts_with("{\"connection_logs\":[{"));
}

#[test]
fn table_columns_are_checked() {
    let data = data_dir();
    let unknown = connlog(
        data.path(),
        &["query", "--as", "admin", "-o", "table", "-c", "time,colour"],
        None,
    );
    assert_eq!(unknown.status.code(), Some(2));
    let message = stderr(&unknown);
    assert!(message.contains("'colour'"), "{message}");
    assert!(
        message.contains("time, who, workspace, agent, method, app, duration, code, ip"),
        "{message}"
    );
    for args in [
        &["query", "--as", "admin", "-c", "time"][..],
        &["export", "--format", "csv", "--as", "admin", "-c", "time"][..],
    ] {
        let out = connlog(data.path(), args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("add -o table"), "{}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
}

/// A simulated deployment as a table: the times are the rows' times, columns line up, and
/// the export holds every row with `ongoing` for each open session.
#[test]
fn a_simulated_deployment_as_a_table() {
    let data = tempfile::tempdir().unwrap();
    let simulate = connlog(
        data.path(),
        &[
            "simulate",
            "--seed",
            "5",
            "--orgs",
            "2",
            "--users",
            "8",
            "--workspaces",
            "6",
            "--days",
            "2",
            "--events",
            "150",
            "--start",
            "2025-06-01T00:00:00Z",
        ],
        None,
    );
    assert_eq!(simulate.status.code(), Some(0), "{}", stderr(&simulate));
    let run = |args: &[&str]| {
        let out = connlog(data.path(), args, None);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };

    let body = json(&connlog(
        data.path(),
        &["query", "--as", "admin", "--limit", "10"],
        None,
    ));
    let query = run(&[
        "query",
        "--as",
        "admin",
        "--limit",
        "10",
        "-o",
        "table",
        "-c",
        "time,who,method,app",
    ]);
    let lines: Vec<&str> = query.lines().collect();
    assert_eq!(lines.len(), 11, "{query}");
    let header = lines[0];
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["TIME", "WHO", "METHOD", "APP"]
    );
    let method_at = header.find("METHOD").unwrap();
    for (line, row) in lines[1..]
        .iter()
        .zip(body["connection_logs"].as_array().unwrap())
    {
        assert!(!line.ends_with(' '), "{line:?}");
        // 2025-06-01T10:14:38.123Z as 2025-06-01 10:14:38Z.
        let time = row["connect_time"].as_str().unwrap();
        assert_eq!(&line[..20], format!("{} {}Z", &time[..10], &time[11..19]));
        let method = row["connection_method"].as_str().unwrap();
        assert_eq!(&line[method_at..method_at + method.len()], method, "{line}");
    }

    let count = |q: &str| {
        json(&connlog(
            data.path(),
            &["query", "--as", "admin", "-q", q],
            None,
        ))["count"]
            .as_u64()
            .unwrap() as usize
    };
    let export = run(&["export", "-o", "table", "--as", "admin"]);
    let header = export.lines().next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "TIME",
            "WHO",
            "WORKSPACE",
            "AGENT",
            "METHOD",
            "APP",
            "DURATION",
            "CODE",
            "IP"
        ]
    );
    assert_eq!(export.lines().count(), count("") + 1);
    let duration_at = header.find("DURATION").unwrap();
    let ongoing = export
        .lines()
        .filter(|line| {
            line.get(duration_at..)
                .is_some_and(|d| d.starts_with("ongoing "))
        })
        .count();
    assert_eq!(ongoing, count("status:ongoing"), "{export}");
    assert!(ongoing > 0, "the simulation leaves sessions open");
}
