//! The register with read / write / cas, in two flavours: the harness's (a `nil` read means the
//! key is absent) and Knossos's `cas-register` (a `nil` read constrains nothing).

use std::collections::HashMap;

use super::{Effects, Encode, Encoded, Model, ModelKind, SearchOp};
use crate::error::ModelError;
use crate::history::{Func, Operation, Outcome, Value};

/// Interned value: index into [`Register::values`]; 0 is `nil`.
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
}

impl Register {
    /// The value an id stands for.
    pub fn value(&self, id: ValueId) -> &Value {
        self.values.get(id as usize).unwrap_or(&Value::Nil)
    }

    /// A model over the given interned values (index 0 must be `nil`).
    pub fn new(values: Vec<Value>, init: ValueId) -> Self {
        Self { values, init }
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
                writes: None,
            },
            (RegInput::Read, _) | (RegInput::Cas(_, _), RegOutput::Refused) => Effects::default(),
            (RegInput::Write(v), _) => Effects {
                observes: None,
                writes: Some(v),
            },
            (RegInput::Cas(from, to), RegOutput::Done) => Effects {
                observes: Some(from),
                writes: Some(to),
            },
            (RegInput::Cas(_, to), _) => Effects {
                observes: None,
                writes: Some(to),
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

impl Encode for Register {
    fn encode(
        kind: &ModelKind,
        initial: &Value,
        ops: &[Operation],
        ids: &[u32],
    ) -> Result<Encoded<Self>, ModelError> {
        let nil_read_free = *kind == ModelKind::CasRegister;
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
            if op.outcome == Outcome::Fail {
                continue; // never happened
            }
            let output = match op.outcome {
                Outcome::Ok => RegOutput::Done,
                Outcome::Refused => RegOutput::Refused,
                _ => RegOutput::Unknown,
            };
            let (input, output) = match op.f {
                Func::Read => {
                    // A read without a definite result observed nothing; Knossos's nil read
                    // neither. Neither changes the state, so dropping them is exact.
                    if op.outcome != Outcome::Ok || (nil_read_free && op.output == Value::Nil) {
                        continue;
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
            };
            out.push(SearchOp {
                input,
                output,
                call: op.call_pos,
                ret: op.ret_pos,
                id,
            });
        }
        Ok((Register { values, init }, out))
    }
}
