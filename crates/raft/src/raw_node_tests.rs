//! Unit tests of the core through its public driving interface, one rule of the paper each.

use crate::{
    Config, Entry, EntryPayload, HardState, Index, Message, MessageBody, NodeId, PersistTask,
    RawNode, Ready, Restored, Role, Term,
};

fn cfg(id: u64, n: u64) -> Config {
    Config {
        pre_vote: false,
        seed: id,
        ..Config::new(NodeId(id), (1..=n).map(NodeId).collect())
    }
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term: Term(term),
        index: Index(index),
        payload: EntryPayload::Command(vec![index as u8]),
    }
}

fn msg(from: u64, to: u64, term: u64, body: MessageBody) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body,
    }
}

fn drain(node: &mut RawNode) -> Ready {
    let rd = node.ready();
    let out = Ready {
        hard_state: rd.hard_state.clone(),
        entries: rd.entries.clone(),
        snapshot: rd.snapshot.clone(),
        messages: rd.messages.clone(),
        committed_entries: rd.committed_entries.clone(),
        read_states: rd.read_states.clone(),
        number: 0,
    };
    node.advance(rd);
    out
}

/// Ticks until node 1 campaigns, then grants it n2's vote: a leader of 3 nodes.
fn elect(restored: Restored) -> RawNode {
    let mut n = RawNode::new(cfg(1, 3), restored).unwrap();
    while n.status().role != Role::Candidate {
        n.tick();
    }
    let term = n.status().term.0;
    n.step(msg(2, 1, term, MessageBody::VoteResponse { granted: true }))
        .unwrap();
    assert_eq!(n.status().role, Role::Leader);
    let _ = drain(&mut n);
    n
}

fn ack(n: &mut RawNode, from: u64, index: u64, read_seq: u64) {
    let term = n.status().term.0;
    let body = MessageBody::AppendEntriesResponse {
        success: true,
        index: Index(index),
        conflict_term: None,
        conflict_index: Index(0),
        read_seq,
    };
    n.step(msg(from, 1, term, body)).unwrap();
}

#[test]
fn election_timeout_is_randomized_within_one_to_two_election_ticks() {
    for seed in 0..20 {
        let mut n = RawNode::new(Config { seed, ..cfg(1, 3) }, Restored::default()).unwrap();
        let mut ticks = 0;
        while n.status().role == Role::Follower {
            n.tick();
            ticks += 1;
        }
        assert!((10..20).contains(&ticks), "seed {seed}: {ticks} ticks");
    }
}

/// Paper §5.4.2 and Figure 8: a leader never commits an entry of an earlier term by counting
/// replicas; only its own term's entries, which then commit the earlier ones.
#[test]
fn leader_commits_only_current_term_entries_by_counting() {
    let restored = Restored {
        hard_state: HardState {
            term: Term(2),
            vote: None,
            commit: Index(1),
        },
        entries: vec![entry(1, 1), entry(2, 2)],
        ..Restored::default()
    };
    let mut n = elect(restored);
    assert_eq!(n.status().last_index, Index(3), "no-op appended");
    ack(&mut n, 2, 2, 0); // a majority (1 and 2) now holds the term-2 entry
    assert_eq!(
        n.status().commit,
        Index(1),
        "old-term entry committed by counting"
    );
    ack(&mut n, 2, 3, 0);
    assert_eq!(n.status().commit, Index(3));
}

