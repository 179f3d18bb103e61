//! The hand-off from the core to its caller.

use crate::message::Message;
use crate::types::{Entry, HardState, ReadState, Snapshot};

/// Everything the caller must do after feeding the node inputs, taken with
/// [`crate::RawNode::ready`] and handed back with [`crate::RawNode::advance`].
///
/// Handle the fields **in this order**; the order is what makes Raft safe (paper Figure 2:
/// "persistent state ... updated on stable storage before responding to RPCs"):
///
/// 1. **Persist** `hard_state`, then `snapshot`, then `entries` (one fsync for all three is
///    fine, as long as all are durable before step 2). The order matters when a crash can land
///    between the parts: term and vote go first so that no entry or snapshot ever reaches the
///    disk with a term above the durable one ([`crate::RawNode::new`] refuses such a log with
///    `TermOutOfOrder`, so that node would never start again); and a commit index written
///    ahead of the entries must not cover the entries or log that the same write replaces
///    (store at most the index before `entries[0]`, or the previous commit when `snapshot`
///    replaces the log: commit is volatile in Raft, a lower one only re-applies entries).
///    Entries or a snapshot written before their term, with a crash in between, are the bug.
/// 2. **Send** `messages`.
/// 3. **Apply**: restore the state machine from `snapshot` if any, then apply
///    `committed_entries` in order, then serve `read_states` whose index is applied.
/// 4. **Advance**: call [`crate::RawNode::advance`] with this `Ready`.
///
/// [`Ready::persist_then_send`] packages steps 1-2 so that they cannot be swapped.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a Ready must be persisted, sent, applied and then passed to advance()"]
pub struct Ready {
    /// If `Some`, the node's term, vote or commit changed: write it durably, replacing the
    /// previous hard state, **before `snapshot` and `entries`** (see step 1) and **before
    /// sending any of `messages`** (a vote or term that is forgotten after a crash lets a node
    /// vote twice in one term).
    pub hard_state: Option<HardState>,
    /// Entries to append to the durable log, after `hard_state` and `snapshot`, **before
    /// sending any of `messages`**. If the log
    /// already holds entries at or after `entries[0].index`, delete them first: the leader
    /// overwrote a conflicting suffix (Figure 2, AppendEntries step 3). Indexes are contiguous.
    pub entries: Vec<Entry>,
    /// If `Some`, the leader sent a snapshot that replaces this node's log: persist it, **delete
    /// every durable log entry** (all of them; any `entries` in this Ready follow the snapshot),
    /// and restore the state machine from `data` before applying `committed_entries`. Persist
    /// it after `hard_state`, before `entries`, and before sending `messages`.
    pub snapshot: Option<Snapshot>,
    /// Messages to deliver to their `to` node, **only after** `hard_state`, `entries` and
    /// `snapshot` of this same Ready are durable. They may be lost, duplicated or reordered:
    /// Raft tolerates that, but not sending them before persisting.
    pub messages: Vec<Message>,
    /// Committed entries to apply to the state machine, in order. Each is already durable or
    /// in this Ready's `entries` (so apply after persisting). [`crate::EntryPayload::Noop`]
    /// entries change nothing but still advance the applied index.
    pub committed_entries: Vec<Entry>,
    /// Linearizable reads confirmed by a quorum (thesis §6.4): answer the read with context
    /// `ctx` once the state machine has applied at least `index` (applying this Ready's
    /// `committed_entries` may already reach it).
    pub read_states: Vec<ReadState>,
    /// Which Ready this is, so that `advance` can check it gets the latest one back.
    pub(crate) number: u64,
}

impl Ready {
    /// Whether there is nothing to do (the caller may still `advance` it).
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.entries.is_empty()
            && self.snapshot.is_none()
            && self.messages.is_empty()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
    }

    /// Runs steps 1 and 2 in the only safe order: `persist` gets the snapshot, the entries and
    /// the hard state and must make them durable (hard state first: see step 1) before it
    /// returns `Ok`; only then does `send` get the messages. On error nothing is sent and the error is returned (the node should
    /// then stop: its durable state is unknown).
    pub fn persist_then_send<E>(
        &mut self,
        persist: impl FnOnce(Option<&Snapshot>, &[Entry], Option<&HardState>) -> Result<(), E>,
        send: impl FnOnce(Vec<Message>),
    ) -> Result<(), E> {
        persist(
            self.snapshot.as_ref(),
            &self.entries,
            self.hard_state.as_ref(),
        )?;
        send(std::mem::take(&mut self.messages));
        Ok(())
    }
}

