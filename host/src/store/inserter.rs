//! An ingest group's inserts, on a thread of their own (`Journal::begin_ingest`): the plugin
//! merges a batch while the rows it appended are written, and the commit waits for both. A
//! batch rolled back (the plugin refused it or trapped) has its rows deleted again
//! (`rollback_to_savepoint`), so it needs no SQL savepoint.
//!
//! During the group, the write transaction lives on the inserter's connection. The
//! journal's own connection reads what is committed once the inserter has SQLite's write
//! lock, so it sees every event committed before the group and none can be committed
//! meanwhile; with the ids the group appended, that answers `journal.append` (new, or
//! already stored) exactly, without waiting for the inserts. `session-events` likewise: the
//! committed store's answer, plus the group's own session events and those of the group
//! whose commit is queued (`Appended`), kept beside the queue. What needs the
//! transaction's own view (the journal's head, the commit) waits for the inserts queued
//! before it.
//!
//! A failed insert fails the rest of the group: the inserter skips everything after it,
//! and the commit rolls the transaction back and reports it. The plugin has merged those
//! events by then, so the service rebuilds it, as after any failed commit.
//!
//! A commit may be queued rather than waited for (`commit_queued`): the next group then
//! opens behind it at once, and its `append` counts the queued group's ids as stored. That
//! holds only if the queued commit succeeds and no other writer commits between the two
//! groups, which the inserter checks when it opens the next one (`Command::Continue`):
//! otherwise that group fails at its commit. The queued commit's outcome must be learnt
//! (`settle`) before the group behind it commits.
//!
//! The plugin reads a session back (`session-events`) when an event arrives for one it
//! holds as ended, as concurrent requests bring a session's events out of order. Answered
//! by the inserter, after its queue, such a read waited for the batch's own inserts and the
//! fsync of the commit queued before: over HTTP at 1M rows, 229 of 1,585 batches waited,
//! 3.4 ms at the median and up to 7 ms.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::appended::Appended;
use super::journal::Journal;
use crate::model::{ConnectionEvent, SessionKey, StorageError, Uuid};

/// The journal's side: the commands it sends, and what the open group appended.
pub(super) struct Inserter {
    commands: Sender<Command>,
    replies: Receiver<Reply>,
    thread: Option<JoinHandle<()>>,
    /// What the open group appended.
    group: Appended,
    /// What the group whose commit is queued and not yet settled appended: stored, as far
    /// as the next group knows (its read may predate that commit).
    carried: Appended,
    queued: bool,
}

/// What a commit came to: the journal's head once durable, or why it is not. Several may
/// wait for it: the callers whose batches it holds, and the service settling it.
#[derive(Default)]
pub struct Commit {
    outcome: Mutex<Option<Result<i64, StorageError>>>,
    done: Condvar,
}

