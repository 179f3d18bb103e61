//! The disk writer thread: group commit.
//!
//! It takes everything queued (in order), appends all of it, issues one fsync, reports the
//! persisted index to the Raft thread's inbox and only then sends the messages that waited for
//! the write ([`PersistTask::persist_then_send`] fixes that order). While it fsyncs, the Raft
//! thread keeps stepping messages and queueing the next writes, which form the next batch.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use raft::{PersistTask, Snapshot};

use super::Event;
use crate::storage::{Storage, StorageError};
use crate::transport::Outbox;
use crate::{debug, error};

/// Tasks taken per batch at most, so that one batch cannot grow without bound.
const MAX_TASKS_PER_BATCH: usize = 4096;

/// Work for the disk writer, in the order the Raft thread produced it.
#[derive(Debug)]
pub enum DiskMsg {
    /// A Ready's snapshot, entries and hard state, and the messages that wait for them.
    Persist(PersistTask),
    /// A snapshot the applier made (the core has already compacted its memory through it):
    /// store it, then drop the log entries it covers.
    Compact(Snapshot),
}

pub struct DiskWriter {
    pub storage: Storage,
    pub outbox: Arc<Outbox>,
    pub inbox: Sender<Event>,
}

impl DiskWriter {
    /// Runs until the Raft thread hangs up (after writing what is still queued) or storage
    /// fails (reported to the Raft thread as fatal).
    pub fn run(mut self, work: &Receiver<DiskMsg>) {
        while let Ok(first) = work.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_TASKS_PER_BATCH {
                match work.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.write_batch(batch) {
                error!("storage failed, stopping: {e}");
                let _ = self.inbox.send(Event::Fatal(super::NodeError::Storage {
                    dir: self.storage.dir().display().to_string(),
                    source: e,
                }));
                return;
            }
        }
    }

    fn write_batch(&mut self, batch: Vec<DiskMsg>) -> Result<(), StorageError> {
        let mut tasks = Vec::new();
        for m in batch {
            match m {
                DiskMsg::Persist(t) => tasks.push(t),
                DiskMsg::Compact(s) => {
                    self.flush(std::mem::take(&mut tasks))?;
                    self.storage.save_snapshot(&s)?;
                    debug!("snapshot at {} ({} bytes)", s.meta.index.0, s.data.len());
                }
            }
        }
        self.flush(tasks)
    }

    fn flush(&mut self, tasks: Vec<PersistTask>) -> Result<(), StorageError> {
        if tasks.is_empty() {
            return Ok(());
        }
        let storage = &mut self.storage;
        let (outbox, inbox) = (&self.outbox, &self.inbox);
        PersistTask::persist_then_send(
            tasks,
            |tasks| {
                let mut dirty = false;
                for t in tasks {
                    if let Some(s) = t.snapshot() {
                        storage.save_snapshot(s)?;
                    }
                    if !t.entries().is_empty() {
                        storage.append(t.entries())?;
                        dirty = true;
                    }
                    if let Some(hs) = t.hard_state() {
                        storage.set_hard_state(hs)?;
                        dirty = true;
                    }
                }
                if dirty {
                    storage.sync()?;
                }
                Ok(())
            },
            |p| {
                let _ = inbox.send(Event::Persisted(p));
            },
            |m| outbox.send(m),
        )
    }
}
