//! The one-shot slot through which the node answers one client request.
//!
//! Not a crossbeam channel: its blocking receive spins, then calls `sched_yield` several times
//! before it parks. With one waiting thread per client connection on a busy machine, every
//! yield is a context switch; profiled under 64 writing clients, they took a fifth of the node's
//! CPU samples (docs/bench.md). A mutex and a condition variable park the waiter at once.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::protocol::Reply;

/// A new slot: the node keeps the sender, the connection the receiver.
pub fn slot() -> (ReplyTx, ReplyRx) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::Waiting),
        ready: Condvar::new(),
    });
    (ReplyTx(Arc::clone(&shared)), ReplyRx(shared))
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock; if one did, the state is still whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

enum State {
    Waiting,
    Answered(Reply),
    /// The sender was dropped unanswered, or the answer was taken.
    Closed,
}

/// The node's end: answers once.
pub struct ReplyTx(Arc<Shared>);

/// The connection's end.
pub struct ReplyRx(Arc<Shared>);

/// Why [`ReplyRx::recv_deadline`] returned no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum NoReply {
    /// The deadline passed.
    Timeout,
    /// The node dropped the request without answering.
    Dropped,
}

impl ReplyTx {
    /// Answers, never blocking; `Err` gives the reply back if the slot was answered before.
    pub fn try_send(&self, reply: Reply) -> Result<(), Reply> {
        let mut st = self.0.lock();
        if !matches!(*st, State::Waiting) {
            return Err(reply);
        }
        *st = State::Answered(reply);
        drop(st);
        self.0.ready.notify_one();
        Ok(())
    }
}

impl Drop for ReplyTx {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        if matches!(*st, State::Waiting) {
            *st = State::Closed;
            drop(st);
            self.0.ready.notify_one();
        }
    }
}

impl fmt::Debug for ReplyTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplyTx")
    }
}

impl ReplyRx {
    /// The answer, if it is there already.
    pub fn try_recv(&self) -> Option<Reply> {
        let mut st = self.0.lock();
        take(&mut st)
    }

    /// Waits for the answer until `deadline`.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<Reply, NoReply> {
        let mut st = self.0.lock();
        loop {
            if matches!(*st, State::Closed) {
                return Err(NoReply::Dropped);
            }
            if let Some(r) = take(&mut st) {
                return Ok(r);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NoReply::Timeout);
            }
            st = self
                .0
                .ready
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

fn take(st: &mut State) -> Option<Reply> {
    match std::mem::replace(st, State::Closed) {
        State::Answered(r) => Some(r),
        other => {
            *st = other;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn answers_once_and_wakes_a_waiting_receiver() {
        let (tx, rx) = slot();
        assert_eq!(rx.try_recv(), None);
        let waiter =
            std::thread::spawn(move || rx.recv_deadline(Instant::now() + Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(tx.try_send(Reply::Done), Ok(()));
        assert_eq!(
            tx.try_send(Reply::Done),
            Err(Reply::Done),
            "one answer only"
        );
        assert_eq!(waiter.join().unwrap(), Ok(Reply::Done));
    }

    #[test]
    fn a_dropped_sender_and_a_deadline_end_the_wait() {
        let (tx, rx) = slot();
        let start = Instant::now();
        assert_eq!(
            rx.recv_deadline(start + Duration::from_millis(30)),
            Err(NoReply::Timeout)
        );
        assert!(start.elapsed() >= Duration::from_millis(30));
        drop(tx);
        assert_eq!(
            rx.recv_deadline(Instant::now() + Duration::from_secs(10)),
            Err(NoReply::Dropped)
        );
        // An answer given before the sender goes away is still delivered.
        let (tx, rx) = slot();
        tx.try_send(Reply::Done).unwrap();
        drop(tx);
        assert_eq!(rx.try_recv(), Some(Reply::Done));
    }
}