/// Asynchronous storage writes (in the style of etcd's `AsyncStorageWrites` and raft-rs's
/// `on_persist_ready`): what [`crate::RawNode::advance_async`] splits a [`Ready`] into, so that
/// the Raft thread can go on stepping messages while a disk writer fsyncs and an applier
/// applies.
///
/// The caller's duties, all of which the types enforce or make explicit:
///
/// 1. `send_now` may be sent at once. It holds a leader's AppendEntries and InstallSnapshot,
///    and a follower's successful AppendEntries answers while its term and vote are durable:
///    they reveal nothing that is not durable (the leader's term and vote were made durable
///    before it could win the election, and it counts its own entries towards a commit only
///    once [`crate::RawNode::on_persisted`] says they are durable: thesis §10.2.1; a follower's
///    early answer claims a match only through its durable entries, and the full answer waits
///    in `persist`). So a slow disk on followers delays neither heartbeats' answers, which
///    keep the leader's check-quorum satisfied, nor ReadIndex rounds (as etcd answers
///    heartbeats without waiting for its WAL).
/// 2. `persist` goes to **one** disk writer, **in the order the tasks were produced** (a FIFO
///    queue). The writer hands a batch of tasks to [`PersistTask::persist_then_send`], which
///    makes them durable (one fsync is fine), then reports a [`Persisted`] for the caller to
///    feed back to [`crate::RawNode::on_persisted`], then releases the messages that waited
///    for the write (acknowledgements, vote grants, vote requests...). The messages are private
///    to the task: there is no way to send them without persisting first.
/// 3. `apply` goes to the applier, in order: restore the state machine from `snapshot` if any,
///    apply `committed_entries`, serve `read_states` once applied, then report the applied
///    index with [`crate::RawNode::on_applied`]. Committed entries may be applied before this
///    node's own copy is durable: they are durable on a quorum already.
#[derive(Debug)]
#[must_use = "send, persist and apply the parts of an AsyncReady"]
pub struct AsyncReady {
    /// Messages to send now (a leader's replication traffic).
    pub send_now: Vec<Message>,
    /// The write for the disk writer, with the messages that must wait for it.
    pub persist: PersistTask,
    /// The work for the applier.
    pub apply: ApplyTask,
}

/// What must be made durable, and the messages that may leave only afterwards. See
/// [`AsyncReady`] for the caller's duties.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "a PersistTask must reach the disk writer, or its messages are never sent"]
pub struct PersistTask {
    pub(crate) snapshot: Option<Snapshot>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) hard_state: Option<HardState>,
    pub(crate) messages: Vec<Message>,
    /// Index and term of the last entry (or of the snapshot) written by this task.
    pub(crate) mark: Option<(crate::types::Index, crate::types::Term)>,
    /// The task's number, in the order tasks were handed out.
    pub(crate) seq: u64,
}

/// A report from the disk writer: everything handed out for persistence up to this point is
/// durable. Give it to [`crate::RawNode::on_persisted`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persisted {
    /// Index and term of the last entry (or snapshot) written, if the tasks wrote any.
    pub(crate) mark: Option<(crate::types::Index, crate::types::Term)>,
    /// The number of the last task covered (term and vote included).
    pub(crate) seq: u64,
}

impl Persisted {
    /// The index of the last durable entry this report covers, if the tasks wrote entries or
    /// a snapshot (and not only term, vote or commit).
    pub fn index(&self) -> Option<crate::types::Index> {
        self.mark.map(|(index, _)| index)
    }
}

impl PersistTask {
    /// If `Some`, persist it after the hard state (replacing the log: see [`Ready::snapshot`]).
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }
    /// Entries to append, last (see [`Ready::entries`]).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
    /// The hard state to store, first (see [`Ready::hard_state`]).
    pub fn hard_state(&self) -> Option<&HardState> {
        self.hard_state.as_ref()
    }
    /// How many messages wait for this write.
    pub fn message_count(&self) -> usize {
        self.messages.len()
    }
    /// Whether there is nothing to write and nothing to send (such a task may be dropped).
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none()
            && self.entries.is_empty()
            && self.hard_state.is_none()
            && self.messages.is_empty()
    }

    /// Group commit of a batch of tasks, taken from the queue in order: `persist` gets all of
    /// them and must make every hard state, snapshot and entry durable, task after task and in
    /// that order within a task ([`Ready`] step 1), before it returns `Ok` (one fsync at the
    /// end covers the batch); then `report` gets what to feed back to
    /// [`crate::RawNode::on_persisted`];
    /// only then does `send` get the messages, in order. On error nothing is reported or sent
    /// (the node should stop: its durable state is unknown).
    pub fn persist_then_send<E>(
        tasks: Vec<PersistTask>,
        persist: impl FnOnce(&[PersistTask]) -> Result<(), E>,
        report: impl FnOnce(Persisted),
        mut send: impl FnMut(Message),
    ) -> Result<(), E> {
        persist(&tasks)?;
        if let Some(last) = tasks.last() {
            report(Persisted {
                mark: tasks.iter().rev().find_map(|t| t.mark),
                seq: last.seq,
            });
        }
        for t in tasks {
            t.messages.into_iter().for_each(&mut send);
        }
        Ok(())
    }
}

/// What the applier must do, in order (see [`Ready`] step 3), before reporting the applied
/// index with [`crate::RawNode::on_applied`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ApplyTask {
    /// If `Some`, restore the state machine from it first.
    pub snapshot: Option<Snapshot>,
    /// Committed entries to apply, in order.
    pub committed_entries: Vec<Entry>,
    /// Reads to answer once the state machine has applied at least their index.
    pub read_states: Vec<ReadState>,
}

impl ApplyTask {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.committed_entries.is_empty() && self.read_states.is_empty()
    }
    /// The index the state machine reflects once this task is applied, if it moves it.
    pub fn applied_index(&self) -> Option<crate::types::Index> {
        self.committed_entries
            .last()
            .map(|e| e.index)
            .or(self.snapshot.as_ref().map(|s| s.meta.index))
    }
}