impl Commit {
    pub fn wait(&self) -> Result<i64, StorageError> {
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(outcome) = &*outcome {
                return outcome.clone();
            }
            outcome = self
                .done
                .wait(outcome)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Whether `wait` would return at once.
    pub fn is_done(&self) -> bool {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    pub(super) fn finished(outcome: Result<i64, StorageError>) -> Arc<Self> {
        let commit = Arc::new(Self::default());
        commit.fill(outcome);
        commit
    }

    fn fill(&self, outcome: Result<i64, StorageError>) {
        let mut slot = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert(outcome);
        self.done.notify_all();
    }
}

/// The inserter's hold on a queued commit: dropped unfilled (the thread stopped, or never
/// got the command), it fills it with that error, so that no one waits for ever.
struct Filler(Arc<Commit>);

impl Drop for Filler {
    fn drop(&mut self) {
        self.0.fill(Err(StorageError::Unavailable(
            "the journal's inserter stopped before the commit".into(),
        )));
    }
}

enum Command {
    Begin,
    /// `Begin` behind a queued commit, without a reply: a failure (or another writer's
    /// events since that commit) fails the group at its commit.
    Continue,
    /// A batch starts: the rows inserted after this are its own.
    Mark,
    /// The batch since the last `Mark` is rolled back: its rows are deleted.
    Undo,
    Insert(Arc<Vec<ConnectionEvent>>),
    LastSeq,
    Commit(Filler),
    Rollback,
}

enum Reply {
    Done(Result<(), StorageError>),
    Seq(Result<i64, StorageError>),
}

impl Inserter {
    /// Starts the thread, with a connection of its own to the journal at `journal`.
    pub(super) fn start(journal: Journal) -> Result<Self, StorageError> {
        let (commands, inbox) = channel();
        let (outbox, replies) = channel();
        let thread = std::thread::Builder::new()
            .name("connlog-inserter".into())
            .spawn(move || serve(journal, &inbox, &outbox))
            .map_err(|e| StorageError::Unavailable(format!("starting the inserter: {e}")))?;
        Ok(Self {
            commands,
            replies,
            thread: Some(thread),
            group: Appended::default(),
            carried: Appended::default(),
            queued: false,
        })
    }

    /// Takes SQLite's write lock (`BEGIN IMMEDIATE`) on the inserter's connection; behind
    /// a queued commit, queues that without waiting.
    pub(super) fn begin(&mut self) -> Result<(), StorageError> {
        self.group.clear();
        if self.queued {
            self.send(Command::Continue);
            Ok(())
        } else {
            self.done(Command::Begin)
        }
    }

    /// Starts a batch, whose rows are inserted as they come and deleted again if it is
    /// rolled back. A SQL `SAVEPOINT` instead had SQLite copy each page a batch changed
    /// into a subjournal first: in the two indexes on random ids, about a page per event
    /// (at 10M rows the inserter's CPU was 9 % more). Holding the rows back until the
    /// batch's release instead left them unwritten while the plugin merged the batch, which
    /// a caller waiting for its answer waits through.
    pub(super) fn savepoint(&mut self) {
        self.group.savepoint();
        self.send(Command::Mark);
    }

    pub(super) fn release_savepoint(&mut self) {
        self.group.savepoint();
    }

    pub(super) fn rollback_to_savepoint(&mut self) {
        self.group.rollback_to_savepoint();
        self.send(Command::Undo);
    }

    /// Whether the group, or the one whose commit is queued, appended an event with this id.
    pub(super) fn appended(&self, id: &Uuid) -> bool {
        self.group.contains(id) || self.carried.contains(id)
    }

    /// Counts an event as appended by the group (`appended` and the committed store both
    /// said it was new).
    pub(super) fn note(&mut self, id: Uuid) {
        self.group.note(id);
    }

    /// Queues the insert of events `note`d as new.
    pub(super) fn insert(&mut self, events: Vec<ConnectionEvent>) {
        let events = Arc::new(events);
        self.group.push(&events);
        self.send(Command::Insert(events));
    }

    /// Adds to each of `answers` (what the committed store holds of the session `keys`
    /// names) the events of that session the open group and the queued one appended.
    pub(super) fn add_appended(&self, keys: &[SessionKey], answers: &mut [Vec<ConnectionEvent>]) {
        for (key, events) in keys.iter().zip(answers) {
            self.carried.add_to(key, events);
            self.group.add_to(key, events);
        }
    }

    /// The journal's highest `seq`, once every queued insert is in.
    pub(super) fn last_seq(&mut self) -> Result<i64, StorageError> {
        self.send(Command::LastSeq);
        match self.reply()? {
            Reply::Seq(seq) => seq,
            _ => Err(out_of_step()),
        }
    }

    /// Queues the group's commit: durable once the returned commit says `Ok`, with the
    /// journal's highest `seq` then; on `Err` the whole transaction was rolled back. The
    /// next group may open meanwhile; `settle` must come before another commit.
    pub(super) fn commit_queued(&mut self) -> Result<Arc<Commit>, StorageError> {
        if self.queued {
            return Err(out_of_step());
        }
        // `carried` was emptied when the commit before was settled: the two trade places
        // and keep their room, instead of the next group's growing again.
        std::mem::swap(&mut self.carried, &mut self.group);
        self.group.clear();
        self.queued = true;
        let commit = Arc::new(Commit::default());
        self.send(Command::Commit(Filler(commit.clone())));
        Ok(commit)
    }

    /// Once the queued commit's outcome is known: the ids its group appended, which are
    /// stored if it succeeded.
    pub(super) fn settle(&mut self) -> impl Iterator<Item = Uuid> + '_ {
        self.queued = false;
        self.carried.drain_ids()
    }

    pub(super) fn rollback(&mut self) {
        self.group.clear();
        let _ = self.done(Command::Rollback);
    }

    fn done(&mut self, command: Command) -> Result<(), StorageError> {
        self.send(command);
        match self.reply()? {
            Reply::Done(outcome) => outcome,
            _ => Err(out_of_step()),
        }
    }

    fn send(&self, command: Command) {
        // A thread that is gone shows at the next reply.
        let _ = self.commands.send(command);
    }

    fn reply(&self) -> Result<Reply, StorageError> {
        self.replies
            .recv()
            .map_err(|_| StorageError::Unavailable("the journal's inserter stopped".into()))
    }
}

impl Drop for Inserter {
    fn drop(&mut self) {
        // Closing the channel ends the thread; an open transaction is rolled back as its
        // connection closes.
        let (closed, _) = channel();
        drop(std::mem::replace(&mut self.commands, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn out_of_step() -> StorageError {
    StorageError::Unavailable("the journal's inserter answered out of step".into())
}

/// The inserter's thread: runs the commands in order on its own connection. After a
/// failure it skips the group's remaining writes and reports the failure at the next
/// question, so that nothing after a lost insert is committed.
fn serve(mut journal: Journal, inbox: &Receiver<Command>, outbox: &Sender<Reply>) {
    let mut failed: Option<StorageError> = None;
    // The head the last commit left, if it succeeded: where a continued group must start.
    let mut committed: Option<i64> = None;
    // The head when the open batch started: its rows are those past it.
    let mut batch_start: Option<i64> = None;
    while let Ok(command) = inbox.recv() {
        let reply = match command {
            Command::Begin => {
                failed = None;
                Some(Reply::Done(journal.begin()))
            }
            Command::Continue => {
                failed = continue_after(&journal, committed).err();
                None
            }
            Command::Mark => run(&mut failed, || {
                batch_start = Some(journal.last_seq()?);
                Ok(())
            }),
            Command::Undo => run(&mut failed, || match batch_start.take() {
                Some(start) => journal.delete_events_after(start),
                None => Err(out_of_step()),
            }),
            Command::Insert(events) => run(&mut failed, || insert(&mut journal, &events)),
            Command::LastSeq => Some(Reply::Seq(
                checked(&failed).and_then(|()| journal.last_seq()),
            )),
            Command::Commit(filler) => {
                let outcome = checked(&failed).and_then(|()| {
                    let head = journal.last_seq()?;
                    journal.commit().map(|()| head)
                });
                if outcome.is_err() {
                    journal.rollback();
                }
                failed = None;
                committed = outcome.as_ref().ok().copied();
                filler.0.fill(outcome);
                None
            }
            Command::Rollback => {
                journal.rollback();
                failed = None;
                Some(Reply::Done(Ok(())))
            }
        };
        if let Some(reply) = reply
            && outbox.send(reply).is_err()
        {
            break;
        }
    }
}

/// Opens a group behind the commit that left the journal's head at `committed`: only if
/// that commit succeeded and no one stored events since, which the group's answers assumed.
fn continue_after(journal: &Journal, committed: Option<i64>) -> Result<(), StorageError> {
    let Some(committed) = committed else {
        // Its BEGIN is not run: the commit, which finds the group failed, rolls back none.
        return Err(StorageError::Unavailable(
            "the ingest group before this one was not committed; nothing of this one is \
             stored, and sending it again is safe"
                .into(),
        ));
    };
    journal.begin()?;
    let head = journal.last_seq()?;
    if head != committed {
        return Err(StorageError::Unavailable(format!(
            "another writer stored events while this ingest group waited for the one before \
             (the journal's head moved from {committed} to {head}); nothing of this group is \
             stored, and sending it again is safe"
        )));
    }
    Ok(())
}

/// Runs a write that has no answer, unless an earlier one failed; keeps the first failure.
fn run(
    failed: &mut Option<StorageError>,
    write: impl FnOnce() -> Result<(), StorageError>,
) -> Option<Reply> {
    if failed.is_none()
        && let Err(e) = write()
    {
        *failed = Some(e);
    }
    None
}

fn checked(failed: &Option<StorageError>) -> Result<(), StorageError> {
    failed.clone().map_or(Ok(()), Err)
}

/// Inserts events the journal's read said were new. One found already stored means the
/// store changed under the write lock, which must not happen: the group is not committed.
fn insert(journal: &mut Journal, events: &[ConnectionEvent]) -> Result<(), StorageError> {
    let stored = journal.insert(events)?;
    match events.iter().zip(stored).find(|(_, new)| !new) {
        Some((event, _)) => Err(StorageError::Unavailable(format!(
            "event {} was already stored when the ingest group inserted it",
            event.id
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::{ConnectionMethod, ConnectionStatus};

    const WORKSPACE: Uuid = Uuid::from_u128(7);

    /// Event `n` of session `n % 4` (so that sessions gather events across batches).
    fn event(n: u8) -> ConnectionEvent {
        ConnectionEvent {
            id: Uuid::from_u128(1000 + u128::from(n)),
            time: i64::from(n),
            organization_id: Uuid::from_u128(1),
            workspace_owner_id: Uuid::from_u128(2),
            workspace_id: WORKSPACE,
            workspace_name: "ws".into(),
            agent_name: "main".into(),
            connection_method: ConnectionMethod::Ssh,
            code: None,
            ip: Some("10.0.0.1".into()),
            user_agent: None,
            user_id: None,
            app_name_or_port: None,
            connection_id: Some(session(n).connection_id),
            disconnect_reason: None,
            client_session_id: None,
            status: ConnectionStatus::Connected,
        }
    }

    fn session(n: u8) -> SessionKey {
        SessionKey {
            connection_id: Uuid::from_u128(50 + u128::from(n % 4)),
            workspace_id: WORKSPACE,
            agent_name: "main".into(),
        }
    }

    fn journal() -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("connlog.db")).unwrap();
        (dir, journal)
    }

    /// Ids of a session's events, sorted (the journal returns them in any order).
    fn ids(events: Vec<ConnectionEvent>) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = events.into_iter().map(|e| e.id).collect();
        ids.sort();
        ids
    }

    /// What one ingest group saw and left: each batch's answers and the sessions it read
    /// back, and the stored ids in `seq` order. (Inserting in place may skip a `seq` for an
    /// id repeated within one `append`; the inserter never sends the repeat.)
    #[derive(Debug, PartialEq)]
    struct Seen {
        answers: Vec<Vec<bool>>,
        sessions: Vec<Vec<Uuid>>,
        stored: Vec<Uuid>,
    }

    /// How `run` stores its events.
    #[derive(Clone, Copy)]
    enum Way {
        InPlace,
        Inserter,
        /// Through the inserter, the group opened behind the queued commit of the events
        /// before it, which it settles only before its own commit.
        BehindQueued,
    }

    /// Commits `committed` on its own, then runs `batches` (event numbers, and whether the
    /// batch is rolled back to its savepoint) in one group, the `way` it says.
    fn run(committed: &[u8], batches: &[(Vec<u8>, bool)], way: Way) -> Seen {
        let (_dir, mut journal) = journal();
        let committed = committed.iter().map(|&n| event(n)).collect();
        let mut queued = None;
        match way {
            Way::InPlace => journal.begin().unwrap(),
            Way::Inserter | Way::BehindQueued => journal.begin_ingest().unwrap(),
        }
        journal.append(committed).unwrap();
        match way {
            Way::BehindQueued => queued = Some(journal.queue_commit()),
            Way::InPlace | Way::Inserter => journal.commit().unwrap(),
        }
        match way {
            Way::InPlace => journal.begin().unwrap(),
            Way::Inserter | Way::BehindQueued => journal.begin_ingest().unwrap(),
        }
        let mut seen = Seen {
            answers: Vec::new(),
            sessions: Vec::new(),
            stored: Vec::new(),
        };
        for (numbers, roll_back) in batches {
            journal.savepoint().unwrap();
            let answers = journal
                .append(numbers.iter().map(|&n| event(n)).collect())
                .unwrap();
            seen.answers.push(answers);
            let keys: Vec<SessionKey> = numbers.iter().map(|&n| session(n)).collect();
            let read = journal.session_events(&keys).unwrap();
            seen.sessions.extend(read.into_iter().map(ids));
            if *roll_back {
                journal.rollback_to_savepoint().unwrap();
            } else {
                journal.release_savepoint().unwrap();
            }
        }
        if let Some(queued) = queued {
            let outcome = queued.wait();
            journal.settle_commit(&outcome);
            outcome.unwrap();
        }
        let head = journal.last_seq().unwrap();
        journal.commit().unwrap();
        let mut last = 0;
        journal
            .for_each_event(0, i64::MAX, |seq, e| {
                seen.stored.push(e.id);
                last = seq;
                Ok(())
            })
            .unwrap();
        assert_eq!(
            head, last,
            "the head before the commit is the last event's seq"
        );
        seen
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Repeats inside a batch, across batches, of committed events (in place, or in a
        /// group whose commit is still queued) and of rolled-back ones: the inserter's
        /// answers, session reads and rows are those of inserting in place.
        #[test]
        fn a_group_through_the_inserter_answers_and_stores_as_inserting_in_place(
            committed in proptest::collection::vec(0u8..24, 0..6),
            batches in proptest::collection::vec(
                (proptest::collection::vec(0u8..24, 0..8), proptest::bool::weighted(0.25)),
                1..6,
            ),
        ) {
            let in_place = run(&committed, &batches, Way::InPlace);
            prop_assert_eq!(&run(&committed, &batches, Way::Inserter), &in_place);
            prop_assert_eq!(&run(&committed, &batches, Way::BehindQueued), &in_place);
        }
    }

    /// Event `n`, its optional fields set or left out by `n` and its other fields varied
    /// with it: a column stored wrong shows.
    fn full_event(n: u8) -> ConnectionEvent {
        let odd = n % 2 == 1;
        ConnectionEvent {
            code: odd.then_some(i32::from(n) + 400),
            user_agent: odd.then(|| format!("agent {n}")),
            user_id: odd.then(|| Uuid::from_u128(9000 + u128::from(n))),
            app_name_or_port: (!odd).then(|| format!("{n}")),
            connection_id: (!n.is_multiple_of(3)).then_some(session(n).connection_id),
            disconnect_reason: odd.then(|| format!("reason {n}")),
            client_session_id: (!odd).then(|| format!("client {n}")),
            status: if odd {
                ConnectionStatus::Disconnected
            } else {
                ConnectionStatus::Connected
            },
            connection_method: ConnectionMethod::ALL[usize::from(n) % ConnectionMethod::ALL.len()],
            workspace_name: format!("ws-{n}"),
            ..event(n)
        }
    }

    /// Through the inserter, each event comes back whole, in order, with one `seq` after
    /// another.
    #[test]
    fn events_through_the_inserter_come_back_whole_and_in_order() {
        let (_dir, mut journal) = journal();
        let events: Vec<ConnectionEvent> = (0..150).map(full_event).collect();
        journal.begin_ingest().unwrap();
        assert!(
            journal
                .append(events.clone())
                .unwrap()
                .iter()
                .all(|&new| new)
        );
        journal.commit().unwrap();
        let mut stored = Vec::new();
        journal
            .for_each_event(0, i64::MAX, |seq, e| {
                stored.push((seq, e.clone().into_owned()));
                Ok(())
            })
            .unwrap();
        let expected: Vec<(i64, ConnectionEvent)> = (1..).zip(events).collect();
        assert_eq!(stored, expected);
    }

    /// The groups' filter of stored ids knows the events stored without it in between
    /// (another connection's, here), and those of the groups before.
    #[test]
    fn events_stored_between_groups_are_known_to_the_next_group() {
        let (dir, mut journal) = journal();
        journal.begin_ingest().unwrap();
        assert_eq!(journal.append(vec![event(1)]).unwrap(), [true]);
        journal.commit().unwrap();
        let other = Journal::connect(&dir.path().join("connlog.db")).unwrap();
        other.insert(&[event(2)]).unwrap();

        journal.begin_ingest().unwrap();
        assert_eq!(
            journal.append(vec![event(1), event(2), event(3)]).unwrap(),
            [false, false, true]
        );
        journal.commit().unwrap();
        assert_eq!(journal.event_count().unwrap(), 3);
    }

    #[test]
    fn a_rolled_back_group_stores_nothing_and_the_next_one_starts_clean() {
        let (_dir, mut journal) = journal();
        journal.begin_ingest().unwrap();
        assert_eq!(
            journal.append(vec![event(1), event(2)]).unwrap(),
            [true, true]
        );
        journal.rollback();
        assert_eq!(journal.event_count().unwrap(), 0);

        journal.begin_ingest().unwrap();
        assert_eq!(journal.append(vec![event(1)]).unwrap(), [true], "forgotten");
        journal.commit().unwrap();
        assert_eq!(journal.event_count().unwrap(), 1);
    }

    /// A group opened behind a queued commit counts that commit's events as stored, and
    /// commits after it.
    #[test]
    fn a_group_behind_a_queued_commit_counts_its_events_as_stored() {
        let (_dir, mut journal) = journal();
        journal.begin_ingest().unwrap();
        assert_eq!(
            journal.append(vec![event(1), event(2)]).unwrap(),
            [true, true]
        );
        let first = journal.queue_commit();

        journal.begin_ingest().unwrap();
        assert_eq!(
            journal.append(vec![event(2), event(3)]).unwrap(),
            [false, true]
        );
        let outcome = first.wait();
        assert_eq!(outcome, Ok(2));
        journal.settle_commit(&outcome);
        journal.commit().unwrap();
        assert_eq!(journal.event_count().unwrap(), 3);

        journal.begin_ingest().unwrap();
        assert_eq!(
            journal.append(vec![event(1), event(3), event(4)]).unwrap(),
            [false, false, true],
            "the filter of stored ids has both groups'"
        );
        journal.commit().unwrap();
    }

    /// Events another writer commits between a queued commit and the group behind it may
    /// repeat that group's, which it answered without seeing them: it fails whole, at its
    /// commit, and the next group stores as before.
    #[test]
    fn a_group_behind_a_queued_commit_fails_when_another_writer_came_between() {
        let (dir, mut journal) = journal();
        journal.begin_ingest().unwrap();
        journal.append(vec![event(1)]).unwrap();
        let first = journal.queue_commit();
        let outcome = first.wait();
        let other = Journal::connect(&dir.path().join("connlog.db")).unwrap();
        other.insert(&[event(2)]).unwrap();

        journal.begin_ingest().unwrap();
        journal.append(vec![event(3)]).unwrap();
        journal.settle_commit(&outcome);
        let failure = journal.commit().unwrap_err();
        assert!(failure.to_string().contains("another writer"), "{failure}");
        assert_eq!(journal.event_count().unwrap(), 2);

        journal.begin_ingest().unwrap();
        assert_eq!(
            journal.append(vec![event(2), event(3)]).unwrap(),
            [false, true]
        );
        journal.commit().unwrap();
        assert_eq!(journal.event_count().unwrap(), 3);
    }

    /// A queued commit that fails takes the group behind it along, which counted its
    /// events as stored: nothing of either is.
    #[test]
    fn a_group_behind_a_failed_commit_fails_too() {
        let (dir, mut journal) = journal();
        refuse_time_13(&dir);
        journal.begin_ingest().unwrap();
        journal.append(vec![event(1), event(13)]).unwrap();
        let first = journal.queue_commit();

        journal.begin_ingest().unwrap();
        assert_eq!(
            journal.append(vec![event(1), event(2)]).unwrap(),
            [false, true]
        );
        let outcome = first.wait();
        assert!(outcome.is_err());
        journal.settle_commit(&outcome);
        let failure = journal.commit().unwrap_err();
        assert!(failure.to_string().contains("not committed"), "{failure}");
        assert_eq!(journal.event_count().unwrap(), 0);

        journal.begin_ingest().unwrap();
        assert_eq!(
            journal.append(vec![event(1), event(2)]).unwrap(),
            [true, true]
        );
        journal.commit().unwrap();
        assert_eq!(journal.event_count().unwrap(), 2);
    }

    /// Has the store refuse events of time 13 (a trigger), as a full disk would.
    fn refuse_time_13(dir: &tempfile::TempDir) {
        rusqlite::Connection::open(dir.path().join("connlog.db"))
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.time_ns = 13 \
                 BEGIN SELECT RAISE(ABORT, 'refused by a test'); END;",
            )
            .unwrap();
    }

    /// A failed insert (here a trigger's) fails the whole group at its commit, whatever
    /// came after it; nothing of the group is stored, and the next group is not affected.
    #[test]
    fn a_failed_insert_fails_the_groups_commit_and_stores_nothing_of_it() {
        let (dir, mut journal) = journal();
        refuse_time_13(&dir);
        journal.begin_ingest().unwrap();
        for batch in [vec![event(1)], vec![event(13)], vec![event(2)]] {
            journal.savepoint().unwrap();
            journal.append(batch).unwrap();
            journal.release_savepoint().unwrap();
        }
        let failure = journal.commit().unwrap_err();
        assert!(
            failure.to_string().contains("refused by a test"),
            "{failure}"
        );
        assert_eq!(journal.event_count().unwrap(), 0);

        journal.begin_ingest().unwrap();
        journal.append(vec![event(1), event(2)]).unwrap();
        assert_eq!(
            journal.last_seq().unwrap(),
            2,
            "the failed group's seqs are not used"
        );
        journal.commit().unwrap();
        assert_eq!(journal.event_count().unwrap(), 2);
    }
}
