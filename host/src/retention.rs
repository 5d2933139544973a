//! The retention scheduler: purges expired rows at start, then periodically, as Coder's
//! dbpurge does (every 10 minutes), but without a cap per run.

use std::time::Duration;

use crate::service::SharedConnLog;

/// Coder's purge interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Stops the scheduler when dropped.
pub struct RetentionScheduler {}

impl RetentionScheduler {
    /// Runs a purge now, then every `interval`, on its own thread.
    pub fn spawn(service: SharedConnLog, interval: Duration) -> Self {
        let _ = (service, interval);
        todo!("RetentionScheduler::spawn")
    }
}
