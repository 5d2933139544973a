//! Following Coder's JSON service log (`coder server --log-json FILE`) as it grows.
//!
//! A reader thread tails the file and hands its lines to [`crate::ingest::ingest_live`],
//! which stores a partial batch once the file goes quiet, so an event is durable and
//! visible well within a second of being written. The position of the last stored line
//! (the file's device and inode, and a byte offset) is kept in `<data>/follow/`, so a
//! restart resumes there. The checkpoint is written after the events are durable, never
//! before: a crash in between makes the follower read some lines again, which stores
//! nothing twice (events are recognised by `ID`), and it never skips one.
//!
//! Rotation: when the path names another file (renamed and recreated), the old file is
//! read to its end and the new one from its start; when the file shrinks (truncated), it
//! is read again from its start. A restart whose checkpointed file was rotated meanwhile
//! finds it beside the path by its inode and finishes it first.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::directory::write_atomic;
use crate::events::EventReader;
use crate::ingest::{
    INGEST_BATCH, IngestAnswer, IngestObserver, MAX_BATCH_DELAY, READ_AHEAD, ReadLine,
    RejectedLine, ingest_live,
};
use crate::service::{IngestQueue, Input, ServiceError};

/// How often a quiet file is looked at again.
const POLL: Duration = Duration::from_millis(100);
/// The checkpoint is rewritten at most this often (and at the end).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// A file's identity: it survives renames, and a recreated file gets a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            dev: metadata.dev(),
            ino: metadata.ino(),
        }
    }
}

/// Where a line of the followed log starts and ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowPos {
    pub file: FileId,
    pub start: u64,
    pub end: u64,
}

/// What `<data>/follow/<key>.json` holds: every line before `offset` of that file is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub path: PathBuf,
    pub file: FileId,
    pub offset: u64,
}

/// Progress of the followers of one process, for `/metrics`.
#[derive(Default)]
pub struct FollowStats {
    pub lines: AtomicU64,
    pub events_stored: AtomicU64,
    pub rejected: AtomicU64,
    pub skipped: AtomicU64,
    /// Bytes written to the followed file that are not stored yet.
    pub lag_bytes: AtomicU64,
    /// Unix time of the last stored batch, in seconds.
    pub last_commit_unix: AtomicU64,
    pub rotations: AtomicU64,
}

/// The checkpoint file for `path` inside `data_dir`.
pub fn checkpoint_path(data_dir: &Path, path: &Path) -> PathBuf {
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    data_dir
        .join("follow")
        .join(format!("{}.json", &hex::encode(digest)[..16]))
}

pub fn read_checkpoint(file: &Path) -> Option<Checkpoint> {
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

/// Where a follower starts.
struct Plan {
    /// A rotated file to finish first, if the checkpoint names one that is still there.
    rotated: Option<(File, FileId, u64)>,
    /// The offset to start the current file at, if the checkpoint names it.
    current_offset: Option<(FileId, u64)>,
}

/// Follows `path` until `cancelled` is set, storing its `connection_log` lines. Returns the
/// answer so far when cancelled; a storage failure stops it with the answer so far.
pub fn follow(
    queue: &IngestQueue,
    data_dir: &Path,
    path: &Path,
    stats: Arc<FollowStats>,
    cancelled: Arc<AtomicBool>,
    report: &mut dyn FnMut(&str),
) -> Result<IngestAnswer, (IngestAnswer, ServiceError)> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let checkpoint_file = checkpoint_path(data_dir, &path);
    let plan = plan(&path, read_checkpoint(&checkpoint_file).as_ref(), report);
    let (tx, rx) = sync_channel(READ_AHEAD);
    let reader = {
        let (path, stats, cancelled) = (path.clone(), stats.clone(), cancelled.clone());
        std::thread::Builder::new()
            .name("connlog-follow".into())
            .spawn(move || read_file(&path, plan, &tx, &stats, &cancelled))
            .expect("spawning the follower")
    };
    let mut observer = Observer {
        path: path.clone(),
        checkpoint_file,
        pending: None,
        last_write: None,
        counted: (0, 0),
        stats,
        report,
    };
    let outcome = ingest_live(
        queue,
        &rx,
        Input::Endless,
        INGEST_BATCH,
        MAX_BATCH_DELAY,
        &mut observer,
    );
    // Stops the reader if the store failed; it ends by itself when cancelled.
    drop(rx);
    cancelled.store(true, Ordering::SeqCst);
    if let Err(message) = reader.join().unwrap_or(Ok(())) {
        (observer.report)(&message);
    }
    observer.flush_checkpoint();
    outcome
}

