//! Which event ids the journal may hold, in memory, so that an ingest group's `append`
//! reads the store only for the few ids it may already hold (`Journal::append`).
//!
//! A Bloom filter of every stored id: "not held" is certain, "maybe held" is answered by
//! reading the store (about one id in a hundred that is not held). Purged ids stay in it,
//! which costs only such reads. It is blocked: the bits of one id lie in one 64-byte block,
//! so that a look-up costs one cache miss whatever the filter's size. It grows by layers
//! (each half the capacity so far), and past `MAX_LAYERS` it is built again from the
//! store as one. At 10 bits per id of capacity it costs about 25 MB at 10M rows (16M
//! events).
//!
//! It covers exactly the ids with `seq <= covers`. It is built from the store the first
//! time it is wanted: at once for a small store, else on a thread of its own while the
//! ingest groups read the store for every id. Each ingest group adds what it committed,
//! and the events stored another way (another writer, a replica's copy) are read from the
//! store by `seq` before the next group.

use std::path::Path;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

use rusqlite::{Connection, OpenFlags};

use crate::model::Uuid;

/// Bits per id of a layer's capacity: about 1 % false positives with `PROBES` bits set per
/// id in 512-bit blocks.
const BITS_PER_ID: usize = 10;
const PROBES: u32 = 7;
/// The first layer's smallest capacity, in ids.
const MIN_CAPACITY: usize = 1 << 16;
/// Layers beyond which the filter is built again from the store, as one layer.
const MAX_LAYERS: usize = 4;
/// Up to this many events (by `seq` span) the filter is built at once, in the group's
/// read (a few milliseconds); beyond, on a thread of its own.
const BUILD_AT_ONCE: i64 = 100_000;

/// The journal's filter, or the build that will make it.
#[derive(Default)]
pub(super) struct KnownIds {
    filter: Option<Filter>,
    building: Option<Receiver<anyhow::Result<Filter>>>,
    /// Set when a build failed: the groups read the store instead from then on.
    gave_up: bool,
}

impl KnownIds {
    /// Whether an event with this id may be stored: true unless the filter rules it out.
    pub(super) fn may_hold(&self, id: &Uuid) -> bool {
        self.filter.as_ref().is_none_or(|f| f.may_hold(id))
    }

    /// Before an ingest group, in its read transaction (`conn` sees every committed event):
    /// takes a finished build, starts one if there is none (or if the filter has grown
    /// too many layers to stay precise), and adds the ids stored since its `covers`.
    pub(super) fn catch_up(&mut self, conn: &Connection, path: &Path) -> rusqlite::Result<()> {
        if let Some(building) = &self.building {
            match building.try_recv() {
                Ok(Ok(filter)) => {
                    self.filter = Some(filter);
                    self.building = None;
                }
                Ok(Err(e)) => {
                    // Groups read the store for the ids the filter cannot rule out, or for
                    // every id without one, as before the filter.
                    tracing::warn!(error = %format!("{e:#}"), "the journal's id filter could not be built");
                    self.building = None;
                    self.gave_up = true;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.building = None,
            }
        }
        let Some(filter) = &mut self.filter else {
            return self.build(conn, path);
        };
        let mut newer = conn.prepare_cached("SELECT seq, id FROM events WHERE seq > ?1")?;
        let mut rows = newer.query([filter.covers])?;
        while let Some(row) = rows.next()? {
            filter.insert(&id_of(row.get_ref(1)?.as_blob()?));
            filter.covers = filter.covers.max(row.get(0)?);
        }
        // Each layer adds its false positives: one filter sized for the store replaces them.
        if filter.layers.len() > MAX_LAYERS {
            self.build(conn, path)?;
        }
        Ok(())
    }

    /// Builds the filter from the store: at once when it is small, else on a thread of its
    /// own (unless a build is under way, or one failed).
    fn build(&mut self, conn: &Connection, path: &Path) -> rusqlite::Result<()> {
        if self.building.is_some() || self.gave_up {
            return Ok(());
        }
        let (first, last): (i64, i64) = conn.query_row(
            "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if last - first < BUILD_AT_ONCE {
            self.filter = Some(read_all(conn)?);
        } else {
            self.building = Some(build_beside(path));
        }
        Ok(())
    }

    /// After an ingest group's commit: its new ids, and the journal's head then.
    pub(super) fn committed(&mut self, ids: impl IntoIterator<Item = Uuid>, head: i64) {
        if let Some(filter) = &mut self.filter {
            for id in ids {
                filter.insert(&id);
            }
            filter.covers = filter.covers.max(head);
        }
    }

    /// After a failed commit: whatever went wrong, the filter is built again from the store.
    pub(super) fn forget(&mut self) {
        self.filter = None;
    }
}

/// Builds the filter on a thread of its own, from a read transaction on a connection of
/// its own.
fn build_beside(path: &Path) -> Receiver<anyhow::Result<Filter>> {
    let (done, building) = channel();
    let path = path.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("connlog-known-ids".into())
        .spawn(move || {
            let _ = done.send(read_all_from(&path));
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "the journal's id filter could not be built");
    }
    building
}

fn read_all_from(path: &Path) -> anyhow::Result<Filter> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch("BEGIN")?;
    Ok(read_all(&conn)?)
}

