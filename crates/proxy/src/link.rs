//! Link identity and link state: the plain values the API speaks in.
//!
//! A [`LinkId`] names a *directed* pair of endpoints. Its [`LinkState`] governs every byte that
//! travels from `from` to `to`, whichever side dialed the TCP connection that carries it (see the
//! crate docs for why). [`LinkState::verdict`] turns the state into a per-chunk decision; it is
//! the only place randomness enters, through an RNG the caller passes in.

use std::fmt;
use std::time::Duration;

use rand::Rng;

/// A directed link between two named endpoints (nodes or clients), `from -> to`.
///
/// Ordered (`Ord`) so that every map keyed by it iterates deterministically.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId {
    /// The endpoint bytes leave from.
    pub from: String,
    /// The endpoint bytes go to.
    pub to: String,
}

impl LinkId {
    /// The link `from -> to`.
    pub fn new(from: impl Into<String>, to: impl Into<String>) -> Self {
        LinkId {
            from: from.into(),
            to: to.into(),
        }
    }

    /// The same pair in the other direction, `to -> from`.
    pub fn reversed(&self) -> Self {
        LinkId {
            from: self.to.clone(),
            to: self.from.clone(),
        }
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.from, self.to)
    }
}

/// What a directed link does to the bytes travelling along it. Applies to live connections as
/// soon as it is set, and to new ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LinkState {
    /// Bytes flow untouched.
    #[default]
    Pass,
    /// Drop-and-hold: bytes stop and stay in the proxy (and, once its buffer is full, in the
    /// kernel's socket buffers, so the sender eventually blocks as it would behind a dead
    /// network). On heal they are delivered late or their connection is reset, per
    /// [`HealMode`](crate::HealMode).
    Hold,
    /// Every chunk is delivered `base + U[0, jitter]` after the proxy read it, never before a
    /// chunk read earlier on the same connection (byte order is preserved; a chunk may wait
    /// behind an earlier chunk that drew a larger delay).
    Delay {
        /// The minimum added latency.
        base: Duration,
        /// The maximum extra latency on top of `base`, drawn uniformly per chunk.
        jitter: Duration,
    },
}

/// The decision for one chunk of bytes, read from a connection on a link in a given state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Deliver now.
    Pass,
    /// Keep it until the link is healed.
    Hold,
    /// Deliver it this long after it was read.
    Delay(Duration),
}

impl LinkState {
    /// Decides the fate of one chunk. Draws from `rng` only for a `Delay` with jitter, so a
    /// seeded RNG gives the same delays for the same sequence of chunks.
    pub(crate) fn verdict(&self, rng: &mut impl Rng) -> Verdict {
        match *self {
            LinkState::Pass => Verdict::Pass,
            LinkState::Hold => Verdict::Hold,
            LinkState::Delay { base, jitter } => {
                let jitter_ns = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
                let extra = if jitter_ns == 0 {
                    0
                } else {
                    rng.random_range(0..=jitter_ns)
                };
                Verdict::Delay(base.saturating_add(Duration::from_nanos(extra)))
            }
        }
    }
}

/// Every directed link that crosses between two different groups: the links to hold for the
/// partition `groups` (e.g. `[["n1","n2"],["n3","n4","n5"]]`). Links inside a group are left
/// out, and so is any endpoint not named in a group. Sorted, without duplicates.
///
/// For a one-way cut, take the links whose `from` is in one group only, or list them by hand.
pub fn cut_between<G, S>(groups: &[G]) -> Vec<LinkId>
where
    G: AsRef<[S]>,
    S: AsRef<str>,
{
    let mut links = std::collections::BTreeSet::new();
    for (gi, a) in groups.iter().enumerate() {
        for (gj, b) in groups.iter().enumerate() {
            if gi == gj {
                continue;
            }
            for from in a.as_ref() {
                for to in b.as_ref() {
                    // A name listed in two groups would yield a self-link; there is no such link.
                    if from.as_ref() != to.as_ref() {
                        links.insert(LinkId::new(from.as_ref(), to.as_ref()));
                    }
                }
            }
        }
    }
    links.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn delay_verdict_stays_within_base_and_base_plus_jitter() {
        let state = LinkState::Delay {
            base: Duration::from_millis(5),
            jitter: Duration::from_millis(3),
        };
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            match state.verdict(&mut rng) {
                Verdict::Delay(d) => {
                    assert!(d >= Duration::from_millis(5) && d <= Duration::from_millis(8))
                }
                other => panic!("unexpected verdict {other:?}"),
            }
        }
    }

    #[test]
    fn same_seed_gives_same_delays() {
        let state = LinkState::Delay {
            base: Duration::ZERO,
            jitter: Duration::from_secs(1),
        };
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20).map(|_| state.verdict(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn zero_jitter_is_exactly_base_and_pass_hold_map_through() {
        let mut rng = StdRng::seed_from_u64(1);
        let base = Duration::from_millis(2);
        let state = LinkState::Delay {
            base,
            jitter: Duration::ZERO,
        };
        assert_eq!(state.verdict(&mut rng), Verdict::Delay(base));
        assert_eq!(LinkState::Pass.verdict(&mut rng), Verdict::Pass);
        assert_eq!(LinkState::Hold.verdict(&mut rng), Verdict::Hold);
    }

    #[test]
    fn cut_between_lists_crossing_links_in_both_directions() {
        let links = cut_between(&[vec!["n1", "n2"], vec!["n3"]]);
        let names: Vec<String> = links.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            ["n1->n3", "n2->n3", "n3->n1", "n3->n2"].map(String::from)
        );
    }

    #[test]
    fn link_id_displays_and_reverses() {
        let l = LinkId::new("a", "b");
        assert_eq!(l.to_string(), "a->b");
        assert_eq!(l.reversed(), LinkId::new("b", "a"));
    }
}
