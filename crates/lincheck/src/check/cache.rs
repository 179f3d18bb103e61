//! Lowe's memoisation: the set of configurations (linearized set, model state) already explored.
//!
//! A configuration is stored compactly: the linearized set is a bitset over the key's operations
//! (numbered in invocation order), which in practice is "everything below a watermark, plus a few
//! bits above it". We store only the words between the first word that is not all ones and the
//! last word that is not zero, so an entry costs a few words however long the history is.
//!
//! The table is open addressing with linear probing over `u32` entry indices; entries live in
//! flat arenas. Nothing is allocated per lookup; arenas grow geometrically.

use std::hash::{Hash, Hasher};

/// A fast, non-cryptographic hasher for model states (FxHash's mixing step).
#[derive(Default)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let mut w = [0u8; 8];
        let rest = chunks.remainder();
        w[..rest.len()].copy_from_slice(rest);
        self.write_u64(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64)
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Hash of a model state.
pub(crate) fn state_hash<S: Hash>(s: &S) -> u64 {
    let mut h = FxHasher::default();
    s.hash(&mut h);
    splitmix64(h.finish())
}

/// A well-mixed 64-bit value per operation index: the linearized set's hash is the XOR of these
/// (Zobrist hashing), so adding or removing an operation updates it in O(1).
#[inline]
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The linearized set, with the bookkeeping that makes its compact form cheap to take.
///
/// Bit positions below `split` belong to definite operations (in invocation order), the rest to
/// indefinite ones. The two regions are kept apart so that an indefinite operation that stays
/// unlinearized for the whole history does not pin the low watermark: the definite region is
/// stored as a window, the (small) indefinite region whole.
pub(crate) struct Bitset {
    words: Vec<u64>,
    extra: Vec<u64>,
    split: usize,
    /// Every definite word below `low` is all ones.
    low: usize,
    /// Every definite word from `high` on is zero.
    high: usize,
    /// Zobrist hash of the set.
    pub hash: u64,
}

impl Bitset {
    /// A set over `definite + indefinite` positions.
    pub fn new(definite: usize, indefinite: usize) -> Self {
        Self {
            words: vec![0; definite.div_ceil(64).max(1)],
            extra: vec![0; indefinite.div_ceil(64)],
            split: definite,
            low: 0,
            high: 0,
            hash: 0,
        }
    }

    #[inline]
    pub fn set(&mut self, i: usize) {
        self.hash ^= splitmix64(i as u64);
        if i >= self.split {
            let j = i - self.split;
            self.extra[j / 64] |= 1 << (j % 64);
            return;
        }
        self.words[i / 64] |= 1 << (i % 64);
        self.high = self.high.max(i / 64 + 1);
        while self.low < self.words.len() && self.words[self.low] == u64::MAX {
            self.low += 1;
        }
    }

    #[inline]
    pub fn clear(&mut self, i: usize) {
        self.hash ^= splitmix64(i as u64);
        if i >= self.split {
            let j = i - self.split;
            self.extra[j / 64] &= !(1 << (j % 64));
            return;
        }
        self.words[i / 64] &= !(1 << (i % 64));
        self.low = self.low.min(i / 64);
        while self.high > 0 && self.words[self.high - 1] == 0 {
            self.high -= 1;
        }
    }

    /// Whether position `i` is in the set.
    #[inline]
    pub fn contains(&self, i: usize) -> bool {
        if i >= self.split {
            let j = i - self.split;
            return self.extra[j / 64] & (1 << (j % 64)) != 0;
        }
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// The compact form: (first definite word not all ones, the definite words from there to
    /// the last nonzero one, the indefinite words).
    #[inline]
    fn compact(&self) -> (usize, &[u64], &[u64]) {
        let high = self.high.max(self.low);
        (self.low, &self.words[self.low..high], &self.extra)
    }
}

/// One stored configuration.
#[derive(Clone, Copy)]
struct Entry<S> {
    hash: u64,
    state: S,
    /// Offset of the stored words in `words`.
    off: u32,
    /// Index of the first stored word in the full bitset.
    low: u32,
    /// Number of stored words.
    len: u32,
}

/// The set of explored configurations.
pub(crate) struct Cache<S> {
    /// Slot: 0 when empty, else (high 32 bits of the hash) << 32 | (entry index + 1), so most
    /// probes are answered from the table alone.
    table: Vec<u64>,
    mask: usize,
    entries: Vec<Entry<S>>,
    words: Vec<u64>,
}

impl<S: Copy + Eq> Cache<S> {
    pub fn new() -> Self {
        Self::with_slots(1024)
    }

    /// A cache whose table starts with `slots` slots (a power of two); it grows as needed.
    pub fn with_slots(slots: usize) -> Self {
        let slots = slots.next_power_of_two().max(16);
        Self {
            table: vec![0; slots],
            mask: slots - 1,
            entries: Vec::new(),
            words: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.table.capacity() * 8
            + self.entries.capacity() * std::mem::size_of::<Entry<S>>()
            + self.words.capacity() * 8
    }

    /// Inserts the configuration; `false` if it was already there.
    #[inline]
    pub fn insert(&mut self, bits: &Bitset, state: S, state_hash: u64) -> bool {
        let hash = bits.hash ^ state_hash;
        let tag = hash & 0xffff_ffff_0000_0000;
        let (low, slice, extra) = bits.compact();
        let mut slot = (hash as usize) & self.mask;
        loop {
            let t = self.table[slot];
            if t == 0 {
                break;
            }
            if t & 0xffff_ffff_0000_0000 == tag {
                let e = &self.entries[(t as u32 - 1) as usize];
                if e.hash == hash
                    && e.state == state
                    && e.low as usize == low
                    && e.len as usize == slice.len()
                    && self.words[e.off as usize..e.off as usize + e.len as usize] == *slice
                    && self.words[e.off as usize + e.len as usize..][..extra.len()] == *extra
                {
                    return false;
                }
            }
            slot = (slot + 1) & self.mask;
        }
        let i = self.entries.len();
        self.table[slot] = tag | (i as u64 + 1);
        self.entries.push(Entry {
            hash,
            state,
            off: self.words.len() as u32,
            low: low as u32,
            len: slice.len() as u32,
        });
        self.words.extend_from_slice(slice);
        self.words.extend_from_slice(extra);
        if self.entries.len() * 2 > self.table.len() {
            self.grow();
        }
        true
    }

    fn grow(&mut self) {
        let n = self.table.len() * 2;
        self.table = vec![0; n];
        self.mask = n - 1;
        for (i, e) in self.entries.iter().enumerate() {
            let mut slot = (e.hash as usize) & self.mask;
            while self.table[slot] != 0 {
                slot = (slot + 1) & self.mask;
            }
            self.table[slot] = (e.hash & 0xffff_ffff_0000_0000) | (i as u64 + 1);
        }
    }
}
