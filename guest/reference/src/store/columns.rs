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
