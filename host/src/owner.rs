//! One owner per data directory.
//!
//! A process that opens the store first takes an exclusive `flock` on `<data>/connlog.lock`
//! and writes who it is into that file. The kernel drops the lock when the process exits,
//! however it exits (SIGKILL included), so a stale record is recognised by the lock being
//! free. Every owner serves the local channel (`local.rs`) once its store is open, so other
//! commands go through it instead of opening the store a second time.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "connlog.lock";

/// Who owns a data directory, as its lock file says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRecord {
    pub pid: u32,
    /// The command that owns it (`serve`, `ingest`, …).
    pub command: String,
    /// The HTTP address a `serve` listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// True once the store is open and the local channel answers.
    #[serde(default)]
    pub ready: bool,
}

impl OwnerRecord {
    /// "connlog serve (pid 4242, serving http://127.0.0.1:3000)".
    pub fn describe(&self) -> String {
        let mut s = format!("connlog {} (pid {}", self.command, self.pid);
        if let Some(listen) = &self.listen {
            s.push_str(&format!(", serving http://{listen}"));
        }
        s.push(')');
        s
    }

    pub fn is_server(&self) -> bool {
        self.command == "serve"
    }
}

/// The held lock. Dropping it (or the process ending) frees the directory.
pub struct DirectoryLock {
    file: File,
    record: OwnerRecord,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process owns the directory.
    #[error("the data directory {} is in use by {}", .dir.display(), .owner.describe())]
    Owned { dir: PathBuf, owner: OwnerRecord },
    #[error("cannot use the lock file {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DirectoryLock {
    /// Takes the directory's lock without waiting, creating the directory if needed.
    pub fn try_acquire(data_dir: &Path, command: &str) -> Result<Self, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Owned {
                    dir: data_dir.to_path_buf(),
                    owner: read_record(&path).unwrap_or_default(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut lock = Self {
            file,
            record: OwnerRecord {
                pid: std::process::id(),
                command: command.to_owned(),
                listen: None,
                ready: false,
            },
        };
        lock.write_record().map_err(io)?;
        Ok(lock)
    }

    /// Takes the lock, waiting up to `wait` while the owner is not a server (a command that
    /// will finish on its own). A server is never waited for: callers go through it.
    pub fn acquire_waiting(
        data_dir: &Path,
        command: &str,
        wait: Duration,
    ) -> Result<Self, LockError> {
        let deadline = Instant::now() + wait;
        loop {
            match Self::try_acquire(data_dir, command) {
                Err(LockError::Owned { owner, .. })
                    if !owner.is_server() && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    pub fn record(&self) -> &OwnerRecord {
        &self.record
    }

    /// Records the HTTP address a server listens on.
    pub fn set_listen(&mut self, listen: String) -> std::io::Result<()> {
        self.record.listen = Some(listen);
        self.write_record()
    }

    /// Says whether the local channel answers (true once the store is open; false again
    /// while the owner closes).
    pub fn set_ready(&mut self, ready: bool) -> std::io::Result<()> {
        self.record.ready = ready;
        self.write_record()
    }

    fn write_record(&mut self) -> std::io::Result<()> {
        let json = serde_json::to_string(&self.record).expect("plain data");
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(json.as_bytes())?;
        self.file.flush()
    }
}

impl Drop for DirectoryLock {
    fn drop(&mut self) {
        // The next owner rewrites the record; clearing it only makes a stale read obvious.
        let _ = self.file.set_len(0);
    }
}

/// The record in a lock file, if it holds one.
pub fn read_record(path: &Path) -> Option<OwnerRecord> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}
