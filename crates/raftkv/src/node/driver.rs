//! The Raft thread: the event loop that owns the `RawNode`.
//!
//! Each turn: wait for an event or the next tick, drain what else is queued, tick if due, then
//! hand every `Ready` off in asynchronous mode ([`RawNode::advance_async`]): the leader's
//! replication messages go out at once, the write (with the messages that must wait for it)
//! to the disk writer thread ([`super::disk`]), the committed entries and confirmed reads to
//! the applier thread ([`super::applier`]). The Raft thread never waits for a disk: it keeps
//! stepping messages and taking proposals while the disk writer fsyncs, and what accumulates
//! meanwhile is the next group commit. The disk writer reports what is durable
//! (`Event::Persisted`, so that a leader counts its own entries towards a commit only then),
//! the applier what is applied (`Event::Applied`) and the snapshots it makes
//! (`Event::Snapshot`, for `compact`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use raft::{Index, MessageBody, NodeId, ProposeError, RawNode, Role, Snapshot};

use super::admin::{Admin, AdminOp};
use super::applier::ApplierMsg;
use super::disk::DiskMsg;
use super::pending::{answer, PendingReads, ReadWaiter};
use super::{Event, NodeError};
use crate::client::ClientCall;
use crate::config::node_name;
use crate::kv::{Command, Proposal};
use crate::planted::{OneWayLease, PlantedBug};
use crate::protocol::{ErrorCode, Op, Reply, StatusInfo};
use crate::transport::{ClientDirectory, Outbox};
use crate::{debug, info};

/// Events handled per turn before ticking and handling the Ready, so a flood of requests
/// cannot starve the clock.
const MAX_EVENTS_PER_TURN: usize = 4096;
/// How often reads whose clients timed out before being given to Raft are forgotten.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// What the driver is built from.
pub struct Parts {
    pub name: String,
    /// For `status`.
    pub cluster_id: String,
    /// **Test-only** (see [`crate::planted`]); `None` in `raftkv`.
    pub planted: Option<PlantedBug>,
    /// The lease of `fx-one-way` (`Some` only for [`PlantedBug::OneWay`]).
    pub(crate) one_way: Option<OneWayLease>,
    pub raw: RawNode,
    pub outbox: Arc<Outbox>,
    pub directory: ClientDirectory,
    /// Every node with a `--peer` address, and this one: who may ever be a member.
    pub voters: Vec<NodeId>,
    pub tick: Duration,
    /// The shortest election timeout: how long a hand-over on SIGTERM may take at most.
    pub election_timeout: Duration,
    /// The disk writer's queue.
    pub disk: Sender<DiskMsg>,
    /// The applier's queue.
    pub applier: Sender<ApplierMsg>,
}

/// The Raft thread's state.
pub struct Driver {
    p: Parts,
    /// Reads not yet given to Raft (the applier holds them from then on).
    reads: PendingReads,
    /// Role and leader last seen, to log changes and fail reads on leadership loss.
    role: Role,
    leader: Option<NodeId>,
    term: u64,
    /// SIGTERM reached a leader: when the hand-over to another node gives up.
    handover_until: Option<Instant>,
    /// The admin operation in progress (membership change or leadership transfer).
    admin: Admin,
}

impl Driver {
    pub fn new(p: Parts) -> Driver {
        let st = p.raw.status();
        Driver {
            role: st.role,
            leader: st.leader,
            term: st.term.0,
            p,
            reads: PendingReads::default(),
            handover_until: None,
            admin: Admin::default(),
        }
    }

