//! Snapshots from a forked copy of the process, as Redis's `BGSAVE` writes its dumps: the
//! child holds the running instance exactly as it was at the fork (the kernel shares its
//! pages, copying one only when the parent writes to it) and saves it, while the service
//! goes on merging. The background writer's other way, bringing a second instance up from
//! the store, merges every event the stored snapshot does not cover a second time: during
//! a 10M-row load over HTTP such a job took 9–37 s of a core, where a forked save took
//! 2–4 s. A fork holds the service only while the kernel copies the process's page tables
//! (12–15 ms at 5–7M rows).
//!
//! The child is a copy of a process with many threads, of which only the forking one runs
//! in it, so it does only what cannot wait on another thread's lock: it calls the plugin
//! (whose `Store` the forking thread owns under the service's lock), writes the snapshot
//! file it was handed, and reports on a pipe. It never touches SQLite (its connections'
//! locks are the parent's) and logs nothing of its own. Should it still block on a lock
//! some other thread held at the fork (a trap's debug line, a plugin being loaded), or the
//! plugin's call spin (the epoch thread that would interrupt it is not in the child), the
//! parent kills it at the plugin's call deadline; a child whose parent died ends itself by
//! an alarm a second later. It closes every other descriptor first (a listening socket or
//! the data directory's lock must not outlive the parent in it) and leaves with `_exit`,
//! running no destructor: a dropped SQLite connection would checkpoint the parent's WAL.

use std::io::{PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::ServiceError;
use super::transactions::no_store;
use crate::plugin::PluginInstance;
use crate::store::{Journal, SnapshotBytes, SnapshotWrite, WrittenSnapshot};

/// How often the parent looks for the child's report, and at a stop.
const POLL: Duration = Duration::from_millis(50);

/// A report's first byte.
const SAVED: u8 = 0;
const FAILED: u8 = 1;
/// A failure's message is cut to this many bytes, so that a report always fits the pipe.
const MESSAGE_MAX: usize = 4096;

/// A child saving a snapshot of the instance as it was at the fork.
pub(super) struct Forked {
    child: Child,
    report: PipeReader,
    file: SnapshotWrite,
    plugin_digest: String,
    rows: u64,
    /// The merged position at the fork: the snapshot holds exactly the events up to it.
    last_seq: i64,
    /// The recorded snapshot file it may replace, and the purges it includes (`id` up to
    /// this mark): both read at the fork, as a bring-up reads them from its pinned view.
    pub replaces: Option<String>,
    pub purge_mark: i64,
    /// The plugin's call deadline, which the child cannot enforce on itself (the epoch
    /// thread that would is not in it).
    deadline: Duration,
    started: Instant,
}

/// Forks a child that saves `instance`'s snapshot into a new file. The service holds
/// `instance` settled: it holds every event up to `last_seq`, all durable.
pub(super) fn fork_save(
    instance: &mut PluginInstance,
    plugin_digest: &str,
    rows: u64,
    last_seq: i64,
    deadline: Duration,
) -> Result<Forked, ServiceError> {
    fn attached(instance: &mut PluginInstance) -> Result<&mut Journal, ServiceError> {
        instance.state_mut().journal.as_mut().ok_or_else(no_store)
    }
    let storage = ServiceError::Storage;
    let journal = attached(instance)?;
    let replaces = journal.recorded_snapshot_file().map_err(storage)?;
    let purge_mark = journal.purge_mark().map_err(storage)?;
    journal.start_snapshot_write().map_err(storage)?;
    let keep_fd = journal.snapshot_write_fd();
    let unavailable = |what: &str, e: std::io::Error| {
        ServiceError::Storage(crate::model::StorageError::Unavailable(format!(
            "{what} for a snapshot: {e}"
        )))
    };
    let (report, report_to) = match std::io::pipe() {
        Ok(pipe) => pipe,
        Err(e) => {
            journal.abandon_snapshot_write();
            return Err(unavailable("a pipe", e));
        }
    };
    let parent = std::process::id();
    // SAFETY: the child runs only `child_main`, which keeps to what the module comment
    // lists and never returns.
    let child = match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => {
            drop(report);
            child_main(instance, report_to, keep_fd, parent, deadline)
        }
        child => Ok(child),
    };
    drop(report_to);
    let file = attached(instance)?
        .take_snapshot_write()
        .expect("the snapshot write started above");
    let child = match child {
        Ok(child) => child,
        Err(e) => {
            file.abandon();
            return Err(unavailable("forking the process", e));
        }
    };
    Ok(Forked {
        child: Child(child),
        report,
        file,
        plugin_digest: plugin_digest.to_string(),
        rows,
        last_seq,
        replaces,
        purge_mark,
        deadline,
        started: Instant::now(),
    })
}

