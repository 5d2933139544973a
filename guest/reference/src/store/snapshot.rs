//! The binary snapshot of a `RowStore`.
//!
//! ```text
//! magic "CLROWSNP", version u32
//! strings   u32 n, then n-1 × (u32 len, UTF-8 bytes)        (id 0 is "absent")
//! orgs      u32 n, n × u128
//! owners    u32 n, n × u128
//! users     u32 n, n × u128                                  (id 0 is "absent")
//! ctxs      u32 n, n × (u32 org, u32 owner, u128 workspace, u32 name, u32 agent)
//! descs     u32 n, n × (u32 ctx, u32 user, u32 app name or port, u8 flags)
//! details   u32 n, n × (u8 method index, u32 user agent, u32 reason, u8 has code, i32 code,
//!           u8 flags)
//! rows      u64 n, then whole columns in (connect_time, id) ascending order:
//!           n × u128 id, n × i64 connect, n × u32 desc, n × u32 detail,
//!           n × u32 ip (string id),
//!           then which rows have session values, ⌈n / 64⌉ × u64 (bit b of word w: the
//!           row at position 64 w + b), then which of them have a client session id (as
//!           many words), then per 65,536 rows: (u128 connection id, i64 disconnect) for
//!           each with session values, then the u128 client session id of each with one,
//!           in order; then u32 n, n × u32 the ascending positions of the rows whose client
//!           session id is not a number but text (its u128 is a string id)
//! lists     the posting lists over row positions (0 = the first row above), each as
//!           u32 len + that many bytes of roaring's portable format: one per organization,
//!           owner and user (ids as above, user 0 included), per connection method, per
//!           legacy type that splits SSH rows by app (ssh, vscode, jetbrains; any other
//!           type's rows are its method's), then ongoing and completed; then u32 n,
//!           n × (u32 app string id, list) by ascending id, and u32 n, n × (i32 code, list)
//!           by ascending code
//! checksum  u64 over every byte above
//! ```
//! All integers little-endian. The tables hold only the entries live rows use (renumbered
//! in their order), never what only removed rows used. Decoding reads the posting lists
//! as they are (rebuilding them from the columns took half of a load) and rebuilds the
//! key table and the time buckets (contiguous slot ranges) in one ascending pass.

use super::columns::{CHUNK, SessionChunk};
use super::intern::fill_in_bucket_order;
use super::*;

const MAGIC: &[u8; 8] = b"CLROWSNP";
/// 2: connection methods, apps and client session ids (Coder D) in place of free-text
/// types. 3: the posting lists are stored. 4: connection ids and disconnect times only for
/// the rows that have them. 5: client session ids with them, as numbers. 6: client session
/// ids only for the rows that have one, not interned; lists only for the legacy types that
/// are not a method's. An older snapshot is refused, and the host rebuilds the rows from
/// the journal.
const VERSION: u32 = 6;
/// Elements converted per block when reading or writing a column.
const BLOCK: usize = 8192;

fn corrupt(msg: impl Into<String>) -> JournalError {
    JournalError::Corrupt(format!("row snapshot: {}", msg.into()))
}

/// A streaming 64-bit checksum: four independent multiply-xor lanes over 32-byte blocks.
/// Every step is a bijection of the lane state, so any change confined to one block always
/// changes the result; it runs at several GB/s.
pub(super) struct Checksum {
    lanes: [u64; 4],
    tail: [u8; 32],
    tail_len: usize,
    total: u64,
}

const P: u64 = 0x9e37_79b9_7f4a_7c15;

impl Checksum {
    pub(super) fn new() -> Self {
        Self {
            lanes: [
                0x243f_6a88_85a3_08d3,
                0x1319_8a2e_0370_7344,
                0xa409_3822_299f_31d0,
                0x082e_fa98_ec4e_6c89,
            ],
            tail: [0; 32],
            tail_len: 0,
            total: 0,
        }
    }

    #[inline(always)]
    fn block(lanes: &mut [u64; 4], b: &[u8]) {
        for (i, lane) in lanes.iter_mut().enumerate() {
            let w = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
            *lane = (*lane ^ w).wrapping_mul(P).rotate_left(29);
        }
    }

