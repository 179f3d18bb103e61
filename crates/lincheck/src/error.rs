//! Typed errors. Every input error names the line it was found on.

use std::path::PathBuf;

/// What is wrong with one line of a history.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum LineErrorKind {
    /// Not valid JSON / EDN.
    #[error("malformed {format}: {detail}")]
    Malformed {
        /// Format being parsed.
        format: &'static str,
        /// Parser message.
        detail: String,
    },
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// The `type` is not invoke/ok/fail/info.
    #[error("unknown event type `{0}` (expected invoke, ok, fail or info)")]
    UnknownType(String),
    /// The `f` is not one the models know.
    #[error("unknown function `{0}` (expected read, write, cas or append)")]
    UnknownFunction(String),
    /// The `process` is neither a client number (a non-negative integer) nor the nemesis.
    /// Rejected rather than skipped: a client event under a name would otherwise vanish from
    /// the check, and a history of them would pass having checked nothing.
    #[error("process {0} is neither a client number (a non-negative integer) nor the nemesis")]
    BadProcess(String),
    /// A field other than `value` has the wrong shape.
    #[error("bad `{field}`: {detail}")]
    BadField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A value has the wrong shape for its function.
    #[error("bad value for `{f}`: {detail}")]
    BadValue {
        /// The function.
        f: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A completion arrived for a process with no open invocation.
    #[error("`{kind}` completion for process {process}, which has no open invocation")]
    CompletionWithoutInvocation {
        /// The process.
        process: u64,
        /// The completion type.
        kind: &'static str,
    },
    /// A process invoked while its previous operation was still open.
    #[error(
        "process {process} invokes while its operation invoked on line {open_line} is still open"
    )]
    AlreadyOpen {
        /// The process.
        process: u64,
        /// Line of the open invocation.
        open_line: u64,
    },
    /// A process invoked again after an indefinite (`info`) completion.
    #[error("process {process} invokes again after its indefinite operation on line {info_line}; a client must continue under a new process number")]
    InvokeAfterInfo {
        /// The process.
        process: u64,
        /// Line of the `info` completion.
        info_line: u64,
    },
    /// A completion's f or key differs from its invocation's, or an `ok` completion repeats a
    /// value other than the one invoked.
    #[error(
        "completion {field} `{completed}` differs from `{invoked}` invoked on line {invoke_line}"
    )]
    CompletionMismatch {
        /// `f`, `key` or `value`.
        field: &'static str,
        /// At invocation.
        invoked: String,
        /// At completion.
        completed: String,
        /// Line of the invocation.
        invoke_line: u64,
    },
}

/// An error in a history, with its line number (1-based).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("line {line}: {kind}")]
pub struct LineError {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong.
    pub kind: LineErrorKind,
}

/// Reading a history failed.
///
/// Each message is whole (file, line, cause) and no variant also hands its cause out as
/// `source()`: a reporter that prints the chain (anyhow's `{:#}`) would print it twice.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be read.
    #[error("{}: {error}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// A line of the file is malformed: `file:LINE: what`, as compilers write it.
    #[error("{}:{}: {}", .path.display(), .error.line, .error.kind)]
    Line {
        /// The file.
        path: PathBuf,
        /// The line and what is wrong with it.
        error: LineError,
    },
    /// The format could not be recognised.
    #[error("{path}: cannot tell the history format from the content; pass --format")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
}

impl ReadError {
    /// The line number, when the error is about one line.
    pub fn line(&self) -> Option<u64> {
        match self {
            ReadError::Line { error, .. } => Some(error.line),
            _ => None,
        }
    }
}

/// A history cannot be checked against the chosen model.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum ModelError {
    /// The model has no such operation.
    #[error("model `{model}` does not support `{f}` (line {line})")]
    Unsupported {
        /// Model name.
        model: &'static str,
        /// Function name.
        f: &'static str,
        /// Line of the invocation.
        line: u64,
    },
    /// The model needs string values.
    #[error("model `{model}` needs string values, got {value} (line {line})")]
    BadValue {
        /// Model name.
        model: &'static str,
        /// The value.
        value: String,
        /// Line of the invocation.
        line: u64,
    },
}

/// Checking could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The history could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The history does not fit the model.
    #[error(transparent)]
    Model(#[from] ModelError),
}
