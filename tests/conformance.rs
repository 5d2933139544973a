//! `connlog conformance PLUGIN`: the reference plugin passes every case; a plugin that
//! cannot be loaded is refused as every command refuses it; a plugin that behaves wrongly
//! fails the cases that check what it gets wrong, by name.

use std::path::Path;
use std::process::{Command, Output};

/// One compile cache for every run here (each plugin is compiled once), outside `~/.cache`.
fn cache_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("connlog-conformance-test-cache")
}

fn conformance(plugin: &str) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_connlog"))
        .args(["conformance", plugin])
        .current_dir(cwd.path())
        .env("CONNLOG_CACHE_DIR", cache_dir())
        .env_remove("CONNLOG_DATA")
        .env_remove("CODER_CONNECTION_LOGS_RETENTION")
        .output()
        .expect("running connlog")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The counts of the last line, which must be `N passed, M failed` and nothing else.
fn summary(text: &str) -> (usize, usize) {
    let last = text.lines().last().expect("some output");
    let parsed = last.strip_suffix(" failed").and_then(|rest| {
        let (passed, failed) = rest.split_once(" passed, ")?;
        Some((passed.parse().ok()?, failed.parse().ok()?))
    });
    parsed.unwrap_or_else(|| panic!("the last line is not `N passed, M failed`: {last:?}"))
}

/// The case lines: every line but the summary.
fn case_lines(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[..lines.len() - 1].to_vec()
}

fn write_plugin(dir: &Path, bytes: &[u8]) -> String {
    let path = dir.join("plugin.wasm");
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn the_reference_plugin_passes_every_case() {
    let out = conformance("reference");
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\nstderr: {}",
        stderr(&out)
    );
    let (passed, failed) = summary(&text);
    assert_eq!(failed, 0, "{text}");
    assert!(passed >= 40, "only {passed} cases");
    let cases = case_lines(&text);
    assert_eq!(cases.len(), passed, "one line per case");
    assert!(cases.iter().all(|l| l.starts_with("ok    ")), "{text}");
    let mut names: Vec<&str> = cases.iter().map(|l| &l["ok    ".len()..]).collect();
    for area in [
        "merge",
        "ingest",
        "query",
        "paging",
        "authz",
        "formats",
        "retention",
        "snapshot",
        "limits",
    ] {
        let n = names
            .iter()
            .filter(|n| n.starts_with(&format!("{area}/")))
            .count();
        assert!(n >= 1, "no case in area {area}");
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), passed, "case names are unique");
}

#[test]
fn a_missing_plugin_is_refused_as_other_commands_refuse_it() {
    let out = conformance("/nonexistent/plugin.wasm");
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "", "no case runs");
    let data = tempfile::tempdir().unwrap();
    let other = Command::new(env!("CARGO_BIN_EXE_connlog"))
        .arg("--data")
        .arg(data.path())
        .args(["--plugin", "/nonexistent/plugin.wasm", "purge"])
        .env("CONNLOG_CACHE_DIR", cache_dir())
        .env_remove("CODER_CONNECTION_LOGS_RETENTION")
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(3));
    assert_eq!(
        stderr(&out),
        stderr(&other),
        "the same message as `connlog --plugin … purge`"
    );
    assert!(
        stderr(&out).starts_with("connlog: cannot read plugin /nonexistent/plugin.wasm: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_component_that_is_not_a_plugin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_plugin(dir.path(), &wat::parse_str("(component)").unwrap());
    let out = conformance(&path);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let message = stderr(&out);
    assert!(
        message.contains("is not a connection-log plugin")
            && message.contains("exports no coder:connection-log interface"),
        "{message}"
    );
}

/// The reference component with two of Coder's texts changed in its data: the detail of
/// the bare-word error, and the `count_cap` key of the API body. Same length each, so the
/// component stays valid and behaves otherwise exactly as the reference.
fn misbehaving_plugin() -> Vec<u8> {
    let mut bytes = connlog::plugin::Embedded::Reference.component().to_vec();
    for (from, to) in [
        ("is not a valid query param", "is not a valid search term"),
        ("\"count_cap\"", "\"count_max\""),
    ] {
        assert_eq!(from.len(), to.len());
        let found: Vec<usize> = bytes
            .windows(from.len())
            .enumerate()
            .filter(|(_, w)| *w == from.as_bytes())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(found.len(), 1, "{from:?} once in the component");
        bytes[found[0]..found[0] + to.len()].copy_from_slice(to.as_bytes());
    }
    bytes
}

#[test]
fn a_plugin_with_wrong_behaviour_fails_the_cases_that_check_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_plugin(dir.path(), &misbehaving_plugin());
    let out = conformance(&path);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\nstderr: {}",
        stderr(&out)
    );
    let (passed, failed) = summary(&text);
    let cases = case_lines(&text);
    assert_eq!(cases.len(), passed + failed, "one line per case");
    let failures: Vec<&str> = cases
        .iter()
        .filter_map(|l| l.strip_prefix("FAIL  "))
        .collect();
    assert_eq!(failures.len(), failed);
    for name in [
        "query/a bare word is Coder's search error: ",
        "formats/an invalid query gives Coder's 400 body: ",
        "formats/the API body has Coder's shape: count_cap",
        "formats/an empty page is Coder's empty body, with count_cap 2000: ",
    ] {
        assert!(
            failures.iter().any(|f| f.starts_with(name)),
            "no failure {name:?} in:\n{text}"
        );
    }
    // What it gets right still passes.
    for name in [
        "merge/connect then disconnect is one completed row",
        "query/an unquoted value with spaces leaves bare words",
        "snapshot/a start from the plugin's snapshot answers every question as before",
    ] {
        assert!(
            cases.contains(&format!("ok    {name}").as_str()),
            "{name:?} did not pass:\n{text}"
        );
    }
    assert!(
        failed <= 8,
        "more cases failed than the two changes explain:\n{text}"
    );
}
