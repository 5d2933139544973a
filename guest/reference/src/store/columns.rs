//! Slot-indexed columns stored in fixed-size chunks: growing never copies the column and
//! wastes at most one chunk, which matters at ten million rows in a wasm32 linear memory.

pub const CHUNK_BITS: u32 = 16;
pub const CHUNK: usize = 1 << CHUNK_BITS;
const MASK: usize = CHUNK - 1;

use roaring::RoaringBitmap;

/// The capacity of a column's next chunk, after `chunks` others: the first grows by
/// doubling (small stores stay small); every later one is allocated once at its full size.
fn new_chunk_capacity(chunks: usize) -> usize {
    if chunks == 0 { 0 } else { CHUNK }
}

pub struct Column<T> {
    chunks: Vec<Vec<T>>,
}

impl<T: Copy> Default for Column<T> {
    fn default() -> Self {
        Self { chunks: Vec::new() }
    }
}

impl<T: Copy> Column<T> {
    #[inline(always)]
    pub fn get(&self, slot: u32) -> T {
        let s = slot as usize;
        self.chunks[s >> CHUNK_BITS][s & MASK]
    }

    #[inline(always)]
    pub fn set(&mut self, slot: u32, value: T) {
        let s = slot as usize;
        self.chunks[s >> CHUNK_BITS][s & MASK] = value;
    }

    /// Appends at slot `len()`, in chunks of `new_chunk_capacity`.
    #[inline]
    pub fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(value),
            _ => {
                let mut chunk = Vec::with_capacity(new_chunk_capacity(self.chunks.len()));
                chunk.push(value);
                self.chunks.push(chunk);
            }
        }
    }

    pub fn len(&self) -> usize {
        match self.chunks.last() {
            None => 0,
            Some(last) => (self.chunks.len() - 1) * CHUNK + last.len(),
        }
    }

    pub fn memory_bytes(&self) -> u64 {
        let data: usize = self.chunks.iter().map(|c| c.capacity()).sum();
        (data * core::mem::size_of::<T>() + self.chunks.capacity() * core::mem::size_of::<Vec<T>>())
            as u64
    }
}

/// A column of table ids (descriptors, details, IP strings): two bytes per slot in a chunk
/// whose ids all fit in 16 bits, as they do while a table is small (most deployments), and
/// four once one does not. A chunk never narrows again.
#[derive(Default)]
pub struct IdColumn {
    chunks: Vec<IdChunk>,
}

enum IdChunk {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl IdChunk {
    fn len(&self) -> usize {
        match self {
            Self::Narrow(v) => v.len(),
            Self::Wide(v) => v.len(),
        }
    }
}

impl IdColumn {
    #[inline(always)]
    pub fn get(&self, slot: u32) -> u32 {
        let s = slot as usize;
        match &self.chunks[s >> CHUNK_BITS] {
            IdChunk::Narrow(v) => u32::from(v[s & MASK]),
            IdChunk::Wide(v) => v[s & MASK],
        }
    }

    #[inline(always)]
    pub fn set(&mut self, slot: u32, id: u32) {
        let s = slot as usize;
        let chunk = &mut self.chunks[s >> CHUNK_BITS];
        match chunk {
            IdChunk::Wide(v) => v[s & MASK] = id,
            IdChunk::Narrow(v) => match u16::try_from(id) {
                Ok(id) => v[s & MASK] = id,
                Err(_) => {
                    let mut wide = Vec::with_capacity(v.capacity());
                    wide.extend(v.iter().map(|&x| u32::from(x)));
                    wide[s & MASK] = id;
                    *chunk = IdChunk::Wide(wide);
                }
            },
        }
    }

    /// Appends at slot `len()`, in chunks of `new_chunk_capacity`.
    #[inline]
    pub fn push(&mut self, id: u32) {
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            let capacity = new_chunk_capacity(self.chunks.len());
            self.chunks
                .push(IdChunk::Narrow(Vec::with_capacity(capacity)));
        }
        let last = self.chunks.len() - 1;
        match (&mut self.chunks[last], u16::try_from(id)) {
            (IdChunk::Narrow(v), Ok(narrow)) => v.push(narrow),
            (IdChunk::Wide(v), _) => v.push(id),
            (IdChunk::Narrow(v), Err(_)) => {
                v.push(0);
                let slot = last * CHUNK + v.len() - 1;
                self.set(slot as u32, id);
            }
        }
    }

