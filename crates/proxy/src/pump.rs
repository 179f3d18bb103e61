//! Byte forwarding for one direction of one connection, under the state of one directed link.
//!
//! The pump reads a chunk, asks the link for a verdict, and either writes it at once (the
//! `Pass` fast path: no copy, no queue) or queues it with a due time. Queued chunks leave in
//! read order, so byte order within the connection is preserved under any state. End of stream
//! and a reset from the sender are queued like data, so they too are held or delayed behind the
//! bytes that preceded them.
//!
//! While the link is held and a chunk is waiting, the pump reads no more: further bytes back up
//! in the kernel's buffers and the sender eventually blocks, as it would behind a dead network,
//! and memory stays bounded.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, trace};
use rand::rngs::StdRng;

use crate::conn::{Conn, Shared};
use crate::control::{Counters, Wake};
use crate::link::{LinkState, Verdict};
use crate::{sock, HealMode};

/// Bytes read per chunk.
const CHUNK: usize = 64 * 1024;
/// Above this many queued bytes (under `Delay`) the pump stops reading until some are delivered.
const MAX_QUEUED: usize = 4 * 1024 * 1024;
/// The longest a pump with queued chunks sleeps before re-checking the link: how quickly a
/// switch from `Delay` to `Pass` flushes chunks that were scheduled later.
const POLL: Duration = Duration::from_millis(20);

/// Which way bytes go on the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Dialer to target (`from -> to` of the listener's link).
    Forward,
    /// Target back to dialer.
    Backward,
}

#[derive(Debug)]
enum Item {
    Data(Vec<u8>),
    /// The sender closed its side: pass the FIN on.
    Eof,
    /// Reading failed (the sender reset): reset the receiver too.
    Reset,
}

#[derive(Debug)]
struct Chunk {
    item: Item,
    due: Instant,
}

/// Whether the pump goes on after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Done,
}

pub(crate) struct Pump {
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    dir: Dir,
    /// Slot of the directed link governing this direction.
    link: usize,
    counters: Arc<Counters>,
    /// e.g. `n2->n1 on n1->n2#3`, for log lines.
    label: String,
    rng: StdRng,
    queue: VecDeque<Chunk>,
    queued_bytes: usize,
    /// Due time of the last queued chunk: later chunks are never due earlier.
    last_due: Option<Instant>,
    /// Eof or Reset has been read: nothing more to read.
    src_done: bool,
    /// The read timeout currently set on the source socket (avoids a syscall per chunk).
    read_timeout: Option<Duration>,
    /// This hold episode has been logged.
    holding: bool,
}

impl Pump {
    pub(crate) fn new(
        shared: Arc<Shared>,
        conn: Arc<Conn>,
        dir: Dir,
        link: usize,
        rng: StdRng,
    ) -> Pump {
        let (label, counters) = {
            let t = shared.control.table();
            let slot = &t.slots[link];
            (
                format!("{} on {}", slot.id, conn.label),
                Arc::clone(&slot.counters),
            )
        };
        Pump {
            shared,
            conn,
            dir,
            link,
            counters,
            label,
            rng,
            queue: VecDeque::new(),
            queued_bytes: 0,
            last_due: None,
            src_done: false,
            read_timeout: None,
            holding: false,
        }
    }

    fn src(&self) -> &TcpStream {
        match self.dir {
            Dir::Forward => &self.conn.client,
            Dir::Backward => &self.conn.server,
        }
    }

    fn dst(&self) -> &TcpStream {
        match self.dir {
            Dir::Forward => &self.conn.server,
            Dir::Backward => &self.conn.client,
        }
    }

    /// Runs until the stream ends (FIN passed on), either side resets, or the connection is
    /// aborted (heal-reset, shutdown).
    pub(crate) fn run(mut self) {
        let mut buf = vec![0u8; CHUNK];
        while !self.conn.is_aborted() {
            let flow = if self.queue.is_empty() {
                self.read(&mut buf)
            } else {
                match self.drain() {
                    // Released from a hold: the queue is due now, drain it before reading.
                    Flow::Continue if self.head_due() => Flow::Continue,
                    Flow::Continue if !self.queue.is_empty() => self.wait_or_read(&mut buf),
                    flow => flow,
                }
            };
            if flow == Flow::Done {
                return;
            }
        }
    }

    fn head_due(&self) -> bool {
        self.queue.front().is_some_and(|c| c.due <= Instant::now())
    }

    /// Delivers whatever the link lets through now; blocks while it is held.
    fn drain(&mut self) -> Flow {
        let gate = self.shared.control.gate(self.link);
        if gate.closing {
            return Flow::Done;
        }
        match gate.state {
            LinkState::Hold => self.hold(gate.heal_epoch),
            // Healed to Pass: chunks scheduled for later go now, in order.
            LinkState::Pass => self.deliver_due(None),
            LinkState::Delay { .. } => self.deliver_due(Some(Instant::now())),
        }
    }

