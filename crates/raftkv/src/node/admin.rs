//! The admin operations of the client protocol (docs/protocol.md): `add_member`,
//! `remove_member` and `transfer_leader`, run by the Raft thread one at a time.
//!
//! `add_member` is the learner catch-up of thesis §4.2.1: add the node as a learner, wait until
//! its match index reaches the leader's commit index as it was when it was added, then promote
//! it. Every answer but `timeout` and `unknown` is definite: the change did not and will not
//! happen.

use std::time::Instant;

use crate::reply::ReplyTx;
use raft::{ConfChange, Index, NodeId, ProposeError, RawNode, Role, Status, Term};

use super::pending::answer;
use crate::config::node_name;
use crate::protocol::{ErrorCode, Reply};

/// The admin operation in progress, if any.
#[derive(Default)]
pub(crate) struct Admin {
    pending: Option<Pending>,
}

struct Pending {
    reply: ReplyTx,
    /// The client's connection answers `timeout` itself at this instant; the operation is
    /// then abandoned (a change already proposed may still take effect).
    deadline: Instant,
    stage: Stage,
}

enum Stage {
    /// Waiting for the learner entry to commit; then for the learner to reach `target`.
    AddLearner {
        node: NodeId,
        at: (Term, Index),
        target: Index,
    },
    CatchUp {
        node: NodeId,
        target: Index,
    },
    Promote {
        at: (Term, Index),
    },
    Remove {
        at: (Term, Index),
    },
    Transfer {
        to: NodeId,
        from_term: Term,
    },
}

/// An admin operation, parsed from the client protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdminOp {
    Add(NodeId),
    Remove(NodeId),
    Transfer(Option<NodeId>),
}

/// How a refusal of the core maps to an answer; `not_leader` needs the driver's directory.
pub(crate) type Refusal<'a> = &'a dyn Fn(ProposeError) -> ErrorCode;

fn admin_refusal(e: Refused, refusal: Refusal) -> ErrorCode {
    let e = match e {
        Refused::Bad(detail) => return ErrorCode::BadRequest(detail),
        Refused::Core(e) => e,
    };
    match e {
        ProposeError::ChangeInProgress | ProposeError::TermNotCommitted => {
            ErrorCode::Busy(e.to_string())
        }
        ProposeError::BadConfChange(_) | ProposeError::NotAVoter(_) => {
            ErrorCode::BadRequest(e.to_string())
        }
        other => refusal(other),
    }
}

impl Admin {
    /// Starts an admin op. `book` is every node with a `--peer` address (and this one).
    pub(crate) fn start(
        &mut self,
        raw: &mut RawNode,
        book: &[NodeId],
        op: AdminOp,
        reply: ReplyTx,
        deadline: Instant,
        refusal: Refusal,
    ) {
        let st = raw.status();
        if st.role != Role::Leader {
            let e = ProposeError::NotLeader { leader: st.leader };
            return answer(&reply, Reply::Error(refusal(e)));
        }
        if self.pending.is_some() {
            let busy = "another membership change or leadership transfer is in progress";
            return answer(&reply, Reply::Error(ErrorCode::Busy(busy.into())));
        }
        match start_stage(raw, &st, book, op) {
            Ok(stage) => {
                self.pending = Some(Pending {
                    reply,
                    deadline,
                    stage,
                })
            }
            Err(e) => answer(&reply, Reply::Error(admin_refusal(e, refusal))),
        }
    }

    /// Moves the op in progress along; answers it when it is done.
    pub(crate) fn poll(&mut self, raw: &mut RawNode, now: Instant) {
        let Some(p) = self.pending.take() else {
            return;
        };
        if now >= p.deadline {
            return; // answered `timeout` by the connection
        }
        let st = raw.status();
        let outcome = match p.stage {
            Stage::AddLearner { node, at, target } => match committed(raw, &st, at) {
                Some(Ok(())) => Step::Next(Stage::CatchUp { node, target }),
                Some(Err(e)) => Step::Done(Reply::Error(e)),
                None => Step::Wait(Stage::AddLearner { node, at, target }),
            },
            Stage::CatchUp { node, target } => catch_up(raw, &st, node, target),
            Stage::Promote { at } | Stage::Remove { at } => match committed(raw, &st, at) {
                Some(Ok(())) => Step::Done(Reply::Done),
                Some(Err(e)) => Step::Done(Reply::Error(e)),
                None => Step::Wait(p.stage),
            },
            Stage::Transfer { to, from_term } => {
                if st.role != Role::Leader && st.leader == Some(to) && st.term > from_term {
                    Step::Done(Reply::Done)
                } else {
                    Step::Wait(p.stage)
                }
            }
        };
        let stage = match outcome {
            Step::Done(r) => return answer(&p.reply, r),
            Step::Next(s) | Step::Wait(s) => s,
        };
        self.pending = Some(Pending { stage, ..p });
    }

