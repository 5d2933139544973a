//! `/metrics`: the server's counters in Prometheus' text format (version 0.0.4).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the query-latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// What this process counted itself. Gauges read from the service (rows, restarts) are
/// passed to [`Metrics::render`] by the caller.
#[derive(Default)]
pub struct Metrics {
    pub events_ingested: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub events_rejected: AtomicU64,
    pub ingest_requests: AtomicU64,
    pub ingest_failures: AtomicU64,
    query_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    query_count: AtomicU64,
    query_sum_nanos: AtomicU64,
    /// The live feed (`GET /api/v2/connectionlog/watch`).
    pub watch: WatchMetrics,
}

/// Values read from the service when `/metrics` is scraped. The service counts purges,
/// swaps and restarts itself, whoever started them (scheduler, SIGHUP, API).
pub struct ServiceGauges {
    pub rows: u64,
    pub plugin_memory_bytes: u64,
    pub plugin_linear_memory_bytes: u64,
    pub counters: crate::service::Counters,
    /// How the plugin was last brought up (at start, a swap or a rebuild).
    pub bring_up_events_replayed: u64,
    pub bring_up_from_snapshot: bool,
}

impl Metrics {
    pub fn observe_query(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.query_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.query_count.fetch_add(1, Ordering::Relaxed);
        self.query_sum_nanos.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn render(&self, gauges: Option<&ServiceGauges>) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "connlog_events_ingested_total",
            "Events accepted by ingest (durable when acknowledged), replays included.",
            get(&self.events_ingested),
        );
        counter(
            "connlog_events_duplicate_total",
            "Accepted events that were already stored (replays).",
            get(&self.events_duplicate),
        );
        counter(
            "connlog_events_rejected_total",
            "Ingested lines rejected, with a reason sent to the caller.",
            get(&self.events_rejected),
        );
        counter(
            "connlog_ingest_requests_total",
            "Ingest requests answered.",
            get(&self.ingest_requests),
        );
        counter(
            "connlog_ingest_failures_total",
            "Ingest requests that failed with a storage or plugin error (500).",
            get(&self.ingest_failures),
        );
        if let Some(g) = gauges {
            let c = &g.counters;
            counter(
                "connlog_purges_total",
                &format!(
                    "Retention purges run; a large pass runs in slices of {} rows, each counted.",
                    crate::service::SLICE_ROWS
                ),
                c.purges_run,
            );
            counter(
                "connlog_rows_purged_total",
                "Rows deleted by retention.",
                c.rows_purged,
            );
            counter(
                "connlog_plugin_swaps_total",
                "Plugins swapped in while serving.",
                c.swaps,
            );
            counter(
                "connlog_plugin_swap_failures_total",
                "Swaps refused or failed (the old plugin kept serving).",
                c.swaps_failed,
            );
            counter(
                "connlog_plugin_compactions_total",
                "Plugin instances brought up again after purges, to give back what purged rows left.",
                c.compactions,
            );
            counter(
                "connlog_plugin_restarts_total",
                "Plugin instances rebuilt from the store after a failed call.",
                c.instance_restarts,
            );
            counter(
                "connlog_ingest_commits_total",
                "Ingest transactions committed (each one fsync).",
                c.ingest_commits,
            );
            counter(
                "connlog_ingest_batches_total",
                "Ingest batches stored; over connlog_ingest_commits_total, the batches per fsync.",
                c.ingest_batches,
            );
            counter(
                "connlog_snapshots_forked_total",
                "Background snapshots saved by a forked copy of the process, from the running plugin.",
                c.snapshots_forked,
            );
            counter(
                "connlog_snapshot_writes_failed_total",
                "Background snapshot writes that failed (the journal stays complete).",
                c.snapshot_writes_failed,
            );
            let _ = writeln!(
                out,
                "# HELP connlog_purge_locked_seconds How long the last purge held the service.\n# TYPE connlog_purge_locked_seconds gauge\nconnlog_purge_locked_seconds {}\n# HELP connlog_purge_locked_max_seconds The longest any purge held the service.\n# TYPE connlog_purge_locked_max_seconds gauge\nconnlog_purge_locked_max_seconds {}",
                c.last_purge_locked_us as f64 / 1e6,
                c.max_purge_locked_us as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "# HELP connlog_rows Connection-log rows held.\n# TYPE connlog_rows gauge\nconnlog_rows {}",
                g.rows
            );
            let _ = writeln!(
                out,
                "# HELP connlog_plugin_memory_bytes Memory the plugin reports for its state.\n# TYPE connlog_plugin_memory_bytes gauge\nconnlog_plugin_memory_bytes {}",
                g.plugin_memory_bytes
            );
            let _ = writeln!(
                out,
                "# HELP connlog_plugin_linear_memory_bytes The plugin's linear memory, which its memory cap bounds.\n# TYPE connlog_plugin_linear_memory_bytes gauge\nconnlog_plugin_linear_memory_bytes {}",
                g.plugin_linear_memory_bytes
            );
            let _ = writeln!(
                out,
                "# HELP connlog_bring_up_events_replayed Events the plugin's last bring-up (start, swap, rebuild) replayed: all of them, or those after the snapshot it loaded.\n# TYPE connlog_bring_up_events_replayed gauge\nconnlog_bring_up_events_replayed {}\n# HELP connlog_bring_up_from_snapshot 1 when the plugin's last bring-up loaded a snapshot.\n# TYPE connlog_bring_up_from_snapshot gauge\nconnlog_bring_up_from_snapshot {}",
                g.bring_up_events_replayed,
                u8::from(g.bring_up_from_snapshot)
            );
        }
        let name = "connlog_query_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to answer GET /api/v2/connectionlog, plugin calls included.\n# TYPE {name} histogram"
        );
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.query_buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", get(bucket));
        }
        let count = get(&self.query_count);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            get(&self.query_sum_nanos) as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count {count}");
        self.watch.render(&mut out);
        out
    }
}

