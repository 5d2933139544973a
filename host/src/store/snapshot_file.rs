//! Snapshot files: `<data>/snapshots/<name>.snap`, the chunks the plugin wrote, each as a
//! little-endian `u32` length followed by its bytes, so that reading hands the plugin back
//! exactly the chunks it wrote.
//!
//! A file is written under `<name>.snap.tmp`, fsynced, renamed and the directory fsynced;
//! only then may `meta` name it. Files hold rows, purged ones included until they are
//! replaced, so a file leaves the disk by being overwritten with zeros (fdatasync) and then
//! unlinked, never by a bare unlink.
//!
//! Advisory locks (`flock`) keep the zeroing away from files in use: a writer holds an
//! exclusive lock from creation until its record is committed, a reader a shared one while
//! it loads, and zeroing takes an exclusive lock without waiting (a busy file is left for a
//! later sweep).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// The folder beside the store that holds snapshot files.
pub const DIR: &str = "snapshots";
const SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".snap.tmp";

/// Where the snapshot files of the store at `store` live.
pub fn dir_for(store: &Path) -> PathBuf {
    store.parent().unwrap_or(Path::new(".")).join(DIR)
}

/// A name as `meta` records it: only names this module makes are ever opened, so a record
/// cannot point outside the folder.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

pub fn path_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{SUFFIX}"))
}

/// Whether a file in the folder is a snapshot file (finished or not), and its name.
pub fn parse_file_name(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(TEMP_SUFFIX)
        .or_else(|| file_name.strip_suffix(SUFFIX))
        .filter(|name| valid_name(name))
}

/// How much a snapshot file's writer or zeroing lets pile up unsynced. A commit's fsync
/// can have to wait for the file system to write out other files' dirty pages (ext4's
/// ordered mode): hundreds of megabytes of snapshot would stall an ingest's commit for
/// that long, a few megabytes only briefly.
const SYNC_EVERY: u64 = 4 << 20;

/// How much of a zeroed file is freed at a time.
const FREE_STEP: u64 = 16 << 20;

/// Unique across processes and within one: the time, the process and a counter.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:016x}-{:08x}-{n:04x}", std::process::id())
}

/// A snapshot file being written, and the SHA-256 of its chunks' bytes so far.
pub struct FileWriter {
    out: BufWriter<File>,
    dir: PathBuf,
    name: String,
    temp: PathBuf,
    unsynced: u64,
    sha256: Sha256,
}

/// A finished file under its final name, still locked: keep it until its record is
/// committed, so that no sweep takes it for a leftover.
pub struct FinishedFile {
    pub name: String,
    /// The SHA-256 of every chunk's bytes (not their lengths), as a reader computes it.
    pub sha256: [u8; 32],
    file: File,
    path: PathBuf,
}

impl FinishedFile {
    /// Zeroes and removes the file (its record was not committed).
    pub fn discard(self) -> io::Result<()> {
        shred_locked(&self.file, &self.path)
    }
}

impl FileWriter {
    pub fn create(dir: &Path) -> io::Result<Self> {
        if !dir.is_dir() {
            fs::create_dir_all(dir)?;
            // The folder's own entry must survive a crash too.
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        let name = unique_name();
        let temp = dir.join(format!("{name}{TEMP_SUFFIX}"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => e,
            TryLockError::WouldBlock => io::Error::other("a new snapshot file is locked"),
        })?;
        Ok(Self {
            out: BufWriter::with_capacity(1 << 20, file),
            dir: dir.to_path_buf(),
            name,
            temp,
            unsynced: 0,
            sha256: Sha256::new(),
        })
    }

    pub fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        let len = u32::try_from(chunk.len())
            .map_err(|_| io::Error::other("a snapshot chunk over 4 GiB"))?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(chunk)?;
        self.sha256.update(chunk);
        self.unsynced += 4 + chunk.len() as u64;
        if self.unsynced >= SYNC_EVERY {
            self.out.flush()?;
            self.out.get_ref().sync_data()?;
            self.unsynced = 0;
        }
        Ok(())
    }