    /// The node stops: the op's outcome can no longer be learned here.
    pub(crate) fn abandon(&mut self) {
        if let Some(p) = self.pending.take() {
            let e = ErrorCode::Unknown("the node stopped".into());
            answer(&p.reply, Reply::Error(e));
        }
    }
}

enum Step {
    Done(Reply),
    Next(Stage),
    Wait(Stage),
}

/// Why an admin op was refused before anything was proposed (all definite).
enum Refused {
    Core(ProposeError),
    Bad(String),
}

impl From<ProposeError> for Refused {
    fn from(e: ProposeError) -> Refused {
        Refused::Core(e)
    }
}

fn start_stage(
    raw: &mut RawNode,
    st: &Status,
    book: &[NodeId],
    op: AdminOp,
) -> Result<Stage, Refused> {
    match op {
        AdminOp::Add(node) => {
            if !book.contains(&node) {
                return Err(Refused::Bad(format!(
                    "{} has no --peer address (every node that may ever be a member needs one)",
                    node_name(node)
                )));
            }
            if st.membership.is_voter(node) {
                return Err(Refused::Bad(format!(
                    "{} is already a voter",
                    node_name(node)
                )));
            }
            if st.membership.is_learner(node) {
                // An earlier add_member added it and gave up waiting: go on from there.
                return Ok(Stage::CatchUp {
                    node,
                    target: st.commit,
                });
            }
            let at = raw.propose_conf_change(ConfChange::AddLearner(node))?;
            Ok(Stage::AddLearner {
                node,
                at,
                target: st.commit,
            })
        }
        AdminOp::Remove(node) => {
            let at = raw.propose_conf_change(ConfChange::Remove(node))?;
            Ok(Stage::Remove { at })
        }
        AdminOp::Transfer(node) => {
            let Some(to) = node.or_else(|| raw.most_caught_up_peer()) else {
                return Err(Refused::Bad("no other voter to hand leadership to".into()));
            };
            if to == st.id {
                return Err(Refused::Bad(format!("{} already leads", node_name(to))));
            }
            raw.transfer_leader(to)?;
            Ok(Stage::Transfer {
                to,
                from_term: st.term,
            })
        }
    }
}

/// Whether the entry proposed at `at` is committed (`Some(Ok)`), lost (`Some(Err)`), or not
/// yet known (`None`).
fn committed(raw: &RawNode, st: &Status, at: (Term, Index)) -> Option<Result<(), ErrorCode>> {
    let (term, index) = at;
    if st.commit >= index {
        return Some(match raw.entry(index).map(|e| e.term) {
            Some(t) if t == term => Ok(()),
            Some(_) => Err(ErrorCode::Unknown(
                "the change's entry was replaced by another leader's".into(),
            )),
            // Compacted at once: it was committed, but whether it was this entry is not known
            // here any more; `status` tells.
            None => Err(ErrorCode::Unknown(
                "the change's entry was compacted before it could be checked".into(),
            )),
        });
    }
    if st.role != Role::Leader || st.term != term {
        return Some(Err(ErrorCode::Unknown(
            "leadership was lost before the change committed; it may still take effect".into(),
        )));
    }
    None
}

/// The learner `node` caught up with `target`: promote it.
fn catch_up(raw: &mut RawNode, st: &Status, node: NodeId, target: Index) -> Step {
    if st.role != Role::Leader {
        let e = format!(
            "leadership was lost while {} caught up as a learner",
            node_name(node)
        );
        return Step::Done(Reply::Error(ErrorCode::Unknown(e)));
    }
    let caught_up = st
        .progress
        .iter()
        .any(|&(p, matched)| p == node && matched >= target);
    if !caught_up {
        return Step::Wait(Stage::CatchUp { node, target });
    }
    match raw.propose_conf_change(ConfChange::Promote(node)) {
        Ok(at) => Step::Next(Stage::Promote { at }),
        // Not yet: the learner's own entry, or this leader's no-op, is still uncommitted.
        Err(ProposeError::ChangeInProgress | ProposeError::TermNotCommitted) => {
            Step::Wait(Stage::CatchUp { node, target })
        }
        Err(e) => Step::Done(Reply::Error(ErrorCode::Unknown(format!(
            "{} was added as a learner but not promoted: {e}",
            node_name(node)
        )))),
    }
}