/// Figure 2, RequestVote: one vote per term, survived across restarts, and only for
/// candidates whose log is at least as up-to-date (§5.4.1).
#[test]
fn votes_are_granted_once_per_term_and_only_to_up_to_date_logs() {
    let vote = |last_index, last_term| MessageBody::Vote {
        last_log_index: Index(last_index),
        last_log_term: Term(last_term),
        transfer: false,
    };
    let granted = |rd: &Ready| match rd.messages[..] {
        [Message {
            body: MessageBody::VoteResponse { granted },
            ..
        }] => granted,
        _ => panic!("expected one vote response: {:?}", rd.messages),
    };
    let restored = Restored {
        hard_state: HardState {
            term: Term(2),
            vote: None,
            commit: Index(0),
        },
        entries: vec![entry(1, 1), entry(2, 2)],
        ..Restored::default()
    };
    let mut n = RawNode::new(
        Config {
            check_quorum: false,
            ..cfg(1, 3)
        },
        restored.clone(),
    )
    .unwrap();
    n.step(msg(2, 1, 3, vote(5, 1))).unwrap(); // longer but older last term
    assert!(!granted(&drain(&mut n)));
    n.step(msg(2, 1, 3, vote(2, 2))).unwrap();
    let rd = drain(&mut n);
    assert!(granted(&rd));
    assert_eq!(rd.hard_state.as_ref().unwrap().vote, Some(NodeId(2)));
    n.step(msg(3, 1, 3, vote(9, 3))).unwrap();
    assert!(!granted(&drain(&mut n)), "second vote in one term");
    // After a restart from the persisted hard state, still no second vote.
    let restored = Restored {
        hard_state: rd.hard_state.unwrap(),
        ..restored
    };
    let mut n = RawNode::new(
        Config {
            check_quorum: false,
            ..cfg(1, 3)
        },
        restored,
    )
    .unwrap();
    n.step(msg(3, 1, 3, vote(9, 3))).unwrap();
    assert!(!granted(&drain(&mut n)), "second vote after restart");
}

/// Figure 2, AppendEntries step 1: a request from an older term is refused with the current
/// term, and changes nothing.
#[test]
fn append_entries_from_a_stale_term_is_refused() {
    let restored = Restored {
        hard_state: HardState {
            term: Term(5),
            vote: None,
            commit: Index(0),
        },
        ..Restored::default()
    };
    let mut n = RawNode::new(cfg(1, 3), restored).unwrap();
    let body = MessageBody::AppendEntries {
        prev_log_index: Index(0),
        prev_log_term: Term(0),
        entries: vec![entry(1, 4)],
        leader_commit: Index(1),
        read_seq: 0,
    };
    n.step(msg(2, 1, 4, body)).unwrap();
    let rd = drain(&mut n);
    assert!(rd.entries.is_empty() && rd.committed_entries.is_empty());
    assert_eq!(n.status().leader, None);
    assert!(matches!(
        &rd.messages[..],
        [Message {
            term: Term(5),
            body: MessageBody::AppendEntriesResponse { success: false, .. },
            ..
        }]
    ));
}

/// Entries are handed out for application only once committed, even when received earlier.
#[test]
fn entries_are_applied_only_after_commit() {
    let mut n = RawNode::new(cfg(1, 3), Restored::default()).unwrap();
    let append = |commit| MessageBody::AppendEntries {
        prev_log_index: Index(0),
        prev_log_term: Term(0),
        entries: vec![entry(1, 1), entry(2, 1)],
        leader_commit: Index(commit),
        read_seq: 0,
    };
    n.step(msg(2, 1, 1, append(0))).unwrap();
    let rd = drain(&mut n);
    assert_eq!(rd.entries.len(), 2);
    assert!(rd.committed_entries.is_empty());
    n.step(msg(2, 1, 1, append(1))).unwrap();
    let rd = drain(&mut n);
    assert!(rd.entries.is_empty(), "duplicate append re-persisted");
    assert_eq!(rd.committed_entries, vec![entry(1, 1)]);
}

/// Thesis §6.4: a read is released only after a majority answered a heartbeat round that
/// started after the read arrived.
#[test]
fn read_index_waits_for_a_quorum_to_confirm_leadership() {
    let mut n = elect(Restored::default());
    ack(&mut n, 2, 1, 0); // commits the no-op
    let _ = drain(&mut n);
    n.read_index(77).unwrap();
    let rd = drain(&mut n);
    assert!(
        rd.read_states.is_empty(),
        "read answered without confirmation"
    );
    let round = match &rd.messages[0].body {
        MessageBody::AppendEntries { read_seq, .. } => *read_seq,
        other => panic!("expected a heartbeat, got {other:?}"),
    };
    ack(&mut n, 3, 1, round - 1); // an answer to an older round proves nothing
    assert!(drain(&mut n).read_states.is_empty());
    ack(&mut n, 3, 1, round);
    let rd = drain(&mut n);
    assert_eq!(rd.read_states.len(), 1);
    assert_eq!(
        (rd.read_states[0].ctx, rd.read_states[0].index),
        (77, Index(1))
    );
}

