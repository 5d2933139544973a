//! Time buckets: a `BTreeMap` from a start time to the slots whose `connect_time` falls in
//! `[start, next start)`. A bucket splits when it exceeds `bucket_max` rows. Buckets give
//! time ranges, page skipping by count and the order: a page is sorted inside the one or two
//! buckets it falls in.

use std::ops::Bound;

use roaring::RoaringBitmap;

use super::RowStore;
use connlog_plugin_sdk::model::UnixNanos;

/// The slots whose `connect_time` is in `[start, next bucket's start)`. `lo`/`hi` bound the
/// times actually present (conservatively: they widen on insert and tighten on split).
pub(super) struct Bucket {
    pub(super) slots: RoaringBitmap,
    pub(super) len: u32,
    pub(super) lo: UnixNanos,
    pub(super) hi: UnixNanos,
    /// Do not try to split again before this many rows (all rows shared one time).
    pub(super) split_at: u32,
}

impl Bucket {
    pub(super) fn new(bucket_max: u32) -> Self {
        Self {
            slots: RoaringBitmap::new(),
            len: 0,
            lo: UnixNanos::MAX,
            hi: UnixNanos::MIN,
            split_at: bucket_max,
        }
    }
}

impl RowStore {
    fn bucket_start(&self, time: i64) -> i64 {
        *self
            .buckets
            .range(..=time)
            .next_back()
            .expect("the first bucket starts at i64::MIN")
            .0
    }

    pub(super) fn bucket_insert(&mut self, slot: u32, time: i64) {
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

    pub(super) fn bucket_remove(&mut self, slot: u32, time: i64) {
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
            half.slots.insert(s);
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
}