    fn hold(&mut self, epoch: u64) -> Flow {
        if !self.holding {
            self.holding = true;
            debug!(target: "proxy", "hold {}: {} bytes waiting", self.label, self.queued_bytes);
        }
        let conn = Arc::clone(&self.conn);
        match self
            .shared
            .control
            .wait_release(self.link, epoch, || conn.is_aborted())
        {
            Wake::Closing | Wake::Aborted => Flow::Done,
            Wake::Released => {
                self.holding = false;
                match self.shared.heal_mode {
                    HealMode::Reset => {
                        debug!(target: "proxy", "reset {}: healed with bytes held", self.label);
                        Counters::add(&self.counters.resets, 1);
                        self.conn.abort(&self.shared.control);
                        Flow::Done
                    }
                    HealMode::Deliver => {
                        let (label, n) = (&self.label, self.queued_bytes);
                        debug!(target: "proxy", "release {label}: {n} bytes");
                        // Held bytes go as soon as the hold lifts, whatever the new state.
                        let now = Instant::now();
                        for c in &mut self.queue {
                            c.due = now;
                        }
                        self.last_due = Some(now);
                        Flow::Continue
                    }
                }
            }
        }
    }

    /// Delivers queued chunks due by `limit` (all of them for `None`).
    fn deliver_due(&mut self, limit: Option<Instant>) -> Flow {
        while let Some(head) = self.queue.front() {
            if limit.is_some_and(|l| head.due > l) {
                break;
            }
            let Some(chunk) = self.queue.pop_front() else {
                break;
            };
            if let Item::Data(d) = &chunk.item {
                self.queued_bytes -= d.len();
            }
            if self.deliver(&chunk.item) == Flow::Done {
                return Flow::Done;
            }
        }
        Flow::Continue
    }

    /// With chunks still queued (they are delayed): read more if there is room and a source,
    /// else sleep until the head is due.
    fn wait_or_read(&mut self, buf: &mut [u8]) -> Flow {
        let until_due = self
            .queue
            .front()
            .map_or(POLL, |c| c.due.saturating_duration_since(Instant::now()));
        if self.src_done || self.queued_bytes >= MAX_QUEUED {
            thread::sleep(until_due.min(POLL));
            return Flow::Continue;
        }
        self.read(buf)
    }

    /// Reads one chunk and delivers or queues it. With a queue, the read times out when the head
    /// is due, so delivery is not late behind a silent sender.
    fn read(&mut self, buf: &mut [u8]) -> Flow {
        let timeout = self.queue.front().map(|c| {
            c.due
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(1), POLL)
        });
        if timeout != self.read_timeout {
            if self.src().set_read_timeout(timeout).is_err() {
                // Only fails on a dead socket: end as a reset would.
                return self.deliver(&Item::Reset);
            }
            self.read_timeout = timeout;
        }
        // `None` is data: `buf[..n]`, kept in the buffer until we know whether to copy it.
        let (n, end) = match self.src().read(buf) {
            Ok(0) => (0, Some(Item::Eof)),
            Ok(n) => (n, None),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                return Flow::Continue
            }
            Err(_) => (0, Some(Item::Reset)),
        };
        if self.conn.is_aborted() {
            // Our own abort woke the read (it returns 0): nothing more to pass on.
            return Flow::Done;
        }
        self.src_done = end.is_some();
        let gate = self.shared.control.gate(self.link);
        if gate.closing {
            return Flow::Done;
        }
        let now = Instant::now();
        let due = match gate.state.verdict(&mut self.rng) {
            Verdict::Pass if self.queue.is_empty() => {
                // Fast path: straight from the read buffer, no copy.
                return match end {
                    None => self.deliver_bytes(&buf[..n]),
                    Some(item) => self.deliver(&item),
                };
            }
            Verdict::Pass | Verdict::Hold => now,
            Verdict::Delay(d) => {
                trace!(target: "proxy", "delay {}: {n} bytes by {d:?}", self.label);
                (now + d).max(self.last_due.unwrap_or(now))
            }
        };
        let item = end.unwrap_or_else(|| {
            self.queued_bytes += n;
            Item::Data(buf[..n].to_vec())
        });
        self.last_due = Some(due);
        self.queue.push_back(Chunk { item, due });
        Flow::Continue
    }

    fn deliver(&mut self, item: &Item) -> Flow {
        match item {
            Item::Data(d) => self.deliver_bytes(d),
            Item::Eof => {
                // Half-close: the other direction may still be talking.
                let _ = self.dst().shutdown(Shutdown::Write);
                Flow::Done
            }
            Item::Reset => {
                self.conn.abort(&self.shared.control);
                Flow::Done
            }
        }
    }

    fn deliver_bytes(&mut self, data: &[u8]) -> Flow {
        let conn = Arc::clone(&self.conn);
        match sock::write_all(self.dst(), data, || conn.is_aborted()) {
            Ok(()) => {
                Counters::add(&self.counters.bytes, data.len() as u64);
                Flow::Continue
            }
            Err(e) => {
                // The receiver is gone: the sender's connection cannot go on either.
                if !self.conn.is_aborted() {
                    debug!(target: "proxy", "reset {}: write failed ({e})", self.label);
                }
                self.conn.abort(&self.shared.control);
                Flow::Done
            }
        }
    }
}