    pub(super) fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.tail_len > 0 {
            let take = (32 - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&data[..take]);
            self.tail_len += take;
            data = &data[take..];
            if self.tail_len < 32 {
                return;
            }
            let tail = self.tail;
            Self::block(&mut self.lanes, &tail);
            self.tail_len = 0;
        }
        let mut blocks = data.chunks_exact(32);
        for b in &mut blocks {
            Self::block(&mut self.lanes, b);
        }
        let rest = blocks.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    pub(super) fn finish(&self) -> u64 {
        let mut lanes = self.lanes;
        let mut last = [0u8; 32];
        last[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
        Self::block(&mut lanes, &last);
        let mut h = self.total;
        for lane in lanes {
            h = (h ^ lane).wrapping_mul(P).rotate_left(31);
        }
        h ^ (h >> 29)
    }
}

/// Buffers output into chunks of `chunk` bytes, hashing every byte it is given.
struct Writer<'a> {
    buf: Vec<u8>,
    chunk: usize,
    sink: &'a mut dyn FnMut(&[u8]) -> Result<(), JournalError>,
    sum: Checksum,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), JournalError> {
        let from = self.buf.len();
        self.buf.extend_from_slice(bytes);
        self.appended(from)
    }
    fn u8(&mut self, v: u8) -> Result<(), JournalError> {
        self.put(&[v])
    }
    fn u32(&mut self, v: u32) -> Result<(), JournalError> {
        self.put(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> Result<(), JournalError> {
        self.put(&v.to_le_bytes())
    }
    fn u128(&mut self, v: u128) -> Result<(), JournalError> {
        self.put(&v.to_le_bytes())
    }

    /// Writes a whole column in blocks, `N` bytes per value, slots in `order`.
    fn column<const N: usize>(
        &mut self,
        order: &[u32],
        value: impl Fn(u32) -> [u8; N],
    ) -> Result<(), JournalError> {
        for block in order.chunks(BLOCK) {
            let from = self.buf.len();
            for &s in block {
                self.buf.extend_from_slice(&value(s));
            }
            self.appended(from)?;
        }
        Ok(())
    }

    /// A posting list: its length, then roaring's portable format, serialized in place.
    fn bitmap(&mut self, b: &RoaringBitmap) -> Result<(), JournalError> {
        // At most 2^16 containers of 8 KiB: well under 4 GiB.
        self.u32(b.serialized_size() as u32)?;
        let from = self.buf.len();
        b.serialize_into(&mut self.buf)
            .expect("serializing into a Vec cannot fail");
        self.appended(from)
    }

    /// Hashes what was written into the buffer from `from` on, and sends full chunks.
    fn appended(&mut self, from: usize) -> Result<(), JournalError> {
        self.sum.update(&self.buf[from..]);
        if self.buf.len() >= self.chunk {
            self.flush(false)
        } else {
            Ok(())
        }
    }

    /// Sends every full chunk (with `all`, the rest too).
    fn flush(&mut self, all: bool) -> Result<(), JournalError> {
        let mut start = 0;
        while self.buf.len() - start >= self.chunk || (all && start < self.buf.len()) {
            let end = (start + self.chunk).min(self.buf.len());
            (self.sink)(&self.buf[start..end])?;
            start = end;
        }
        self.buf.drain(..start);
        Ok(())
    }

    /// Appends the checksum (not itself hashed) and sends everything.
    fn finish(mut self) -> Result<(), JournalError> {
        let digest = self.sum.finish();
        self.buf.extend_from_slice(&digest.to_le_bytes());
        self.flush(true)
    }
}

pub(super) fn encode(
    store: &RowStore,
    chunk_size: usize,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), JournalError>,
) -> Result<(), JournalError> {
    if chunk_size == 0 {
        return Err(JournalError::Unavailable(
            "snapshot chunk size must be positive".into(),
        ));
    }
    let mut w = Writer {
        buf: Vec::with_capacity(chunk_size.min(1 << 20) + 64),
        chunk: chunk_size,
        sink,
        sum: Checksum::new(),
    };
    w.put(MAGIC)?;
    w.u32(VERSION)?;
    let c = &store.cols;
    let order = store.slots_ascending();
    let live = Live::of(store, &order);
    w.u32(live.strings.count)?;
    for id in 1..c.strings.len() as u32 {
        if live.strings.keeps(id) {
            let s = c.strings.get(id).as_bytes();
            w.u32(s.len() as u32)?;
            w.put(s)?;
        }
    }
    for (table, ids) in [
        (&c.orgs, &live.orgs),
        (&c.owners, &live.owners),
        (&c.users, &live.users),
    ] {
        w.u32(ids.count)?;
        for (id, &value) in table.items().iter().enumerate() {
            if ids.keeps(id as u32) {
                w.u128(value)?;
            }
        }
    }
    w.u32(live.ctxs.count)?;
    for (id, x) in c.ctxs.items().iter().enumerate() {
        if live.ctxs.keeps(id as u32) {
            w.u32(live.orgs.new_id(x.org))?;
            w.u32(live.owners.new_id(x.owner))?;
            w.u128(x.workspace)?;
            w.u32(live.strings.new_id(x.workspace_name))?;
            w.u32(live.strings.new_id(x.agent))?;
        }
    }
    w.u32(live.descs.count)?;
    for (id, d) in c.descs.items().iter().enumerate() {
        if live.descs.keeps(id as u32) {
            w.u32(live.ctxs.new_id(d.ctx))?;
            w.u32(live.users.new_id(d.user))?;
            w.u32(live.strings.new_id(d.app))?;
            w.u8(d.flags)?;
        }
    }
    w.u32(live.details.count)?;
    for (id, d) in c.details.items().iter().enumerate() {
        if live.details.keeps(id as u32) {
            w.u8(d.method)?;
            w.u32(live.strings.new_id(d.user_agent))?;
            w.u32(live.strings.new_id(d.reason))?;
            w.u8(d.code.is_some() as u8)?;
            w.put(&d.code.unwrap_or(0).to_le_bytes())?;
            w.u8(d.flags)?;
        }
    }
    w.u64(order.len() as u64)?;
    w.column(&order, |s| c.id.get(s).to_le_bytes())?;
    w.column(&order, |s| c.connect.get(s).to_le_bytes())?;
    w.column(&order, |s| live.descs.new_id(c.desc.get(s)).to_le_bytes())?;
    w.column(&order, |s| {
        live.details.new_id(c.detail.get(s)).to_le_bytes()
    })?;
    w.column(&order, |s| live.strings.new_id(c.ip.get(s)).to_le_bytes())?;
    // Which rows have session values, and which a client session id: a bit each per row.
    let words = order.len().div_ceil(64);
    let (mut sessions, mut csids) = (Vec::with_capacity(words), Vec::with_capacity(words));
    for slots in order.chunks(64) {
        let (mut session, mut csid) = (0u64, 0u64);
        for (b, &s) in slots.iter().enumerate() {
            let kind = c.session.kind(s);
            session |= u64::from(kind != SlotKind::Plain) << b;
            csid |= u64::from(kind == SlotKind::SessionWithCsid) << b;
        }
        sessions.push(session);
        csids.push(csid);
    }
    for &word in sessions.iter().chain(&csids) {
        w.u64(word)?;
    }
    let marked = |words: &[u64], rows: &[u32]| -> Vec<u32> {
        let bits = rows.iter().enumerate();
        bits.filter(|(i, _)| words[i / 64] >> (i % 64) & 1 == 1)
            .map(|(_, &s)| s)
            .collect()
    };
    for (i, rows) in order.chunks(CHUNK).enumerate() {
        let words = i * CHUNK / 64..(i * CHUNK + rows.len()).div_ceil(64);
        w.column(&marked(&sessions[words.clone()], rows), |s| {
            let v = c.session.get(s);
            let mut record = [0; 24];
            record[..16].copy_from_slice(&v.connection.to_le_bytes());
            record[16..].copy_from_slice(&v.disconnect.to_le_bytes());
            record
        })?;
        w.column(&marked(&csids[words], rows), |s| {
            match c.session.get(s).csid {
                Csid::Text(id) => u128::from(live.strings.new_id(id)).to_le_bytes(),
                Csid::Number(n) => n.to_le_bytes(),
                Csid::None => unreachable!("a slot of kind SessionWithCsid"),
            }
        })?;
    }
    let mut text = Vec::new();
    if c.session.has_text() {
        for (position, &s) in order.iter().enumerate() {
            if matches!(c.session.get(s).csid, Csid::Text(_)) {
                text.push(position as u32);
            }
        }
    }
    w.u32(text.len() as u32)?;
    for position in text {
        w.u32(position)?;
    }
    write_lists(&mut w, store, &order, &live)?;
    w.finish()
}

