//! The plugin's rows in memory: compact columns, interned strings and posting-list indexes,
//! so that ten million rows fit well under 1 GiB and a filtered first page with its exact
//! count takes milliseconds.
//!
//! # Layout
//! Every row lives in a *slot* (`u32`). Per slot the store keeps five columns (30 to 36
//! bytes): `id`, `connect_time`, the interned `ip`, and two ids of interned tuples:
//! - `desc` → (`ctx`, user, app name or port, has-connection-id), where
//!   `ctx` → (organization, owner, workspace id, workspace name, agent name);
//! - `detail` → (method, user agent, disconnect reason, code, has-disconnect).
//!
//! These tuples repeat per workspace agent and per kind of connection, so their tables stay
//! small, and the three id columns take two bytes per slot while ids fit in 16 bits
//! (`columns::IdColumn`).
//!
//! A session's `connection_id` and `disconnect_time` (24 bytes) are kept only for the slots
//! of rows that have any, and a client session id only for those that have one
//! (`columns::SessionColumns`): web and tunnel rows have none of them, and most sessions no
//! client session id. A slot keeps its kind (`SlotKind`) while it is free, so each kind has
//! its own free list. A client session id is shared by a few connections only, so it is
//! neither part of the `desc` tuples nor interned; it is 32 hexadecimal digits (Coder's
//! CHECK), so it is kept as the `u128` they spell rather than as text.
//!
//! # Indexes
//! - `keys`: a `HashTable<u32>` of slots, hashed from the columns (session rows by their
//!   connection id, other rows by their id), so that no key is stored twice. It also answers
//!   the `connection_id` filter.
//! - Roaring posting lists of slots per organization, owner (which also narrows the
//!   workspace filter), connection method and user, plus `ongoing` and `completed`.
//! - A posting list per distinct code (`code:`, connlog's extension). Codes are few (0, 1,
//!   2, 101, 200, 302, 403, 404, 500, …), so this costs one list entry per row with a code,
//!   about what the method lists cost, plus a map entry per code; a row without a code is in
//!   none.
//!   The app filters scan the candidates through the `desc` table instead.
//! - Time buckets (`buckets.rs`): slots by `connect_time` range, which give time ranges,
//!   page skipping by count and the order.
//!
//! This file writes rows and reads them back; `query.rs`, `purge.rs`, `memory.rs` and
//! `snapshot.rs` each do one job over the same structures.

mod buckets;
mod columns;
mod intern;
mod memory;
mod purge;
mod query;
mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::merge::Closing;
use connlog_plugin_sdk::model::*;
use connlog_vocabulary::{AppFamily, LegacyType, app_family, is_client_session_id};
use hashbrown::{HashMap, HashTable};
use roaring::RoaringBitmap;

use buckets::Bucket;
use columns::{Column, Csid, IdColumn, SessionColumns, SessionValues, SlotKind};
pub use intern::FoldBuild;
use intern::{Interner, Strings, hash_u128};

const SEED_SESSION: u64 = 0x5e55_1055;
const SEED_ID: u64 = 0x1d1d_1d1d;

const HAS_CONNECTION: u8 = 1;
const HAS_DISCONNECT: u8 = 2;
/// In a `Desc`: its app is of the VS Code or the JetBrains family, which decides the
/// deprecated `type` of an SSH row.
const VSCODE_APP: u8 = 4;
const JETBRAINS_APP: u8 = 8;
const DESC_FLAGS: u8 = HAS_CONNECTION | VSCODE_APP | JETBRAINS_APP;

/// Rows per time bucket before it splits.
const BUCKET_MAX: u32 = 1 << 10;
/// From this many rows on, a purge works list by list rather than row by row.
const BULK_REMOVE: usize = 4096;
/// The posting lists' slack is given back every this many new slots (eight containers'
/// ranges: a list's fixed cost per compaction is shared by eight of its containers; every
/// container's range cost 12 % of the store bench's upsert time).
const COMPACT_SLOTS: u32 = 8 << 16;
/// At or below this many candidate rows a page is found by sorting all of them.
const COLLECT_LIMIT: u64 = 1 << 14;

