//! Event NDJSON into the service, in batches, with per-line outcomes. Shared by
//! `connlog ingest` (files, pipes and followed logs) and `POST /api/v2/connectionlog/ingest`,
//! so all of them answer alike.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::events::{EventReader, Line, LineError};
use crate::model::{ConnectionEvent, EventOutcome};
use crate::service::{IngestQueue, ServiceError};

/// Events per plugin call: large enough to amortise the call and the fsync, small enough
/// to bound memory.
pub const INGEST_BATCH: usize = 1000;

/// How long a partial batch may wait for more lines before it is stored anyway: a line
/// that arrives on a quiet pipe or a followed log is durable and visible within this.
pub const MAX_BATCH_DELAY: Duration = Duration::from_millis(200);

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

/// One line read, with where it ends in its input (`P`: a byte offset, or a position in a
/// followed file).
pub struct ReadLine<P> {
    pub line: Result<Line, LineError>,
    pub end: P,
}

/// Collects lines into batches and stores them, keeping the answer. After each stored batch
/// it knows the position just past the last line stored (`committed`).
pub struct Batcher<'a, P> {
    queue: &'a IngestQueue,
    batch_size: usize,
    lines: Vec<u64>,
    events: Vec<ConnectionEvent>,
    /// Where the lines pushed so far end.
    read_upto: Option<P>,
    /// Where the lines stored so far end.
    pub committed: Option<P>,
    pub answer: IngestAnswer,
    /// Batches stored so far.
    pub flushes: u64,
}

impl<'a, P: Clone> Batcher<'a, P> {
    pub fn new(queue: &'a IngestQueue, batch_size: usize) -> Self {
        Self {
            queue,
            batch_size: batch_size.max(1),
            lines: Vec::with_capacity(batch_size),
            events: Vec::with_capacity(batch_size),
            read_upto: None,
            committed: None,
            answer: IngestAnswer::default(),
            flushes: 0,
        }
    }

    /// Adds a line; stores the batch when it is full. A rejected line is returned too, so
    /// a caller can report it at once.
    pub fn push(&mut self, read: ReadLine<P>) -> Result<Option<RejectedLine>, ServiceError> {
        let mut rejected = None;
        match read.line {
            Ok(Line::Event { line, event }) => {
                self.lines.push(line);
                self.events.push(event);
            }
            Ok(Line::Skipped { .. }) => self.answer.skipped += 1,
            Err(e) => {
                let line = RejectedLine {
                    line: e.line,
                    error: e.error.to_string(),
                };
                rejected = Some(RejectedLine {
                    line: line.line,
                    error: line.error.clone(),
                });
                self.answer.rejected.push(line);
            }
        }
        self.read_upto = Some(read.end);
        if self.events.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(rejected)
    }

    /// Stores what is pending. On success every line pushed so far is settled (stored,
    /// rejected or skipped) and `committed` moves up to the last of them.
    pub fn flush(&mut self) -> Result<(), ServiceError> {
        if !self.events.is_empty() {
            let events = std::mem::take(&mut self.events);
            let outcomes = self.queue.ingest(events)?;
            for (line, outcome) in self.lines.drain(..).zip(outcomes) {
                match outcome {
                    EventOutcome::Stored => self.answer.accepted += 1,
                    EventOutcome::Duplicate => {
                        self.answer.accepted += 1;
                        self.answer.duplicates += 1;
                    }
                    EventOutcome::Rejected(v) => self.answer.rejected.push(RejectedLine {
                        line,
                        error: format!("{}: {}", v.field, v.detail),
                    }),
                }
            }
        }
        if self.read_upto.is_some() {
            self.committed = self.read_upto.clone();
        }
        self.flushes += 1;
        Ok(())
    }

    pub fn has_pending(&self) -> bool {
        !self.events.is_empty()
    }

    /// The answer, rejected lines in line order.
    pub fn finish(mut self) -> IngestAnswer {
        self.answer.rejected.sort_by_key(|r| r.line);
        self.answer
    }

