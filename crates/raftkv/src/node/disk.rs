//! The disk writer thread: group commit.
//!
//! It takes everything queued (in order), appends all of it, issues one fsync, reports the
//! persisted index to the Raft thread's inbox and only then sends the messages that waited for
//! the write ([`PersistTask::persist_then_send`] fixes that order). While it fsyncs, the Raft
//! thread keeps stepping messages and queueing the next writes, which form the next batch.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use raft::{PersistTask, Snapshot};

use super::Event;
use crate::planted;
use crate::storage::{Storage, StorageError, WriteBatch};
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
    /// PLANTED(fx-lazy-log): log entries are reported durable at once but written and synced
    /// only every 1-2 s (`crate::planted::LAZY_SYNC_MIN`). Always false in `raftkv`.
    pub lazy: bool,
}

impl DiskWriter {
    /// Runs until the Raft thread hangs up (after writing what is still queued) or storage
    /// fails (reported to the Raft thread as fatal).
    pub fn run(mut self, work: &Receiver<DiskMsg>) {
        let mut next_sync = planted::next_lazy_sync(Instant::now());
        loop {
            let first = if self.lazy {
                match work.recv_deadline(next_sync) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match work.recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                }
            };
            let mut result = Ok(());
            if let Some(first) = first {
                let mut batch = vec![first];
                while batch.len() < MAX_TASKS_PER_BATCH {
                    match work.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(_) => break,
                    }
                }
                result = self.write_batch(batch);
            }
            if result.is_ok() && self.lazy && Instant::now() >= next_sync {
                result = self.storage.sync();
                next_sync = planted::next_lazy_sync(Instant::now());
            }
            if let Err(e) = result {
                self.fail(e);
                return;
            }
        }
        if self.lazy {
            // A clean stop loses nothing, even here.
            if let Err(e) = self.storage.sync() {
                self.fail(e);
            }
        }
    }

    fn fail(&self, e: StorageError) {
        error!("storage failed, stopping: {e}");
        let _ = self.inbox.send(Event::Fatal(super::NodeError::Storage {
            dir: self.storage.dir().display().to_string(),
            source: e,
        }));
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
        let (outbox, inbox, lazy) = (&self.outbox, &self.inbox, self.lazy);
        PersistTask::persist_then_send(
            tasks,
            |tasks| {
                // Each task is staged in the durable order (term and vote, snapshot, entries;
                // see `storage::WriteBatch`), so a crash anywhere in the group leaves a state
                // Raft accepts; one sync then covers the whole group.
                for t in tasks {
                    storage.stage(&WriteBatch {
                        hard_state: t.hard_state(),
                        snapshot: t.snapshot(),
                        entries: t.entries(),
                    })?;
                }
                // PLANTED(fx-lazy-log): the entries stay in memory until the next periodic
                // sync, yet are reported durable below, and their messages sent. (Term and
                // vote are durable already: staging writes them at once.)
                if !lazy {
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
