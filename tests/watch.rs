//! The live feed, `GET /api/v2/connectionlog/watch`, against a real `connlog serve`: its
//! two formats, filter and authorization, errors, the resume guarantee across dropped
//! connections, a stalled client that never slows ingest, metrics and shutdown.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::server::Server;
use support::*;

const WATCH: &str = "/api/v2/connectionlog/watch";
const INGEST: &str = "/api/v2/connectionlog/ingest";

/// One message of the feed, whichever format carried it.
#[derive(Clone, Debug, PartialEq)]
enum Message {
    /// SSE's `retry:` block.
    Retry(u64),
    Row {
        position: i64,
        row: Value,
    },
    /// A position without a row (the start, progress, and NDJSON's heartbeat).
    Position(i64),
    /// SSE's `: keep-alive`.
    KeepAlive,
    Disconnect {
        reason: String,
        position: i64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Sse,
    Ndjson,
}

/// A feed being read, a message at a time, straight off the connection.
struct Feed {
    format: Format,
    lines: BufReader<Box<dyn Read + Send>>,
    content_type: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // No test waits this long for one message; a hang fails instead of stalling.
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// `GET path` with `headers`: the status and body of a refusal, or the open feed.
fn open(server: &Server, path: &str, headers: &[(&str, &str)]) -> Result<Feed, (u16, String)> {
    let mut request = agent().get(format!("{}{path}", server.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.call().unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let reader: Box<dyn Read + Send> = Box::new(response.into_body().into_reader());
    let mut lines = BufReader::new(reader);
    if status != 200 {
        let mut body = String::new();
        lines.read_to_string(&mut body).unwrap();
        return Err((status, body));
    }
    let format = if content_type == "text/event-stream" {
        Format::Sse
    } else {
        assert_eq!(content_type, "application/x-ndjson");
        Format::Ndjson
    };
    Ok(Feed {
        format,
        lines,
        content_type,
    })
}

fn watch(server: &Server, token: &str, query: &str, headers: &[(&str, &str)]) -> Feed {
    let mut all = vec![("Coder-Session-Token", token)];
    all.extend_from_slice(headers);
    open(server, &format!("{WATCH}?{query}"), &all).unwrap_or_else(|(s, b)| panic!("{s}: {b}"))
}

impl Feed {
    /// The next message; `None` when the stream ended.
    fn next(&mut self) -> Option<Message> {
        match self.format {
            Format::Sse => self.next_sse(),
            Format::Ndjson => self.next_ndjson(),
        }
    }

    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.lines.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.strip_suffix('\n').unwrap_or(&line).to_owned()),
            Err(e) => panic!("reading the feed: {e}"),
        }
    }

    fn next_ndjson(&mut self) -> Option<Message> {
        let line = self.line()?;
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let position = v["position"].as_i64().unwrap();
        Some(match (v.get("connection_log"), v.get("disconnect")) {
            (Some(row), None) => {
                assert_eq!(v.as_object().unwrap().len(), 2, "{line}");
                Message::Row {
                    position,
                    row: row.clone(),
                }
            }
            (None, Some(reason)) => Message::Disconnect {
                reason: reason.as_str().unwrap().to_owned(),
                position,
            },
            (None, None) => {
                assert_eq!(v.as_object().unwrap().len(), 1, "{line}");
                Message::Position(position)
            }
            _ => panic!("{line}"),
        })
    }

    /// One SSE block (lines up to a blank one), read by the spec's field rules.
    fn next_sse(&mut self) -> Option<Message> {
        let mut fields: Vec<(String, String)> = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(": ").unwrap_or((&line, ""));
            fields.push((name.to_owned(), value.to_owned()));
        }
        let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        Some(match names.as_slice() {
            ["retry"] => Message::Retry(get("retry").unwrap().parse().unwrap()),
            [""] if fields[0].1 == "keep-alive" => Message::KeepAlive,
            ["id"] => Message::Position(get("id").unwrap().parse().unwrap()),
            ["id", "event", "data"] if get("event").unwrap() == "connection_log" => Message::Row {
                position: get("id").unwrap().parse().unwrap(),
                row: body_json(get("data").unwrap()),
            },
            ["event", "data"] if get("event").unwrap() == "disconnect" => {
                let data = body_json(get("data").unwrap());
                assert_eq!(data.as_object().unwrap().len(), 2, "{data}");
                Message::Disconnect {
                    reason: data["reason"].as_str().unwrap().to_owned(),
                    position: data["position"].as_i64().unwrap(),
                }
            }
            _ => panic!("unexpected SSE block: {fields:?}"),
        })
    }

