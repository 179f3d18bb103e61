//! Scenario tests mirroring the MIT 6.5840 Raft lab tests (3A election, 3B agreement, 3C
//! persistence, 3D snapshots), each named after its original, on the deterministic simulator.
//! Every invariant of `raft::sim::Checker` is also checked after every event of every test.
//!
//! Virtual time: 10 ms ticks, so election timeouts are 100-200 ms and heartbeats go every 10 ms.
//! Differences from the lab: a new leader appends a no-op, so the first command lands at index 2.

use raft::sim::{Cluster, SimConfig, Violation};
use raft::Index;
use rand::Rng;

type R = Result<(), Violation>;

/// Runs a scenario on a few seeds; a violation panics with the seed. Seeds alternate between
/// one entry per AppendEntries and batches of 64.
fn run(nodes: usize, snapshot_after: Option<u64>, seeds: u64, scenario: fn(&mut Cluster) -> R) {
    for seed in 0..seeds {
        let mut cfg = SimConfig::new(nodes, seed);
        cfg.snapshot_after = snapshot_after;
        cfg.max_entries_per_msg = if seed & 1 == 0 { 1 } else { 64 };
        let mut c = Cluster::new(cfg);
        if let Err(v) = scenario(&mut c) {
            panic!("seed {seed}: {v}");
        }
    }
}

fn fail(c: &Cluster, what: String) -> R {
    Err(Violation {
        time_ms: c.now(),
        what,
    })
}

const ELECTION_MS: u64 = 200;

// ---------- 3A: leader election ----------

#[test]
fn initial_election() {
    run(3, None, 5, |c| {
        c.check_one_leader()?;
        c.run_for(50)?;
        let Some(term1) = c.check_terms() else {
            return fail(c, "servers disagree on term".into());
        };
        if term1.0 < 1 {
            return fail(c, "term is 0 after an election".into());
        }
        // With no failures, the term must not change.
        c.run_for(2 * ELECTION_MS * 5)?;
        if c.check_terms() != Some(term1) {
            return fail(c, format!("term changed from {term1} without failures"));
        }
        c.check_one_leader()?;
        Ok(())
    });
}

#[test]
fn re_election() {
    run(3, None, 5, |c| {
        let n = c.len();
        let leader1 = c.check_one_leader()?;
        c.disconnect(leader1);
        let leader2 = c.check_one_leader()?;
        // The old leader rejoining must not disturb the new one.
        c.connect(leader1);
        if c.check_one_leader()? != leader2 {
            return fail(c, "rejoining old leader deposed the new one".into());
        }
        c.disconnect(leader2);
        c.disconnect((leader2 + 1) % n);
        c.run_for(2 * ELECTION_MS)?;
        c.check_no_leader()?;
        c.connect((leader2 + 1) % n);
        c.check_one_leader()?;
        c.connect(leader2);
        c.check_one_leader()?;
        Ok(())
    });
}

#[test]
fn many_elections() {
    run(7, None, 2, |c| {
        c.check_one_leader()?;
        for _ in 0..10 {
            for _ in 0..3 {
                let i = c.rng().random_range(0..7);
                c.disconnect(i);
            }
            // At least 4 of 7 remain connected: a leader must be found.
            c.check_one_leader()?;
            for i in 0..7 {
                c.connect(i);
            }
        }
        c.check_one_leader()?;
        Ok(())
    });
}

// ---------- 3B: agreement ----------

#[test]
fn basic_agree() {
    run(3, None, 3, |c| {
        c.check_one_leader()?;
        // The leader's no-op is applied first; commands follow it one index at a time.
        let first = c.max_applied().0 + 1;
        for k in 0..3 {
            let expect = Index(first + k);
            if c.n_committed(expect).0 > 0 {
                return fail(c, "some node committed before start".into());
            }
            let index = c.one(100 + k, 3, false)?;
            if index != expect {
                return fail(c, format!("got index {index}, expected {expect}"));
            }
        }
        Ok(())
    });
}

