//! The auditor's page on a big store: the server time of each request its first render
//! makes (the page, its assets, `users/me`, the first list page) and of the requests its
//! filters and pager make; then the live feed's delay from an ingest's acknowledgement to
//! the row arriving on a Server-Sent Events stream.
//!
//! `cargo bench -p connlog --bench page` (`CONNLOG_BENCH_ROWS=1000000,10000000` for other
//! sizes, `CONNLOG_BENCH_DIR` for where the store goes). Times are wall times of one HTTP
//! request on loopback over a kept-alive connection (what the server spends plus about
//! 0.1 ms of loopback), median and 99th percentile of `RUNS`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use connlog::events::event_to_line;

const RUNS: usize = 50;
/// Feed messages timed.
const FEED_EVENTS: u64 = 300;

fn main() {
    support::for_each_size(run);
}

struct Server {
    child: Child,
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn get(&self, path: &str) -> (Duration, usize) {
        let started = Instant::now();
        let mut response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Coder-Session-Token", &self.token)
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let body = response.body_mut().read_to_vec().unwrap();
        (started.elapsed(), body.len())
    }

    fn text(&self, path: &str) -> String {
        let mut response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Coder-Session-Token", &self.token)
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        response.body_mut().read_to_string().unwrap()
    }
}

fn start(data: &Path) -> Server {
    let token = support::admin_token(data);
    let started = Instant::now();
    let (child, base) = support::serve(data);
    println!("serve: started in {:.1} s", started.elapsed().as_secs_f64());
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(true)
        .build()
        .new_agent();
    Server {
        child,
        base,
        token,
        agent,
    }
}

/// The assets the page loads, in order: those its HTML names, then the modules they import
/// (`from "./x.js"`, beside the importer), transitively.
fn assets(server: &Server) -> Vec<String> {
    let quoted = |text: &str| -> Vec<String> {
        text.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let mut found: Vec<String> = quoted(&server.text("/connectionlog"))
        .into_iter()
        .filter(|part| part.starts_with("/connectionlog/assets/"))
        .collect();
    found.dedup();
    let mut next = 0;
    while next < found.len() {
        let asset = found[next].clone();
        next += 1;
        if !asset.ends_with(".js") {
            continue;
        }
        let dir = &asset[..=asset.rfind('/').unwrap()];
        for import in quoted(&server.text(&asset)) {
            if let Some(name) = import.strip_prefix("./") {
                let path = format!("{dir}{name}");
                if !found.contains(&path) {
                    found.push(path);
                }
            }
        }
    }
    found
}

fn percentiles(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let p99 = times[(times.len() * 99).div_ceil(100) - 1];
    (ms(times[times.len() / 2]), ms(p99))
}

fn time_requests(server: &Server, label: &str, path: &str) {
    server.get(path);
    let mut times = Vec::with_capacity(RUNS);
    let mut bytes = 0;
    for _ in 0..RUNS {
        let (took, size) = server.get(path);
        times.push(took);
        bytes = size;
    }
    let (median, p99) = percentiles(times);
    let count = if path.starts_with("/api/v2/connectionlog?") {
        let body: serde_json::Value = serde_json::from_str(&server.text(path)).unwrap();
        format!(", count {}", body["count"])
    } else {
        String::new()
    };
    println!("{label:<44} median {median:>7.2} ms  p99 {p99:>7.2} ms  ({bytes} bytes{count})");
}

fn run(data: &Path, rows: u64) {
    println!("== {rows} rows ==");
    let started = Instant::now();
    let events = support::fill_store(data, rows);
    println!(
        "journal written: {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let server = start(data);

    println!("-- the first render --");
    time_requests(&server, "GET /connectionlog (the page)", "/connectionlog");
    for asset in assets(&server) {
        time_requests(&server, &format!("GET {asset}"), &asset);
    }
    time_requests(&server, "GET /api/v2/users/me", "/api/v2/users/me");
    time_requests(
        &server,
        "first page: limit=25, no filter",
        "/api/v2/connectionlog?limit=25&offset=0&q=",
    );
    println!("-- filters and pages --");
    for (label, query) in [
        (
            "preset Active SSH connections",
            "limit=25&q=status%3Aongoing%20method%3Assh",
        ),
        ("method menu: SSH", "limit=25&q=method%3Assh"),
        (
            "method:ssh status:completed",
            "limit=25&q=method%3Assh%20status%3Acompleted",
        ),
        (
            "a time range (one day)",
            "limit=25&q=connected_after%3A%222025-06-16T00%3A00%3A00Z%22%20connected_before%3A%222025-06-17T00%3A00%3A00Z%22",
        ),
        ("page 400 of 25", "limit=25&offset=9975&q="),
        ("page size 100", "limit=100&q="),
    ] {
        time_requests(&server, label, &format!("/api/v2/connectionlog?{query}"));
    }

    println!("-- the live feed --");
    feed_delay(&server, rows);
}

/// Ingests `FEED_EVENTS` web rows one request at a time while a Server-Sent Events client
/// reads the feed; reports the delay from each acknowledgement to the row's arrival.
fn feed_delay(server: &Server, rows: u64) {
    let (arrived, arrivals) = mpsc::channel::<(String, Instant)>();
    let url = format!("{}/api/v2/connectionlog/watch", server.base);
    let token = server.token.clone();
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(None)
            .build()
            .new_agent();
        let mut response = agent
            .get(&url)
            .header("Coder-Session-Token", &token)
            .call()
            .expect("the feed");
        let reader = BufReader::new(response.body_mut().as_reader());
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if let Some(data) = line.strip_prefix("data: ") {
                let row: serde_json::Value = serde_json::from_str(data).unwrap();
                let id = row["id"].as_str().unwrap_or_default().to_owned();
                if arrived.send((id, Instant::now())).is_err() {
                    return;
                }
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut from_ack = Vec::new();
    let mut from_send = Vec::new();
    for i in 0..FEED_EVENTS {
        let n = rows + 1 + 2 * i;
        let event = support::row_events_at(n, support::T0 + (n as i64) * 1_000_000_000).remove(0);
        let line = event_to_line(&event);
        let sent = Instant::now();
        server
            .agent
            .post(format!("{}/api/v2/connectionlog/ingest", server.base))
            .header("Coder-Session-Token", &server.token)
            .send(line.as_bytes())
            .expect("ingest");
        let acked = Instant::now();
        let want = event.id.to_string();
        loop {
            let (id, at) = arrivals
                .recv_timeout(Duration::from_secs(10))
                .expect("the row arrives on the feed");
            if id == want {
                from_ack.push(at.saturating_duration_since(acked));
                from_send.push(at - sent);
                break;
            }
        }
    }
    // The row usually reaches the stream before the acknowledgement reaches the client.
    let before_ack = from_ack.iter().filter(|d| d.is_zero()).count();
    let (median, p99) = percentiles(from_ack);
    println!(
        "feed: acknowledgement -> SSE message        median {median:>7.2} ms  p99 {p99:>7.2} ms  ({before_ack} of {FEED_EVENTS} arrived before their acknowledgement)"
    );
    let (median, p99) = percentiles(from_send);
    println!(
        "feed: ingest request sent -> SSE message    median {median:>7.2} ms  p99 {p99:>7.2} ms"
    );
}
