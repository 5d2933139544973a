//! Deterministic hashing and interning: repeated strings and tuples become small integer ids.
//!
//! No randomness anywhere (the guest has none): the hash is a fixed-seed multiply and
//! xor-shift on 64-bit words.

use core::hash::{Hash, Hasher};
use hashbrown::HashTable;

const K0: u64 = 0x243f_6a88_85a3_08d3;
const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xd6e8_feb8_6659_fd93;

/// Multiplies and folds the high bits down, with 64-bit products only: wasm32 has no
/// 64×64→128 multiply and would call a slow `__multi3` for one.
#[inline(always)]
fn mix(a: u64, b: u64) -> u64 {
    let x = (a ^ b).wrapping_mul(K1);
    x ^ (x >> 29)
}

/// Spreads the state over every bit, so that hashbrown's low (bucket) and high (tag) bits
/// both vary.
#[inline(always)]
fn finish(x: u64) -> u64 {
    let x = (x ^ (x >> 32)).wrapping_mul(K2);
    x ^ (x >> 32)
}

/// Hash of one 128-bit value (a UUID), with a seed that separates key kinds.
#[inline(always)]
pub fn hash_u128(x: u128, seed: u64) -> u64 {
    finish(mix(mix(x as u64, seed ^ K0), (x >> 64) as u64))
}

/// A small, fixed-seed `Hasher` for interned values.
#[derive(Default)]
pub struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap());
            self.0 = mix(self.0, w);
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        self.0 = mix(self.0, u64::from_le_bytes(w) ^ ((bytes.len() as u64) << 56));
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64)
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = mix(self.0, i);
    }
    fn write_u128(&mut self, i: u128) {
        self.write_u64(i as u64);
        self.write_u64((i >> 64) as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
    fn finish(&self) -> u64 {
        finish(self.0)
    }
}

/// `BuildHasher` for the few `hashbrown::HashMap`s the store keeps.
#[derive(Clone, Copy, Default)]
pub struct FoldBuild;

impl core::hash::BuildHasher for FoldBuild {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher::default()
    }
}

pub fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = FoldHasher::default();
    value.hash(&mut h);
    h.finish()
}

/// Bytes a `HashTable<u32>` of this capacity occupies: hashbrown keeps a power-of-two bucket
/// count at most 7/8 full, one control byte per bucket plus a group of padding.
pub fn table_bytes(capacity: usize, entry: usize) -> u64 {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    (buckets * (entry + 1) + 16) as u64
}

/// Fills the empty `table` with `ids` (hashed by `hash`, compared by `eq`) in the order of
/// the buckets where their probes start. Inserted in id order, each id lands on a random
/// cache line, and on a VM a random page, of a table far larger than the caches: at 10M
/// rows that was most of a snapshot's load. Partitioned by bucket first, the writes go
/// front to back. Names an id equal to an earlier one, if there is one.
pub fn fill_in_bucket_order(
    table: &mut HashTable<u32>,
    ids: core::ops::Range<u32>,
    hash: impl Fn(u32) -> u64,
    eq: impl Fn(u32, u32) -> bool,
) -> Result<(), u32> {
    debug_assert!(table.is_empty());
    table.reserve(ids.len(), |&id| hash(id));
    // hashbrown keeps capacity at 7/8 of a power-of-two bucket count, and starts a probe at
    // the bucket the hash's low bits name. A wrong guess here costs speed, never an entry.
    let buckets = (table.capacity() / 7 * 8).max(1).next_power_of_two();
    let bucket_bits = buckets.trailing_zeros();
    let part_bits = bucket_bits.min(PARTITION_BITS);
    let part = |h: usize| (h & (buckets - 1)) >> (bucket_bits - part_bits);
    let mut starts = vec![0usize; (1 << part_bits) + 1];
    for id in ids.clone() {
        starts[part(hash(id) as usize) + 1] += 1;
    }
    for p in 1..starts.len() {
        starts[p] += starts[p - 1];
    }
    // `hash as usize` keeps every bit hashbrown reads: the bucket from the low bits, and
    // the tag from the top 7 bits of a `usize` (a 32-bit one in the guest).
    let mut order = vec![(0usize, 0u32); ids.len()];
    for id in ids {
        let h = hash(id) as usize;
        let at = &mut starts[part(h)];
        order[*at] = (h, id);
        *at += 1;
    }
    for (h, id) in order {
        match table.entry(h as u64, |&other| eq(other, id), |&other| hash(other)) {
            hashbrown::hash_table::Entry::Occupied(_) => return Err(id),
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(id);
            }
        }
    }
    Ok(())
}

