//! `connlog purge`: apply retention now.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

use super::context::{Io, OwnedDataDir};
use super::{CliError, ExitStatus};
use crate::duration::Retention;
use crate::events::format_time;

/// Apply retention now: delete every row whose connect time is older than the retention,
/// with its events, from memory and from disk.
///
/// Prints `{"purged":N,"cutoff":"<RFC 3339>"}`; with retention 0 (keep forever) it prints
/// `{"purged":0,"cutoff":null}`. Without --retention it uses --connection-logs-retention,
/// or else the CODER_CONNECTION_LOGS_RETENTION environment variable.
///
/// Examples:
///   connlog purge --retention 30d
///   CODER_CONNECTION_LOGS_RETENTION=90d connlog purge
///   connlog purge --retention 2w --data /var/lib/connlog
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
#[command(verbatim_doc_comment)]
pub struct PurgeArgs {
    /// How long rows are kept: a Go duration plus `d` and `w` (`720h`, `30d`, `2w`); 0 keeps
    /// them forever.
    #[arg(long, value_name = "DUR")]
    pub retention: Option<Retention>,
}

pub fn execute(
    owned: &Arc<OwnedDataDir>,
    args: &PurgeArgs,
    io: &mut Io,
) -> Result<ExitStatus, CliError> {
    let configured = owned.global.connection_logs_retention;
    let retention = args.retention.unwrap_or(configured);
    let shared = owned.service()?;
    // This purge's retention applies to this purge only; the service keeps its own.
    let report = crate::retention::purge(&shared, Some(Duration::from_nanos(retention.0)))?;
    io.print(&purge_body(report.purged, report.cutoff))?;
    Ok(ExitStatus::Success)
}

/// `{"purged":N,"cutoff":"<RFC 3339>"|null}`, keys in that order.
pub fn purge_body(purged: u64, cutoff: Option<i64>) -> String {
    #[derive(serde::Serialize)]
    struct Body {
        purged: u64,
        cutoff: Option<String>,
    }
    serde_json::to_string(&Body {
        purged,
        cutoff: cutoff.map(format_time),
    })
    .expect("plain data")
}