/// Thesis §6.2: a leader that hears from no majority for an election timeout steps down.
#[test]
fn check_quorum_makes_an_isolated_leader_step_down() {
    let mut n = elect(Restored::default());
    for _ in 0..10 {
        n.tick();
    }
    assert_eq!(n.status().role, Role::Follower);
}

#[test]
#[should_panic(expected = "before advance")]
fn ready_twice_without_advance_panics() {
    let mut n = RawNode::new(cfg(1, 1), Restored::default()).unwrap();
    for _ in 0..30 {
        n.tick();
    }
    let _first = n.ready();
    let _second = n.ready();
}

#[test]
fn inconsistent_restored_state_is_refused() {
    let restored = Restored {
        hard_state: HardState {
            term: Term(1),
            vote: None,
            commit: Index(3),
        },
        entries: vec![entry(1, 1)],
        ..Restored::default()
    };
    assert!(matches!(
        RawNode::new(cfg(1, 3), restored),
        Err(crate::Error::Restore(
            crate::RestoreError::CommitBeyondLog { .. }
        ))
    ));
    let gap = Restored {
        hard_state: HardState {
            term: Term(1),
            ..HardState::default()
        },
        entries: vec![entry(1, 1), entry(3, 1)],
        ..Restored::default()
    };
    assert!(RawNode::new(cfg(1, 3), gap).is_err());
}

// ---- Asynchronous storage writes (advance_async / on_persisted / on_applied) ----

fn append_ok(from: u64, term: u64, index: u64) -> Message {
    msg(
        from,
        1,
        term,
        MessageBody::AppendEntriesResponse {
            success: true,
            index: Index(index),
            conflict_term: None,
            conflict_index: Index(0),
            read_seq: 0,
        },
    )
}

/// Thesis §10.2.1: the leader sends its entries before writing them, but counts itself towards
/// a commit only once the disk writer reports them durable.
#[test]
fn async_leader_counts_itself_only_for_persisted_entries() {
    let mut n = elect(Restored::default());
    let term = n.status().term.0;
    // The no-op of the election is persisted (drain advanced synchronously); node 2 acks it,
    // which commits it and puts node 2 into the replicate state.
    let noop = n.status().last_index;
    n.step(append_ok(2, term, noop.0)).unwrap();
    assert_eq!(n.status().commit, noop);
    let _ = drain(&mut n);
    let (_, at) = n.propose(b"x".to_vec()).unwrap();
    let rd = n.ready();
    let work = n.advance_async(rd);
    assert!(
        work.send_now
            .iter()
            .any(|m| matches!(m.body, MessageBody::AppendEntries { .. })),
        "replication goes out before the leader's own write"
    );
    assert_eq!(work.persist.entries().len(), 1);
    let persist = work.persist;
    // A majority of 3 is 2: one follower plus the leader. The follower's ack alone must not
    // commit the leader's unpersisted entry.
    n.step(append_ok(2, term, at.0)).unwrap();
    assert!(
        n.status().commit < at,
        "committed without the leader's own fsync"
    );
    let mut report = None;
    let mut sent = Vec::new();
    PersistTask::persist_then_send(
        vec![persist],
        |_| Ok::<(), ()>(()),
        |p| report = Some(p),
        |m| sent.push(m),
    )
    .unwrap();
    let p = report.expect("the batch wrote an entry");
    assert_eq!(p.index(), Some(at));
    n.on_persisted(p);
    assert_eq!(n.status().commit, at);
    // The committed entry is handed to the applier; on_applied records it.
    let rd = n.ready();
    let work = n.advance_async(rd);
    assert_eq!(work.apply.applied_index(), Some(at));
    n.on_applied(at);
    assert_eq!(n.status().applied, at);
}

