//! **Test-only.** Deliberate bugs, for the chaos harness's own tests.
//!
//! The harness must prove that every fault it injects has an effect: for each fault class, a
//! store that is correct with no faults and broken under exactly that fault. The fixture
//! binaries of the `e2e` package (`tests/fixtures/fx-*.rs`) run this node with one of these bugs
//! switched on through [`NodeConfig::planted`](crate::config::NodeConfig::planted). No
//! command-line flag sets that field: the `raftkv` binary always runs with `None`, the correct
//! code. Each deviation sits at the spot where the correct code lives, marked
//! `PLANTED(<fixture>)`; the larger pieces of logic it needs are here.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use raft::{Message, MessageBody, NodeId, Term};

use crate::storage::StorageError;

/// One deliberate bug. See the fixture binaries (`tests/fixtures/fx-*.rs`) for how each is
/// caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// `fx-stale-reads`, caught by partitions and pauses: check-quorum is off (an isolated
    /// leader never steps down by itself) and a leader answers reads from its applied state
    /// without confirming its leadership (no ReadIndex round). Correct without faults because
    /// it only does so once an entry of its own term is committed, and answers at its commit
    /// index once that is applied.
    StaleReads,
    /// `fx-lazy-log`, caught by killing a majority (or all) of the nodes at once: the disk
    /// writer reports log entries as durable at once, but writes and fsyncs them only every
    /// 1–2 s ([`LAZY_SYNC_MIN`]). Term and vote are still fsynced before they are used, so
    /// elections stay safe; a SIGKILL loses the last second or two of the log. A node that
    /// starts begins one term later than it stored, so that the leader it then forces re-learns
    /// its (possibly shorter) log; without that, a leader that counted the lost entries as
    /// matched would never send them again.
    LazyLog,
    /// `fx-one-way`, caught by a one-way cut of the leader's outbound links: the leader's lease
    /// ([`OneWayLease`]) is also renewed by requests from peers (a vote request, another leader's
    /// AppendEntries), as if they proved that the cluster still follows it. While the lease
    /// holds it dismisses higher-term requests and keeps its check-quorum satisfied; once it
    /// holds on requests alone, it answers reads from its applied state (and refuses writes,
    /// which could not commit, so that its clients come back with reads). Without faults a leader
    /// gets no requests; cut off both ways or paused, it gets nothing, its lease lapses and the
    /// first higher-term message deposes it. Cut off one way, it keeps hearing the new leader
    /// elected behind its back, and serves stale reads for as long as the cut lasts.
    OneWay,
    /// `fx-bad-restart`, caught by SIGKILL: the node keeps a marker file in its data directory
    /// while it runs and removes it on a clean stop (SIGTERM). Started while the marker is
    /// there (after a crash), it refuses with a "corrupt data" error and exit code 1, three
    /// times out of four (deterministically: every fourth unclean start succeeds).
    BadRestart,
    /// `fx-learner-reads`, caught by membership changes: a node that is not a voter (a learner
    /// catching up, or a new member with no configuration yet) answers reads from its applied
    /// state at its own commit index, as if a replica that receives the log could serve it.
    /// Correct without faults and under every other fault: every node is a voter from the
    /// start and stays one. A node removed, wiped and added back is a learner until it has
    /// caught up, and its state lags the leader's (it is empty at first).
    LearnerReads,
}

impl PlantedBug {
    /// The fixture's name, for logs.
    pub fn name(self) -> &'static str {
        match self {
            PlantedBug::StaleReads => "fx-stale-reads",
            PlantedBug::LazyLog => "fx-lazy-log",
            PlantedBug::OneWay => "fx-one-way",
            PlantedBug::BadRestart => "fx-bad-restart",
            PlantedBug::LearnerReads => "fx-learner-reads",
        }
    }
}

// ----- fx-lazy-log -----

/// `fx-lazy-log` writes and fsyncs the log at intervals drawn from
/// `[LAZY_SYNC_MIN, 2 * LAZY_SYNC_MIN)`.
pub const LAZY_SYNC_MIN: Duration = Duration::from_secs(1);

/// The next instant `fx-lazy-log` syncs the log, counted from `now`.
pub(crate) fn next_lazy_sync(now: Instant) -> Instant {
    now + LAZY_SYNC_MIN + LAZY_SYNC_MIN.mul_f64(rand::random::<f64>())
}