#[test]
fn fail_agree() {
    run(3, None, 3, |c| {
        c.one(101, 3, false)?;
        let leader = c.check_one_leader()?;
        c.disconnect((leader + 1) % 3);
        for cmd in 102..=105 {
            c.one(cmd, 2, false)?;
        }
        c.connect((leader + 1) % 3);
        c.one(106, 3, true)?;
        c.one(107, 3, true)?;
        Ok(())
    });
}

#[test]
fn fail_no_agree() {
    run(5, None, 3, |c| {
        c.one(10, 5, false)?;
        let leader = c.check_one_leader()?;
        for k in 1..=3 {
            c.disconnect((leader + k) % 5);
        }
        let Some((_, index)) = c.propose(leader, 20)? else {
            return fail(c, "leader rejected start".into());
        };
        c.run_for(2 * ELECTION_MS)?;
        if c.n_committed(index).0 > 0 {
            return fail(c, format!("{index} committed without a majority"));
        }
        for k in 1..=3 {
            c.connect((leader + k) % 5);
        }
        let leader2 = c.check_one_leader()?;
        if c.propose(leader2, 30)?.is_none() {
            return fail(c, "new leader rejected start".into());
        }
        c.one(1000, 5, true)?;
        Ok(())
    });
}

#[test]
fn concurrent_starts() {
    run(3, None, 3, |c| {
        let leader = c.check_one_leader()?;
        let mut placed = Vec::new();
        for cmd in 100..105 {
            match c.propose(leader, cmd)? {
                Some(at) => placed.push((cmd, at)),
                None => return fail(c, "leader rejected a start".into()),
            }
        }
        if placed
            .windows(2)
            .any(|w| w[0].1 .0 != w[1].1 .0 || w[1].1 .1 != Index(w[0].1 .1 .0 + 1))
        {
            return fail(
                c,
                format!("concurrent starts not consecutive in one term: {placed:?}"),
            );
        }
        let last = placed.last().expect("five").1 .1;
        c.wait(last, 3)?;
        for (cmd, _) in placed {
            if !c.is_acked(cmd) {
                return fail(c, format!("{cmd} not acknowledged"));
            }
        }
        Ok(())
    });
}

#[test]
fn rejoin() {
    run(3, None, 3, |c| {
        c.one(101, 3, true)?;
        let leader1 = c.check_one_leader()?;
        c.disconnect(leader1);
        // The partitioned leader accepts commands it can never commit.
        for cmd in [102, 103, 104] {
            c.propose(leader1, cmd)?;
        }
        c.one(103, 2, true)?;
        let leader2 = c.check_one_leader()?;
        c.disconnect(leader2);
        c.connect(leader1);
        c.one(104, 2, true)?;
        c.connect(leader2);
        c.one(105, 3, true)?;
        Ok(())
    });
}

#[test]
fn backup() {
    run(5, None, 2, |c| {
        let mut cmd = 1000u64;
        let mut next = || {
            cmd += 1;
            cmd
        };
        c.one(next(), 5, true)?;
        let leader1 = c.check_one_leader()?;
        for k in 2..=4 {
            c.disconnect((leader1 + k) % 5);
        }
        // Lots of commands that will not commit.
        for _ in 0..50 {
            c.propose(leader1, next())?;
        }
        c.run_for(ELECTION_MS / 2)?;
        c.disconnect(leader1);
        c.disconnect((leader1 + 1) % 5);
        for k in 2..=4 {
            c.connect((leader1 + k) % 5);
        }
        // Lots of commands to the new group.
        for _ in 0..50 {
            c.one(next(), 3, true)?;
        }
        let leader2 = c.check_one_leader()?;
        let other = (2..=4)
            .map(|k| (leader1 + k) % 5)
            .find(|&i| i != leader2)
            .expect("three nodes");
        c.disconnect(other);
        for _ in 0..50 {
            c.propose(leader2, next())?;
        }
        c.run_for(ELECTION_MS / 2)?;
        for i in 0..5 {
            c.disconnect(i);
        }
        c.connect(leader1);
        c.connect((leader1 + 1) % 5);
        c.connect(other);
        // The old partition must catch up, backing up over a whole term at a time.
        for _ in 0..50 {
            c.one(next(), 3, true)?;
        }
        for i in 0..5 {
            c.connect(i);
        }
        c.one(next(), 5, true)?;
        Ok(())
    });
}

