//! The store file's checkpoints during ingest, on a thread of their own.
//!
//! In WAL mode SQLite appends each commit's pages to the WAL and copies them into the store
//! file later, in a checkpoint. By default the commit that takes the WAL past 1,000 pages
//! runs that checkpoint itself, copying and syncing before it returns, and an ingest
//! group's commit waited for it (the 1M file ingest: 1.3 s of its 10 s in commits, half of
//! that in checkpoints). Here a thread copies the frames after each group's commit while
//! the plugin merges the next group. The copying still takes a core: a file ingest, which
//! keeps both busy, loads no faster; HTTP callers get their answers sooner.
//!
//! The inserter's connection still checkpoints by itself once the WAL holds
//! `BACKSTOP_PAGES`. By then this thread has copied nearly every frame, so that checkpoint
//! is short, and it lets the WAL start over at the next group: SQLite starts it over only
//! when a write begins with every frame copied, a moment that a checkpoint on another
//! thread seldom meets while groups follow one another.
//!
//! A checkpoint writes the store file, so each one runs under the running seal and seals
//! the file as it left it (`seal::Keeper::checkpoint`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::seal;

/// The WAL's size, in pages, past which the inserter's own commit checkpoints (64 MiB of
/// 4 KiB pages).
pub const BACKSTOP_PAGES: u32 = 16_384;

/// The least time between two checkpoints: commits that come faster (HTTP groups of a
/// batch or two) share one, and a page they all changed is copied once.
const PAUSE: Duration = Duration::from_millis(50);

pub struct Checkpointer {
    store: PathBuf,
    seal: seal::Keeper,
    shared: Arc<Shared>,
    /// Started by the first `nudge`: a command that never ingests costs no thread.
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Commits added frames since the last checkpoint began.
    due: bool,
    stopped: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Checkpointer {
    pub fn new(store: &Path, seal: seal::Keeper) -> Self {
        Self {
            store: store.to_path_buf(),
            seal,
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            }),
            thread: None,
        }
    }

    /// A commit added frames to the WAL: have them copied soon.
    pub fn nudge(&mut self) {
        let mut state = self.shared.lock();
        if state.stopped {
            return;
        }
        state.due = true;
        drop(state);
        if self.thread.is_none() {
            let (store, seal, shared) =
                (self.store.clone(), self.seal.clone(), self.shared.clone());
            match std::thread::Builder::new()
                .name("connlog-checkpointer".into())
                .spawn(move || run(&store, &seal, &shared))
            {
                Ok(thread) => self.thread = Some(thread),
                // The inserter's own checkpoints (`BACKSTOP_PAGES`) still bound the WAL.
                Err(e) => {
                    tracing::warn!(error = %e, "the checkpointer did not start; commits checkpoint by themselves");
                    self.shared.lock().stopped = true;
                }
            }
        }
        self.shared.changed.notify_one();
    }

    /// Ends the thread, after the checkpoint it is running if any. Nudges after this do
    /// nothing.
    pub fn stop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.changed.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(store: &Path, seal: &seal::Keeper, shared: &Shared) {
    let conn = match rusqlite::Connection::open(store) {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(error = %e, "the checkpointer could not open the store; commits checkpoint by themselves");
            return;
        }
    };
    loop {
        {
            let mut state = shared.lock();
            while !state.due && !state.stopped {
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.stopped {
                return;
            }
            state.due = false;
        }
        // PASSIVE never waits: it copies what no reader still needs, and a checkpoint
        // already running elsewhere (the background writer's) makes it return at once.
        let copied =
            seal.checkpoint(|| conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())));
        if let Err(e) = copied {
            tracing::warn!(error = %e, "a checkpoint failed; the next commit tries again");
        }
        let state = shared.lock();
        let _ = shared
            .changed
            .wait_timeout_while(state, PAUSE, |state| !state.stopped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in WAL mode whose connection checkpoints only past `backstop` pages, as the
    /// inserter's does.
    fn store(backstop: u32) -> (tempfile::TempDir, PathBuf, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connlog.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = {backstop};
             CREATE TABLE t (x BLOB);"
        ))
        .unwrap();
        (dir, path, conn)
    }

    /// Commits `n` transactions of 100 pages each.
    fn commit(conn: &rusqlite::Connection, n: usize) {
        for _ in 0..n {
            conn.execute_batch(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 100)
                 INSERT INTO t SELECT randomblob(4000) FROM s",
            )
            .unwrap();
        }
    }

    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    #[test]
    fn frames_are_copied_into_the_file_and_the_file_is_sealed() {
        let (_dir, path, conn) = store(BACKSTOP_PAGES);
        let mut checkpointer = Checkpointer::new(&path, seal::Keeper::new(&path));
        let before = file_len(&path);
        commit(&conn, 3);
        checkpointer.nudge();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while file_len(&path) < before + 300 * 4000 {
            assert!(std::time::Instant::now() < deadline, "nothing was copied");
            std::thread::sleep(Duration::from_millis(10));
        }
        checkpointer.stop();
        assert_eq!(
            seal::take(&path).unwrap(),
            Some(seal::Seal::Running),
            "the file as the checkpoint left it is sealed"
        );
    }

    #[test]
    fn the_wal_starts_over_once_it_reaches_the_backstop() {
        const BACKSTOP: u64 = 250;
        let (_dir, path, conn) = store(BACKSTOP as u32);
        let mut checkpointer = Checkpointer::new(&path, seal::Keeper::new(&path));
        for _ in 0..20 {
            commit(&conn, 1);
            checkpointer.nudge();
            std::thread::sleep(Duration::from_millis(5));
        }
        checkpointer.stop();
        // A WAL that starts over is written from its beginning again: its file keeps the
        // size it once reached (frames of 4 KiB and a 24-byte header each).
        let most = (BACKSTOP + 2 * 100) * (4096 + 24) + 32;
        let wal = file_len(&seal::wal_path(&path));
        assert!(
            wal > 0 && wal <= most,
            "a WAL of {wal} bytes after 2,000 pages"
        );
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2000);
    }

    #[test]
    fn a_stopped_checkpointer_starts_no_thread() {
        let (_dir, path, _conn) = store(BACKSTOP_PAGES);
        let mut checkpointer = Checkpointer::new(&path, seal::Keeper::new(&path));
        checkpointer.stop();
        checkpointer.nudge();
        assert!(checkpointer.thread.is_none());
    }
}
