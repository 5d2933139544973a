//! What a command runs against: the data directory its process owns, and the standard
//! streams of whoever asked (this process's own, or a client's over the local channel).

use std::io::{Read, Write};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use crate::model::Actor;

use super::{CliError, GlobalOptions};
use crate::directory::Directory;
use crate::follow::FollowStats;
use crate::local::{FrameSink, LocalServer, PROGRESS, Progress};
use crate::owner::DirectoryLock;
use crate::server::Authenticator;
use crate::service::{IngestQueue, SharedConnLog};

/// The data directory, owned by this process: its lock, its options, and the service once
/// a command needed it. While the service is open, the local channel serves other
/// commands through it.
pub struct OwnedDataDir {
    pub global: GlobalOptions,
    lock: Mutex<DirectoryLock>,
    /// The service once open, with the queue every ingest into it goes through.
    service: Mutex<Option<Arc<IngestQueue>>>,
    local: Mutex<Option<LocalServer>>,
    /// A server's directory, re-read when its file changes; commands without a server read
    /// the file when they need it.
    auth: Option<Arc<Authenticator>>,
    pub follow_stats: Arc<FollowStats>,
    directory_file: Mutex<()>,
}

impl OwnedDataDir {
    pub fn new(global: GlobalOptions, lock: DirectoryLock) -> Arc<Self> {
        Arc::new(Self {
            global,
            lock: Mutex::new(lock),
            service: Mutex::new(None),
            local: Mutex::new(None),
            auth: None,
            follow_stats: Arc::default(),
            directory_file: Mutex::new(()),
        })
    }

    /// A server's data directory: the service is open already, and the directory is the
    /// server's authenticator's.
    pub fn serving(
        global: GlobalOptions,
        lock: DirectoryLock,
        service: Arc<IngestQueue>,
        auth: Arc<Authenticator>,
    ) -> Result<Arc<Self>, CliError> {
        let owned = Arc::new(Self {
            global,
            lock: Mutex::new(lock),
            service: Mutex::new(Some(service)),
            local: Mutex::new(None),
            auth: Some(auth),
            follow_stats: Arc::default(),
            directory_file: Mutex::new(()),
        });
        owned.open_local_channel()?;
        Ok(owned)
    }

    pub fn lock(&self) -> MutexGuard<'_, DirectoryLock> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Held while a command rewrites the directory file.
    pub fn directory_file_lock(&self) -> MutexGuard<'_, ()> {
        self.directory_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The directory of users and organizations, as it is now.
    pub fn directory(&self) -> Result<Arc<Directory>, CliError> {
        match &self.auth {
            Some(auth) => Ok(auth.directory()),
            None => self.global.load_directory().map(Arc::new),
        }
    }

    /// The actor `--as USER` names.
    pub fn actor(&self, user: &str) -> Result<Actor, CliError> {
        let directory = self.directory()?;
        self.global.actor_for(&directory, user)
    }

    /// The service if it is open (a server's always is), without opening it.
    pub fn running_service(&self) -> Option<SharedConnLog> {
        let slot = self.service.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().map(|queue| queue.service().clone())
    }

    /// The service, opened on first use; from then on the local channel serves other
    /// commands through this process.
    pub fn service(self: &Arc<Self>) -> Result<SharedConnLog, CliError> {
        Ok(self.ingest_queue()?.service().clone())
    }

    /// The service's ingest queue (group commit), opening the service on first use.
    pub fn ingest_queue(self: &Arc<Self>) -> Result<Arc<IngestQueue>, CliError> {
        let mut slot = self.service.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(queue) = &*slot {
            return Ok(queue.clone());
        }
        let service = self.global.open_service(self.directory()?)?;
        let queue = Arc::new(IngestQueue::new(Arc::new(Mutex::new(service))));
        *slot = Some(queue.clone());
        drop(slot);
        self.open_local_channel()?;
        Ok(queue)
    }

    fn open_local_channel(self: &Arc<Self>) -> Result<(), CliError> {
        let weak: Weak<Self> = Arc::downgrade(self);
        let server = LocalServer::bind(&self.global.data, move |stream, cancelled| {
            if let Some(owned) = weak.upgrade() {
                super::remote::serve_connection(&owned, stream, cancelled);
            }
        })
        .map_err(|e| {
            CliError::Data(format!(
                "cannot open the local channel in {}: {e}",
                self.global.data.display()
            ))
        })?;
        *self.local.lock().unwrap_or_else(PoisonError::into_inner) = Some(server);
        self.lock()
            .set_ready(true)
            .map_err(|e| CliError::Data(format!("cannot write the lock file: {e}")))
    }

    /// Stops serving other commands (waiting for those in flight), then closes the service
    /// (a snapshot if one is due).
    pub fn close(&self) -> Result<(), CliError> {
        // Commands that look now wait for the lock instead of connecting.
        let _ = self.lock().set_ready(false);
        drop(
            self.local
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let service = self
            .service
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(queue) = service
            && let Ok(queue) = Arc::try_unwrap(queue)
            && let Ok(mutex) = Arc::try_unwrap(queue.into_service())
        {
            let service = mutex.into_inner().unwrap_or_else(PoisonError::into_inner);
            service.close()?;
        }
        Ok(())
    }
}

/// A command's standard streams.
pub struct Io<'a> {
    /// Standard input, until a command takes it.
    pub stdin: Option<Box<dyn Read + Send>>,
    pub stdin_is_terminal: bool,
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub progress: ProgressTarget,
    /// Set when the asker went away (a client closed its connection, or Ctrl-C).
    pub cancelled: Arc<AtomicBool>,
}

impl Io<'_> {
    /// Prints a line on standard output.
    pub fn print(&mut self, line: &str) -> Result<(), CliError> {
        writeln!(self.out, "{line}").map_err(|e| CliError::Failed(format!("writing: {e}")))
    }

    /// Prints a line on standard error, after what standard output holds so far (so a
    /// terminal shows both in order); a failure to do so is not the command's failure.
    pub fn note(&mut self, line: &str) {
        let _ = self.out.flush();
        let _ = writeln!(self.err, "{line}");
    }
}

/// Where progress goes: nowhere (not a terminal), a bar on this process's terminal, or a
/// client's terminal.
pub enum ProgressTarget {
    None,
    Terminal,
    Remote(FrameSink),
}

impl ProgressTarget {
    pub fn start(&self, total: Option<u64>) -> ProgressHandle {
        match self {
            ProgressTarget::None => ProgressHandle::None,
            ProgressTarget::Terminal => ProgressHandle::Bar(super::progress::bar(total)),
            ProgressTarget::Remote(sink) => ProgressHandle::Remote(sink.clone(), total),
        }
    }
}

pub enum ProgressHandle {
    None,
    Bar(super::progress::Bar),
    Remote(FrameSink, Option<u64>),
}

impl ProgressHandle {
    pub fn update(&mut self, bytes: u64, events: u64) {
        self.send(bytes, events, false);
    }

    pub fn finish(&mut self) {
        self.send(0, 0, true);
    }

    fn send(&mut self, bytes: u64, events: u64, done: bool) {
        match self {
            ProgressHandle::None => {}
            ProgressHandle::Bar(bar) => bar.show(Progress {
                bytes,
                total: None,
                events,
                done,
            }),
            ProgressHandle::Remote(sink, total) => {
                let update = Progress {
                    bytes,
                    total: *total,
                    events,
                    done,
                };
                let json = serde_json::to_vec(&update).expect("plain data");
                let _ = sink.send(PROGRESS, &json);
            }
        }
    }
}