    /// The SHA-256 of the chunks' bytes written so far.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256.clone().finalize().into()
    }

    /// Writes out and syncs what was written so far: what a forked copy of the process
    /// does before it reports the file's SHA-256 (`service::fork`).
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        self.unsynced = 0;
        Ok(())
    }

    /// The open file's descriptor, which a forked copy of the process keeps open.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.out.get_ref().as_raw_fd()
    }

    /// Makes the file durable under its final name. `sha256` is what its writer computed:
    /// this one (`sha256`), or a forked copy of the process that wrote the chunks.
    pub fn finish(self, sha256: [u8; 32]) -> io::Result<FinishedFile> {
        let Self {
            out,
            dir,
            name,
            temp,
            ..
        } = self;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        let path = path_of(&dir, &name);
        fs::rename(&temp, &path)?;
        sync_dir(&dir)?;
        Ok(FinishedFile {
            name,
            sha256,
            file,
            path,
        })
    }

    /// Zeroes and removes the unfinished file.
    pub fn abandon(self) -> io::Result<()> {
        let Self { out, temp, .. } = self;
        // Unflushed bytes never reach the file: nothing to flush before zeroing.
        let (file, _unflushed) = out.into_parts();
        shred_locked(&file, &temp)
    }
}

/// Why a recorded snapshot file could not be opened.
#[derive(Debug)]
pub enum OpenFailure {
    Missing,
    /// Someone holds it exclusively: its writer before its record is committed, or a
    /// sweep zeroing it because it was replaced.
    Busy,
    Other(io::Error),
}

impl std::fmt::Display for OpenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenFailure::Missing => f.write_str("the snapshot file is missing"),
            OpenFailure::Busy => f.write_str("the snapshot file is being written or removed"),
            OpenFailure::Other(e) => write!(f, "the snapshot file cannot be read: {e}"),
        }
    }
}

/// A snapshot file being read, chunk by chunk, under a shared lock. A thread reads and
/// hashes up to `READ_AHEAD` chunks ahead, so that the disk and SHA-256 (about 0.6 s for a
/// 10M-row snapshot) overlap the plugin's decoding instead of adding to it.
pub struct FileReader {
    chunks: Option<Receiver<io::Result<Option<ReadChunk>>>>,
    reader: Option<JoinHandle<()>>,
    ended: bool,
}

/// A chunk, and the SHA-256 of the bytes of every chunk up to and including it.
pub struct ReadChunk {
    pub bytes: Vec<u8>,
    pub sha256_so_far: [u8; 32],
}

const READ_AHEAD: usize = 4;

impl FileReader {
    pub fn open(dir: &Path, name: &str) -> Result<Self, OpenFailure> {
        if !valid_name(name) {
            return Err(OpenFailure::Other(io::Error::other(format!(
                "{name:?} is not a snapshot file name"
            ))));
        }
        let file = File::open(path_of(dir, name)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => OpenFailure::Missing,
            _ => OpenFailure::Other(e),
        })?;
        file.try_lock_shared().map_err(|e| match e {
            TryLockError::WouldBlock => OpenFailure::Busy,
            TryLockError::Error(e) => OpenFailure::Other(e),
        })?;
        let remaining = file.metadata().map_err(OpenFailure::Other)?.len();
        let (send, chunks) = std::sync::mpsc::sync_channel(READ_AHEAD);
        let mut input = ChunkInput {
            input: BufReader::with_capacity(1 << 20, file),
            remaining,
            sha256: Sha256::new(),
        };
        let reader = std::thread::Builder::new()
            .name("connlog-snapshot-read".into())
            .spawn(move || {
                loop {
                    let next = input.next_chunk();
                    let last = !matches!(next, Ok(Some(_)));
                    // A closed channel: the reader was dropped; stop and let the file go.
                    if send.send(next).is_err() || last {
                        return;
                    }
                }
            })
            .map_err(OpenFailure::Other)?;
        Ok(Self {
            chunks: Some(chunks),
            reader: Some(reader),
            ended: false,
        })
    }

    /// The next chunk; `None` exactly at the file's end. A file cut inside a chunk is an
    /// error, not an early end.
    pub fn next_chunk(&mut self) -> io::Result<Option<ReadChunk>> {
        if self.ended {
            return Ok(None);
        }
        let chunks = self.chunks.as_ref().expect("present until dropped");
        let next = chunks
            .recv()
            .map_err(|_| io::Error::other("the snapshot reading thread stopped"))
            .flatten();
        self.ended = !matches!(next, Ok(Some(_)));
        next
    }
}

