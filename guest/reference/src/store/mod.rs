//! The plugin's rows in memory: compact columns, interned strings and posting-list indexes,
//! so that ten million rows fit well under 1 GiB and a filtered first page with its exact
//! count takes milliseconds.
//!
//! # Layout
//! Every row lives in a *slot* (`u32`). Per slot the store keeps seven columns (60 bytes):
//! `id`, `connect_time`, `disconnect_time`, `connection_id`, the interned `ip`, and two ids
//! of interned tuples:
//! - `desc` → (`ctx`, user, slug or port, has-connection-id), where
//!   `ctx` → (organization, owner, workspace id, workspace name, agent name);
//! - `detail` → (type, user agent, disconnect reason, code, has-disconnect).
//!
//! These tuples repeat per workspace agent and per kind of connection, so their tables stay
//! small.
//!
//! # Indexes
//! - `keys`: a `HashTable<u32>` of slots, hashed from the columns (session rows by their
//!   connection id, other rows by their id), so that no key is stored twice. It also answers
//!   the `connection_id` filter.
//! - Roaring posting lists of slots per organization, owner (which also narrows the
//!   workspace filter), type and user, plus `ongoing` and `completed`.
//! - Time buckets: a `BTreeMap` from a start time to the slots whose `connect_time` falls
//!   in `[start, next start)`. A bucket splits when it exceeds `bucket_max` rows. Buckets
//!   give time ranges, page skipping by count and the order: the page is sorted inside the
//!   one or two buckets it falls in.

mod columns;
mod intern;
mod snapshot;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Bound;

use hashbrown::{HashMap, HashTable};
use roaring::RoaringBitmap;

use connlog_plugin_sdk::model::*;

use crate::appname::is_web_type;
use crate::authz::Visibility;
use crate::search::{Filter, SessionStatus};
use columns::Column;
pub use intern::FoldBuild;
use intern::{Interner, Strings, hash_u128, table_bytes};

const SEED_SESSION: u64 = 0x5e55_1055;
const SEED_ID: u64 = 0x1d1d_1d1d;

const HAS_CONNECTION: u8 = 1;
const HAS_DISCONNECT: u8 = 2;

/// Rows per time bucket before it splits.
const BUCKET_MAX: u32 = 1 << 10;
/// From this many rows on, a purge works list by list rather than row by row.
const BULK_REMOVE: usize = 4096;
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

/// Who connected to what: the context, the user, the app, and whether the row is a session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Desc {
    ctx: u32,
    user: u32,
    slug: u32,
    /// `HAS_CONNECTION`.
    flags: u8,
}

/// How: the type, the client's user agent, and how the connection ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Detail {
    ty: u32,
    user_agent: u32,
    reason: u32,
    code: Option<i32>,
    /// `HAS_DISCONNECT`.
    flags: u8,
}

#[derive(Clone, Copy)]
struct Tuning {
    bucket_max: u32,
    collect_limit: u64,
    /// From this many rows on, a purge subtracts them from every posting list at once.
    bulk_remove: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            bucket_max: BUCKET_MAX,
            collect_limit: COLLECT_LIMIT,
            bulk_remove: BULK_REMOVE,
        }
    }
}

/// The slots whose `connect_time` is in `[start, next bucket's start)`. `lo`/`hi` bound the
/// times actually present (conservatively: they widen on insert and tighten on split).
struct Bucket {
    slots: RoaringBitmap,
    len: u32,
    lo: UnixNanos,
    hi: UnixNanos,
    /// Do not try to split again before this many rows (all rows shared one time).
    split_at: u32,
}

impl Bucket {
    fn new(bucket_max: u32) -> Self {
        Self {
            slots: RoaringBitmap::new(),
            len: 0,
            lo: UnixNanos::MAX,
            hi: UnixNanos::MIN,
            split_at: bucket_max,
        }
    }
}

/// The columns and the interned tables: everything needed to read a row back.
#[derive(Default)]
struct Columns {
    id: Column<u128>,
    connect: Column<i64>,
    disconnect: Column<i64>,
    connection: Column<u128>,
    desc: Column<u32>,
    detail: Column<u32>,
    ip: Column<u32>,
    strings: Strings,
    orgs: Interner<u128>,
    owners: Interner<u128>,
    users: Interner<u128>,
    /// Type name (string id) per type id.
    types: Interner<u32>,
    type_is_web: Vec<bool>,
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
            hash_u128(self.connection.get(slot), SEED_SESSION)
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
            connection_id: Uuid::from_u128(self.connection.get(slot)),
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