/// The live feed's formats and the reasons its streams end: the metrics' labels.
pub const WATCH_FORMATS: [&str; 2] = ["sse", "ndjson"];
pub const WATCH_END_REASONS: [&str; 4] = ["lag", "client_gone", "shutdown", "error"];

/// The live feed's streams, by format ([`WATCH_FORMATS`]) and end ([`WATCH_END_REASONS`]).
#[derive(Default)]
pub struct WatchMetrics {
    /// Streams open now.
    pub watchers: [AtomicU64; WATCH_FORMATS.len()],
    /// Row messages sent.
    pub messages_sent: [AtomicU64; WATCH_FORMATS.len()],
    /// Streams ended, by why.
    pub disconnects: [AtomicU64; WATCH_END_REASONS.len()],
}

impl WatchMetrics {
    pub fn opened(&self, format: crate::server::watch::Format) {
        self.watchers[format as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn closed(&self, format: crate::server::watch::Format, why: crate::server::watch::End) {
        self.watchers[format as usize].fetch_sub(1, Ordering::Relaxed);
        self.disconnects[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        let mut family = |name: &str,
                          kind: &str,
                          help: &str,
                          label: &str,
                          labels: &[&str],
                          values: &[AtomicU64]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (value, at) in labels.iter().zip(values) {
                let _ = writeln!(
                    out,
                    "{name}{{{label}=\"{value}\"}} {}",
                    at.load(Ordering::Relaxed)
                );
            }
        };
        family(
            "connlog_watchers",
            "gauge",
            "Live feed streams open.",
            "format",
            &WATCH_FORMATS,
            &self.watchers,
        );
        family(
            "connlog_watch_messages_sent_total",
            "counter",
            "Rows sent on live feed streams.",
            "format",
            &WATCH_FORMATS,
            &self.messages_sent,
        );
        family(
            "connlog_watch_disconnects_total",
            "counter",
            "Live feed streams ended: the client fell too far behind (lag), went away (client_gone), the server stopped (shutdown), or a read failed (error).",
            "reason",
            &WATCH_END_REASONS,
            &self.disconnects,
        );
    }
}

/// The followed log's progress (`serve --follow`), in the same text format.
pub fn render_follow(stats: &crate::follow::FollowStats) -> String {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "connlog_follow_lines_total",
        "counter",
        "Lines read from the followed log.",
        get(&stats.lines),
    );
    metric(
        "connlog_follow_events_stored_total",
        "counter",
        "Events from the followed log accepted and durable (replays included).",
        get(&stats.events_stored),
    );
    metric(
        "connlog_follow_rejected_total",
        "counter",
        "Lines of the followed log rejected (bad JSON or an invalid event).",
        get(&stats.rejected),
    );
    metric(
        "connlog_follow_skipped_total",
        "counter",
        "Lines of the followed log skipped (blank, or another service-log message).",
        get(&stats.skipped),
    );
    metric(
        "connlog_follow_rotations_total",
        "counter",
        "Rotations (renamed, recreated or truncated files) followed.",
        get(&stats.rotations),
    );
    metric(
        "connlog_follow_lag_bytes",
        "gauge",
        "Bytes of the followed log written but not stored yet, at the last stored batch.",
        get(&stats.lag_bytes),
    );
    metric(
        "connlog_follow_last_commit_timestamp_seconds",
        "gauge",
        "When a batch from the followed log was last stored (Unix time).",
        get(&stats.last_commit_unix),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.observe_query(Duration::from_micros(300));
        m.observe_query(Duration::from_millis(30));
        m.observe_query(Duration::from_secs(10));
        let text = m.render(None);
        assert!(text.contains("connlog_query_duration_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("connlog_query_duration_seconds_bucket{le=\"0.05\"} 2\n"));
        assert!(text.contains("connlog_query_duration_seconds_bucket{le=\"2.5\"} 2\n"));
        assert!(text.contains("connlog_query_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("connlog_query_duration_seconds_count 3\n"));
    }
}