    pub fn memory_bytes(&self) -> u64 {
        let data: usize = (self.chunks.iter())
            .map(|c| match c {
                IdChunk::Narrow(v) => v.capacity() * 2,
                IdChunk::Wide(v) => v.capacity() * 4,
            })
            .sum();
        (data + self.chunks.capacity() * core::mem::size_of::<IdChunk>()) as u64
    }
}

/// A row's client session id: the number its 32 lowercase hexadecimal digits spell (Coder's
/// CHECK), or the string id of its text. Validation refuses any other form, but a journal
/// written by another plugin may hold one, and it is kept as it was sent.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub enum Csid {
    #[default]
    None,
    Number(u128),
    Text(u32),
}

/// What a session row has beyond the other columns: its connection id, its disconnect time
/// and its client session id.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct SessionValues {
    pub connection: u128,
    pub disconnect: i64,
    pub csid: Csid,
}

/// Which values a slot keeps beyond the dense columns. It is fixed when the slot is
/// appended and kept while the slot is free (each kind has its own free list), so values
/// are only ever appended; a row that needs another kind moves to a slot of that kind.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SlotKind {
    /// Web and tunnel rows: no session values.
    Plain = 0,
    Session = 1,
    /// Session values and a client session id.
    SessionWithCsid = 2,
}

impl SlotKind {
    pub const COUNT: usize = 3;

    pub fn of(values: Option<&SessionValues>) -> Self {
        match values {
            None => Self::Plain,
            Some(v) if v.csid == Csid::None => Self::Session,
            Some(_) => Self::SessionWithCsid,
        }
    }
}

/// Which of a run of positions (appended in order) hold a value, with the number of values
/// before each 64 positions, so that a position's value is found by its rank.
#[derive(Default)]
struct Presence {
    /// Bit `b` of word `w`: position `64 w + b` has a value.
    bits: Vec<u64>,
    /// How many positions before word `w` have values (at most 65,472 in a chunk: a `u16`).
    ranks: Vec<u16>,
}

impl Presence {
    /// Marks position `at` (the next one) as holding a value or not; `values` is how many
    /// positions before it do.
    fn push(&mut self, at: usize, present: bool, values: usize) {
        if at & 63 == 0 {
            self.ranks.push(values as u16);
            self.bits.push(0);
        }
        if present {
            *self.bits.last_mut().expect("pushed above") |= 1 << (at & 63);
        }
    }

    /// From whole words; returns the number of values they mark.
    fn from_bits(bits: Vec<u64>) -> (Self, usize) {
        let mut count = 0;
        let mut ranks = Vec::with_capacity(bits.len());
        for word in &bits {
            ranks.push(count as u16);
            count += word.count_ones() as usize;
        }
        (Self { bits, ranks }, count)
    }

    /// The index of the position's value, if it has one.
    #[inline(always)]
    fn index(&self, at: usize) -> Option<usize> {
        let (w, b) = (at >> 6, at & 63);
        let word = self.bits[w];
        (word >> b & 1 == 1)
            .then(|| usize::from(self.ranks[w]) + (word & ((1u64 << b) - 1)).count_ones() as usize)
    }

    fn memory_bytes(&self) -> usize {
        self.bits.capacity() * 8 + self.ranks.capacity() * 2
    }
}

/// The values only sessions have (`SessionValues`), for the slots that hold them. Web and
/// tunnel rows (a third of Coder's) have none, and dense columns would spend 24 bytes on
/// each of them; most sessions have no client session id, and a dense one would spend 16
/// more. Per chunk of slots, a bitmap says which slots have values, kept in slot order and
/// found by their rank, and a second bitmap over those values says which have a client
/// session id, found the same way. Values are only ever pushed at the end of the last chunk
/// (`SlotKind`).
#[derive(Default)]
pub struct SessionColumns {
    chunks: Vec<SessionChunk>,
    len: usize,
    /// The slots whose client session id is a string id (`Csid::Text`); nearly always empty.
    text: RoaringBitmap,
}