    /// Runs until shutdown (`Ok`) or a fatal error reported by the disk writer or applier.
    pub fn run(&mut self, events: &Receiver<Event>, stop: &AtomicBool) -> Result<(), NodeError> {
        let tick = self.p.tick;
        let mut next_tick = Instant::now() + tick;
        let mut next_sweep = Instant::now() + SWEEP_EVERY;
        let result = loop {
            let mut outcome = Flow::Continue;
            if stop.load(Ordering::SeqCst) {
                outcome = Flow::Stop;
            }
            match events.recv_deadline(next_tick) {
                Ok(ev) => outcome = outcome.or(self.handle(ev)),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => outcome = Flow::Stop,
            }
            for _ in 0..MAX_EVENTS_PER_TURN {
                match events.try_recv() {
                    Ok(ev) => outcome = outcome.or(self.handle(ev)),
                    Err(_) => break,
                }
            }
            if let Flow::Stop = outcome {
                if self.hand_over_first() {
                    outcome = Flow::Continue;
                }
            }
            match outcome {
                Flow::Continue => {}
                Flow::Stop => break Ok(()),
                Flow::Fatal(e) => break Err(e),
            }
            let now = Instant::now();
            if now >= next_tick {
                // PLANTED(fx-one-way): keep the core's check-quorum quiet while the lease holds.
                self.vouch_for_silent_peers(now);
                self.p.raw.tick();
                // No burst of catch-up ticks after a stall (SIGSTOP): time that the loop could
                // not observe is not counted twice.
                next_tick = (next_tick + tick).max(now);
            }
            self.start_reads();
            self.admin.poll(&mut self.p.raw, now);
            self.handle_ready();
            self.observe_role();
            if now >= next_sweep {
                self.reads.expire(now);
                next_sweep = now + SWEEP_EVERY;
            }
        };
        info!("shutting down");
        self.admin.abandon();
        for w in self.reads.take_all() {
            answer(
                &w.reply,
                Reply::Error(ErrorCode::Dropped("the node stopped".into())),
            );
        }
        result
    }

    /// Handles one event.
    fn handle(&mut self, ev: Event) -> Flow {
        match ev {
            Event::Peer(msg) => {
                // PLANTED(fx-one-way): the lease takes requests as proof of leadership and
                // dismisses higher-term requests while it holds.
                if self.one_way_dismisses(&msg) {
                    return Flow::Continue;
                }
                let (from, kind) = (msg.from, msg.body.kind());
                if let Err(e) = self.p.raw.step(msg) {
                    debug!("ignored {kind} from {from}: {e}");
                }
            }
            Event::Client(call) => self.client(call),
            Event::Persisted(p) => self.p.raw.on_persisted(p),
            Event::Applied(index) => self.p.raw.on_applied(index),
            Event::Snapshot { index, term, data } => self.compact(index, term, data),
            Event::Fatal(e) => return Flow::Fatal(e),
            Event::Shutdown => return Flow::Stop,
        }
        Flow::Continue
    }

    fn client(&mut self, call: ClientCall) {
        let ClientCall {
            request,
            reply,
            deadline,
        } = call;
        let command = match request.op {
            Op::Status => {
                answer(&reply, Reply::Status(Box::new(self.status())));
                return;
            }
            Op::Read { key } => {
                self.reads.push(ReadWaiter {
                    key,
                    reply,
                    deadline,
                });
                return;
            }
            Op::Write { key, value } => Command::Write { key, value },
            Op::Cas { key, from, to } => Command::Cas { key, from, to },
            Op::AddMember { node } => return self.admin(AdminOp::Add(node), reply, deadline),
            Op::RemoveMember { node } => return self.admin(AdminOp::Remove(node), reply, deadline),
            Op::TransferLeader { node } => {
                return self.admin(AdminOp::Transfer(node), reply, deadline)
            }
        };
        // PLANTED(fx-one-way): a leader whose lease holds on requests alone takes no writes
        // (they could not commit) but still answers reads, locally.
        if self.one_way_local_reads() {
            answer(&reply, Reply::Error(ErrorCode::NotLeader(None)));
            return;
        }
        let proposal = Proposal {
            session: request.session,
            command,
        };
        match self.p.raw.propose(proposal.encode()) {
            // Registered before the entry can be handed out for application (same queue).
            Ok((term, index)) => self.to_applier(ApplierMsg::Write {
                term: term.0,
                index: index.0,
                reply,
                deadline,
            }),
            Err(e) => answer(&reply, Reply::Error(self.refusal(e))),
        }
    }

    fn admin(&mut self, op: AdminOp, reply: crate::reply::ReplyTx, deadline: Instant) {
        let directory = &self.p.directory;
        let refusal = |e: ProposeError| match e {
            ProposeError::NotLeader { leader } => {
                ErrorCode::NotLeader(leader.and_then(|l| directory.get(l)))
            }
            other => ErrorCode::Dropped(other.to_string()),
        };
        self.admin.start(
            &mut self.p.raw,
            &self.p.voters,
            op,
            reply,
            deadline,
            &refusal,
        );
        // The entry may be proposed: hand it out this turn.
        self.handle_ready();
    }