/// Where a workspace agent lives: the tuple that repeats on every row of that agent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Ctx {
    org: u32,
    owner: u32,
    workspace: u128,
    workspace_name: u32,
    agent: u32,
}

/// Who connected to what: the context, the user, the app (or slug or port), and whether the
/// row is a session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Desc {
    ctx: u32,
    user: u32,
    app: u32,
    /// `HAS_CONNECTION`, and the app's family: `VSCODE_APP` or `JETBRAINS_APP`.
    flags: u8,
}

/// How: the connection method, the client's user agent, and how the connection ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Detail {
    /// `ConnectionMethod::index`.
    method: u8,
    user_agent: u32,
    reason: u32,
    code: Option<i32>,
    /// `HAS_DISCONNECT`.
    flags: u8,
}

/// The ids `intern_row` gives a row's repeated values, and the values it keeps in
/// `SessionColumns`, whose presence decides its slot's kind.
#[derive(Clone, Copy)]
struct Interned {
    desc: u32,
    detail: u32,
    ip: u32,
    session: Option<SessionValues>,
}

/// The method a `Detail` holds. Only `intern_row` and a checked snapshot write the index.
#[inline]
fn method_of(index: u8) -> ConnectionMethod {
    ConnectionMethod::from_index(index).expect("a stored method index")
}

#[derive(Clone, Copy)]
struct Tuning {
    bucket_max: u32,
    collect_limit: u64,
    /// From this many rows on, a purge subtracts them from every posting list at once.
    bulk_remove: usize,
    /// Every this many new slots, the posting lists give back their slack over them
    /// (`COMPACT_SLOTS` in use; the model tests compact every few slots).
    compact_slots: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            bucket_max: BUCKET_MAX,
            collect_limit: COLLECT_LIMIT,
            bulk_remove: BULK_REMOVE,
            compact_slots: COMPACT_SLOTS,
        }
    }
}

/// The columns and the interned tables: everything needed to read a row back.
#[derive(Default)]
struct Columns {
    id: Column<u128>,
    connect: Column<i64>,
    /// `connection_id`, `disconnect_time` and client session id, for the slots with any.
    session: SessionColumns,
    desc: IdColumn,
    detail: IdColumn,
    ip: IdColumn,
    strings: Strings,
    orgs: Interner<u128>,
    owners: Interner<u128>,
    users: Interner<u128>,
    ctxs: Interner<Ctx>,
    descs: Interner<Desc>,
    details: Interner<Detail>,
}

impl<T: Copy + Eq + core::hash::Hash> Default for Interner<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl Columns {
    fn new() -> Self {
        Self {
            users: Interner::with_placeholder(0),
            ..Default::default()
        }
    }

    #[inline]
    fn desc_of(&self, slot: u32) -> Desc {
        self.descs.get(self.desc.get(slot))
    }

    #[inline]
    fn detail_of(&self, slot: u32) -> Detail {
        self.details.get(self.detail.get(slot))
    }

    #[inline]
    fn is_session(&self, slot: u32) -> bool {
        self.desc_of(slot).flags & HAS_CONNECTION != 0
    }

    /// The hash under which `keys` holds this slot.
    #[inline]
    fn key_hash(&self, slot: u32) -> u64 {
        if self.is_session(slot) {
            hash_u128(self.session.connection(slot), SEED_SESSION)
        } else {
            hash_u128(self.id.get(slot), SEED_ID)
        }
    }

    #[inline]
    fn sort_key(&self, slot: u32) -> (i64, u128) {
        (self.connect.get(slot), self.id.get(slot))
    }

    fn ctx_of(&self, slot: u32) -> Ctx {
        self.ctxs.get(self.desc_of(slot).ctx)
    }

