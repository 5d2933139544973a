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

    /// Room for `more` strings without growing the index (decoding knows the count).
    pub fn reserve(&mut self, more: usize) {
        self.ends.reserve(more);
        let (bytes, ends) = (&self.bytes, &self.ends);
        self.table
            .reserve(more, |&id| hash_of(arena_str(bytes, ends, id)));
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
        let id = self.ends.len() as u32;
        self.bytes.push_str(s);
        self.ends.push(self.bytes.len() as u32);
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
