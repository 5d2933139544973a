//! The commands that work on a data directory (`ingest`, `query`, `export`, `purge`,
//! `token`): run here when the directory is free, or sent to its owner over the local
//! channel. Either way the same `execute` runs, so the output and exit code are the same.

use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::context::{Io, OwnedDataDir, ProgressTarget};
use super::{CliError, ExitStatus, GlobalOptions};
use super::{export, ingest, purge, query, token};
use crate::local::{
    self, EXIT, Exit, FrameSink, PROGRESS, Progress, REQUEST, STDERR, STDIN, STDIN_END, STDOUT,
    read_frame, write_frame,
};
use crate::owner::{DirectoryLock, LockError, OwnerRecord};

/// How long a command waits for an owner that is not a server (another command, which will
/// finish) to free the directory, or for a server to finish opening its store.
const OWNER_WAIT: Duration = Duration::from_secs(120);

/// A command that needs the data directory, as it travels to the directory's owner.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    Ingest(ingest::IngestArgs),
    Query(query::QueryArgs),
    Export(export::ExportArgs),
    Purge(purge::PurgeArgs),
    Token(token::TokenCommand),
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    request: Request,
    stdin_is_terminal: bool,
    stderr_is_terminal: bool,
}

impl Request {
    fn name(&self) -> &'static str {
        match self {
            Request::Ingest(_) => "ingest",
            Request::Query(_) => "query",
            Request::Export(_) => "export",
            Request::Purge(_) => "purge",
            Request::Token(_) => "token",
        }
    }

    /// Whether the command reads standard input.
    fn reads_stdin(&self) -> bool {
        matches!(self, Request::Ingest(args) if args.reads_stdin())
    }

    /// Whether the command may run for as long as something outside it decides:
    /// `ingest --follow`, and `ingest -`, whose input stays open as long as its writer likes.
    fn runs_until_stopped(&self) -> bool {
        matches!(self, Request::Ingest(args) if args.follow || args.reads_stdin())
    }

    /// Paths made absolute, so that they mean the same in the owner's working directory.
    fn absolute(mut self) -> Result<Self, CliError> {
        if let Request::Ingest(args) = &mut self {
            args.make_paths_absolute()
                .map_err(|e| CliError::Usage(format!("cannot resolve the input path: {e}")))?;
        }
        Ok(self)
    }

    /// Runs the command against a data directory this process owns.
    pub fn execute(&self, owned: &Arc<OwnedDataDir>, io: &mut Io) -> Result<ExitStatus, CliError> {
        match self {
            Request::Ingest(args) => ingest::execute(owned, args, io),
            Request::Query(args) => query::execute(owned, args, io),
            Request::Export(args) => export::execute(owned, args, io),
            Request::Purge(args) => purge::execute(owned, args, io),
            Request::Token(command) => token::execute(owned, command, io),
        }
    }
}