    fn session_key(&self, slot: u32) -> SessionKey {
        let ctx = self.ctx_of(slot);
        SessionKey {
            connection_id: Uuid::from_u128(self.session.connection(slot)),
            workspace_id: Uuid::from_u128(ctx.workspace),
            agent_name: self.strings.get(ctx.agent).to_string(),
        }
    }

    fn origin(&self, slot: u32) -> RowOrigin {
        if self.is_session(slot) {
            RowOrigin::Session(self.session_key(slot))
        } else {
            RowOrigin::SingleEvent(Uuid::from_u128(self.id.get(slot)))
        }
    }

    /// A client session id as it was sent.
    fn csid_text(&self, csid: Csid) -> Option<String> {
        match csid {
            Csid::None => None,
            Csid::Number(n) => Some(format!("{n:032x}")),
            Csid::Text(id) => self.strings.get_opt(id).map(str::to_string),
        }
    }

    fn row(&self, slot: u32) -> ConnectionLog {
        let desc = self.desc_of(slot);
        let session = self.session.get(slot);
        let ctx = self.ctxs.get(desc.ctx);
        let detail = self.detail_of(slot);
        let s = &self.strings;
        let owned = |id: u32| s.get_opt(id).map(str::to_string);
        ConnectionLog {
            id: Uuid::from_u128(self.id.get(slot)),
            connect_time: self.connect.get(slot),
            organization_id: Uuid::from_u128(self.orgs.get(ctx.org)),
            workspace_owner_id: Uuid::from_u128(self.owners.get(ctx.owner)),
            workspace_id: Uuid::from_u128(ctx.workspace),
            workspace_name: s.get(ctx.workspace_name).to_string(),
            agent_name: s.get(ctx.agent).to_string(),
            connection_method: method_of(detail.method),
            code: detail.code,
            ip: owned(self.ip.get(slot)),
            user_agent: owned(detail.user_agent),
            user_id: (desc.user != 0).then(|| Uuid::from_u128(self.users.get(desc.user))),
            app_name_or_port: owned(desc.app),
            connection_id: (desc.flags & HAS_CONNECTION != 0)
                .then(|| Uuid::from_u128(session.connection)),
            disconnect_time: (detail.flags & HAS_DISCONNECT != 0).then_some(session.disconnect),
            disconnect_reason: owned(detail.reason),
            client_session_id: self.csid_text(session.csid),
        }
    }

    /// Does the slot hold the row with this key?
    fn slot_matches(&self, slot: u32, row: &RowRef) -> bool {
        match row.connection_id {
            Some(c) => {
                self.session.connection(slot) == c.as_u128() && self.is_session(slot) && {
                    let ctx = self.ctx_of(slot);
                    ctx.workspace == row.workspace_id.as_u128()
                        && self.strings.get(ctx.agent) == row.agent_name
                }
            }
            None => self.id.get(slot) == row.id.as_u128() && !self.is_session(slot),
        }
    }
}

/// The values the row keeps in `SessionColumns`, with its client session id as `intern_row`
/// reads it.
/// Sessions have them; so does any other row with a disconnect time (which validation never
/// lets through) or a client session id, so that nothing is dropped.
fn session_values(row: &RowRef, csid: Csid) -> Option<SessionValues> {
    let any = row.connection_id.is_some() || row.disconnect_time.is_some() || csid != Csid::None;
    any.then(|| SessionValues {
        connection: row.connection_id.map_or(0, |u| u.as_u128()),
        disconnect: row.disconnect_time.unwrap_or(0),
        csid,
    })
}

/// The `u128` a client session id spells, if it is Coder's 32 lowercase hexadecimal digits.
fn parse_csid(text: &str) -> Option<u128> {
    is_client_session_id(text)
        .then(|| u128::from_str_radix(text, 16).ok())
        .flatten()
}

/// The legacy types with a list of their own: those that split SSH rows by their app. Any
/// other type's rows are exactly its method's (`LegacyType::filter`), whose list answers it.
const LISTED_TYPES: [LegacyType; 3] = [LegacyType::Ssh, LegacyType::Vscode, LegacyType::Jetbrains];