#[test]
fn count() {
    run(3, None, 3, |c| {
        // Budgets: heartbeats go every tick (10 ms) to 2 peers, each answered.
        let heartbeat_msgs_per_ms = 4.0 / 10.0;
        let t0 = c.now();
        c.check_one_leader()?;
        let elect = c.messages_sent as f64 - heartbeat_msgs_per_ms * (c.now() - t0) as f64;
        if elect > 30.0 {
            return fail(
                c,
                format!("too many messages ({elect}) for the initial election"),
            );
        }
        let (m1, t1) = (c.messages_sent, c.now());
        let iters = 10;
        for k in 0..iters {
            c.one(500 + k, 3, false)?;
        }
        let extra =
            (c.messages_sent - m1) as f64 - heartbeat_msgs_per_ms * 1.1 * (c.now() - t1) as f64;
        if extra > (4 * (iters + 1 + 3)) as f64 {
            return fail(
                c,
                format!("too many messages ({extra}) for {iters} entries"),
            );
        }
        let (m2, t2) = (c.messages_sent, c.now());
        c.run_for(1_000)?;
        let idle = (c.messages_sent - m2) as f64 / ((c.now() - t2) as f64 / 1000.0);
        if idle > heartbeat_msgs_per_ms * 1000.0 * 1.1 {
            return fail(c, format!("too many messages per idle second: {idle}"));
        }
        Ok(())
    });
}

// ---------- 3C: persistence ----------

fn crash_restart(c: &mut Cluster, i: usize) -> R {
    c.crash(i);
    c.restart(i)
}

#[test]
fn persist1() {
    run(3, None, 3, |c| {
        c.one(11, 3, true)?;
        for i in 0..3 {
            crash_restart(c, i)?;
        }
        c.one(12, 3, true)?;
        let leader1 = c.check_one_leader()?;
        crash_restart(c, leader1)?;
        c.one(13, 3, true)?;
        let leader2 = c.check_one_leader()?;
        c.crash(leader2);
        let index = c.one(14, 2, true)?;
        c.restart(leader2)?;
        c.wait(index, 3)?;
        let i3 = (c.check_one_leader()? + 1) % 3;
        c.crash(i3);
        c.one(15, 2, true)?;
        c.restart(i3)?;
        c.one(16, 3, true)?;
        Ok(())
    });
}

#[test]
fn persist2() {
    run(5, None, 2, |c| {
        let mut index = 1;
        for _ in 0..5 {
            c.one(10 + index, 5, true)?;
            index += 1;
            let leader1 = c.check_one_leader()?;
            c.crash((leader1 + 1) % 5);
            c.crash((leader1 + 2) % 5);
            c.one(10 + index, 3, true)?;
            index += 1;
            for k in [0, 3, 4] {
                c.crash((leader1 + k) % 5);
            }
            c.restart((leader1 + 1) % 5)?;
            c.restart((leader1 + 2) % 5)?;
            c.run_for(ELECTION_MS)?;
            c.restart((leader1 + 3) % 5)?;
            c.one(10 + index, 3, true)?;
            index += 1;
            c.restart((leader1 + 4) % 5)?;
            c.restart(leader1)?;
        }
        c.one(1000, 5, true)?;
        Ok(())
    });
}

#[test]
fn persist3() {
    run(3, None, 3, |c| {
        c.one(101, 3, true)?;
        let leader = c.check_one_leader()?;
        c.disconnect((leader + 2) % 3);
        c.one(102, 2, true)?;
        c.crash(leader);
        c.crash((leader + 1) % 3);
        c.connect((leader + 2) % 3);
        c.restart(leader)?;
        c.one(103, 2, true)?;
        c.restart((leader + 1) % 3)?;
        c.one(104, 3, true)?;
        Ok(())
    });
}

