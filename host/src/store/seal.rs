//! The seal: a record of the store file as connlog last left it, which lets the next start
//! skip reading the whole store.
//!
//! SQLite's `quick_check` reads every page of the store: 4–5 s for 10M rows (3.0 GiB),
//! longer with a cold page cache. What it guards against is a file damaged while connlog
//! was not running: a truncation, a bad copy, stray writes. A seal beside the store holds
//! the file's identity (device, inode, size, modification and change times) at the moment
//! connlog last wrote it. If the file is exactly as sealed, no write, truncation or
//! replacement has reached it through the file system since (writing moves the change
//! time, which a program cannot set back short of changing the system's clock), so the
//! whole-file check is not needed. Anything else, and the check runs. A start takes the
//! seal away before it uses the store.
//!
//! Two kinds:
//! - **clean stop**: written once the WAL is checkpointed into the file and emptied, by a
//!   stop after which nothing writes. A WAL holding frames at the next start means someone
//!   wrote since, and the seal is not trusted.
//! - **running**: kept up to date while the service runs ([`Keeper`]). Once the running
//!   service's start has checked the file, SQLite's checkpoints are the only writes it
//!   makes to the file, and after each one the service seals the file again. A crash then
//!   leaves the file as sealed, plus a WAL that SQLite recovers by itself: each frame
//!   carries a checksum and recovery stops at the first that does not match, which the
//!   whole-file check would not see either (it reads the file through the recovered WAL).
//!   A crash during a checkpoint leaves a file that no longer matches its seal, so the
//!   check runs (and SQLite's own design keeps that file sound too: the WAL still holds
//!   every page the checkpoint was copying). This seal is written without an fsync: after
//!   a power loss it may be missing or older than the file, which brings the check back,
//!   never the other way round.
//!
//! What neither can see is damage below the file system (a failing disk); SQLite reports
//! that as corruption when it reads the damaged page, and snapshots carry their own SHA-256.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};

use crate::directory::{write_atomic, write_atomic_unsynced};

/// The first line of a seal; a seal in any other format (such as the `-clean` record of
/// builds before running seals) is not trusted.
const FORMAT: &str = "connlog store seal 2";

/// How connlog left the file it sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seal {
    /// Stopped cleanly: the WAL checkpointed into the file and emptied.
    CleanStop,
    /// Running, after its last write to the file; it may have crashed since.
    Running,
}

impl Seal {
    fn name(self) -> &'static str {
        match self {
            Seal::CleanStop => "clean-stop",
            Seal::Running => "running",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Seal::CleanStop, Seal::Running]
            .into_iter()
            .find(|seal| seal.name() == name)
    }
}

/// A file beside the store, named as SQLite names its own (`connlog.db-wal`).
fn beside(store: &Path, suffix: &str) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn seal_path(store: &Path) -> PathBuf {
    beside(store, "-seal")
}

pub(super) fn wal_path(store: &Path) -> PathBuf {
    beside(store, "-wal")
}

/// Whether the WAL holds no frames (or is not there).
fn wal_is_empty(store: &Path) -> io::Result<bool> {
    match fs::metadata(wal_path(store)) {
        Ok(wal) => Ok(wal.len() == 0),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// What identifies the store file's bytes without reading them (see the module's comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    /// Seconds and nanoseconds.
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dev={} ino={} size={} mtime={}.{:09} ctime={}.{:09}",
            self.dev, self.ino, self.size, self.mtime.0, self.mtime.1, self.ctime.0, self.ctime.1
        )
    }
}