/// The position in `type_bits` of a legacy type's list (by `LegacyType::index`), if it has
/// one.
fn type_list(legacy: u8) -> Option<usize> {
    LISTED_TYPES.iter().position(|t| t.index() == legacy)
}

/// The index entries of one row, to diff a replacement against.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Postings {
    org: u32,
    owner: u32,
    method: u8,
    /// `LegacyType::index` of the deprecated `type` the row is returned with.
    legacy: u8,
    user: u32,
    /// The client's app (its string id) of an SSH or web-terminal row; 0: none, or another
    /// method (whose column holds a slug or port, which `app:` never matches).
    app: u32,
    /// 0: none (not SSH or the web terminal), 1: ongoing, 2: completed.
    status: u8,
    code: Option<i32>,
    time: i64,
}

impl Postings {
    /// The code as `update_postings` compares keys: `u64::MAX` for none.
    fn code_key(&self) -> u64 {
        self.code.map_or(u64::MAX, |c| u64::from(c as u32))
    }
}

/// A session row in the store (`RowStore::find_session`). It stays valid while other rows
/// are upserted or closed (an upsert moves only its own row), not across a purge or a load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSlot(u32);

/// All rows, ordered by `connect_time` descending then `id` descending, so that paging is
/// stable even among rows of the same `connect_time`. A row with a connection id is keyed by its session key, any other by its
/// id.
pub struct RowStore {
    cols: Columns,
    len: usize,
    /// Freed slots, by `SlotKind`.
    free: [Vec<u32>; SlotKind::COUNT],
    keys: HashTable<u32>,
    org_bits: Vec<RoaringBitmap>,
    owner_bits: Vec<RoaringBitmap>,
    /// By `ConnectionMethod::index`.
    method_bits: [RoaringBitmap; ConnectionMethod::ALL.len()],
    /// By position in `LISTED_TYPES`: what the deprecated `type:` reads, as one list.
    type_bits: [RoaringBitmap; LISTED_TYPES.len()],
    /// The family flags of each app string seen (`VSCODE_APP`, `JETBRAINS_APP`, or 0), so
    /// that an app name is looked up in the registry once.
    app_families: HashMap<u32, u8, FoldBuild>,
    /// SSH and web-terminal rows by their app's string id (`app:` and `type:`).
    app_bits: HashMap<u32, RoaringBitmap, FoldBuild>,
    user_bits: Vec<RoaringBitmap>,
    /// The contexts of each workspace id.
    workspace_ctxs: HashMap<u128, Vec<u32>, FoldBuild>,
    ongoing: RoaringBitmap,
    completed: RoaringBitmap,
    /// Rows by their code (`code:`); rows without a code are in none.
    code_bits: HashMap<i32, RoaringBitmap, FoldBuild>,
    buckets: BTreeMap<i64, Bucket>,
    tuning: Tuning,
}

impl Default for RowStore {
    fn default() -> Self {
        Self::with_tuning(Tuning::default())
    }
}