/// One chunk's values, a column each (a `u128` beside an `i64` in one struct would be
/// padded to 32 bytes).
#[derive(Default)]
pub struct SessionChunk {
    /// Over the chunk's slots.
    slots: Presence,
    connection: Vec<u128>,
    disconnect: Vec<i64>,
    /// Over the chunk's values: which have a client session id.
    csids: Presence,
    /// A `Csid::Number`, or a `Csid::Text`'s string id.
    csid: Vec<u128>,
}

impl SessionChunk {
    /// A chunk of `slots` slots from whole words: `slot_bits` marks the slots with values,
    /// `csid_bits` (over the same slots) those with a client session id, and the values are
    /// in slot order. The caller has checked that the counts agree and that `csid_bits` is
    /// within `slot_bits`.
    pub fn from_parts(
        slot_bits: Vec<u64>,
        csid_bits: &[u64],
        connection: Vec<u128>,
        disconnect: Vec<i64>,
        csid: Vec<u128>,
    ) -> Self {
        let (slots, n) = Presence::from_bits(slot_bits);
        assert!(n == connection.len() && n == disconnect.len());
        let mut csids = Presence::default();
        let (mut at, mut with_csid) = (0, 0);
        for (&word, &csid_word) in slots.bits.iter().zip(csid_bits) {
            let mut rest = word;
            while rest != 0 {
                let bit = rest.trailing_zeros();
                let has = csid_word >> bit & 1 == 1;
                csids.push(at, has, with_csid);
                with_csid += usize::from(has);
                at += 1;
                rest &= rest - 1;
            }
        }
        assert!(with_csid == csid.len());
        Self {
            slots,
            connection,
            disconnect,
            csids,
            csid,
        }
    }

    fn shrink_to_fit(&mut self) {
        self.connection.shrink_to_fit();
        self.disconnect.shrink_to_fit();
        self.csid.shrink_to_fit();
    }

    fn memory_bytes(&self) -> usize {
        self.slots.memory_bytes()
            + self.connection.capacity() * 16
            + self.disconnect.capacity() * 8
            + self.csid_bytes()
    }

    fn csid_bytes(&self) -> usize {
        self.csids.memory_bytes() + self.csid.capacity() * 16
    }
}

impl SessionColumns {
    /// The chunk and the index of the slot's values, if it has them.
    #[inline(always)]
    fn find(&self, slot: u32) -> Option<(&SessionChunk, usize)> {
        let s = slot as usize;
        let chunk = &self.chunks[s >> CHUNK_BITS];
        chunk.slots.index(s & MASK).map(|i| (chunk, i))
    }

    #[inline]
    pub fn kind(&self, slot: u32) -> SlotKind {
        match self.find(slot) {
            None => SlotKind::Plain,
            Some((chunk, i)) if chunk.csids.index(i).is_none() => SlotKind::Session,
            Some(_) => SlotKind::SessionWithCsid,
        }
    }

    /// The slot's connection id; 0 for a slot without values.
    #[inline]
    pub fn connection(&self, slot: u32) -> u128 {
        self.find(slot).map_or(0, |(chunk, i)| chunk.connection[i])
    }

    /// The slot's values; zeros for a slot without them.
    #[inline]
    pub fn get(&self, slot: u32) -> SessionValues {
        self.find(slot)
            .map_or_else(SessionValues::default, |(chunk, i)| SessionValues {
                connection: chunk.connection[i],
                disconnect: chunk.disconnect[i],
                csid: match chunk.csids.index(i) {
                    None => Csid::None,
                    Some(j) if self.text.is_empty() || !self.text.contains(slot) => {
                        Csid::Number(chunk.csid[j])
                    }
                    Some(j) => Csid::Text(chunk.csid[j] as u32),
                },
            })
    }

