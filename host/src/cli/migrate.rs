//! `connlog migrate`: copies an embedded store into PostgreSQL, and checks the copy.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::{CliError, ExitStatus, GlobalOptions};
use crate::directory::Directory;
use crate::owner::{DirectoryLock, LockError};
use crate::service::store_path;
use crate::store::postgres::{self, PgStore};
use crate::store::{EventCounts, Journal};

/// Copy an embedded store (a data directory) into a PostgreSQL database: every event with
/// its sequence number, and the directory of organizations, users and token hashes.
///
/// The data directory is locked for the copy, so stop the server that owns it first. The
/// copy is one transaction: it lands whole or not at all, and it is refused when the
/// database already holds connlog data. At the end the events are counted on both sides
/// (in all, per connection method and kind, first and last sequence number) and must
/// match. Prints what was copied as JSON; the data directory is left as it was.
///
/// The database needs no preparation: connlog creates its tables in a schema of their own,
/// `connlog`, so it may share the database Coder uses.
///
/// Examples:
///   connlog migrate --from ./connlog-data --to postgres://connlog@db.internal/coder
///   connlog migrate --from /var/lib/connlog --to 'host=/run/postgresql user=connlog dbname=coder'
#[derive(Args, Debug, Clone)]
#[command(verbatim_doc_comment)]
pub struct MigrateArgs {
    /// The data directory to copy [default: --data].
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// The PostgreSQL database: a `postgres://` URL or `key=value` pairs, as libpq takes
    /// them.
    #[arg(long, value_name = "URL", env = "CONNLOG_MIGRATE_TO")]
    pub to: String,
}

/// What `connlog migrate` prints.
#[derive(Serialize)]
struct Report<'a> {
    from: String,
    to: &'a str,
    events: u64,
    first_seq: i64,
    last_seq: i64,
    directory: bool,
}

pub fn run(global: &GlobalOptions, args: &MigrateArgs) -> Result<ExitStatus, CliError> {
    let config =
        postgres::parse_url(&args.to).map_err(|e| CliError::Usage(format!("--to: {e}")))?;
    let from = args.from.clone().unwrap_or_else(|| global.data.clone());
    let store = store_path(&from);
    if !store.is_file() {
        return Err(CliError::Data(format!(
            "{} holds no connlog store ({} is missing)",
            from.display(),
            store.display()
        )));
    }
    let _lock = DirectoryLock::try_acquire(&from, "migrate").map_err(|e| match e {
        LockError::Owned { .. } => CliError::Data(format!("{e}: stop it before migrating")),
        other => CliError::Data(other.to_string()),
    })?;
    let journal = Journal::open(&store)?;
    let directory_path = global
        .directory
        .clone()
        .unwrap_or_else(|| from.join("directory.json"));
    let directory = match std::fs::read_to_string(&directory_path) {
        Ok(text) => {
            // A directory the server would refuse is not copied either.
            Directory::from_json(&text, &directory_path)
                .map_err(|e| CliError::Data(e.to_string()))?;
            Some(text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(CliError::Data(format!(
                "cannot read {}: {e}",
                directory_path.display()
            )));
        }
    };
    let high_water = journal
        .high_water()
        .map_err(|e| CliError::Data(e.to_string()))?;
    let original = journal.event_counts()?;
    let mut pg = PgStore::open(&config)?;
    tracing::info!(
        events = original.events,
        to = pg.target(),
        "copying the store into PostgreSQL"
    );
    pg.import(high_water, directory.as_deref(), |writer| {
        journal.for_each_event(0, i64::MAX, |seq, event| writer.write(seq, event))
    })?;
    check_copy(&original, &pg.event_counts()?, pg.target())?;
    if pg.directory()? != directory {
        return Err(CliError::Failed(format!(
            "the directory stored at {} differs from {}",
            pg.target(),
            directory_path.display()
        )));
    }
    let report = Report {
        from: from.display().to_string(),
        to: pg.target(),
        events: original.events,
        first_seq: original.first_seq,
        last_seq: original.last_seq,
        directory: directory.is_some(),
    };
    println!(
        "{}",
        serde_json::to_string(&report).expect("a report serialises")
    );
    Ok(ExitStatus::Success)
}

/// The copy committed; if its numbers differ from the original's, say which.
fn check_copy(original: &EventCounts, copy: &EventCounts, target: &str) -> Result<(), CliError> {
    if original == copy {
        return Ok(());
    }
    Err(CliError::Failed(format!(
        "the copy at {target} does not match the store: {} events (seq {}..={}) copied as {} \
         (seq {}..={}); per method and kind {:?} against {:?}",
        original.events,
        original.first_seq,
        original.last_seq,
        copy.events,
        copy.first_seq,
        copy.last_seq,
        original.by_kind,
        copy.by_kind
    )))
}
