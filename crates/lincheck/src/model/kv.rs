//! Porcupine's kv model: get / put / append over strings, a missing key reads as `""`.
//!
//! States are interned strings. An append builds a new string only the first time a given
//! (state, suffix) pair is stepped; after that the memo answers, so the search's inner loop does
//! not allocate once the reachable strings are known.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::check::FxHasher;

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

use super::{Encode, Encoded, EncodedOp, Model, ModelKind, SearchOp, Segment};
use crate::error::ModelError;
use crate::history::{Func, Operation, Outcome, Value};

/// Interned string id.
pub type StrId = u32;

/// Kv operation input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvInput {
    /// Get.
    Get,
    /// Put a string.
    Put(StrId),
    /// Append a string.
    Append(StrId),
}

/// Kv operation output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvOutput {
    /// A get returned this string.
    Got(StrId),
    /// A put/append took effect.
    Done,
    /// Indefinite.
    Unknown,
}

/// The kv model for one key.
///
/// Strings are interned with a polynomial rolling hash, so the hash of `a + b` is computed from
/// the hashes of `a` and `b` in O(1); equality is always confirmed on the bytes.
#[derive(Clone, Debug, Default)]
pub struct Kv {
    strings: Vec<Box<str>>,
    /// Rolling hash of each string, and `BASE^len`.
    hashes: Vec<(u64, u64)>,
    /// First string with a given hash; `chain` links strings sharing a hash.
    by_hash: FxMap<u64, StrId>,
    chain: Vec<StrId>,
    appends: FxMap<(StrId, StrId), StrId>,
    init: StrId,
}

const BASE: u64 = 0x100_0000_01b3;
const END: StrId = StrId::MAX;

fn roll(s: &str) -> (u64, u64) {
    s.bytes().fold((0u64, 1u64), |(h, p), b| {
        (
            h.wrapping_mul(BASE).wrapping_add(b as u64 + 1),
            p.wrapping_mul(BASE),
        )
    })
}

impl Kv {
    fn find(&self, hash: u64, eq: impl Fn(&str) -> bool) -> Option<StrId> {
        let mut id = *self.by_hash.get(&hash)?;
        while id != END {
            if eq(&self.strings[id as usize]) {
                return Some(id);
            }
            id = self.chain[id as usize];
        }
        None
    }

    fn insert(&mut self, s: Box<str>, hp: (u64, u64)) -> StrId {
        let id = self.strings.len() as StrId;
        let prev = self.by_hash.insert(hp.0, id).unwrap_or(END);
        self.chain.push(prev);
        self.strings.push(s);
        self.hashes.push(hp);
        id
    }

    fn intern(&mut self, s: &str) -> StrId {
        let hp = roll(s);
        match self.find(hp.0, |c| c == s) {
            Some(id) => id,
            None => self.insert(s.into(), hp),
        }
    }

    fn append(&mut self, s: StrId, suffix: StrId) -> StrId {
        if let Some(&id) = self.appends.get(&(s, suffix)) {
            return id;
        }
        let (hs, ps) = self.hashes[s as usize];
        let (ht, pt) = self.hashes[suffix as usize];
        let hp = (hs.wrapping_mul(pt).wrapping_add(ht), ps.wrapping_mul(pt));
        let (a, b) = (&self.strings[s as usize], &self.strings[suffix as usize]);
        let found = self.find(hp.0, |c| {
            c.len() == a.len() + b.len() && c.starts_with(&**a) && c.ends_with(&**b)
        });
        let id = match found {
            Some(id) => id,
            None => {
                let mut joined = String::with_capacity(a.len() + b.len());
                joined.push_str(a);
                joined.push_str(b);
                self.insert(joined.into_boxed_str(), hp)
            }
        };
        self.appends.insert((s, suffix), id);
        id
    }
}

fn as_string(model: &'static str, v: &Value, line: u64) -> Result<String, ModelError> {
    match v {
        Value::Nil => Ok(String::new()),
        Value::Str(s) => Ok(s.to_string()),
        Value::Int(i) => Ok(i.to_string()),
        #[allow(unreachable_patterns)]
        other => Err(ModelError::BadValue {
            model,
            value: other.to_string(),
            line,
        }),
    }
}

impl Model for Kv {
    type State = StrId;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> StrId {
        self.init
    }

    #[inline]
    fn step(&mut self, s: StrId, input: &KvInput, output: &KvOutput) -> Option<StrId> {
        match (*input, *output) {
            (KvInput::Get, KvOutput::Got(v)) => (s == v).then_some(s),
            (KvInput::Get, _) => Some(s),
            (KvInput::Put(v), _) => Some(v),
            (KvInput::Append(v), _) => Some(self.append(s, v)),
        }
    }

    fn is_read_only(&self, input: &KvInput, _output: &KvOutput) -> bool {
        matches!(input, KvInput::Get)
    }

    fn describe_state(&self, s: StrId) -> String {
        format!(
            "{:?}",
            self.strings.get(s as usize).map(|s| &**s).unwrap_or("")
        )
    }
}

impl Kv {
    /// Encodes one operation; `None` when it constrains nothing (a failed or refused operation,
    /// a get without a definite result).
    fn encode_op(
        &mut self,
        kind: &ModelKind,
        op: &Operation,
    ) -> Result<Option<(KvInput, KvOutput)>, ModelError> {
        let name = kind.name();
        if matches!(op.outcome, Outcome::Fail | Outcome::Refused) {
            return Ok(None);
        }
        let done = if op.outcome == Outcome::Ok {
            KvOutput::Done
        } else {
            KvOutput::Unknown
        };
        Ok(Some(match op.f {
            Func::Read => {
                if op.outcome != Outcome::Ok {
                    return Ok(None);
                }
                let got = as_string(name, &op.output, op.call_line)?;
                (KvInput::Get, KvOutput::Got(self.intern(&got)))
            }
            Func::Write => {
                let v = as_string(name, &op.arg, op.call_line)?;
                (KvInput::Put(self.intern(&v)), done)
            }
            Func::Append => {
                let v = as_string(name, &op.arg, op.call_line)?;
                (KvInput::Append(self.intern(&v)), done)
            }
            f => {
                return Err(ModelError::Unsupported {
                    model: name,
                    f: f.name(),
                    line: op.call_line,
                })
            }
        }))
    }
}

impl Encode for Kv {
    fn encode(
        kind: &ModelKind,
        initial: &Value,
        ops: &[Operation],
        ids: &[u32],
    ) -> Result<Encoded<Self>, ModelError> {
        let name = kind.name();
        let mut m = Kv::default();
        m.intern("");
        let init = as_string(name, initial, 0)?;
        m.init = m.intern(&init);
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let op = &ops[id as usize];
            let Some((input, output)) = m.encode_op(kind, op)? else {
                continue;
            };
            out.push(SearchOp {
                input,
                output,
                call: op.call_pos,
                ret: op.ret_pos,
                id,
            });
        }
        Ok((m, out))
    }
}

impl Segment for Kv {
    fn empty(_kind: &ModelKind) -> Self {
        let mut m = Kv::default();
        m.intern("");
        m
    }

    fn intern_state(&mut self, kind: &ModelKind, v: &Value) -> Result<StrId, ModelError> {
        let s = as_string(kind.name(), v, 0)?;
        Ok(self.intern(&s))
    }

    fn encode_op(&mut self, kind: &ModelKind, op: &Operation) -> EncodedOp<Self> {
        Kv::encode_op(self, kind, op)
    }

    fn state_to_value(&self, s: StrId) -> Value {
        Value::str(self.strings.get(s as usize).map(|s| &**s).unwrap_or(""))
    }
}