impl RowStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_tuning(tuning: Tuning) -> Self {
        let mut buckets = BTreeMap::new();
        buckets.insert(i64::MIN, Bucket::new(tuning.bucket_max));
        Self {
            cols: Columns::new(),
            len: 0,
            free: Default::default(),
            keys: HashTable::new(),
            org_bits: Vec::new(),
            owner_bits: Vec::new(),
            method_bits: Default::default(),
            type_bits: Default::default(),
            app_families: HashMap::with_hasher(FoldBuild),
            app_bits: HashMap::with_hasher(FoldBuild),
            user_bits: vec![RoaringBitmap::new()],
            workspace_ctxs: HashMap::with_hasher(FoldBuild),
            ongoing: RoaringBitmap::new(),
            completed: RoaringBitmap::new(),
            code_bits: HashMap::with_hasher(FoldBuild),
            buckets,
            tuning,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the store holds the session `(connection_id, workspace_id, agent_name)`, if
    /// it does.
    pub fn find_session(
        &self,
        connection_id: Uuid,
        workspace_id: Uuid,
        agent_name: &str,
    ) -> Option<SessionSlot> {
        self.session_slot(connection_id, workspace_id, agent_name)
            .map(SessionSlot)
    }

    /// The row the store holds for the session (`merge::session_row` folds one from events).
    pub fn row_of(&self, session: SessionSlot) -> ConnectionLog {
        self.cols.row(session.0)
    }

    /// Whether the session has no disconnect yet.
    pub fn is_ongoing(&self, session: SessionSlot) -> bool {
        self.cols.detail_of(session.0).flags & HAS_DISCONNECT == 0
    }

    /// Closes an ongoing session's row with disconnects: the row `upsert` would make of
    /// them and its connect (`merge::session_row`), which they change only in its
    /// connect time (an earlier disconnect moves it), its disconnect, its reason and its
    /// code. Nothing else is interned again, nor the row looked up again.
    pub fn close(&mut self, session: SessionSlot, closing: &Closing) {
        debug_assert!(self.is_ongoing(session), "closes an ongoing session");
        let slot = session.0;
        let old = self.postings(slot);
        let c = &mut self.cols;
        let detail = c.detail_of(slot);
        let detail = Detail {
            reason: c.strings.intern_opt(closing.reason),
            code: closing.code,
            flags: detail.flags | HAS_DISCONNECT,
            ..detail
        };
        let detail = c.details.intern(detail).0;
        c.detail.set(slot, detail);
        c.connect.set(slot, c.connect.get(slot).min(closing.time));
        c.session.set_disconnect(slot, closing.time);
        let new = self.postings(slot);
        if old != new {
            self.unindex(slot, old, Some(new));
            self.index(slot, new, Some(old));
        }
    }

    fn session_slot(
        &self,
        connection_id: Uuid,
        workspace_id: Uuid,
        agent_name: &str,
    ) -> Option<u32> {
        let c = connection_id.as_u128();
        let cols = &self.cols;
        self.keys
            .find(hash_u128(c, SEED_SESSION), |&s| {
                cols.session.connection(s) == c && cols.is_session(s) && {
                    let ctx = cols.ctx_of(s);
                    ctx.workspace == workspace_id.as_u128()
                        && cols.strings.get(ctx.agent) == agent_name
                }
            })
            .copied()
    }

    /// The slot of the row an origin names, if the store holds it.
    fn slot_of(&self, origin: &RowOrigin) -> Option<u32> {
        match origin {
            RowOrigin::Session(k) => {
                self.session_slot(k.connection_id, k.workspace_id, &k.agent_name)
            }
            RowOrigin::SingleEvent(id) => {
                let id = id.as_u128();
                let cols = &self.cols;
                self.keys
                    .find(hash_u128(id, SEED_ID), |&s| {
                        cols.id.get(s) == id && !cols.is_session(s)
                    })
                    .copied()
            }
        }
    }

    fn key_hash_of(row: &RowRef) -> u64 {
        match row.connection_id {
            Some(c) => hash_u128(c.as_u128(), SEED_SESSION),
            None => hash_u128(row.id.as_u128(), SEED_ID),
        }
    }

    /// Inserts the row, replacing the row with the same key (session key, else id).
    pub fn upsert(&mut self, row: RowRef<'_>) {
        let hash = Self::key_hash_of(&row);
        let existing = {
            let cols = &self.cols;
            self.keys
                .find(hash, |&s| cols.slot_matches(s, &row))
                .copied()
        };
        let interned = self.intern_row(&row);
        let kind = SlotKind::of(interned.session.as_ref());
        match existing {
            Some(slot) if self.cols.session.kind(slot) == kind => {
                let old = self.postings(slot);
                self.write_slot(slot, &row, interned);
                let new = self.postings(slot);
                if old != new {
                    self.unindex(slot, old, Some(new));
                    self.index(slot, new, Some(old));
                }
            }
            existing => {
                if let Some(slot) = existing {
                    // A row whose kind changes (it gains or loses session values or a client
                    // session id) moves.
                    self.remove_slot(slot);
                }
                self.reserve_key();
                let slot = self.take_slot(kind);
                self.write_slot(slot, &row, interned);
                let cols = &self.cols;
                self.keys.insert_unique(hash, slot, |&s| cols.key_hash(s));
                let new = self.postings(slot);
                self.index(slot, new, None);
                self.len += 1;
            }
        }
    }

    /// Makes room in `keys` for one more key. hashbrown grows a full table by rehashing it
    /// in bucket order, which reads each slot's key from the columns at random: at 10M rows
    /// a cache miss per row, 7 % of a full replay's fold. Rebuilt here, the columns are read
    /// in slot order. A quarter to spare doubles a full table, as hashbrown does, and keeps
    /// rebuilds rare when purges have left it full of deleted entries.
    fn reserve_key(&mut self) {
        if self.keys.len() < self.keys.capacity() {
            return;
        }
        let slots = self.cols.id.len();
        let mut free = vec![0u64; slots.div_ceil(64)];
        for &slot in self.free.iter().flatten() {
            free[slot as usize / 64] |= 1 << (slot % 64);
        }
        let live = self.keys.len();
        let cols = &self.cols;
        let mut keys = HashTable::with_capacity(live + live / 4 + 1);
        for slot in 0..slots as u32 {
            if free[slot as usize / 64] & (1 << (slot % 64)) == 0 {
                keys.insert_unique(cols.key_hash(slot), slot, |&s| cols.key_hash(s));
            }
        }
        debug_assert_eq!(keys.len(), live, "every slot not free holds a key");
        self.keys = keys;
    }

    /// A free slot of the kind asked for, or a new one.
    fn take_slot(&mut self, kind: SlotKind) -> u32 {
        if let Some(slot) = self.free[kind as usize].pop() {
            return slot;
        }
        let slot = self.cols.id.len() as u32;
        let every = self.tuning.compact_slots;
        if slot != 0 && slot.is_multiple_of(every) {
            self.compact_postings(slot - every..slot);
        }
        let c = &mut self.cols;
        c.id.push(0);
        c.connect.push(0);
        c.session.push(kind);
        c.desc.push(0);
        c.detail.push(0);
        c.ip.push(0);
        slot
    }

    fn write_slot(&mut self, slot: u32, row: &RowRef, interned: Interned) {
        let c = &mut self.cols;
        c.id.set(slot, row.id.as_u128());
        c.connect.set(slot, row.connect_time);
        if let Some(values) = interned.session {
            c.session.set(slot, values);
        }
        c.desc.set(slot, interned.desc);
        c.detail.set(slot, interned.detail);
        c.ip.set(slot, interned.ip);
    }

    /// Interns the row's repeated values.
    fn intern_row(&mut self, row: &RowRef) -> Interned {
        let c = &mut self.cols;
        let (org, new) = c.orgs.intern(row.organization_id.as_u128());
        if new {
            self.org_bits.push(RoaringBitmap::new());
        }
        let (owner, new) = c.owners.intern(row.workspace_owner_id.as_u128());
        if new {
            self.owner_bits.push(RoaringBitmap::new());
        }
        let workspace_name = c.strings.intern(row.workspace_name).0;
        let agent = c.strings.intern(row.agent_name).0;
        let ctx = Ctx {
            org,
            owner,
            workspace: row.workspace_id.as_u128(),
            workspace_name,
            agent,
        };
        let (ctx_id, new) = c.ctxs.intern(ctx);
        if new {
            self.workspace_ctxs
                .entry(ctx.workspace)
                .or_default()
                .push(ctx_id);
        }
        let user = match row.user_id {
            None => 0,
            Some(u) => {
                let (user, new) = c.users.intern(u.as_u128());
                if new {
                    self.user_bits.push(RoaringBitmap::new());
                }
                user
            }
        };
        let app = c.strings.intern_opt(row.app_name_or_port);
        let family = *self.app_families.entry(app).or_insert_with(|| {
            match row.app_name_or_port.map(app_family) {
                Some(AppFamily::Vscode) => VSCODE_APP,
                Some(AppFamily::Jetbrains) => JETBRAINS_APP,
                _ => 0,
            }
        });
        let c = &mut self.cols;
        let flags = family
            | if row.connection_id.is_some() {
                HAS_CONNECTION
            } else {
                0
            };
        let desc = c
            .descs
            .intern(Desc {
                ctx: ctx_id,
                user,
                app,
                flags,
            })
            .0;
        let detail = Detail {
            method: row.connection_method.index(),
            user_agent: c.strings.intern_opt(row.user_agent),
            reason: c.strings.intern_opt(row.disconnect_reason),
            code: row.code,
            flags: if row.disconnect_time.is_some() {
                HAS_DISCONNECT
            } else {
                0
            },
        };
        let detail = c.details.intern(detail).0;
        let csid = match row.client_session_id {
            None => Csid::None,
            Some(text) => match parse_csid(text) {
                Some(value) => Csid::Number(value),
                None => Csid::Text(c.strings.intern(text).0),
            },
        };
        Interned {
            desc,
            detail,
            ip: c.strings.intern_opt(row.ip),
            session: session_values(row, csid),
        }
    }

    fn postings(&self, slot: u32) -> Postings {
        let desc = self.cols.desc_of(slot);
        let detail = self.cols.detail_of(slot);
        let ctx = self.cols.ctxs.get(desc.ctx);
        let method = method_of(detail.method);
        let terminal = method.is_terminal();
        let legacy = match method {
            ConnectionMethod::Ssh if desc.flags & VSCODE_APP != 0 => LegacyType::Vscode,
            ConnectionMethod::Ssh if desc.flags & JETBRAINS_APP != 0 => LegacyType::Jetbrains,
            _ => LegacyType::of(method, None),
        };
        let status = if !terminal {
            0
        } else if detail.flags & HAS_DISCONNECT == 0 {
            1
        } else {
            2
        };
        Postings {
            org: ctx.org,
            owner: ctx.owner,
            method: detail.method,
            legacy: legacy.index(),
            user: desc.user,
            app: if terminal { desc.app } else { 0 },
            status,
            code: detail.code,
            time: self.cols.connect.get(slot),
        }
    }

    /// Every posting list (the time buckets aside).
    fn posting_lists_mut(&mut self) -> impl Iterator<Item = &mut RoaringBitmap> {
        let by_id = (self.org_bits.iter_mut())
            .chain(&mut self.owner_bits)
            .chain(&mut self.user_bits);
        let fixed = by_id
            .chain(&mut self.method_bits)
            .chain(&mut self.type_bits);
        fixed
            .chain(self.app_bits.values_mut())
            .chain(self.code_bits.values_mut())
            .chain([&mut self.ongoing, &mut self.completed])
    }

    /// Adds the slot to the posting lists of `p` (only those that differ from `old`).
    fn index(&mut self, slot: u32, p: Postings, old: Option<Postings>) {
        self.update_postings(slot, p, old, add_slot, Self::bucket_insert);
    }

    /// Removes the slot from the posting lists of `p` (only those that differ from `new`).
    fn unindex(&mut self, slot: u32, p: Postings, new: Option<Postings>) {
        self.update_postings(slot, p, new, |b, s, _| b.remove(s), Self::bucket_remove);
    }

    /// The walk `index` and `unindex` share, so that they always touch the same lists:
    /// applies `bits` (insert or remove) to the slot in each posting list of `p` whose key
    /// differs from `other`'s, and `bucket` to its time bucket when the times differ.
    #[inline]
    fn update_postings(
        &mut self,
        slot: u32,
        p: Postings,
        other: Option<Postings>,
        bits: fn(&mut RoaringBitmap, u32, Lists) -> bool,
        bucket: fn(&mut Self, u32, i64),
    ) {
        let differs = |f: fn(&Postings) -> u64| other.is_none_or(|o| f(&o) != f(&p));
        if differs(|p| p.org as u64) {
            bits(&mut self.org_bits[p.org as usize], slot, Lists::Few);
        }
        if differs(|p| p.owner as u64) {
            bits(&mut self.owner_bits[p.owner as usize], slot, Lists::Many);
        }
        if differs(|p| p.method as u64) {
            bits(&mut self.method_bits[p.method as usize], slot, Lists::Few);
        }
        if differs(|p| p.legacy as u64)
            && let Some(i) = type_list(p.legacy)
        {
            bits(&mut self.type_bits[i], slot, Lists::Few);
        }
        if differs(|p| p.user as u64) && p.user != 0 {
            bits(&mut self.user_bits[p.user as usize], slot, Lists::Many);
        }
        if differs(|p| p.app as u64) && p.app != 0 {
            bits(self.app_bits.entry(p.app).or_default(), slot, Lists::Few);
        }
        if differs(|p| p.status as u64) {
            match p.status {
                1 => bits(&mut self.ongoing, slot, Lists::Few),
                2 => bits(&mut self.completed, slot, Lists::Few),
                _ => false,
            };
        }
        if differs(Postings::code_key)
            && let Some(code) = p.code
        {
            bits(self.code_bits.entry(code).or_default(), slot, Lists::Few);
        }
        if other.is_none_or(|o| o.time != p.time) {
            bucket(self, slot, p.time);
        }
    }

    /// Every slot, oldest first (ties by id, then slot).
    fn slots_ascending(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.len);
        let mut keyed: Vec<(i64, u128, u32)> = Vec::new();
        for b in self.buckets.values() {
            keyed.clear();
            keyed.extend(b.slots.iter().map(|s| {
                let (t, id) = self.cols.sort_key(s);
                (t, id, s)
            }));
            keyed.sort_unstable();
            out.extend(keyed.iter().map(|k| k.2));
        }
        out
    }

