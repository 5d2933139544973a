//! Event NDJSON into the service, in batches, with per-line outcomes. Shared by
//! `connlog ingest` and `POST /api/v2/connectionlog/ingest`, so both answer alike.

use std::io::BufRead;

use connlog_guest::model::{ConnectionEvent, EventOutcome};
use serde::Serialize;

use crate::events::{EventReader, Line};
use crate::service::{ConnLog, ServiceError};

/// Events per plugin call: large enough to amortise the call and the fsync, small enough
/// to bound memory.
pub const INGEST_BATCH: usize = 1000;

/// The ingest answer: `{"accepted":N,"rejected":[{"line":L,"error":"…"}]}`. Replays of
/// stored events count as accepted: they are acknowledged and durable.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct IngestAnswer {
    pub accepted: u64,
    pub rejected: Vec<RejectedLine>,
    /// Of `accepted`, how many were already stored.
    #[serde(skip)]
    pub duplicates: u64,
    /// Blank lines and service-log lines that are not `connection_log`.
    #[serde(skip)]
    pub skipped: u64,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct RejectedLine {
    pub line: u64,
    pub error: String,
}

/// Reads every line, stores what is valid, and reports the rest. A storage or plugin
/// failure stops at the failed batch: the batches before it are stored and counted, and
/// the error says so.
pub fn ingest_ndjson(
    service: &mut ConnLog,
    input: impl BufRead,
    batch_size: usize,
) -> Result<IngestAnswer, (IngestAnswer, ServiceError)> {
    let mut answer = IngestAnswer::default();
    let mut reader = EventReader::new(input);
    let mut batch: Vec<(u64, ConnectionEvent)> = Vec::with_capacity(batch_size);
    for line in reader.by_ref() {
        match line {
            Ok(Line::Event { line, event }) => batch.push((line, event)),
            Ok(Line::Skipped { .. }) => answer.skipped += 1,
            Err(e) => answer.rejected.push(RejectedLine {
                line: e.line,
                error: e.error.to_string(),
            }),
        }
        if batch.len() >= batch_size {
            flush(service, &mut batch, &mut answer)?;
        }
    }
    flush(service, &mut batch, &mut answer)?;
    answer.rejected.sort_by_key(|r| r.line);
    Ok(answer)
}

fn flush(
    service: &mut ConnLog,
    batch: &mut Vec<(u64, ConnectionEvent)>,
    answer: &mut IngestAnswer,
) -> Result<(), (IngestAnswer, ServiceError)> {
    if batch.is_empty() {
        return Ok(());
    }
    let (lines, events): (Vec<u64>, Vec<ConnectionEvent>) =
        std::mem::take(batch).into_iter().unzip();
    match service.ingest(events) {
        Ok(outcomes) => {
            for (line, outcome) in lines.into_iter().zip(outcomes) {
                match outcome {
                    EventOutcome::Stored => answer.accepted += 1,
                    EventOutcome::Duplicate => {
                        answer.accepted += 1;
                        answer.duplicates += 1;
                    }
                    EventOutcome::Rejected(v) => answer.rejected.push(RejectedLine {
                        line,
                        error: format!("{}: {}", v.field, v.detail),
                    }),
                }
            }
            Ok(())
        }
        Err(error) => Err((std::mem::take(answer), error)),
    }
}
