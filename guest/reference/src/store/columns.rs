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

/// The values only sessions have, the connection id and the disconnect time, for the slots
/// that hold one. Web and tunnel rows (a third of Coder's) have neither, and a dense pair of
/// columns would spend 24 bytes on each of them. Per chunk of slots, a bitmap says which
/// slots have values, and the values are kept in slot order, so a slot's values are found
/// by its rank in the bitmap.
///
/// Slots are appended in order and whether one has values is fixed when it is appended (a
/// freed slot is reused only by a row of the same kind), so values are only ever pushed at
/// the end of the last chunk.
#[derive(Default)]
pub struct SessionColumns {
    chunks: Vec<SessionChunk>,
    len: usize,
}

#[derive(Default)]
struct SessionChunk {
    /// Bit `b` of word `w`: slot `64 w + b` of the chunk has values.
    bits: Vec<u64>,
    /// How many slots before word `w` have values (at most 65,472: a `u16`).
    ranks: Vec<u16>,
    connection: Vec<u128>,
    disconnect: Vec<i64>,
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

    /// The slot's disconnect time; 0 for a slot without values.
    #[inline]
    pub fn disconnect(&self, slot: u32) -> i64 {
        self.find(slot)
            .map_or(0, |(c, i)| self.chunks[c].disconnect[i])
    }

    /// Overwrites the values of a slot that has them.
    #[inline]
    pub fn set(&mut self, slot: u32, connection: u128, disconnect: i64) {
        let (c, i) = self.find(slot).expect("a slot with session values");
        let chunk = &mut self.chunks[c];
        chunk.connection[i] = connection;
        chunk.disconnect[i] = disconnect;
    }

    /// Appends slot `len()`, with values or without.
    pub fn push(&mut self, values: Option<(u128, i64)>) {
        let i = self.len & MASK;
        if i == 0 {
            self.chunks.push(SessionChunk::default());
        }
        let chunk = self.chunks.last_mut().expect("pushed above");
        if i & 63 == 0 {
            chunk.ranks.push(chunk.connection.len() as u16);
            chunk.bits.push(0);
        }
        if let Some((connection, disconnect)) = values {
            *chunk.bits.last_mut().expect("pushed above") |= 1 << (i & 63);
            chunk.connection.push(connection);
            chunk.disconnect.push(disconnect);
        }
        self.len += 1;
        if self.len & MASK == 0 {
            // A full chunk takes no more values: give back what doubling left spare.
            chunk.connection.shrink_to_fit();
            chunk.disconnect.shrink_to_fit();
        }
    }

    /// Appends a chunk's slots at once (a whole chunk, or the last part of one): `bits`
    /// says which slots have values, as `push` sets them, and the values are theirs, in slot
    /// order. The store must end on a whole chunk.
    pub fn push_chunk(
        &mut self,
        bits: Vec<u64>,
        slots: usize,
        connection: Vec<u128>,
        disconnect: Vec<i64>,
    ) {
        assert!(self.len & MASK == 0 && slots <= CHUNK && bits.len() == slots.div_ceil(64));
        let mut ranks = Vec::with_capacity(bits.len());
        let mut count = 0;
        for word in &bits {
            ranks.push(count as u16);
            count += word.count_ones() as usize;
        }
        assert!(count == connection.len() && count == disconnect.len());
        self.chunks.push(SessionChunk {
            bits,
            ranks,
            connection,
            disconnect,
        });
        self.len += slots;
    }

    pub fn memory_bytes(&self) -> u64 {
        let per_chunk = |c: &SessionChunk| {
            c.bits.capacity() * 8
                + c.ranks.capacity() * 2
                + c.connection.capacity() * 16
                + c.disconnect.capacity() * 8
        };
        let data: usize = self.chunks.iter().map(per_chunk).sum();
        (data + self.chunks.capacity() * core::mem::size_of::<SessionChunk>()) as u64
    }
}
