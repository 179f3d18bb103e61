//! What travels over the model's network: Raft messages between servers, and the tiny
//! register KV's requests and answers between clients and servers.
//!
//! stateright orders and hashes messages (its network is a set, its actions are sorted so that
//! a path can be replayed by index), but `raft::Message` has neither `Hash` nor `Ord`: both
//! come here from one key, so the core needs no derives for the model's sake.

use raft::{Entry, EntryPayload, Message, MessageBody};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// One message of the model.
#[derive(Clone, PartialEq, Eq)]
pub enum Msg {
    /// Between servers.
    Raft(Message),
    /// Client to every server: write `value` (request `req` of that client).
    Put { req: u8, value: u8 },
    /// Client to every server: read the register.
    Get { req: u8 },
    /// Server to client: the write of `req` is applied.
    PutOk { req: u8 },
    /// Server to client: the register held `value` for the read `req`.
    GetOk { req: u8, value: Option<u8> },
}

/// The order and hash key of a message: a tag, numbers, and the entries it carries.
type Key = (u8, [u64; 8], Vec<EntryKey>);

/// An entry as plain numbers and bytes: term, index, payload tag, payload.
pub type EntryKey = (u64, u64, u8, Vec<u8>);

pub fn entry_key(e: &Entry) -> EntryKey {
    match &e.payload {
        EntryPayload::Noop => (e.term.0, e.index.0, 0, Vec::new()),
        EntryPayload::Command(data) => (e.term.0, e.index.0, 1, data.clone()),
        // The model makes no membership changes; a configuration is keyed by its members.
        EntryPayload::Config(m) => {
            let mut bytes: Vec<u8> = m.voters.iter().map(|v| v.0 as u8).collect();
            bytes.push(u8::MAX);
            bytes.extend(m.learners.iter().map(|l| l.0 as u8));
            (e.term.0, e.index.0, 2, bytes)
        }
    }
}

fn raft_key(m: &Message) -> Key {
    let head = |kind: u64, a: u64, b: u64, c: u64, d: u64, e: u64| {
        [m.from.0, m.to.0, m.term.0, kind, a, b, c, d + (e << 32)]
    };
    match &m.body {
        MessageBody::PreVote {
            last_log_index,
            last_log_term,
        } => (
            1,
            head(0, last_log_index.0, last_log_term.0, 0, 0, 0),
            vec![],
        ),
        MessageBody::PreVoteResponse { granted } => {
            (1, head(1, *granted as u64, 0, 0, 0, 0), vec![])
        }
        MessageBody::Vote {
            last_log_index,
            last_log_term,
            transfer,
        } => (
            1,
            head(2, last_log_index.0, last_log_term.0, *transfer as u64, 0, 0),
            vec![],
        ),
        MessageBody::VoteResponse { granted } => (1, head(3, *granted as u64, 0, 0, 0, 0), vec![]),
        MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
            read_seq,
        } => (
            1,
            head(
                4,
                prev_log_index.0,
                prev_log_term.0,
                leader_commit.0,
                *read_seq,
                0,
            ),
            entries.iter().map(entry_key).collect(),
        ),
        MessageBody::AppendEntriesResponse {
            success,
            index,
            conflict_term,
            conflict_index,
            read_seq,
        } => (
            1,
            head(
                5,
                *success as u64,
                index.0,
                conflict_term.map_or(0, |t| t.0 + 1),
                *read_seq,
                conflict_index.0,
            ),
            vec![],
        ),
        MessageBody::InstallSnapshot { snapshot, read_seq } => (
            1,
            head(
                6,
                snapshot.meta.index.0,
                snapshot.meta.term.0,
                *read_seq,
                0,
                0,
            ),
            vec![(0, 0, 2, snapshot.data.clone())],
        ),
        MessageBody::TimeoutNow => (1, head(7, 0, 0, 0, 0, 0), vec![]),
        MessageBody::InstallSnapshotResponse { index, read_seq } => {
            (1, head(8, index.0, *read_seq, 0, 0, 0), vec![])
        }
    }
}

