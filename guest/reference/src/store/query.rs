//! Queries: the equality and set conjuncts of a filter become one candidate set of slots
//! (posting lists intersected, then apps left out), then the time buckets give the exact
//! count and the page.

use std::borrow::Cow;

use roaring::RoaringBitmap;

use super::buckets::Bucket;
use super::intern::hash_u128;
use super::{RowStore, SEED_SESSION, type_list};
use crate::authz::Visibility;
use crate::search::{Filter, SessionStatus};
use connlog_plugin_sdk::model::*;

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

    /// The live feed's look-up: for each origin, its row when it passes `filter` and
    /// `visibility`. The candidate set is built once for the whole list.
    pub fn rows_by_origin(
        &self,
        filter: &Filter,
        visibility: &Visibility,
        origins: &[RowOrigin],
    ) -> Vec<Option<ConnectionLog>> {
        let lo = filter.connected_after.unwrap_or(i64::MIN);
        let hi = filter.connected_before.unwrap_or(i64::MAX);
        let candidates = if lo > hi || origins.is_empty() {
            None
        } else {
            self.candidates(filter, visibility)
        };
        origins
            .iter()
            .map(|origin| {
                let candidates = candidates.as_ref()?;
                let slot = self.slot_of(origin)?;
                let t = self.cols.connect.get(slot);
                let admitted = lo <= t
                    && t <= hi
                    && match candidates {
                        Candidates::All => true,
                        Candidates::Some(set) => set.contains(slot),
                    };
                admitted.then(|| self.cols.row(slot))
            })
            .collect()
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
        // `type:` has a list of its own, or is its method's; its translation into a method
        // and app lists (what the other fields hold then) selects the same rows, at the cost
        // of a union.
        let by_type = filter.legacy_type.is_some();
        if let Some(t) = filter.legacy_type {
            let list = match type_list(t.index()) {
                Some(i) => &self.type_bits[i],
                None => &self.method_bits[usize::from(t.filter().method.index())],
            };
            sets.push(Cow::Borrowed(list));
        } else {
            let by_app = filter.app_names.is_some() || !filter.excluded_app_names.is_empty();
            match filter.method {
                // Only SSH and web-terminal rows have an app to match.
                Some(m) if by_app && !m.is_terminal() => return None,
                Some(m) => sets.push(Cow::Borrowed(&self.method_bits[usize::from(m.index())])),
                None if by_app => sets.push(union(
                    ConnectionMethod::ALL
                        .iter()
                        .filter(|m| m.is_terminal())
                        .map(|m| &self.method_bits[usize::from(m.index())]),
                )?),
                None => {}
            }
            if let Some(apps) = &filter.app_names {
                // An app no row has has no list: it matches nothing.
                let ids = apps.iter().filter_map(|a| cols.strings.lookup(a));
                sets.push(union(ids.filter_map(|a| self.app_bits.get(&a)))?);
            }
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
        if let Some(codes) = &filter.codes {
            // connlog's `code:`: the union of the lists of the codes in range (codes are
            // few, so all of them are looked at); no such code matches nothing.
            sets.push(union(
                self.code_bits
                    .iter()
                    .filter(|(code, _)| codes.iter().any(|r| r.contains(**code)))
                    .map(|(_, rows)| rows),
            )?);
        }
        if let Some(c) = filter.connection_id {
            let c = c.as_u128();
            let found: RoaringBitmap = self
                .keys
                .iter_hash(hash_u128(c, SEED_SESSION))
                .copied()
                .filter(|&s| cols.session.connection(s) == c && cols.is_session(s))
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
        // Excluded apps (`type:ssh` when not answered by its own list): rows without an app
        // stay.
        if !by_type {
            for app in &filter.excluded_app_names {
                if let Some(rows) = cols.strings.lookup(app).and_then(|a| self.app_bits.get(&a)) {
                    *acc.to_mut() -= rows;
                }
            }
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
}

/// A bitmap's values, largest first, a run of consecutive values at a time: a bucket's
/// slots are mostly runs, and a run is a plain loop rather than a container walk per value.
fn descending(b: &RoaringBitmap) -> impl Iterator<Item = u32> + '_ {
    let mut it = b.iter();
    core::iter::from_fn(move || it.next_range_back()).flat_map(|run| run.rev())
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