fn plan(path: &Path, checkpoint: Option<&Checkpoint>, report: &mut dyn FnMut(&str)) -> Plan {
    let Some(checkpoint) = checkpoint else {
        return Plan {
            rotated: None,
            current_offset: None,
        };
    };
    let current = std::fs::metadata(path).ok().map(|m| FileId::of(&m));
    if current == Some(checkpoint.file) {
        return Plan {
            rotated: None,
            current_offset: Some((checkpoint.file, checkpoint.offset)),
        };
    }
    // Rotated while we were away: look for the old file beside the path.
    let sibling = path
        .parent()
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .and_then(|entries| {
            entries.flatten().find_map(|entry| {
                let metadata = entry.metadata().ok()?;
                (metadata.is_file() && FileId::of(&metadata) == checkpoint.file)
                    .then(|| entry.path())
            })
        });
    match sibling.and_then(|p| File::open(&p).ok().map(|f| (p, f))) {
        Some((rotated_path, file)) => {
            report(&format!(
                "connlog: {} was rotated while connlog was stopped; finishing {} from byte {} first",
                path.display(),
                rotated_path.display(),
                checkpoint.offset
            ));
            Plan {
                rotated: Some((file, checkpoint.file, checkpoint.offset)),
                current_offset: None,
            }
        }
        None => {
            report(&format!(
                "connlog: the file followed before (inode {}) is gone; lines written to it after byte {} were not read",
                checkpoint.file.ino, checkpoint.offset
            ));
            Plan {
                rotated: None,
                current_offset: None,
            }
        }
    }
}

/// Why a tail stopped reading its file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TailEnd {
    /// The reader reached the end of a file that will not grow (rotated away).
    Finished,
    /// The path now names another file.
    Rotated,
    /// The file is shorter than what was read: it was truncated.
    Truncated,
    Cancelled,
}

/// How much of a file's start is remembered to notice it was truncated and written again
/// (its size alone cannot tell when the new content is as long as what was read).
const HEAD_BYTES: usize = 256;

/// A file read as it grows: at its end, waits for more, and ends when it is rotated away,
/// truncated, or the follower is cancelled.
struct Tail<'a> {
    file: File,
    id: FileId,
    path: &'a Path,
    position: u64,
    /// The file's first bytes as they were when read.
    head: Vec<u8>,
    /// Keep waiting at the end (false for a rotated file: it is read once to its end).
    follow: bool,
    cancelled: &'a AtomicBool,
    end: Option<TailEnd>,
}

impl Read for Tail<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.file.read(buf)?;
            if n > 0 {
                self.position += n as u64;
                return Ok(n);
            }
            if !self.follow {
                self.end = Some(TailEnd::Finished);
                return Ok(0);
            }
            let size = self.file.metadata()?.len();
            if size < self.position || !self.same_head()? {
                self.end = Some(TailEnd::Truncated);
                return Ok(0);
            }
            match std::fs::metadata(self.path) {
                Ok(m) if FileId::of(&m) != self.id => {
                    // Whatever was written to the old file before the switch is read first.
                    let n = self.file.read(buf)?;
                    if n > 0 {
                        self.position += n as u64;
                        return Ok(n);
                    }
                    self.end = Some(TailEnd::Rotated);
                    return Ok(0);
                }
                _ => {}
            }
            if self.cancelled.load(Ordering::SeqCst) {
                self.end = Some(TailEnd::Cancelled);
                return Ok(0);
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Tail<'_> {
    /// Whether the file still starts as it did; remembers more of its start as it grows.
    fn same_head(&mut self) -> io::Result<bool> {
        let want = HEAD_BYTES.min(usize::try_from(self.position).unwrap_or(HEAD_BYTES));
        let mut now = vec![0u8; want];
        let n = read_at_most(&self.file, &mut now)?;
        now.truncate(n);
        let known = self.head.len().min(n);
        if now[..known] != self.head[..known] || n < self.head.len() {
            return Ok(false);
        }
        self.head = now;
        Ok(true)
    }
}