/// A follower's acknowledgement (and a voter's grant) is held with the write it depends on.
#[test]
fn async_follower_acknowledges_only_after_the_write() {
    let mut n = RawNode::new(cfg(1, 3), Restored::default()).unwrap();
    n.step(msg(
        2,
        1,
        1,
        MessageBody::AppendEntries {
            prev_log_index: Index(0),
            prev_log_term: Term(0),
            entries: vec![entry(1, 1)],
            leader_commit: Index(0),
            read_seq: 0,
        },
    ))
    .unwrap();
    let rd = n.ready();
    let work = n.advance_async(rd);
    assert!(
        work.send_now.is_empty(),
        "nothing of a follower goes out early"
    );
    assert_eq!(work.persist.message_count(), 1);
    let order = std::cell::RefCell::new(Vec::new());
    PersistTask::persist_then_send(
        vec![work.persist],
        |tasks| {
            order.borrow_mut().push("persist");
            assert_eq!(tasks[0].entries(), &[entry(1, 1)]);
            Ok::<(), ()>(())
        },
        |_| {},
        |m| {
            assert!(matches!(
                m.body,
                MessageBody::AppendEntriesResponse { success: true, .. }
            ));
            order.borrow_mut().push("send");
        },
    )
    .unwrap();
    assert_eq!(order.into_inner(), ["persist", "send"]);
    // Vote grants too (asked of a fresh node: this one is in node 2's lease).
    let mut n = RawNode::new(cfg(1, 3), Restored::default()).unwrap();
    n.step(msg(
        3,
        1,
        2,
        MessageBody::Vote {
            last_log_index: Index(0),
            last_log_term: Term(0),
            transfer: false,
        },
    ))
    .unwrap();
    let rd = n.ready();
    let work = n.advance_async(rd);
    assert!(work.send_now.is_empty());
    assert!(work.persist.hard_state().is_some());
    assert_eq!(work.persist.message_count(), 1);
    let failed = PersistTask::persist_then_send(
        vec![work.persist],
        |_| Err("disk full"),
        |_| panic!("reported after a failed write"),
        |_| panic!("sent after a failed write"),
    );
    assert_eq!(failed, Err("disk full"));
}

/// A persistence report about entries that were since overwritten says nothing about the
/// entries now at those indexes.
#[test]
fn async_stale_persist_report_is_ignored() {
    let mut n = RawNode::new(cfg(1, 3), Restored::default()).unwrap();
    let ae = |term: u64, entries: Vec<Entry>| {
        msg(
            2,
            1,
            term,
            MessageBody::AppendEntries {
                prev_log_index: Index(0),
                prev_log_term: Term(0),
                entries,
                leader_commit: Index(0),
                read_seq: 0,
            },
        )
    };
    n.step(ae(1, vec![entry(1, 1), entry(2, 1)])).unwrap();
    let rd = n.ready();
    let first = n.advance_async(rd).persist;
    // A new leader overwrites index 2 before the first write is done.
    n.step(ae(2, vec![entry(1, 1), entry(2, 2)])).unwrap();
    let rd = n.ready();
    let second = n.advance_async(rd).persist;
    let mut reports = Vec::new();
    for t in [first, second] {
        PersistTask::persist_then_send(vec![t], |_| Ok::<(), ()>(()), |p| reports.push(p), |_| {})
            .unwrap();
    }
    assert_eq!(reports.len(), 2);
    // The stale report (2, term 1) must not mark the new entry (2, term 2) durable; the
    // second one does.
    assert_eq!(reports[0].index(), Some(Index(2)));
    assert_eq!(n.persisted_index(), Index(0));
    n.on_persisted(reports[0]);
    assert_eq!(n.persisted_index(), Index(0), "a stale report is ignored");
    n.on_persisted(reports[1]);
    assert_eq!(n.persisted_index(), Index(2));
}