/// `fill_in_bucket_order` writes one partition of the table at a time: 4,096 of them keep
/// a partition of a 10M-entry table within the caches.
const PARTITION_BITS: u32 = 12;

/// Interned values of a small `Copy` type: id → value in a `Vec`, value → id through a table
/// of ids (the value is not stored twice).
pub struct Interner<T> {
    items: Vec<T>,
    table: HashTable<u32>,
}

impl<T: Copy + Eq + Hash> Interner<T> {
    pub fn new() -> Self {
        Self {
            items: Vec::new(),
            table: HashTable::new(),
        }
    }

    /// An interner whose id 0 is a placeholder (meaning "absent") that no lookup finds.
    pub fn with_placeholder(placeholder: T) -> Self {
        Self {
            items: vec![placeholder],
            table: HashTable::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Room for `more` values without growing (decoding knows its counts up front).
    pub fn reserve(&mut self, more: usize) {
        self.items.reserve(more);
        let items = &self.items;
        self.table.reserve(more, |&id| hash_of(&items[id as usize]));
    }

    #[inline]
    pub fn get(&self, id: u32) -> T {
        self.items[id as usize]
    }

    pub fn items(&self) -> &[T] {
        &self.items
    }

    pub fn lookup(&self, value: &T) -> Option<u32> {
        let items = &self.items;
        self.table
            .find(hash_of(value), |&id| items[id as usize] == *value)
            .copied()
    }

    /// The id of `value`, and whether it was new.
    pub fn intern(&mut self, value: T) -> (u32, bool) {
        let items = &mut self.items;
        let hash = hash_of(&value);
        match self.table.entry(
            hash,
            |&id| items[id as usize] == value,
            |&id| hash_of(&items[id as usize]),
        ) {
            hashbrown::hash_table::Entry::Occupied(e) => (*e.get(), false),
            hashbrown::hash_table::Entry::Vacant(e) => {
                let id = items.len() as u32;
                items.push(value);
                e.insert(id);
                (id, true)
            }
        }
    }

    pub fn memory_bytes(&self) -> u64 {
        (self.items.capacity() * core::mem::size_of::<T>()) as u64
            + table_bytes(self.table.capacity(), 4)
    }
}

/// String `id` of an arena (`ends[id]` is where it ends; id 0 is empty).
#[inline]
fn arena_str<'a>(bytes: &'a str, ends: &[u32], id: u32) -> &'a str {
    let id = id as usize;
    let start = if id == 0 { 0 } else { ends[id - 1] as usize };
    &bytes[start..ends[id] as usize]
}

/// Interned strings in one arena. Id 0 is the placeholder for an absent (`None`) string.
pub struct Strings {
    bytes: String,
    ends: Vec<u32>,
    table: HashTable<u32>,
}

impl Default for Strings {
    fn default() -> Self {
        Self::new()
    }
}

