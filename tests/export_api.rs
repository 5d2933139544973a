//! `GET /api/v2/connectionlog/export`: the page's download, byte for byte what
//! `connlog export` writes, streamed while ingest goes on.

mod service_support;
mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use connlog::export::{PAGE, RowFormat, export};
use connlog::plugin::{Embedded, PluginSource};
use connlog::service::SharedConnLog;
use support::server::Server;
use support::*;

/// A simulated deployment of about 6,000 rows (several export pages), with its tokens.
fn simulated() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let out = connlog(
        data.path(),
        &[
            "simulate",
            "--seed",
            "5",
            "--orgs",
            "3",
            "--users",
            "16",
            "--workspaces",
            "10",
            "--days",
            "5",
            "--events",
            "10000",
            "--start",
            "2025-06-01T00:00:00Z",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    data
}

fn simulated_token(data: &Path, user: &str) -> String {
    let tokens: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("tokens.json")).unwrap()).unwrap();
    tokens[user].as_str().unwrap().to_owned()
}

/// `connlog export --format FORMAT --as USER -q Q`'s standard output.
fn cli_export(data: &Path, format: &str, user: &str, q: &str) -> Vec<u8> {
    let out = connlog(
        data,
        &["export", "--format", format, "--as", user, "-q", q],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    out.stdout
}

/// A GET whose answer is read to its end: status, two headers and the body's bytes.
struct Answer {
    status: u16,
    content_type: String,
    disposition: String,
    body: Vec<u8>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(server: &Server, path_and_query: &str, token: Option<&str>) -> Answer {
    let mut request = agent().get(format!("{}{path_and_query}", server.base));
    if let Some(token) = token {
        request = request.header("Coder-Session-Token", token);
    }
    let response = request.call().unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (status, content_type, disposition) = (
        response.status().as_u16(),
        header("content-type"),
        header("content-disposition"),
    );
    let mut body = Vec::new();
    response
        .into_body()
        .into_reader()
        .read_to_end(&mut body)
        .unwrap();
    Answer {
        status,
        content_type,
        disposition,
        body,
    }
}

fn export_path(format: &str, q: &str) -> String {
    let q: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    format!("/api/v2/connectionlog/export?format={format}&q={q}")
}

#[test]
fn the_download_is_the_cli_export_byte_for_byte() {
    let data = simulated();
    let server = Server::start(data.path());
    for (user, q) in [
        ("auditor", ""),
        ("admin", "method:ssh status:completed"),
        ("coder-auditor", ""),
        ("coder-auditor", "method:workspace_app"),
    ] {
        let token = simulated_token(data.path(), user);
        for (format, content_type, extension) in [
            ("csv", "text/csv; charset=utf-8", "csv"),
            ("ndjson", "application/x-ndjson", "ndjson"),
        ] {
            let answer = get(&server, &export_path(format, q), Some(&token));
            assert_eq!(answer.status, 200, "{user} {q:?} {format}");
            assert_eq!(answer.content_type, content_type);
            let name = answer
                .disposition
                .strip_prefix("attachment; filename=\"connection-log-")
                .and_then(|rest| rest.strip_suffix(&format!(".{extension}\"")))
                .unwrap_or_else(|| panic!("{}", answer.disposition));
            assert!(
                name.len() == 16
                    && name.as_bytes()[8] == b'T'
                    && name.ends_with('Z')
                    && name[..8]
                        .bytes()
                        .chain(name[9..15].bytes())
                        .all(|b| b.is_ascii_digit()),
                "{name}"
            );
            let cli = cli_export(data.path(), format, user, q);
            assert!(
                answer.body == cli,
                "{user} {q:?} {format}: {} bytes over HTTP, {} from the CLI",
                answer.body.len(),
                cli.len()
            );
        }
    }
    // The organization auditor's download holds only their organization's rows, and more
    // than one page of them.
    let coder = get(
        &server,
        &export_path("ndjson", ""),
        Some(&simulated_token(data.path(), "coder-auditor")),
    );
    let everything = get(
        &server,
        &export_path("ndjson", ""),
        Some(&simulated_token(data.path(), "auditor")),
    );
    let orgs = |body: &[u8]| -> HashSet<String> {
        String::from_utf8_lossy(body)
            .lines()
            .map(|l| {
                body_json(l)["organization"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(orgs(&coder.body), HashSet::from(["coder".to_owned()]));
    assert!(orgs(&everything.body).len() > 1);
    assert!(String::from_utf8_lossy(&everything.body).lines().count() > 2000);
}

#[test]
fn format_defaults_to_csv_and_an_empty_download_is_still_a_file() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let member = token(data.path(), "member");
    let server = Server::start(data.path());
    let (status, _) = server.post(
        "/api/v2/connectionlog/ingest",
        Some(&admin),
        &sample_events(),
    );
    assert_eq!(status, 200);

    let csv = get(&server, "/api/v2/connectionlog/export", Some(&admin));
    assert_eq!(csv.status, 200);
    assert_eq!(csv.content_type, "text/csv; charset=utf-8");
    assert_eq!(csv.body, cli_export(data.path(), "csv", "admin", ""));
    assert_eq!(String::from_utf8_lossy(&csv.body).lines().count(), 3);

    // A member reads no row: the CSV is its header, the NDJSON nothing at all.
    let csv = get(&server, &export_path("csv", ""), Some(&member));
    assert_eq!(csv.status, 200);
    assert_eq!(csv.body, cli_export(data.path(), "csv", "member", ""));
    assert_eq!(String::from_utf8_lossy(&csv.body).lines().count(), 1);
    let ndjson = get(&server, &export_path("ndjson", ""), Some(&member));
    assert_eq!((ndjson.status, ndjson.body.len()), (200, 0));
}

#[test]
fn bad_format_and_bad_q_are_400s_and_no_token_is_401() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());

    let answer = get(&server, &export_path("xml", ""), Some(&admin));
    assert_eq!(answer.status, 400);
    assert_eq!(
        body_json(&String::from_utf8_lossy(&answer.body)),
        serde_json::json!({
            "message": "Query parameters have invalid values.",
            "validations": [{"field": "format", "detail": "Query param \"format\" must be one of: csv, ndjson"}]
        })
    );

    // The same 400 as the list's, for either format, before any byte of a download.
    let (status, list_body) = server.get("/api/v2/connectionlog?q=bogus:1", Some(&admin));
    assert_eq!(status, 400);
    for format in ["csv", "ndjson"] {
        let answer = get(&server, &export_path(format, "bogus:1"), Some(&admin));
        assert_eq!(answer.status, 400);
        assert_eq!(answer.content_type, "application/json; charset=utf-8");
        assert!(answer.disposition.is_empty());
        assert_eq!(String::from_utf8_lossy(&answer.body), list_body);
    }

    let answer = get(&server, &export_path("csv", ""), None);
    assert_eq!(answer.status, 401);
    assert!(
        String::from_utf8_lossy(&answer.body).contains("You are signed out"),
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
}

#[test]
fn a_download_being_read_does_not_hold_up_ingest_and_writes_no_row_twice() {
    let data = simulated();
    let admin = simulated_token(data.path(), "admin");
    let server = Server::start(data.path());
    let before: Vec<String> = String::from_utf8(cli_export(data.path(), "ndjson", "admin", ""))
        .unwrap()
        .lines()
        .map(|l| body_json(l)["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(before.len() > 5000, "{} rows", before.len());

    let response = agent()
        .get(format!("{}{}", server.base, export_path("ndjson", "")))
        .header("Coder-Session-Token", &admin)
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut reader = response.into_body().into_reader();
    let mut body = vec![0u8; 64 << 10];
    reader.read_exact(&mut body).unwrap();

    // While the download waits for its reader: rows newer than any (they sort first, so
    // they are not written), and older than any (they sort last, so they may be).
    let newer: Vec<String> = (0..300)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();
    let older: Vec<String> = (0..300)
        .map(|i| format!("00000000-0000-4000-9000-{i:012}"))
        .collect();
    let lines = |ids: &[String], time: &str| -> String {
        ids.iter()
            .map(|id| Event::web(id, time, "workspace_app").app("jupyter").line())
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (ids, time) in [
        (&newer, "2030-01-01T00:00:00Z"),
        (&older, "2020-01-01T00:00:00Z"),
    ] {
        for chunk in ids.chunks(50) {
            let (status, answer) = server.post(
                "/api/v2/connectionlog/ingest",
                Some(&admin),
                &lines(chunk, time),
            );
            assert_eq!(status, 200, "{answer}");
            assert!(answer.starts_with("{\"accepted\":50,"), "{answer}");
        }
    }
    // Queries go on too.
    let (status, _) = server.get("/api/v2/connectionlog?limit=5", Some(&admin));
    assert_eq!(status, 200);

    reader.read_to_end(&mut body).unwrap();
    let written: Vec<String> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| body_json(l)["id"].as_str().unwrap().to_owned())
        .collect();
    let unique: HashSet<&String> = written.iter().collect();
    assert_eq!(unique.len(), written.len(), "a row was written twice");
    for id in &before {
        assert!(unique.contains(id), "row {id} is missing");
    }
    for id in &newer {
        assert!(
            !unique.contains(id),
            "a row newer than the export was written"
        );
    }
}

/// The export's output, which stores rows between pages as a concurrent ingest would:
/// after the first page, rows newer than any (they sort before what was written) and
/// older than any (they sort after it).
struct IngestingBetweenPages {
    shared: SharedConnLog,
    written: Vec<u8>,
    pages: usize,
}

const NEWER_FIRST: u64 = 1_000_000;
const OLDER_FIRST: u64 = 2_000_000;
const BETWEEN: u64 = 700;

impl Write for IngestingBetweenPages {
    fn write(&mut self, page: &[u8]) -> std::io::Result<usize> {
        self.written.extend_from_slice(page);
        self.pages += 1;
        if self.pages == 1 {
            // The service is not locked while a page is written out.
            let mut service = self
                .shared
                .try_lock()
                .expect("the export holds the service while writing");
            let newer = (0..BETWEEN).map(|n| {
                service_support::web_event(
                    NEWER_FIRST + n,
                    service_support::T0 + 900 * service_support::HOUR,
                    "newer",
                )
            });
            let older = (0..BETWEEN).map(|n| {
                service_support::web_event(
                    OLDER_FIRST + n,
                    service_support::T0 - 900 * service_support::HOUR,
                    "older",
                )
            });
            service_support::ingest_all(&mut service, newer.chain(older).collect(), 100);
        }
        Ok(page.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn rows_stored_between_pages_are_written_once_or_not_at_all() {
    let data = tempfile::tempdir().unwrap();
    let mut service =
        service_support::open(data.path(), PluginSource::Embedded(Embedded::Reference));
    service_support::ingest_all(
        &mut service,
        service_support::mixed_events(0, 2500, "before"),
        500,
    );
    let owner = service_support::owner();
    let before = service_support::row_count(&mut service);
    assert!(before > u64::from(PAGE) * 2, "{before} rows");
    let shared: SharedConnLog = Arc::new(Mutex::new(service));

    let mut out = IngestingBetweenPages {
        shared: shared.clone(),
        written: Vec::new(),
        pages: 0,
    };
    export(&shared, &owner, "", &mut RowFormat::Ndjson, &mut out)
        .unwrap()
        .unwrap();
    assert!(out.pages > 2);

    let ids: Vec<String> = String::from_utf8(out.written)
        .unwrap()
        .lines()
        .map(|l| body_json(l)["id"].as_str().unwrap().to_owned())
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a row was written twice");
    let id = |n: u64| service_support::id(1, n).to_string();
    // Every row stored before the export, and the older ones stored during it, once; none
    // of the newer ones.
    assert_eq!(ids.len() as u64, before + BETWEEN);
    assert!((0..BETWEEN).all(|n| unique.contains(&id(OLDER_FIRST + n))));
    assert!((0..BETWEEN).all(|n| !unique.contains(&id(NEWER_FIRST + n))));
    assert_eq!(
        service_support::row_count(&mut connlog::service::lock(&shared)),
        before + 2 * BETWEEN
    );
}
