//! Membership-change scenarios in the style of `mit.rs` (the MIT 6.5840 labs have none; these
//! follow the pitfalls of thesis §4.1-4.2), on the deterministic simulator, with every
//! invariant of `raft::sim::Checker` checked after every event.

use raft::sim::{Cluster, SimConfig, Violation};
use raft::{ConfChange, Index, NodeId, Role, Status};

type R = Result<(), Violation>;

/// Runs a scenario on a few seeds: `nodes` slots of which the first `voters` form the initial
/// configuration (the others start as joining nodes).
fn run(nodes: usize, voters: usize, snapshot_after: Option<u64>, scenario: fn(&mut Cluster) -> R) {
    for seed in 0..4 {
        let mut cfg = SimConfig::new(nodes, seed);
        cfg.initial_voters = Some(voters);
        cfg.snapshot_after = snapshot_after;
        cfg.max_entries_per_msg = if seed & 1 == 0 { 1 } else { 64 };
        let mut c = Cluster::new(cfg);
        if let Err(v) = scenario(&mut c) {
            panic!("seed {seed}: {v}");
        }
    }
}

fn fail<T>(c: &Cluster, what: String) -> Result<T, Violation> {
    Err(Violation {
        time_ms: c.now(),
        what: format!("{what};{}", c.describe()),
    })
}

fn id(i: usize) -> NodeId {
    NodeId(i as u64 + 1)
}

fn status(c: &Cluster, i: usize) -> Status {
    c.node(i).expect("up").status()
}

/// Proposes `change` at the current leader until one accepts it, then waits until that
/// leader commits it. Returns the leader and the entry's index.
fn change(c: &mut Cluster, change: ConfChange) -> Result<(usize, Index), Violation> {
    let deadline = c.now() + 5_000;
    while c.now() < deadline {
        let leader = c.check_one_leader()?;
        if let Some((_, index)) = c.conf_change(leader, change)? {
            wait_commit(c, leader, index)?;
            return Ok((leader, index));
        }
        c.run_for(50)?;
    }
    fail(c, format!("no leader accepted {change:?}"))
}

/// Waits up to 3 s for node `i` to know `index` committed.
fn wait_commit(c: &mut Cluster, i: usize, index: Index) -> R {
    for _ in 0..300 {
        if c.node(i).is_some_and(|n| n.status().commit >= index) {
            return Ok(());
        }
        c.run_for(10)?;
    }
    fail(c, format!("{} did not commit {index}", id(i)))
}

/// Waits until the leader sees learner `i` matching its commit index (caught up).
fn wait_caught_up(c: &mut Cluster, leader: usize, i: usize) -> R {
    for _ in 0..300 {
        let st = status(c, leader);
        if st
            .progress
            .iter()
            .any(|&(p, m)| p == id(i) && m >= st.commit)
        {
            return Ok(());
        }
        c.run_for(10)?;
    }
    fail(c, format!("learner {} never caught up", id(i)))
}

/// Adds node `i` as a learner, waits for it to catch up, promotes it.
fn add_voter(c: &mut Cluster, i: usize) -> R {
    let (leader, _) = change(c, ConfChange::AddLearner(id(i)))?;
    wait_caught_up(c, leader, i)?;
    change(c, ConfChange::Promote(id(i)))?;
    Ok(())
}

#[test]
fn learner_catches_up_then_promoted_voter_counts() {
    run(4, 3, None, |c| {
        for cmd in 1..=5 {
            c.one(cmd, 3, true)?;
        }
        let (leader, _) = change(c, ConfChange::AddLearner(id(3)))?;
        wait_caught_up(c, leader, 3)?;
        let st = status(c, 3);
        if st.membership.learners != vec![id(3)] || st.role != Role::Follower {
            return fail(c, format!("n4 should be a following learner: {st:?}"));
        }
        if c.applied(3) < Index(6) {
            return fail(c, "the learner did not apply the log".into());
        }
        change(c, ConfChange::Promote(id(3)))?;
        // Four voters: with one original follower down, the leader, the other and n4 are
        // the majority (3 of 4), so n4's vote and match now count.
        let leader = c.check_one_leader()?;
        let down = (0..3).find(|&k| k != leader).expect("a follower");
        c.crash(down);
        c.one(100, 3, true)?;
        Ok(())
    });
}