impl Drop for FileReader {
    /// Closes the file (and drops its lock) before returning, as a reader on this thread
    /// would: a sweep right after must find it free.
    fn drop(&mut self) {
        drop(self.chunks.take());
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The reading thread's side of a `FileReader`.
struct ChunkInput {
    input: BufReader<File>,
    remaining: u64,
    sha256: Sha256,
}

impl ChunkInput {
    fn next_chunk(&mut self) -> io::Result<Option<ReadChunk>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let cut = |what: &str| io::Error::new(io::ErrorKind::UnexpectedEof, what.to_string());
        if self.remaining < 4 {
            return Err(cut("the file ends inside a chunk's length"));
        }
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len)?;
        self.remaining -= 4;
        let len = u64::from(u32::from_le_bytes(len));
        if len > self.remaining {
            return Err(cut("a chunk runs past the file's end"));
        }
        let mut bytes = vec![0u8; len as usize];
        self.input.read_exact(&mut bytes)?;
        self.remaining -= len;
        self.sha256.update(&bytes);
        let sha256_so_far = self.sha256.clone().finalize().into();
        Ok(Some(ReadChunk {
            bytes,
            sha256_so_far,
        }))
    }
}

/// Zeroes and removes `path` unless someone holds it. Returns whether it was removed
/// (false: busy or already gone).
pub fn shred(path: &Path) -> io::Result<bool> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(false),
        Err(TryLockError::Error(e)) => return Err(e),
    }
    shred_locked(&file, path)?;
    Ok(true)
}

/// Opens `path` for zeroing and locks it exclusively, without waiting; `None` when it is
/// busy or gone.
pub fn lock_for_shred(path: &Path) -> io::Result<Option<File>> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Overwrites the whole file with zeros, makes that durable, then unlinks it.
pub fn shred_locked(file: &File, path: &Path) -> io::Result<()> {
    const BLOCK: usize = 1 << 20;
    let len = file.metadata()?.len();
    let zeros = vec![0u8; BLOCK];
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(BLOCK as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
        if at.is_multiple_of(SYNC_EVERY) {
            file.sync_data()?;
        }
    }
    file.sync_data()?;
    // Freed a step at a time: file systems that discard freed blocks (ext4's `discard`)
    // would otherwise queue hundreds of megabytes of discards at once, in front of the
    // next commit's fsync.
    let mut size = len;
    while size > 0 {
        size = size.saturating_sub(FREE_STEP);
        file.set_len(size)?;
        file.sync_all()?;
    }
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The snapshot files in `dir` (finished or not): their paths and names.
pub fn list(dir: &Path) -> io::Result<Vec<(PathBuf, String)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        if let Some(name) = file_name.to_str().and_then(parse_file_name) {
            files.push((entry.path(), name.to_string()));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_come_back_as_written_and_a_cut_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = FileWriter::create(dir.path()).unwrap();
        for chunk in [&b"abc"[..], b"", b"defgh"] {
            writer.write_chunk(chunk).unwrap();
        }
        let sha256 = writer.sha256();
        let finished = writer.finish(sha256).unwrap();
        let name = finished.name.clone();
        drop(finished);
        let mut reader = FileReader::open(dir.path(), &name).unwrap();
        let mut chunks = Vec::new();
        while let Some(chunk) = reader.next_chunk().unwrap() {
            chunks.push(chunk.bytes);
            assert_eq!(
                chunk.sha256_so_far,
                <[u8; 32]>::from(Sha256::digest(chunks.concat())),
                "the digest of every byte so far"
            );
        }
        assert_eq!(chunks, [b"abc".to_vec(), Vec::new(), b"defgh".to_vec()]);
        assert!(
            reader.next_chunk().unwrap().is_none(),
            "the end stays the end"
        );
        drop(reader);

        let path = path_of(dir.path(), &name);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 2)
            .unwrap();
        let mut reader = FileReader::open(dir.path(), &name).unwrap();
        reader.next_chunk().unwrap();
        reader.next_chunk().unwrap();
        assert!(reader.next_chunk().is_err());
    }

    #[test]
    fn a_file_in_use_is_not_shredded_and_a_shredded_file_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = FileWriter::create(dir.path()).unwrap();
        writer.write_chunk(b"secret").unwrap();
        let sha256 = writer.sha256();
        let finished = writer.finish(sha256).unwrap();
        let path = path_of(dir.path(), &finished.name);
        assert!(!shred(&path).unwrap(), "its writer still holds it");
        let name = finished.name.clone();
        drop(finished);
        let reader = FileReader::open(dir.path(), &name).unwrap();
        assert!(!shred(&path).unwrap(), "a reader holds it");
        drop(reader);
        assert!(shred(&path).unwrap());
        assert!(!path.exists());
        assert!(matches!(
            FileReader::open(dir.path(), &name),
            Err(OpenFailure::Missing)
        ));
        assert!(list(dir.path()).unwrap().is_empty());
    }
}