// ----- fx-bad-restart -----

/// The marker `fx-bad-restart` keeps in its data directory while it runs. It holds the number
/// of unclean starts seen so far.
const RUNNING_MARKER: &str = "fx-bad-restart.running";

fn marker(dir: &Path) -> PathBuf {
    dir.join(RUNNING_MARKER)
}

/// `fx-bad-restart` at start: refuses (as corrupt data) three unclean starts out of four, and
/// otherwise leaves the marker in place for this run.
pub(crate) fn bad_restart_on_start(dir: &Path) -> Result<(), StorageError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| StorageError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let path = marker(dir);
    let unclean = match fs::read_to_string(&path) {
        Ok(text) => Some(text.trim().parse::<u64>().unwrap_or(0) + 1),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&path)(e)),
    };
    fs::write(&path, unclean.unwrap_or(0).to_string()).map_err(io(&path))?;
    match unclean {
        Some(n) if n % 4 != 0 => Err(StorageError::Corrupt {
            file: dir.join("log"),
            offset: 0,
            detail: format!(
                "planted bug {}: the previous run did not stop cleanly ({} left behind); \
                 unclean start {n}",
                PlantedBug::BadRestart.name(),
                path.display()
            ),
        }),
        _ => Ok(()),
    }
}

/// `fx-bad-restart` after a clean stop: removes the marker.
pub(crate) fn bad_restart_on_clean_stop(dir: &Path) {
    let _ = fs::remove_file(marker(dir));
}

// ----- fx-one-way -----

/// The lease of an `fx-one-way` leader, on the monotonic clock.
///
/// Correct part: answers of the current term from a majority renew it (the evidence
/// check-quorum uses), for [`Self::DURATION_ELECTIONS`] election timeouts plus a few heartbeats.
/// Planted part: a *request* from a peer (a vote request, or another leader's AppendEntries) also
/// renews it, as if it proved that the peer still follows this leader. While the lease holds the
/// leader dismisses higher-term requests (check-quorum rightly does so for vote requests, not for
/// another leader's AppendEntries) and vouches for its silent peers to its core's check-quorum;
/// once the lease holds on requests alone, it answers reads from its applied state (and refuses
/// writes with `not_leader`, which is true of them: they could not commit).
///
/// What keeps it correct without that one fault:
/// - Nothing revives a lapsed lease, and the lease lapses for good when the Raft thread was
///   stopped for more than half an election timeout (SIGSTOP, see [`Self::observe_clock`]):
///   answers and requests queued meanwhile are no evidence of the present.
/// - A higher-term *answer* (a follower that moved on answering one of this leader's messages)
///   is never dismissed: the leader steps down as Raft says.
/// - Local reads need the majority part lapsed: a leader cut off both ways for less than the
///   lease, then healed, hears a higher-term answer before it would answer locally.
///
/// The lease is long enough to bridge the gap between a leader's last answers and the first
/// vote request of a follower that stopped hearing it (election timeouts are drawn from
/// `[T, 2T)`): cut off one way, the leader hears the candidate and then the new leader's
/// heartbeats, each renewing its lease, and never hears an answer of a higher term since its own
/// messages reach no one.
#[derive(Debug)]
pub(crate) struct OneWayLease {
    duration: Duration,
    /// A peer silent for this long (one election timeout) is vouched for to the core's
    /// check-quorum while the lease holds.
    silent_after: Duration,
    /// A gap this long between two looks at the clock means the thread was stopped.
    stall: Duration,
    /// Answers needed from peers for a majority (the leader counts itself).
    needed: usize,
    /// The term the lease is for (the leader's), `None` when not leading.
    term: Option<Term>,
    /// Last answer of the current term from each peer.
    answered: HashMap<NodeId, Instant>,
    /// When leadership was won.
    won_at: Option<Instant>,
    /// When a majority last answered (the election win counts).
    quorum_at: Option<Instant>,
    /// When the last request renewed the lease (the planted part).
    request_at: Option<Instant>,
    /// The last look at the clock.
    clock: Option<Instant>,
}

impl OneWayLease {
    pub const DURATION_ELECTIONS: u32 = 2;