/// Figure 8 of the paper: leaders crash often, right after accepting commands, so entries of
/// old terms are at risk of being committed by counting (which §5.4.2 forbids).
#[test]
fn figure8() {
    run(5, None, 6, |c| {
        c.one(1, 1, true)?;
        let mut up = 5;
        for iter in 0..1000u64 {
            let mut leader = None;
            for i in 0..5 {
                if c.propose(i, 10_000 + iter)?.is_some() {
                    leader = Some(i);
                }
            }
            let ms = if c.rng().random_bool(0.1) {
                c.rng().random_range(0..ELECTION_MS / 2)
            } else {
                c.rng().random_range(0..13)
            };
            c.run_for(ms)?;
            if let Some(l) = leader {
                c.crash(l);
                up -= 1;
            }
            if up < 3 {
                let s = c.rng().random_range(0..5);
                if !c.is_up(s) {
                    c.restart(s)?;
                    up += 1;
                }
            }
        }
        for i in 0..5 {
            c.restart(i)?;
        }
        c.one(99, 5, true)?;
        Ok(())
    });
}

#[test]
fn unreliable_agree() {
    run(5, None, 2, |c| {
        c.set_unreliable(true);
        for iter in 1..50u64 {
            for j in 0..4 {
                // MIT runs these concurrently; here they go to the leader back to back.
                if let Some(l) = c.leaders().first().map(|&(i, _)| i) {
                    c.propose(l, 100 * iter + j)?;
                }
            }
            c.one(iter, 1, true)?;
        }
        c.set_unreliable(false);
        c.one(100, 5, true)?;
        Ok(())
    });
}

#[test]
fn figure8_unreliable() {
    run(5, None, 2, |c| {
        c.set_unreliable(true);
        c.one(1, 1, true)?;
        let mut up = 5;
        for iter in 0..1000u64 {
            if iter == 200 {
                c.set_long_reordering(true);
            }
            let mut leader = None;
            for i in 0..5 {
                if c.propose(i, 10_000 + iter)?.is_some() && c.is_connected(i) {
                    leader = Some(i);
                }
            }
            let ms = if c.rng().random_bool(0.1) {
                c.rng().random_range(0..ELECTION_MS / 2)
            } else {
                c.rng().random_range(0..13)
            };
            c.run_for(ms)?;
            if let Some(l) = leader {
                if c.rng().random_bool(0.5) {
                    c.disconnect(l);
                    up -= 1;
                }
            }
            if up < 3 {
                let s = c.rng().random_range(0..5);
                if !c.is_connected(s) {
                    c.connect(s);
                    up += 1;
                }
            }
        }
        for i in 0..5 {
            c.connect(i);
        }
        c.set_long_reordering(false);
        c.set_unreliable(false);
        c.run_for(2_000)?; // let held messages drain
        c.one(99, 5, true)?;
        Ok(())
    });
}

/// Clients keep proposing while nodes crash, restart, disconnect and reconnect; afterwards
/// every acknowledged value must be in the final log (the checker verifies state machine
/// safety for every apply along the way).
fn churn(c: &mut Cluster, unreliable: bool) -> R {
    c.set_unreliable(unreliable);
    let mut cmd = 1u64;
    let end = c.now() + 5_000;
    while c.now() < end {
        for i in 0..5 {
            cmd += 1;
            c.propose(i, cmd)?;
        }
        let what = c.rng().random_range(0..100);
        let i = c.rng().random_range(0..5);
        // As in the lab, repairs are likelier than faults, so a majority is usually up.
        match what {
            0..=14 => c.disconnect(i),
            15..=54 => c.connect(i),
            55..=62 => c.crash(i),
            63..=92 => c.restart(i)?,
            _ => {}
        }
        let ms = c.rng().random_range(5..70);
        c.run_for(ms)?;
    }
    c.set_unreliable(false);
    for i in 0..5 {
        c.restart(i)?;
        c.connect(i);
    }
    let last = c.one(1, 5, true)?;
    if c.acked.len() < 10 {
        return fail(
            c,
            format!("only {} values acknowledged during churn", c.acked.len()),
        );
    }
    if let Some(&(cmd, index)) = c.acked.iter().find(|&&(_, index)| index > last) {
        return fail(
            c,
            format!("acknowledged {cmd} at {index} beyond the final entry {last}"),
        );
    }
    Ok(())
}

