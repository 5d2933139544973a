//! Hot swap: a new plugin is brought up beside the running one, which keeps serving, and
//! takes its place under the lock after a short catch-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::restore::{
    BroughtUp, RestoreReport, bring_up, bring_up_error, replay_range, retention_option,
};
use super::{
    Compaction, ConnLog, ServiceConfig, ServiceError, SharedConnLog, background, lock, store_path,
};
use crate::plugin::{LoadedPlugin, PluginSpec};
use crate::store::{Journal, SnapshotInfo};

/// How many times a swap brings the new plugin up beside the old one before it gives up
/// racing purges and brings it up under the lock.
const SWAP_ATTEMPTS: usize = 3;

/// What a hot swap did.
#[derive(Clone, Debug)]
pub struct SwapReport {
    pub previous: crate::plugin::PluginInfo,
    pub current: crate::plugin::PluginInfo,
    /// Events replayed into the new instance while the old one kept serving.
    pub events_replayed: u64,
    /// Events that arrived meanwhile, replayed under the lock just before the switch.
    pub events_caught_up: u64,
    pub elapsed: Duration,
    /// How the new instance was brought up (snapshot or full replay).
    pub restore: RestoreReport,
    /// The snapshot the new instance wrote and recorded before the switch, after a replay
    /// of at least `SnapshotPolicy::every_events`.
    pub snapshot: Option<SnapshotInfo>,
    /// How long requests waited on the lock for the catch-up and the switch.
    pub locked_for: Duration,
}

/// Replaces the running plugin with the one `spec` names, configured with its settings
/// (a plugin that refuses them is refused before anything else), without dropping a request: the
/// new plugin is loaded and brought up to date beside the old one, which keeps serving;
/// the switch itself happens under the lock, after a catch-up. If anything fails, the old
/// plugin stays and the error is returned. Call it without holding the lock (it takes the
/// lock twice, briefly: to read the settings, and for the catch-up and the switch).
///
/// The new instance gets its own connection to the store. It is brought up from a pinned
/// read transaction (the snapshot if it wrote one, then the journal up to position `S`),
/// while the old instance goes on committing. Under the lock it replays the events after
/// `S` (sessions they touch are refolded from the whole journal, so rows come out exactly
/// as a full replay would give them) and takes the old one's place. A purge that deleted
/// rows meanwhile invalidates the side work, which then starts again.
pub fn swap_plugin(shared: &SharedConnLog, spec: &PluginSpec) -> Result<SwapReport, ServiceError> {
    let started = Instant::now();
    let (host, config) = {
        let service = lock(shared);
        (service.host.clone(), service.config.clone())
    };
    let outcome = host
        .load_spec(spec)
        .map_err(ServiceError::from)
        .and_then(|plugin| bring_up_beside(shared, &config, Arc::new(plugin), started, None))
        .map(|report| report.expect("a swap replaces whichever build runs"));
    let mut service = lock(shared);
    match &outcome {
        Ok(report) => {
            service.counters.swaps += 1;
            tracing::info!(
                previous = %report.previous.version,
                current = %report.current.version,
                replayed = report.events_replayed,
                caught_up = report.events_caught_up,
                snapshot_bytes = report.snapshot.as_ref().map(|info| info.bytes),
                locked_ms = report.locked_for.as_millis() as u64,
                elapsed_ms = report.elapsed.as_millis() as u64,
                "plugin swapped"
            );
        }
        Err(e) => {
            service.counters.swaps_failed += 1;
            tracing::error!(plugin = %spec.source.describe(), error = %e, "plugin swap failed; the running plugin keeps serving");
        }
    }
    outcome
}