    /// A lease for a cluster of `voters` nodes with the given election timeout and heartbeat.
    pub fn new(voters: usize, election_timeout: Duration, heartbeat: Duration) -> OneWayLease {
        OneWayLease {
            duration: election_timeout * Self::DURATION_ELECTIONS + heartbeat * 4,
            silent_after: election_timeout,
            stall: election_timeout / 2,
            needed: voters / 2,
            term: None,
            answered: HashMap::new(),
            won_at: None,
            quorum_at: None,
            request_at: None,
            clock: None,
        }
    }

    /// Leadership was won in `term` at `now`: the votes of a majority start the lease.
    pub fn won(&mut self, term: Term, now: Instant) {
        self.lost();
        self.term = Some(term);
        self.won_at = Some(now);
        self.quorum_at = Some(now);
        self.clock = Some(now);
    }

    /// Leadership was lost.
    pub fn lost(&mut self) {
        self.term = None;
        self.answered.clear();
        self.won_at = None;
        self.quorum_at = None;
        self.request_at = None;
    }

    /// Called whenever the Raft thread looks at the clock: after a stall (the process was
    /// stopped, or starved) the lease lapses for good.
    pub fn observe_clock(&mut self, now: Instant) {
        if self.clock.is_some_and(|c| now >= c + self.stall) {
            self.quorum_at = None;
            self.request_at = None;
        }
        self.clock = Some(now);
    }

    fn valid(&self, since: Option<Instant>, now: Instant) -> bool {
        since.is_some_and(|t| now < t + self.duration)
    }

    /// Whether the lease of a leader in `term` holds at `now`.
    pub fn holds(&self, term: Term, now: Instant) -> bool {
        self.term == Some(term)
            && (self.valid(self.quorum_at, now) || self.valid(self.request_at, now))
    }

    /// Whether a leader in `term` answers reads from its applied state: its lease holds on
    /// requests alone (no majority has answered for a whole lease).
    pub fn local_reads(&self, term: Term, now: Instant) -> bool {
        self.term == Some(term)
            && self.valid(self.request_at, now)
            && !self.valid(self.quorum_at, now)
    }

    /// A message from a peer reached a leader in `term`. Returns whether to dismiss it.
    pub fn on_message(&mut self, term: Term, msg: &Message, now: Instant) -> bool {
        if self.term != Some(term) {
            return false;
        }
        self.observe_clock(now);
        let holds = self.holds(term, now);
        match msg.body {
            MessageBody::AppendEntriesResponse { .. }
            | MessageBody::InstallSnapshotResponse { .. }
                if msg.term == term =>
            {
                self.answered.insert(msg.from, now);
                let mut times: Vec<Instant> = self.answered.values().copied().collect();
                times.sort_unstable_by(|a, b| b.cmp(a));
                match times.get(self.needed.saturating_sub(1)) {
                    Some(&t) if holds => self.quorum_at = self.quorum_at.max(Some(t)),
                    _ => {}
                }
                false
            }
            MessageBody::PreVote { .. }
            | MessageBody::Vote { .. }
            | MessageBody::AppendEntries { .. }
            | MessageBody::InstallSnapshot { .. } => {
                // PLANTED(fx-one-way): a vote request, or another leader's AppendEntries, is
                // taken as proof that the cluster still follows us...
                if holds {
                    self.request_at = Some(now);
                }
                // ... and while the lease holds, a higher term is dismissed as a disruptive
                // node's (right for vote requests, wrong for a leader's AppendEntries).
                holds && msg.term > term
            }
            _ => false,
        }
    }

