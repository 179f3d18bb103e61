//! The model's disk: what a server handed to its disk writer, written one part at a time, and
//! what is durable. A crash loses the queue and keeps only what was written; a restart hands
//! that back to `RawNode::new`.

use super::wire::{entry_key, show_entry};
use raft::{Entry, HardState, PersistTask};
use std::collections::VecDeque;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The order in which the disk writer writes the parts of one task (as `raft::sim::WriteOrder`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteOrder {
    /// Term and vote first, with a commit index that does not cover the entries that follow:
    /// raftkv's rule.
    TermFirst,
    /// PLANTED: entries first, then term and vote. A crash between leaves an entry whose term
    /// is above the durable term, which `RawNode::new` refuses.
    EntriesFirst,
}

/// How many model steps a write takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiskSteps {
    /// Written when handed out (a synchronous disk): a crash never lands inside a write.
    Immediate,
    /// One step per task: a crash may land between a task's hand-off and its write (the vote
    /// not yet durable, say), and messages wait for it.
    PerTask,
    /// One step per part of a task: a crash may also land between a task's hard state and its
    /// entries (torn writes).
    PerPart,
}

/// The disk writer of every server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DiskModel {
    pub order: WriteOrder,
    pub steps: DiskSteps,
}

/// What survives a crash (stateright's actor storage): the hard state and the entries written
/// so far, and how often the server restarted (so that the model can bound restarts).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Durable {
    pub hard_state: HardState,
    pub entries: Vec<Entry>,
    pub restarts: u8,
}

impl Durable {
    fn write(&mut self, part: &Part) {
        match part {
            Part::HardState(hs) => self.hard_state = hs.clone(),
            Part::Entries(entries) => {
                if let Some(first) = entries.first() {
                    self.entries.retain(|e| e.index < first.index);
                    self.entries.extend(entries.iter().cloned());
                }
            }
        }
    }
}

impl Hash for Durable {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let hs = &self.hard_state;
        (hs.term.0, hs.vote.map(|v| v.0), hs.commit.0).hash(state);
        for e in &self.entries {
            entry_key(e).hash(state);
        }
        self.restarts.hash(state);
    }
}

impl fmt::Debug for Durable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hs = &self.hard_state;
        let log: Vec<String> = self.entries.iter().map(show_entry).collect();
        write!(
            f,
            "disk: {} vote={:?} commit={} log=[{}] restarts={}",
            hs.term,
            hs.vote.map(|v| v.0),
            hs.commit,
            log.join(", "),
            self.restarts
        )
    }
}

/// One write of a task.
#[derive(Clone, PartialEq, Eq)]
pub enum Part {
    HardState(HardState),
    Entries(Vec<Entry>),
}

impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::HardState(hs) => write!(
                f,
                "hard state {} vote={:?} commit={}",
                hs.term,
                hs.vote.map(|v| v.0),
                hs.commit
            ),
            Part::Entries(entries) => {
                let log: Vec<String> = entries.iter().map(show_entry).collect();
                write!(f, "entries [{}]", log.join(", "))
            }
        }
    }
}

/// A task handed to the disk writer, with the parts not yet written.
#[derive(Clone)]
pub struct Job {
    pub task: PersistTask,
    pub parts: VecDeque<Part>,
}

impl Job {
    pub fn new(task: PersistTask, order: WriteOrder) -> Job {
        let entries = task.entries().to_vec();
        let mut parts = VecDeque::new();
        match order {
            WriteOrder::TermFirst => {
                if let Some(hs) = task.hard_state() {
                    let mut hs = hs.clone();
                    // The durable commit must not cover entries this same task replaces: a
                    // crash between the two parts would otherwise restore a commit beyond
                    // the durable log (raftkv's storage rule).
                    if let Some(first) = entries.first() {
                        hs.commit = hs.commit.min(first.index.prev());
                    }
                    parts.push_back(Part::HardState(hs));
                }
                if !entries.is_empty() {
                    parts.push_back(Part::Entries(entries));
                }
            }
            WriteOrder::EntriesFirst => {
                if !entries.is_empty() {
                    parts.push_back(Part::Entries(entries));
                }
                if let Some(hs) = task.hard_state() {
                    parts.push_back(Part::HardState(hs.clone()));
                }
            }
        }
        Job { task, parts }
    }

    /// Writes the next part, if any, to `durable`.
    pub fn write_next(&mut self, durable: &mut Durable) -> Option<Part> {
        let part = self.parts.pop_front()?;
        durable.write(&part);
        Some(part)
    }
}

impl Hash for Job {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The task's waiting messages are private to it; their number stands in for them
        // (what they say follows from the node's state when the task was made).
        self.task.message_count().hash(state);
        for part in &self.parts {
            match part {
                Part::HardState(hs) => {
                    (0u8, hs.term.0, hs.vote.map(|v| v.0), hs.commit.0).hash(state)
                }
                Part::Entries(entries) => {
                    1u8.hash(state);
                    for e in entries {
                        entry_key(e).hash(state);
                    }
                }
            }
        }
    }
}

impl PartialEq for Job {
    fn eq(&self, other: &Job) -> bool {
        self.task == other.task && self.parts == other.parts
    }
}

impl Eq for Job {}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "to write {:?}, then send {} message(s)",
            self.parts,
            self.task.message_count()
        )
    }
}
