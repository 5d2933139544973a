//! The record of a clean stop, which lets the next start skip reading the whole store.
//!
//! SQLite's `quick_check` reads every page of the store: 6–7 s for 10M rows (3.0 GiB),
//! longer with a cold page cache. What it guards against is a file damaged while connlog
//! was not running (a truncation, a bad copy, stray writes) or torn by a crash. After a
//! clean stop, once the WAL is checkpointed into the file and emptied, `record` writes the
//! file's identity beside it: device, inode, size, and the modification and change times.
//! The next start `take`s the record. If the file is exactly as it was left, no write,
//! truncation or replacement has reached it through the file system (writing moves the
//! change time, which a program cannot set back short of changing the system's clock), so
//! the whole-file check is not needed.
//! Anything else (no record, a record for other bytes, a WAL with frames in it) and the
//! check runs as before. A start removes the record before it uses the store, so a crash
//! later leaves none: the start after a crash always reads the whole file.
//!
//! What it cannot see is damage below the file system (a failing disk); SQLite reports
//! that as corruption when it reads the damaged page, and snapshots carry their own SHA-256.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The first line of a record; a record in any other format is not trusted.
const FORMAT: &str = "connlog clean stop 1";

/// A file beside the store, named as SQLite names its own (`connlog.db-wal`).
fn beside(store: &Path, suffix: &str) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn record_path(store: &Path) -> PathBuf {
    beside(store, "-clean")
}

fn wal_path(store: &Path) -> PathBuf {
    beside(store, "-wal")
}

/// The store file's identity, one line; `None` where it cannot be had (no such file, a
/// WAL that still holds frames, or a platform without change times).
fn identity(store: &Path) -> io::Result<Option<String>> {
    match fs::metadata(wal_path(store)) {
        Ok(wal) if wal.len() > 0 => return Ok(None),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let meta = match fs::metadata(store) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(unix_identity(&meta))
}

#[cfg(unix)]
fn unix_identity(meta: &fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    Some(format!(
        "dev={} ino={} size={} mtime={}.{:09} ctime={}.{:09}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    ))
}

#[cfg(not(unix))]
fn unix_identity(_: &fs::Metadata) -> Option<String> {
    None
}

/// Records that the store at `store` was left whole by a clean stop. Call it only once the
/// WAL is checkpointed and truncated and nothing will write to the store again; returns
/// whether a record was written (not when the WAL still holds frames).
pub fn record(store: &Path) -> io::Result<bool> {
    let Some(identity) = identity(store)? else {
        return Ok(false);
    };
    // Written whole or not at all: a torn record must not read as another file's identity.
    let temp = beside(store, "-clean.tmp");
    let mut file = fs::File::create(&temp)?;
    writeln!(file, "{FORMAT}\n{identity}")?;
    file.sync_all()?;
    fs::rename(&temp, record_path(store))?;
    Ok(true)
}

/// Whether the store is exactly as the last clean stop left it. The record is removed
/// either way, so that it vouches for one start only.
pub fn take(store: &Path) -> io::Result<bool> {
    let path = record_path(store);
    let recorded = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    fs::remove_file(&path)?;
    let mut lines = recorded.lines();
    if lines.next() != Some(FORMAT) {
        return Ok(false);
    }
    let Some(now) = identity(store)? else {
        return Ok(false);
    };
    Ok(lines.next() == Some(now.as_str()) && lines.next().is_none())
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

    #[test]
    fn an_untouched_store_is_vouched_for_once() {
        let (_dir, store) = store_with(b"pages");
        assert!(record(&store).unwrap());
        assert!(take(&store).unwrap());
        assert!(!take(&store).unwrap(), "the record vouches for one start");
        assert!(!record_path(&store).exists());
    }

    #[test]
    fn any_change_to_the_file_withdraws_the_record() {
        type Change = fn(&Path);
        let changes: [(&str, Change); 5] = [
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
            ("frames left in the WAL", |s| {
                fs::write(wal_path(s), b"frame").unwrap()
            }),
        ];
        for (what, change) in changes {
            let (_dir, store) = store_with(b"pages");
            assert!(record(&store).unwrap());
            // Change times have nanoseconds on the file systems in use, but not every one
            // ticks that finely: make sure a change lands on a later tick.
            std::thread::sleep(std::time::Duration::from_millis(20));
            change(&store);
            assert!(!take(&store).unwrap(), "{what}: the record must not vouch");
        }
    }

    #[test]
    fn a_wal_with_frames_or_a_missing_store_is_never_recorded() {
        let (_dir, store) = store_with(b"pages");
        fs::write(wal_path(&store), b"frame").unwrap();
        assert!(!record(&store).unwrap());
        fs::write(wal_path(&store), b"").unwrap();
        assert!(
            record(&store).unwrap(),
            "an emptied WAL is a checkpointed one"
        );
        let missing = store.with_file_name("none.db");
        assert!(!record(&missing).unwrap());
        assert!(!take(&missing).unwrap());
    }

    #[test]
    fn a_record_in_another_format_is_not_trusted() {
        let (_dir, store) = store_with(b"pages");
        assert!(record(&store).unwrap());
        let text = fs::read_to_string(record_path(&store)).unwrap();
        fs::write(
            record_path(&store),
            text.replace(FORMAT, "connlog clean stop 0"),
        )
        .unwrap();
        assert!(!take(&store).unwrap());
    }
}