    /// The peers among `peers` that have not answered for an election timeout, for a leader
    /// in `term` whose lease holds: the leader vouches for them to its core's check-quorum.
    pub fn silent(&self, term: Term, peers: &[NodeId], now: Instant) -> Vec<NodeId> {
        if !self.holds(term, now) {
            return Vec::new();
        }
        peers
            .iter()
            .copied()
            .filter(|p| {
                self.answered
                    .get(p)
                    .or(self.won_at.as_ref())
                    .is_none_or(|&t| now >= t + self.silent_after)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::Index;

    fn msg(from: u64, term: u64, body: MessageBody) -> Message {
        Message {
            from: NodeId(from),
            to: NodeId(1),
            term: Term(term),
            body,
        }
    }

    fn answer(from: u64, term: u64) -> Message {
        msg(
            from,
            term,
            MessageBody::AppendEntriesResponse {
                success: true,
                index: Index(1),
                conflict_term: None,
                conflict_index: Index(0),
                read_seq: 0,
            },
        )
    }

    fn heartbeat(from: u64, term: u64) -> Message {
        msg(
            from,
            term,
            MessageBody::AppendEntries {
                prev_log_index: Index(0),
                prev_log_term: Term(0),
                entries: Vec::new(),
                leader_commit: Index(0),
                read_seq: 0,
            },
        )
    }

    const MS: Duration = Duration::from_millis(1);

    /// Feeds `m` at `t`, keeping the clock ticking (no stall) up to `t`.
    fn feed(l: &mut OneWayLease, t0: Instant, ms: u32, m: &Message) -> bool {
        for k in (0..ms).step_by(10) {
            l.observe_clock(t0 + MS * k);
        }
        l.on_message(Term(3), m, t0 + MS * ms)
    }

    #[test]
    fn one_way_lease_bridges_to_a_new_leader_but_never_revives() {
        // 5 voters, 300 ms elections, 50 ms heartbeats: 800 ms leases.
        let mut l = OneWayLease::new(5, 300 * MS, 50 * MS);
        let t0 = Instant::now();
        let t = Term(3);
        l.won(t, t0);
        assert!(l.holds(t, t0 + 799 * MS) && !l.holds(t, t0 + 800 * MS));
        // Answers from two peers (a majority with the leader) renew it; one alone does not.
        assert!(!feed(&mut l, t0, 100, &answer(2, 3)));
        assert!(!l.holds(t, t0 + 800 * MS));
        assert!(!feed(&mut l, t0, 200, &answer(3, 3)));
        assert!(l.holds(t, t0 + 899 * MS) && !l.holds(t, t0 + 900 * MS));
        // Cut off one way: a candidate's, then a new leader's requests renew the lease and the
        // higher-term ones are dismissed; reads turn local once no majority answered for a lease.
        assert!(feed(&mut l, t0, 700, &heartbeat(4, 4)));
        assert!(!l.local_reads(t, t0 + 850 * MS));
        assert!(l.local_reads(t, t0 + 900 * MS) && l.holds(t, t0 + 1400 * MS));
        assert_eq!(
            l.silent(t, &[NodeId(2), NodeId(3)], t0 + 600 * MS),
            vec![NodeId(2), NodeId(3)]
        );
        // A higher-term answer is never dismissed.
        assert!(!feed(&mut l, t0, 750, &answer(2, 4)));
        // Lapsed: the next higher-term request is not dismissed, and renews nothing.
        assert!(!feed(&mut l, t0, 1600, &heartbeat(4, 4)));
        assert!(!l.holds(t, t0 + 1600 * MS) && !l.local_reads(t, t0 + 1600 * MS));
        assert!(l.silent(t, &[NodeId(2)], t0 + 1600 * MS).is_empty());
        assert!(!feed(&mut l, t0, 1610, &answer(2, 3)) && !feed(&mut l, t0, 1620, &answer(3, 3)));
        assert!(!l.holds(t, t0 + 1630 * MS), "no revival");
        // Another term's lease is not this one.
        l.lost();
        assert!(!l.holds(t, t0) && !l.on_message(t, &heartbeat(4, 4), t0));
    }

    #[test]
    fn one_way_lease_lapses_when_the_thread_was_stopped() {
        let mut l = OneWayLease::new(5, 300 * MS, 50 * MS);
        let t0 = Instant::now();
        let t = Term(3);
        l.won(t, t0);
        // Resumed after 200 ms: what was queued meanwhile is no evidence.
        assert!(!l.on_message(t, &answer(2, 3), t0 + 200 * MS));
        assert!(!l.on_message(t, &answer(3, 3), t0 + 201 * MS));
        assert!(!l.on_message(t, &heartbeat(4, 4), t0 + 202 * MS));
        assert!(!l.holds(t, t0 + 203 * MS));
    }

    #[test]
    fn bad_restart_refuses_three_unclean_starts_in_four() {
        let dir = std::env::temp_dir().join(format!("raftkv-planted-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        bad_restart_on_start(&dir).expect("a fresh start");
        bad_restart_on_clean_stop(&dir);
        bad_restart_on_start(&dir).expect("a start after a clean stop");
        let outcomes: Vec<bool> = (0..8).map(|_| bad_restart_on_start(&dir).is_ok()).collect();
        assert_eq!(
            outcomes,
            [false, false, false, true, false, false, false, true]
        );
        let err = bad_restart_on_start(&dir).expect_err("refused");
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
