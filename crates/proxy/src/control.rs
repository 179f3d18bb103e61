//! The link table every thread consults: the state of each directed link, behind one mutex and
//! one condvar.
//!
//! One lock for the whole table (rather than one per link) because a connection waiting to be
//! dialed depends on two links at once, and state changes are rare next to the per-chunk reads
//! of it; the critical sections are a few loads. Pumps find their link by a dense index, fixed
//! when the link is created, so the per-chunk path does no string comparison.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::link::{LinkId, LinkState};

/// How often a waiting thread re-checks its own abort condition even without a notification.
/// A safety net only: every state change and every abort notifies.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// Locks, ignoring poison: a panicking proxy thread is our bug and already reported; the table
/// itself stays consistent because every update is a plain store.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Per-link counters, updated without the table lock.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Bytes delivered `from -> to`, on connections in either direction.
    pub bytes: AtomicU64,
    /// Connections dialed `from -> to`: accepted by this link's listener, or by `to`'s
    /// destination listener and attributed to `from`.
    pub connections_total: AtomicU64,
    /// Of those, the ones accepted by a destination listener.
    pub connections_attributed: AtomicU64,
    /// Of those, still open.
    pub connections_active: AtomicU64,
    /// Connections reset on heal because this link held something of theirs.
    pub resets: AtomicU64,
    /// Connections whose dial to the target failed (e.g. the node is down).
    pub dial_failures: AtomicU64,
    /// Connections accepted while held whose dialer had closed or died by the heal: dropped.
    pub ghosts: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// One directed link.
#[derive(Debug)]
pub(crate) struct Slot {
    pub id: LinkId,
    pub state: LinkState,
    /// Bumped every time the link leaves `Hold`, so that a holder that slept through a short
    /// heal-and-hold-again still learns that a heal happened.
    pub heal_epoch: u64,
    /// The listener and target, when this direction has a listener (its reverse may not).
    pub listen: Option<(SocketAddr, SocketAddr)>,
    pub counters: Arc<Counters>,
}

#[derive(Debug, Default)]
pub(crate) struct Table {
    pub closing: bool,
    index: BTreeMap<LinkId, usize>,
    pub slots: Vec<Slot>,
}

impl Table {
    pub(crate) fn find(&self, id: &LinkId) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The slot for `id`, created in `Pass` if new.
    pub(crate) fn ensure(&mut self, id: &LinkId) -> usize {
        if let Some(i) = self.find(id) {
            return i;
        }
        let i = self.slots.len();
        self.slots.push(Slot {
            id: id.clone(),
            state: LinkState::Pass,
            heal_epoch: 0,
            listen: None,
            counters: Arc::default(),
        });
        self.index.insert(id.clone(), i);
        i
    }

    /// A slot that no [`LinkId`] finds: never listed, never set by the API, so always `Pass`.
    /// Carries a destination's self-dials, which no link governs.
    pub(crate) fn private(&mut self, id: LinkId) -> usize {
        self.slots.push(Slot {
            id,
            state: LinkState::Pass,
            heal_epoch: 0,
            listen: None,
            counters: Arc::default(),
        });
        self.slots.len() - 1
    }

    /// Sets a state; returns the previous one.
    pub(crate) fn set(&mut self, i: usize, state: LinkState) -> LinkState {
        let slot = &mut self.slots[i];
        let old = slot.state;
        if old == LinkState::Hold && state != LinkState::Hold {
            slot.heal_epoch += 1;
        }
        slot.state = state;
        old
    }

    /// The heal epoch of every slot, by index: a snapshot to tell later whether a link was
    /// healed since (see [`Control::wait_open`]).
    pub(crate) fn epochs(&self) -> Vec<u64> {
        self.slots.iter().map(|s| s.heal_epoch).collect()
    }

    /// Slots in `LinkId` order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.index.values().map(|&i| &self.slots[i])
    }
}

/// A snapshot of one link, taken under the lock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gate {
    pub closing: bool,
    pub state: LinkState,
    pub heal_epoch: u64,
}

/// Why a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The link was healed (left `Hold`) since the wait began.
    Released,
    /// The proxy is shutting down.
    Closing,
    /// The caller's own abort condition became true (e.g. its connection was reset).
    Aborted,
}

#[derive(Debug, Default)]
pub(crate) struct Control {
    table: Mutex<Table>,
    changed: Condvar,
}

