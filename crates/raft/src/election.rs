//! Leader election (paper §5.2, §5.4.1) with pre-vote (thesis §9.6).

use crate::message::MessageBody;
use crate::quorum::{tally, VoteResult};
use crate::raft::Raft;
use crate::types::{Index, NodeId, Role, Term};

impl Raft {
    /// Follower and candidate tick: start an election when the randomized timeout expires.
    pub(crate) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.election_elapsed >= self.randomized_timeout && self.is_voter() {
            if self.cfg.pre_vote {
                self.pre_campaign();
            } else {
                self.campaign(false);
            }
        }
    }

    /// Asks the voters whether they would vote for us in the next term, without changing our
    /// term, so that a node cut off from the cluster cannot inflate terms and depose a healthy
    /// leader when it returns (thesis §9.6).
    pub(crate) fn pre_campaign(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.reset_election_timer();
        self.votes.clear();
        self.votes.insert(self.id, true);
        let next_term = Term(self.term.0 + 1);
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        for peer in self.peers() {
            self.send_with_term(
                peer,
                next_term,
                MessageBody::PreVote {
                    last_log_index,
                    last_log_term,
                },
            );
        }
        self.check_pre_vote_result();
    }

    /// Figure 2, "Candidates": increment currentTerm, vote for self, reset the election timer,
    /// send RequestVote to all other servers. `transfer`: the leader handed over (TimeoutNow).
    pub(crate) fn campaign(&mut self, transfer: bool) {
        self.term = Term(self.term.0 + 1);
        self.vote = Some(self.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.reset_election_timer();
        self.votes.clear();
        self.votes.insert(self.id, true);
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        for peer in self.peers() {
            self.send(
                peer,
                MessageBody::Vote {
                    last_log_index,
                    last_log_term,
                    transfer,
                },
            );
        }
        self.check_vote_result();
    }

    /// Grants a pre-vote if the requester's log is up-to-date, its proposed term is beyond ours,
    /// and we have not heard from a leader within the minimum election timeout.
    pub(crate) fn handle_pre_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_index: Index,
        last_term: Term,
    ) {
        let granted = term > self.term
            && !self.in_lease()
            && self.may_vote()
            // PLANTED(planted_vote_ignores_log)
            && (self.cfg.planted_vote_ignores_log || self.log.is_up_to_date(last_index, last_term));
        let reply_term = if granted { term } else { self.term };
        self.send_with_term(from, reply_term, MessageBody::PreVoteResponse { granted });
    }

    /// Figure 2, RequestVote receiver: grant if we have not voted for another candidate in
    /// this term and the candidate's log is at least as up-to-date as ours (§5.4.1).
    pub(crate) fn handle_vote(&mut self, from: NodeId, last_index: Index, last_term: Term) {
        let can_vote = (self.vote.is_none() || self.vote == Some(from)) && self.may_vote();
        // PLANTED(planted_vote_ignores_log)
        let granted = can_vote
            && (self.cfg.planted_vote_ignores_log || self.log.is_up_to_date(last_index, last_term));
        if granted {
            self.vote = Some(from);
            // Granting a vote resets the timer (Figure 2, "Followers").
            self.reset_election_timer();
        }
        self.send(from, MessageBody::VoteResponse { granted });
    }

    /// A node that has no configuration yet (joining, perhaps with a wiped disk under the id
    /// of a removed member) grants no vote: its empty log and forgotten vote would let a stale
    /// node that still counts it as a voter win an election without the committed entries.
    /// Learners do vote (a candidate may know them as promoted before they do).
    fn may_vote(&self) -> bool {
        !self.membership.voters.is_empty()
    }

    pub(crate) fn handle_pre_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        // Only answers to the current pre-vote round count; a refusal carries the responder's
        // (not higher) term, a grant the term we asked for.
        let current = if granted {
            term == Term(self.term.0 + 1)
        } else {
            term == self.term
        };
        if self.role == Role::PreCandidate && current {
            self.votes.insert(from, granted);
            self.check_pre_vote_result();
        }
    }

    pub(crate) fn handle_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if self.role == Role::Candidate && term == self.term {
            self.votes.insert(from, granted);
            self.check_vote_result();
        }
    }

    fn check_pre_vote_result(&mut self) {
        match tally(self.voters(), &self.votes) {
            VoteResult::Won => self.campaign(false),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    fn check_vote_result(&mut self) {
        match tally(self.voters(), &self.votes) {
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }
}
