//! `connlog conformance PLUGIN`: the reference plugin passes every case, and so does the
//! privacy plugin under each of its settings (judged by the privacy rules they select); the
//! reference plugin exported for contract 0.1.0 passes every case but those sending what
//! 0.1.0 cannot carry, which are skipped and named; a plugin that cannot be loaded, or
//! that refuses its settings, is refused as every command refuses it; a plugin that
//! behaves wrongly (its data or its sessions) fails the cases that check what it gets
//! wrong, by name, and passes the others.

use std::path::Path;
use std::process::{Command, Output};

/// One compile cache for every run here (each plugin is compiled once), outside `~/.cache`.
fn cache_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("connlog-conformance-test-cache")
}

fn conformance(plugin: &str) -> Output {
    conformance_with(plugin, &[])
}

/// `connlog conformance PLUGIN --plugin-setting S …`.
fn conformance_with(plugin: &str, settings: &[&str]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_connlog"))
        .args(["conformance", plugin])
        .args(settings.iter().flat_map(|s| ["--plugin-setting", s]))
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

/// The counts of the last line, which must be `N passed, S skipped, M failed` and nothing
/// else.
fn counts(text: &str) -> (usize, usize, usize) {
    let last = text.lines().last().expect("some output");
    let parsed = last.strip_suffix(" failed").and_then(|rest| {
        let (passed, rest) = rest.split_once(" passed, ")?;
        let (skipped, failed) = rest.split_once(" skipped, ")?;
        Some((
            passed.parse().ok()?,
            skipped.parse().ok()?,
            failed.parse().ok()?,
        ))
    });
    parsed
        .unwrap_or_else(|| panic!("the last line is not `N passed, S skipped, M failed`: {last:?}"))
}

/// Passed and failed, for a plugin of which nothing may be skipped.
fn summary(text: &str) -> (usize, usize) {
    let (passed, skipped, failed) = counts(text);
    assert_eq!(skipped, 0, "skipped cases:\n{text}");
    (passed, failed)
}

/// The case lines: every line but the summary.
fn case_lines(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[..lines.len() - 1].to_vec()
}

/// The failed cases (`area/name: reason`), checked against the summary's counts: one line
/// per case, as many failures as it says.
fn failed_cases(text: &str, passed: usize, failed: usize) -> Vec<&str> {
    let cases = case_lines(text);
    let (_, skipped, _) = counts(text);
    assert_eq!(cases.len(), passed + skipped + failed, "one line per case");
    let failures: Vec<&str> = cases
        .iter()
        .filter_map(|l| l.strip_prefix("FAIL  "))
        .collect();
    assert_eq!(failures.len(), failed);
    failures
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
        "privacy",
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
    let failures = failed_cases(&text, passed, failed);
    // What it gets right still passes.
    for name in [
        "merge/connect then disconnect is one completed row",
        "query/an unquoted value with spaces leaves bare words",
        "snapshot/a start from the plugin's snapshot answers every question as before",
    ] {
        assert!(
            case_lines(&text).contains(&format!("ok    {name}").as_str()),
            "{name:?} did not pass:\n{text}"
        );
    }
    // Nothing else fails: the cases reading those texts, and every case comparing a whole
    // API body (which holds `count_cap`).
    for name in MISBEHAVING_FAILURES {
        assert!(
            failures.iter().any(|f| f.starts_with(&format!("{name}: "))),
            "no failure {name:?} in:\n{text}"
        );
    }
    assert_eq!(failed, MISBEHAVING_FAILURES.len(), "{text}");
}

/// The cases the two changes of [`misbehaving_plugin`] fail.
const MISBEHAVING_FAILURES: [&str; 21] = [
    "query/a bare word is Coder's search error",
    "formats/the API body has Coder's shape",
    "formats/an empty page is Coder's empty body, with count_cap 2000",
    "formats/an invalid query gives Coder's 400 body",
    "query/§11.7 \"type:vscode family:vscode\" is refused with exactly one error",
    "query/§11.7 \"family:jetbrains\" is refused with exactly one error",
    "query/§11.7 \"family:vscode type:vscode app:cursor method:vscode status:bogus\" is refused with 4 errors, in order",
    "query/§11.7 \"family:x type:Cursor method:Bogus status:bogus\" is refused with 4 errors, in order",
    "formats/§7.6 SSH from Cursor, completed",
    "formats/§7.6 plain SSH: no app_name, app_display_name or web_info",
    "formats/§7.6 workspace app: no app_name, no ssh_info, web_info with the slug",
    "formats/§7.6 unregistered app Some-New-IDE over SSH",
    "formats/§11.9 tunnel: web_info with the user and status 101, no ssh_info",
    "formats/§10.1 a legacy jetbrains row: ssh with app jetbrains",
    "formats/§3.3 devin is Devin Desktop",
    "formats/§10.2 a workspace app whose slug is an app name has no app_name",
    "formats/§7.5 ssh_info carries the client session id, after exit_code",
    "formats/§10.6 a web terminal with an app: type reconnecting_pty, app_name shown",
    "formats/§7.4 an agent-reported port forward: web_info with no user, user agent or slug",
    "formats/§11.9 method:ssh matching no rows is Coder's empty body",
    "query/§11.8 \"family:vscode\" is a 400",
];

/// Each line is `ok    NAME`; the names, in order.
fn all_passed(label: &str, out: &Output) -> Vec<String> {
    let (passed, _) = summary(&stdout(out));
    let names = passed_or_skipped(label, out);
    assert_eq!(names.len(), passed, "{label}");
    names
}

/// Each line is `ok    NAME` or `skip  NAME: needs contract 0.2.0 (…)…`; the names, in
/// order, without those skipped.
fn passed_or_skipped(label: &str, out: &Output) -> Vec<String> {
    let text = stdout(out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{label}:\n{text}\nstderr: {}",
        stderr(out)
    );
    let (passed, skipped, failed) = counts(&text);
    assert_eq!(failed, 0, "{label}:\n{text}");
    let cases = case_lines(&text);
    assert_eq!(cases.len(), passed + skipped, "{label}: one line per case");
    let skips = cases.iter().filter(|l| l.starts_with("skip  ")).count();
    assert_eq!(skips, skipped, "{label}: one skip line per skipped case");
    cases
        .iter()
        .filter(|l| !l.starts_with("skip  "))
        .map(|l| {
            l.strip_prefix("ok    ")
                .unwrap_or_else(|| panic!("{label}: not passed: {l}"))
                .to_string()
        })
        .collect()
}

/// A key for `ip=hmac`: 19 bytes, and a text no output may hold.
const HMAC_KEY: &str = "SECRETSECRETSECRET1";

#[test]
fn the_privacy_plugin_passes_every_case_under_each_of_its_settings() {
    let hmac_key = format!("ip-hmac-key={HMAC_KEY}");
    // (settings, what the header says is expected; `None`: no such line)
    let configurations: [(&[&str], Option<&str>); 4] = [
        (
            &[],
            Some("IPs truncated to /24 and /48, user agents coarsened to family and OS"),
        ),
        (
            &[&hmac_key, "ip=hmac"],
            Some("IPs pseudonymised (HMAC-SHA256 in fd00::/8), user agents coarsened"),
        ),
        (
            &["ip=drop", "user-agent=drop"],
            Some("IPs dropped, user agents dropped"),
        ),
        (&["ip=keep", "user-agent=keep"], None),
    ];
    // The four runs at once: each is a process of its own.
    let runs: Vec<_> = configurations
        .iter()
        .map(|(settings, _)| {
            let settings: Vec<String> = settings.iter().map(|s| s.to_string()).collect();
            std::thread::spawn(move || {
                let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
                conformance_with("privacy", &settings)
            })
        })
        .collect();
    let reference = all_passed("reference", &conformance("reference"));
    for ((settings, expecting), run) in configurations.iter().zip(runs) {
        let out = run.join().unwrap();
        let label = format!("privacy {settings:?}");
        let names = all_passed(&label, &out);
        assert_eq!(
            names, reference,
            "{label}: the same cases as the reference plugin, in the same order"
        );
        let header = stderr(&out);
        assert!(
            header.starts_with("connlog: checking connlog-privacy "),
            "{label}: {header}"
        );
        match expecting {
            Some(rules) => assert!(
                header.contains(&format!("connlog: expecting {rules}")),
                "{label}: {header}"
            ),
            None => assert!(!header.contains("expecting"), "{label}: {header}"),
        }
        for text in [stdout(&out), header] {
            assert!(!text.contains(HMAC_KEY), "{label}: the key is shown");
        }
    }
}

/// What a 0.1.0 plugin is never sent, by the kit's name for it, and how many cases need it.
const NEEDS_0_2: [(&str, usize); 5] = [
    ("client session ids", 8),
    ("a web terminal's app", 8),
    ("agent-reported port forwards", 6),
    ("the current service-log line", 8),
    ("the live feed", 3),
];

#[test]
fn the_reference_plugin_for_contract_0_1_passes_every_case_it_can_be_sent() {
    let out = conformance(connlog_test_plugins::REFERENCE_V0_1_PLUGIN);
    let text = stdout(&out);
    let names = passed_or_skipped("contract 0.1.0", &out);
    let header = stderr(&out);
    assert!(
        header.starts_with("connlog: checking connlog-reference ")
            && header.contains("(contract 0.1.0)"),
        "{header}"
    );
    let (passed, skipped, failed) = counts(&text);
    assert_eq!(
        (passed, skipped, failed),
        (V0_1_PASSED, V0_1_SKIPPED, 0),
        "{text}"
    );
    // It passes what the reference passes, but for the cases skipped.
    let reference = all_passed("reference", &conformance("reference"));
    let skips: Vec<&str> = case_lines(&text)
        .into_iter()
        .filter_map(|l| l.strip_prefix("skip  "))
        .collect();
    for (what, n) in NEEDS_0_2 {
        let reason = format!(": needs contract 0.2.0 ({what}); the plugin speaks 0.1.0");
        let matching = skips.iter().filter(|l| l.ends_with(&reason)).count();
        assert_eq!(matching, n, "cases skipped for {what}:\n{text}");
    }
    assert_eq!(
        names.len() + skips.len(),
        reference.len(),
        "the reference's cases, passed or skipped"
    );
    assert!(names.iter().all(|n| reference.contains(n)));
}

#[test]
fn the_reference_plugin_for_contract_0_2_passes_every_case() {
    // Its events cross as lists of records (0.3.0 sends columns): the same cases, all passed.
    let out = conformance(connlog_test_plugins::REFERENCE_V0_2_PLUGIN);
    let header = stderr(&out);
    assert!(
        header.starts_with("connlog: checking connlog-reference ")
            && header.contains("(contract 0.2.0)"),
        "{header}"
    );
    let names = all_passed("contract 0.2.0", &out);
    let reference = all_passed("reference", &conformance("reference"));
    assert_eq!(names, reference);
}

/// The kit's counts for the 0.1.0 plugin: what it passes and what it is never sent.
const V0_1_PASSED: usize = 187;
const V0_1_SKIPPED: usize = 33;

/// The kit's counts for the sessionless plugin (contract 0.3.0: nothing is skipped).
const SESSIONLESS_PASSED: usize = 44;
const SESSIONLESS_FAILED: usize = 176;

#[test]
fn a_plugin_without_sessions_fails_the_merge_cases_and_passes_the_others() {
    let out = conformance(connlog_test_plugins::SESSIONLESS_PLUGIN);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\nstderr: {}",
        stderr(&out)
    );
    let (passed, failed) = summary(&text);
    assert_eq!(
        (passed, failed),
        (SESSIONLESS_PASSED, SESSIONLESS_FAILED),
        "{text}"
    );
    let failures = failed_cases(&text, passed, failed);
    for name in [
        "merge/connect then disconnect is one completed row",
        "merge/a lone connect is an ongoing row",
        "merge/every order of one session's events gives the same row",
    ] {
        assert!(
            failures.iter().any(|f| f.starts_with(&format!("{name}: "))),
            "no failure {name:?} in:\n{text}"
        );
    }
    // What does not involve sessions still passes: the filter language, web rows, paging
    // over web rows. (Every authz case stores agent sessions, so those fail too.)
    for name in [
        "query/a bare word is Coder's search error",
        "query/an unquoted value with spaces leaves bare words",
        "query/username matches whatever its case",
        "query/an unknown organization name is Coder's validation error",
        "merge/a web row is its event",
        "merge/two identical web events are two rows",
        "paging/the count is exact beyond Coder's cap of 2001",
        "formats/an invalid query gives Coder's 400 body",
    ] {
        assert!(
            case_lines(&text).contains(&format!("ok    {name}").as_str()),
            "{name:?} did not pass:\n{text}"
        );
    }
}