impl Forked {
    /// Waits for the child and makes its file durable under its final name (unrecorded).
    /// `None` when `cancel` was set meanwhile: the child is killed and its file removed, as
    /// on any failure.
    pub fn wait(mut self, cancel: &AtomicBool) -> anyhow::Result<Option<WrittenSnapshot>> {
        let wrote = match self.report_or_stop(cancel) {
            Ok(Some(report)) => self.child.reap().and_then(|code| match code {
                0 => decode(&report).map(Some),
                code => bail!("the snapshot's process exited with code {code}"),
            }),
            stopped_or_late => {
                self.child.kill();
                stopped_or_late.map(|_| None)
            }
        };
        let wrote = match wrote {
            Ok(Some(wrote)) => wrote,
            failed_or_stopped => {
                self.file.abandon();
                return failed_or_stopped.map(|_| None);
            }
        };
        let written = self
            .file
            .finish(wrote, &self.plugin_digest, self.rows, self.last_seq)
            .context("naming the snapshot file")?;
        tracing::debug!(
            bytes = wrote.bytes,
            elapsed_ms = self.started.elapsed().as_millis() as u64,
            "snapshot saved by a forked process"
        );
        Ok(Some(written))
    }

    /// Reads the child's report until it closes the pipe (it exits next). `None` when
    /// cancelled; an error past the deadline.
    fn report_or_stop(&mut self, cancel: &AtomicBool) -> anyhow::Result<Option<Vec<u8>>> {
        let mut report = Vec::new();
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Ok(None);
            }
            if self.started.elapsed() > self.deadline {
                bail!(
                    "the snapshot's process ran past the plugin's deadline ({:?})",
                    self.deadline
                );
            }
            let mut poll = libc::pollfd {
                fd: self.report.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid `pollfd` for the pipe this struct owns.
            let ready = unsafe { libc::poll(&mut poll, 1, POLL.as_millis() as libc::c_int) };
            if ready <= 0 {
                continue;
            }
            let mut buf = [0u8; 1024];
            match self.report.read(&mut buf) {
                Ok(0) => return Ok(Some(report)),
                Ok(n) => report.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("reading the snapshot's process's report"),
            }
        }
    }
}

/// The child's process id until it is reaped. Dropped before, say by a panic between the
/// fork and `Forked::wait`, it kills and reaps the child, so that no copy saves on
/// unwatched; its unnamed file is then left to a sweep.
struct Child(libc::pid_t);

impl Child {
    /// Waits for the child to end: its exit code, or an error naming the signal that ended
    /// it.
    fn reap(&mut self) -> anyhow::Result<i32> {
        let child = std::mem::replace(&mut self.0, 0);
        if child <= 0 {
            // `waitpid(0)` would wait for any child of the process group.
            bail!("the snapshot's process was already reaped");
        }
        let mut status = 0;
        loop {
            // SAFETY: waiting for our own child, which nothing else waits for.
            let r = unsafe { libc::waitpid(child, &mut status, 0) };
            if r == child {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e).context("waiting for the snapshot's process");
            }
        }
        exit_code(status)
    }

    fn kill(&mut self) {
        if self.0 > 0 {
            // SAFETY: signalling our own child, not yet reaped (its id is still ours).
            unsafe { libc::kill(self.0, libc::SIGKILL) };
            let _ = self.reap();
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

fn exit_code(status: libc::c_int) -> anyhow::Result<i32> {
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else {
        bail!(
            "the snapshot's process was ended by signal {}",
            libc::WTERMSIG(status)
        )
    }
}

fn encode(saved: &Result<SnapshotBytes, String>) -> Vec<u8> {
    match saved {
        Ok(wrote) => {
            let mut out = vec![SAVED];
            out.extend_from_slice(&wrote.bytes.to_le_bytes());
            out.extend_from_slice(&wrote.chunks.to_le_bytes());
            out.extend_from_slice(&wrote.sha256);
            out
        }
        Err(message) => {
            let mut out = vec![FAILED];
            let mut end = message.len().min(MESSAGE_MAX);
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            out.extend_from_slice(&message.as_bytes()[..end]);
            out
        }
    }
}

fn decode(report: &[u8]) -> anyhow::Result<SnapshotBytes> {
    match report.split_first() {
        Some((&SAVED, rest)) if rest.len() == 48 => Ok(SnapshotBytes {
            bytes: u64::from_le_bytes(rest[..8].try_into().expect("8 bytes")),
            chunks: u64::from_le_bytes(rest[8..16].try_into().expect("8 bytes")),
            sha256: rest[16..].try_into().expect("32 bytes"),
        }),
        Some((&FAILED, message)) => bail!(
            "the snapshot's process failed: {}",
            String::from_utf8_lossy(message)
        ),
        _ => bail!("the snapshot's process ended without a report"),
    }
}

/// The child: saves, reports, exits.
fn child_main(
    instance: &mut PluginInstance,
    mut report_to: PipeWriter,
    keep_fd: Option<RawFd>,
    parent: u32,
    deadline: Duration,
) -> ! {
    // SAFETY (every call here): plain system calls on this process's own state.
    unsafe {
        // The parent may have died before this line (it then never reads the report).
        if libc::getppid() as u32 != parent {
            libc::_exit(2);
        }
        // A terminal's Ctrl-C reaches the whole process group: it ends the child, instead
        // of running the parent's handlers, which write to descriptors it shares.
        for signal in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGALRM,
        ] {
            libc::signal(signal, libc::SIG_DFL);
        }
        // Past the deadline the parent kills the child; one whose parent is gone ends here.
        libc::alarm((deadline.as_secs_f64().ceil() as u32).saturating_add(1));
        close_all_but(&[
            libc::STDERR_FILENO,
            report_to.as_raw_fd(),
            keep_fd.unwrap_or(libc::STDERR_FILENO),
        ]);
    }
    let saved = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        match instance.save_snapshot() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("the plugin could not save: {e}")),
            Err(trap) => return Err(trap.to_string()),
        }
        match instance.state_mut().journal.as_mut() {
            Some(journal) => journal.sync_snapshot_write().map_err(|e| e.to_string()),
            None => Err("no store is attached".into()),
        }
    }))
    .unwrap_or_else(|_| Err("the snapshot's process panicked".into()));
    let code = match report_to.write_all(&encode(&saved)) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    // SAFETY: ends this process without running anything of the parent's.
    unsafe { libc::_exit(code) }
}

