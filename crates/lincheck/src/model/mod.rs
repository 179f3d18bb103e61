//! Sequential specifications ("models") the checker linearizes against.
//!
//! A model is a pure step function over a small `Copy` state: given a state, an operation's input
//! and its observed output, it says whether that output is possible and what the next state is.
//! Values are interned to integers per key before the search, so states are `u32`s and a step
//! never allocates (the kv model memoises the strings that appends build; see [`kv`]).

use std::fmt::Debug;
use std::hash::Hash;

use crate::error::ModelError;
use crate::history::{Operation, Value};

pub mod kv;
pub mod register;

/// A sequential specification.
pub trait Model {
    /// The object's state.
    type State: Copy + Eq + Hash + Debug;
    /// An operation's input.
    type Input: Copy + Debug;
    /// An operation's observed output (including "unknown" for indefinite operations).
    type Output: Copy + Debug;

    /// The initial state.
    fn init(&self) -> Self::State;

    /// Applies one operation: `Some(next)` if `output` is a possible result of `input` in `state`.
    ///
    /// Must be a function of its arguments (the `&mut self` is for memo tables only), and must
    /// accept every state when the output is unknown: the checker relies on that to treat an
    /// indefinite operation that never took effect as one that took effect after everything else.
    fn step(
        &mut self,
        state: Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;

    /// Whether the operation leaves every state unchanged whenever it applies (a read; a cas
    /// refused by its precondition). The search relies on this being exact when it says `true`:
    /// see the read-only pruning in `check::search`.
    fn is_read_only(&self, _input: &Self::Input, _output: &Self::Output) -> bool {
        false
    }

    /// For the search's value-obligation pruning (models whose states are plain values, like
    /// the register): the value an operation needs the state to hold (`observes`) and the value
    /// it sets (`writes`), as small integers; and the value a state holds. `None` turns the
    /// pruning off (the default).
    fn value_effects(&self, _input: &Self::Input, _output: &Self::Output) -> Option<Effects> {
        None
    }

    /// The value a state holds, for the pruning above.
    fn state_value(&self, _state: Self::State) -> Option<u32> {
        None
    }

    /// Human text for a state (`"v7"`, `nil`).
    fn describe_state(&self, state: Self::State) -> String;
}

/// What an operation needs and sets, for the value-obligation pruning (and, in the streaming
/// checker, for the rule that takes an indefinite operation only when its effect is used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Effects {
    /// The value the state must hold for the operation to apply.
    pub observes: Option<u32>,
    /// The value the operation may set.
    pub writes: Option<u32>,
    /// An indefinite operation that changes the state only when it holds this value (an
    /// indefinite cas's `from`): it may use that value without needing it.
    pub may_observe: Option<u32>,
    /// The value the state must *not* hold for the operation to apply (a cas refused by its
    /// precondition).
    pub excludes: Option<u32>,
}

/// An operation of one key, compact, as the search uses it.
#[derive(Clone, Copy, Debug)]
pub struct SearchOp<I, O> {
    /// Input.
    pub input: I,
    /// Observed output.
    pub output: O,
    /// Real-time position of the invocation.
    pub call: u64,
    /// Real-time position of the completion (`u64::MAX`: indefinite, may take effect any time
    /// after `call`, or never).
    pub ret: u64,
    /// Index of the operation in the [`crate::History`].
    pub id: u32,
}

impl<I, O> SearchOp<I, O> {
    /// Whether the operation must take effect (it completed).
    pub fn is_definite(&self) -> bool {
        self.ret != u64::MAX
    }
}

/// Which model to check a history against.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ModelKind {
    /// The harness's per-key register: read / write / cas; a key is absent (`nil`) at the start
    /// unless an initial value is given, and a read of `nil` means the key was absent.
    #[default]
    Register,
    /// Knossos's `cas-register`: like `Register`, but a read that returns `nil` constrains
    /// nothing (Knossos treats a nil read as "don't know").
    CasRegister,
    /// Porcupine's kv model: get / put / append over strings; a missing key reads as `""`.
    KvAppend,
}

impl ModelKind {
    /// The CLI name.
    pub fn name(&self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::KvAppend => "kv-append",
        }
    }

    /// Parses a CLI name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "register" => ModelKind::Register,
            "cas-register" => ModelKind::CasRegister,
            "kv-append" => ModelKind::KvAppend,
            _ => return None,
        })
    }
}

/// Encodes one key's operations (global ids `ids`) for `M`.
pub(crate) type Encoded<M> = (M, Vec<SearchOp<<M as Model>::Input, <M as Model>::Output>>);

/// A model that can be built from a key's operations.
pub(crate) trait Encode: Model + Sized {
    fn encode(
        kind: &ModelKind,
        initial: &Value,
        ops: &[Operation],
        ids: &[u32],
    ) -> Result<Encoded<Self>, ModelError>;
}

/// One operation encoded for a model: `None` when it constrains nothing.
pub(crate) type EncodedOp<M> =
    Result<Option<(<M as Model>::Input, <M as Model>::Output)>, ModelError>;

/// A model built one segment at a time (the streaming checker): states are carried across
/// segments as [`Value`]s, and each segment interns what it needs afresh, so nothing a
/// retired segment used stays behind.
pub(crate) trait Segment: Model<State = u32> + Sized {
    /// A model with nothing interned.
    fn empty(kind: &ModelKind) -> Self;
    /// The state holding `v`.
    fn intern_state(&mut self, kind: &ModelKind, v: &Value) -> Result<u32, ModelError>;
    /// Encodes one operation; `None` when it constrains nothing (as [`Encode::encode`] leaves
    /// it out).
    fn encode_op(&mut self, kind: &ModelKind, op: &Operation) -> EncodedOp<Self>;
    /// The value a state holds, to carry it across a cut.
    fn state_to_value(&self, s: u32) -> Value;
    /// Whether the lazy rule for indefinite operations holds (states are plain values whose
    /// writers and observers [`Model::value_effects`] names; see `stream::key`).
    fn lazy_rule() -> bool {
        false
    }
}
