//! A deterministic model of a Coder deployment and its connection traffic.
//!
//! ```no_run
//! use connlog::simulate::{Deployment, SimConfig, Traffic};
//! let config = SimConfig { seed: 7, ..SimConfig::default() };
//! let deployment = Deployment::generate(&config).unwrap();
//! let mut traffic = Traffic::new(&deployment, &config);
//! let total = traffic.total_events(); // known up front, for a progress bar
//! for event in traffic.by_ref() {
//!     // feed `event` to the plugin, in batches
//! }
//! println!("{}", traffic.summary());
//! ```
//!
//! - The same [`SimConfig`] gives the same directory and the same events, bit for bit, on any
//!   machine and with any dependency versions (the generator is our own, see [`rng`]).
//!   Only API tokens, which the caller issues afterwards, are random.
//! - [`Traffic`] is an iterator: events come out in delivery order, over simulated time that
//!   costs nothing (30 days in a second or two), with memory bounded by the number of
//!   concurrently open sessions, so millions of events stream without buffering.
//! - Every event is valid for the plugin, so after a full run the store should hold exactly
//!   [`Summary::expected_rows`] rows, [`Summary::expected_ongoing`] of them still open.

mod catalog;
mod deployment;
pub mod rng;
mod summary;
mod traffic;

pub use deployment::{
    ADMIN_USERNAME, AUDITOR_USERNAME, Agent, Deployment, Workspace, organization_auditor_username,
};
pub use summary::Summary;
pub use traffic::{Delivery, LEGACY_SHARE, Traffic};

use crate::model::UnixNanos;

const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// What to simulate.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    pub seed: u64,
    pub orgs: usize,
    pub users: usize,
    pub workspaces: usize,
    /// Length of the simulated window, from `start`.
    pub days: u32,
    /// Exactly this many events are delivered, duplicates included.
    pub events: u64,
    /// Share of agent sessions whose disconnect is never delivered (they stay ongoing).
    pub lost_disconnect_share: f64,
    /// Share of events delivered twice (same `ID`: a replay).
    pub duplicate_share: f64,
    /// Share of sessions and web events delivered late: a session's connect after its
    /// disconnect, a web event after later events.
    pub reorder_share: f64,
    /// Start of the window, UTC nanoseconds.
    pub start: UnixNanos,
}

impl Default for SimConfig {
    /// 3 organizations, 40 users, 60 workspaces, 30 days, 20,000 events, starting
    /// 2025-06-01T00:00:00Z. A CLI usually sets `start` with [`SimConfig::start_ending_today`].
    fn default() -> Self {
        Self {
            seed: 1,
            orgs: 3,
            users: 40,
            workspaces: 60,
            days: 30,
            events: 20_000,
            lost_disconnect_share: 0.03,
            duplicate_share: 0.02,
            reorder_share: 0.03,
            start: 1_748_736_000 * 1_000_000_000,
        }
    }
}

impl SimConfig {
    /// Midnight UTC `days` days before today's midnight: the window then ends today at 00:00,
    /// and runs on the same day with the same seed give the same data.
    pub fn start_ending_today(now: UnixNanos, days: u32) -> UnixNanos {
        let today = now.div_euclid(NANOS_PER_DAY) * NANOS_PER_DAY;
        today - i64::from(days) * NANOS_PER_DAY
    }

    /// End of the window (exclusive).
    pub fn end(&self) -> UnixNanos {
        self.start
            .saturating_add(i64::from(self.days).saturating_mul(NANOS_PER_DAY))
    }

    /// Checks the numbers; the message names the offending option.
    pub fn validate(&self) -> Result<(), String> {
        if self.orgs == 0 || self.orgs > 1000 {
            return Err(format!(
                "orgs must be between 1 and 1000, got {}",
                self.orgs
            ));
        }
        if self.users == 0 || self.users > 1_000_000 {
            return Err(format!(
                "users must be between 1 and 1000000, got {}",
                self.users
            ));
        }
        if self.workspaces == 0 || self.workspaces > 10_000_000 {
            return Err(format!(
                "workspaces must be between 1 and 10000000, got {}",
                self.workspaces
            ));
        }
        if self.days == 0 || self.days > 3660 {
            return Err(format!(
                "days must be between 1 and 3660, got {}",
                self.days
            ));
        }
        for (name, share) in [
            ("lost-disconnect share", self.lost_disconnect_share),
            ("duplicate share", self.duplicate_share),
            ("reorder share", self.reorder_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("{name} must be between 0 and 1, got {share}"));
            }
        }
        if self.start < 0 || self.end() > i64::MAX / 2 {
            return Err("start must be after 1970 and the window must end before 2116".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