    /// Every row, newest first (tests, exports of everything).
    pub fn rows(&self) -> Vec<ConnectionLog> {
        self.slots_ascending()
            .into_iter()
            .rev()
            .map(|s| self.cols.row(s))
            .collect()
    }

    /// Serialises the store, calling `sink` with chunks of at most `chunk_size` bytes.
    pub fn encode(
        &self,
        chunk_size: usize,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        snapshot::encode(self, chunk_size, sink)
    }

    /// Rebuilds a store from the chunks `encode` wrote. Fails on a snapshot of another
    /// format or a damaged one.
    pub fn decode(
        next_chunk: &mut dyn FnMut() -> Result<Option<Vec<u8>>, JournalError>,
    ) -> Result<Self, JournalError> {
        snapshot::decode(next_chunk, Tuning::default())
    }
}

/// How many lists share out the rows of one kind of posting list, which decides how a slot
/// is best added to one of them.
#[derive(Clone, Copy)]
enum Lists {
    /// A handful (organizations, methods, types, apps, status codes, ongoing or not): a
    /// list may be dense, held in bitmap containers, and the lists stay in the cache.
    Few,
    /// One per owner or user: each list is sparse, held in arrays.
    Many,
}

/// Adds `slot` to a posting list. A new row's slot is past every slot listed. `try_push`
/// appends it to an array without `insert`'s two binary searches (over a list seldom in
/// the cache), but finds a bitmap's maximum by scanning it down from the top, some 500
/// words a push while a container fills: a dense list takes `insert`, which sets one bit.
fn add_slot(bits: &mut RoaringBitmap, slot: u32, lists: Lists) -> bool {
    match lists {
        Lists::Few => bits.insert(slot),
        Lists::Many => bits.try_push(slot).is_ok() || bits.insert(slot),
    }
}
