//! The local channel: how a command reaches the process that owns the data directory.
//!
//! The owner listens on a Unix socket, `<data>/connlog.sock`, with mode 0600: only the
//! directory's user can connect, so a connection is trusted as that user (as the files in
//! the directory are). A client sends one request and, if the command reads standard
//! input, streams it; the owner runs the command and streams back what it prints, progress
//! updates, and the exit status. The command itself is the same code either way, which is
//! what makes its output and exit code the same with or without a server.
//!
//! Frames are `kind: u8`, `len: u32` (big-endian), then `len` bytes.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

/// The socket's name inside the data directory.
pub const SOCKET_FILE: &str = "connlog.sock";

/// The request, as the first frame's JSON.
pub const REQUEST: u8 = b'R';
/// Standard input bytes (client to owner).
pub const STDIN: u8 = b'I';
/// The end of standard input.
pub const STDIN_END: u8 = b'E';
/// Standard output bytes (owner to client).
pub const STDOUT: u8 = b'O';
/// Standard error bytes.
pub const STDERR: u8 = b'W';
/// A progress update, as JSON ([`Progress`]).
pub const PROGRESS: u8 = b'P';
/// The exit status, as JSON ([`Exit`]); the last frame.
pub const EXIT: u8 = b'X';

/// The largest frame accepted: bounds what a confused peer can make us allocate.
const MAX_FRAME: usize = 16 << 20;

/// How a command ended, as the owner reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Exit {
    pub code: u8,
    /// The message the command would print as `connlog: …` before exiting.
    pub error: Option<String>,
}

/// Where a long command is: what a progress bar shows.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Progress {
    pub bytes: u64,
    /// Total bytes, when known.
    pub total: Option<u64>,
    pub events: u64,
    /// True on the last update: the bar is cleared.
    pub done: bool,
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

pub fn write_frame(out: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut header = [0u8; 5];
    header[0] = kind;
    header[1..].copy_from_slice(&len.to_be_bytes());
    out.write_all(&header)?;
    out.write_all(payload)?;
    out.flush()
}

/// The next frame, or `None` at a clean end of stream.
pub fn read_frame(input: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 5];
    match input.read_exact(&mut header[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    input.read_exact(&mut header[1..])?;
    let len = u32::from_be_bytes(header[1..].try_into().expect("4 bytes")) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes is over the limit of {MAX_FRAME}"),
        ));
    }
    let mut payload = vec![0u8; len];
    input.read_exact(&mut payload)?;
    Ok(Some((header[0], payload)))
}

/// One side's frames going out on a shared socket (stdout, stderr and progress interleave).
#[derive(Clone)]
pub struct FrameSink {
    stream: Arc<Mutex<UnixStream>>,
}

impl FrameSink {
    pub fn new(stream: UnixStream) -> Self {
        Self {
            stream: Arc::new(Mutex::new(stream)),
        }
    }

    pub fn send(&self, kind: u8, payload: &[u8]) -> io::Result<()> {
        let mut stream = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        write_frame(&mut *stream, kind, payload)
    }

    /// A writer whose bytes become frames of `kind` (buffer it: each write is a frame).
    pub fn writer(&self, kind: u8) -> FrameWriter {
        FrameWriter {
            sink: self.clone(),
            kind,
        }
    }
}

pub struct FrameWriter {
    sink: FrameSink,
    kind: u8,
}