/// A follower whose term and vote are durable answers at once (as etcd answers heartbeats
/// without its WAL), claiming a match only through its durable entries; the full answer waits
/// for the write. While a new term is not durable, nothing goes out early.
#[test]
fn async_follower_answers_heartbeats_without_waiting_for_its_disk() {
    let restored = Restored {
        hard_state: HardState {
            term: Term(1),
            vote: Some(NodeId(2)),
            commit: Index(1),
        },
        entries: vec![entry(1, 1)],
        ..Restored::default()
    };
    let mut n = RawNode::new(cfg(1, 3), restored).unwrap();
    let ae = |term: u64, prev: u64, entries: Vec<Entry>, read_seq: u64| {
        msg(
            2,
            1,
            term,
            MessageBody::AppendEntries {
                prev_log_index: Index(prev),
                prev_log_term: Term(1),
                entries,
                leader_commit: Index(1),
                read_seq,
            },
        )
    };
    let answer = |m: &Message| match m.body {
        MessageBody::AppendEntriesResponse {
            success: true,
            index,
            read_seq,
            ..
        } => (index.0, read_seq),
        ref b => panic!("not a successful answer: {b:?}"),
    };
    n.step(ae(1, 1, vec![entry(2, 1)], 4)).unwrap();
    let rd = n.ready();
    let slow = n.advance_async(rd);
    // Entry 2 is in the disk queue: the early answer stops at 1, the full one waits.
    assert_eq!(
        slow.send_now.iter().map(answer).collect::<Vec<_>>(),
        [(1, 4)]
    );
    assert_eq!(slow.persist.message_count(), 1);
    // A heartbeat while that write is still queued is answered at once, echoing its round.
    n.step(ae(1, 2, vec![], 5)).unwrap();
    let rd = n.ready();
    let work = n.advance_async(rd);
    assert_eq!(
        work.send_now.iter().map(answer).collect::<Vec<_>>(),
        [(1, 5)]
    );
    let mut held = Vec::new();
    for t in [slow.persist, work.persist] {
        PersistTask::persist_then_send(
            vec![t],
            |_| Ok::<(), ()>(()),
            |p| n.on_persisted(p),
            |m| held.push(answer(&m)),
        )
        .unwrap();
    }
    assert_eq!(held, [(2, 4), (2, 5)]);
    // A new term is not durable until its write is: the answer waits with it.
    n.step(ae(2, 2, vec![], 6)).unwrap();
    let rd = n.ready();
    let work = n.advance_async(rd);
    assert!(
        work.send_now.is_empty(),
        "answered before its term was durable"
    );
    assert_eq!(work.persist.message_count(), 1);
}

/// The single-server bug Ongaro posted to raft-dev (2015): a new leader must commit an entry
/// of its own term before it proposes a membership change, or an earlier leader's uncommitted
/// change could still win with a majority that does not overlap the new one. Then one change
/// at a time.
#[test]
fn a_new_leader_proposes_no_change_before_its_noop_commits_and_one_at_a_time() {
    use crate::{ConfChange, ProposeError};
    let mut n = elect(Restored::default());
    let noop = n.status().last_index;
    assert_eq!(
        n.propose_conf_change(ConfChange::AddLearner(NodeId(4))),
        Err(ProposeError::TermNotCommitted)
    );
    ack(&mut n, 2, noop.0, 0);
    assert_eq!(n.status().commit, noop);
    let (_, at) = n
        .propose_conf_change(ConfChange::AddLearner(NodeId(4)))
        .unwrap();
    // In effect on append: n4 is replicated to at once.
    let st = n.status();
    assert_eq!(
        (st.config_index, st.membership.learners.clone()),
        (at, vec![NodeId(4)])
    );
    assert!(st.progress.iter().any(|&(p, _)| p == NodeId(4)));
    assert_eq!(
        n.propose_conf_change(ConfChange::Remove(NodeId(2))),
        Err(ProposeError::ChangeInProgress)
    );
    let _ = drain(&mut n); // the leader's own copy is durable
                           // The learner's acknowledgement does not commit it; a voter's does.
    ack(&mut n, 4, at.0, 0);
    assert!(n.status().commit < at);
    ack(&mut n, 2, at.0, 0);
    assert_eq!(n.status().commit, at);
    assert_eq!(
        n.propose_conf_change(ConfChange::Promote(NodeId(2))),
        Err(ProposeError::BadConfChange(
            crate::ConfChangeError::NotALearner(NodeId(2))
        ))
    );
    assert!(n
        .propose_conf_change(ConfChange::Promote(NodeId(4)))
        .is_ok());
}

/// A snapshot carries the configuration as of its index, not a later uncommitted one.
#[test]
fn a_snapshot_carries_the_configuration_of_its_index() {
    use crate::ConfChange;
    let mut n = elect(Restored::default());
    let noop = n.status().last_index;
    ack(&mut n, 2, noop.0, 0);
    let rd = drain(&mut n);
    assert!(!rd.committed_entries.is_empty());
    let (_, at) = n
        .propose_conf_change(ConfChange::AddLearner(NodeId(4)))
        .unwrap();
    let _ = drain(&mut n);
    n.compact(noop, vec![]).unwrap();
    let meta = n.snapshot_meta().unwrap();
    assert_eq!(meta.voters, vec![NodeId(1), NodeId(2), NodeId(3)]);
    assert!(meta.learners.is_empty(), "{meta:?} has the change at {at}");
}