/// The store file's identity; `None` where it cannot be had (no such file, or a platform
/// without change times).
fn identity(store: &Path) -> io::Result<Option<Identity>> {
    match fs::metadata(store) {
        Ok(meta) => Ok(unix_identity(&meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn unix_identity(meta: &fs::Metadata) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    Some(Identity {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: (meta.ctime(), meta.ctime_nsec()),
    })
}

#[cfg(not(unix))]
fn unix_identity(_: &fs::Metadata) -> Option<Identity> {
    None
}

/// Writes the seal whole or not at all: a torn seal must not read as another file's
/// identity. A clean stop's is synced; a running one is rewritten at every checkpoint, and
/// losing it only brings the whole-file check back.
fn write(store: &Path, seal: Seal, identity: Identity) -> io::Result<()> {
    let text = format!("{FORMAT}\n{}\n{identity}\n", seal.name());
    match seal {
        Seal::CleanStop => write_atomic(&seal_path(store), text.as_bytes()),
        Seal::Running => write_atomic_unsynced(&seal_path(store), text.as_bytes()),
    }
}

/// Seals the store at `store` as left whole by a clean stop. Call it only once the WAL is
/// checkpointed and truncated and nothing will write to the store again; returns whether
/// a seal was written (not when the WAL still holds frames).
pub fn record_clean_stop(store: &Path) -> io::Result<bool> {
    if !wal_is_empty(store)? {
        return Ok(false);
    }
    let Some(identity) = identity(store)? else {
        return Ok(false);
    };
    write(store, Seal::CleanStop, identity)?;
    Ok(true)
}

/// How the store is sealed, if it is exactly as sealed. The seal (and the record of older
/// builds, `-clean`) is removed either way, so that it vouches for one start only.
pub fn take(store: &Path) -> io::Result<Option<Seal>> {
    match fs::remove_file(beside(store, "-clean")) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let path = seal_path(store);
    let recorded = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    fs::remove_file(&path)?;
    let mut lines = recorded.lines();
    if lines.next() != Some(FORMAT) {
        return Ok(None);
    }
    let Some(seal) = lines.next().and_then(Seal::from_name) else {
        return Ok(None);
    };
    if seal == Seal::CleanStop && !wal_is_empty(store)? {
        return Ok(None);
    }
    let Some(now) = identity(store)? else {
        return Ok(None);
    };
    let matches = lines.next() == Some(now.to_string().as_str()) && lines.next().is_none();
    Ok(matches.then_some(seal))
}

/// Keeps a running seal on a store whose start has checked it (or found it sealed). Clones
/// share one seal: the service seals after its commits, and the checkpointer
/// (`store::checkpointer`) after the checkpoints it runs on a thread of its own.
#[derive(Clone)]
pub struct Keeper {
    inner: Arc<Mutex<Sealed>>,
}

struct Sealed {
    store: PathBuf,
    /// The identity the seal on disk holds.
    identity: Option<Identity>,
}

impl Keeper {
    /// Seals the store as it is now.
    pub fn new(store: &Path) -> Self {
        let keeper = Self {
            inner: Arc::new(Mutex::new(Sealed {
                store: store.to_path_buf(),
                identity: None,
            })),
        };
        keeper.refresh();
        keeper
    }

    /// Seals the store again if the file changed since it was sealed (SQLite checkpointed
    /// into it): a `stat`, and a small write only when it changed. Call it after each
    /// commit and checkpoint. While a clone runs a checkpoint (`checkpoint`), this returns
    /// at once: that clone seals the file once its checkpoint is done, a `stat` that comes
    /// after whatever this caller wrote.
    pub fn refresh(&self) {
        match self.inner.try_lock() {
            Ok(mut sealed) => sealed.refresh(),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().refresh(),
            Err(TryLockError::WouldBlock) => {}
        }
    }

    /// Runs `checkpoint` (a write into the store file), then seals the file as it left it.
    /// No `refresh` stats the file meanwhile, so a seal never names a file halfway through
    /// a checkpoint that this process runs.
    pub fn checkpoint<T>(&self, checkpoint: impl FnOnce() -> T) -> T {
        let mut sealed = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let outcome = checkpoint();
        sealed.refresh();
        outcome
    }
}

impl Sealed {
    /// A seal that cannot be written is logged: the one on disk, if any, names an older
    /// file, so the next start checks the whole file.
    fn refresh(&mut self) {
        let refreshed = identity(&self.store).and_then(|now| match now {
            Some(now) if self.identity != Some(now) => {
                write(&self.store, Seal::Running, now)?;
                self.identity = Some(now);
                Ok(())
            }
            _ => Ok(()),
        });
        if let Err(e) = refreshed {
            tracing::warn!(error = %e, store = %self.store.display(), "the store could not be sealed; a start after a crash reads the whole file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("connlog.db");
        fs::write(&store, bytes).unwrap();
        (dir, store)
    }

    /// Changes that must withdraw a seal of either kind.
    type Change = fn(&Path);
    const CHANGES: [(&str, Change); 4] = [
        ("rewritten in place, same size", |s| {
            fs::write(s, b"PAGES").unwrap()
        }),
        ("truncated", |s| {
            fs::OpenOptions::new()
                .write(true)
                .open(s)
                .unwrap()
                .set_len(2)
                .unwrap()
        }),
        ("its modification time set back after a write", |s| {
            let before = fs::metadata(s).unwrap().modified().unwrap();
            fs::write(s, b"PAGES").unwrap();
            fs::File::options()
                .write(true)
                .open(s)
                .unwrap()
                .set_modified(before)
                .unwrap();
        }),
        ("replaced by a copy", |s| {
            let copy = s.with_extension("copy");
            fs::copy(s, &copy).unwrap();
            fs::rename(&copy, s).unwrap();
        }),
    ];

    /// Change times have nanoseconds on the file systems in use, but not every one ticks
    /// that finely: make sure a change lands on a later tick.
    fn next_tick() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    /// Applies `change` to a sealed store, on a later tick, and checks that the seal no
    /// longer vouches for it.
    fn changed_after_sealing(store: &Path, what: &str, change: Change) {
        next_tick();
        change(store);
        assert_eq!(
            take(store).unwrap(),
            None,
            "{what}: the seal must not vouch"
        );
    }

    #[test]
    fn an_untouched_store_is_vouched_for_once() {
        let (_dir, store) = store_with(b"pages");
        assert!(record_clean_stop(&store).unwrap());
        assert_eq!(take(&store).unwrap(), Some(Seal::CleanStop));
        assert_eq!(
            take(&store).unwrap(),
            None,
            "the seal vouches for one start"
        );
        assert!(!seal_path(&store).exists());

        Keeper::new(&store);
        assert_eq!(take(&store).unwrap(), Some(Seal::Running));
        assert_eq!(take(&store).unwrap(), None);
    }

    #[test]
    fn any_change_to_the_file_withdraws_a_clean_stop_seal() {
        let wal_frames: (&str, Change) = ("frames left in the WAL", |s| {
            fs::write(wal_path(s), b"frame").unwrap()
        });
        for (what, change) in CHANGES.into_iter().chain([wal_frames]) {
            let (_dir, store) = store_with(b"pages");
            assert!(record_clean_stop(&store).unwrap());
            changed_after_sealing(&store, what, change);
        }
    }

    #[test]
    fn any_change_after_the_last_refresh_withdraws_a_running_seal() {
        for (what, change) in CHANGES {
            let (_dir, store) = store_with(b"pages");
            let keeper = Keeper::new(&store);
            changed_after_sealing(&store, what, change);

            // The change was the running service's own (a checkpoint): sealed again.
            keeper.refresh();
            assert_eq!(take(&store).unwrap(), Some(Seal::Running), "{what}");
        }
    }

    #[test]
    fn a_checkpoint_is_sealed_once_done_and_never_halfway() {
        let (_dir, store) = store_with(b"pages");
        let keeper = Keeper::new(&store);
        let service = keeper.clone();
        keeper.checkpoint(|| {
            next_tick();
            fs::write(&store, b"PAGES, half copied").unwrap();
            service.refresh();
            let halfway = identity(&store).unwrap().unwrap().to_string();
            let sealed = fs::read_to_string(seal_path(&store)).unwrap();
            assert!(!sealed.contains(&halfway), "sealed halfway: {sealed}");
            next_tick();
            fs::write(&store, b"PAGES, all copied").unwrap();
        });
        assert_eq!(take(&store).unwrap(), Some(Seal::Running));
    }

    #[test]
    fn a_running_seal_vouches_for_the_file_whatever_the_wal_holds() {
        let (_dir, store) = store_with(b"pages");
        Keeper::new(&store);
        fs::write(wal_path(&store), b"frames a crash left").unwrap();
        assert_eq!(take(&store).unwrap(), Some(Seal::Running));
    }

    #[test]
    fn a_refresh_writes_only_when_the_file_changed() {
        let (_dir, store) = store_with(b"pages");
        let keeper = Keeper::new(&store);
        fs::remove_file(seal_path(&store)).unwrap();
        keeper.refresh();
        assert!(!seal_path(&store).exists(), "nothing changed: no write");
        next_tick();
        fs::write(&store, b"PAGES").unwrap();
        keeper.refresh();
        assert_eq!(take(&store).unwrap(), Some(Seal::Running));
    }

    #[test]
    fn a_wal_with_frames_or_a_missing_store_is_never_sealed_as_a_clean_stop() {
        let (_dir, store) = store_with(b"pages");
        fs::write(wal_path(&store), b"frame").unwrap();
        assert!(!record_clean_stop(&store).unwrap());
        fs::write(wal_path(&store), b"").unwrap();
        assert!(
            record_clean_stop(&store).unwrap(),
            "an emptied WAL is a checkpointed one"
        );
        let missing = store.with_file_name("none.db");
        assert!(!record_clean_stop(&missing).unwrap());
        Keeper::new(&missing);
        assert_eq!(take(&missing).unwrap(), None);
    }

    #[test]
    fn a_seal_in_another_format_or_of_another_kind_is_not_trusted() {
        let rewrites: [(&str, &str); 2] =
            [(FORMAT, "connlog store seal 1"), ("clean-stop", "stopped")];
        for (from, to) in rewrites {
            let (_dir, store) = store_with(b"pages");
            assert!(record_clean_stop(&store).unwrap());
            let text = fs::read_to_string(seal_path(&store)).unwrap();
            fs::write(seal_path(&store), text.replace(from, to)).unwrap();
            assert_eq!(take(&store).unwrap(), None, "{to}");
        }
    }

    #[test]
    fn the_record_of_older_builds_is_removed_and_not_trusted() {
        let (_dir, store) = store_with(b"pages");
        let old = beside(&store, "-clean");
        fs::write(&old, "connlog clean stop 1\nwhatever").unwrap();
        assert_eq!(take(&store).unwrap(), None);
        assert!(!old.exists());
    }
}