    fn row(&self, slot: u32) -> ConnectionLog {
        let desc = self.desc_of(slot);
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
            connection_type: s.get(self.types.get(detail.ty)).to_string(),
            code: detail.code,
            ip: owned(self.ip.get(slot)),
            user_agent: owned(detail.user_agent),
            user_id: (desc.user != 0).then(|| Uuid::from_u128(self.users.get(desc.user))),
            slug_or_port: owned(desc.slug),
            connection_id: (desc.flags & HAS_CONNECTION != 0)
                .then(|| Uuid::from_u128(self.connection.get(slot))),
            disconnect_time: (detail.flags & HAS_DISCONNECT != 0)
                .then(|| self.disconnect.get(slot)),
            disconnect_reason: owned(detail.reason),
        }
    }

    /// Does the slot hold the row with this key?
    fn slot_matches(&self, slot: u32, row: &RowRef) -> bool {
        match row.connection_id {
            Some(c) => {
                self.connection.get(slot) == c.as_u128() && self.is_session(slot) && {
                    let ctx = self.ctx_of(slot);
                    ctx.workspace == row.workspace_id.as_u128()
                        && self.strings.get(ctx.agent) == row.agent_name
                }
            }
            None => self.id.get(slot) == row.id.as_u128() && !self.is_session(slot),
        }
    }
}

/// The index entries of one row, to diff a replacement against.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Postings {
    org: u32,
    owner: u32,
    ty: u32,
    user: u32,
    /// 0: none (web type), 1: ongoing, 2: completed.
    status: u8,
    time: i64,
}

/// All rows, ordered by `connect_time` descending then `id` descending, so that paging is
/// stable even among rows of the same `connect_time`. A row with a connection id is keyed by its session key, any other by its
/// id.
pub struct RowStore {
    cols: Columns,
    len: usize,
    free: Vec<u32>,
    keys: HashTable<u32>,
    org_bits: Vec<RoaringBitmap>,
    owner_bits: Vec<RoaringBitmap>,
    type_bits: Vec<RoaringBitmap>,
    user_bits: Vec<RoaringBitmap>,
    /// The contexts of each workspace id.
    workspace_ctxs: HashMap<u128, Vec<u32>, FoldBuild>,
    ongoing: RoaringBitmap,
    completed: RoaringBitmap,
    buckets: BTreeMap<i64, Bucket>,
    tuning: Tuning,
}

impl Default for RowStore {
    fn default() -> Self {
        Self::with_tuning(Tuning::default())
    }
}

/// A time bucket on a query's way: whether it lies wholly in the time range, and, once
/// counted, how many rows match there (plus the matches themselves if it lies partly).
struct Scanned<'a> {
    bucket: &'a Bucket,
    full: bool,
    count: Option<u64>,
    matches: Option<Vec<u32>>,
}