    /// The answer to a proposal or read the core refused (all definite).
    fn refusal(&self, e: ProposeError) -> ErrorCode {
        match e {
            ProposeError::NotLeader { leader } => {
                ErrorCode::NotLeader(leader.and_then(|l| self.p.directory.get(l)))
            }
            other => ErrorCode::Dropped(other.to_string()),
        }
    }

    fn status(&self) -> StatusInfo {
        let st = self.p.raw.status();
        StatusInfo {
            node: self.p.name.clone(),
            cluster: self.p.cluster_id.clone(),
            role: role_name(st.role),
            term: st.term.0,
            leader: st.leader.map(node_name),
            commit: st.commit.0,
            applied: st.applied.0,
            voters: st.membership.voters.iter().map(|&v| node_name(v)).collect(),
            learners: st
                .membership
                .learners
                .iter()
                .map(|&l| node_name(l))
                .collect(),
        }
    }

    /// Gives the reads that arrived this turn to Raft as one ReadIndex round.
    fn start_reads(&mut self) {
        let Some((ctx, batch)) = self.reads.take_batch() else {
            return;
        };
        // PLANTED(fx-stale-reads, fx-one-way, fx-learner-reads): answer from the applied
        // state, at the commit index, without confirming leadership with a majority.
        if let Some(index) = self.planted_local_read() {
            self.to_applier(ApplierMsg::LocalReads { index, batch });
            return;
        }
        match self.p.raw.read_index(ctx) {
            Ok(()) => self.to_applier(ApplierMsg::Reads { ctx, batch }),
            Err(e) => {
                let code = self.refusal(e);
                for w in batch {
                    answer(&w.reply, Reply::Error(code.clone()));
                }
            }
        }
    }

    /// Hands every Ready off: replication messages out now, the write to the disk writer, the
    /// rest to the applier (see the module docs).
    fn handle_ready(&mut self) {
        while self.p.raw.has_ready() {
            let rd = self.p.raw.ready();
            let work = self.p.raw.advance_async(rd);
            for m in work.send_now {
                self.p.outbox.send(m);
            }
            if !work.persist.is_empty() {
                // The disk writer only hangs up when it failed; the Fatal event says so.
                let _ = self.p.disk.send(DiskMsg::Persist(work.persist));
            }
            if !work.apply.is_empty() {
                self.to_applier(ApplierMsg::Apply(work.apply));
            }
        }
    }

    fn to_applier(&self, msg: ApplierMsg) {
        // The applier only hangs up when it failed; the Fatal event says so.
        let _ = self.p.applier.send(msg);
    }

    /// The applier made a snapshot at `index`: compact the in-memory log through it, then have
    /// the disk writer store it (in order with the writes) and drop the entries it covers.
    fn compact(&mut self, index: raft::Index, term: raft::Term, data: Vec<u8>) {
        match self.p.raw.compact(index, data.clone()) {
            // The core's metadata: the configuration as of `index`, not the latest.
            Ok(()) => match self.p.raw.snapshot_meta() {
                Some(meta) if meta.index == index && meta.term == term => {
                    let meta = meta.clone();
                    let _ = self.p.disk.send(DiskMsg::Compact(Snapshot { meta, data }));
                }
                other => debug!("compaction to {} gave metadata {other:?}", index.0),
            },
            Err(e) => debug!("compaction to {} skipped: {e}", index.0),
        }
    }

    /// Logs role, term and leader changes; on losing leadership, fails the reads that can no
    /// longer be confirmed.
    /// On a planned stop of a leader, hands leadership over first (TimeoutNow, thesis §3.10),
    /// so that the cluster does not wait an election timeout for a new leader. Returns whether
    /// to keep running: until another node leads, or an election timeout has passed.
    fn hand_over_first(&mut self) -> bool {
        let now = Instant::now();
        match self.handover_until {
            None => {
                let Some(to) = self.p.raw.most_caught_up_peer() else {
                    return false;
                };
                if self.p.raw.transfer_leader(to).is_err() {
                    return false;
                }
                info!("stopping: handing leadership to {}", node_name(to));
                self.handover_until = Some(now + self.p.election_timeout);
                true
            }
            Some(until) => {
                let handed = self.role != Role::Leader
                    && self.leader.is_some_and(|l| l != self.p.raw.status().id);
                !handed && now < until
            }
        }
    }