/// The posting lists over the snapshot's row positions, keyed by its ids.
fn write_lists(
    w: &mut Writer,
    store: &RowStore,
    order: &[u32],
    live: &Live,
) -> Result<(), JournalError> {
    // A store loaded, or filled in time order, holds its rows in slot order, so its lists
    // are already over positions; otherwise they are built again in the snapshot's order.
    let in_order;
    let lists = if order.iter().enumerate().all(|(i, &s)| i as u32 == s) {
        store
    } else {
        in_order = lists_in_order(store, order);
        &in_order
    };
    for (bits, ids) in [
        (&lists.org_bits, &live.orgs),
        (&lists.owner_bits, &live.owners),
        (&lists.user_bits, &live.users),
    ] {
        for (id, b) in bits.iter().enumerate() {
            if ids.keeps(id as u32) {
                w.bitmap(b)?;
            }
        }
    }
    let fixed = lists.method_bits.iter().chain(&lists.type_bits);
    for b in fixed.chain([&lists.ongoing, &lists.completed]) {
        w.bitmap(b)?;
    }
    let mut apps: Vec<(u32, &RoaringBitmap)> = (lists.app_bits.iter())
        .filter(|(_, b)| !b.is_empty())
        .map(|(&app, b)| (live.strings.new_id(app), b))
        .collect();
    apps.sort_unstable_by_key(|&(app, _)| app);
    w.u32(apps.len() as u32)?;
    for (app, b) in apps {
        w.u32(app)?;
        w.bitmap(b)?;
    }
    let mut codes: Vec<(i32, &RoaringBitmap)> = (lists.code_bits.iter())
        .filter(|(_, b)| !b.is_empty())
        .map(|(&code, b)| (code, b))
        .collect();
    codes.sort_unstable_by_key(|&(code, _)| code);
    w.u32(codes.len() as u32)?;
    for (code, b) in codes {
        w.put(&code.to_le_bytes())?;
        w.bitmap(b)?;
    }
    Ok(())
}

/// A store holding only posting lists: those of `store`'s rows at their positions in
/// `order` (ids unchanged).
fn lists_in_order(store: &RowStore, order: &[u32]) -> RowStore {
    let mut lists = RowStore {
        org_bits: vec![RoaringBitmap::new(); store.org_bits.len()],
        owner_bits: vec![RoaringBitmap::new(); store.owner_bits.len()],
        user_bits: vec![RoaringBitmap::new(); store.user_bits.len()],
        ..RowStore::with_tuning(store.tuning)
    };
    let mut staged = Staged::new(&lists);
    for (position, &slot) in (0u32..).zip(order) {
        staged.add(position, store.postings(slot));
        if (position + 1) % STAGE_SLOTS == 0 {
            staged.append_to(&mut lists);
        }
    }
    staged.append_to(&mut lists);
    lists
}

