//! One owner per data directory, through the real binary: a second process goes through
//! the running server (same output, same exit code), a second `serve` is refused naming the
//! owner, and the lock dies with its owner, even by SIGKILL.

mod support;

use std::fs::OpenOptions;
use std::process::Output;

use support::server::Server;
use support::*;

fn api_rows(server: &Server, token: &str) -> serde_json::Value {
    let (status, body) = server.get("/api/v2/connectionlog?limit=100", Some(token));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn ids(page: &serde_json::Value) -> Vec<String> {
    let mut ids: Vec<String> = page["connection_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_new_user_sequence_finds_every_event_before_and_after_a_restart() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());

    // Another terminal: `connlog ingest` into the same directory while it is served.
    let out = connlog(data.path(), &["ingest", "-"], Some(&sample_events()));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "{\"accepted\":3,\"rejected\":[]}\n");

    // The API shows them at once: the ingest ran in the server.
    let before = api_rows(&server, &admin);
    assert_eq!(before["count"], 2, "{before}");

    assert!(server.stop().success());
    let server = Server::start(data.path());
    let after = api_rows(&server, &admin);
    assert_eq!(ids(&after), ids(&before));
    assert_eq!(after["count"], 2);
}

/// The commands that go through a server, each run on two copies of one data directory:
/// once with nobody owning it, once through a running `connlog serve`.
#[test]
fn every_command_answers_the_same_through_a_server() {
    let alone = data_dir();
    let served = data_dir();
    for data in [alone.path(), served.path()] {
        let out = connlog(data, &["ingest", "-"], Some(&sample_events()));
        assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    }
    let events_file = alone.path().join("more.ndjson");
    std::fs::write(
        &events_file,
        format!(
            "{}\nnot json\n{{\"ID\":\"x\"}}\n",
            event_line(
                "aa5dfc63-dc43-463a-bb3e-38526866fd4b",
                "2025-07-11T10:00:00Z",
                ORG,
                "workspace_app",
                None,
                "connected"
            )
        ),
    )
    .unwrap();
    let file = events_file.to_str().unwrap();
    // (name, arguments, whether standard input carries the sample events)
    let cases: Vec<(&str, Vec<&str>, bool)> = vec![
        ("query", vec!["query", "--as", "admin"], false),
        (
            "query as an org auditor",
            vec!["query", "--as", "orgaudit"],
            false,
        ),
        (
            "query, page 2",
            vec!["query", "--as", "admin", "--limit", "1", "--offset", "1"],
            false,
        ),
        (
            "invalid query",
            vec!["query", "--as", "admin", "-q", "bogus:1"],
            false,
        ),
        ("unknown user", vec!["query", "--as", "nobody"], false),
        (
            "export csv",
            vec!["export", "--format", "csv", "--as", "admin"],
            false,
        ),
        (
            "export json",
            vec!["export", "--format", "json", "--as", "admin"],
            false,
        ),
        (
            "export human",
            vec!["export", "--format", "human", "--as", "admin"],
            false,
        ),
        (
            "export ndjson",
            vec![
                "export",
                "--format",
                "ndjson",
                "--as",
                "member",
                "-q",
                "method:ssh",
            ],
            false,
        ),
        (
            "export invalid",
            vec![
                "export", "--format", "csv", "--as", "admin", "-q", "method:",
            ],
            false,
        ),
        ("ingest a file with bad lines", vec!["ingest", file], false),
        ("ingest stdin again (replays)", vec!["ingest", "-"], true),
        (
            "ingest a missing file",
            vec!["ingest", "/nonexistent/events.ndjson"],
            false,
        ),
        ("purge nothing", vec!["purge", "--retention", "0"], false),
        ("purge old rows", vec!["purge", "--retention", "1h"], false),
        ("query after purge", vec!["query", "--as", "admin"], false),
        (
            "token for nobody",
            vec!["token", "create", "--user", "nobody"],
            false,
        ),
        (
            "revoke unknown token",
            vec!["token", "revoke", "abcdefghij"],
            false,
        ),
    ];
    let server = Server::start(served.path());
    let events = sample_events();
    for (name, args, feeds) in &cases {
        let stdin = feeds.then_some(events.as_str());
        let a = connlog(alone.path(), args, stdin);
        let b = connlog(served.path(), args, stdin);
        assert_same(name, &a, &b);
    }
    // A token is new each time: the same shape, and it works on the server at once.
    let created = connlog(
        served.path(),
        &["token", "create", "--user", "member"],
        None,
    );
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    let token = stdout(&created).trim().to_owned();
    assert_eq!(token.len(), 33, "{token}");
    let (status, _) = server.get("/api/v2/connectionlog", Some(&token));
    assert_eq!(status, 200);
}

fn assert_same(name: &str, alone: &Output, served: &Output) {
    assert_eq!(
        alone.status.code(),
        served.status.code(),
        "{name}: exit codes differ\nalone: {}\nserved: {}",
        stderr(alone),
        stderr(served)
    );
    // A purge's cutoff is "now" minus the retention: the same up to the moment it ran.
    let out = |o: &Output| -> String {
        let text = stdout(o);
        match text.find("\"cutoff\":\"") {
            Some(i) if text.starts_with("{\"purged\":") => text[..i].to_owned(),
            _ => text,
        }
    };
    assert_eq!(out(alone), out(served), "{name}: stdout differs");
    // The summary line carries a timing; the rest of standard error is the same.
    let strip = |o: &Output| -> Vec<String> {
        stderr(o)
            .lines()
            .map(|l| match l.find(" in ") {
                Some(i) if l.starts_with("accepted ") => l[..i].to_owned(),
                _ => l.to_owned(),
            })
            .collect()
    };
    assert_eq!(strip(alone), strip(served), "{name}: stderr differs");
}

#[test]
fn a_second_serve_is_refused_with_exit_4_naming_the_owner() {
    let data = data_dir();
    token(data.path(), "admin");
    let server = Server::start(data.path());
    let address = server.base.strip_prefix("http://").unwrap().to_owned();
    let out = connlog(data.path(), &["serve", "--listen", "127.0.0.1:0"], None);
    assert_eq!(out.status.code(), Some(4), "stderr: {}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains(&format!("pid {}", server.pid())) && message.contains(&address),
        "the owner is not named: {message}"
    );
    // So is `simulate`, which would replace the store under the server.
    let out = connlog(
        data.path(),
        &["simulate", "--reset", "--events", "10"],
        None,
    );
    assert_eq!(out.status.code(), Some(4), "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains(&format!("pid {}", server.pid())));
}

#[test]
fn sigkill_of_the_owner_frees_the_directory() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let out = connlog(data.path(), &["ingest", "-"], Some(&sample_events()));
    assert_eq!(out.status.code(), Some(0));
    let server = Server::start(data.path());
    server.kill();
    // A command runs on its own again, and a new server starts.
    let out = connlog(data.path(), &["query", "--as", "admin"], None);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(json(&out)["count"], 2);
    let server = Server::start(data.path());
    assert_eq!(api_rows(&server, &admin)["count"], 2);
}

#[test]
fn an_owner_that_does_not_answer_is_named_with_exit_4() {
    let data = data_dir();
    // This test process plays an owner that took the lock, said it is ready, and hangs.
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(data.path().join("connlog.lock"))
        .unwrap();
    lock.lock().unwrap();
    std::fs::write(
        data.path().join("connlog.lock"),
        r#"{"pid":4242,"command":"serve","listen":"127.0.0.1:3999","ready":true}"#,
    )
    .unwrap();
    let out = connlog(data.path(), &["query", "--as", "admin"], None);
    assert_eq!(out.status.code(), Some(4), "stderr: {}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("pid 4242")
            && message.contains("127.0.0.1:3999")
            && message.contains("does not answer"),
        "{message}"
    );
    drop(lock);
}
