//! The hand-off from the core to its caller.

use crate::message::Message;
use crate::types::{Entry, HardState, ReadState, Snapshot};

/// Everything the caller must do after feeding the node inputs, taken with
/// [`crate::RawNode::ready`] and handed back with [`crate::RawNode::advance`].
///
/// Handle the fields **in this order**; the order is what makes Raft safe (paper Figure 2:
/// "persistent state ... updated on stable storage before responding to RPCs"):
///
/// 1. **Persist** `snapshot`, then `entries`, then `hard_state` (one fsync for all three is
///    fine, as long as all are durable before step 2).
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
    /// previous hard state, **before sending any of `messages`** (a vote or term that is
    /// forgotten after a crash lets a node vote twice in one term).
    pub hard_state: Option<HardState>,
    /// Entries to append to the durable log, **before sending any of `messages`**. If the log
    /// already holds entries at or after `entries[0].index`, delete them first: the leader
    /// overwrote a conflicting suffix (Figure 2, AppendEntries step 3). Indexes are contiguous.
    pub entries: Vec<Entry>,
    /// If `Some`, the leader sent a snapshot that replaces this node's log: persist it, **delete
    /// every durable log entry** (all of them; any `entries` in this Ready follow the snapshot),
    /// and restore the state machine from `data` before applying `committed_entries`. Persist
    /// it before sending `messages`.
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
    /// the hard state and must make them durable before it returns `Ok`; only then does `send`
    /// get the messages. On error nothing is sent and the error is returned (the node should
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