/// Which interned entries the live rows use, and their ids in the snapshot. Interned
/// tables only grow in memory; a snapshot leaves out what only removed rows used, so that a
/// purged row's strings and ids do not outlive it on disk.
struct Live {
    strings: Remap,
    orgs: Remap,
    owners: Remap,
    users: Remap,
    ctxs: Remap,
    descs: Remap,
    details: Remap,
}

/// Old id to new id for one table; kept entries keep their order.
struct Remap {
    new: Vec<u32>,
    count: u32,
}

const DROPPED: u32 = u32::MAX;

impl Remap {
    fn marks(len: usize) -> Vec<bool> {
        vec![false; len]
    }

    fn from(marks: Vec<bool>) -> Self {
        let mut count = 0;
        let new = marks
            .into_iter()
            .map(|kept| {
                if kept {
                    count += 1;
                    count - 1
                } else {
                    DROPPED
                }
            })
            .collect();
        Self { new, count }
    }

    fn keeps(&self, id: u32) -> bool {
        self.new[id as usize] != DROPPED
    }

    #[inline]
    fn new_id(&self, id: u32) -> u32 {
        self.new[id as usize]
    }
}

impl Live {
    fn of(store: &RowStore, order: &[u32]) -> Self {
        let c = &store.cols;
        let mut strings = Remap::marks(c.strings.len());
        let mut descs = Remap::marks(c.descs.len());
        let mut details = Remap::marks(c.details.len());
        // Id 0 of strings and users stands for "absent"; it is always written.
        strings[0] = true;
        for &s in order {
            descs[c.desc.get(s) as usize] = true;
            details[c.detail.get(s) as usize] = true;
            strings[c.ip.get(s) as usize] = true;
            if let Csid::Text(id) = c.session.get(s).csid {
                strings[id as usize] = true;
            }
        }
        let mut ctxs = Remap::marks(c.ctxs.len());
        let mut users = Remap::marks(c.users.len());
        users[0] = true;
        for (id, d) in c.descs.items().iter().enumerate() {
            if descs[id] {
                ctxs[d.ctx as usize] = true;
                users[d.user as usize] = true;
                strings[d.app as usize] = true;
            }
        }
        for (id, d) in c.details.items().iter().enumerate() {
            if details[id] {
                strings[d.user_agent as usize] = true;
                strings[d.reason as usize] = true;
            }
        }
        let mut orgs = Remap::marks(c.orgs.len());
        let mut owners = Remap::marks(c.owners.len());
        for (id, x) in c.ctxs.items().iter().enumerate() {
            if ctxs[id] {
                orgs[x.org as usize] = true;
                owners[x.owner as usize] = true;
                strings[x.workspace_name as usize] = true;
                strings[x.agent as usize] = true;
            }
        }
        Self {
            strings: Remap::from(strings),
            orgs: Remap::from(orgs),
            owners: Remap::from(owners),
            users: Remap::from(users),
            ctxs: Remap::from(ctxs),
            descs: Remap::from(descs),
            details: Remap::from(details),
        }
    }
}

struct Reader<'a> {
    next: &'a mut dyn FnMut() -> Result<Option<Vec<u8>>, JournalError>,
    cur: Vec<u8>,
    pos: usize,
    scratch: Vec<u8>,
    sum: Checksum,
}