#[test]
fn reliable_churn() {
    run(5, None, 2, |c| churn(c, false));
}

#[test]
fn unreliable_churn() {
    run(5, None, 2, |c| churn(c, true));
}

// ---------- 3D: snapshots ----------

const SNAPSHOT_INTERVAL: u64 = 10;

/// Fails unless some node compacted its log.
fn check_compacted(c: &Cluster) -> R {
    let compacted = (0..c.len())
        .filter_map(|i| c.node(i))
        .any(|n| n.snapshot_meta().is_some());
    if !compacted {
        return fail(c, "no node ever compacted its log".into());
    }
    Ok(())
}

fn snapshot_common(c: &mut Cluster, disconnect: bool, reliable: bool, crash: bool) -> R {
    c.set_unreliable(!reliable);
    let n = c.len();
    let mut cmd = 1u64;
    c.one(cmd, n, true)?;
    let mut leader1 = c.check_one_leader()?;
    let installs_before = c.sent_by_kind.get("InstallSnapshot").copied().unwrap_or(0);
    for _ in 0..15 {
        let (victim, sender) = ((leader1 + 1) % n, leader1);
        if disconnect {
            c.disconnect(victim);
        }
        if crash {
            c.crash(victim);
        }
        // Enough entries that the victim falls behind the leader's snapshot.
        for _ in 0..=SNAPSHOT_INTERVAL {
            cmd += 1;
            c.propose(sender, cmd)?;
        }
        cmd += 1;
        c.one(cmd, n - 1, true)?;
        if disconnect {
            c.connect(victim);
        }
        if crash {
            c.restart(victim)?;
        }
        cmd += 1;
        c.one(cmd, n, true)?;
        leader1 = c.check_one_leader()?;
    }
    check_compacted(c)?;
    let installs = c.sent_by_kind.get("InstallSnapshot").copied().unwrap_or(0) - installs_before;
    if (disconnect || crash) && installs == 0 {
        return fail(c, "no InstallSnapshot was sent".into());
    }
    Ok(())
}

#[test]
fn snapshot_basic() {
    run(3, Some(SNAPSHOT_INTERVAL), 3, |c| {
        snapshot_common(c, false, true, false)
    });
}

#[test]
fn snapshot_install() {
    run(3, Some(SNAPSHOT_INTERVAL), 3, |c| {
        snapshot_common(c, true, true, false)
    });
}

#[test]
fn snapshot_install_unreliable() {
    run(3, Some(SNAPSHOT_INTERVAL), 3, |c| {
        snapshot_common(c, true, false, false)
    });
}

#[test]
fn snapshot_install_crash() {
    run(3, Some(SNAPSHOT_INTERVAL), 3, |c| {
        snapshot_common(c, false, true, true)
    });
}

#[test]
fn snapshot_install_uncrash() {
    run(3, Some(SNAPSHOT_INTERVAL), 3, |c| {
        snapshot_common(c, false, false, true)
    });
}

#[test]
fn snapshot_all_crash() {
    run(3, Some(SNAPSHOT_INTERVAL), 3, |c| {
        let mut cmd = 1u64;
        c.one(cmd, 3, true)?;
        for _ in 0..5 {
            for _ in 0..=SNAPSHOT_INTERVAL {
                cmd += 1;
                c.one(cmd, 3, true)?;
            }
            let index1 = {
                cmd += 1;
                c.one(cmd, 3, true)?
            };
            for i in 0..3 {
                c.crash(i);
            }
            for i in 0..3 {
                c.restart(i)?;
            }
            cmd += 1;
            let index2 = c.one(cmd, 3, true)?;
            if index2 <= index1 {
                return fail(c, format!("index decreased from {index1} to {index2}"));
            }
        }
        check_compacted(c)
    });
}