impl Write for FrameWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !buf.is_empty() {
            self.sink.send(self.kind, buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Standard input as the client streams it: `Read` over the frames a pump thread receives.
/// A connection that closes before [`STDIN_END`] means the client went away: `cancelled`
/// is set, and reads end.
pub struct RemoteStdin {
    chunks: Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl Read for RemoteStdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.recv() {
                Ok(chunk) => {
                    self.current = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads the client's frames after the request on its own thread: stdin chunks go to the
/// returned reader; the connection closing without [`STDIN_END`] sets `cancelled`.
pub fn pump_stdin(mut stream: UnixStream, cancelled: Arc<AtomicBool>) -> RemoteStdin {
    // A few chunks in flight: the client blocks when the command reads slower than it sends.
    let (tx, rx): (SyncSender<Vec<u8>>, _) = sync_channel(8);
    std::thread::Builder::new()
        .name("connlog-local-stdin".into())
        .spawn(move || {
            // `None` once the input ended: dropping the sender ends the reader's input.
            let mut input = Some(tx);
            loop {
                match read_frame(&mut stream) {
                    Ok(Some((STDIN, bytes))) => {
                        // A command that stopped reading drops the receiver; keep watching
                        // the connection for its close all the same.
                        if input.as_ref().is_some_and(|tx| tx.send(bytes).is_err()) {
                            input = None;
                        }
                    }
                    Ok(Some((STDIN_END, _))) => input = None,
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => {
                        cancelled.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        })
        .expect("spawning the local stdin pump");
    RemoteStdin {
        chunks: rx,
        current: Vec::new(),
        at: 0,
    }
}

/// The owner's side: accepts connections and hands each to `handle` on its own thread,
/// with a flag that is set when the owner stops (a command that runs until stopped ends
/// then). Dropping it stops accepting and waits for the commands in flight.
pub struct LocalServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    clients: Clients,
}

/// The commands in flight: each one's thread and the flag that tells it to stop.
type Clients = Arc<Mutex<Vec<(JoinHandle<()>, Arc<AtomicBool>)>>>;

impl LocalServer {
    /// Binds `<data>/connlog.sock` with mode 0600. A socket file left by a dead owner is
    /// replaced (the caller holds the directory's lock, so no live owner can be using it).
    pub fn bind(
        data_dir: &Path,
        handle: impl Fn(UnixStream, Arc<AtomicBool>) + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let path = socket_path(data_dir);
        // Bound under a temporary name and made private before it takes its real name, so
        // nobody else can connect in between.
        let staging = data_dir.join(format!(".{SOCKET_FILE}.{}", std::process::id()));
        let _ = std::fs::remove_file(&staging);
        let listener = UnixListener::bind(&staging)?;
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staging, &path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let handle = Arc::new(handle);
        let clients: Clients = Arc::default();
        let thread = {
            let (stop, clients) = (stop.clone(), clients.clone());
            std::thread::Builder::new()
                .name("connlog-local".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let handle = handle.clone();
                        let cancelled = Arc::new(AtomicBool::new(false));
                        let flag = cancelled.clone();
                        let spawned = std::thread::Builder::new()
                            .name("connlog-local-client".into())
                            .spawn(move || handle(stream, flag));
                        if let Ok(thread) = spawned {
                            let mut clients = clients.lock().unwrap_or_else(|e| e.into_inner());
                            clients.retain(|(t, _)| !t.is_finished());
                            clients.push((thread, cancelled));
                        }
                    }
                })?
        };
        Ok(Self {
            path,
            stop,
            thread: Some(thread),
            clients,
        })
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag, then nobody new can connect.
        let _ = UnixStream::connect(&self.path);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
        let clients = std::mem::take(&mut *self.clients.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, cancelled) in &clients {
            cancelled.store(true, Ordering::SeqCst);
        }
        for (thread, _) in clients {
            let _ = thread.join();
        }
    }
}

/// Reads the request frame of a new connection.
pub fn read_request<T: for<'de> Deserialize<'de>>(stream: &mut UnixStream) -> io::Result<T> {
    // Unbuffered: the stdin frames that follow belong to the pump thread.
    match read_frame(stream)? {
        Some((REQUEST, json)) => {
            serde_json::from_slice(&json).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
        Some((kind, _)) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected a request frame, got {:?}", kind as char),
        )),
        None => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the client closed the connection before its request",
        )),
    }
}