impl Reader<'_> {
    fn refill(&mut self) -> Result<(), JournalError> {
        loop {
            match (self.next)()? {
                None => return Err(corrupt("truncated (ended before its checksum)")),
                Some(v) if v.is_empty() => continue,
                Some(v) => {
                    self.cur = v;
                    self.pos = 0;
                    return Ok(());
                }
            }
        }
    }

    /// Calls `f` with the next `n` bytes, contiguous.
    fn with<R>(
        &mut self,
        n: usize,
        hash: bool,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, JournalError> {
        if self.cur.len() - self.pos >= n {
            let bytes = &self.cur[self.pos..self.pos + n];
            self.pos += n;
            if hash {
                self.sum.update(bytes);
            }
            return Ok(f(bytes));
        }
        self.scratch.clear();
        while self.scratch.len() < n {
            if self.pos == self.cur.len() {
                self.refill()?;
            }
            let take = (n - self.scratch.len()).min(self.cur.len() - self.pos);
            self.scratch
                .extend_from_slice(&self.cur[self.pos..self.pos + take]);
            self.pos += take;
        }
        if hash {
            self.sum.update(&self.scratch);
        }
        Ok(f(&self.scratch))
    }

    fn u8(&mut self) -> Result<u8, JournalError> {
        self.with(1, true, |b| b[0])
    }
    fn u32(&mut self) -> Result<u32, JournalError> {
        self.with(4, true, |b| u32::from_le_bytes(b.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, JournalError> {
        self.with(8, true, |b| u64::from_le_bytes(b.try_into().unwrap()))
    }
    fn u128(&mut self) -> Result<u128, JournalError> {
        self.with(16, true, |b| u128::from_le_bytes(b.try_into().unwrap()))
    }

    fn column<T: Copy, const N: usize>(
        &mut self,
        n: usize,
        col: &mut Column<T>,
        conv: impl Fn([u8; N]) -> T,
    ) -> Result<(), JournalError> {
        self.values(n, |v| col.push(conv(v)))
    }

    /// Calls `f` with each of the next `n` values of `N` bytes, read in blocks.
    fn values<const N: usize>(
        &mut self,
        n: usize,
        mut f: impl FnMut([u8; N]),
    ) -> Result<(), JournalError> {
        let mut left = n;
        while left > 0 {
            let k = left.min(BLOCK);
            self.with(k * N, true, |b| {
                for v in b.chunks_exact(N) {
                    f(v.try_into().unwrap());
                }
            })?;
            left -= k;
        }
        Ok(())
    }

    /// A posting list `Writer::bitmap` wrote; roaring checks its containers as it reads.
    fn bitmap(&mut self) -> Result<RoaringBitmap, JournalError> {
        let len = self.u32()? as usize;
        let read = self.with(len, true, |mut b| {
            RoaringBitmap::deserialize_from(&mut b)
                .ok()
                .filter(|_| b.is_empty())
        })?;
        read.ok_or_else(|| corrupt("a posting list is damaged"))
    }

    /// After the checksum: nothing may follow.
    fn expect_end(&mut self) -> Result<(), JournalError> {
        if self.pos < self.cur.len() {
            return Err(corrupt("unexpected bytes after the checksum"));
        }
        loop {
            match (self.next)()? {
                None => return Ok(()),
                Some(v) if v.is_empty() => continue,
                Some(_) => return Err(corrupt("unexpected bytes after the checksum")),
            }
        }
    }
}

fn check(ok: bool, what: &str) -> Result<(), JournalError> {
    if ok { Ok(()) } else { Err(corrupt(what)) }
}

/// At most this many table entries are reserved up front: a damaged count must not make
/// the reader ask for absurd memory before it fails.
const RESERVE_MAX: usize = 1 << 20;

/// A table's count as stored (below `u32::MAX`); callers reserve at most `RESERVE_MAX` of
/// it, so that a damaged count cannot ask for absurd memory before the checksum fails.
fn table_len(r: &mut Reader, what: &str) -> Result<usize, JournalError> {
    let n = r.u32()? as usize;
    check(n < u32::MAX as usize, what)?;
    Ok(n)
}

pub(super) fn decode(
    next_chunk: &mut dyn FnMut() -> Result<Option<Vec<u8>>, JournalError>,
    tuning: Tuning,
) -> Result<RowStore, JournalError> {
    let mut r = Reader {
        next: next_chunk,
        cur: Vec::new(),
        pos: 0,
        scratch: Vec::new(),
        sum: Checksum::new(),
    };
    let magic_ok = match r.with(8, true, |b| b == MAGIC) {
        Ok(ok) => ok,
        Err(JournalError::Corrupt(_)) => {
            return Err(corrupt("too short to be a connlog row snapshot"));
        }
        Err(e) => return Err(e),
    };
    check(magic_ok, "not a connlog row snapshot (bad magic)")?;
    let version = r.u32()?;
    if version != VERSION {
        return Err(corrupt(format!(
            "unsupported format version {version} (this plugin reads version {VERSION})"
        )));
    }

    let mut store = RowStore::with_tuning(tuning);
    let c = &mut store.cols;

    let n = table_len(&mut r, "bad string count")?;
    check(n >= 1, "string table lacks its placeholder")?;
    c.strings.reserve(n.min(RESERVE_MAX));
    for _ in 1..n {
        let len = r.u32()? as usize;
        let s = r.with(len, true, |b| {
            core::str::from_utf8(b).map(|s| c.strings.push_unindexed(s))
        })?;
        s.map_err(|_| corrupt("a string is not UTF-8"))?;
    }
    c.strings
        .index_all()
        .map_err(|_| corrupt("duplicate string"))?;
    let strings = c.strings.len() as u32;

    let n = table_len(&mut r, "bad organization count")?;
    c.orgs.reserve(n.min(RESERVE_MAX));
    for id in 0..n {
        let v = r.u128()?;
        check(c.orgs.intern(v).0 as usize == id, "duplicate organization")?;
        store.org_bits.push(RoaringBitmap::new());
    }
    let n = table_len(&mut r, "bad owner count")?;
    c.owners.reserve(n.min(RESERVE_MAX));
    for id in 0..n {
        let v = r.u128()?;
        check(c.owners.intern(v).0 as usize == id, "duplicate owner")?;
        store.owner_bits.push(RoaringBitmap::new());
    }
    let n = table_len(&mut r, "bad user count")?;
    c.users.reserve(n.min(RESERVE_MAX));
    check(n >= 1 && r.u128()? == 0, "user table lacks its placeholder")?;
    for id in 1..n {
        let v = r.u128()?;
        check(c.users.intern(v).0 as usize == id, "duplicate user")?;
        store.user_bits.push(RoaringBitmap::new());
    }
    let n = table_len(&mut r, "bad context count")?;
    c.ctxs.reserve(n.min(RESERVE_MAX));
    for id in 0..n {
        let (org, owner, workspace) = (r.u32()?, r.u32()?, r.u128()?);
        let (workspace_name, agent) = (r.u32()?, r.u32()?);
        let ctx = Ctx {
            org,
            owner,
            workspace,
            workspace_name,
            agent,
        };
        check(
            (org as usize) < c.orgs.len(),
            "context names an unknown organization",
        )?;
        check(
            (owner as usize) < c.owners.len(),
            "context names an unknown owner",
        )?;
        let names_ok =
            workspace_name > 0 && workspace_name < strings && agent > 0 && agent < strings;
        check(names_ok, "context names an unknown string")?;
        check(c.ctxs.intern(ctx).0 as usize == id, "duplicate context")?;
        store
            .workspace_ctxs
            .entry(workspace)
            .or_default()
            .push(id as u32);
    }
    let n = table_len(&mut r, "bad descriptor count")?;
    c.descs.reserve(n.min(RESERVE_MAX));
    for id in 0..n {
        let d = Desc {
            ctx: r.u32()?,
            user: r.u32()?,
            app: r.u32()?,
            flags: r.u8()?,
        };
        check(
            (d.ctx as usize) < c.ctxs.len(),
            "descriptor names an unknown context",
        )?;
        check(
            (d.user as usize) < c.users.len(),
            "descriptor names an unknown user",
        )?;
        check(d.app < strings, "descriptor names an unknown string")?;
        check(d.flags & !DESC_FLAGS == 0, "descriptor has unknown flags")?;
        check(c.descs.intern(d).0 as usize == id, "duplicate descriptor")?;
    }
    let n = table_len(&mut r, "bad detail count")?;
    c.details.reserve(n.min(RESERVE_MAX));
    for id in 0..n {
        let method = r.u8()?;
        let (user_agent, reason) = (r.u32()?, r.u32()?);
        let has_code = r.u8()?;
        let code = r.with(4, true, |b| i32::from_le_bytes(b.try_into().unwrap()))?;
        let flags = r.u8()?;
        check(
            ConnectionMethod::from_index(method).is_some(),
            "detail names an unknown connection method",
        )?;
        check(
            user_agent < strings && reason < strings,
            "detail names an unknown string",
        )?;
        check(has_code <= 1, "detail has a bad code flag")?;
        check(flags & !HAS_DISCONNECT == 0, "detail has unknown flags")?;
        let code = (has_code == 1).then_some(code);
        let d = Detail {
            method,
            user_agent,
            reason,
            code,
            flags,
        };
        check(c.details.intern(d).0 as usize == id, "duplicate detail")?;
    }

    let rows = r.u64()?;
    check(rows < u32::MAX as u64, "too many rows")?;
    let rows = rows as usize;
    r.column(rows, &mut c.id, u128::from_le_bytes)?;
    r.column(rows, &mut c.connect, i64::from_le_bytes)?;
    for ids in [&mut c.desc, &mut c.detail, &mut c.ip] {
        r.values(rows, |v| ids.push(u32::from_le_bytes(v)))?;
    }
    read_session_values(&mut r, c, rows)?;
    read_lists(&mut r, &mut store)?;

    let digest = r.sum.finish();
    let stored = r.with(8, false, |b| u64::from_le_bytes(b.try_into().unwrap()))?;
    check(
        digest == stored,
        "checksum mismatch (the snapshot is damaged)",
    )?;
    r.expect_end()?;
    build_indexes(&mut store, rows)?;
    Ok(store)
}

/// Reads which rows have session values and which a client session id, then their values,
/// a chunk of slots at a time, then which client session ids are text.
fn read_session_values(r: &mut Reader, c: &mut Columns, rows: usize) -> Result<(), JournalError> {
    let words = rows.div_ceil(64);
    let mut bits = Vec::with_capacity(2 * words);
    r.values(2 * words, |w| bits.push(u64::from_le_bytes(w)))?;
    let (sessions, csids) = bits.split_at(words);
    if !rows.is_multiple_of(64) {
        let past_the_last = sessions.last().is_some_and(|w| w >> (rows % 64) != 0);
        check(!past_the_last, "session values for a row past the last")?;
    }
    let outside = sessions.iter().zip(csids).any(|(s, c)| c & !s != 0);
    check(
        !outside,
        "a client session id for a row without session values",
    )?;
    let per_chunk = CHUNK / 64;
    let mut chunks = Vec::with_capacity(words.div_ceil(per_chunk));
    for (i, (slot_bits, csid_bits)) in sessions
        .chunks(per_chunk)
        .zip(csids.chunks(per_chunk))
        .enumerate()
    {
        let count = |b: &[u64]| b.iter().map(|w| w.count_ones() as usize).sum();
        let (n, m): (usize, usize) = (count(slot_bits), count(csid_bits));
        let (mut connection, mut disconnect) = (Vec::with_capacity(n), Vec::with_capacity(n));
        r.values(n, |v: [u8; 24]| {
            connection.push(u128::from_le_bytes(v[..16].try_into().unwrap()));
            disconnect.push(i64::from_le_bytes(v[16..].try_into().unwrap()));
        })?;
        let mut csid = Vec::with_capacity(m);
        r.values(m, |v| csid.push(u128::from_le_bytes(v)))?;
        let values =
            SessionChunk::from_parts(slot_bits.to_vec(), csid_bits, connection, disconnect, csid);
        chunks.push((values, (rows - i * CHUNK).min(CHUNK)));
    }
    let n = table_len(r, "bad count of text client session ids")?;
    let mut text = Vec::with_capacity(n.min(RESERVE_MAX));
    for _ in 0..n {
        let position = r.u32()?;
        let p = position as usize;
        let after_the_last = text.last().is_none_or(|&last| last < position);
        check(
            after_the_last && p < rows && csids[p / 64] >> (p % 64) & 1 == 1,
            "a text client session id for a row without one",
        )?;
        text.push(position);
    }
    let strings = c.strings.len() as u128;
    let mut text = text.into_iter().peekable();
    for (i, (values, slots)) in chunks.into_iter().enumerate() {
        let end = (i * CHUNK + slots) as u32;
        let mut here = Vec::new();
        while let Some(position) = text.next_if(|&p| p < end) {
            here.push(position);
        }
        c.session.push_chunk(values, slots, &here);
        for &position in &here {
            let id = c.session.csid_value(position);
            check(
                id.is_some_and(|id| (1..strings).contains(&id)),
                "row names an unknown client session id",
            )?;
        }
    }
    Ok(())
}

/// Reads the posting lists `write_lists` wrote into the store's (empty) lists.
fn read_lists(r: &mut Reader, store: &mut RowStore) -> Result<(), JournalError> {
    let by_id = (store.org_bits.iter_mut())
        .chain(&mut store.owner_bits)
        .chain(&mut store.user_bits);
    let fixed = by_id
        .chain(&mut store.method_bits)
        .chain(&mut store.type_bits);
    for b in fixed.chain([&mut store.ongoing, &mut store.completed]) {
        *b = r.bitmap()?;
    }
    let strings = store.cols.strings.len() as u32;
    for _ in 0..table_len(r, "bad app count")? {
        let app = r.u32()?;
        check(
            app > 0 && app < strings,
            "an app list names an unknown string",
        )?;
        let b = r.bitmap()?;
        check(
            store.app_bits.insert(app, b).is_none(),
            "two lists of one app",
        )?;
    }
    for _ in 0..table_len(r, "bad code count")? {
        let code = r.with(4, true, |b| i32::from_le_bytes(b.try_into().unwrap()))?;
        let b = r.bitmap()?;
        check(
            store.code_bits.insert(code, b).is_none(),
            "two lists of one code",
        )?;
    }
    Ok(())
}

/// Whether the stored lists fit the rows: none names a row past the last, the lists of
/// each family that holds every row once (organization, owner, method) hold as many entries
/// as there are rows, and the legacy types' as many as the SSH method's list.
fn lists_fit(store: &RowStore, rows: usize) -> bool {
    let total = |lists: &[RoaringBitmap]| lists.iter().map(RoaringBitmap::len).sum::<u64>();
    let partitions = [&store.org_bits[..], &store.owner_bits, &store.method_bits];
    let ssh = &store.method_bits[usize::from(ConnectionMethod::Ssh.index())];
    let mut every = (store.org_bits.iter())
        .chain(&store.owner_bits)
        .chain(&store.user_bits)
        .chain(&store.method_bits)
        .chain(&store.type_bits)
        .chain([&store.ongoing, &store.completed])
        .chain(store.app_bits.values())
        .chain(store.code_bits.values());
    partitions.iter().all(|p| total(p) == rows as u64)
        && total(&store.type_bits) == ssh.len()
        && every.all(|b| b.max().is_none_or(|m| (m as usize) < rows))
}

/// Checks the rows, whose lists were read, and builds the other indexes from the columns,
/// whose rows are in ascending (time, id) order.
fn build_indexes(store: &mut RowStore, rows: usize) -> Result<(), JournalError> {
    check(
        lists_fit(store, rows),
        "the posting lists do not fit the rows",
    )?;
    let descs = store.cols.descs.len() as u32;
    let details = store.cols.details.len() as u32;
    let strings = store.cols.strings.len() as u32;
    let mut prev: Option<(i64, u128)> = None;
    for slot in 0..rows as u32 {
        let c = &store.cols;
        check(c.desc.get(slot) < descs, "row names an unknown descriptor")?;
        check(c.detail.get(slot) < details, "row names an unknown detail")?;
        check(c.ip.get(slot) < strings, "row names an unknown string")?;
        let key = c.sort_key(slot);
        check(prev.is_none_or(|p| p <= key), "rows are out of order")?;
        prev = Some(key);
    }

    let cols = &store.cols;
    store.keys = HashTable::new();
    fill_in_bucket_order(
        &mut store.keys,
        0..rows as u32,
        |slot| cols.key_hash(slot),
        |a, b| same_key(cols, a, b),
    )
    .map_err(|_| corrupt("two rows share a key"))?;

    // Time buckets: runs of about 3/4 of the maximum, never splitting equal times.
    store.buckets.clear();
    let target = (store.tuning.bucket_max as usize * 3 / 4).max(1);
    let connect = &store.cols.connect;
    let mut start = 0usize;
    while start < rows {
        let mut end = (start + target).min(rows);
        while end < rows && connect.get(end as u32) == connect.get(end as u32 - 1) {
            end += 1;
        }
        let mut b = Bucket::new(store.tuning.bucket_max);
        b.slots.insert_range(start as u32..end as u32);
        b.len = (end - start) as u32;
        b.lo = connect.get(start as u32);
        b.hi = connect.get(end as u32 - 1);
        if b.len > store.tuning.bucket_max {
            // Only equal times made it this big: it cannot split until it doubles.
            b.split_at = b.len.saturating_mul(2);
        }
        let key = if start == 0 { i64::MIN } else { b.lo };
        store.buckets.insert(key, b);
        start = end;
    }
    if store.buckets.is_empty() {
        store
            .buckets
            .insert(i64::MIN, Bucket::new(store.tuning.bucket_max));
    }
    store.len = rows;
    Ok(())
}

/// Slots per round of `Staged::append_to`: one roaring container's range, so that each
/// round appends to fresh containers.
const STAGE_SLOTS: u32 = 1 << 16;

/// Posting-list entries of ascending slots, held per list and appended a round at a time:
/// `RoaringBitmap::append` pushes without a search, where `insert` searches for every value
/// (and `try_push` scans a dense container for its maximum every time).
struct Staged {
    orgs: Vec<Vec<u32>>,
    owners: Vec<Vec<u32>>,
    users: Vec<Vec<u32>>,
    methods: Vec<Vec<u32>>,
    types: Vec<Vec<u32>>,
    ongoing: Vec<u32>,
    completed: Vec<u32>,
    apps: HashMap<u32, Vec<u32>, FoldBuild>,
    codes: HashMap<i32, Vec<u32>, FoldBuild>,
}

impl Staged {
    fn new(store: &RowStore) -> Self {
        Self {
            orgs: vec![Vec::new(); store.org_bits.len()],
            owners: vec![Vec::new(); store.owner_bits.len()],
            users: vec![Vec::new(); store.user_bits.len()],
            methods: vec![Vec::new(); store.method_bits.len()],
            types: vec![Vec::new(); store.type_bits.len()],
            ongoing: Vec::new(),
            completed: Vec::new(),
            apps: HashMap::with_hasher(FoldBuild),
            codes: HashMap::with_hasher(FoldBuild),
        }
    }

    fn add(&mut self, slot: u32, p: Postings) {
        self.orgs[p.org as usize].push(slot);
        self.owners[p.owner as usize].push(slot);
        self.methods[usize::from(p.method)].push(slot);
        if let Some(i) = type_list(p.legacy) {
            self.types[i].push(slot);
        }
        if p.user != 0 {
            self.users[p.user as usize].push(slot);
        }
        if p.app != 0 {
            self.apps.entry(p.app).or_default().push(slot);
        }
        match p.status {
            1 => self.ongoing.push(slot),
            2 => self.completed.push(slot),
            _ => {}
        }
        if let Some(code) = p.code {
            self.codes.entry(code).or_default().push(slot);
        }
    }

    /// Moves every held entry into the store's bitmaps, keeping the buffers' capacity.
    fn append_to(&mut self, store: &mut RowStore) {
        let lists = [
            (&mut self.orgs, &mut store.org_bits[..]),
            (&mut self.owners, &mut store.owner_bits[..]),
            (&mut self.users, &mut store.user_bits[..]),
            (&mut self.methods, &mut store.method_bits[..]),
            (&mut self.types, &mut store.type_bits[..]),
        ];
        for (held, bits) in lists {
            for (slots, b) in held.iter_mut().zip(bits) {
                append(b, slots);
            }
        }
        append(&mut store.ongoing, &mut self.ongoing);
        append(&mut store.completed, &mut self.completed);
        for (app, slots) in &mut self.apps {
            append(store.app_bits.entry(*app).or_default(), slots);
        }
        for (code, slots) in &mut self.codes {
            append(store.code_bits.entry(*code).or_default(), slots);
        }
    }
}

/// Appends `slots` (ascending, above everything in `b`) to `b` and empties `slots`.
fn append(b: &mut RoaringBitmap, slots: &mut Vec<u32>) {
    if !slots.is_empty() {
        let appended = b.append(slots.drain(..));
        assert!(
            appended.is_ok(),
            "posting slots are appended in ascending order"
        );
    }
}

/// Whether two slots hold the same key.
fn same_key(c: &Columns, a: u32, b: u32) -> bool {
    let session = c.is_session(a);
    if session != c.is_session(b) {
        return false;
    }
    if session {
        let (x, y) = (c.ctx_of(a), c.ctx_of(b));
        c.session.connection(a) == c.session.connection(b)
            && x.workspace == y.workspace
            && x.agent == y.agent
    } else {
        c.id.get(a) == c.id.get(b)
    }
}