#[test]
fn settings_the_plugin_refuses_are_refused_before_any_case() {
    // (plugin, settings, what stderr names, values it must not show)
    let cases: &[(&str, &[&str], &str, &[&str])] = &[
        ("privacy", &["ip=bogus"], "\"ip\"", &["bogus"]),
        (
            "privacy",
            &["ip=hmac", "ip-hmac-key=short"],
            "\"ip-hmac-key\"",
            &["short"],
        ),
        ("privacy", &["ip=hmac"], "\"ip-hmac-key\"", &[]),
        ("privacy", &["ip=keep", "ip=keep"], "\"ip\"", &[]),
        ("reference", &["x=1"], "\"x\"", &[]),
    ];
    for (plugin, settings, names, hidden) in cases {
        let out = conformance_with(plugin, settings);
        let message = stderr(&out);
        let label = format!("{plugin} {settings:?}");
        assert_eq!(out.status.code(), Some(2), "{label}: {message}");
        assert_eq!(stdout(&out), "", "{label}: no case runs");
        assert!(
            message.starts_with(&format!(
                "connlog: the embedded {plugin} plugin refused its settings: "
            )) && message.contains(names),
            "{label}: {message}"
        );
        for value in *hidden {
            assert!(
                !message.contains(value),
                "{label} shows {value:?}: {message}"
            );
        }
    }
}