impl Control {
    pub(crate) fn table(&self) -> MutexGuard<'_, Table> {
        lock(&self.table)
    }

    /// Wakes every waiter so it re-checks: after a state change, an abort, or shutdown.
    pub(crate) fn notify(&self) {
        self.changed.notify_all();
    }

    pub(crate) fn gate(&self, i: usize) -> Gate {
        let t = self.table();
        let s = &t.slots[i];
        Gate {
            closing: t.closing,
            state: s.state,
            heal_epoch: s.heal_epoch,
        }
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.table().closing
    }

    pub(crate) fn close(&self) {
        self.table().closing = true;
        self.notify();
    }

    /// Blocks until link `i` has been healed since `epoch`, the proxy closes, or `aborted()`.
    pub(crate) fn wait_release(&self, i: usize, epoch: u64, aborted: impl Fn() -> bool) -> Wake {
        let mut t = self.table();
        loop {
            if t.closing {
                return Wake::Closing;
            }
            if t.slots[i].heal_epoch != epoch {
                return Wake::Released;
            }
            if aborted() {
                return Wake::Aborted;
            }
            t = self
                .changed
                .wait_timeout(t, WAIT_SLICE)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Blocks while either link is held: a TCP handshake needs both directions. Returns whether
    /// the connection attempt was held at any time since `since` (the [`Table::epochs`] taken
    /// when it was accepted): it had to wait, or a link was healed in between, even if this
    /// thread only got here after the heal. Or `Err(Wake::Closing)`.
    pub(crate) fn wait_open(&self, a: usize, b: usize, since: &[u64]) -> Result<bool, Wake> {
        let mut t = self.table();
        // A slot created after the accept was in `Pass`, with epoch 0, at the accept.
        let healed_since =
            |t: &Table, i: usize| t.slots[i].heal_epoch != since.get(i).copied().unwrap_or(0);
        let mut waited = false;
        loop {
            if t.closing {
                return Err(Wake::Closing);
            }
            if t.slots[a].state != LinkState::Hold && t.slots[b].state != LinkState::Hold {
                return Ok(waited || healed_since(&t, a) || healed_since(&t, b));
            }
            waited = true;
            t = self
                .changed
                .wait_timeout(t, WAIT_SLICE)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn leaving_hold_bumps_the_heal_epoch_once() {
        let mut t = Table::default();
        let i = t.ensure(&LinkId::new("a", "b"));
        assert_eq!(t.ensure(&LinkId::new("a", "b")), i);
        t.set(i, LinkState::Hold);
        t.set(i, LinkState::Hold);
        assert_eq!(t.slots[i].heal_epoch, 0);
        t.set(i, LinkState::Pass);
        t.set(i, LinkState::Pass);
        assert_eq!(t.slots[i].heal_epoch, 1);
    }

    #[test]
    fn wait_release_wakes_on_heal_and_on_close() {
        let c = Arc::new(Control::default());
        let i = {
            let mut t = c.table();
            let i = t.ensure(&LinkId::new("a", "b"));
            t.set(i, LinkState::Hold);
            i
        };
        let epoch = c.gate(i).heal_epoch;
        let waiter = {
            let c = Arc::clone(&c);
            thread::spawn(move || c.wait_release(i, epoch, || false))
        };
        thread::sleep(Duration::from_millis(20));
        c.table().set(i, LinkState::Pass);
        c.notify();
        assert_eq!(waiter.join().ok(), Some(Wake::Released));

        c.table().set(i, LinkState::Hold);
        let epoch = c.gate(i).heal_epoch;
        let waiter = {
            let c = Arc::clone(&c);
            thread::spawn(move || c.wait_release(i, epoch, || false))
        };
        c.close();
        assert_eq!(waiter.join().ok(), Some(Wake::Closing));
    }

    #[test]
    fn wait_open_reports_a_hold_healed_before_the_wait_began() {
        let c = Control::default();
        let (a, b, since) = {
            let mut t = c.table();
            let a = t.ensure(&LinkId::new("a", "b"));
            let b = t.ensure(&LinkId::new("b", "a"));
            (a, b, t.epochs())
        };
        assert_eq!(c.wait_open(a, b, &since), Ok(false));
        c.table().set(b, LinkState::Hold);
        c.table().set(b, LinkState::Pass);
        assert_eq!(c.wait_open(a, b, &since), Ok(true));
        // A slot created after the snapshot counts from epoch 0.
        let late = c.table().ensure(&LinkId::new("a", "c"));
        let now = c.table().epochs();
        assert_eq!(c.wait_open(late, b, &now), Ok(false));
        assert_eq!(c.wait_open(late, late, &since), Ok(false));
    }

    #[test]
    fn table_iterates_in_link_order() {
        let mut t = Table::default();
        for (a, b) in [("n3", "n1"), ("n1", "n2"), ("n2", "n1")] {
            t.ensure(&LinkId::new(a, b));
        }
        let order: Vec<String> = t.iter().map(|s| s.id.to_string()).collect();
        assert_eq!(order, ["n1->n2", "n2->n1", "n3->n1"]);
    }
}
