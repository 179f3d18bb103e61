//! Input formats: the project's JSONL, Jepsen EDN, Porcupine's etcd and kv logs; detection from
//! content.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::ReadError;
use crate::history::History;
use crate::jsonl::{read_jsonl, ReadLineError};
use crate::model::ModelKind;

pub(crate) mod edn;
pub(crate) mod etcd;

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// Detect from content.
    Auto,
    /// The project's JSON Lines (docs/history-format.md).
    Jsonl,
    /// Jepsen EDN.
    JepsenEdn,
    /// Porcupine's Jepsen etcd logs.
    PorcupineEtcd,
    /// Porcupine's kv logs.
    PorcupineKv,
}

impl Format {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::JepsenEdn => "jepsen-edn",
            Format::PorcupineEtcd => "porcupine-etcd",
            Format::PorcupineKv => "porcupine-kv",
        }
    }

    /// Parses a CLI name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => Format::Auto,
            "jsonl" => Format::Jsonl,
            "jepsen-edn" | "edn" => Format::JepsenEdn,
            "porcupine-etcd" => Format::PorcupineEtcd,
            "porcupine-kv" => Format::PorcupineKv,
            _ => return None,
        })
    }

    /// The model histories of this format are checked against by default.
    pub fn default_model(self) -> ModelKind {
        match self {
            Format::JepsenEdn => ModelKind::CasRegister,
            Format::PorcupineKv => ModelKind::KvAppend,
            _ => ModelKind::Register,
        }
    }
}

/// Guesses the format from the start of a file.
pub fn detect(head: &str) -> Option<Format> {
    let first = head
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with(';'));
    let Some(first) = first else {
        return Some(Format::Jsonl); // empty: an empty history in any format
    };
    if first.starts_with("{\"") || first.starts_with("{ \"") {
        return Some(Format::Jsonl);
    }
    if head.contains("jepsen.util - ") {
        return Some(Format::PorcupineEtcd);
    }
    if first.starts_with('{') || first.starts_with('[') || first.starts_with('(') {
        let kv = [":f :get", ":f :put", ":f :append"]
            .iter()
            .any(|p| head.contains(p));
        return Some(if kv && head.contains(":key") {
            Format::PorcupineKv
        } else {
            Format::JepsenEdn
        });
    }
    None
}

/// Reads a history file in the given format (or detected), returning the format used.
pub fn read_file(path: &Path, format: Format) -> Result<(History, Format), ReadError> {
    let io = |error| ReadError::Io {
        path: path.to_path_buf(),
        error,
    };
    let line_err = |error| ReadError::Line {
        path: path.to_path_buf(),
        error,
    };
    let mut file = File::open(path).map_err(io)?;
    let format = match format {
        Format::Auto => {
            let mut head = Vec::with_capacity(64 * 1024);
            (&mut file)
                .take(64 * 1024)
                .read_to_end(&mut head)
                .map_err(io)?;
            let text = String::from_utf8_lossy(&head);
            let f = detect(&text).ok_or_else(|| ReadError::UnknownFormat {
                path: path.to_path_buf(),
            })?;
            file = File::open(path).map_err(io)?;
            f
        }
        f => f,
    };
    let history = match format {
        Format::Jsonl | Format::Auto => read_jsonl(BufReader::with_capacity(1 << 20, file))
            .map_err(|e| match e {
                ReadLineError::Io(_, e) => io(e),
                ReadLineError::Line(l) => line_err(l),
            })?,
        other => {
            let mut text = String::new();
            file.read_to_string(&mut text).map_err(io)?;
            match other {
                Format::PorcupineEtcd => etcd::read_etcd(&text),
                _ => edn::read_edn(&text),
            }
            .map_err(line_err)?
        }
    };
    Ok((history, format))
}

/// Reads an EDN history from text.
pub fn read_edn_str(text: &str) -> Result<History, crate::error::LineError> {
    edn::read_edn(text)
}

/// Reads a Porcupine etcd log from text.
pub fn read_etcd_str(text: &str) -> Result<History, crate::error::LineError> {
    etcd::read_etcd(text)
}
