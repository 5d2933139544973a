//! Retention: finding and removing every row older than a cutoff, row by row or, for many
//! rows, one subtraction per posting list.

use roaring::RoaringBitmap;

use super::RowStore;
use super::buckets::Bucket;
use connlog_plugin_sdk::model::*;

impl RowStore {
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
        for list in self.posting_lists_mut() {
            if !list.is_empty() {
                *list -= &gone;
            }
        }
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
        for &slot in sorted.iter().rev() {
            self.free_slot(slot);
        }
        self.len -= slots.len();
    }

    pub(super) fn remove_slot(&mut self, slot: u32) {
        let p = self.postings(slot);
        self.unindex(slot, p, None);
        let hash = self.cols.key_hash(slot);
        if let Ok(entry) = self.keys.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        self.free_slot(slot);
        self.len -= 1;
    }

    fn free_slot(&mut self, slot: u32) {
        let kind = self.cols.session.kind(slot);
        self.free[kind as usize].push(slot);
    }
}