impl Strings {
    pub fn new() -> Self {
        Self {
            bytes: String::new(),
            ends: vec![0],
            table: HashTable::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Room for `more` strings in the arena's list (decoding knows the count).
    pub fn reserve(&mut self, more: usize) {
        self.ends.reserve(more);
    }

    /// Appends `s` without indexing it, and returns its id: decoding appends every string,
    /// then `index_all`.
    pub fn push_unindexed(&mut self, s: &str) -> u32 {
        let id = self.ends.len() as u32;
        self.bytes.push_str(s);
        self.ends.push(self.bytes.len() as u32);
        id
    }

    /// Indexes every string appended by `push_unindexed` (the index must be empty). Names
    /// a string equal to an earlier one, if there is one.
    pub fn index_all(&mut self) -> Result<(), u32> {
        let (bytes, ends) = (&self.bytes, &self.ends);
        let string = |id: u32| arena_str(bytes, ends, id);
        fill_in_bucket_order(
            &mut self.table,
            1..ends.len() as u32,
            |id| hash_of(string(id)),
            |a, b| string(a) == string(b),
        )
    }

    #[inline]
    pub fn get(&self, id: u32) -> &str {
        arena_str(&self.bytes, &self.ends, id)
    }

    pub fn get_opt(&self, id: u32) -> Option<&str> {
        if id == 0 { None } else { Some(self.get(id)) }
    }

    pub fn lookup(&self, s: &str) -> Option<u32> {
        self.table
            .find(hash_of(s), |&id| self.get(id) == s)
            .copied()
    }

    pub fn intern(&mut self, s: &str) -> (u32, bool) {
        let hash = hash_of(s);
        if let Some(&id) = self.table.find(hash, |&id| self.get(id) == s) {
            return (id, false);
        }
        let id = self.push_unindexed(s);
        let (bytes, ends) = (&self.bytes, &self.ends);
        self.table
            .insert_unique(hash, id, |&id| hash_of(arena_str(bytes, ends, id)));
        (id, true)
    }

    pub fn intern_opt(&mut self, s: Option<&str>) -> u32 {
        match s {
            None => 0,
            Some(s) => self.intern(s).0,
        }
    }

    pub fn memory_bytes(&self) -> u64 {
        (self.bytes.capacity() + self.ends.capacity() * 4) as u64
            + table_bytes(self.table.capacity(), 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fills a table with `values` and returns it, or the id named as a repeat.
    fn filled(values: &[u64], hash: impl Fn(u64) -> u64) -> Result<HashTable<u32>, u32> {
        let mut table = HashTable::new();
        fill_in_bucket_order(
            &mut table,
            0..values.len() as u32,
            |id| hash(values[id as usize]),
            |a, b| values[a as usize] == values[b as usize],
        )?;
        Ok(table)
    }

    #[test]
    fn a_table_filled_in_bucket_order_finds_every_id() {
        let spread = |v: u64| hash_of(&v);
        let collide = |v: u64| v % 3; // three hashes for all: long probe sequences
        for (values, hash) in [
            (
                (0..200_000).map(|v| v * 7919).collect::<Vec<_>>(),
                &spread as &dyn Fn(u64) -> u64,
            ),
            ((0..300).collect(), &collide),
            (Vec::new(), &spread),
        ] {
            let table = filled(&values, hash).unwrap();
            assert_eq!(table.len(), values.len());
            for (id, &v) in values.iter().enumerate() {
                let found = table.find(hash(v), |&other| values[other as usize] == v);
                assert_eq!(found, Some(&(id as u32)));
            }
        }
    }

    #[test]
    fn a_repeated_value_is_named_wherever_it_is() {
        for repeat_at in [1, 4_999, 50_000, 99_999] {
            let mut values: Vec<u64> = (0..100_000).collect();
            values[repeat_at] = values[repeat_at / 2];
            assert_eq!(
                filled(&values, |v| hash_of(&v)).err(),
                Some(repeat_at as u32)
            );
        }
    }

    #[test]
    fn strings_indexed_after_decoding_answer_as_interned_ones() {
        let words: Vec<String> = (0..50_000)
            .map(|n| format!("10.0.{}.{}", n / 256, n % 256))
            .collect();
        let mut decoded = Strings::new();
        let mut interned = Strings::new();
        for w in &words {
            assert_eq!(decoded.push_unindexed(w), interned.intern(w).0);
        }
        decoded.index_all().unwrap();
        for w in &words {
            assert_eq!(decoded.lookup(w), interned.lookup(w));
            assert_eq!(decoded.intern(w), (interned.lookup(w).unwrap(), false));
        }
        assert_eq!(decoded.intern("new").0, words.len() as u32 + 1);

        let mut repeated = Strings::new();
        for w in ["a", "b", "c", "b"] {
            repeated.push_unindexed(w);
        }
        assert_eq!(repeated.index_all(), Err(4));
    }
}
