//! The register with read / write / cas, in two flavours: the harness's (a `nil` read means the
//! key is absent) and Knossos's `cas-register` (a `nil` read constrains nothing).

use std::collections::HashMap;

use super::{Effects, Encode, Encoded, EncodedOp, Model, ModelKind, SearchOp, Segment};
use crate::error::ModelError;
use crate::history::{Func, Operation, Outcome, Value};

/// Interned value: index into the register's values ([`Register::value`]); 0 is `nil`.
pub type ValueId = u32;

/// The `nil` value id.
pub const NIL: ValueId = 0;

/// Register operation input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegInput {
    /// Read.
    Read,
    /// Write a value.
    Write(ValueId),
    /// Compare-and-set `from` → `to`.
    Cas(ValueId, ValueId),
}

/// Register operation output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegOutput {
    /// A read returned this value.
    Read(ValueId),
    /// A write or cas took effect.
    Done,
    /// A cas took effect as a no-op: the register did not hold `from` (Porcupine etcd logs).
    Refused,
    /// Indefinite: any outcome.
    Unknown,
}

/// The register model: the state is the value id.
#[derive(Clone, Debug)]
pub struct Register {
    values: Vec<Value>,
    init: ValueId,
    /// Value → id, for models built one operation at a time (streaming segments).
    index: HashMap<Value, ValueId>,
}

impl Register {
    /// The value an id stands for.
    pub fn value(&self, id: ValueId) -> &Value {
        self.values.get(id as usize).unwrap_or(&Value::Nil)
    }

    /// A model over the given interned values (index 0 must be `nil`).
    pub fn new(values: Vec<Value>, init: ValueId) -> Self {
        Self {
            values,
            init,
            index: HashMap::new(),
        }
    }

    /// Interns a value (segment models: a window holds few, so they are scanned until there
    /// are enough to index).
    fn intern(&mut self, v: &Value) -> ValueId {
        const SCAN: usize = 16;
        if self.values.len() <= SCAN {
            if let Some(i) = self.values.iter().position(|x| x == v) {
                return i as ValueId;
            }
        } else if let Some(&id) = self.index.get(v) {
            return id;
        }
        let id = self.values.len() as ValueId;
        self.values.push(v.clone());
        if self.values.len() == SCAN + 1 {
            for (i, x) in self.values.iter().enumerate() {
                self.index.insert(x.clone(), i as ValueId);
            }
        } else if self.values.len() > SCAN + 1 {
            self.index.insert(v.clone(), id);
        }
        id
    }
}

impl Model for Register {
    type State = ValueId;
    type Input = RegInput;
    type Output = RegOutput;

    fn init(&self) -> ValueId {
        self.init
    }

    #[inline]
    fn step(&mut self, s: ValueId, input: &RegInput, output: &RegOutput) -> Option<ValueId> {
        match (*input, *output) {
            (RegInput::Read, RegOutput::Read(v)) => (s == v).then_some(s),
            (RegInput::Read, _) => Some(s),
            (RegInput::Write(v), _) => Some(v),
            (RegInput::Cas(from, to), RegOutput::Done) => (s == from).then_some(to),
            (RegInput::Cas(from, _), RegOutput::Refused) => (s != from).then_some(s),
            (RegInput::Cas(from, to), _) => Some(if s == from { to } else { s }),
        }
    }

    fn is_read_only(&self, input: &RegInput, output: &RegOutput) -> bool {
        match (*input, *output) {
            (RegInput::Read, _) | (RegInput::Cas(_, _), RegOutput::Refused) => true,
            (RegInput::Cas(from, to), _) => from == to,
            (RegInput::Write(_), _) => false,
        }
    }

    fn value_effects(&self, input: &RegInput, output: &RegOutput) -> Option<Effects> {
        Some(match (*input, *output) {
            (RegInput::Read, RegOutput::Read(v)) => Effects {
                observes: Some(v),
                ..Effects::default()
            },
            (RegInput::Read, _) => Effects::default(),
            (RegInput::Cas(from, _), RegOutput::Refused) => Effects {
                excludes: Some(from),
                ..Effects::default()
            },
            (RegInput::Write(v), _) => Effects {
                writes: Some(v),
                ..Effects::default()
            },
            (RegInput::Cas(from, to), RegOutput::Done) => Effects {
                observes: Some(from),
                writes: Some(to),
                ..Effects::default()
            },
            (RegInput::Cas(from, to), _) => Effects {
                writes: Some(to),
                may_observe: (from != to).then_some(from),
                ..Effects::default()
            },
        })
    }

    fn state_value(&self, s: ValueId) -> Option<u32> {
        Some(s)
    }

    fn describe_state(&self, s: ValueId) -> String {
        self.value(s).to_string()
    }
}

/// Encodes one operation; `None` when it constrains nothing and is left out (a failed
/// operation never happened; a read without a definite result observed nothing, and Knossos's
/// nil read neither: neither changes the state, so dropping them is exact).
fn encode_op(
    kind: &ModelKind,
    op: &Operation,
    intern: &mut impl FnMut(&Value) -> ValueId,
) -> Result<Option<(RegInput, RegOutput)>, ModelError> {
    if op.outcome == Outcome::Fail {
        return Ok(None);
    }
    let output = match op.outcome {
        Outcome::Ok => RegOutput::Done,
        Outcome::Refused => RegOutput::Refused,
        _ => RegOutput::Unknown,
    };
    Ok(Some(match op.f {
        Func::Read => {
            let nil_read_free = *kind == ModelKind::CasRegister;
            if op.outcome != Outcome::Ok || (nil_read_free && op.output == Value::Nil) {
                return Ok(None);
            }
            (RegInput::Read, RegOutput::Read(intern(&op.output)))
        }
        Func::Write => (RegInput::Write(intern(&op.arg)), output),
        Func::Cas => (RegInput::Cas(intern(&op.arg), intern(&op.arg2)), output),
        f => {
            return Err(ModelError::Unsupported {
                model: kind.name(),
                f: f.name(),
                line: op.call_line,
            })
        }
    }))
}

impl Encode for Register {
    fn encode(
        kind: &ModelKind,
        initial: &Value,
        ops: &[Operation],
        ids: &[u32],
    ) -> Result<Encoded<Self>, ModelError> {
        let mut values = vec![Value::Nil];
        let mut index: HashMap<Value, ValueId> = HashMap::new();
        index.insert(Value::Nil, NIL);
        let mut intern = |v: &Value| -> ValueId {
            if let Some(&id) = index.get(v) {
                return id;
            }
            let id = values.len() as ValueId;
            values.push(v.clone());
            index.insert(v.clone(), id);
            id
        };
        let init = intern(initial);
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let op = &ops[id as usize];
            let Some((input, output)) = encode_op(kind, op, &mut intern)? else {
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
        Ok((
            Register {
                values,
                init,
                index: HashMap::new(),
            },
            out,
        ))
    }
}

impl Segment for Register {
    fn empty(_kind: &ModelKind) -> Self {
        Register {
            values: vec![Value::Nil],
            init: NIL,
            index: HashMap::new(),
        }
    }

    fn intern_state(&mut self, _kind: &ModelKind, v: &Value) -> Result<ValueId, ModelError> {
        Ok(self.intern(v))
    }

    fn encode_op(&mut self, kind: &ModelKind, op: &Operation) -> EncodedOp<Self> {
        encode_op(kind, op, &mut |v| self.intern(v))
    }

    fn state_to_value(&self, s: ValueId) -> Value {
        self.value(s).clone()
    }

    fn lazy_rule() -> bool {
        true
    }
}
