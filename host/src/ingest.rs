//! Event NDJSON into the service, in batches, with per-line outcomes. Shared by
//! `connlog ingest` (files, pipes and followed logs) and `POST /api/v2/connectionlog/ingest`,
//! so all of them answer alike.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError, sync_channel};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::events::{EventReader, Line, LineError};
use crate::model::{ConnectionEvent, EventOutcome};
use crate::service::{IngestQueue, Input, ReadingAhead, ServiceError, Submitted};

/// Events per plugin call: large enough to amortise the call, small enough to bound the
/// plugin's memory. A commit may hold several (`INGEST_GROUP`).
pub const INGEST_BATCH: usize = 1000;

/// Batches a reader that is ahead of the store (a file, a backlog) commits at once, each
/// its own plugin call: one fsync for all of them. While the plugin waited for each commit,
/// fewer commits loaded faster (the 1M file: 16 batches 9.6–10.8 s, 32 batches 9.2–9.8 s).
/// Now that the next group merges while a commit is made durable, smaller groups load no
/// slower (three alternated runs each: 8 batches 7.30–7.40 s, 16 batches 7.40–7.70 s, 32
/// batches 7.37–7.81 s), and hold the service a quarter as long per group of a bulk load.
pub const INGEST_GROUP: usize = 8;

/// Lines a reader thread may read ahead of the store: enough for a whole group.
pub const READ_AHEAD: usize = INGEST_GROUP * INGEST_BATCH;

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

/// Collects lines into batches and stores them, up to `group` batches in one commit,
/// keeping the answer. After each commit it knows the position just past the last line
/// stored (`committed`).
pub struct Batcher<'a, P> {
    queue: &'a IngestQueue,
    batch_size: usize,
    group: usize,
    /// The pending lines' numbers, and their events in whole batches, then one filling
    /// (filled in place: an event is some 300 bytes, not worth a second copy).
    lines: Vec<u64>,
    batches: Vec<Vec<ConnectionEvent>>,
    /// Where the lines pushed so far end.
    read_upto: Option<P>,
    /// Where the lines stored so far end.
    pub committed: Option<P>,
    pub answer: IngestAnswer,
    /// Batches stored so far.
    pub flushes: u64,
    /// For a reader that reads ahead (`reading_ahead`): its input, if it does; the mark
    /// that holds background snapshots back while it is ahead; and the whole batches stored
    /// since it last filled a group.
    marks_ahead: Option<Input>,
    ahead: Option<ReadingAhead<'a>>,
    batches_behind: usize,
    /// The full group stored last, whose answers wait for its commit while the next group
    /// is read and merged (`store`).
    in_flight: Option<InFlight<'a, P>>,
    /// A batch failed: `committed` stays where it is for good.
    failed: bool,
}

/// A group whose commit is queued: its lines' numbers, and where the last line read before
/// it was stored ends.
struct InFlight<'a, P> {
    submitted: Submitted<'a>,
    lines: Vec<u64>,
    upto: Option<P>,
}

impl<'a, P: Clone> Batcher<'a, P> {
    pub fn new(queue: &'a IngestQueue, batch_size: usize, group: usize) -> Self {
        Self {
            queue,
            batch_size: batch_size.max(1),
            group: group.max(1),
            lines: Vec::new(),
            batches: Vec::new(),
            read_upto: None,
            committed: None,
            answer: IngestAnswer::default(),
            flushes: 0,
            marks_ahead: None,
            ahead: None,
            batches_behind: 0,
            in_flight: None,
            failed: false,
        }
    }

    /// A batcher for a reader that may get ahead of the store (a file, a backlog): from
    /// the first group it fills, background snapshots wait (`IngestQueue::reading_ahead`).
    /// A finite input holds them until it ends. An endless one holds them until it has
    /// caught up: its input went quiet (a partial batch was stored), or a group's worth of
    /// whole batches was stored without a full group (on 2 cores a reader ahead may now
    /// and then be a batch short, and that is not the end of a bulk load).
    pub fn reading_ahead(
        queue: &'a IngestQueue,
        input: Input,
        batch_size: usize,
        group: usize,
    ) -> Self {
        Self {
            marks_ahead: Some(input),
            ..Self::new(queue, batch_size, group)
        }
    }

