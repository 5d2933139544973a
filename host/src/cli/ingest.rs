//! `connlog ingest`: event NDJSON (or Coder's service log) through the plugin into the store.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::{Deserialize, Serialize};

use super::context::{Io, OwnedDataDir, ProgressHandle};
use super::{CliError, ExitStatus};
use crate::follow;
use crate::ingest::{
    INGEST_BATCH, IngestAnswer, IngestObserver, MAX_BATCH_DELAY, ingest_live, read_in_background,
};
use crate::service::{Input, ServiceError};

/// Store connection events: NDJSON with the field names of Coder's service-log `fields`
/// object, or whole Coder JSON service-log lines (other lines are skipped).
///
/// Prints `{"accepted":N,"rejected":[{"line":L,"error":"…"}]}`. Exits 1 when any line was
/// rejected; the accepted lines are stored all the same. Events are stored in batches; a
/// batch is stored at the latest 0.2 s after its first line arrived, so events read from a
/// pipe are durable and visible within a second. A file shows a progress bar on a
/// terminal.
///
/// With --follow, FILE is read as it grows (Coder's `--log-json FILE`), across rotations
/// (renamed and recreated, or truncated), until Ctrl-C; a restart resumes after the last
/// stored line (the position is kept in <data>/follow/). Rejected lines are reported with
/// their byte offset as they come.
///
/// While `connlog serve` (or another command) owns the data directory, the command runs in
/// that process, with the same output and exit code.
///
/// Examples:
///   connlog ingest events.ndjson
///   coder server --log-json /dev/stdout | connlog ingest -
///   connlog ingest --follow /var/log/coder/coder.json
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
#[command(verbatim_doc_comment)]
pub struct IngestArgs {
    /// The NDJSON file, or `-` for standard input.
    #[arg(default_value = "-")]
    pub input: PathBuf,
    /// Keep reading FILE as it grows, until stopped.
    #[arg(long)]
    pub follow: bool,
}

impl IngestArgs {
    pub fn reads_stdin(&self) -> bool {
        self.input.as_os_str() == "-"
    }

    pub fn make_paths_absolute(&mut self) -> std::io::Result<()> {
        if !self.reads_stdin() {
            self.input = std::path::absolute(&self.input)?;
        }
        Ok(())
    }
}

pub fn execute(
    owned: &Arc<OwnedDataDir>,
    args: &IngestArgs,
    io: &mut Io,
) -> Result<ExitStatus, CliError> {
    if args.follow {
        return follow(owned, args, io);
    }
    let (input, total, kind): (Box<dyn Read + Send>, Option<u64>, Input) = if args.reads_stdin() {
        if io.stdin_is_terminal {
            io.note(
                "connlog: reading events from standard input, one JSON object per line (Ctrl-D ends; `connlog ingest --help` shows the format)",
            );
        }
        let stdin = io
            .stdin
            .take()
            .ok_or_else(|| CliError::Failed("standard input was already read".into()))?;
        (stdin, None, Input::Endless)
    } else {
        let file = File::open(&args.input)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", args.input.display())))?;
        let (total, kind) = input_of(file.metadata().ok());
        (Box::new(file), total, kind)
    };
    let queue = owned.ingest_queue()?;
    let started = Instant::now();
    let lines = read_in_background(input);
    let mut progress = ShowProgress {
        bar: io.progress.start(total),
        shown: None,
    };
    let outcome = ingest_live(
        &queue,
        &lines,
        kind,
        INGEST_BATCH,
        MAX_BATCH_DELAY,
        &mut progress,
    );
    progress.bar.finish();
    report(io, outcome, started.elapsed(), true)
}

fn follow(
    owned: &Arc<OwnedDataDir>,
    args: &IngestArgs,
    io: &mut Io,
) -> Result<ExitStatus, CliError> {
    if args.reads_stdin() {
        return Err(CliError::Usage(
            "--follow needs a file: standard input is read as it arrives without it".into(),
        ));
    }
    let queue = owned.ingest_queue()?;
    io.note(&format!(
        "connlog: following {} (Ctrl-C stops)",
        args.input.display()
    ));
    let started = Instant::now();
    let err = &mut *io.err;
    let outcome = follow::follow(
        &queue,
        &owned.global.data,
        &args.input,
        owned.follow_stats.clone(),
        io.cancelled.clone(),
        &mut |line| {
            let _ = writeln!(err, "{line}");
        },
    );
    // Rejected lines were reported with their offsets as they came.
    report(io, outcome, started.elapsed(), false)
}

/// Prints the answer and the summary, whatever stopped the ingest.
fn report(
    io: &mut Io,
    outcome: Result<IngestAnswer, (IngestAnswer, ServiceError)>,
    elapsed: Duration,
    list_rejected: bool,
) -> Result<ExitStatus, CliError> {
    let answer = match outcome {
        Ok(answer) => answer,
        Err((partial, error)) => {
            io.note(&format!(
                "connlog: stopped after {} accepted events: {error}",
                partial.accepted
            ));
            io.print(&serde_json::to_string(&partial).expect("plain data"))?;
            return Err(error.into());
        }
    };
    io.print(&serde_json::to_string(&answer).expect("plain data"))?;
    for rejected in answer.rejected.iter().filter(|_| list_rejected) {
        io.note(&format!("line {}: {}", rejected.line, rejected.error));
    }
    let seconds = elapsed.as_secs_f64();
    io.note(&format!(
        "accepted {} ({} already stored), rejected {}, skipped {} in {seconds:.1} s ({:.0} events/s)",
        answer.accepted,
        answer.duplicates,
        answer.rejected.len(),
        answer.skipped,
        answer.accepted as f64 / seconds.max(1e-3)
    ));
    Ok(if answer.rejected.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Rejected
    })
}

/// Moves the progress bar after each stored batch, at most ten times a second.
struct ShowProgress {
    bar: ProgressHandle,
    shown: Option<Instant>,
}

impl IngestObserver<u64> for ShowProgress {
    fn committed(&mut self, answer: &IngestAnswer, committed: &u64) {
        if self
            .shown
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100))
        {
            self.bar.update(*committed, answer.accepted);
            self.shown = Some(Instant::now());
        }
    }
}

/// A file's size, for the progress bar, and whether it ends. A named pipe is as endless as
/// standard input, and has no size to show progress against.
fn input_of(metadata: Option<std::fs::Metadata>) -> (Option<u64>, Input) {
    match metadata {
        Some(m) if m.is_file() => (Some(m.len()), Input::Finite),
        _ => (None, Input::Endless),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_ends_and_has_a_size_and_a_named_pipe_neither() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events.ndjson");
        std::fs::write(&file, "{}\n{}\n").unwrap();
        let pipe = dir.path().join("events.pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&pipe)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo");

        let metadata = |path| std::fs::metadata(path).ok();
        assert_eq!(input_of(metadata(&file)), (Some(6), Input::Finite));
        assert_eq!(input_of(metadata(&pipe)), (None, Input::Endless));
        assert_eq!(input_of(None), (None, Input::Endless));
    }
}
