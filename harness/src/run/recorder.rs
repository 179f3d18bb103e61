//! The recorder: streams the history to `history.jsonl` (the contract format of
//! docs/history-format.md) as the run goes.
//!
//! Every event is stamped (index and monotonic time) under one lock and handed to a single writer
//! thread, so `index` order and `time` order agree. A client stamps its invocation *before* it
//! sends the request and its completion *after* the answer arrives, so recorded intervals always
//! contain the real ones. The writer flushes whenever its queue runs empty: a crash loses at most
//! the events still queued. The writer also hands each line it writes to the live checker, so
//! the check follows the file exactly.

use crossbeam_channel::{Receiver, Sender};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use super::checker::Live;

/// Who did something: a client process number or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    Client(u64),
    Nemesis,
}

/// Event types of the history format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn name(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// One history event, before stamping.
#[derive(Debug, Clone)]
pub struct Event {
    pub process: Process,
    pub ty: EventType,
    pub f: String,
    pub key: Option<String>,
    pub value: serde_json::Value,
    pub error: Option<String>,
    /// On a client completion: the node that answered (or was tried last). Optional in the
    /// format and ignored by the check; reports use it to show which node served what.
    pub node: Option<String>,
}

struct Stamped {
    index: u64,
    time: u64,
    event: Event,
}

impl Serialize for Stamped {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = &self.event;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("index", &self.index)?;
        m.serialize_entry("time", &self.time)?;
        match e.process {
            Process::Client(p) => m.serialize_entry("process", &p)?,
            Process::Nemesis => m.serialize_entry("process", "nemesis")?,
        }
        m.serialize_entry("type", e.ty.name())?;
        m.serialize_entry("f", &e.f)?;
        if let Some(k) = &e.key {
            m.serialize_entry("key", k)?;
        }
        m.serialize_entry("value", &e.value)?;
        if let Some(err) = &e.error {
            m.serialize_entry("error", err)?;
        }
        if let Some(node) = &e.node {
            m.serialize_entry("node", node)?;
        }
        m.end()
    }
}

struct Inner {
    next_index: u64,
    tx: Option<Sender<Stamped>>,
}

/// A cloneable handle that stamps and queues events.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    inner: Arc<Mutex<Inner>>,
}

/// The writer thread; [`Writer::finish`] closes the history and reports write errors.
pub struct Writer {
    handle: Option<JoinHandle<std::io::Result<u64>>>,
    recorder: Recorder,
}

impl Recorder {
    /// Creates `path` and starts the writer thread, which feeds every line to `live` too.
    /// `start` is time zero of the run.
    pub fn create(
        path: &Path,
        start: Instant,
        live: Option<Arc<Live>>,
    ) -> std::io::Result<(Recorder, Writer)> {
        let file = File::create(path)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || write_loop(file, rx, live.as_deref()))?;
        let recorder = Recorder {
            start,
            inner: Arc::new(Mutex::new(Inner {
                next_index: 0,
                tx: Some(tx),
            })),
        };
        Ok((
            recorder.clone(),
            Writer {
                handle: Some(handle),
                recorder,
            },
        ))
    }

    /// Stamps and queues an event; returns its time (ns since the start). Events recorded after
    /// the history was closed are dropped.
    pub fn record(&self, event: Event) -> u64 {
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let time = self.start.elapsed().as_nanos() as u64;
        let index = inner.next_index;
        if let Some(tx) = &inner.tx {
            if tx.send(Stamped { index, time, event }).is_ok() {
                inner.next_index += 1;
            }
        }
        time
    }

    fn close(&self) {
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        inner.tx = None;
    }
}

