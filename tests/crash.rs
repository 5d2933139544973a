//! Crash tests: a child `connlog serve` ingests continuously through
//! `POST /api/v2/connectionlog/ingest` and is killed with SIGKILL at random points, over
//! many trials. After each kill: every acknowledged event is in the store, the store passes
//! SQLite's `integrity_check`, and the restarted process answers with exactly the events
//! the store holds. The same trials run against a replica on PostgreSQL (`--store`), whose
//! store is the shared one.
//!
//! More trials, another seed:
//!
//! ```sh
//! CONNLOG_CRASH_TRIALS=100 CONNLOG_CRASH_SEED=7 cargo test -p connlog --test crash -- --nocapture
//! ```
//!
//! The interface it relies on: `connlog --data DIR serve --listen ADDR`,
//! `GET /healthz`, and `POST /api/v2/connectionlog/ingest` with an owner's token in
//! `Coder-Session-Token` and an NDJSON body, answering 200
//! `{"accepted":N,"rejected":[…]}` only once the events are durable.

mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;

/// A small deterministic generator (xorshift64*), so a failing trial can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where the crash test's server keeps its events: the embedded store, or a replica's
/// shared store in PostgreSQL (a connection string).
#[derive(Clone, Copy)]
enum Store<'a> {
    Embedded,
    Postgres(&'a str),
}

