//! Snapshots shared between replicas (`connlog.snapshots`): the newest one of each plugin
//! build (of the two newest builds), so that a new replica loads it and replays only the
//! events after it.

use anyhow::Context;

use super::{PURGE_GENERATION, PgStore, schema};

/// A shared snapshot's record: the plugin build that wrote it, the shared journal position
/// it holds exactly (every event with `seq <= mark`, no other), the purges it includes (the
/// purge generation, `PgStore::forget`), and what its chunks must add up to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedSnapshot {
    pub plugin_digest: String,
    pub mark: i64,
    pub purges: i64,
    pub rows: u64,
    pub bytes: u64,
    pub chunks: u64,
    /// SHA-256 of the chunks' bytes, in order, as the embedded store records it.
    pub sha256: String,
}

/// Chunks fetched per query: a few megabytes at a time, never the whole snapshot.
const FETCH_CHUNKS: i64 = 8;

/// The plugin builds whose shared snapshots are kept: the publishing one and the newest
/// other (by the journal position its snapshot holds).
const KEEP_BUILDS: i64 = 2;

impl PgStore {
    /// Stores `snapshot` as its build's shared one, its chunks read from `next_chunk`
    /// until `None`, all in one transaction: replaced only if the stored one is older, and
    /// only if no purge it does not include has deleted events (it would hold rows that
    /// purge removed).
    /// Returns whether it was stored. An error from `next_chunk` leaves the old one.
    pub fn publish_snapshot(
        &mut self,
        snapshot: &SharedSnapshot,
        next_chunk: &mut dyn FnMut() -> anyhow::Result<Option<Vec<u8>>>,
    ) -> anyhow::Result<bool> {
        let mut tx = self.client.transaction()?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&schema::SNAPSHOT_LOCK],
        )?;
        let generation: i64 = tx.query_one(PURGE_GENERATION, &[])?.get(0);
        if generation != snapshot.purges {
            return Ok(false);
        }
        // A stale one (older than a purge) is replaced whatever its position.
        let current: Option<i64> = tx
            .query_opt(
                "SELECT mark FROM connlog.snapshots WHERE plugin_digest = $1 AND purges = $2",
                &[&snapshot.plugin_digest, &generation],
            )?
            .map(|row| row.get(0));
        if current.is_some_and(|mark| mark >= snapshot.mark) {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM connlog.snapshots WHERE plugin_digest = $1",
            &[&snapshot.plugin_digest],
        )?;
        // Besides this build's, only the newest other build's stays (a rolling upgrade runs
        // two at a time): the snapshots of builds no replica runs any more (hundreds of
        // megabytes each at 10M rows) would otherwise stay for as long as no purge makes
        // them stale, forever with retention off. A replica of a dropped build replays.
        tx.execute(
            "DELETE FROM connlog.snapshots WHERE plugin_digest <> $1 AND plugin_digest NOT IN \
             (SELECT plugin_digest FROM connlog.snapshots WHERE plugin_digest <> $1 \
              ORDER BY mark DESC, plugin_digest LIMIT $2)",
            &[&snapshot.plugin_digest, &(KEEP_BUILDS - 1)],
        )?;
        tx.execute(
            "INSERT INTO connlog.snapshots \
             (plugin_digest, mark, purges, rows, bytes, chunks, sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &snapshot.plugin_digest,
                &snapshot.mark,
                &snapshot.purges,
                &i64::try_from(snapshot.rows)?,
                &i64::try_from(snapshot.bytes)?,
                &i64::try_from(snapshot.chunks)?,
                &snapshot.sha256,
            ],
        )?;
        let insert = tx.prepare(
            "INSERT INTO connlog.snapshot_chunks (plugin_digest, n, bytes) VALUES ($1, $2, $3)",
        )?;
        let mut n: i64 = 0;
        while let Some(chunk) = next_chunk()? {
            tx.execute(&insert, &[&snapshot.plugin_digest, &n, &chunk])?;
            n += 1;
        }
        anyhow::ensure!(
            u64::try_from(n)? == snapshot.chunks,
            "the snapshot has {n} chunks, not the {} recorded",
            snapshot.chunks
        );
        // Checked again, holding the row until the commit: a purge committed meanwhile
        // makes this one stale; one that comes later waits, then makes it stale.
        let generation: i64 = tx
            .query_one(&format!("{PURGE_GENERATION} FOR SHARE"), &[])?
            .get(0);
        if generation != snapshot.purges {
            return Ok(false);
        }
        tx.commit()?;
        Ok(true)
    }

    /// Deletes the shared snapshots a purge made stale (they hold rows it removed).
    pub fn drop_stale_snapshots(&mut self) -> anyhow::Result<u64> {
        Ok(self.client.execute(
            &format!("DELETE FROM connlog.snapshots WHERE purges < ({PURGE_GENERATION})"),
            &[],
        )?)
    }

    /// The shared snapshot of this plugin build (unless a purge made it stale), its chunks handed to `write_chunk` in
    /// order, all read in one transaction (a snapshot published meanwhile is not mixed
    /// in). `None` when there is none. The caller checks the chunks against the record.
    pub fn fetch_snapshot(
        &mut self,
        plugin_digest: &str,
        write_chunk: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<Option<SharedSnapshot>> {
        let mut tx = self
            .client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let Some(row) = tx.query_opt(
            &format!(
                "SELECT mark, purges, rows, bytes, chunks, sha256 FROM connlog.snapshots \
                 WHERE plugin_digest = $1 AND purges = ({PURGE_GENERATION})"
            ),
            &[&plugin_digest],
        )?
        else {
            return Ok(None);
        };
        let count = |i: usize| -> anyhow::Result<u64> {
            let n: i64 = row.try_get(i)?;
            u64::try_from(n).context("a negative count in connlog.snapshots")
        };
        let snapshot = SharedSnapshot {
            plugin_digest: plugin_digest.to_string(),
            mark: row.try_get(0)?,
            purges: row.try_get(1)?,
            rows: count(2)?,
            bytes: count(3)?,
            chunks: count(4)?,
            sha256: row.try_get(5)?,
        };
        let select = tx.prepare(
            "SELECT bytes FROM connlog.snapshot_chunks \
             WHERE plugin_digest = $1 AND n >= $2 AND n < $3 ORDER BY n",
        )?;
        let total = i64::try_from(snapshot.chunks)?;
        let mut from = 0;
        while from < total {
            for row in tx.query(&select, &[&plugin_digest, &from, &(from + FETCH_CHUNKS)])? {
                write_chunk(row.try_get(0)?)?;
            }
            from += FETCH_CHUNKS;
        }
        tx.commit()?;
        Ok(Some(snapshot))
    }
}
