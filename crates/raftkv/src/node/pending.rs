//! Client requests waiting on the Raft log: writes by log position, reads by ReadIndex round.
//!
//! A write proposed at `(term, index)` took effect iff the entry applied at `index` has that
//! same `term` (log matching: a committed entry never changes). If another term is applied
//! there, the write was overwritten by a new leader and can never commit: a *definite*
//! failure. Writes whose position a snapshot swallowed can no longer be judged: indefinite.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::protocol::{ErrorCode, Reply};
use crate::reply::ReplyTx;

/// A client waiting for the outcome of a proposal.
#[derive(Debug)]
struct WriteWaiter {
    term: u64,
    reply: ReplyTx,
    deadline: Instant,
}

/// Writes proposed by this node, by log index.
#[derive(Debug, Default)]
pub struct PendingWrites {
    /// Usually one waiter per index; more when this node proposed at the same index in
    /// several terms (it lost leadership and won it back before the first entry committed).
    by_index: BTreeMap<u64, Vec<WriteWaiter>>,
}

impl PendingWrites {
    pub fn len(&self) -> usize {
        self.by_index.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_index.is_empty()
    }

    /// Records a proposal appended at `(term, index)`.
    pub fn insert(&mut self, term: u64, index: u64, reply: ReplyTx, deadline: Instant) {
        self.by_index.entry(index).or_default().push(WriteWaiter {
            term,
            reply,
            deadline,
        });
    }

    /// The entry at `index` with `term` was applied; `outcome` computes the answer for the
    /// waiter whose proposal it is. Waiters at that index with another term were overwritten
    /// (the committed entry there is final). Returns whether any waiter was answered.
    pub fn applied(&mut self, index: u64, term: u64, outcome: impl FnOnce() -> Reply) -> bool {
        let Some(ws) = self.by_index.remove(&index) else {
            return false;
        };
        let mut outcome = Some(outcome);
        for w in ws {
            match outcome.take_if(|_| w.term == term) {
                Some(f) => answer(&w.reply, f()),
                None => answer(&w.reply, Reply::Error(ErrorCode::Overwritten)),
            }
        }
        true
    }

    /// A snapshot replaced the log through `index`: the outcome of proposals at or below it
    /// can no longer be learned here.
    pub fn snapshot_installed(&mut self, index: u64) {
        let rest = self.by_index.split_off(&(index + 1));
        for w in std::mem::replace(&mut self.by_index, rest)
            .into_values()
            .flatten()
        {
            answer(
                &w.reply,
                Reply::Error(ErrorCode::Unknown(
                    "a snapshot replaced the log around the write".into(),
                )),
            );
        }
    }

    /// Forgets waiters whose connection has already answered `timeout`.
    pub fn expire(&mut self, now: Instant) {
        for ws in self.by_index.values_mut() {
            ws.retain(|w| w.deadline > now);
        }
        self.by_index.retain(|_, ws| !ws.is_empty());
    }

    /// Answers every waiter (the node is stopping).
    pub fn fail_all(&mut self, code: &ErrorCode) {
        for w in std::mem::take(&mut self.by_index).into_values().flatten() {
            answer(&w.reply, Reply::Error(code.clone()));
        }
    }
}

/// A client waiting for a read.
#[derive(Debug)]
pub struct ReadWaiter {
    pub key: String,
    pub reply: ReplyTx,
    pub deadline: Instant,
}

/// Reads in their three stages: batched (not yet given to Raft), awaiting leadership
/// confirmation (by ReadIndex context), and confirmed (waiting for `applied >= index`).
#[derive(Debug, Default)]
pub struct PendingReads {
    next_ctx: u64,
    batch: Vec<ReadWaiter>,
    awaiting: HashMap<u64, Vec<ReadWaiter>>,
    confirmed: BTreeMap<u64, Vec<ReadWaiter>>,
}

impl PendingReads {
    /// Adds a read to the batch that the next ReadIndex round will cover.
    pub fn push(&mut self, w: ReadWaiter) {
        self.batch.push(w);
    }

    /// Takes the current batch with a fresh context, if it is not empty. All reads that
    /// arrived together share one ReadIndex round.
    pub fn take_batch(&mut self) -> Option<(u64, Vec<ReadWaiter>)> {
        if self.batch.is_empty() {
            return None;
        }
        self.next_ctx += 1;
        Some((self.next_ctx, std::mem::take(&mut self.batch)))
    }

    /// The batch was registered with Raft under `ctx`.
    pub fn register(&mut self, ctx: u64, batch: Vec<ReadWaiter>) {
        self.awaiting.insert(ctx, batch);
    }

    /// Leadership was confirmed for `ctx` at `index`; the reads run once that is applied.
    pub fn confirm(&mut self, ctx: u64, index: u64) {
        if let Some(ws) = self.awaiting.remove(&ctx) {
            self.confirmed.entry(index).or_default().extend(ws);
        }
    }

    /// Adds reads to answer once `index` is applied, with no confirmation round (only the
    /// planted bugs of [`crate::planted`] do that).
    pub fn push_confirmed(&mut self, index: u64, batch: Vec<ReadWaiter>) {
        self.confirmed.entry(index).or_default().extend(batch);
    }

    /// Takes the confirmed reads whose index is applied.
    pub fn take_servable(&mut self, applied: u64) -> Vec<ReadWaiter> {
        let later = self.confirmed.split_off(&(applied + 1));
        std::mem::replace(&mut self.confirmed, later)
            .into_values()
            .flatten()
            .collect()
    }

