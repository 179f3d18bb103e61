//! The replicated state machine: a map of string keys to string values, plus client sessions.
//!
//! Every replica applies the same committed commands in the same order, so everything here is
//! deterministic: no clocks, no randomness, and session eviction is decided by log index.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::protocol::Session;

/// How many client sessions are remembered. When more clients write, the one whose last write
/// is oldest (by log index) is forgotten; a retry of that client's last write would then apply
/// again. 100k sessions cost a few MiB.
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

/// First byte of every encoded command, so the format can evolve.
const COMMAND_FORMAT: u8 = 1;
/// First byte of every encoded snapshot.
const SNAPSHOT_FORMAT: u8 = 1;

/// A state-changing operation, as it travels in a log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Write {
        key: String,
        value: String,
    },
    Cas {
        key: String,
        from: Option<String>,
        to: String,
    },
}

/// A command with its optional session stamp: the payload of a log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub session: Option<Session>,
    pub command: Command,
}

/// The result of applying one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The write or cas took effect (now, or on an earlier attempt with the same session seq).
    Done,
    /// The cas did not take effect: the key held this value (`None` = absent).
    CasMismatch(Option<String>),
    /// The session seq is older than the client's last applied one; nothing was applied.
    StaleSeq,
}

/// Errors decoding commands or snapshots (only possible through a bug or a version skew).
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("unknown command format {0}")]
    CommandFormat(u8),
    #[error("unknown snapshot format {0}")]
    SnapshotFormat(u8),
    #[error("empty payload")]
    Empty,
    #[error("undecodable payload: {0}")]
    Decode(#[from] postcard::Error),
}

impl Proposal {
    /// Encodes the proposal as a log entry payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![COMMAND_FORMAT];
        // Serialising owned strings and enums into a Vec cannot fail.
        out.extend(postcard::to_stdvec(self).unwrap_or_default());
        out
    }

    /// Decodes a log entry payload.
    pub fn decode(bytes: &[u8]) -> Result<Proposal, KvError> {
        match bytes.split_first() {
            None => Err(KvError::Empty),
            Some((&COMMAND_FORMAT, rest)) => Ok(postcard::from_bytes(rest)?),
            Some((&other, _)) => Err(KvError::CommandFormat(other)),
        }
    }
}

/// What the state machine remembers per client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SessionState {
    seq: u64,
    outcome: Outcome,
    /// Log index of the client's last applied command; orders eviction.
    index: u64,
}

/// The key-value map and the client sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvStore {
    data: HashMap<String, String>,
    sessions: HashMap<String, SessionState>,
    /// Sessions by the index of their last command, oldest first, for eviction.
    by_index: BTreeMap<u64, String>,
    max_sessions: usize,
}

#[derive(Serialize, Deserialize)]
struct SnapshotData {
    data: Vec<(String, String)>,
    sessions: Vec<(String, SessionState)>,
}

impl Default for KvStore {
    fn default() -> Self {
        KvStore::new(DEFAULT_MAX_SESSIONS)
    }
}

impl KvStore {
    pub fn new(max_sessions: usize) -> Self {
        KvStore {
            data: HashMap::new(),
            sessions: HashMap::new(),
            by_index: BTreeMap::new(),
            max_sessions: max_sessions.max(1),
        }
    }

    /// The current value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.data.get(key).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Applies a committed proposal found at log `index`.
    pub fn apply(&mut self, index: u64, proposal: &Proposal) -> Outcome {
        let Some(session) = &proposal.session else {
            return self.execute(&proposal.command);
        };
        if let Some(state) = self.sessions.get(&session.client) {
            if session.seq == state.seq {
                // A retry of the last applied command: answer as the first time, apply nothing.
                return state.outcome.clone();
            }
            if session.seq < state.seq {
                return Outcome::StaleSeq;
            }
        }
        let outcome = self.execute(&proposal.command);
        self.remember(&session.client, session.seq, outcome.clone(), index);
        outcome
    }