/// Reads from the start of `file` into `buf`, as much as there is.
fn read_at_most(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The reader thread: sends every line of the followed file(s), in order, with its position.
fn read_file(
    path: &Path,
    plan: Plan,
    tx: &SyncSender<ReadLine<FollowPos>>,
    stats: &FollowStats,
    cancelled: &AtomicBool,
) -> Result<(), String> {
    if let Some((file, id, offset)) = plan.rotated {
        match read_one(path, file, id, offset, false, tx, stats, cancelled)? {
            TailEnd::Cancelled => return Ok(()),
            _ => stats.rotations.fetch_add(1, Ordering::Relaxed),
        };
    }
    let mut resume = plan.current_offset;
    let mut waiting_reported = false;
    loop {
        if cancelled.load(Ordering::SeqCst) {
            return Ok(());
        }
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !waiting_reported {
                    tracing::info!(path = %path.display(), "waiting for the log file to appear");
                    waiting_reported = true;
                }
                std::thread::sleep(POLL);
                continue;
            }
            Err(e) => return Err(format!("connlog: cannot read {}: {e}", path.display())),
        };
        let id = FileId::of(&file.metadata().map_err(|e| e.to_string())?);
        let offset = match resume.take() {
            Some((resumed, offset)) if resumed == id => offset,
            _ => 0,
        };
        match read_one(path, file, id, offset, true, tx, stats, cancelled)? {
            TailEnd::Cancelled | TailEnd::Finished => return Ok(()),
            TailEnd::Rotated | TailEnd::Truncated => {
                stats.rotations.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn read_one(
    path: &Path,
    mut file: File,
    id: FileId,
    offset: u64,
    follow: bool,
    tx: &SyncSender<ReadLine<FollowPos>>,
    stats: &FollowStats,
    cancelled: &AtomicBool,
) -> Result<TailEnd, String> {
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    // A file shorter than the checkpoint was truncated while we were away.
    let offset = if offset > size { 0 } else { offset };
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("connlog: cannot read {}: {e}", path.display()))?;
    let mut head = vec![0u8; HEAD_BYTES.min(usize::try_from(offset).unwrap_or(HEAD_BYTES))];
    let n = read_at_most(&file, &mut head)
        .map_err(|e| format!("connlog: cannot read {}: {e}", path.display()))?;
    head.truncate(n);
    let mut tail = Tail {
        file,
        id,
        path,
        position: offset,
        head,
        follow,
        cancelled,
        end: None,
    };
    let mut reader = EventReader::new(BufReader::with_capacity(1 << 16, &mut tail));
    let mut start = offset;
    while let Some(line) = reader.next() {
        if cancelled.load(Ordering::SeqCst) {
            return Ok(TailEnd::Cancelled);
        }
        let end = offset + reader.bytes_consumed();
        stats.lines.fetch_add(1, Ordering::Relaxed);
        let pos = FollowPos {
            file: id,
            start,
            end,
        };
        start = end;
        if tx.send(ReadLine { line, end: pos }).is_err() {
            return Ok(TailEnd::Cancelled);
        }
    }
    drop(reader);
    Ok(tail.end.unwrap_or(TailEnd::Finished))
}

struct Observer<'a> {
    path: PathBuf,
    checkpoint_file: PathBuf,
    /// The position of the last stored line, not yet written to the checkpoint file.
    pending: Option<Checkpoint>,
    last_write: Option<Instant>,
    /// What the answer held at the last commit, so that shared stats get the difference.
    counted: (u64, u64),
    stats: Arc<FollowStats>,
    report: &'a mut dyn FnMut(&str),
}

impl Observer<'_> {
    fn flush_checkpoint(&mut self) {
        let Some(checkpoint) = self.pending.take() else {
            return;
        };
        if let Some(dir) = self.checkpoint_file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let json = serde_json::to_vec(&checkpoint).expect("plain data");
        self.last_write = Some(Instant::now());
        if let Err(e) = write_atomic(&self.checkpoint_file, &json) {
            tracing::warn!(error = %e, "cannot write the follow checkpoint; a restart reads some lines again (they are stored once)");
        }
    }
}

impl IngestObserver<FollowPos> for Observer<'_> {
    fn rejected(&mut self, line: &RejectedLine, at: &FollowPos) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        (self.report)(&format!(
            "connlog: {} at byte {}: {}",
            self.path.display(),
            at.start,
            line.error
        ));
    }

    fn committed(&mut self, answer: &IngestAnswer, at: &FollowPos) {
        let (accepted, skipped) = self.counted;
        self.stats
            .events_stored
            .fetch_add(answer.accepted - accepted, Ordering::Relaxed);
        self.stats
            .skipped
            .fetch_add(answer.skipped - skipped, Ordering::Relaxed);
        self.counted = (answer.accepted, answer.skipped);
        let size = std::fs::metadata(&self.path).map_or(at.end, |m| m.len());
        self.stats
            .lag_bytes
            .store(size.saturating_sub(at.end), Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.stats.last_commit_unix.store(now, Ordering::Relaxed);
        self.pending = Some(Checkpoint {
            path: self.path.clone(),
            file: at.file,
            offset: at.end,
        });
        if self
            .last_write
            .is_none_or(|t| t.elapsed() >= CHECKPOINT_EVERY)
        {
            self.flush_checkpoint();
        }
    }
}