/// `connlog serve`, its log appended to `log`.
fn spawn_serve(data: &Path, port: u16, store: Store<'_>, log: &Path) -> Child {
    let mut command = connlog_command(data);
    command.args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
    if let Store::Postgres(url) = store {
        command.args(["--store", url]);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    command
        .env("CONNLOG_LOG", "warn,connlog::service=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawning connlog serve")
}

/// How the starts logged in `log` made sure the store file was sound, by kind.
fn store_checks(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|line| line.split("store_check=").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCoder-Session-Token: {token}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("incomplete response"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
}

fn wait_healthy(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok((200, _)) = http(port, "GET", "/healthz", "", "") {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("connlog serve exited before it was healthy: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "connlog serve never became healthy"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn event_id(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// Web events (one row each) with ids from a counter, so each id is known.
fn batch_body(first: u64, len: u64) -> String {
    (first..first + len)
        .map(|n| {
            event_line(
                &event_id(n),
                "2025-07-10T10:14:38.942776145Z",
                ORG,
                "workspace_app",
                None,
                "connected",
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every event id the store holds: for a replica, what PostgreSQL holds (after its local
/// copy passed the same check).
fn stored_ids_in(data: &Path, store: Store<'_>) -> HashSet<String> {
    let local = stored_ids(data);
    let Store::Postgres(url) = store else {
        return local;
    };
    let mut client = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
    client
        .query("SELECT id FROM connlog.events", &[])
        .unwrap()
        .iter()
        .map(|row| row.get::<_, uuid::Uuid>(0).to_string())
        .collect()
}

/// Every event id in the store, read the way the next start would (WAL recovery), after
/// checking the file with SQLite's `integrity_check`. Read-only: a read-write connection
/// closing last would checkpoint the WAL into the file, another writer's change that
/// would withdraw the file's seal.
fn stored_ids(data: &Path) -> HashSet<String> {
    let conn = rusqlite::Connection::open_with_flags(
        data.join("connlog.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("the store opens");
    let check: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(check, ["ok"], "integrity_check after a kill");
    let mut stmt = conn.prepare("SELECT id FROM events").unwrap();
    stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|id| uuid::Uuid::from_slice(&id.unwrap()).unwrap().to_string())
        .collect()
}

#[test]
fn acknowledged_events_survive_sigkill_at_random_points() {
    sigkill_at_random_points(Store::Embedded, env_u64("CONNLOG_CRASH_TRIALS", 25));
}

/// The same trials against a replica whose shared store is a private PostgreSQL cluster:
/// acknowledged means committed there.
#[test]
fn acknowledged_events_survive_sigkill_at_random_points_on_postgres() {
    let cluster = support::postgres::PrivateCluster::start();
    let url = cluster.create_database("crash");
    sigkill_at_random_points(
        Store::Postgres(&url),
        env_u64("CONNLOG_CRASH_TRIALS", 25) / 2,
    );
}

fn sigkill_at_random_points(store: Store<'_>, trials: u64) {
    let seed = env_u64("CONNLOG_CRASH_SEED", 0x00c0_ffee);
    eprintln!("crash test: {trials} trials, seed {seed} (CONNLOG_CRASH_SEED to replay)");
    let mut rng = Rng(seed | 1);

    let data = data_dir();
    let directory_path = data.path().join("directory.json");
    let mut directory = connlog::directory::Directory::load(&directory_path).unwrap();
    let token = directory.create_token("admin").unwrap();
    directory.save(&directory_path).unwrap();

    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("serve.log");
    let mut acknowledged: HashSet<String> = HashSet::new();
    let mut next_id = 1u64;
    for trial in 0..trials {
        let port = free_port();
        let mut child = spawn_serve(data.path(), port, store, &log);
        wait_healthy(port, &mut child);

        // The restarted server answers with exactly what the store holds.
        let (status, body) =
            http(port, "GET", "/api/v2/connectionlog?limit=1", &token, "").unwrap();
        assert_eq!(status, 200, "{body}");
        let count = serde_json::from_str::<serde_json::Value>(&body).unwrap()["count"]
            .as_u64()
            .unwrap();
        assert!(
            count >= acknowledged.len() as u64,
            "trial {trial}: rows went missing"
        );

        // Post batches continuously from another thread; record what is acknowledged.
        let stop = Arc::new(AtomicBool::new(false));
        let acked_now = Arc::new(Mutex::new(Vec::<String>::new()));
        let first_id = next_id;
        let poster = {
            let (stop, acked_now, token) = (stop.clone(), acked_now.clone(), token.clone());
            let mut rng = Rng(rng.next() | 1);
            std::thread::spawn(move || {
                let mut n = first_id;
                while !stop.load(Ordering::Relaxed) {
                    let len = rng.below(200) + 1;
                    let body = batch_body(n, len);
                    match http(port, "POST", "/api/v2/connectionlog/ingest", &token, &body) {
                        Ok((200, answer)) => {
                            let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
                            assert_eq!(answer["accepted"], len, "{answer}");
                            acked_now.lock().unwrap().extend((n..n + len).map(event_id));
                        }
                        Ok((status, answer)) => panic!("ingest answered {status}: {answer}"),
                        // The server was killed mid-request: not acknowledged.
                        Err(_) => break,
                    }
                    n += len;
                }
                n
            })
        };

        // Kill at a random point: sometimes at once, sometimes after a while.
        let wait = match rng.below(4) {
            0 => rng.below(20),
            1 => rng.below(200),
            _ => 200 + rng.below(1500),
        };
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        next_id = poster.join().expect("the poster thread");
        acknowledged.extend(acked_now.lock().unwrap().drain(..));

        let stored = stored_ids_in(data.path(), store);
        let missing: Vec<_> = acknowledged.difference(&stored).take(5).collect();
        assert!(
            missing.is_empty(),
            "trial {trial} (seed {seed}): acknowledged events lost after SIGKILL: {missing:?}"
        );
        eprintln!(
            "trial {trial}: killed after {wait} ms; {} acknowledged, {} stored",
            acknowledged.len(),
            stored.len()
        );
    }

    // A last start: the rows are exactly the stored events (one web row each).
    let stored = stored_ids_in(data.path(), store);
    let port = free_port();
    let mut child = spawn_serve(data.path(), port, store, &log);
    wait_healthy(port, &mut child);
    let (status, body) = http(port, "GET", "/api/v2/connectionlog?limit=1", &token, "").unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, 200, "{body}");
    let count = serde_json::from_str::<serde_json::Value>(&body).unwrap()["count"]
        .as_u64()
        .unwrap();
    assert_eq!(count, stored.len() as u64);

    // The starts after a kill trusted the file as sealed at its last checkpoint (unless the
    // kill landed inside a checkpoint), and `integrity_check` found each of those files
    // sound before the start trusted it.
    let checks = store_checks(&log);
    assert_eq!(
        checks.len() as u64,
        trials + 1,
        "one logged check per start"
    );
    assert_eq!(checks[0], "WholeFile", "a new store has no seal");
    let sealed = checks.iter().filter(|c| *c == "LastCheckpoint").count() as u64;
    eprintln!("starts after a kill that trusted the seal: {sealed} of {trials}");
    assert!(sealed >= trials / 2, "{checks:?}");
}

/// Following a log: a writer appends Coder's service-log lines without pause (and rotates
/// the file once) while `connlog serve --follow` is killed with SIGKILL at random points and
/// started again. In the end every line written is stored, exactly once.
#[test]
fn every_line_of_a_followed_log_survives_sigkill_of_the_follower() {
    let trials = env_u64("CONNLOG_CRASH_TRIALS", 25) / 2 + 1;
    let seed = env_u64("CONNLOG_CRASH_SEED", 0x00c0_ffee);
    let mut rng = Rng(seed | 3);
    let data = data_dir();
    let log = data.path().join("coder.json");
    let rotate = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (log, rotate, stop) = (log.clone(), rotate.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 1u64;
            while !stop.load(Ordering::Relaxed) {
                if rotate.swap(false, Ordering::Relaxed) {
                    std::fs::rename(&log, log.with_extension("json.1")).unwrap();
                }
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap();
                let lines: String = (n..n + 20)
                    .map(|i| {
                        format!(
                            "{{\"msg\":\"connection_log\",\"level\":\"INFO\",\"fields\":{}}}\n",
                            batch_body(i, 1)
                        )
                    })
                    .collect();
                file.write_all(lines.as_bytes()).unwrap();
                n += 20;
                std::thread::sleep(Duration::from_millis(5));
            }
            n - 1
        })
    };
    let follow = |port: u16| {
        connlog_command(data.path())
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--follow",
            ])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning connlog serve --follow")
    };
    for trial in 0..trials {
        if trial == trials / 2 {
            rotate.store(true, Ordering::Relaxed);
        }
        let port = free_port();
        let mut child = follow(port);
        wait_healthy(port, &mut child);
        std::thread::sleep(Duration::from_millis(rng.below(800)));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        // The store passes SQLite's integrity check after each kill.
        stored_ids(data.path());
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    // A last start catches up with everything written, and then holds exactly that.
    let port = free_port();
    let mut child = follow(port);
    wait_healthy(port, &mut child);
    let expected: HashSet<String> = (1..=written).map(event_id).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored_ids(data.path()).len() < expected.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        stored_ids(data.path()),
        expected,
        "every line written, stored once"
    );
}

/// Damage is reported, never accepted: a store torn in the middle makes the next start
/// fail with a clear message naming the file (this part needs no server).
#[test]
fn a_torn_store_is_reported_by_the_next_start() {
    let data = data_dir();
    let lines: Vec<String> = (1..=3000).map(|n| batch_body(n, 1)).collect();
    let output = connlog(data.path(), &["ingest", "-"], Some(&lines.join("\n")));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let db = data.path().join("connlog.db");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len * 2 / 3)
        .unwrap();
    let output = connlog(data.path(), &["query", "--as", "admin"], None);
    assert_ne!(output.status.code(), Some(0));
    let message = stderr(&output);
    assert!(message.contains("connlog.db"), "{message}");
    assert!(
        message.contains("damaged") || message.contains("malformed"),
        "{message}"
    );
}