#[test]
fn learner_does_not_count_toward_quorum() {
    run(4, 3, None, |c| {
        c.one(1, 3, true)?;
        let (leader, _) = change(c, ConfChange::AddLearner(id(3)))?;
        wait_caught_up(c, leader, 3)?;
        // The leader and the learner are two of four nodes, but one of three voters.
        for k in (0..3).filter(|&k| k != leader) {
            c.disconnect(k);
        }
        let Some((_, index)) = c.propose(leader, 2)? else {
            return fail(c, "the leader refused a proposal".into());
        };
        c.run_for(1_000)?;
        if c.node(leader).is_some_and(|n| n.status().commit >= index) {
            return fail(c, "committed with a learner's acknowledgement".into());
        }
        if c.node(3).is_some_and(|n| n.status().role != Role::Follower) {
            return fail(c, "the learner campaigned".into());
        }
        (0..3).for_each(|k| c.connect(k));
        c.one(3, 4, true)?;
        Ok(())
    });
}

#[test]
fn a_node_without_configuration_never_campaigns_or_votes() {
    run(4, 3, None, |c| {
        c.check_one_leader()?;
        // Cut off, n4 hears from nobody: it must stay a term-0 follower.
        c.disconnect(3);
        for _ in 0..300 {
            c.run_for(10)?;
            let st = status(c, 3);
            if st.role != Role::Follower || st.term.0 != 0 {
                return fail(c, format!("the joining node campaigned: {st:?}"));
            }
        }
        c.connect(3);
        // And it disturbs nobody: the original three keep their term.
        let term = status(c, 0).term;
        c.run_for(1_000)?;
        let after: Vec<_> = (0..3).map(|i| status(c, i).term).collect();
        if after.iter().any(|&t| t != term) {
            return fail(c, format!("terms moved from {term}: {after:?}"));
        }
        Ok(())
    });
}

#[test]
fn a_leader_removing_itself_leads_until_the_removal_commits_without_counting_itself() {
    run(3, 3, None, |c| {
        c.one(1, 3, true)?;
        let leader = c.check_one_leader()?;
        let cut = (leader + 1) % 3;
        c.disconnect(cut);
        let Some((_, index)) = c.conf_change(leader, ConfChange::Remove(id(leader)))? else {
            return fail(c, "the leader refused to remove itself".into());
        };
        // Within an election timeout it still leads (later, check-quorum against the new
        // configuration, of which it hears only one of two voters, makes it step down).
        c.run_for(50)?;
        if status(c, leader).role != Role::Leader {
            return fail(
                c,
                "the leader stepped down before its removal committed".into(),
            );
        }
        // The leader plus one follower would be a majority of the old three, but the new
        // configuration is the two others, one of which is cut off.
        c.run_for(1_000)?;
        if (0..3).any(|k| status(c, k).commit >= index) {
            return fail(c, "the removal committed with the leader's own vote".into());
        }
        c.connect(cut);
        let mut committed = false;
        for _ in 0..300 {
            c.run_for(10)?;
            if (0..3).any(|k| status(c, k).commit >= index) {
                committed = true;
                break;
            }
        }
        if !committed {
            return fail(c, "the removal never committed".into());
        }
        c.run_for(50)?;
        if status(c, leader).role == Role::Leader {
            return fail(c, "the removed leader did not step down".into());
        }
        // The two others go on; the old leader never campaigns again.
        let new = c.check_one_leader()?;
        if new == leader {
            return fail(c, "the removed node leads again".into());
        }
        for cmd in 2..5 {
            c.one(cmd, 2, true)?;
        }
        for _ in 0..100 {
            c.run_for(10)?;
            if status(c, leader).role != Role::Follower {
                return fail(c, "the removed node campaigned".into());
            }
        }
        Ok(())
    });
}