/// The kit judges data by the rules it expects: a privacy plugin keeping what the rules
/// say it drops, or dropping what they say it keeps, fails the privacy cases (and the
/// cases that compare IPs and user agents), through the Kit API.
#[test]
fn a_plugin_storing_other_data_than_expected_fails_the_privacy_cases() {
    use connlog::conformance::Kit;
    use connlog::conformance::privacy::{PRIVACY_PLUGIN, Rules};
    use connlog::model::Setting;
    use connlog::plugin::{ComponentCache, Embedded, Limits, PluginSource, PluginSpec};

    let settings = |pairs: &[&str]| -> Vec<Setting> {
        pairs.iter().map(|p| Setting::parse(p).unwrap()).collect()
    };
    // (the plugin's settings, the settings the kit expects, the privacy cases that fail)
    let table: &[(&[&str], &[&str], &[&str])] = &[
        (
            &["ip=keep", "user-agent=keep"],
            &[],
            &[
                "raw IPs and user agents never reach the store",
                "rows stored before a swap keep what they had",
            ],
        ),
        (
            &[],
            &["ip=keep", "user-agent=keep"],
            &[
                "raw IPs and user agents never reach the store",
                "rows stored before a swap keep what they had",
            ],
        ),
        (
            &["max-retention=30d"],
            &[],
            &["a row older than max-retention is purged even with the operator's retention off"],
        ),
        // As expected: nothing fails.
        (&["ip=drop"], &["ip=drop"], &[]),
    ];
    for (actual, expected, failing) in table {
        let spec = PluginSpec {
            source: PluginSource::Embedded(Embedded::Privacy),
            settings: settings(actual),
        };
        let cache = ComponentCache::new(cache_dir());
        let mut kit = Kit::load(spec, Some(cache), Limits::default()).unwrap();
        kit.rules = Rules::for_plugin(PRIVACY_PLUGIN, &settings(expected)).unwrap();
        let mut failed = Vec::new();
        let summary = kit.run_where(
            |area, _| area == "privacy",
            |outcome| {
                if outcome.verdict.is_failed() {
                    failed.push(outcome.name.to_string());
                }
            },
        );
        let label = format!("plugin {actual:?}, expected {expected:?}");
        assert_eq!(
            (summary.passed + summary.failed, summary.skipped),
            (3, 0),
            "{label}: the privacy cases"
        );
        assert_eq!(failed, *failing, "{label}");
    }
}
