//! `connlog migrate` into a private PostgreSQL cluster, through the real binary: every event
//! arrives with its sequence number and content, the directory with it, the sequence goes on
//! above every number ever handed out, and each refusal names its cause and writes nothing.

mod support;

use std::path::Path;
use std::process::Output;

use connlog::model::ConnectionEvent;
use connlog::owner::DirectoryLock;
use connlog::service::store_path;
use connlog::store::Journal;
use connlog::store::postgres::{self, PgStore};
use support::postgres::PrivateCluster;
use support::*;

/// A small simulated deployment in `data` (directory file included).
fn simulated(data: &Path) {
    let out = connlog(
        data,
        &[
            "simulate",
            "--events",
            "1500",
            "--users",
            "12",
            "--workspaces",
            "15",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn migrate(from: &Path, to: &str) -> Output {
    let from = from.display().to_string();
    connlog(
        Path::new(&from),
        &["migrate", "--from", &from, "--to", to],
        None,
    )
}

fn journal_events(journal: &Journal) -> Vec<(i64, ConnectionEvent)> {
    let mut events = Vec::new();
    journal
        .for_each_event(0, i64::MAX, |seq, e| {
            events.push((seq, e.map_text(|s| s.to_string())));
            Ok(())
        })
        .unwrap();
    events
}

fn pg(url: &str) -> PgStore {
    PgStore::open(&postgres::parse_url(url).unwrap()).unwrap()
}

fn pg_events(url: &str) -> Vec<(i64, ConnectionEvent)> {
    let mut events = Vec::new();
    pg(url)
        .for_each_event(|seq, e| {
            events.push((seq, e.map_text(|s| s.to_string())));
            Ok(())
        })
        .unwrap();
    events
}

#[test]
fn every_event_arrives_with_its_seq_and_the_sequence_goes_on_above_the_high_water() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("copy");
    let data = tempfile::tempdir().unwrap();
    simulated(data.path());
    // Forget the newest row, so that the highest `seq` ever handed out is above the last
    // one stored: a copy must not hand those numbers out again.
    let (events, high_water) = {
        let mut journal = Journal::open(&store_path(data.path())).unwrap();
        let last = journal.last_seq().unwrap();
        let newest = journal.origins_between(last - 1, last, 1).unwrap();
        journal.begin().unwrap();
        assert!(journal.forget(&[newest[0].1.clone()]).unwrap() >= 1);
        journal.commit().unwrap();
        assert!(journal.last_seq().unwrap() < journal.high_water().unwrap());
        (journal_events(&journal), journal.high_water().unwrap())
    };
    assert!(events.len() > 1000, "{}", events.len());

    let out = migrate(data.path(), &url);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["events"], events.len() as u64);
    assert_eq!(report["first_seq"], events[0].0);
    assert_eq!(report["last_seq"], events.last().unwrap().0);
    assert_eq!(report["directory"], true);
    assert_eq!(
        report["to"],
        format!("postgres@{}:5432/copy", cluster.socket_dir().display())
    );

    assert_eq!(pg_events(&url), events, "the same events, seq for seq");
    let directory = std::fs::read_to_string(data.path().join("directory.json")).unwrap();
    assert_eq!(pg(&url).directory().unwrap(), Some(directory));
    let next: i64 = cluster
        .client("copy")
        .query_one(
            "SELECT nextval(pg_get_serial_sequence('connlog.events', 'seq'))",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(next, high_water + 1);
    // The data directory is left as it was.
    let journal = Journal::open(&store_path(data.path())).unwrap();
    assert_eq!(journal_events(&journal), events);
}

#[test]
fn a_second_copy_into_the_same_database_is_refused_and_changes_nothing() {
    let cluster = PrivateCluster::start();
    let first = cluster.create_database("first");
    let other = cluster.create_database("other");
    let data = tempfile::tempdir().unwrap();
    simulated(data.path());
    assert_eq!(migrate(data.path(), &first).status.code(), Some(0));
    let before = pg_events(&first);

    let again = migrate(data.path(), &first);
    assert_eq!(again.status.code(), Some(4), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already holds connlog data"),
        "{}",
        stderr(&again)
    );
    assert_eq!(pg_events(&first), before);
    // Another database takes the same store.
    assert_eq!(migrate(data.path(), &other).status.code(), Some(0));
    assert_eq!(pg_events(&other), before);
}

#[test]
fn refusals_name_their_cause_and_write_nothing() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("target");
    let good = tempfile::tempdir().unwrap();
    simulated(good.path());

    let no_store = tempfile::tempdir().unwrap();
    let damaged = tempfile::tempdir().unwrap();
    simulated(damaged.path());
    let store = store_path(damaged.path());
    let mut bytes = std::fs::read(&store).unwrap();
    let middle = bytes.len() / 3;
    bytes[middle..2 * middle].fill(0xA5);
    std::fs::write(&store, bytes).unwrap();
    let bad_directory = tempfile::tempdir().unwrap();
    simulated(bad_directory.path());
    std::fs::write(bad_directory.path().join("directory.json"), "{").unwrap();
    let nobody_listens = format!(
        "host={} user=postgres dbname=target",
        cluster.socket_dir().join("elsewhere").display()
    );

    let cases: [(&str, &Path, &str, i32, &str); 5] = [
        (
            "a malformed connection string",
            good.path(),
            "postgres://[::1",
            2,
            "--to: not a PostgreSQL connection string",
        ),
        (
            "no server",
            good.path(),
            &nobody_listens,
            4,
            "cannot connect to PostgreSQL at postgres@",
        ),
        (
            "no store",
            no_store.path(),
            &url,
            4,
            "holds no connlog store",
        ),
        ("a damaged store", damaged.path(), &url, 4, "cannot be used"),
        (
            "a directory file the server would refuse",
            bad_directory.path(),
            &url,
            4,
            "directory.json",
        ),
    ];
    for (case, from, to, code, message) in cases {
        let out = migrate(from, to);
        assert_eq!(out.status.code(), Some(code), "{case}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{case}: {}", stderr(&out));
        assert_eq!(cluster.connlog_events("target").unwrap_or(0), 0, "{case}");
    }

    // A directory its server owns.
    let lock = DirectoryLock::try_acquire(good.path(), "serve").unwrap();
    let out = migrate(good.path(), &url);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("in use by") && stderr(&out).contains("stop it before migrating"),
        "{}",
        stderr(&out)
    );
    drop(lock);

    // A database holding another version of connlog's schema.
    assert_eq!(migrate(good.path(), &url).status.code(), Some(0));
    let future = cluster.create_database("future");
    pg(&future);
    cluster
        .client("future")
        .execute(
            "UPDATE connlog.meta SET value = '99' WHERE key = 'schema_version'",
            &[],
        )
        .unwrap();
    let out = migrate(good.path(), &future);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("connlog schema version 99 is not supported"),
        "{}",
        stderr(&out)
    );
    assert_eq!(cluster.connlog_events("future"), Some(0));

    // A database at schema version 1 (before shared snapshots) is completed, not refused.
    let older = cluster.create_database("older");
    pg(&older);
    cluster
        .client("older")
        .batch_execute(
            "DROP TABLE connlog.snapshot_chunks, connlog.snapshots; \
             UPDATE connlog.meta SET value = '1' WHERE key = 'schema_version'",
        )
        .unwrap();
    let out = migrate(good.path(), &older);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut client = cluster.client("older");
    let version: String = client
        .query_one(
            "SELECT value FROM connlog.meta WHERE key = 'schema_version'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(version, "2");
    let shared: i64 = client
        .query_one("SELECT count(*) FROM connlog.snapshots", &[])
        .unwrap()
        .get(0);
    assert_eq!(shared, 0);
}
