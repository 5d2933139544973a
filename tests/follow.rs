//! Following Coder's JSON service log as it grows, through the real binary: each event is
//! visible within a second of being written (and so is a line on a pipe that stays open),
//! rotation by rename and by truncation is followed, bad lines are reported with their
//! offset, a restart resumes where it stopped without skipping a line, and `serve --follow`
//! reports its progress in `/metrics`.

mod support;

use std::cell::Cell;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use support::server::Server;
use support::*;

/// An event id for number `i`.
fn id(i: u32) -> String {
    format!("{i:08x}-0000-4000-8000-{i:012x}")
}

/// Coder's JSON service-log line for a workspace-app open, number `i`.
fn connection_log_line(i: u32) -> String {
    let fields = event_line(
        &id(i),
        &format!("2025-07-10T10:{:02}:{:02}Z", i / 60 % 60, i % 60),
        ORG,
        "workspace_app",
        None,
        "connected",
    );
    format!(
        r#"{{"ts":"2025-07-10T10:14:38.942Z","level":"INFO","msg":"connection_log","caller":"coderd/connectionlog/connectionlog.go:98","func":"connectionlog.(*logger).Upsert","logger_names":["coderd"],"fields":{fields}}}"#
    )
}

const OTHER_LINE: &str = r#"{"ts":"2025-07-10T10:14:39Z","level":"INFO","msg":"http request","fields":{"path":"/api/v2/users/me"}}"#;

fn append(path: &Path, lines: &[String]) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

fn lines(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(connection_log_line).collect()
}

/// Rows the admin sees, asked with `connlog query` (through whichever process owns the
/// data directory).
fn count(data: &Path) -> u64 {
    let out = connlog(data, &["query", "--as", "admin", "--limit", "1"], None);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    json(&out)["count"].as_u64().unwrap()
}

/// Waits until the admin sees `n` rows; returns how long that took.
fn wait_for_count(data: &Path, n: u64, limit: Duration) -> Duration {
    let seen = Cell::new(None);
    eventually(
        limit,
        || {
            seen.set(Some(count(data)));
            seen.get() == Some(n)
        },
        || format!("{:?} rows, expected {n}", seen.get()),
    )
}

/// `connlog ingest --follow FILE`, its standard error in `<data>/follow.err`.
fn spawn_follow(data: &Path, log: &Path) -> Child {
    let err = std::fs::File::create(data.join("follow.err")).unwrap();
    connlog_command(data)
        .args(["ingest", "--follow"])
        .arg(log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .unwrap()
}

fn terminate(child: Child) -> std::process::Output {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait_with_output().unwrap()
}

/// The first start compiles the plugin: allow for it.
const START: Duration = Duration::from_secs(60);
/// The promise: durable and visible within a second of being written.
const LIVE: Duration = Duration::from_secs(1);

#[test]
fn each_line_is_visible_within_a_second_across_rotation_and_truncation() {
    let data = data_dir();
    let log = data.path().join("coder.json");
    append(&log, &[lines(0..3), vec![OTHER_LINE.to_owned()]].concat());
    let follower = spawn_follow(data.path(), &log);
    wait_for_count(data.path(), 3, START);

    // One line at a time, while the file stays open.
    for i in 3..6 {
        append(&log, &lines(i..i + 1));
        let took = wait_for_count(data.path(), u64::from(i) + 1, LIVE);
        eprintln!("line {i} visible after {took:?}");
    }

    // A bad line is reported with its offset, and the rest goes on.
    let offset = std::fs::metadata(&log).unwrap().len();
    append(&log, &["{not json".to_owned()]);
    append(&log, &lines(6..7));
    wait_for_count(data.path(), 7, LIVE);

    // Rotation by rename: a last line lands in the old file, then a new file starts.
    append(&log, &lines(7..8));
    std::fs::rename(&log, data.path().join("coder.json.1")).unwrap();
    append(&log, &lines(8..9));
    wait_for_count(data.path(), 9, LIVE);

    // Rotation by truncation.
    std::fs::File::create(&log).unwrap();
    append(&log, &lines(9..10));
    wait_for_count(data.path(), 10, LIVE);

    let out = terminate(follower);
    let err = std::fs::read_to_string(data.path().join("follow.err")).unwrap();
    assert!(
        err.contains(&format!("coder.json at byte {offset}: bad JSON")),
        "the bad line is not reported with its offset:\n{err}"
    );
    assert_eq!(out.status.code(), Some(1), "a rejected line: exit 1\n{err}");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["accepted"], 10, "{answer}");
}

#[test]
fn a_restart_resumes_where_it_stopped_without_skipping_a_line() {
    let data = data_dir();
    let log = data.path().join("coder.json");
    append(&log, &lines(0..5));
    let follower = spawn_follow(data.path(), &log);
    wait_for_count(data.path(), 5, START);
    let out = terminate(follower);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        data.path().join("follow").read_dir().unwrap().count() == 1,
        "a checkpoint is kept in the data directory"
    );

    // While stopped: more lines, then a rotation, then lines in the new file.
    append(&log, &lines(5..7));
    std::fs::rename(&log, data.path().join("coder.json.1")).unwrap();
    append(&log, &lines(7..9));
    let follower = spawn_follow(data.path(), &log);
    wait_for_count(data.path(), 9, START);
    let out = terminate(follower);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Resumed after line 5: the first five were not read again.
    assert_eq!(answer["accepted"], 4, "{answer}");

    // Killed outright in the middle: nothing acknowledged is lost, nothing is skipped.
    let mut follower = spawn_follow(data.path(), &log);
    wait_for_count(data.path(), 9, START);
    append(&log, &lines(9..12));
    wait_for_count(data.path(), 12, LIVE);
    follower.kill().unwrap();
    follower.wait().unwrap();
    append(&log, &lines(12..14));
    let follower = spawn_follow(data.path(), &log);
    wait_for_count(data.path(), 14, START);
    terminate(follower);
}

#[test]
fn serve_follow_stores_the_log_and_reports_progress_in_metrics() {
    let data = data_dir();
    let log = data.path().join("coder.json");
    append(
        &log,
        &[
            lines(0..4),
            vec![OTHER_LINE.to_owned(), "[not json".to_owned()],
        ]
        .concat(),
    );
    let server = Server::start_args(data.path(), &[], &["--follow", log.to_str().unwrap()]);
    wait_for_count(data.path(), 4, START);
    append(&log, &lines(4..6));
    wait_for_count(data.path(), 6, LIVE);
    let metric = |name: &str| -> u64 {
        server
            .metric(name)
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(metric("connlog_follow_events_stored_total"), 6);
    assert_eq!(metric("connlog_follow_rejected_total"), 1);
    assert_eq!(metric("connlog_follow_skipped_total"), 1);
    assert_eq!(metric("connlog_follow_lines_total"), 8);
    assert_eq!(metric("connlog_follow_lag_bytes"), 0);
}

#[test]
fn a_pipe_that_stays_open_is_stored_within_a_second() {
    let data = data_dir();
    let mut child = connlog_command(data.path())
        .args(["ingest", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", connection_log_line(0)).unwrap();
    wait_for_count(data.path(), 1, START);
    for i in 1..4 {
        writeln!(stdin, "{}", connection_log_line(i)).unwrap();
        stdin.flush().unwrap();
        let took = wait_for_count(data.path(), u64::from(i) + 1, LIVE);
        eprintln!("line {i} visible after {took:?}");
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "{\"accepted\":4,\"rejected\":[]}\n");
}