    /// Adds a line; stores the pending batches when the group is full. A rejected line is
    /// returned too, so a caller can report it at once.
    pub fn push(&mut self, read: ReadLine<P>) -> Result<Option<RejectedLine>, ServiceError> {
        let mut rejected = None;
        match read.line {
            Ok(Line::Event { line, event }) => {
                self.lines.push(line);
                match self.batches.last_mut() {
                    Some(filling) if filling.len() < self.batch_size => filling.push(event),
                    _ => {
                        let mut batch = Vec::with_capacity(self.batch_size);
                        batch.push(event);
                        self.batches.push(batch);
                    }
                }
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
        if self.pending() >= self.batch_size * self.group {
            if let Some(input) = self.marks_ahead
                && self.ahead.is_none()
            {
                self.ahead = Some(self.queue.reading_ahead(input));
            }
            self.batches_behind = 0;
            self.store(true)?;
        }
        Ok(rejected)
    }

    /// Stores what is pending (see `store`) before the group is full: no line is waiting,
    /// or the input ended.
    pub fn flush(&mut self) -> Result<(), ServiceError> {
        let pending = self.pending();
        let stored = self.store(false);
        self.batches_behind += pending / self.batch_size;
        let caught_up = !pending.is_multiple_of(self.batch_size)
            || pending == 0
            || self.batches_behind >= self.group;
        // A finite input's mark goes with the batcher, once the input has ended.
        if caught_up && self.marks_ahead == Some(Input::Endless) {
            self.ahead = None;
        }
        stored
    }

    /// Stores what is pending, in batches of `batch_size` under one commit, and answers
    /// the group in flight. On success every line pushed so far is settled (stored,
    /// rejected or skipped) and `committed` moves up to the last of them; `defer`red, the
    /// new group's answers wait for the next `store` instead, so that the next group is
    /// read and merged while its commit is made durable, and `committed` moves up to the
    /// group before. When a batch fails, the batches the service still stored (those
    /// before it, and any after it) are counted, `committed` stays, and the first failure
    /// is returned.
    fn store(&mut self, defer: bool) -> Result<(), ServiceError> {
        let group = (!self.batches.is_empty()).then(|| InFlight {
            submitted: self.queue.submit(std::mem::take(&mut self.batches)),
            lines: std::mem::take(&mut self.lines),
            upto: self.read_upto.clone(),
        });
        let mut outcome = self.answer_in_flight();
        match group {
            Some(group) if defer => self.in_flight = Some(group),
            Some(group) => outcome = outcome.and(self.answer(group)),
            None => {}
        }
        outcome?;
        if self.in_flight.is_none() && self.read_upto.is_some() && !self.failed {
            self.committed = self.read_upto.clone();
        }
        self.flushes += 1;
        Ok(())
    }

    fn answer_in_flight(&mut self) -> Result<(), ServiceError> {
        self.in_flight
            .take()
            .map_or(Ok(()), |group| self.answer(group))
    }

    /// Counts a stored group's answers, once its commit is durable (or failed).
    fn answer(&mut self, group: InFlight<'a, P>) -> Result<(), ServiceError> {
        let mut failure = None;
        let mut lines = group.lines.into_iter();
        for answer in group.submitted.answers() {
            let lines = lines.by_ref().take(self.batch_size);
            match answer {
                Ok(outcomes) => {
                    for (line, outcome) in lines.zip(outcomes) {
                        count(&mut self.answer, line, outcome);
                    }
                }
                Err(e) => {
                    lines.for_each(drop);
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            self.failed = true;
            return Err(e);
        }
        if !self.failed && group.upto.is_some() {
            self.committed = group.upto;
        }
        Ok(())
    }

    pub fn has_pending(&self) -> bool {
        !self.batches.is_empty()
    }

    /// Events pending: every batch but the last is whole.
    fn pending(&self) -> usize {
        self.batches.last().map_or(0, |last| {
            (self.batches.len() - 1) * self.batch_size + last.len()
        })
    }

    /// At least one whole batch is pending: worth storing now rather than waiting for the
    /// group to fill when no line is ready.
    pub fn has_whole_batch(&self) -> bool {
        self.batches
            .first()
            .is_some_and(|b| b.len() >= self.batch_size)
    }

    /// The answer, rejected lines in line order.
    pub fn finish(mut self) -> IngestAnswer {
        debug_assert!(self.in_flight.is_none(), "finished before a flush");
        self.answer.rejected.sort_by_key(|r| r.line);
        self.answer
    }

    /// Gives up the answer so far, with the error that stopped the ingest (and the group
    /// in flight counted).
    pub fn fail(mut self, error: ServiceError) -> (IngestAnswer, ServiceError) {
        let _ = self.answer_in_flight();
        (self.finish(), error)
    }
}

/// Adds a stored batch's outcome for `line` to the answer.
fn count(answer: &mut IngestAnswer, line: u64, outcome: EventOutcome) {
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

/// Reads every line of an in-memory or otherwise non-blocking input, stores what is valid,
/// and reports the rest. A storage or plugin failure stops at the failed batch: the
/// batches before it are stored and counted, and the error says so. Each batch is a commit
/// of its own (shared with other callers'), so that a large input does not hold up others.
pub fn ingest_ndjson(
    queue: &IngestQueue,
    input: impl BufRead,
    batch_size: usize,
) -> Result<IngestAnswer, (IngestAnswer, ServiceError)> {
    let mut batcher = Batcher::new(queue, batch_size, 1);
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
    let (tx, rx) = sync_channel(READ_AHEAD);
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

/// Stores the lines `lines` delivers until it ends: up to `INGEST_GROUP` batches per commit
/// while lines are waiting, what is pending as soon as a whole batch is and no line waits,
/// and a partial batch whenever no line arrived for `max_delay`. `input` says whether they
/// come from a finite input (see `Batcher::reading_ahead`).
pub fn ingest_live<P: Clone>(
    queue: &IngestQueue,
    lines: &Receiver<ReadLine<P>>,
    input: Input,
    batch_size: usize,
    max_delay: Duration,
    observer: &mut dyn IngestObserver<P>,
) -> Result<IngestAnswer, (IngestAnswer, ServiceError)> {
    let mut batcher = Batcher::reading_ahead(queue, input, batch_size, INGEST_GROUP);
    // When the oldest line of the pending batch was read.
    let mut pending_since: Option<Instant> = None;
    loop {
        let next = match (lines.try_recv(), pending_since) {
            (Ok(read), _) => Ok(read),
            (Err(TryRecvError::Disconnected), _) => Err(RecvTimeoutError::Disconnected),
            // The reader is not ahead: whole batches wait for nothing more.
            (Err(TryRecvError::Empty), _) if batcher.has_whole_batch() => {
                Err(RecvTimeoutError::Timeout)
            }
            (Err(TryRecvError::Empty), None) => {
                lines.recv().map_err(|_| RecvTimeoutError::Disconnected)
            }
            (Err(TryRecvError::Empty), Some(since)) => {
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