#[test]
fn a_removed_server_that_missed_its_removal_does_not_disrupt() {
    run(5, 5, None, |c| {
        c.one(1, 5, true)?;
        let leader = c.check_one_leader()?;
        let x = (leader + 1) % 5;
        c.disconnect(x);
        change(c, ConfChange::Remove(id(x)))?;
        c.one(2, 4, true)?;
        // x times out again and again, but pre-vote and the leader lease keep it harmless
        // (thesis §4.2.3).
        c.run_for(2_000)?;
        c.connect(x);
        let leader = c.check_one_leader()?;
        let term = status(c, leader).term;
        c.run_for(3_000)?;
        let members: Vec<usize> = (0..5).filter(|&k| k != x).collect();
        for &k in &members {
            if status(c, k).term != term {
                return fail(c, format!("{} left term {term}", id(k)));
            }
        }
        c.one(3, 4, true)?;
        Ok(())
    });
}

#[test]
fn a_removed_node_rejoins_wiped_under_the_same_id() {
    run(3, 3, Some(10), |c| {
        let mut cmd = 0;
        for _ in 0..5 {
            cmd += 1;
            c.one(cmd, 3, true)?;
        }
        let leader = c.check_one_leader()?;
        let x = (leader + 1) % 3;
        change(c, ConfChange::Remove(id(x)))?;
        // Enough entries that the leader compacts past everything x had: it gets a snapshot
        // whose configuration does not contain it.
        for _ in 0..25 {
            cmd += 1;
            c.one(cmd, 2, true)?;
        }
        c.wipe_and_join(x)?;
        add_voter(c, x)?;
        cmd += 1;
        let index = c.one(cmd, 3, true)?;
        let st = status(c, x);
        if !st.membership.is_voter(id(x)) || st.membership.voters.len() != 3 {
            return fail(c, format!("{} should be a voter again: {st:?}", id(x)));
        }
        if c.applied(x) < index {
            return fail(c, "the rejoined node did not apply the log".into());
        }
        if c.sent_by_kind.get("InstallSnapshot").copied().unwrap_or(0) == 0 {
            return fail(c, "the rejoined node got no snapshot".into());
        }
        Ok(())
    });
}

#[test]
fn an_uncommitted_configuration_is_rolled_back_when_truncated() {
    run(4, 3, None, |c| {
        c.one(1, 3, true)?;
        let old = c.check_one_leader()?;
        c.disconnect(old);
        let Some((_, index)) = c.conf_change(old, ConfChange::AddLearner(id(3)))? else {
            return fail(c, "the leader refused the change".into());
        };
        // In effect at once, uncommitted.
        let st = status(c, old);
        if st.config_index != index || st.membership.learners != vec![id(3)] {
            return fail(c, format!("the change is not in effect on append: {st:?}"));
        }
        // The others elect a leader and overwrite index `index`.
        c.run_for(1_000)?;
        c.one(2, 2, true)?;
        c.one(3, 2, true)?;
        c.connect(old);
        c.one(4, 3, true)?;
        let st = status(c, old);
        if !st.membership.learners.is_empty() || st.config_index >= index {
            return fail(
                c,
                format!("the truncated change is still in effect: {st:?}"),
            );
        }
        Ok(())
    });
}

#[test]
fn one_change_at_a_time_and_only_current_voters_take_leadership() {
    run(4, 3, None, |c| {
        c.one(1, 3, true)?;
        let leader = c.check_one_leader()?;
        let others: Vec<usize> = (0..3).filter(|&k| k != leader).collect();
        others.iter().for_each(|&k| c.disconnect(k));
        if c.conf_change(leader, ConfChange::AddLearner(id(3)))?
            .is_none()
        {
            return fail(c, "the first change was refused".into());
        }
        // The first cannot commit while the followers are cut off: a second is refused.
        c.run_for(100)?;
        if c.conf_change(leader, ConfChange::Remove(id(others[0])))?
            .is_some()
        {
            return fail(c, "a second uncommitted change was accepted".into());
        }
        // A learner cannot be handed leadership.
        if c.transfer_leader(leader, 3)? {
            return fail(c, "leadership offered to a learner".into());
        }
        others.iter().for_each(|&k| c.connect(k));
        c.one(2, 4, true)?;
        Ok(())
    });
}