    /// Whether any slot's client session id is text.
    pub fn has_text(&self) -> bool {
        !self.text.is_empty()
    }

    /// The number kept for the slot's client session id, if it has one: a
    /// `Csid::Number`, or a `Csid::Text`'s string id (to check one read from a snapshot).
    pub fn csid_value(&self, slot: u32) -> Option<u128> {
        let (chunk, i) = self.find(slot)?;
        chunk.csids.index(i).map(|j| chunk.csid[j])
    }

    /// The chunk and the index of the values of a slot that has them.
    #[inline(always)]
    fn find_mut(&mut self, slot: u32) -> (&mut SessionChunk, usize) {
        let s = slot as usize;
        let chunk = &mut self.chunks[s >> CHUNK_BITS];
        let i = chunk
            .slots
            .index(s & MASK)
            .expect("a slot with session values");
        (chunk, i)
    }

    /// Overwrites the values of a slot of their kind.
    #[inline]
    pub fn set(&mut self, slot: u32, v: SessionValues) {
        let (chunk, i) = self.find_mut(slot);
        chunk.connection[i] = v.connection;
        chunk.disconnect[i] = v.disconnect;
        let j = chunk.csids.index(i);
        assert!(
            j.is_some() == (v.csid != Csid::None),
            "a slot of the values' kind"
        );
        let text = match v.csid {
            Csid::None => false,
            Csid::Number(n) => {
                chunk.csid[j.expect("checked above")] = n;
                false
            }
            Csid::Text(id) => {
                chunk.csid[j.expect("checked above")] = u128::from(id);
                true
            }
        };
        if text {
            self.text.insert(slot);
        } else if !self.text.is_empty() {
            self.text.remove(slot);
        }
    }

    /// Sets the disconnect time of a slot with session values.
    #[inline]
    pub fn set_disconnect(&mut self, slot: u32, time: i64) {
        let (chunk, i) = self.find_mut(slot);
        chunk.disconnect[i] = time;
    }

    /// Appends slot `len()`, of the kind given, with zero values.
    pub fn push(&mut self, kind: SlotKind) {
        let at = self.len & MASK;
        if at == 0 {
            self.chunks.push(SessionChunk::default());
        }
        let chunk = self.chunks.last_mut().expect("pushed above");
        let values = chunk.connection.len();
        chunk.slots.push(at, kind != SlotKind::Plain, values);
        if kind != SlotKind::Plain {
            let with_csid = kind == SlotKind::SessionWithCsid;
            chunk.csids.push(values, with_csid, chunk.csid.len());
            chunk.connection.push(0);
            chunk.disconnect.push(0);
            if with_csid {
                chunk.csid.push(0);
            }
        }
        self.len += 1;
        if self.len & MASK == 0 {
            // A full chunk takes no more values: give back what doubling left spare.
            chunk.shrink_to_fit();
        }
    }

    /// Appends a chunk of `slots` slots at once (a whole chunk, or the last part of one).
    /// The store must end on a whole chunk. `text` lists the slots (ascending, among the
    /// new ones) whose client session id is a string id.
    pub fn push_chunk(&mut self, chunk: SessionChunk, slots: usize, text: &[u32]) {
        let words = slots.div_ceil(64);
        assert!(self.len & MASK == 0 && slots <= CHUNK && chunk.slots.bits.len() == words);
        self.text.extend(text.iter().copied());
        self.chunks.push(chunk);
        self.len += slots;
    }

    pub fn memory_bytes(&self) -> u64 {
        let data: usize = self.chunks.iter().map(SessionChunk::memory_bytes).sum();
        (data + self.chunks.capacity() * core::mem::size_of::<SessionChunk>()) as u64
            + self.text.serialized_size() as u64
    }

    /// The part of `memory_bytes` that the client session ids take.
    pub fn csid_bytes(&self) -> u64 {
        self.chunks
            .iter()
            .map(SessionChunk::csid_bytes)
            .sum::<usize>() as u64
    }
}