    /// The start: SSE's `retry: 2000` then the start position; NDJSON's start position.
    fn start(&mut self) -> i64 {
        if self.format == Format::Sse {
            assert_eq!(self.next(), Some(Message::Retry(2000)));
        }
        match self.next() {
            Some(Message::Position(p)) => p,
            other => panic!("expected the start position, got {other:?}"),
        }
    }

    /// The next row, skipping positions and keep-alives.
    fn next_row(&mut self) -> (i64, Value) {
        loop {
            match self.next() {
                Some(Message::Row { position, row }) => return (position, row),
                Some(Message::Position(_) | Message::KeepAlive) => {}
                other => panic!("expected a row, got {other:?}"),
            }
        }
    }
}

/// The SSE comment line `: keep-alive` parses as a field named "" in [`Feed::next_sse`]:
/// split_once(": ") of ": keep-alive" gives ("", "keep-alive").
#[test]
fn the_sse_parser_reads_a_comment_as_a_keep_alive() {
    let mut feed = Feed {
        format: Format::Sse,
        lines: BufReader::new(Box::new(std::io::Cursor::new(
            b": keep-alive\n\nid: 4\n\n".to_vec(),
        ))),
        content_type: String::new(),
    };
    assert_eq!(feed.next(), Some(Message::KeepAlive));
    assert_eq!(feed.next(), Some(Message::Position(4)));
    assert_eq!(feed.next(), None);
}

fn ingest(server: &Server, token: &str, lines: &str) {
    let (status, body) = server.post(INGEST, Some(token), lines);
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("\"rejected\":[]}\n"), "{body}");
}

/// Web event `n` in `org`: one row of its own, with a user agent of `ua_bytes` bytes.
fn web_line(n: usize, org: &str, ua_bytes: usize) -> String {
    let id = format!("00000000-0000-4000-8000-{n:012}");
    let seconds = n % 86_400;
    let time = format!(
        "2025-07-11T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    Event {
        org: org.into(),
        ..Event::web(&id, &time, "workspace_app")
            .app("jupyter")
            .user_agent(&"u".repeat(ua_bytes))
    }
    .line()
}

fn row_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

#[test]
fn sse_shape_rows_progress_and_keep_alive() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let orgaudit = token(data.path(), "orgaudit");
    let server = Server::start_args(data.path(), &[], &["--watch-heartbeat", "300ms"]);

    let mut feed = watch(&server, &admin, "", &[]);
    assert_eq!(feed.content_type, "text/event-stream");
    let start = feed.start();
    assert_eq!(start, 0);
    // Caught up: a keep-alive comes within the heartbeat.
    assert_eq!(feed.next(), Some(Message::KeepAlive));

    // The session's connect and disconnect, merged in one read: one row, completed, at
    // the disconnect's position; then the web row.
    ingest(&server, &admin, &sample_events());
    let (position, row) = feed.next_row();
    assert_eq!(position, 2);
    assert_eq!(row["id"], CONNECT);
    assert!(row["ssh_info"]["disconnect_time"].is_string(), "{row}");
    let (position, row) = feed.next_row();
    assert_eq!(position, 3);
    assert_eq!(row["id"], WEB);
    assert_eq!(row["organization"]["name"], "other");

    // The organization auditor resumes from 0: only their organization's row, then the
    // position past the other one, which it may not see (an `id:` without data).
    let mut feed = watch(&server, &orgaudit, "", &[("Last-Event-ID", "0")]);
    assert_eq!(feed.start(), 0);
    assert!(matches!(
        feed.next(),
        Some(Message::Row { position: 2, .. })
    ));
    assert_eq!(feed.next(), Some(Message::Position(3)));
    assert_eq!(feed.next(), Some(Message::KeepAlive));
}

