//! What the store costs in memory, part by part, estimated from capacities, and giving back
//! the posting lists' slack.

use core::ops::Range;

use roaring::RoaringBitmap;

use super::RowStore;
use super::buckets::Bucket;
use super::intern::table_bytes;

/// Roaring keeps a container of at most this many values as a sorted array; above, as a
/// bitmap of fixed size.
const ARRAY_MAX: u64 = 4096;

impl RowStore {
    /// Gives back the slack of the posting lists' array containers over `slots`, whole
    /// containers' ranges that new rows have just filled. An array grows by doubling while
    /// ascending slots are appended to it (a fifth to a third of the lists' memory was slack
    /// in the store bench), and a full range takes few more; a container copied in is
    /// exactly its size.
    pub(super) fn compact_postings(&mut self, slots: Range<u32>) {
        let containers = u64::from(slots.len() as u32).div_ceil(1 << 16);
        for list in self.posting_lists_mut() {
            let n = list.range_cardinality(slots.clone());
            if n == 0 || n > ARRAY_MAX * containers {
                continue;
            }
            let exact: RoaringBitmap = list.range(slots.clone()).collect();
            list.remove_range(slots.clone());
            *list |= &exact;
        }
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
            (
                "session columns",
                c.session.memory_bytes() - c.session.csid_bytes(),
            ),
            ("client session ids", c.session.csid_bytes()),
            ("column desc", c.desc.memory_bytes()),
            ("column detail", c.detail.memory_bytes()),
            ("column ip", c.ip.memory_bytes()),
            ("strings", c.strings.memory_bytes()),
            (
                "small tables",
                c.orgs.memory_bytes() + c.owners.memory_bytes() + c.users.memory_bytes(),
            ),
            ("ctx table", c.ctxs.memory_bytes() + ctx_lists),
            ("desc table", c.descs.memory_bytes()),
            ("detail table", c.details.memory_bytes()),
            ("key table", table_bytes(self.keys.capacity(), 4)),
            ("org postings", bits(&self.org_bits)),
            ("owner postings", bits(&self.owner_bits)),
            (
                "method and type postings",
                self.method_bits
                    .iter()
                    .chain(&self.type_bits)
                    .map(bitmap_bytes)
                    .sum(),
            ),
            ("user postings", bits(&self.user_bits)),
            (
                "app postings",
                self.app_bits.values().map(bitmap_bytes).sum(),
            ),
            (
                "status postings",
                bitmap_bytes(&self.ongoing) + bitmap_bytes(&self.completed),
            ),
            (
                "code postings",
                table_bytes(
                    self.code_bits.capacity(),
                    core::mem::size_of::<(i32, RoaringBitmap)>(),
                ) + self.code_bits.values().map(bitmap_bytes).sum::<u64>(),
            ),
            (
                "time buckets",
                self.buckets
                    .values()
                    .map(|b| bucket_entry + bitmap_bytes(&b.slots))
                    .sum(),
            ),
            (
                "free lists",
                self.free.iter().map(|f| f.capacity() as u64 * 4).sum(),
            ),
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