    fn observe_role(&mut self) {
        let st = self.p.raw.status();
        if st.role == self.role && st.leader == self.leader && st.term.0 == self.term {
            return;
        }
        let was_leader = self.role == Role::Leader;
        info!(
            "now {} in term {} (leader {})",
            st.role,
            st.term.0,
            st.leader.map_or_else(|| "unknown".to_string(), node_name)
        );
        (self.role, self.leader, self.term) = (st.role, st.leader, st.term.0);
        if let Some(lease) = &mut self.p.one_way {
            match st.role {
                Role::Leader => lease.won(st.term, Instant::now()),
                _ => lease.lost(),
            }
        }
        if was_leader && st.role != Role::Leader {
            let hint = st.leader.and_then(|l| self.p.directory.get(l));
            self.to_applier(ApplierMsg::LeadershipLost { hint });
        }
    }
}

/// The planted bugs' pieces of the Raft thread (never reached in `raftkv`, where
/// `planted` is `None`).
impl Driver {
    /// The index at which a read may be answered from the applied state without a ReadIndex
    /// round, if a planted bug allows it. Even a planted bug waits until this leader has
    /// committed an entry of its own term: before that its commit index may lag what earlier
    /// leaders committed (and acknowledged).
    fn planted_local_read(&self) -> Option<u64> {
        self.p.planted?;
        let st = self.p.raw.status();
        // PLANTED(fx-learner-reads): a member that does not vote serves reads from its own
        // state, at the commit index it knows.
        if self.p.planted == Some(PlantedBug::LearnerReads) {
            return (!st.membership.is_voter(st.id)).then_some(st.commit.0);
        }
        if st.role != Role::Leader {
            return None;
        }
        let allowed = match self.p.planted {
            Some(PlantedBug::StaleReads) => true,
            Some(PlantedBug::OneWay) => self.one_way_local_reads(),
            _ => false,
        };
        let own_term = self.p.raw.entry(st.commit).map(|e| e.term) == Some(st.term);
        (allowed && own_term).then_some(st.commit.0)
    }

    /// `fx-one-way`: whether this leader's lease holds on requests alone.
    fn one_way_local_reads(&self) -> bool {
        let Some(lease) = &self.p.one_way else {
            return false;
        };
        let st = self.p.raw.status();
        st.role == Role::Leader && lease.local_reads(st.term, Instant::now())
    }

    /// `fx-one-way`: feeds the message to the lease; whether to dismiss it.
    fn one_way_dismisses(&mut self, msg: &raft::Message) -> bool {
        let Some(lease) = &mut self.p.one_way else {
            return false;
        };
        let st = self.p.raw.status();
        match st.role {
            Role::Leader => {
                let ignore = lease.on_message(st.term, msg, Instant::now());
                if ignore {
                    debug!(
                        "{}: dismissed {} of term {} from {} (planted lease)",
                        PlantedBug::OneWay.name(),
                        msg.body.kind(),
                        msg.term.0,
                        msg.from
                    );
                }
                ignore
            }
            _ => false,
        }
    }

    /// PLANTED(fx-one-way): while its lease holds, the leader keeps its core's check-quorum
    /// satisfied, vouching for the peers that stopped answering (an empty acknowledgement in
    /// their name, which changes nothing else: index 0, no read round).
    fn vouch_for_silent_peers(&mut self, now: Instant) {
        let Some(lease) = &mut self.p.one_way else {
            return;
        };
        let st = self.p.raw.status();
        lease.observe_clock(now);
        if st.role != Role::Leader {
            return;
        }
        let peers: Vec<NodeId> = self
            .p
            .voters
            .iter()
            .copied()
            .filter(|&v| v != st.id)
            .collect();
        for from in lease.silent(st.term, &peers, now) {
            let vouched = raft::Message {
                from,
                to: st.id,
                term: st.term,
                body: MessageBody::AppendEntriesResponse {
                    success: true,
                    index: Index(0),
                    conflict_term: None,
                    conflict_index: Index(0),
                    read_seq: 0,
                },
            };
            let _ = self.p.raw.step(vouched);
        }
    }
}

/// What the loop does after a batch of events.
enum Flow {
    Continue,
    Stop,
    Fatal(NodeError),
}

impl Flow {
    fn or(self, other: Flow) -> Flow {
        match (self, other) {
            (Flow::Fatal(e), _) | (_, Flow::Fatal(e)) => Flow::Fatal(e),
            (Flow::Stop, _) | (_, Flow::Stop) => Flow::Stop,
            _ => Flow::Continue,
        }
    }
}

/// The `role` of the `status` answer.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre_candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}