#[test]
fn ndjson_shape_by_accept_or_format() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start_args(data.path(), &[], &["--watch-heartbeat", "300ms"]);
    ingest(&server, &admin, &sample_events());

    for (query, headers) in [
        ("after=0", vec![("Accept", "application/x-ndjson")]),
        ("after=0&format=ndjson", vec![]),
        (
            "after=0&format=ndjson",
            vec![("Accept", "text/event-stream")],
        ),
    ] {
        let mut feed = watch(&server, &admin, query, &headers);
        assert_eq!(feed.content_type, "application/x-ndjson");
        assert_eq!(feed.start(), 0);
        let raw = |feed: &mut Feed| feed.line().unwrap();
        let line = raw(&mut feed);
        let v = body_json(&line);
        assert_eq!(v["position"], 2, "{line}");
        assert_eq!(v["connection_log"]["id"], CONNECT);
        assert!(line.starts_with("{\"position\":2,\"connection_log\":{\"id\":"));
        assert_eq!(body_json(&raw(&mut feed))["connection_log"]["id"], WEB);
        // The heartbeat repeats the position.
        assert_eq!(raw(&mut feed), "{\"position\":3}");
    }
}

#[test]
fn filter_and_authorization_are_the_lists() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let orgaudit = token(data.path(), "orgaudit");
    let member = token(data.path(), "member");
    let server = Server::start(data.path());

    let mut everything = watch(&server, &admin, "format=ndjson", &[]);
    let mut apps_only = watch(
        &server,
        &admin,
        "format=ndjson&q=method%3Aworkspace_app",
        &[],
    );
    let mut org = watch(&server, &orgaudit, "format=ndjson", &[]);
    let mut nothing = watch(&server, &member, "format=ndjson", &[]);
    for feed in [&mut everything, &mut apps_only, &mut org, &mut nothing] {
        assert_eq!(feed.start(), 0);
    }
    // Ten events, one a request: web rows in both organizations, alternating methods.
    let lines: Vec<String> = (0..10)
        .map(|n| {
            let org = if n % 2 == 0 { ORG } else { OTHER_ORG };
            let line = web_line(n, org, 10);
            if n % 3 == 0 {
                line.replace("workspace_app", "port_forwarding")
            } else {
                line
            }
        })
        .collect();
    for line in &lines {
        ingest(&server, &admin, line);
    }
    let rows_until_10 = |feed: &mut Feed| -> Vec<usize> {
        let mut seen = Vec::new();
        loop {
            match feed.next().unwrap() {
                Message::Row { position, row } => {
                    let n = row_id_number(&row);
                    assert_eq!(position as usize, n + 1, "one event per row, in order");
                    seen.push(n);
                    if position == 10 {
                        return seen;
                    }
                }
                Message::Position(10) => return seen,
                Message::Position(_) => {}
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(rows_until_10(&mut everything), (0..10).collect::<Vec<_>>());
    assert_eq!(rows_until_10(&mut apps_only), vec![1, 2, 4, 5, 7, 8]);
    assert_eq!(rows_until_10(&mut org), vec![0, 2, 4, 6, 8]);
    assert_eq!(rows_until_10(&mut nothing), Vec::<usize>::new());

    // What the list says, row for row.
    let (_, list) = server.get(
        "/api/v2/connectionlog?q=method:workspace_app&limit=100",
        Some(&admin),
    );
    assert_eq!(body_json(&list)["count"], 6);
}

fn row_id_number(row: &Value) -> usize {
    row["id"].as_str().unwrap()[24..].parse().unwrap()
}

#[test]
fn refusals_400_401_and_501() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());
    ingest(&server, &admin, &sample_events());
    let refusal = |query: &str, headers: &[(&str, &str)]| {
        let mut all = vec![("Coder-Session-Token", admin.as_str())];
        all.extend_from_slice(headers);
        match open(&server, &format!("{WATCH}?{query}"), &all) {
            Err((status, body)) => (status, body_json(&body)),
            Ok(_) => panic!("{query} {headers:?} was accepted"),
        }
    };

    let (status, body) = refusal("q=bogus:1", &[]);
    let (_, list) = server.get("/api/v2/connectionlog?q=bogus:1", Some(&admin));
    assert_eq!((status, body), (400, body_json(&list)));

    let (status, body) = refusal("format=xml&after=-1", &[("Last-Event-ID", "x")]);
    assert_eq!(status, 400);
    assert_eq!(body["message"], "Query parameters have invalid values.");
    let fields: Vec<&str> = body["validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["format", "Last-Event-ID", "after"]);
    assert_eq!(
        body["validations"][0]["detail"],
        "Query param \"format\" must be one of: sse, ndjson"
    );

    // A position this store never gave (the head is 3).
    let (status, body) = refusal("after=4", &[]);
    assert_eq!(status, 400);
    assert_eq!(body["validations"][0]["field"], "after");
    assert_eq!(
        body["validations"][0]["detail"],
        "after 4 is past the newest event (3): it was not given by this server's store"
    );
    assert!(
        open(
            &server,
            &format!("{WATCH}?after=3"),
            &[("Coder-Session-Token", &admin)]
        )
        .is_ok()
    );

    let (status, body) = open(&server, WATCH, &[]).err().unwrap();
    assert_eq!(status, 401);
    assert!(body.contains("You are signed out"), "{body}");
    drop(server);

    // A plugin of contract 0.1.0 has no feed.
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start_with(
        data.path(),
        &["--plugin", connlog_test_plugins::REFERENCE_V0_1_PLUGIN],
    );
    let (status, body) = open(&server, WATCH, &[("Coder-Session-Token", &admin)])
        .err()
        .unwrap();
    assert_eq!(status, 501, "{body}");
    let body = body_json(&body);
    assert_eq!(
        body["message"],
        "The live connection log is not available with the running plugin."
    );
    assert!(body["detail"].as_str().unwrap().contains("0.1.0"), "{body}");
}

#[test]
fn a_sessions_connect_then_disconnect_are_two_messages() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());
    let mut feed = watch(&server, &admin, "q=method%3Assh", &[]);
    assert_eq!(feed.start(), 0);

    let connect = Event::agent(CONNECT, "2025-07-10T10:14:38Z", "ssh", SESSION).app("cursor");
    ingest(&server, &admin, &connect.line());
    let (first, ongoing) = feed.next_row();
    assert_eq!(first, 1);
    assert_eq!(ongoing["id"], CONNECT);
    assert!(
        ongoing["ssh_info"]["disconnect_time"].is_null(),
        "{ongoing}"
    );

    let disconnect = Event {
        id: DISCONNECT.into(),
        time: "2025-07-10T11:14:38Z".into(),
        ..connect.disconnect(Some(0), "client closed")
    };
    ingest(&server, &admin, &disconnect.line());
    let (second, completed) = feed.next_row();
    assert_eq!(second, 2);
    assert_eq!(completed["id"], CONNECT);
    assert_eq!(completed["ssh_info"]["disconnect_reason"], "client closed");
    assert_eq!(
        completed["ssh_info"]["disconnect_time"],
        "2025-07-10T11:14:38Z"
    );
}

