//! `connlog export` in its four formats, and the round trip through `ingest`.

mod support;

use std::path::Path;

use support::*;

fn simulated() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let out = connlog(
        data.path(),
        &[
            "simulate",
            "--seed",
            "3",
            "--orgs",
            "2",
            "--users",
            "12",
            "--workspaces",
            "8",
            "--days",
            "5",
            "--events",
            "1200",
            "--start",
            "2025-06-01T00:00:00Z",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    data
}

fn query(data: &Path, user: &str, q: &str) -> String {
    let out = connlog(
        data,
        &["query", "--as", user, "-q", q, "--limit", "100000"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}

fn export(data: &Path, format: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["export", "--format", format, "--as", "admin"];
    args.extend_from_slice(extra);
    connlog(data, &args, None)
}

#[test]
fn json_export_ingested_into_an_empty_store_gives_identical_queries() {
    let source = simulated();
    let out = export(source.path(), "json", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = stdout(&out);
    assert!(
        lines
            .lines()
            .all(|l| l.contains("\"msg\":\"connection_log\""))
    );

    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(
        source.path().join("directory.json"),
        copy.path().join("directory.json"),
    )
    .unwrap();
    let ingest = connlog(copy.path(), &["ingest", "-"], Some(&lines));
    assert_eq!(ingest.status.code(), Some(0), "{}", stderr(&ingest));

    for (user, q) in [
        ("admin", ""),
        ("auditor", "method:ssh"),
        ("admin", "status:ongoing"),
        ("admin", "method:workspace_app"),
        ("coder-auditor", ""),
    ] {
        assert_eq!(
            query(source.path(), user, q),
            query(copy.path(), user, q),
            "{user} {q:?}"
        );
    }
    // Exports are stable: the copy exports the same lines.
    assert_eq!(stdout(&export(copy.path(), "json", &[])), lines);
}

#[test]
fn ndjson_and_csv_hold_one_line_per_row() {
    let data = simulated();
    let page: serde_json::Value = serde_json::from_str(&query(data.path(), "admin", "")).unwrap();
    let rows = page["connection_logs"].as_array().unwrap();

    let ndjson = stdout(&export(data.path(), "ndjson", &[]));
    let lines: Vec<serde_json::Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(&lines, rows);

    let csv = stdout(&export(data.path(), "csv", &[]));
    let mut csv_lines = csv.lines();
    let header = csv_lines.next().unwrap();
    assert!(
        header.starts_with("id,connect_time,organization_id,"),
        "{header}"
    );
    assert_eq!(csv_lines.count(), rows.len());
}

#[test]
fn human_export_filters_and_bad_queries() {
    let data = simulated();
    let out = export(data.path(), "human", &["-q", "method:workspace_app"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(!text.is_empty());
    assert!(
        text.lines()
            .all(|l| l.contains("connection_log") && l.contains("ConnectionMethod=workspace_app")),
        "{text}"
    );

    let bad = export(data.path(), "csv", &["-q", "bogus:1"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stdout(&bad).starts_with("{\"message\":\"Invalid connection search query.\""));

    let bad_format = export(data.path(), "xml", &[]);
    assert_eq!(bad_format.status.code(), Some(2));
}