/// Closes every descriptor but `keep` (0 and 1 included: nothing reads or writes them).
///
/// # Safety
/// Only in the forked child, which uses no descriptor it closes.
unsafe fn close_all_but(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.to_vec();
    keep.sort_unstable();
    keep.dedup();
    let mut from: u32 = 0;
    for fd in keep {
        let fd = fd as u32;
        if fd > from {
            // SAFETY: the caller's.
            unsafe { libc::close_range(from, fd - 1, 0) };
        }
        from = fd + 1;
    }
    // SAFETY: the caller's.
    unsafe { libc::close_range(from, u32::MAX, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::fixtures::{cid, eid, ssh_connect};
    use crate::service::{ConnLog, snapshot, test_config};

    const ROWS: u64 = 500;

    fn service_with_rows(data: &std::path::Path) -> ConnLog {
        service_of(ConnLog::open(test_config(data)).unwrap())
    }

    fn service_of(mut service: ConnLog) -> ConnLog {
        let events = (0..ROWS)
            .map(|n| ssh_connect(eid(n), 1_000 + n as i64, cid(n)))
            .collect();
        service.ingest(events).unwrap();
        service
    }

    fn fork(service: &mut ConnLog, deadline: Duration) -> Forked {
        let rows = service.stats().unwrap().rows;
        let digest = service.plugin.digest.clone();
        fork_save(
            &mut service.instance,
            &digest,
            rows,
            service.merged_upto,
            deadline,
        )
        .unwrap()
    }

    fn snapshot_files(data: &std::path::Path) -> usize {
        std::fs::read_dir(data.join(crate::store::snapshot_file::DIR))
            .map(|dir| dir.count())
            .unwrap_or(0)
    }

    #[test]
    fn a_forked_copy_saves_the_snapshot_the_running_instance_would() {
        let data = tempfile::tempdir().unwrap();
        let mut service = service_with_rows(data.path());
        let forked = fork(&mut service, Duration::from_secs(60));
        let (rows, last_seq) = (forked.rows, forked.last_seq);
        let written = forked
            .wait(&AtomicBool::new(false))
            .unwrap()
            .expect("not cancelled");
        let digest = service.plugin.digest.clone();
        let saved = snapshot::write_file(&mut service.instance, &digest, rows, last_seq).unwrap();
        let info = |w: &WrittenSnapshot| {
            let i = &w.info;
            (i.bytes, i.chunks, i.sha256.clone(), i.rows, i.last_seq)
        };
        assert!(written.info.bytes > 0);
        assert_eq!(info(&written), info(&saved));
        assert_ne!(written.info.file, saved.info.file);
        assert_eq!(rows, ROWS);
        // The running instance went on as if nothing happened.
        assert!(!service.instance.is_poisoned());
        assert_eq!(service.stats().unwrap().rows, ROWS);
        written.discard();
        saved.discard();
        assert_eq!(snapshot_files(data.path()), 0);
    }

    /// The pair of the test above: a copy that is stopped, or runs past the plugin's
    /// deadline, is killed and its file removed.
    #[test]
    fn a_forked_copy_that_is_stopped_or_late_leaves_no_file() {
        let data = tempfile::tempdir().unwrap();
        let mut service = service_with_rows(data.path());
        let stopped = fork(&mut service, Duration::from_secs(60))
            .wait(&AtomicBool::new(true))
            .unwrap();
        assert!(stopped.is_none());
        assert_eq!(snapshot_files(data.path()), 0);
        let late = fork(&mut service, Duration::ZERO)
            .wait(&AtomicBool::new(false))
            .err()
            .expect("past the deadline");
        assert!(late.to_string().contains("deadline"), "{late}");
        assert_eq!(snapshot_files(data.path()), 0);
        assert!(!service.instance.is_poisoned());
    }

    #[test]
    fn a_forked_copy_dropped_unwatched_is_killed_and_reaped() {
        let data = tempfile::tempdir().unwrap();
        let mut service = service_with_rows(data.path());
        let forked = fork(&mut service, Duration::from_secs(60));
        let pid = forked.child.0;
        drop(forked);
        // SAFETY: signal 0 only asks whether the id names a process of ours.
        let alive = unsafe { libc::kill(pid, 0) };
        let error = std::io::Error::last_os_error();
        assert_eq!(alive, -1, "the child {pid} is still there");
        assert_eq!(error.raw_os_error(), Some(libc::ESRCH));
    }

    /// A service on the faulty plugin with rows and `marker`: stored like any event, it sets
    /// what the plugin's saves do from then on.
    fn faulty_service(data: &std::path::Path, marker: &str) -> ConnLog {
        let mut config = test_config(data);
        config.plugin = crate::plugin::PluginSpec::plain(crate::plugin::PluginSource::File(
            connlog_test_plugins::FAULTY_PLUGIN.into(),
        ));
        let mut service = service_of(ConnLog::open(config).unwrap());
        let mut event = ssh_connect(eid(ROWS), 1_000, cid(ROWS));
        event.agent_name = marker.into();
        service.ingest(vec![event]).unwrap();
        service
    }

    /// The pair of `a_forked_copy_that_is_stopped_or_late_leaves_no_file` with no parent
    /// watching (as when it died): a copy whose save spins ends itself by an alarm, a
    /// second past the plugin's deadline.
    #[test]
    fn a_forked_copy_that_no_one_watches_ends_itself_past_the_deadline() {
        let data = tempfile::tempdir().unwrap();
        let mut service = faulty_service(data.path(), "fault:save-loop");
        let Forked {
            mut child, file, ..
        } = fork(&mut service, Duration::from_secs(1));
        let started = Instant::now();
        let mut status = 0;
        // SAFETY: polling our own child, which nothing else waits for.
        while unsafe { libc::waitpid(child.0, &mut status, libc::WNOHANG) } != child.0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the copy is still running"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.0 = 0;
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGALRM,
            "the copy ended with status {status:#x}"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(1500),
            "not before its alarm"
        );
        file.abandon();
        assert_eq!(snapshot_files(data.path()), 0);
        assert!(!service.instance.is_poisoned());
    }

    /// A plugin that panics in `save-snapshot` fails the copy's save only: the running
    /// instance never made the call.
    #[test]
    fn a_save_that_fails_in_the_copy_costs_the_running_instance_nothing() {
        let data = tempfile::tempdir().unwrap();
        let mut service = faulty_service(data.path(), "fault:save-panic");
        let failed = fork(&mut service, Duration::from_secs(60))
            .wait(&AtomicBool::new(false))
            .err()
            .expect("the save panics");
        assert!(
            failed
                .to_string()
                .starts_with("the snapshot's process failed: "),
            "{failed}"
        );
        assert_eq!(snapshot_files(data.path()), 0);
        assert!(!service.instance.is_poisoned());
        assert_eq!(service.stats().unwrap().rows, ROWS + 1);
        assert_eq!(service.counters().instance_restarts, 0);
    }

    #[test]
    fn a_report_says_what_was_written_or_why_not() {
        let wrote = SnapshotBytes {
            bytes: 1 << 40,
            chunks: 7,
            sha256: [0xab; 32],
        };
        assert_eq!(decode(&encode(&Ok(wrote))).unwrap(), wrote);
        let failed = decode(&encode(&Err("the plugin trapped".into()))).unwrap_err();
        assert_eq!(
            failed.to_string(),
            "the snapshot's process failed: the plugin trapped"
        );
        // A long message is cut at a character boundary, so that it fits the pipe.
        let long = "é".repeat(MESSAGE_MAX);
        let encoded = encode(&Err(long));
        assert!(encoded.len() <= MESSAGE_MAX + 1);
        assert!(std::str::from_utf8(&encoded[1..]).is_ok());
        for truncated in [&[][..], &[SAVED, 1, 2][..], &[9][..]] {
            assert_eq!(
                decode(truncated).unwrap_err().to_string(),
                "the snapshot's process ended without a report",
                "{truncated:?}"
            );
        }
    }
}