/// Ingests web events `events` (one row each) in requests of `per_request`, on a thread;
/// answers how long it took.
fn producer(
    server: &Arc<Server>,
    token: &str,
    events: std::ops::Range<usize>,
    per_request: usize,
    ua_bytes: usize,
) -> std::thread::JoinHandle<Duration> {
    let (server, token) = (server.clone(), token.to_owned());
    std::thread::spawn(move || {
        let started = Instant::now();
        for first in events.clone().step_by(per_request) {
            let lines: Vec<String> = (first..(first + per_request).min(events.end))
                .map(|n| web_line(n, ORG, ua_bytes))
                .collect();
            ingest(&server, &token, &lines.join("\n"));
        }
        started.elapsed()
    })
}

/// What a client collected across connections: each row's positions, and its last
/// position (where it resumes).
#[derive(Default)]
struct Collected {
    rows: BTreeMap<String, Vec<i64>>,
    order: Vec<i64>,
    resume_at: i64,
}

impl Collected {
    /// Reads `feed` until it ends, `rows` more rows arrived, or every one of `count` has.
    fn read(&mut self, feed: &mut Feed, rows: usize, count: usize) -> Option<Message> {
        let mut taken = 0;
        while taken < rows && self.rows.len() < count {
            match feed.next() {
                None => return None,
                Some(Message::Row { position, row }) => {
                    assert!(
                        position > self.resume_at,
                        "position {position} after {}",
                        self.resume_at
                    );
                    self.rows
                        .entry(row["id"].as_str().unwrap().to_owned())
                        .or_default()
                        .push(position);
                    self.order.push(position);
                    self.resume_at = position;
                    taken += 1;
                }
                Some(Message::Position(p)) => {
                    assert!(p >= self.resume_at);
                    self.resume_at = p;
                }
                Some(Message::KeepAlive | Message::Retry(_)) => {}
                Some(end @ Message::Disconnect { .. }) => return Some(end),
            }
        }
        None
    }

