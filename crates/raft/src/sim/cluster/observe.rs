//! What tests observe and wait for: the helpers of the MIT 6.5840 lab's `config.go`
//! (`checkOneLeader`, `checkTerms`, `nCommitted`, `one`, `wait`), plus fault presets.

use super::Cluster;
use crate::sim::Violation;
use crate::types::{Index, Role, Term};

impl Cluster {
    /// The node positions that are up and leader, with their terms.
    pub fn leaders(&self) -> Vec<(usize, Term)> {
        (0..self.len())
            .filter_map(|i| self.node(i).map(|n| (i, n.status())))
            .filter(|(_, s)| s.role == Role::Leader)
            .map(|(i, s)| (i, s.term))
            .collect()
    }

    /// Waits (up to 5 s of virtual time) for a leader among the connected, up nodes and returns
    /// it (the one of the highest term).
    pub fn check_one_leader(&mut self) -> Result<usize, Violation> {
        for _ in 0..10 {
            self.run_for(500)?;
            let live: Vec<(usize, Term)> = self
                .leaders()
                .into_iter()
                .filter(|&(i, _)| self.is_connected(i))
                .collect();
            if let Some(&(i, _)) = live.iter().max_by_key(|(_, t)| *t) {
                return Ok(i);
            }
        }
        Err(Violation {
            time_ms: self.now,
            what: format!(
                "liveness: expected one leader, got none; {}",
                self.describe()
            ),
        })
    }

    /// Fails if any up, connected node believes it leads.
    pub fn check_no_leader(&self) -> Result<(), Violation> {
        match self
            .leaders()
            .into_iter()
            .find(|&(i, _)| self.is_connected(i))
        {
            Some((i, t)) => Err(Violation {
                time_ms: self.now,
                what: format!("expected no leader, but node {i} leads {t}"),
            }),
            None => Ok(()),
        }
    }

    /// Waits until at least `n` up nodes applied `index` (MIT `wait`), for at most 10 s.
    pub fn wait(&mut self, index: Index, n: usize) -> Result<(), Violation> {
        let deadline = self.now + 10_000;
        while self.n_committed(index).0 < n {
            if self.now >= deadline {
                let what = format!(
                    "liveness: only {} nodes applied {index}; {}",
                    self.n_committed(index).0,
                    self.describe()
                );
                return Err(Violation {
                    time_ms: self.now,
                    what,
                });
            }
            self.run_for(10)?;
        }
        Ok(())
    }

    /// MIT unreliable network: 10% loss, and delays up to 27 ms.
    pub fn set_unreliable(&mut self, unreliable: bool) {
        self.net.drop = if unreliable { 0.1 } else { 0.0 };
        self.net.delay_ms = if unreliable { (1, 27) } else { (1, 10) };
    }

    /// MIT long reordering: some messages are held up to 2 s.
    pub fn set_long_reordering(&mut self, on: bool) {
        self.net.long_delay = if on { 0.1 } else { 0.0 };
        self.net.long_delay_ms = 2_000;
    }

    /// The index of the last applied entry on any up node.
    pub fn max_applied(&self) -> Index {
        (0..self.len())
            .filter(|&i| self.is_up(i))
            .map(|i| self.slots[i].sm.applied)
            .max()
            .unwrap_or_default()
    }

    /// The term every up, connected node agrees on, if they do.
    pub fn check_terms(&self) -> Option<Term> {
        let terms: Vec<Term> = (0..self.len())
            .filter(|&i| self.is_connected(i))
            .filter_map(|i| self.node(i))
            .map(|n| n.status().term)
            .collect();
        let first = *terms.first()?;
        terms.iter().all(|&t| t == first).then_some(first)
    }

    /// How many up nodes have applied `index`, and the command there (MIT `nCommitted`).
    pub fn n_committed(&self, index: Index) -> (usize, Option<u64>) {
        let count = (0..self.len())
            .filter(|&i| self.is_up(i) && self.slots[i].sm.applied >= index)
            .count();
        (
            count,
            self.acked
                .iter()
                .find(|&&(_, x)| x == index)
                .map(|&(c, _)| c),
        )
    }

    /// The applied index of node `i`.
    pub fn applied(&self, i: usize) -> Index {
        self.slots[i].sm.applied
    }

    /// MIT `one()`: submits `cmd` to whichever node is leader until it is acknowledged and
    /// applied by at least `expected` nodes; fails after 10 s of virtual time.
    pub fn one(&mut self, cmd: u64, expected: usize, retry: bool) -> Result<Index, Violation> {
        let deadline = self.now + 10_000;
        let mut start = 0;
        while self.now < deadline {
            let mut proposed = None;
            for k in 0..self.len() {
                let i = (start + k) % self.len();
                if let Some((_, index)) = self.propose(i, cmd)? {
                    proposed = Some(index);
                    start = i;
                    break;
                }
            }
            if let Some(index) = proposed {
                let until = self.now + 2_000;
                while self.now < until {
                    self.run_for(20)?;
                    let (n, c) = self.n_committed(index);
                    if n >= expected && c == Some(cmd) {
                        return Ok(index);
                    }
                }
                if !retry {
                    break;
                }
            } else {
                self.run_for(50)?;
            }
        }
        let what = format!(
            "liveness: one({cmd}) failed to reach agreement on {expected} nodes; {}",
            self.describe()
        );
        Err(Violation {
            time_ms: self.now,
            what,
        })
    }

    /// One line per node: role, term, leader, commit, applied, last index, links.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for i in 0..self.len() {
            let links: String = (0..self.len())
                .map(|j| if self.net.connected(i, j) { '+' } else { '-' })
                .collect();
            match self.node(i) {
                Some(n) => {
                    let s = n.status();
                    out += &format!(
                        "\n  {} {} {} leader={:?} commit={} applied={} last={} out={links} {}",
                        s.id,
                        s.role,
                        s.term,
                        s.leader,
                        s.commit,
                        self.slots[i].sm.applied,
                        s.last_index,
                        n.describe_progress()
                    );
                }
                None => out += &format!("\n  {} down", self.slots[i].id),
            }
        }
        out
    }

    /// Whether `cmd` was acknowledged.
    pub fn is_acked(&self, cmd: u64) -> bool {
        self.acked.iter().any(|&(c, _)| c == cmd)
    }
}
