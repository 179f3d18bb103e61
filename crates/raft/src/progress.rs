//! The leader's view of one follower (paper Figure 2 `nextIndex`/`matchIndex`), with etcd-style
//! flow control: probe one message at a time until the follower's log matches, then replicate
//! optimistically with a bounded number of messages in flight, or wait for a snapshot.

use crate::types::Index;
use std::collections::VecDeque;

/// How the leader sends to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProgressState {
    /// Searching for the point where logs match: one AppendEntries per heartbeat or response.
    Probe,
    /// Logs match up to `matched`: stream entries, at most `max_inflight_msgs` at a time.
    Replicate,
    /// An InstallSnapshot for `index` is in flight.
    Snapshot { index: Index },
}

/// Replication progress of one follower.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known to match the leader's log (Figure 2 `matchIndex`).
    pub(crate) matched: Index,
    /// Next index to send (Figure 2 `nextIndex`); always `> matched`.
    pub(crate) next: Index,
    pub(crate) state: ProgressState,
    /// In Probe: a message was sent and no answer or heartbeat has come since.
    pub(crate) paused: bool,
    /// In Replicate: the last index of each AppendEntries in flight.
    inflight: VecDeque<Index>,
    /// Whether the follower answered since the last check-quorum round (thesis §6.2).
    pub(crate) recent_active: bool,
    /// The highest read round the follower echoed (thesis §6.4).
    pub(crate) read_ack: u64,
    /// Leader ticks since `matched` last grew while entries were in flight. Messages can be
    /// lost without a trace, so a stream that stops being acknowledged falls back to probing.
    stalled_ticks: u32,
}

impl Progress {
    pub(crate) fn new(next: Index) -> Progress {
        Progress {
            matched: Index(0),
            next,
            state: ProgressState::Probe,
            paused: false,
            inflight: VecDeque::new(),
            recent_active: false,
            read_ack: 0,
            stalled_ticks: 0,
        }
    }

    /// Whether the leader must hold off sending entries.
    pub(crate) fn is_paused(&self, max_inflight: usize) -> bool {
        match self.state {
            ProgressState::Probe => self.paused,
            ProgressState::Replicate => self.inflight.len() >= max_inflight,
            ProgressState::Snapshot { .. } => true,
        }
    }

    /// Records that entries through `last` were sent.
    pub(crate) fn sent(&mut self, last: Option<Index>) {
        match self.state {
            ProgressState::Probe => self.paused = true,
            ProgressState::Replicate => {
                if let Some(last) = last {
                    self.next = last.next();
                    self.inflight.push_back(last);
                }
            }
            ProgressState::Snapshot { .. } => {}
        }
    }

    /// A success answer says the follower matches through `index`. Returns whether `matched`
    /// grew.
    pub(crate) fn maybe_update(&mut self, index: Index) -> bool {
        while self.inflight.front().is_some_and(|&i| i <= index) {
            self.inflight.pop_front();
        }
        self.paused = false;
        if index > self.next.prev() {
            self.next = index.next();
        }
        if index > self.matched {
            self.matched = index;
            self.stalled_ticks = 0;
            return true;
        }
        false
    }

    /// A rejection of `rejected` (a `prev_log_index`), with the leader's guess `hint_next`
    /// from the follower's conflict hint. Returns false for a stale rejection.
    pub(crate) fn maybe_decrease(&mut self, rejected: Index, hint_next: Index) -> bool {
        if rejected <= self.matched {
            return false; // answers an older request: we already know it matches further
        }
        if self.state == ProgressState::Probe && rejected != self.next.prev() {
            return false; // not the probe in flight
        }
        self.next = hint_next.min(rejected).max(self.matched.next());
        self.paused = false;
        true
    }

    /// A leader tick: returns true (after falling back to Probe) if a replication stream was
    /// not acknowledged for `limit` ticks, or a snapshot was not answered within `limit` ticks.
    pub(crate) fn tick(&mut self, limit: u32) -> bool {
        let waiting = match self.state {
            ProgressState::Replicate => !self.inflight.is_empty(),
            ProgressState::Snapshot { .. } => true,
            ProgressState::Probe => false,
        };
        if !waiting {
            self.stalled_ticks = 0;
            return false;
        }
        self.stalled_ticks += 1;
        if self.stalled_ticks < limit {
            return false;
        }
        self.become_probe();
        true
    }

    pub(crate) fn become_probe(&mut self) {
        self.next = match self.state {
            ProgressState::Snapshot { index } => self.matched.max(index).next(),
            _ => self.matched.next(),
        };
        self.state = ProgressState::Probe;
        self.paused = false;
        self.stalled_ticks = 0;
        self.inflight.clear();
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next = self.matched.next();
        self.inflight.clear();
    }

    pub(crate) fn become_snapshot(&mut self, index: Index) {
        self.state = ProgressState::Snapshot { index };
        self.stalled_ticks = 0;
        self.inflight.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sends_one_at_a_time_and_ignores_stale_rejections() {
        let mut p = Progress::new(Index(10));
        assert!(!p.is_paused(4));
        p.sent(Some(Index(12)));
        assert!(p.is_paused(4));
        assert!(
            !p.maybe_decrease(Index(5), Index(1)),
            "not the probe in flight"
        );
        assert!(p.maybe_decrease(Index(9), Index(4)));
        assert_eq!(p.next, Index(4));
        assert!(!p.is_paused(4));
    }

    #[test]
    fn replicate_bounds_inflight_and_frees_on_acks() {
        let mut p = Progress::new(Index(1));
        p.maybe_update(Index(0));
        p.become_replicate();
        p.sent(Some(Index(3)));
        p.sent(Some(Index(5)));
        assert_eq!(p.next, Index(6));
        assert!(p.is_paused(2));
        assert!(p.maybe_update(Index(3)));
        assert!(!p.is_paused(2));
        assert!(!p.maybe_update(Index(2)), "stale ack");
        // A rejection beyond matched drops back to probing from the hint.
        assert!(p.maybe_decrease(Index(5), Index(4)));
        assert_eq!(p.next, Index(4));
        assert!(
            !p.maybe_decrease(Index(3), Index(1)),
            "at or below matched is stale"
        );
    }

    #[test]
    fn an_unacknowledged_stream_falls_back_to_probe() {
        let mut p = Progress::new(Index(1));
        p.become_replicate();
        p.sent(Some(Index(9)));
        assert!(!p.tick(3) && !p.tick(3));
        assert!(p.tick(3));
        assert_eq!((p.state, p.next), (ProgressState::Probe, Index(1)));
        // An idle, fully acknowledged stream never times out.
        p.become_replicate();
        assert!(!p.tick(1));
    }

    #[test]
    fn snapshot_state_pauses_then_probes_after_it() {
        let mut p = Progress::new(Index(50));
        p.become_snapshot(Index(40));
        assert!(p.is_paused(100));
        p.become_probe();
        assert_eq!(p.next, Index(41));
    }
}
