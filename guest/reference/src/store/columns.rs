//! Slot-indexed columns stored in fixed-size chunks: growing never copies the column and
//! wastes at most one chunk, which matters at ten million rows in a wasm32 linear memory.

pub const CHUNK_BITS: u32 = 16;
pub const CHUNK: usize = 1 << CHUNK_BITS;
const MASK: usize = CHUNK - 1;

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

    /// Appends at slot `len()`. The first chunk grows by doubling (small stores stay small);
    /// every later chunk is allocated once at its full size.
    #[inline]
    pub fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(value),
            _ => {
                let mut chunk = if self.chunks.is_empty() {
                    Vec::new()
                } else {
                    Vec::with_capacity(CHUNK)
                };
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

/// What a session row has beyond the other columns: its connection id, its disconnect time
/// and its client session id.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct SessionValues {
    pub connection: u128,
    pub disconnect: i64,
    /// `Columns::csid_text` reads it; 0 is none.
    pub csid: u32,
}

/// The values only sessions have (`SessionValues`), for the slots that hold them. Web and
/// tunnel rows (a third of Coder's) have none, and dense columns would spend 28 bytes on
/// each of them. Per chunk of slots, a bitmap says which slots have values, and the values
/// are kept in slot order, so a slot's values are found by its rank in the bitmap.
///
/// Slots are appended in order and whether one has values is fixed when it is appended (a
/// freed slot is reused only by a row of the same kind), so values are only ever pushed at
/// the end of the last chunk.
#[derive(Default)]
pub struct SessionColumns {
    chunks: Vec<SessionChunk>,
    len: usize,
}

/// One chunk's values, a column each (a `u128` beside an `i64` and a `u32` in one struct
/// would be padded to 32 bytes).
#[derive(Default)]
pub struct SessionChunk {
    /// Bit `b` of word `w`: slot `64 w + b` of the chunk has values.
    bits: Vec<u64>,
    /// How many slots before word `w` have values (at most 65,472: a `u16`).
    ranks: Vec<u16>,
    connection: Vec<u128>,
    disconnect: Vec<i64>,
    csid: Vec<u32>,
}

impl SessionChunk {
    /// An empty chunk with room for `n` values.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            connection: Vec::with_capacity(n),
            disconnect: Vec::with_capacity(n),
            csid: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    pub fn push(&mut self, v: SessionValues) {
        self.connection.push(v.connection);
        self.disconnect.push(v.disconnect);
        self.csid.push(v.csid);
    }

    fn shrink_to_fit(&mut self) {
        self.connection.shrink_to_fit();
        self.disconnect.shrink_to_fit();
        self.csid.shrink_to_fit();
    }

    fn memory_bytes(&self) -> usize {
        self.bits.capacity() * 8
            + self.ranks.capacity() * 2
            + self.connection.capacity() * 16
            + self.disconnect.capacity() * 8
            + self.csid.capacity() * 4
    }
}

impl SessionColumns {
    /// The chunk and the index of the slot's values, if it has them.
    #[inline(always)]
    fn find(&self, slot: u32) -> Option<(usize, usize)> {
        let s = slot as usize;
        let chunk = &self.chunks[s >> CHUNK_BITS];
        let (w, b) = ((s & MASK) >> 6, s & 63);
        let word = chunk.bits[w];
        (word >> b & 1 == 1).then(|| {
            let below = (word & ((1u64 << b) - 1)).count_ones() as usize;
            (s >> CHUNK_BITS, usize::from(chunk.ranks[w]) + below)
        })
    }

    #[inline]
    pub fn has(&self, slot: u32) -> bool {
        self.find(slot).is_some()
    }

    /// The slot's connection id; 0 for a slot without values.
    #[inline]
    pub fn connection(&self, slot: u32) -> u128 {
        self.find(slot)
            .map_or(0, |(c, i)| self.chunks[c].connection[i])
    }

    /// The slot's values; zeros for a slot without them.
    #[inline]
    pub fn get(&self, slot: u32) -> SessionValues {
        self.find(slot)
            .map_or_else(SessionValues::default, |(c, i)| {
                let chunk = &self.chunks[c];
                SessionValues {
                    connection: chunk.connection[i],
                    disconnect: chunk.disconnect[i],
                    csid: chunk.csid[i],
                }
            })
    }

    /// Overwrites the values of a slot that has them.
    #[inline]
    pub fn set(&mut self, slot: u32, v: SessionValues) {
        let (c, i) = self.find(slot).expect("a slot with session values");
        let chunk = &mut self.chunks[c];
        chunk.connection[i] = v.connection;
        chunk.disconnect[i] = v.disconnect;
        chunk.csid[i] = v.csid;
    }

    /// Appends slot `len()`, with values or without.
    pub fn push(&mut self, values: Option<SessionValues>) {
        let i = self.len & MASK;
        if i == 0 {
            self.chunks.push(SessionChunk::default());
        }
        let chunk = self.chunks.last_mut().expect("pushed above");
        if i & 63 == 0 {
            chunk.ranks.push(chunk.connection.len() as u16);
            chunk.bits.push(0);
        }
        if let Some(v) = values {
            *chunk.bits.last_mut().expect("pushed above") |= 1 << (i & 63);
            chunk.push(v);
        }
        self.len += 1;
        if self.len & MASK == 0 {
            // A full chunk takes no more values: give back what doubling left spare.
            chunk.shrink_to_fit();
        }
    }

    /// Appends a chunk's slots at once (a whole chunk, or the last part of one): `bits`
    /// says which slots have values, as `push` sets them, and `values` holds theirs, in
    /// slot order. The store must end on a whole chunk.
    pub fn push_chunk(&mut self, bits: Vec<u64>, slots: usize, mut values: SessionChunk) {
        assert!(self.len & MASK == 0 && slots <= CHUNK && bits.len() == slots.div_ceil(64));
        let mut count = 0;
        values.ranks = Vec::with_capacity(bits.len());
        for word in &bits {
            values.ranks.push(count as u16);
            count += word.count_ones() as usize;
        }
        assert!(count == values.connection.len() && count == values.csid.len());
        values.bits = bits;
        self.chunks.push(values);
        self.len += slots;
    }

    pub fn memory_bytes(&self) -> u64 {
        let data: usize = self.chunks.iter().map(SessionChunk::memory_bytes).sum();
        (data + self.chunks.capacity() * core::mem::size_of::<SessionChunk>()) as u64
    }
}