    fn assert_each_once_in_order(&self, count: usize) {
        assert_eq!(self.rows.len(), count, "rows received");
        for n in 0..count {
            let positions = &self.rows[&row_id(n)];
            assert_eq!(positions.len(), 1, "row {n} came at {positions:?}");
        }
        assert!(self.order.windows(2).all(|w| w[0] < w[1]), "out of order");
    }
}

/// The query and headers of a reconnect, from the client's position.
type ResumeRequest = fn(i64) -> (String, Vec<(&'static str, String)>);

/// A producer ingests `COUNT` events in small requests while the client reads part of the
/// stream, drops the connection, and resumes, three times over: it ends with every row
/// exactly once, in position order. `resume` is how the client says where it was.
fn resume_across_dropped_connections(resume: ResumeRequest) {
    const COUNT: usize = 2000;
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Arc::new(Server::start_args(
        data.path(),
        &[],
        &["--watch-heartbeat", "200ms"],
    ));
    let mut collected = Collected::default();
    let mut feed = watch(&server, &admin, "", &[]);
    collected.resume_at = feed.start();
    let producing = producer(&server, &admin, 0..COUNT, 7, 10);
    let mut connections = 1;
    loop {
        assert_eq!(collected.read(&mut feed, 450, COUNT), None);
        if collected.rows.len() == COUNT {
            break;
        }
        drop(feed); // the forced disconnect
        let (query, headers) = resume(collected.resume_at);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        feed = watch(&server, &admin, &query, &headers);
        assert_eq!(feed.start(), collected.resume_at);
        connections += 1;
    }
    producing.join().unwrap();
    assert!(connections >= 4, "{connections} connections");
    collected.assert_each_once_in_order(COUNT);

    // The dropped connections are counted as clients gone (noticed by the next write).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let gone = server.metric("connlog_watch_disconnects_total{reason=\"client_gone\"}");
        if gone.ends_with(&format!(" {}", connections - 1)) {
            break;
        }
        assert!(Instant::now() < deadline, "{gone}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Rows in flight when a connection dropped were sent again after it.
    let sent = server.metric("connlog_watch_messages_sent_total{format=\"sse\"}");
    assert!(
        sent.rsplit(' ').next().unwrap().parse::<usize>().unwrap() >= COUNT,
        "{sent}"
    );
    assert_eq!(
        server.metric("connlog_watchers{format=\"sse\"}"),
        "connlog_watchers{format=\"sse\"} 1"
    );
}

#[test]
fn resuming_with_last_event_id_gives_every_row_once_in_order() {
    resume_across_dropped_connections(|at| {
        (String::new(), vec![("Last-Event-ID", at.to_string())])
    });
}

#[test]
fn resuming_with_after_gives_every_row_once_in_order() {
    resume_across_dropped_connections(|at| (format!("after={at}"), Vec::new()));
}

#[test]
fn last_event_id_wins_over_after() {
    // What an EventSource does: it reconnects to the URL it was given (`after=0` here)
    // with how far it got in the header.
    resume_across_dropped_connections(|at| {
        ("after=0".into(), vec![("Last-Event-ID", at.to_string())])
    });
}

#[test]
fn a_stalled_client_does_not_slow_ingest_then_is_told_where_to_resume() {
    const MAX_LAG: usize = 300;
    // Rows of about 2.5 KB, so that a stalled client's socket buffers fill up.
    const UA: usize = 2000;
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Arc::new(Server::start_args(
        data.path(),
        &[],
        &["--watch-max-lag", &MAX_LAG.to_string()],
    ));
    let mut collected = Collected::default();
    let mut feed = watch(&server, &admin, "", &[]);
    collected.resume_at = feed.start();

    // The client reads nothing while events are ingested until the server has stopped
    // sending to it (its buffers are full), and then MAX_LAG more.
    let sent = || -> u64 {
        let line = server.metric("connlog_watch_messages_sent_total{format=\"sse\"}");
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let started = Instant::now();
    let mut count = 0;
    let mut still = 0;
    let mut last_sent = 0;
    while still < 3 {
        let lines: Vec<String> = (count..count + 50).map(|n| web_line(n, ORG, UA)).collect();
        ingest(&server, &admin, &lines.join("\n"));
        count += 50;
        std::thread::sleep(Duration::from_millis(20));
        let now = sent();
        still = if now == last_sent { still + 1 } else { 0 };
        last_sent = now;
        assert!(
            count < 40_000,
            "the server never stopped sending to a stalled client"
        );
    }
    let past_the_stall = count + MAX_LAG + 100;
    let producing = producer(&server, &admin, count..past_the_stall, 50, UA);
    let ingest_time = producing.join().unwrap();
    eprintln!(
        "stalled client: {past_the_stall} events ingested in {:?} ({last_sent} sent before the stall; the last {} in {ingest_time:?})",
        started.elapsed(),
        past_the_stall - count
    );
    let count = past_the_stall;

    // The client reads again: what was buffered, then the disconnect.
    let end = collected.read(&mut feed, usize::MAX, count);
    let Some(Message::Disconnect { reason, position }) = end else {
        panic!(
            "expected a disconnect, got {end:?} after {} rows",
            collected.rows.len()
        )
    };
    assert_eq!(reason, "lag");
    assert_eq!(
        position, collected.resume_at,
        "the disconnect names the client's position"
    );
    assert!(collected.rows.len() < count);
    assert_eq!(feed.next(), None, "the stream ends after the disconnect");
    assert_eq!(
        server.metric("connlog_watch_disconnects_total{reason=\"lag\"}"),
        "connlog_watch_disconnects_total{reason=\"lag\"} 1"
    );

    // It resumes from there, far behind, and catches up with everything exactly once.
    let mut feed = watch(&server, &admin, &format!("after={position}"), &[]);
    assert_eq!(feed.start(), position);
    assert_eq!(collected.read(&mut feed, usize::MAX, count), None);
    collected.assert_each_once_in_order(count);

    // A client that stops reading a stream the server cannot finish writing does not hold
    // up a stop for more than its grace period (5 s).
    let stalled = watch(&server, &admin, "after=0", &[]);
    let mut last_sent = sent();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = sent();
        if now == last_sent {
            break;
        }
        last_sent = now;
    }
    let server = Arc::into_inner(server).expect("the producer is done");
    let stopping = Instant::now();
    assert!(server.stop().success());
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(9), "stopping took {took:?}");
    drop(stalled);
}

#[test]
fn stopping_the_server_ends_every_stream() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());
    let mut sse = watch(&server, &admin, "", &[]);
    let mut ndjson = watch(&server, &admin, "format=ndjson", &[]);
    sse.start();
    ndjson.start();
    ingest(&server, &admin, &sample_events());
    sse.next_row();
    let stopping = Instant::now();
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(4),
        "stopping took {:?}",
        stopping.elapsed()
    );
    for feed in [&mut sse, &mut ndjson] {
        let end = loop {
            match feed.next() {
                Some(Message::Row { .. } | Message::Position(_) | Message::KeepAlive) => {}
                other => break other,
            }
        };
        assert_eq!(
            end,
            Some(Message::Disconnect {
                reason: "shutdown".into(),
                position: 3
            })
        );
        assert_eq!(feed.next(), None);
    }
}