/// Runs `request` here if the data directory is free, or through its owner.
pub fn run(global: &GlobalOptions, request: Request) -> Result<ExitStatus, CliError> {
    let request = request.absolute()?;
    let deadline = Instant::now() + OWNER_WAIT;
    let mut waiting_said = false;
    loop {
        let owner = match DirectoryLock::try_acquire(&global.data, request.name()) {
            Ok(lock) => return run_here(global, lock, &request),
            Err(LockError::Owned { owner, .. }) => owner,
            Err(e) => return Err(CliError::Data(e.to_string())),
        };
        // A command that runs until stopped never goes through an owner that will end on
        // its own (it would keep that owner alive for as long as it runs): it waits for the
        // directory instead.
        let through_owner = owner.ready && (owner.is_server() || !request.runs_until_stopped());
        if through_owner {
            warn_ignored_options(global, &request, &owner);
            match send(global, &request, &owner)? {
                Sent::Done(status) => return status,
                // The owner was closing: look again.
                Sent::Closed => {}
            }
        }
        if Instant::now() >= deadline {
            return Err(CliError::Data(format!(
                "the data directory {} is in use by {}, which did not {} within {}s",
                global.data.display(),
                owner.describe(),
                if owner.is_server() {
                    "open its store"
                } else {
                    "finish"
                },
                OWNER_WAIT.as_secs()
            )));
        }
        if !waiting_said && owner.pid != 0 {
            eprintln!(
                "connlog: waiting for {} to {}",
                owner.describe(),
                if owner.is_server() {
                    "open its store"
                } else {
                    "finish or open its store"
                }
            );
            waiting_said = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The owner runs the command with its own plugin, limits and service logs: say so when
/// this invocation asked for others. (An export carries its `--log-fields` along.)
fn warn_ignored_options(global: &GlobalOptions, request: &Request, owner: &OwnerRecord) {
    let log_fields_ignored = global.log_fields != crate::model::LogFields::default()
        && !matches!(request, Request::Export(_));
    let given: Vec<&str> = [
        ("--plugin", global.plugin.is_some()),
        ("--plugin-setting", !global.plugin_settings.is_empty()),
        ("--log-json", global.log_json.is_some()),
        ("--log-human", global.log_human.is_some()),
        ("--log-fields", log_fields_ignored),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    if !given.is_empty() {
        eprintln!(
            "connlog: {} ignored: the command runs in {}, which uses its own",
            given.join(", "),
            owner.describe()
        );
    }
}

fn run_here(
    global: &GlobalOptions,
    lock: DirectoryLock,
    request: &Request,
) -> Result<ExitStatus, CliError> {
    let owned = OwnedDataDir::new(global.clone(), lock);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut err = io::stderr();
    let cancelled = Arc::new(AtomicBool::new(false));
    if request.runs_until_stopped() {
        // Ctrl-C stops following cleanly: the last batch is stored and checkpointed.
        super::signals::cancel_on_interrupt(cancelled.clone());
    }
    let mut io = Io {
        stdin: Some(Box::new(io::stdin())),
        stdin_is_terminal: io::stdin().is_terminal(),
        out: &mut out,
        err: &mut err,
        progress: if io::stderr().is_terminal() {
            ProgressTarget::Terminal
        } else {
            ProgressTarget::None
        },
        cancelled,
    };
    let status = request.execute(&owned, &mut io);
    let flushed = flush_out(io.out);
    let closed = owned.close();
    let status = status?;
    flushed?;
    closed?;
    Ok(status)
}

/// Flushes standard output; a reader that went away (`| head`) is not a failure.
fn flush_out(out: &mut dyn Write) -> Result<(), CliError> {
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(CliError::Failed(format!("writing: {e}")))
        }
        _ => Ok(()),
    }
}

enum Sent {
    Done(Result<ExitStatus, CliError>),
    /// The owner closed the connection before answering: it was shutting down.
    Closed,
}

/// Sends `request` to the directory's owner and relays what it answers.
fn send(global: &GlobalOptions, request: &Request, owner: &OwnerRecord) -> Result<Sent, CliError> {
    let socket = local::socket_path(&global.data);
    let not_answering = |e: io::Error| {
        CliError::Data(format!(
            "the data directory {} is in use by {}, which does not answer on {}: {e}",
            global.data.display(),
            owner.describe(),
            socket.display()
        ))
    };
    let mut stream = match UnixStream::connect(&socket) {
        Ok(s) => s,
        // Gone, or closing, between the look at the lock and now: look again.
        Err(e) if e.kind() == io::ErrorKind::NotFound && !owner_still_ready(global, owner) => {
            return Ok(Sent::Closed);
        }
        // The socket is there but nothing listens: the owner has stopped serving and is
        // closing (a live owner's listener queues connections even while it is busy), so
        // it will free the directory: look again, within the caller's deadline.
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Ok(Sent::Closed),
        Err(e) => return Err(not_answering(e)),
    };
    let envelope = Envelope {
        request: request.clone(),
        stdin_is_terminal: io::stdin().is_terminal(),
        stderr_is_terminal: io::stderr().is_terminal(),
    };
    let json = serde_json::to_vec(&envelope).expect("plain data");
    if let Err(e) = write_frame(&mut stream, REQUEST, &json) {
        return if owner_still_ready(global, owner) {
            Err(not_answering(e))
        } else {
            Ok(Sent::Closed)
        };
    }
    if request.reads_stdin() {
        let mut writer = stream.try_clone().map_err(not_answering)?;
        std::thread::spawn(move || pump_stdin_to(&mut writer));
    }
    relay(&mut stream).map_err(not_answering)
}

/// Whether the same owner still holds the directory and says it answers.
fn owner_still_ready(global: &GlobalOptions, owner: &OwnerRecord) -> bool {
    match DirectoryLock::try_acquire(&global.data, "probe") {
        Err(LockError::Owned { owner: now, .. }) => now.ready && now.pid == owner.pid,
        _ => false,
    }
}

/// Streams this process's standard input to the owner, as it arrives.
fn pump_stdin_to(stream: &mut UnixStream) {
    let mut stdin = io::stdin().lock();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if write_frame(stream, STDIN, &buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = write_frame(stream, STDIN_END, &[]);
}

/// Copies the owner's frames to this process's streams until the exit status.
fn relay(stream: &mut UnixStream) -> io::Result<Sent> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut err = io::stderr();
    let mut bar: Option<super::progress::Bar> = None;
    let mut any = false;
    loop {
        let Some((kind, payload)) = read_frame(stream)? else {
            let _ = out.flush();
            if !any {
                return Ok(Sent::Closed);
            }
            return Ok(Sent::Done(Err(CliError::Failed(
                "the server that owns the data directory closed the connection before the command ended".into(),
            ))));
        };
        any = true;
        match kind {
            STDOUT => {
                if let Err(e) = out.write_all(&payload) {
                    if e.kind() != io::ErrorKind::BrokenPipe {
                        return Err(e);
                    }
                    // `| head` has what it wanted; stop the owner's command too.
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    return Ok(Sent::Done(Ok(ExitStatus::Success)));
                }
            }
            STDERR => {
                let _ = out.flush();
                let _ = err.write_all(&payload);
            }
            PROGRESS => {
                if let Ok(update) = serde_json::from_slice::<Progress>(&payload) {
                    bar.get_or_insert_with(|| super::progress::bar(update.total))
                        .show(update);
                }
            }
            EXIT => {
                if let Err(e) = out.flush()
                    && e.kind() != io::ErrorKind::BrokenPipe
                {
                    return Err(e);
                }
                let exit: Exit = serde_json::from_slice(&payload)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let status = ExitStatus::from_code(exit.code);
                return Ok(Sent::Done(match exit.error {
                    None => Ok(status),
                    Some(message) => Err(CliError::Reported { status, message }),
                }));
            }
            _ => {}
        }
    }
}

/// The owner's side of one connection: runs the request against `owned` with the client's
/// streams, and sends the exit status last.
pub fn serve_connection(
    owned: &Arc<OwnedDataDir>,
    mut stream: UnixStream,
    cancelled: Arc<AtomicBool>,
) {
    let envelope: Envelope = match local::read_request(&mut stream) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "a local client sent no valid request");
            return;
        }
    };
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    let sink = FrameSink::new(stream);
    let stdin = local::pump_stdin(reader, cancelled.clone());
    let mut out = BufWriter::with_capacity(1 << 16, sink.writer(STDOUT));
    let mut err = io::LineWriter::new(sink.writer(STDERR));
    let mut io = Io {
        stdin: Some(Box::new(stdin)),
        stdin_is_terminal: envelope.stdin_is_terminal,
        out: &mut out,
        err: &mut err,
        progress: if envelope.stderr_is_terminal {
            ProgressTarget::Remote(sink.clone())
        } else {
            ProgressTarget::None
        },
        cancelled,
    };
    let outcome = envelope.request.execute(owned, &mut io);
    let flushed = flush_out(io.out);
    let _ = io.err.flush();
    let exit = match outcome.and_then(|status| flushed.map(|()| status)) {
        Ok(status) => Exit {
            code: status.code(),
            error: None,
        },
        Err(e) => Exit {
            code: e.status().code(),
            error: Some(e.to_string()),
        },
    };
    let _ = sink.send(EXIT, &serde_json::to_vec(&exit).expect("plain data"));
}