#[test]
fn snapshot_init() {
    run(3, Some(SNAPSHOT_INTERVAL), 3, |c| {
        let mut cmd = 1u64;
        c.one(cmd, 3, true)?;
        for _ in 0..=SNAPSHOT_INTERVAL {
            cmd += 1;
            c.one(cmd, 3, true)?;
        }
        for i in 0..3 {
            c.crash(i);
        }
        for i in 0..3 {
            c.restart(i)?;
        }
        // Restarted nodes come back from their snapshot.
        for i in 0..3 {
            if c.node(i).and_then(|n| n.snapshot_meta()).is_none() {
                return fail(c, format!("node {i} restarted without its snapshot"));
            }
        }
        cmd += 1;
        c.one(cmd, 3, true)?;
        for i in 0..3 {
            c.crash(i);
        }
        for i in 0..3 {
            c.restart(i)?;
        }
        cmd += 1;
        c.one(cmd, 3, true)?;
        Ok(())
    });
}

// ---------- beyond the lab: pre-vote and check-quorum (thesis §9.6, §6.2) ----------

/// A follower cut off for many election timeouts keeps failing pre-votes, so its term does
/// not grow, and when it returns the leader keeps leading in the same term.
#[test]
fn pre_vote_rejoining_node_does_not_disrupt() {
    run(3, None, 3, |c| {
        let leader = c.check_one_leader()?;
        let term = c.check_terms().expect("agreed term");
        let follower = (leader + 1) % 3;
        c.disconnect(follower);
        c.run_for(20 * ELECTION_MS)?;
        let t = c.node(follower).expect("up").status().term;
        if t != term {
            return fail(c, format!("isolated follower moved from {term} to {t}"));
        }
        c.connect(follower);
        c.one(7, 3, true)?;
        if c.check_one_leader()? != leader || c.check_terms() != Some(term) {
            return fail(c, "rejoining follower disrupted the leader".into());
        }
        Ok(())
    });
}

/// A leader that cannot hear a majority steps down within about an election timeout, and
/// stops serving reads.
#[test]
fn check_quorum_isolated_leader_steps_down() {
    run(5, None, 3, |c| {
        let leader = c.check_one_leader()?;
        c.disconnect(leader);
        c.run_for(3 * ELECTION_MS)?;
        let role = c.node(leader).expect("up").status().role;
        if role == raft::Role::Leader {
            return fail(c, "isolated leader still leads".into());
        }
        if c.read(leader)? {
            return fail(c, "deposed leader accepted a read".into());
        }
        Ok(())
    });
}

// ---------- leadership transfer (thesis §3.10) ----------

#[test]
fn leadership_transfer_hands_over_before_an_election_timeout() {
    run(3, None, 6, |c| {
        let leader = c.check_one_leader()?;
        c.one(101, 3, true)?;
        let to = (leader + 1) % 3;
        let term = c.node(leader).map(|n| n.status().term);
        if !c.transfer_leader(leader, to)? {
            return fail(c, "the leader refused to transfer".into());
        }
        // Well under the 100 ms minimum election timeout: a round trip or two.
        c.run_for(60)?;
        let leaders: Vec<usize> = c.leaders().into_iter().map(|(i, _)| i).collect();
        if leaders != [to] {
            return fail(
                c,
                format!("leaders {leaders:?} 60 ms after handing to {to}"),
            );
        }
        if c.node(to).map(|n| n.status().term) <= term {
            return fail(c, "the new leader did not start a new term".into());
        }
        c.one(102, 3, true)?;
        Ok(())
    });
}

#[test]
fn leadership_transfer_to_an_unreachable_node_is_abandoned() {
    run(3, None, 6, |c| {
        let leader = c.check_one_leader()?;
        c.one(201, 3, true)?;
        let to = (leader + 1) % 3;
        c.disconnect(to);
        c.transfer_leader(leader, to)?;
        // Proposals are refused while the transfer lasts, then taken again.
        if c.propose(leader, 202)?.is_some() {
            return fail(c, "a proposal was taken during the transfer".into());
        }
        c.run_for(ELECTION_MS)?;
        if c.leaders().into_iter().map(|(i, _)| i).collect::<Vec<_>>() != [leader] {
            return fail(
                c,
                "the leader changed although the transferee was unreachable".into(),
            );
        }
        c.one(203, 2, true)?;
        c.connect(to);
        c.one(204, 3, true)?;
        Ok(())
    });
}
