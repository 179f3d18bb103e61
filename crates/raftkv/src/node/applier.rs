//! The applier thread: applies committed entries to the KV state machine, answers the writes
//! waiting for them and the reads whose ReadIndex is applied, and takes snapshots for the Raft
//! thread to compact its log with.
//!
//! It receives, in one FIFO queue from the Raft thread, the waiters (registered right after
//! `propose` / `read_index`, so always before the entries or read states that complete them)
//! and the [`ApplyTask`]s. It reports each applied index back to the Raft thread's inbox
//! (`Event::Applied`), then, when one is due, a snapshot (`Event::Snapshot`): in that order, so
//! that the core knows the index is applied when it is asked to compact through it.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use raft::{ApplyTask, Entry, EntryPayload, Index, Term};

use super::pending::{answer, PendingReads, PendingWrites, ReadWaiter};
use super::Event;
use crate::kv::{KvStore, Outcome, Proposal};
use crate::protocol::{ErrorCode, Reply};
use crate::reply::ReplyTx;
use crate::{error, info};

/// How often waiters whose clients timed out are forgotten.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// Work for the applier, in the order the Raft thread produced it.
#[derive(Debug)]
pub enum ApplierMsg {
    /// A proposal accepted at `(term, index)`: answer `reply` once that index is applied.
    Write {
        term: u64,
        index: u64,
        reply: ReplyTx,
        deadline: Instant,
    },
    /// Reads given to Raft under ReadIndex context `ctx`.
    Reads { ctx: u64, batch: Vec<ReadWaiter> },
    /// PLANTED(fx-stale-reads, fx-one-way): reads to answer once `index` is applied, with no
    /// leadership confirmation. Never sent by `raftkv`.
    LocalReads { index: u64, batch: Vec<ReadWaiter> },
    /// Committed entries, a snapshot to restore and confirmed reads.
    Apply(ApplyTask),
    /// Leadership was lost: reads not yet confirmed can no longer be, answer them `not_leader`.
    LeadershipLost { hint: Option<String> },
}

/// The applier's state.
pub struct Applier {
    pub kv: KvStore,
    pub applied: u64,
    pub snapshot_index: u64,
    pub snapshot_every: u64,
    pub inbox: Sender<Event>,
    writes: PendingWrites,
    reads: PendingReads,
}

impl Applier {
    pub fn new(
        kv: KvStore,
        snapshot_index: u64,
        snapshot_every: u64,
        inbox: Sender<Event>,
    ) -> Applier {
        Applier {
            kv,
            applied: snapshot_index,
            snapshot_index,
            snapshot_every,
            inbox,
            writes: PendingWrites::default(),
            reads: PendingReads::default(),
        }
    }

    /// Runs until the Raft thread hangs up; then fails what still waits.
    pub fn run(mut self, work: &Receiver<ApplierMsg>) {
        let mut next_sweep = Instant::now() + SWEEP_EVERY;
        loop {
            match work.recv_deadline(next_sweep) {
                Ok(msg) => {
                    self.handle(msg);
                    while let Ok(msg) = work.try_recv() {
                        self.handle(msg);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.writes.expire(now);
                self.reads.expire(now);
                next_sweep = now + SWEEP_EVERY;
            }
        }
        self.writes
            .fail_all(&ErrorCode::Unknown("the node stopped".into()));
        for w in self.reads.take_all() {
            answer(
                &w.reply,
                Reply::Error(ErrorCode::Dropped("the node stopped".into())),
            );
        }
    }

    fn handle(&mut self, msg: ApplierMsg) {
        match msg {
            ApplierMsg::Write {
                term,
                index,
                reply,
                deadline,
            } => {
                if index <= self.applied {
                    // Cannot happen (the waiter is registered before its entry is handed out),
                    // but never leave a client hanging.
                    answer(&reply, Reply::Error(ErrorCode::Unknown("raced".into())));
                } else {
                    self.writes.insert(term, index, reply, deadline);
                }
            }
            ApplierMsg::Reads { ctx, batch } => self.reads.register(ctx, batch),
            ApplierMsg::LocalReads { index, batch } => {
                self.reads.push_confirmed(index, batch);
                self.serve_reads();
            }
            ApplierMsg::LeadershipLost { hint } => {
                for w in self.reads.take_unconfirmed() {
                    answer(&w.reply, Reply::Error(ErrorCode::NotLeader(hint.clone())));
                }
            }
            ApplierMsg::Apply(task) => self.apply(task),
        }
    }

    fn apply(&mut self, task: ApplyTask) {
        let before = self.applied;
        if let Some(s) = &task.snapshot {
            match KvStore::restore(&s.data, crate::kv::DEFAULT_MAX_SESSIONS) {
                Ok(kv) => self.kv = kv,
                Err(e) => {
                    error!("cannot restore the leader's snapshot, stopping: {e}");
                    let _ = self.inbox.send(Event::Fatal(e.into()));
                    return;
                }
            }
            self.applied = s.meta.index.0;
            self.snapshot_index = s.meta.index.0;
            self.writes.snapshot_installed(s.meta.index.0);
            info!(
                "installed a snapshot at {} from the leader ({} keys)",
                s.meta.index.0,
                self.kv.len()
            );
        }
        let mut last_term = None;
        for e in &task.committed_entries {
            self.apply_entry(e);
            self.applied = e.index.0;
            last_term = Some(e.term);
        }
        for rs in &task.read_states {
            self.reads.confirm(rs.ctx, rs.index.0);
        }
        self.serve_reads();
        if self.applied != before {
            let _ = self.inbox.send(Event::Applied(Index(self.applied)));
        }
        if let Some(term) = last_term {
            self.maybe_snapshot(term);
        }
    }

    /// Answers the confirmed reads whose index is applied.
    fn serve_reads(&mut self) {
        for w in self.reads.take_servable(self.applied) {
            let value = self.kv.get(&w.key).map(str::to_string);
            answer(&w.reply, Reply::Value(value));
        }
    }

    fn apply_entry(&mut self, e: &Entry) {
        let (index, term) = (e.index.0, e.term.0);
        match &e.payload {
            // A configuration changes the membership, which the core tracks, not the store.
            EntryPayload::Noop | EntryPayload::Config(_) => {
                self.writes
                    .applied(index, term, || Reply::Error(ErrorCode::Overwritten));
            }
            EntryPayload::Command(bytes) => match Proposal::decode(bytes) {
                Ok(p) => {
                    let outcome = self.kv.apply(index, &p);
                    self.writes.applied(index, term, || reply_for(outcome));
                }
                Err(err) => {
                    // Every replica skips it alike, so they stay identical.
                    error!("skipping undecodable entry {index}: {err}");
                    self.writes.applied(index, term, || {
                        Reply::Error(ErrorCode::Unknown(format!("undecodable entry: {err}")))
                    });
                }
            },
        }
    }

    /// Every `snapshot_every` applied entries: hands the Raft thread a snapshot of the KV
    /// state at the applied index (whose entry has term `term`).
    fn maybe_snapshot(&mut self, term: Term) {
        if self.applied < self.snapshot_index + self.snapshot_every {
            return;
        }
        let data = self.kv.snapshot();
        self.snapshot_index = self.applied;
        let _ = self.inbox.send(Event::Snapshot {
            index: Index(self.applied),
            term,
            data,
        });
    }
}

fn reply_for(outcome: Outcome) -> Reply {
    match outcome {
        Outcome::Done => Reply::Done,
        Outcome::CasMismatch(v) => Reply::Error(ErrorCode::CasMismatch(v)),
        Outcome::StaleSeq => Reply::Error(ErrorCode::StaleSeq),
    }
}