    fn execute(&mut self, command: &Command) -> Outcome {
        match command {
            Command::Write { key, value } => {
                self.data.insert(key.clone(), value.clone());
                Outcome::Done
            }
            Command::Cas { key, from, to } => {
                let current = self.data.get(key);
                if current == from.as_ref() {
                    self.data.insert(key.clone(), to.clone());
                    Outcome::Done
                } else {
                    Outcome::CasMismatch(current.cloned())
                }
            }
        }
    }

    fn remember(&mut self, client: &str, seq: u64, outcome: Outcome, index: u64) {
        if let Some(old) = self.sessions.get(client) {
            self.by_index.remove(&old.index);
        }
        self.sessions.insert(
            client.to_string(),
            SessionState {
                seq,
                outcome,
                index,
            },
        );
        self.by_index.insert(index, client.to_string());
        while self.sessions.len() > self.max_sessions {
            let Some((_, oldest)) = self.by_index.pop_first() else {
                break;
            };
            self.sessions.remove(&oldest);
        }
    }

    /// Serialises the whole state (data and sessions) for a Raft snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut data: Vec<_> = self
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        data.sort_unstable();
        let mut sessions: Vec<_> = self
            .sessions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        sessions.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut out = vec![SNAPSHOT_FORMAT];
        out.extend(postcard::to_stdvec(&SnapshotData { data, sessions }).unwrap_or_default());
        out
    }

    /// Rebuilds the state from [`KvStore::snapshot`] bytes. Empty bytes are the empty state
    /// (a Raft snapshot taken before anything was applied may carry no data).
    pub fn restore(bytes: &[u8], max_sessions: usize) -> Result<KvStore, KvError> {
        let mut kv = KvStore::new(max_sessions);
        let snap: SnapshotData = match bytes.split_first() {
            None => return Ok(kv),
            Some((&SNAPSHOT_FORMAT, rest)) => postcard::from_bytes(rest)?,
            Some((&other, _)) => return Err(KvError::SnapshotFormat(other)),
        };
        kv.data = snap.data.into_iter().collect();
        for (client, state) in snap.sessions {
            kv.by_index.insert(state.index, client.clone());
            kv.sessions.insert(client, state);
        }
        Ok(kv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(key: &str, value: &str) -> Proposal {
        Proposal {
            session: None,
            command: Command::Write {
                key: key.into(),
                value: value.into(),
            },
        }
    }

    fn cas(key: &str, from: Option<&str>, to: &str) -> Proposal {
        Proposal {
            session: None,
            command: Command::Cas {
                key: key.into(),
                from: from.map(Into::into),
                to: to.into(),
            },
        }
    }

    fn with_session(mut p: Proposal, client: &str, seq: u64) -> Proposal {
        p.session = Some(Session {
            client: client.into(),
            seq,
        });
        p
    }

    #[test]
    fn write_read_cas() {
        let mut kv = KvStore::default();
        assert_eq!(kv.get("k"), None);
        assert_eq!(kv.apply(1, &write("k", "a")), Outcome::Done);
        assert_eq!(kv.get("k"), Some("a"));
        assert_eq!(
            kv.apply(2, &cas("k", Some("x"), "b")),
            Outcome::CasMismatch(Some("a".into()))
        );
        assert_eq!(kv.get("k"), Some("a"));
        assert_eq!(kv.apply(3, &cas("k", Some("a"), "b")), Outcome::Done);
        assert_eq!(kv.get("k"), Some("b"));
        // cas from null: only when absent.
        assert_eq!(
            kv.apply(4, &cas("k", None, "c")),
            Outcome::CasMismatch(Some("b".into()))
        );
        assert_eq!(
            kv.apply(5, &cas("j", Some("a"), "c")),
            Outcome::CasMismatch(None)
        );
        assert_eq!(kv.apply(6, &cas("j", None, "c")), Outcome::Done);
        assert_eq!(kv.get("j"), Some("c"));
    }

    #[test]
    fn a_retried_write_applies_once() {
        let mut kv = KvStore::default();
        assert_eq!(
            kv.apply(1, &with_session(write("k", "a"), "c1", 1)),
            Outcome::Done
        );
        assert_eq!(kv.apply(2, &write("k", "b")), Outcome::Done);
        // The retry of (c1, 1) must not overwrite "b".
        assert_eq!(
            kv.apply(3, &with_session(write("k", "a"), "c1", 1)),
            Outcome::Done
        );
        assert_eq!(kv.get("k"), Some("b"));
    }

    #[test]
    fn a_retried_cas_returns_its_first_outcome() {
        let mut kv = KvStore::default();
        kv.apply(1, &write("k", "a"));
        let c = with_session(cas("k", Some("a"), "b"), "c1", 7);
        assert_eq!(kv.apply(2, &c), Outcome::Done);
        // Applied again it would now mismatch; the session answers Done as the first time.
        assert_eq!(kv.apply(3, &c), Outcome::Done);
        let m = with_session(cas("k", Some("zz"), "q"), "c1", 8);
        assert_eq!(kv.apply(4, &m), Outcome::CasMismatch(Some("b".into())));
        kv.apply(5, &write("k", "zz"));
        // The retry of the mismatched cas must not now succeed.
        assert_eq!(kv.apply(6, &m), Outcome::CasMismatch(Some("b".into())));
        assert_eq!(kv.get("k"), Some("zz"));
    }

    #[test]
    fn an_older_seq_is_stale_and_not_applied() {
        let mut kv = KvStore::default();
        kv.apply(1, &with_session(write("k", "a"), "c1", 5));
        assert_eq!(
            kv.apply(2, &with_session(write("k", "old"), "c1", 4)),
            Outcome::StaleSeq
        );
        assert_eq!(kv.get("k"), Some("a"));
        // Sessions are per client.
        assert_eq!(
            kv.apply(3, &with_session(write("k", "b"), "c2", 1)),
            Outcome::Done
        );
        assert_eq!(kv.get("k"), Some("b"));
    }

    #[test]
    fn the_oldest_session_is_evicted_deterministically() {
        let mut kv = KvStore::new(2);
        kv.apply(1, &with_session(write("k", "a"), "c1", 1));
        kv.apply(2, &with_session(write("k", "b"), "c2", 1));
        kv.apply(3, &with_session(write("k", "c"), "c1", 2)); // c1 is now the newest
        kv.apply(4, &with_session(write("k", "d"), "c3", 1)); // evicts c2
        assert_eq!(kv.sessions.len(), 2);
        assert!(kv.sessions.contains_key("c1") && kv.sessions.contains_key("c3"));
        assert_eq!(kv.by_index.len(), 2);
    }

    #[test]
    fn snapshot_round_trips_data_and_sessions() {
        let mut kv = KvStore::default();
        kv.apply(1, &with_session(write("k", "a"), "c1", 1));
        kv.apply(2, &write("j", "ü\n\"x"));
        let bytes = kv.snapshot();
        let mut back = KvStore::restore(&bytes, DEFAULT_MAX_SESSIONS).unwrap();
        assert_eq!(back, kv);
        // The restored session still deduplicates.
        back.apply(3, &write("k", "b"));
        assert_eq!(
            back.apply(4, &with_session(write("k", "a"), "c1", 1)),
            Outcome::Done
        );
        assert_eq!(back.get("k"), Some("b"));
        assert_eq!(KvStore::restore(&[], 10).unwrap().len(), 0);
    }

    #[test]
    fn garbage_payloads_are_errors_not_panics() {
        assert!(matches!(Proposal::decode(&[]), Err(KvError::Empty)));
        assert!(matches!(
            Proposal::decode(&[9, 1]),
            Err(KvError::CommandFormat(9))
        ));
        assert!(Proposal::decode(&[COMMAND_FORMAT, 0xff, 0xff]).is_err());
        assert!(KvStore::restore(&[7], 10).is_err());
        assert!(KvStore::restore(&[SNAPSHOT_FORMAT, 5, 1], 10).is_err());
        let p = with_session(cas("k", None, "v"), "c", 3);
        assert_eq!(Proposal::decode(&p.encode()).unwrap(), p);
    }
}