    /// Leadership was lost: unconfirmed reads never will be. Confirmed reads stay valid.
    pub fn take_unconfirmed(&mut self) -> Vec<ReadWaiter> {
        let mut out: Vec<ReadWaiter> = self.awaiting.drain().flat_map(|(_, ws)| ws).collect();
        out.append(&mut self.batch);
        out
    }

    /// Forgets reads whose connection has already answered `timeout`.
    pub fn expire(&mut self, now: Instant) {
        self.batch.retain(|w| w.deadline > now);
        for ws in self
            .awaiting
            .values_mut()
            .chain(self.confirmed.values_mut())
        {
            ws.retain(|w| w.deadline > now);
        }
        self.awaiting.retain(|_, ws| !ws.is_empty());
        self.confirmed.retain(|_, ws| !ws.is_empty());
    }

    /// Takes every waiting read (the node is stopping).
    pub fn take_all(&mut self) -> Vec<ReadWaiter> {
        let mut out = self.take_unconfirmed();
        out.extend(std::mem::take(&mut self.confirmed).into_values().flatten());
        out
    }
}

/// Sends an answer; a client that has gone away (or timed out) is not an error.
pub fn answer(reply: &ReplyTx, r: Reply) {
    let _ = reply.try_send(r);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::{slot, ReplyRx};
    use std::time::Duration;

    fn chan() -> (ReplyTx, ReplyRx) {
        slot()
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn a_write_resolves_by_the_term_applied_at_its_index() {
        let mut w = PendingWrites::default();
        let (a, ra) = chan();
        let (b, rb) = chan();
        w.insert(2, 5, a, later());
        w.insert(2, 6, b, later());
        assert!(w.applied(5, 2, || Reply::Done));
        assert_eq!(ra.try_recv().unwrap(), Reply::Done);
        // Another leader's entry landed at 6: definite failure.
        assert!(w.applied(6, 3, || Reply::Done));
        assert_eq!(rb.try_recv().unwrap(), Reply::Error(ErrorCode::Overwritten));
        assert!(!w.applied(7, 3, || Reply::Done));
        assert!(w.is_empty());
    }

    #[test]
    fn proposals_at_one_index_in_two_terms_both_wait_for_the_committed_one() {
        // The older entry may still win: a node holding it can lead a later term.
        let mut w = PendingWrites::default();
        let (a, ra) = chan();
        let (b, rb) = chan();
        w.insert(2, 5, a, later());
        w.insert(4, 5, b, later());
        assert!(ra.try_recv().is_none());
        assert_eq!(w.len(), 2);
        w.applied(5, 2, || Reply::Done);
        assert_eq!(ra.try_recv().unwrap(), Reply::Done);
        assert_eq!(rb.try_recv().unwrap(), Reply::Error(ErrorCode::Overwritten));
    }

    #[test]
    fn snapshots_make_covered_writes_indefinite_and_expiry_forgets() {
        let mut w = PendingWrites::default();
        let (a, ra) = chan();
        let (b, rb) = chan();
        let (c, _rc) = chan();
        w.insert(2, 5, a, later());
        w.insert(2, 9, b, later());
        w.insert(2, 10, c, Instant::now());
        w.snapshot_installed(9);
        assert!(matches!(
            ra.try_recv().unwrap(),
            Reply::Error(ErrorCode::Unknown(_))
        ));
        assert!(matches!(
            rb.try_recv().unwrap(),
            Reply::Error(ErrorCode::Unknown(_))
        ));
        assert_eq!(w.len(), 1);
        w.expire(Instant::now() + Duration::from_millis(1));
        assert!(w.is_empty());
    }

    #[test]
    fn reads_go_through_batch_confirmation_and_apply() {
        let mut r = PendingReads::default();
        let (a, _ra) = chan();
        let (b, _rb) = chan();
        r.push(ReadWaiter {
            key: "k".into(),
            reply: a,
            deadline: later(),
        });
        r.push(ReadWaiter {
            key: "j".into(),
            reply: b,
            deadline: later(),
        });
        let (ctx, batch) = r.take_batch().unwrap();
        assert_eq!(batch.len(), 2);
        assert!(r.take_batch().is_none());
        r.register(ctx, batch);
        assert!(r.take_servable(100).is_empty(), "not confirmed yet");
        r.confirm(ctx, 7);
        assert!(r.take_servable(6).is_empty());
        assert_eq!(r.take_servable(7).len(), 2);
        assert!(r.take_all().is_empty());
    }

    #[test]
    fn leadership_loss_fails_only_unconfirmed_reads() {
        let mut r = PendingReads::default();
        for key in ["a", "b"] {
            let (tx, _rx) = chan();
            r.push(ReadWaiter {
                key: key.into(),
                reply: tx,
                deadline: later(),
            });
            let (ctx, batch) = r.take_batch().unwrap();
            r.register(ctx, batch);
            if key == "a" {
                r.confirm(ctx, 3);
            }
        }
        let (tx, _rx) = chan();
        r.push(ReadWaiter {
            key: "c".into(),
            reply: tx,
            deadline: later(),
        });
        let lost: Vec<_> = r.take_unconfirmed().into_iter().map(|w| w.key).collect();
        assert_eq!(lost.len(), 2);
        assert!(lost.contains(&"b".to_string()) && lost.contains(&"c".to_string()));
        assert_eq!(r.take_servable(3).len(), 1);
    }
}
