//! A large purge in slices, so that requests wait for one slice at most: the retention
//! schedule's and an operator's purges (`retention::purge`), and a replica catching up
//! with the purges the shared store saw (`upstream`).

use std::sync::MutexGuard;
use std::time::Duration;

use super::{ConnLog, ServiceError, SharedConnLog, lock};
use crate::model::UnixNanos;

/// The oldest rows one slice of a purge removes under one hold of the service's lock: at
/// 10M rows, 15–40 ms of the plugin's purge and deleting their events, plus the commit
/// (README, Retention).
pub const SLICE_ROWS: u32 = 2_000;

/// Between slices, so that requests waiting for the service's lock get it (a thread that
/// unlocks and locks again at once would usually win it back).
const SLICE_PAUSE: Duration = Duration::from_millis(5);

/// While more than `SLICE_ROWS` rows connected before `cutoff` are left, purges the oldest
/// `SLICE_ROWS` of them under one hold of the service's lock (a purge of its own: the
/// plugin's, deleting their events, recording it), then lets waiting requests in. Returns
/// the lock, held again for the caller's last hold, which purges the rest, and how many
/// rows the slices purged.
pub(crate) fn purge_slices<'a>(
    shared: &'a SharedConnLog,
    mut service: MutexGuard<'a, ConnLog>,
    cutoff: UnixNanos,
) -> Result<(MutexGuard<'a, ConnLog>, u64), ServiceError> {
    let mut purged = 0;
    while let Some(end) = service.purge_slice_end(cutoff, SLICE_ROWS)? {
        let slice = service.purge_before(end)?.purged;
        purged += slice;
        if slice == 0 {
            // The plugin's query and its purge disagree: the last purge takes the rest.
            break;
        }
        drop(service);
        std::thread::sleep(SLICE_PAUSE);
        service = lock(shared);
    }
    Ok((service, purged))
}