impl Writer {
    /// Closes the history (later events are dropped), waits for the writer to flush, and returns
    /// the number of events written.
    pub fn finish(mut self) -> std::io::Result<u64> {
        self.recorder.close();
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(std::io::Error::other("recorder thread panicked")),
            None => Ok(0),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.recorder.close();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn write_loop(file: File, rx: Receiver<Stamped>, live: Option<&Live>) -> std::io::Result<u64> {
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    let mut line = Vec::with_capacity(256);
    let mut written = 0u64;
    while let Ok(ev) = rx.recv() {
        write_one(&mut out, &mut line, &ev, live)?;
        written += 1;
        // Drain whatever is queued, then flush: one write(2) per small batch.
        while let Ok(ev) = rx.try_recv() {
            write_one(&mut out, &mut line, &ev, live)?;
            written += 1;
        }
        out.flush()?;
        if let Some(live) = live {
            live.flush();
        }
    }
    out.flush()?;
    out.get_ref().sync_all()?;
    Ok(written)
}

fn write_one(
    out: &mut BufWriter<File>,
    line: &mut Vec<u8>,
    ev: &Stamped,
    live: Option<&Live>,
) -> std::io::Result<()> {
    line.clear();
    serde_json::to_writer(&mut *line, ev)?;
    out.write_all(line)?;
    out.write_all(b"\n")?;
    if let Some(live) = live {
        // serde_json writes UTF-8.
        if let Ok(text) = std::str::from_utf8(line) {
            live.push_line(text);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_contract_format_in_order() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("harness-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("history.jsonl");
        let (rec, writer) = Recorder::create(&path, Instant::now(), None)?;
        rec.record(Event {
            process: Process::Client(3),
            ty: EventType::Invoke,
            f: "write".into(),
            key: Some("k1".into()),
            value: json!("v7"),
            error: None,
            node: None,
        });
        rec.record(Event {
            process: Process::Nemesis,
            ty: EventType::Info,
            f: "partition".into(),
            key: None,
            value: json!({"groups": [["n1"], ["n2"]]}),
            error: None,
            node: None,
        });
        rec.record(Event {
            process: Process::Client(3),
            ty: EventType::Info,
            f: "write".into(),
            key: Some("k1".into()),
            value: json!("v7"),
            error: Some("timeout".into()),
            node: None,
        });
        assert_eq!(writer.finish()?, 3);
        let text = std::fs::read_to_string(&path)?;
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_default())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["index"], 0);
        assert_eq!(lines[0]["process"], 3);
        assert_eq!(lines[0]["type"], "invoke");
        assert_eq!(lines[1]["process"], "nemesis");
        assert!(lines[1].get("key").is_none());
        assert_eq!(lines[2]["error"], "timeout");
        let times: Vec<u64> = lines
            .iter()
            .map(|l| l["time"].as_u64().unwrap_or(0))
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    fn client(p: u64, ty: EventType, f: &str, value: serde_json::Value) -> Event {
        Event {
            process: Process::Client(p),
            ty,
            f: f.into(),
            key: Some("k".into()),
            value,
            error: None,
            node: None,
        }
    }

    /// The live checker sees exactly what is written: a stale read is found while the history
    /// is still open, and the end-of-run verdict equals a re-check of the file.
    #[test]
    fn feeds_the_live_checker_what_it_writes() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("harness-rec-live-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("history.jsonl");
        let limit = std::time::Duration::from_secs(10);
        let live = Arc::new(Live::new(limit));
        let (rec, writer) = Recorder::create(&path, Instant::now(), Some(Arc::clone(&live)))?;
        rec.record(client(0, EventType::Invoke, "write", json!("a")));
        rec.record(client(0, EventType::Ok, "write", json!("a")));
        rec.record(client(1, EventType::Invoke, "write", json!("b")));
        rec.record(client(1, EventType::Ok, "write", json!("b")));
        // Reads "a" after "b" was acknowledged: not linearizable.
        rec.record(client(2, EventType::Invoke, "read", json!(null)));
        rec.record(client(2, EventType::Ok, "read", json!("a")));
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while live.violation().is_none() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let v = live.violation();
        assert!(
            v.is_some(),
            "no live violation: {}",
            live.status().describe()
        );
        assert!(v
            .as_deref()
            .and_then(super::super::checker::violating_op_time)
            .is_some());
        assert_eq!(writer.finish()?, 6);
        let checked = live.finish(&path, limit);
        let again = super::super::checker::check(&path, limit);
        assert_eq!(
            checked.verdict,
            super::super::checker::Verdict::NotLinearizable
        );
        assert_eq!(again.verdict, checked.verdict);
        assert!(checked.html.is_some());
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