/// Every id `conn`'s read transaction sees.
fn read_all(conn: &Connection) -> rusqlite::Result<Filter> {
    let (count, covers): (i64, i64) = conn.query_row(
        "SELECT count(*), coalesce(max(seq), 0) FROM events",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // Room for the store to grow by a quarter before a second layer.
    let count = usize::try_from(count).unwrap_or(0);
    let mut filter = Filter::new(count + count / 4, covers);
    let mut ids = conn.prepare_cached("SELECT id FROM events")?;
    let mut rows = ids.query([])?;
    while let Some(row) = rows.next()? {
        filter.insert(&id_of(row.get_ref(0)?.as_blob()?));
    }
    Ok(filter)
}

/// A stored id that is not 16 bytes matches no event's id, so whatever it becomes here
/// cannot hide one.
fn id_of(bytes: &[u8]) -> Uuid {
    Uuid::from_slice(bytes).unwrap_or_default()
}

/// Layers of blocked Bloom filters; ids go into the newest.
struct Filter {
    layers: Vec<Layer>,
    /// Every id with `seq <= covers` is in.
    covers: i64,
}

impl Filter {
    fn new(capacity: usize, covers: i64) -> Self {
        Self {
            layers: vec![Layer::new(capacity.max(MIN_CAPACITY))],
            covers,
        }
    }

    fn may_hold(&self, id: &Uuid) -> bool {
        let hash = hash(id);
        self.layers.iter().any(|l| l.may_hold(hash))
    }

    fn insert(&mut self, id: &Uuid) {
        let newest = self.layers.last().expect("one layer at least");
        if newest.ids >= newest.capacity {
            let so_far: usize = self.layers.iter().map(|l| l.capacity).sum();
            self.layers.push(Layer::new(so_far / 2));
        }
        self.layers
            .last_mut()
            .expect("one layer at least")
            .insert(hash(id));
    }
}

struct Layer {
    blocks: Vec<[u64; 8]>,
    ids: usize,
    capacity: usize,
}

impl Layer {
    fn new(capacity: usize) -> Self {
        let blocks = (capacity * BITS_PER_ID).div_ceil(512);
        Self {
            blocks: vec![[0; 8]; blocks],
            ids: 0,
            capacity,
        }
    }

    /// The block of a hash, and its bits there (`PROBES` 9-bit positions).
    fn bits(&self, (block, within): (u64, u64)) -> (usize, [u64; 8]) {
        let mut bits = [0u64; 8];
        for probe in 0..PROBES {
            let bit = (within >> (9 * probe)) & 511;
            bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        // `block * len / 2^64`: an even spread over any number of blocks, without a division.
        let block = (u128::from(block) * self.blocks.len() as u128) >> 64;
        (block as usize, bits)
    }

    fn may_hold(&self, hash: (u64, u64)) -> bool {
        let (block, bits) = self.bits(hash);
        let block = &self.blocks[block];
        block
            .iter()
            .zip(bits)
            .all(|(word, bits)| word & bits == bits)
    }

    fn insert(&mut self, hash: (u64, u64)) {
        let (block, bits) = self.bits(hash);
        for (word, bits) in self.blocks[block].iter_mut().zip(bits) {
            *word |= bits;
        }
        self.ids += 1;
    }
}

/// Two independent 64-bit hashes of an id: ids need not be random (tests and other
/// producers use sequential ones), so both halves are mixed (SplitMix64's finaliser).
fn hash(id: &Uuid) -> (u64, u64) {
    let (high, low) = id.as_u64_pair();
    let block = mix(high ^ mix(low));
    (block, mix(block ^ low.rotate_left(29)))
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inserted_id_is_held_and_few_others_seem_to_be() {
        let mut filter = Filter::new(1_000, 0);
        // Past the first layer's capacity, so that a second layer holds some.
        let held = 3 * MIN_CAPACITY as u128 / 2;
        for n in 0..held {
            filter.insert(&Uuid::from_u128(n));
        }
        assert_eq!(filter.layers.len(), 2);
        assert!((0..held).all(|n| filter.may_hold(&Uuid::from_u128(n))));
        let others = 100_000;
        let false_positives = (held..held + others)
            .filter(|&n| filter.may_hold(&Uuid::from_u128(n)))
            .count();
        assert!(
            false_positives < others as usize * 3 / 100,
            "{false_positives} false positives in {others}"
        );
    }

    #[test]
    fn a_filter_grown_past_its_layers_is_built_again_from_the_store_as_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connlog.db");
        super::super::Journal::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        let mut known = KnownIds::default();
        known.catch_up(&conn, &path).unwrap();
        let layers = |known: &KnownIds| known.filter.as_ref().map(|f| f.layers.len());
        assert_eq!(
            layers(&known),
            Some(1),
            "a small store's filter is built at once"
        );

        known.committed((0..5 * MIN_CAPACITY as u128).map(Uuid::from_u128), 0);
        assert!(layers(&known) > Some(MAX_LAYERS));
        known.catch_up(&conn, &path).unwrap();
        assert_eq!(layers(&known), Some(1));
    }

    #[test]
    fn an_empty_filter_holds_nothing() {
        let filter = Filter::new(0, 0);
        assert!(!(0..10_000u128).any(|n| filter.may_hold(&Uuid::from_u128(n))));
    }
}