/// The rows a query's equality and set conjuncts allow.
enum Candidates<'a> {
    All,
    Some(Cow<'a, RoaringBitmap>),
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
            free: Vec::new(),
            keys: HashTable::new(),
            org_bits: Vec::new(),
            owner_bits: Vec::new(),
            type_bits: Vec::new(),
            user_bits: vec![RoaringBitmap::new()],
            workspace_ctxs: HashMap::with_hasher(FoldBuild),
            ongoing: RoaringBitmap::new(),
            completed: RoaringBitmap::new(),
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

    /// Does the store hold the session `(connection_id, workspace_id, agent_name)`?
    pub fn contains_session(
        &self,
        connection_id: Uuid,
        workspace_id: Uuid,
        agent_name: &str,
    ) -> bool {
        let c = connection_id.as_u128();
        let cols = &self.cols;
        self.keys
            .find(hash_u128(c, SEED_SESSION), |&s| {
                cols.connection.get(s) == c && cols.is_session(s) && {
                    let ctx = cols.ctx_of(s);
                    ctx.workspace == workspace_id.as_u128()
                        && cols.strings.get(ctx.agent) == agent_name
                }
            })
            .is_some()
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
        match existing {
            Some(slot) => {
                let old = self.postings(slot);
                self.write_slot(slot, &row, interned);
                let new = self.postings(slot);
                if old != new {
                    self.unindex(slot, old, Some(new));
                    self.index(slot, new, Some(old));
                }
            }
            None => {
                let slot = match self.free.pop() {
                    Some(slot) => slot,
                    None => {
                        let slot = self.cols.id.len() as u32;
                        let c = &mut self.cols;
                        c.id.push(0);
                        c.connect.push(0);
                        c.disconnect.push(0);
                        c.connection.push(0);
                        c.desc.push(0);
                        c.detail.push(0);
                        c.ip.push(0);
                        slot
                    }
                };
                self.write_slot(slot, &row, interned);
                let cols = &self.cols;
                self.keys.insert_unique(hash, slot, |&s| cols.key_hash(s));
                let new = self.postings(slot);
                self.index(slot, new, None);
                self.len += 1;
            }
        }
    }

    fn write_slot(&mut self, slot: u32, row: &RowRef, (desc, detail, ip): (u32, u32, u32)) {
        let c = &mut self.cols;
        c.id.set(slot, row.id.as_u128());
        c.connect.set(slot, row.connect_time);
        c.disconnect.set(slot, row.disconnect_time.unwrap_or(0));
        c.connection
            .set(slot, row.connection_id.map_or(0, |u| u.as_u128()));
        c.desc.set(slot, desc);
        c.detail.set(slot, detail);
        c.ip.set(slot, ip);
    }

    /// Interns the row's repeated values; returns its `desc`, `detail` and `ip` ids.
    fn intern_row(&mut self, row: &RowRef) -> (u32, u32, u32) {
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
        let type_name = c.strings.intern(row.connection_type).0;
        let (ty, new) = c.types.intern(type_name);
        if new {
            self.type_bits.push(RoaringBitmap::new());
            c.type_is_web.push(is_web_type(row.connection_type));
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
        let slug = c.strings.intern_opt(row.slug_or_port);
        let flags = if row.connection_id.is_some() {
            HAS_CONNECTION
        } else {
            0
        };
        let desc = c
            .descs
            .intern(Desc {
                ctx: ctx_id,
                user,
                slug,
                flags,
            })
            .0;
        let detail = Detail {
            ty,
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
        let ip = c.strings.intern_opt(row.ip);
        (desc, detail, ip)
    }

    fn postings(&self, slot: u32) -> Postings {
        let desc = self.cols.desc_of(slot);
        let detail = self.cols.detail_of(slot);
        let ctx = self.cols.ctxs.get(desc.ctx);
        let status = if self.cols.type_is_web[detail.ty as usize] {
            0
        } else if detail.flags & HAS_DISCONNECT == 0 {
            1
        } else {
            2
        };
        Postings {
            org: ctx.org,
            owner: ctx.owner,
            ty: detail.ty,
            user: desc.user,
            status,
            time: self.cols.connect.get(slot),
        }
    }

    /// Adds the slot to the posting lists of `p` (only those that differ from `old`).
    fn index(&mut self, slot: u32, p: Postings, old: Option<Postings>) {
        self.update_postings(slot, p, old, RoaringBitmap::insert, Self::bucket_insert);
    }

    /// Removes the slot from the posting lists of `p` (only those that differ from `new`).
    fn unindex(&mut self, slot: u32, p: Postings, new: Option<Postings>) {
        self.update_postings(slot, p, new, RoaringBitmap::remove, Self::bucket_remove);
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
        bits: fn(&mut RoaringBitmap, u32) -> bool,
        bucket: fn(&mut Self, u32, i64),
    ) {
        let differs = |f: fn(&Postings) -> u64| other.is_none_or(|o| f(&o) != f(&p));
        if differs(|p| p.org as u64) {
            bits(&mut self.org_bits[p.org as usize], slot);
        }
        if differs(|p| p.owner as u64) {
            bits(&mut self.owner_bits[p.owner as usize], slot);
        }
        if differs(|p| p.ty as u64) {
            bits(&mut self.type_bits[p.ty as usize], slot);
        }
        if differs(|p| p.user as u64) && p.user != 0 {
            bits(&mut self.user_bits[p.user as usize], slot);
        }
        if differs(|p| p.status as u64) {
            match p.status {
                1 => bits(&mut self.ongoing, slot),
                2 => bits(&mut self.completed, slot),
                _ => false,
            };
        }
        if other.is_none_or(|o| o.time != p.time) {
            bucket(self, slot, p.time);
        }
    }

    fn bucket_start(&self, time: i64) -> i64 {
        *self
            .buckets
            .range(..=time)
            .next_back()
            .expect("the first bucket starts at i64::MIN")
            .0
    }

    fn bucket_insert(&mut self, slot: u32, time: i64) {
        let start = self.bucket_start(time);
        let b = self.buckets.get_mut(&start).unwrap();
        b.slots.insert(slot);
        b.len += 1;
        b.lo = b.lo.min(time);
        b.hi = b.hi.max(time);
        if b.len > b.split_at {
            self.split_bucket(start);
        }
    }

    fn bucket_remove(&mut self, slot: u32, time: i64) {
        let start = self.bucket_start(time);
        let b = self.buckets.get_mut(&start).unwrap();
        if b.slots.remove(slot) {
            b.len -= 1;
        }
        if b.len == 0 {
            if start == i64::MIN {
                *b = Bucket::new(self.tuning.bucket_max);
            } else {
                // The previous bucket now covers this one's (empty) range.
                self.buckets.remove(&start);
            }
        }
    }

    /// Splits a full bucket in two at a time that leaves rows on both sides: near the top
    /// for the newest bucket (arrivals are mostly in time order, so the lower part is done
    /// growing), at the median otherwise.
    fn split_bucket(&mut self, start: i64) {
        let is_last = self
            .buckets
            .range((Bound::Excluded(start), Bound::Unbounded))
            .next()
            .is_none();
        let b = &self.buckets[&start];
        let cols = &self.cols;
        let mut times: Vec<i64> = b.slots.iter().map(|s| cols.connect.get(s)).collect();
        let rank = if is_last {
            times.len() * 7 / 8
        } else {
            times.len() / 2
        };
        let (_, &mut pivot, _) = times.select_nth_unstable(rank);
        let min = b.lo;
        let split = if pivot > min {
            Some(pivot)
        } else {
            times.iter().copied().filter(|&t| t > min).min()
        };
        let Some(split) = split else {
            // Every row has the same time: such a bucket cannot split.
            let b = self.buckets.get_mut(&start).unwrap();
            b.split_at = b.len.saturating_mul(2);
            return;
        };
        let mut upper = Bucket::new(self.tuning.bucket_max);
        let mut lower = Bucket::new(self.tuning.bucket_max);
        for s in b.slots.iter() {
            let t = cols.connect.get(s);
            let half = if t >= split { &mut upper } else { &mut lower };
            append(&mut half.slots, s);
            half.len += 1;
            half.lo = half.lo.min(t);
            half.hi = half.hi.max(t);
        }
        // The halves are mostly runs of consecutive slots.
        lower.slots.optimize();
        upper.slots.optimize();
        self.buckets.insert(start, lower);
        self.buckets.insert(split, upper);
    }

    fn remove_slot(&mut self, slot: u32) {
        let p = self.postings(slot);
        self.unindex(slot, p, None);
        let hash = self.cols.key_hash(slot);
        if let Ok(entry) = self.keys.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        self.free.push(slot);
        self.len -= 1;
    }

    /// One page of the rows that pass `filter` and `visibility`, plus the exact count of all
    /// such rows. `limit` is already resolved (never 0 here).
    pub fn query(
        &self,
        filter: &Filter,
        visibility: &Visibility,
        limit: u32,
        offset: u32,
    ) -> (Vec<ConnectionLog>, u64) {
        let lo = filter.connected_after.unwrap_or(i64::MIN);
        let hi = filter.connected_before.unwrap_or(i64::MAX);
        if lo > hi {
            return (Vec::new(), 0);
        }
        let Some(candidates) = self.candidates(filter, visibility) else {
            return (Vec::new(), 0);
        };
        let (count, slots) = self.select(&candidates, lo, hi, offset as u64, limit as u64);
        (slots.into_iter().map(|s| self.cols.row(s)).collect(), count)
    }

    /// The equality and set conjuncts as one candidate set; `None` when nothing can match.
    fn candidates<'a>(
        &'a self,
        filter: &Filter,
        visibility: &Visibility,
    ) -> Option<Candidates<'a>> {
        let mut sets: Vec<Cow<'a, RoaringBitmap>> = Vec::new();
        let cols = &self.cols;
        if let Visibility::Organizations(orgs) = visibility {
            sets.push(union(
                orgs.iter()
                    .filter_map(|o| cols.orgs.lookup(&o.as_u128()))
                    .map(|i| &self.org_bits[i as usize]),
            )?);
        }
        if let Some(org) = filter.organization_id {
            sets.push(Cow::Borrowed(
                &self.org_bits[cols.orgs.lookup(&org.as_u128())? as usize],
            ));
        }
        if let Some(owners) = &filter.workspace_owner_ids {
            let ids = owners
                .iter()
                .filter_map(|o| cols.owners.lookup(&o.as_u128()));
            sets.push(union(ids.map(|o| &self.owner_bits[o as usize]))?);
        }
        if let Some(ws) = filter.workspace_id {
            // A workspace has one owner (or a few, if it changed hands): scan their rows.
            let ctxs = self.workspace_ctxs.get(&ws.as_u128())?;
            let mut owners: Vec<u32> = ctxs.iter().map(|&c| cols.ctxs.get(c).owner).collect();
            owners.sort_unstable();
            owners.dedup();
            let ws = ws.as_u128();
            let rows: RoaringBitmap = union(owners.iter().map(|&o| &self.owner_bits[o as usize]))?
                .iter()
                .filter(|&s| cols.ctx_of(s).workspace == ws)
                .collect();
            sets.push(Cow::Owned(rows));
        }
        if let Some(types) = &filter.types {
            let ids = types
                .iter()
                .filter_map(|t| cols.types.lookup(&cols.strings.lookup(t)?));
            sets.push(union(ids.map(|t| &self.type_bits[t as usize]))?);
        }
        if let Some(users) = &filter.user_ids {
            let ids = users.iter().filter_map(|u| cols.users.lookup(&u.as_u128()));
            sets.push(union(ids.map(|u| &self.user_bits[u as usize]))?);
        }
        if let Some(status) = filter.status {
            sets.push(Cow::Borrowed(match status {
                SessionStatus::Ongoing => &self.ongoing,
                SessionStatus::Completed => &self.completed,
            }));
        }
        if let Some(c) = filter.connection_id {
            let c = c.as_u128();
            let found: RoaringBitmap = self
                .keys
                .iter_hash(hash_u128(c, SEED_SESSION))
                .copied()
                .filter(|&s| cols.connection.get(s) == c && cols.is_session(s))
                .collect();
            sets.push(Cow::Owned(found));
        }
        if sets.is_empty() {
            return Some(Candidates::All);
        }
        sets.sort_by_key(|s| s.len());
        let mut sets = sets.into_iter();
        let mut acc = sets.next().unwrap();
        for s in sets {
            if acc.is_empty() {
                return None;
            }
            *acc.to_mut() &= &*s;
        }
        (!acc.is_empty()).then_some(Candidates::Some(acc))
    }

    /// The buckets that may hold times in `[lo, hi]`, newest first, each with whether all
    /// of its rows are inside the range. Lazy: a first page stops after a bucket or two.
    fn buckets_in(&self, lo: i64, hi: i64) -> impl Iterator<Item = Scanned<'_>> {
        self.buckets
            .range(..=hi)
            .rev()
            // Every bucket before one starting at or below `lo` holds only earlier times.
            .scan(false, move |done, (&start, b)| {
                if *done {
                    return None;
                }
                *done = start <= lo;
                Some(b)
            })
            .filter(move |b| b.len > 0 && b.hi >= lo && b.lo <= hi)
            .map(move |b| Scanned {
                bucket: b,
                full: lo <= b.lo && b.hi <= hi,
                count: None,
                matches: None,
            })
    }

    /// How many candidates a bucket holds (all of them in range).
    fn count_in(&self, c: &Candidates, b: &Bucket) -> u64 {
        match c {
            Candidates::All => b.len as u64,
            Candidates::Some(set) => set.intersection_len(&b.slots),
        }
    }

    /// The candidates in a bucket whose time is in `[lo, hi]`.
    fn matches_in(&self, c: &Candidates, b: &Bucket, lo: i64, hi: i64) -> Vec<u32> {
        let in_range = |s: &u32| {
            let t = self.cols.connect.get(*s);
            lo <= t && t <= hi
        };
        match c {
            Candidates::All => b.slots.iter().filter(in_range).collect(),
            Candidates::Some(set) => (&**set & &b.slots).iter().filter(in_range).collect(),
        }
    }

    /// Fills in a scanned bucket's count of matching rows, keeping the matches of a bucket
    /// that is only partly in range (they are needed again if the page falls there).
    fn scan_count(&self, c: &Candidates, s: &mut Scanned, lo: i64, hi: i64) -> u64 {
        if let Some(n) = s.count {
            return n;
        }
        let n = if s.full {
            self.count_in(c, s.bucket)
        } else {
            let m = self.matches_in(c, s.bucket, lo, hi);
            let n = m.len() as u64;
            s.matches = Some(m);
            n
        };
        s.count = Some(n);
        n
    }

    /// The exact count and the slots of the page, in order.
    fn select(&self, c: &Candidates, lo: i64, hi: i64, offset: u64, limit: u64) -> (u64, Vec<u32>) {
        let ranged = lo > i64::MIN || hi < i64::MAX;
        let total = match c {
            Candidates::All => self.len as u64,
            Candidates::Some(set) => set.len(),
        };
        // Few candidates: filter and sort them all.
        if let Candidates::Some(set) = c
            && total <= self.tuning.collect_limit
        {
            let slots: Vec<u32> = set
                .iter()
                .filter(|&s| {
                    let t = self.cols.connect.get(s);
                    lo <= t && t <= hi
                })
                .collect();
            let count = slots.len() as u64;
            return (count, self.page_of(slots.into_iter().rev(), offset, limit));
        }
        if !ranged {
            if offset >= total {
                return (total, Vec::new());
            }
            let page = self.page_from(c, lo, hi, self.buckets_in(lo, hi), offset, limit);
            return (total, page);
        }
        // A range: count the buckets in it, or subtract those outside when that is less work.
        let mut scanned: Vec<Scanned> = self.buckets_in(lo, hi).collect();
        let full = scanned.iter().filter(|s| s.full).count();
        let count = if full * 2 <= self.buckets.len() {
            scanned
                .iter_mut()
                .map(|s| self.scan_count(c, s, lo, hi))
                .sum()
        } else {
            let mut outside = 0;
            let mut next = 0;
            for b in self.buckets.values().rev().filter(|b| b.len > 0) {
                match scanned.get_mut(next) {
                    Some(s) if core::ptr::eq(b, s.bucket) => {
                        if !s.full {
                            outside += self.count_in(c, b) - self.scan_count(c, s, lo, hi);
                        }
                        next += 1;
                    }
                    _ => outside += self.count_in(c, b),
                }
            }
            total - outside
        };
        if offset >= count {
            return (count, Vec::new());
        }
        let page = self.page_from(c, lo, hi, scanned.into_iter(), offset, limit);
        (count, page)
    }

    /// Walks buckets newest first, skipping whole buckets by their counts, and sorts only
    /// the one or two the page falls in.
    fn page_from<'a>(
        &self,
        c: &Candidates,
        lo: i64,
        hi: i64,
        buckets: impl Iterator<Item = Scanned<'a>>,
        offset: u64,
        limit: u64,
    ) -> Vec<u32> {
        let mut skip = offset;
        let mut want = limit;
        let mut page = Vec::with_capacity(want.min(1 << 12) as usize);
        for mut s in buckets {
            if want == 0 {
                break;
            }
            let n = self.scan_count(c, &mut s, lo, hi);
            if skip >= n {
                skip -= n;
                continue;
            }
            let got = match (s.matches.take(), c) {
                (Some(m), _) => self.page_of(m.into_iter().rev(), skip, want),
                (None, Candidates::All) => self.page_of(descending(&s.bucket.slots), skip, want),
                (None, Candidates::Some(set)) => {
                    self.page_of(descending(&(&**set & &s.bucket.slots)), skip, want)
                }
            };
            want -= got.len() as u64;
            skip = 0;
            page.extend(got);
        }
        page
    }

    /// Rows `[offset, offset + limit)` of `slots` in newest-first order. Keeps a buffer of
    /// the newest rows seen so far and skips any row older than the buffer's oldest once it
    /// is full, so `slots` given newest-ish first (descending slots, which arrive roughly in
    /// time order) cost one comparison each. Keys are 12 bytes; equal times (rare) fall
    /// back to the ids.
    fn page_of(&self, slots: impl Iterator<Item = u32>, offset: u64, limit: u64) -> Vec<u32> {
        let Some(keep) = offset
            .checked_add(limit)
            .and_then(|k| usize::try_from(k).ok())
            .filter(|&k| k > 0)
        else {
            return Vec::new();
        };
        let offset = offset as usize;
        let cols = &self.cols;
        let newest_first = |a: &(i64, u32), b: &(i64, u32)| {
            b.0.cmp(&a.0)
                .then_with(|| cols.id.get(b.1).cmp(&cols.id.get(a.1)))
        };
        let flush_at = keep.saturating_mul(2).max(64);
        let mut kept: Vec<(i64, u32)> = Vec::new();
        // No row older than this can be among the newest `keep`.
        let mut floor = i64::MIN;
        for s in slots {
            let t = cols.connect.get(s);
            if t < floor {
                continue;
            }
            kept.push((t, s));
            if kept.len() >= flush_at {
                kept.select_nth_unstable_by(keep - 1, newest_first);
                kept.truncate(keep);
                floor = kept[keep - 1].0;
            }
        }
        if offset >= kept.len() {
            return Vec::new();
        }
        if keep < kept.len() {
            kept.select_nth_unstable_by(keep, newest_first);
            kept.truncate(keep);
        }
        if offset > 0 {
            kept.select_nth_unstable_by(offset, newest_first);
        }
        let page = &mut kept[offset..];
        page.sort_unstable_by(newest_first);
        page.iter().map(|k| k.1).collect()
    }

    /// Slots with `connect_time < cutoff`.
    fn slots_before(&self, cutoff: UnixNanos) -> Vec<u32> {
        let mut out = Vec::new();
        for b in self.buckets.range(..cutoff).map(|(_, b)| b) {
            if b.hi < cutoff {
                out.extend(b.slots.iter());
            } else {
                out.extend(
                    b.slots
                        .iter()
                        .filter(|&s| self.cols.connect.get(s) < cutoff),
                );
            }
        }
        out
    }

    /// The origins of every row whose `connect_time` is strictly before `cutoff`.
    pub fn expired(&self, cutoff: UnixNanos) -> Vec<RowOrigin> {
        self.slots_before(cutoff)
            .into_iter()
            .map(|s| self.cols.origin(s))
            .collect()
    }

    /// Removes every row whose `connect_time` is strictly before `cutoff`; returns how many.
    pub fn remove_before(&mut self, cutoff: UnixNanos) -> u64 {
        let slots = self.slots_before(cutoff);
        if slots.len() >= self.tuning.bulk_remove {
            self.remove_bulk(&slots, cutoff);
        } else {
            for &s in &slots {
                self.remove_slot(s);
            }
        }
        slots.len() as u64
    }

    /// Removes many rows (all those before `cutoff`): one subtraction per posting list and
    /// bucket instead of one removal per row and list.
    fn remove_bulk(&mut self, slots: &[u32], cutoff: UnixNanos) {
        let mut sorted = slots.to_vec();
        sorted.sort_unstable();
        let gone = RoaringBitmap::from_sorted_iter(sorted.iter().copied()).expect("sorted");
        for &slot in &sorted {
            let hash = self.cols.key_hash(slot);
            if let Ok(entry) = self.keys.find_entry(hash, |&s| s == slot) {
                entry.remove();
            }
        }
        let lists = self
            .org_bits
            .iter_mut()
            .chain(&mut self.owner_bits)
            .chain(&mut self.type_bits);
        for list in lists.chain(&mut self.user_bits) {
            if !list.is_empty() {
                *list -= &gone;
            }
        }
        self.ongoing -= &gone;
        self.completed -= &gone;
        let starts: Vec<i64> = self.buckets.range(..cutoff).map(|(&k, _)| k).collect();
        for start in starts {
            let b = self.buckets.get_mut(&start).unwrap();
            b.slots -= &gone;
            b.len = b.slots.len() as u32;
            if b.len == 0 {
                if start == i64::MIN {
                    *b = Bucket::new(self.tuning.bucket_max);
                } else {
                    self.buckets.remove(&start);
                }
            }
        }
        self.free.extend(sorted.iter().rev());
        self.len -= slots.len();
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
        sink: &mut dyn FnMut(&[u8]) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        snapshot::encode(self, chunk_size, sink)
    }

    /// Rebuilds a store from the chunks `encode` wrote. Fails on a snapshot of another
    /// format or a damaged one.
    pub fn decode(
        next_chunk: &mut dyn FnMut() -> Result<Option<Vec<u8>>, StorageError>,
    ) -> Result<Self, StorageError> {
        snapshot::decode(next_chunk, Tuning::default())
    }

    /// Bytes of memory the rows and indexes use (an estimate from capacities).
    pub fn memory_bytes(&self) -> u64 {
        self.memory_report().iter().map(|(_, b)| b).sum()
    }

    /// `memory_bytes`, part by part (for stats and benchmarks).
    pub fn memory_report(&self) -> Vec<(&'static str, u64)> {
        let c = &self.cols;
        let bits = |v: &Vec<RoaringBitmap>| {
            (v.capacity() * core::mem::size_of::<RoaringBitmap>()) as u64
                + v.iter().map(bitmap_bytes).sum::<u64>()
        };
        // A B-tree node holds up to 11 entries; count ~2/3 occupancy.
        let bucket_entry =
            (core::mem::size_of::<i64>() + core::mem::size_of::<Bucket>()) as u64 * 3 / 2;
        let m = &self.workspace_ctxs;
        let ctx_lists = table_bytes(m.capacity(), core::mem::size_of::<(u128, Vec<u32>)>())
            + m.values().map(|v| v.capacity() as u64 * 4).sum::<u64>();
        vec![
            ("column id", c.id.memory_bytes()),
            ("column connect_time", c.connect.memory_bytes()),
            ("column disconnect_time", c.disconnect.memory_bytes()),
            ("column connection_id", c.connection.memory_bytes()),
            ("column desc", c.desc.memory_bytes()),
            ("column detail", c.detail.memory_bytes()),
            ("column ip", c.ip.memory_bytes()),
            ("strings", c.strings.memory_bytes()),
            (
                "small tables",
                c.orgs.memory_bytes()
                    + c.owners.memory_bytes()
                    + c.users.memory_bytes()
                    + c.types.memory_bytes()
                    + c.type_is_web.capacity() as u64,
            ),
            ("ctx table", c.ctxs.memory_bytes() + ctx_lists),
            ("desc table", c.descs.memory_bytes()),
            ("detail table", c.details.memory_bytes()),
            ("key table", table_bytes(self.keys.capacity(), 4)),
            ("org postings", bits(&self.org_bits)),
            ("owner postings", bits(&self.owner_bits)),
            ("type postings", bits(&self.type_bits)),
            ("user postings", bits(&self.user_bits)),
            (
                "status postings",
                bitmap_bytes(&self.ongoing) + bitmap_bytes(&self.completed),
            ),
            (
                "time buckets",
                self.buckets
                    .values()
                    .map(|b| bucket_entry + bitmap_bytes(&b.slots))
                    .sum(),
            ),
            ("free list", self.free.capacity() as u64 * 4),
        ]
    }
}

