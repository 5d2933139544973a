//! Making commits durable after the fact: a write transaction committed with
//! `synchronous=NORMAL` has written its WAL frames but not fsynced them. `WalSync::sync`
//! fsyncs the WAL file, which makes every transaction committed before it as durable as
//! `synchronous=FULL` would have (an fsync covers the whole file, whoever wrote it), so
//! that group commit can let the next group's plugin calls run while the disk syncs the
//! last one (`IngestQueue`).
//!
//! A WAL that SQLite checkpointed has had its frames synced and copied into the database
//! file, which the checkpoint syncs too; a WAL restarted after one is the same file. SQLite
//! fsyncs the folder once after creating a WAL, and so does `sync` for a new one.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// How a write transaction's commit reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitSync {
    /// `COMMIT` returns once the WAL is fsynced (`synchronous=FULL`).
    Full,
    /// `COMMIT` returns once the WAL frames are written; a later `WalSync::sync` makes them
    /// durable (`synchronous=NORMAL`).
    Deferred,
}

pub struct WalSync {
    wal: PathBuf,
    folder: PathBuf,
    /// The inode of the WAL whose folder entry was last synced.
    synced_inode: Mutex<Option<u64>>,
}

impl WalSync {
    /// For the store at `store` (its WAL is `<store>-wal`, beside it).
    pub fn new(store: &Path) -> Self {
        let mut wal = store.as_os_str().to_owned();
        wal.push("-wal");
        let folder = match store.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Self {
            wal: PathBuf::from(wal),
            folder,
            synced_inode: Mutex::new(None),
        }
    }

    /// Returns once every transaction committed before the call is on disk.
    pub fn sync(&self) -> io::Result<()> {
        let wal = match File::open(&self.wal) {
            Ok(wal) => wal,
            // No WAL: nothing was written since the last checkpoint that removed it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        wal.sync_data()?;
        let inode = wal.metadata()?.ino();
        let mut synced = self
            .synced_inode
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *synced != Some(inode) {
            File::open(&self.folder)?.sync_all()?;
            *synced = Some(inode);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_without_a_wal_has_nothing_to_sync_and_one_with_a_wal_syncs_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("connlog.db");
        let sync = WalSync::new(&store);
        sync.sync().expect("no WAL: nothing to do");
        std::fs::write(dir.path().join("connlog.db-wal"), b"frames").unwrap();
        sync.sync().expect("a WAL is synced");
        assert!(
            sync.synced_inode.lock().unwrap().is_some(),
            "and its folder"
        );
    }

    /// SQLite keeps the WAL beside the file a link to the store leads to; so must the sync.
    #[test]
    fn a_store_reached_through_a_link_has_its_wal_synced_where_sqlite_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("disk")).unwrap();
        let link = dir.path().join("connlog.db");
        std::os::unix::fs::symlink("disk/connlog.db", &link).unwrap();
        let journal = crate::store::Journal::open(&link).unwrap();
        let sync = journal.wal_sync();
        let wal = dir.path().join("disk").join("connlog.db-wal");
        assert!(wal.exists(), "SQLite's WAL is beside the linked file");
        assert_eq!(
            sync.wal.canonicalize().unwrap(),
            wal.canonicalize().unwrap()
        );
    }

    #[test]
    fn a_wal_that_cannot_be_opened_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("connlog.db");
        std::os::unix::fs::symlink("connlog.db-wal", dir.path().join("connlog.db-wal")).unwrap();
        assert!(WalSync::new(&store).sync().is_err());
    }
}
