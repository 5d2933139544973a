//! `connlog ingest`: event NDJSON through the plugin into the store.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{CliError, ExitStatus, GlobalOptions};
use crate::ingest::{INGEST_BATCH, ingest_ndjson};

/// Store connection events: NDJSON with the field names of Coder's service-log `fields`
/// object, or whole Coder JSON service-log lines.
///
/// Prints `{"accepted":N,"rejected":[{"line":L,"error":"…"}]}`. Exits 1 when any line was
/// rejected; the accepted lines are stored all the same.
///
/// Examples:
///   connlog ingest events.ndjson
///   coder server --log-json /dev/stdout | connlog ingest -
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct IngestArgs {
    /// The NDJSON file, or `-` for standard input.
    #[arg(default_value = "-")]
    pub input: PathBuf,
}

pub fn run(global: &GlobalOptions, args: &IngestArgs) -> Result<ExitStatus, CliError> {
    let input: Box<dyn BufRead> = if args.input.as_os_str() == "-" {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            eprintln!(
                "connlog: reading events from standard input, one JSON object per line (Ctrl-D ends; `connlog ingest --help` shows the format)"
            );
        }
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        let file = std::fs::File::open(&args.input)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", args.input.display())))?;
        Box::new(BufReader::new(file))
    };
    let directory = Arc::new(global.load_directory()?);
    let mut service = global.open_service(directory)?;
    let answer = match ingest_ndjson(&mut service, input, INGEST_BATCH) {
        Ok(answer) => answer,
        Err((partial, error)) => {
            eprintln!(
                "connlog: stopped after {} accepted events: {error}",
                partial.accepted
            );
            println!("{}", serde_json::to_string(&partial).expect("plain data"));
            return Err(error.into());
        }
    };
    println!("{}", serde_json::to_string(&answer).expect("plain data"));
    for rejected in &answer.rejected {
        eprintln!("line {}: {}", rejected.line, rejected.error);
    }
    eprintln!(
        "accepted {} ({} already stored), rejected {}, skipped {}",
        answer.accepted,
        answer.duplicates,
        answer.rejected.len(),
        answer.skipped
    );
    Ok(if answer.rejected.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Rejected
    })
}