impl Msg {
    fn key(&self) -> Key {
        let small = |tag: u8, a: u8, b: u64| (tag, [a as u64, b, 0, 0, 0, 0, 0, 0], vec![]);
        match self {
            Msg::Raft(m) => raft_key(m),
            Msg::Put { req, value } => small(2, *req, *value as u64),
            Msg::Get { req } => small(3, *req, 0),
            Msg::PutOk { req } => small(4, *req, 0),
            Msg::GetOk { req, value } => small(5, *req, value.map_or(0, |v| v as u64 + 1)),
        }
    }
}

impl Hash for Msg {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl PartialOrd for Msg {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Msg {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// A command of the register KV in the log: client, request, value written.
pub fn encode_put(client: u8, req: u8, value: u8) -> Vec<u8> {
    vec![client, req, value]
}

pub fn decode_put(data: &[u8]) -> Option<(u8, u8, u8)> {
    match data {
        [c, r, v] => Some((*c, *r, *v)),
        _ => None,
    }
}

/// An entry in Raft terms: `i3@t2 put(c1#0=11)` or `i1@t1 noop`.
pub fn show_entry(e: &Entry) -> String {
    match &e.payload {
        EntryPayload::Noop => format!("{}@{} noop", e.index, e.term),
        EntryPayload::Command(data) => match decode_put(data) {
            Some((c, r, v)) => format!("{}@{} put(c{c}#{r}={v})", e.index, e.term),
            None => format!("{}@{} {:?}", e.index, e.term, data),
        },
        EntryPayload::Config(m) => format!(
            "{}@{} config(voters {:?}, learners {:?})",
            e.index, e.term, m.voters, m.learners
        ),
    }
}

fn show_entries(entries: &[Entry]) -> String {
    let shown: Vec<String> = entries.iter().map(show_entry).collect();
    format!("[{}]", shown.join(", "))
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Raft(m) => {
                let (from, to, t) = (m.from, m.to, m.term);
                match &m.body {
                    MessageBody::PreVote {
                        last_log_index,
                        last_log_term,
                    } => write!(f, "{from}→{to} PreVote {t} last={last_log_index}@{last_log_term}"),
                    MessageBody::PreVoteResponse { granted } => {
                        write!(f, "{from}→{to} PreVoteResponse {t} granted={granted}")
                    }
                    MessageBody::Vote {
                        last_log_index,
                        last_log_term,
                        transfer,
                    } => write!(
                        f,
                        "{from}→{to} RequestVote {t} last={last_log_index}@{last_log_term}{}",
                        if *transfer { " transfer" } else { "" }
                    ),
                    MessageBody::VoteResponse { granted } => {
                        write!(f, "{from}→{to} VoteResponse {t} granted={granted}")
                    }
                    MessageBody::AppendEntries {
                        prev_log_index,
                        prev_log_term,
                        entries,
                        leader_commit,
                        read_seq,
                    } => write!(
                        f,
                        "{from}→{to} AppendEntries {t} prev={prev_log_index}@{prev_log_term} {} commit={leader_commit} read={read_seq}",
                        show_entries(entries)
                    ),
                    MessageBody::AppendEntriesResponse {
                        success,
                        index,
                        conflict_term,
                        conflict_index,
                        read_seq,
                    } => {
                        if *success {
                            write!(f, "{from}→{to} AppendEntriesResponse {t} ok match={index} read={read_seq}")
                        } else {
                            write!(
                                f,
                                "{from}→{to} AppendEntriesResponse {t} reject prev={index} hint={conflict_index}/{conflict_term:?}"
                            )
                        }
                    }
                    other => write!(f, "{from}→{to} {} {t}", other.kind()),
                }
            }
            Msg::Put { req, value } => write!(f, "Put #{req} = {value}"),
            Msg::Get { req } => write!(f, "Get #{req}"),
            Msg::PutOk { req } => write!(f, "PutOk #{req}"),
            Msg::GetOk { req, value } => write!(f, "GetOk #{req} = {value:?}"),
        }
    }
}
