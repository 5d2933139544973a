//! `connlog simulate` end to end: a small deployment through the real binary.

mod support;

use std::path::Path;

use support::*;

const SMALL: &[&str] = &[
    "simulate",
    "--orgs",
    "2",
    "--users",
    "12",
    "--workspaces",
    "8",
    "--days",
    "7",
    "--events",
    "1500",
    "--start",
    "2025-06-01T00:00:00Z",
];

/// The small deployment with seed 7, unless `extra` names another.
fn simulate(data: &Path, extra: &[&str]) -> std::process::Output {
    let seed: &[&str] = if extra.contains(&"--seed") {
        &[]
    } else {
        &["--seed", "7"]
    };
    let args: Vec<&str> = SMALL.iter().chain(seed).chain(extra).copied().collect();
    connlog(data, &args, None)
}

fn all_rows(data: &Path, user: &str) -> String {
    let out = connlog(data, &["query", "--as", user, "--limit", "100000"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn a_small_deployment_lands_as_the_simulator_expects() {
    let data = tempfile::tempdir().unwrap();
    let out = simulate(data.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let summary = stdout(&out);
    assert!(summary.contains("as the simulator expected"), "{summary}");
    assert!(summary.contains("events by method"), "{summary}");
    assert!(summary.contains("top apps"), "{summary}");
    assert!(summary.contains(" 0 rejected"), "{summary}");
    // Lines of both generations went through the reader, and none was refused.
    let legacy = summary
        .lines()
        .find_map(|l| l.strip_prefix("legacy lines:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .expect("a count of legacy lines");
    assert!(legacy > 0, "{summary}");
    for kind in [
        "ssh",
        "reconnecting_pty",
        "workspace_app",
        "port_forwarding",
        "tunnel",
    ] {
        assert!(
            summary
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{kind} "))),
            "{kind} missing from {summary}"
        );
    }

    // The summary's row count is what an owner sees.
    let rows: u64 = summary
        .lines()
        .find_map(|l| l.strip_prefix("rows:"))
        .and_then(|l| l.trim().split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no row count in {summary}"));
    let page: serde_json::Value = serde_json::from_str(&all_rows(data.path(), "admin")).unwrap();
    assert_eq!(page["count"], rows);
    assert!(rows > 100);

    // The well-known accounts and their tokens.
    let tokens: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.path().join("tokens.json")).unwrap()).unwrap();
    for user in ["admin", "auditor"] {
        let token = tokens[user]
            .as_str()
            .unwrap_or_else(|| panic!("no token for {user}"));
        assert_eq!(token.len(), 33, "{token}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["tokens.json", "directory.json"] {
            let mode = std::fs::metadata(data.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
    // Only hashes are stored in the directory.
    let directory = std::fs::read_to_string(data.path().join("directory.json")).unwrap();
    assert!(!directory.contains(tokens["admin"].as_str().unwrap()));

    // The site auditor sees everything; a plain member nothing.
    let auditor: serde_json::Value =
        serde_json::from_str(&all_rows(data.path(), "auditor")).unwrap();
    assert_eq!(auditor["count"], rows);
}

#[test]
fn the_same_seed_gives_the_same_rows() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    assert_eq!(simulate(a.path(), &[]).status.code(), Some(0));
    assert_eq!(simulate(b.path(), &[]).status.code(), Some(0));
    assert_eq!(all_rows(a.path(), "admin"), all_rows(b.path(), "admin"));
    let c = tempfile::tempdir().unwrap();
    assert_eq!(simulate(c.path(), &["--seed", "8"]).status.code(), Some(0));
    assert_ne!(all_rows(a.path(), "admin"), all_rows(c.path(), "admin"));
}

#[test]
fn a_used_data_directory_needs_reset() {
    let data = tempfile::tempdir().unwrap();
    assert_eq!(simulate(data.path(), &[]).status.code(), Some(0));
    let again = simulate(data.path(), &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--reset"), "{}", stderr(&again));
    let reset = simulate(data.path(), &["--reset", "--seed", "9"]);
    assert_eq!(reset.status.code(), Some(0), "{}", stderr(&reset));
    assert!(stdout(&reset).contains("as the simulator expected"));
}

#[test]
fn bad_options_are_usage_errors() {
    let data = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (&["simulate", "--orgs", "0"][..], "orgs must be between"),
        (&["simulate", "--start", "yesterday"][..], "--start"),
        (&["simulate", "--duplicates", "1.5"][..], "duplicate share"),
        (&["simulate", "--events", "many"][..], "invalid value"),
    ] {
        let out = connlog(data.path(), args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    assert!(!data.path().join("directory.json").exists());
}