/// Brings `plugin` up beside the running instance and puts it in its place (see
/// `swap_plugin`); a compaction brings the running build up again. With `replacing`, only
/// if that build still runs when the new instance is ready (`None` otherwise): a
/// compaction must not undo a swap that came while it worked.
pub(super) fn bring_up_beside(
    shared: &SharedConnLog,
    config: &ServiceConfig,
    plugin: Arc<LoadedPlugin>,
    started: Instant,
    replacing: Option<&Arc<LoadedPlugin>>,
) -> Result<Option<SwapReport>, ServiceError> {
    let replaced =
        |service: &ConnLog| replacing.is_some_and(|old| !Arc::ptr_eq(old, &service.plugin));
    let path = store_path(&config.data_dir);
    for _ in 0..SWAP_ATTEMPTS {
        let (generation, every_events) = {
            let service = lock(shared);
            (
                service.purge_generation,
                service.snapshot_policy.every_events,
            )
        };
        let journal = Journal::connect(&path).map_err(ServiceError::Rebuild)?;
        let mut up = bring_up(&plugin, journal, config, None).map_err(bring_up_error)?;
        let snapshot = snapshot_beside(&mut up, &plugin, every_events)?;
        let mut service = lock(shared);
        if replaced(&service) {
            return Ok(None);
        }
        if service.purge_generation != generation {
            continue;
        }
        let locked = Instant::now();
        if service.config.retention != config.retention {
            up.instance
                .set_retention(retention_option(service.config.retention))
                .map_err(ServiceError::Plugin)?;
        }
        let head = up
            .instance
            .state()
            .journal()
            .expect("bring_up attaches a journal")
            .last_seq()
            .map_err(ServiceError::Storage)?;
        let caught_up =
            replay_range(&mut up.instance, up.upto, head, None, None).map_err(bring_up_error)?;
        up.upto = head;
        up.report.rows = up.instance.stats()?.rows;
        return Ok(Some(
            service.install(plugin, up, caught_up, snapshot, started, locked),
        ));
    }
    // Purges kept invalidating the side work: bring the plugin up under the lock.
    let mut service = lock(shared);
    if replaced(&service) {
        return Ok(None);
    }
    let locked = Instant::now();
    let journal = Journal::connect(&path).map_err(ServiceError::Rebuild)?;
    let up = bring_up(&plugin, journal, &service.config, None).map_err(bring_up_error)?;
    Ok(Some(service.install(plugin, up, 0, None, started, locked)))
}

/// Writes and records the snapshot of an instance brought up beside the running one, when
/// it replayed at least the events the policy lets go unsnapshotted (as a swap to another
/// build does, from the whole journal). Otherwise the background writer would bring the
/// build up a second time, by the same replay, for its first snapshot after the switch;
/// here the old instance still serves meanwhile. Recorded at once, not at the switch: a
/// swap that retries after a purge starts from it (the purge stays pending for it), and
/// one that fails leaves a snapshot the old build does not load, which costs its next
/// bring-up a full replay and nothing else. A trap fails the swap; a storage failure only
/// costs the snapshot.
fn snapshot_beside(
    up: &mut BroughtUp,
    plugin: &LoadedPlugin,
    every_events: u64,
) -> Result<Option<SnapshotInfo>, ServiceError> {
    if every_events == 0 || up.report.events_replayed < every_events {
        return Ok(None);
    }
    let recorded = up.write_snapshot_file(plugin).and_then(|written| {
        let info = written.info.clone();
        Ok(up.record_snapshot(written)?.then_some(info))
    });
    match recorded {
        Err(trap @ ServiceError::Plugin(_)) => Err(trap),
        Err(e) => {
            tracing::warn!(error = %e, "the new instance's snapshot could not be written; the background writer will write one");
            Ok(None)
        }
        Ok(info) => Ok(info),
    }
}

impl ConnLog {
    /// Puts the brought-up instance (plus `caught_up` events replayed under the lock) in
    /// the running one's place, with the snapshot it recorded before the catch-up if any.
    fn install(
        &mut self,
        plugin: Arc<LoadedPlugin>,
        up: BroughtUp,
        caught_up: u64,
        snapshot: Option<SnapshotInfo>,
        started: Instant,
        locked: Instant,
    ) -> SwapReport {
        let previous = std::mem::replace(&mut self.plugin, plugin).info.clone();
        self.instance = up.instance;
        self.compaction = Compaction::default();
        self.config.plugin = self.plugin.spec.clone();
        self.writer
            .set_source(self.plugin.clone(), self.config.clone());
        self.set_merged_upto(up.upto);
        match &snapshot {
            Some(info) => {
                self.unsnapshotted = caught_up;
                self.snapshot_upto = info.last_seq;
                self.writer.note_saved(info.bytes);
                // The file it replaced is zeroed and removed in the background, and on a
                // replica the snapshot is offered to new replicas of this build, as the
                // writer's own would have been.
                self.writer.request(background::Work {
                    sweep: true,
                    share: up.pinned.shared_position.map(|position| background::Share {
                        info: info.clone(),
                        position,
                    }),
                    ..Default::default()
                });
            }
            None => {
                self.unsnapshotted = up.report.events_replayed + caught_up;
                self.snapshot_upto = up.report.source.covers();
            }
        }
        self.last_restore = up.report.clone();
        if up.snapshot_refused {
            self.counters.snapshots_refused += 1;
        }
        SwapReport {
            previous,
            current: self.plugin.info.clone(),
            events_replayed: up.report.events_replayed,
            events_caught_up: caught_up,
            elapsed: started.elapsed(),
            restore: up.report,
            snapshot,
            locked_for: locked.elapsed(),
        }
    }
}
