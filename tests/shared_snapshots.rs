//! The snapshots replicas share on PostgreSQL (`connlog.snapshots`): one per plugin build,
//! kept for the publishing build and the newest other one only, so that the snapshots of
//! builds no replica runs any more do not stay in the database for ever.

mod support;

use connlog::store::postgres::{self, PgStore, SharedSnapshot};
use support::postgres::PrivateCluster;

const CHUNKS: [&[u8]; 2] = [b"first chunk", b"second"];

fn publish(pg: &mut PgStore, digest: &str, mark: i64) -> bool {
    let snapshot = SharedSnapshot {
        plugin_digest: digest.to_string(),
        mark,
        purges: 0,
        rows: 1,
        bytes: CHUNKS.iter().map(|c| c.len() as u64).sum(),
        chunks: CHUNKS.len() as u64,
        sha256: "not checked here".to_string(),
    };
    let mut chunks = CHUNKS.iter().map(|c| c.to_vec());
    pg.publish_snapshot(&snapshot, &mut || Ok(chunks.next()))
        .unwrap()
}

/// The builds holding a shared snapshot, with its position, and the chunks stored in all.
fn shared(cluster: &PrivateCluster) -> (Vec<(String, i64)>, i64) {
    let mut client = cluster.client("snapshots");
    let builds = client
        .query(
            "SELECT plugin_digest, mark FROM connlog.snapshots ORDER BY plugin_digest",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let chunks = client
        .query_one("SELECT count(*) FROM connlog.snapshot_chunks", &[])
        .unwrap()
        .get(0);
    (builds, chunks)
}

fn builds(list: &[(&str, i64)]) -> (Vec<(String, i64)>, i64) {
    let builds = list.iter().map(|&(d, m)| (d.to_string(), m)).collect();
    (builds, 2 * list.len() as i64)
}

#[test]
fn only_the_publishing_build_and_the_newest_other_keep_a_shared_snapshot() {
    let cluster = PrivateCluster::start();
    let url = cluster.create_database("snapshots");
    let mut pg = PgStore::open(&postgres::parse_url(&url).unwrap()).unwrap();

    assert!(publish(&mut pg, "a", 10));
    assert!(publish(&mut pg, "b", 20));
    assert_eq!(shared(&cluster), builds(&[("a", 10), ("b", 20)]));

    // A third build: the oldest snapshot goes, chunks and all.
    assert!(publish(&mut pg, "c", 30));
    assert_eq!(shared(&cluster), builds(&[("b", 20), ("c", 30)]));

    // A replica of the oldest build still runs and publishes: its own stays, beside the
    // newest other build's.
    assert!(publish(&mut pg, "a", 25));
    assert_eq!(shared(&cluster), builds(&[("a", 25), ("c", 30)]));

    // A build's older snapshot never replaces its newer one, and drops nothing.
    assert!(!publish(&mut pg, "c", 29));
    assert_eq!(shared(&cluster), builds(&[("a", 25), ("c", 30)]));

    assert!(publish(&mut pg, "c", 40));
    assert_eq!(shared(&cluster), builds(&[("a", 25), ("c", 40)]));
}