    /// Gives up the answer so far, with the error that stopped the ingest.
    pub fn fail(self, error: ServiceError) -> (IngestAnswer, ServiceError) {
        (self.finish(), error)
    }
}

/// Reads every line of an in-memory or otherwise non-blocking input, stores what is valid,
/// and reports the rest. A storage or plugin failure stops at the failed batch: the
/// batches before it are stored and counted, and the error says so.
pub fn ingest_ndjson(
    queue: &IngestQueue,
    input: impl BufRead,
    batch_size: usize,
) -> Result<IngestAnswer, (IngestAnswer, ServiceError)> {
    let mut batcher = Batcher::new(queue, batch_size);
    let mut reader = EventReader::new(input);
    while let Some(line) = reader.next() {
        let end = reader.bytes_consumed();
        if let Err(e) = batcher.push(ReadLine { line, end }) {
            return Err(batcher.fail(e));
        }
    }
    match batcher.flush() {
        Ok(()) => Ok(batcher.finish()),
        Err(e) => Err(batcher.fail(e)),
    }
}

/// Reads lines on a thread of their own and sends them on, so that the caller can store a
/// partial batch when the input goes quiet (a pipe, a followed log). Lines wait in a
/// bounded channel: a slow store slows the reader down, never the other way round.
pub fn read_in_background(input: Box<dyn Read + Send>) -> Receiver<ReadLine<u64>> {
    let (tx, rx) = sync_channel(4 * INGEST_BATCH);
    std::thread::Builder::new()
        .name("connlog-ingest-reader".into())
        .spawn(move || {
            let mut reader = EventReader::new(BufReader::with_capacity(1 << 16, input));
            while let Some(line) = reader.next() {
                let end = reader.bytes_consumed();
                if tx.send(ReadLine { line, end }).is_err() {
                    return;
                }
            }
        })
        .expect("spawning the ingest reader");
    rx
}

/// What the live loop reports after each step, for progress bars and metrics.
pub trait IngestObserver<P> {
    /// A line was rejected (reported at once, before its batch is stored).
    fn rejected(&mut self, _line: &RejectedLine, _end: &P) {}
    /// A batch was stored: every line up to `committed` is settled.
    fn committed(&mut self, _answer: &IngestAnswer, _committed: &P) {}
}

impl<P> IngestObserver<P> for () {}

/// Stores the lines `lines` delivers until it ends, storing a partial batch whenever no
/// line arrived for `max_delay`.
pub fn ingest_live<P: Clone>(
    queue: &IngestQueue,
    lines: &Receiver<ReadLine<P>>,
    batch_size: usize,
    max_delay: Duration,
    observer: &mut dyn IngestObserver<P>,
) -> Result<IngestAnswer, (IngestAnswer, ServiceError)> {
    let mut batcher = Batcher::new(queue, batch_size);
    // When the oldest line of the pending batch was read.
    let mut pending_since: Option<Instant> = None;
    loop {
        let next = match pending_since {
            None => lines.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(since) => {
                let wait = max_delay.saturating_sub(since.elapsed());
                lines.recv_timeout(wait)
            }
        };
        let flushes = batcher.flushes;
        match next {
            Ok(read) => {
                let end = read.end.clone();
                let had_pending = batcher.has_pending();
                match batcher.push(read) {
                    Ok(Some(rejected)) => observer.rejected(&rejected, &end),
                    Ok(None) => {}
                    Err(e) => return Err(batcher.fail(e)),
                }
                if !had_pending && batcher.has_pending() {
                    pending_since = Some(Instant::now());
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = batcher.flush() {
                    return Err(batcher.fail(e));
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                if let Err(e) = batcher.flush() {
                    return Err(batcher.fail(e));
                }
                if let Some(at) = &batcher.committed {
                    observer.committed(&batcher.answer, at);
                }
                return Ok(batcher.finish());
            }
        }
        let flushed = batcher.flushes != flushes;
        if flushed {
            pending_since = None;
            if let Some(at) = &batcher.committed {
                observer.committed(&batcher.answer, at);
            }
        }
    }
}