/// Heap bytes of a roaring bitmap: its containers' stores plus each container's header.
/// (`statistics()` counts array capacity at 4 bytes per `u16` and a bitset at 65536 bytes;
/// the true figures are 2 and 8192.)
fn bitmap_bytes(b: &RoaringBitmap) -> u64 {
    let s = b.statistics();
    s.n_bytes_array_containers / 2
        + s.n_bytes_run_containers
        + s.n_bitset_containers as u64 * 8192
        + s.n_containers as u64 * (8 + 4 * core::mem::size_of::<usize>()) as u64
}

/// A bitmap's values, largest first, a run of consecutive values at a time: a bucket's
/// slots are mostly runs, and a run is a plain loop rather than a container walk per value.
fn descending(b: &RoaringBitmap) -> impl Iterator<Item = u32> + '_ {
    let mut it = b.iter();
    core::iter::from_fn(move || it.next_range_back()).flat_map(|run| run.rev())
}

/// Adds a value to a bitmap, fast when it is the largest so far (ascending builds).
#[inline]
fn append(b: &mut RoaringBitmap, v: u32) {
    if b.try_push(v).is_err() {
        b.insert(v);
    }
}

/// The union of some posting lists: borrowed when there is one, `None` when there are none
/// (an empty set matches nothing).
fn union<'a>(mut sets: impl Iterator<Item = &'a RoaringBitmap>) -> Option<Cow<'a, RoaringBitmap>> {
    let first = sets.next()?;
    let mut acc = Cow::Borrowed(first);
    for s in sets {
        *acc.to_mut() |= s;
    }
    Some(acc)
}
