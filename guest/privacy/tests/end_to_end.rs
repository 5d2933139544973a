//! The plugin over the SDK's in-memory host: what reaches the journal, the rows, the
//! query results, the API rows and the service log, under each setting.

use connlog_plugin_sdk::ConnectionLogPlugin;
use connlog_plugin_sdk::model::*;
use connlog_plugin_sdk::testing::MemoryHost;
use connlog_plugin_sdk::testing::fixtures::*;
use connlog_privacy::PrivacyPlugin;
use connlog_reference::ReferencePlugin;

const HOUR: i64 = 3600 * SECOND;

const RAW_V4: &str = "203.0.113.77";
const RAW_V6: &str = "2001:db8:abcd:12:3456:789a:bcde:f012";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const CURL: &str = "curl/8.5.0";
/// Fragments of the raw values that no transformed value can contain.
const RAW_FRAGMENTS: &[&str] = &[
    RAW_V4,
    "203.0.113.77",
    "3456:789a",
    "Chrome/124",
    "Win64",
    "8.5.0",
];
const KEY: &str = "an-ip-key-of-at-least-16-bytes";

fn admin() -> Uuid {
    uuid_in(30, 1)
}

fn host() -> MemoryHost {
    let mut host = MemoryHost::at(T0 + HOUR);
    host.add_organization(organization(uuid_in(1, 1), "coder"));
    host.add_user(user(uuid_in(2, 1), "alice", &[]));
    host.add_user(user(admin(), "admin", &["owner"]));
    host
}

/// Events with full IPs and user agents: an SSH session (connect, disconnect) from an
/// IPv6 client, two web events from an IPv4 client, a tunnel event from `localhost` and
/// one with an address that does not parse.
fn events() -> Vec<ConnectionEvent> {
    let mut connect = ssh_connect(uuid_in(20, 1), T0, uuid_in(10, 1));
    connect.ip = Some(RAW_V6.to_string());
    let mut disconnect = ssh_disconnect(
        uuid_in(20, 2),
        T0 + 60 * SECOND,
        uuid_in(10, 1),
        Some(0),
        None,
    );
    disconnect.ip = Some(RAW_V6.to_string());
    let mut web = workspace_app(uuid_in(20, 3), T0 + 2 * SECOND, Some(admin()), 200);
    web.ip = Some(RAW_V4.to_string());
    web.user_agent = Some(CHROME.to_string());
    let mut web2 = workspace_app(uuid_in(20, 4), T0 + 3 * SECOND, Some(admin()), 200);
    web2.ip = Some(format!("::ffff:{RAW_V4}"));
    web2.user_agent = Some(CURL.to_string());
    let mut tunnel = workspace_app(uuid_in(20, 5), T0 + 4 * SECOND, None, 101);
    tunnel.connection_method = ConnectionMethod::PortForwarding;
    tunnel.ip = Some("localhost".to_string());
    tunnel.user_agent = Some(String::new());
    let mut garbage = workspace_app(uuid_in(20, 6), T0 + 5 * SECOND, None, 200);
    garbage.ip = Some("not-an-address".to_string());
    garbage.user_agent = Some("garbage".to_string());
    vec![connect, disconnect, web, web2, tunnel, garbage]
}

/// A plugin over a host, as the host drives it.
struct World<P> {
    plugin: P,
    host: MemoryHost,
}

impl<P: ConnectionLogPlugin> World<P> {
    fn new(settings: &[(&str, &str)]) -> Self {
        let mut plugin = P::new();
        plugin
            .configure(PluginConfig {
                service_log_formats: vec![LogFormat::Json, LogFormat::Human],
                service_log_fields: LogFields::Current,
                settings: settings.iter().map(|(k, v)| Setting::new(*k, *v)).collect(),
            })
            .expect("valid settings");
        Self {
            plugin,
            host: host(),
        }
    }

    fn ingest(&mut self, events: Vec<ConnectionEvent>) -> Vec<EventOutcome> {
        let plugin = &mut self.plugin;
        self.host
            .transaction(|h| plugin.ingest_batch(h, events))
            .expect("no storage error")
    }

    fn query(&self, q: &str) -> Vec<ConnectionLog> {
        let actor = self.host.actor(admin()).expect("admin");
        let request = QueryRequest {
            q: q.to_string(),
            limit: None,
            offset: 0,
        };
        self.plugin
            .query(&self.host, &actor, &request)
            .expect("valid query")
            .rows
    }

    /// Everything the plugin lets out: journal, query results, API rows and response,
    /// service-log lines, exported events.
    fn everything_out(&mut self) -> String {
        let rows = self.query("");
        let mut out = format!("{:?}\n{rows:?}\n", self.host.journal_events());
        out += &self.plugin.api_rows(&self.host, &rows).join("\n");
        out += &self
            .plugin
            .api_response(&self.host, &rows, rows.len() as u64);
        for line in self.host.take_service_log() {
            out += &line.line;
        }
        for row in &rows {
            for event in self.plugin.row_events(row) {
                out += &self.plugin.service_log_line(
                    &event,
                    LogFormat::Json,
                    LogFields::Current,
                    event.time,
                );
            }
        }
        out
    }
}

fn ip_and_ua(rows: &[ConnectionLog]) -> Vec<(Option<&str>, Option<&str>)> {
    let mut kept: Vec<_> = rows
        .iter()
        .map(|r| (r.ip.as_deref(), r.user_agent.as_deref()))
        .collect();
    kept.sort();
    kept
}

#[test]
fn by_default_no_raw_ip_or_user_agent_gets_out() {
    let mut w = World::<PrivacyPlugin>::new(&[]);
    let outcomes = w.ingest(events());
    assert!(
        outcomes.iter().all(|o| *o == EventOutcome::Stored),
        "{outcomes:?}"
    );
    let everything = w.everything_out();
    for raw in RAW_FRAGMENTS {
        assert!(!everything.contains(raw), "{raw} got out");
    }
    // As it does from the reference plugin, so the check above can fail.
    let mut reference = World::<ReferencePlugin>::new(&[]);
    reference.ingest(events());
    let theirs = reference.everything_out();
    for raw in RAW_FRAGMENTS {
        assert!(
            theirs.contains(raw),
            "{raw} is not in the reference's output"
        );
    }
    assert_eq!(
        ip_and_ua(&w.query("")),
        [
            (None, Some("Other")),
            (Some("127.0.0.0"), None),
            (Some("2001:db8:abcd::"), None),
            (Some("203.0.113.0"), Some("Chrome on Windows")),
            (Some("203.0.113.0"), Some("curl")),
        ]
    );
    // The session still merged into one row.
    assert_eq!(w.query("type:ssh status:completed").len(), 1);
}

#[test]
fn with_ip_and_user_agent_kept_it_is_the_reference_plugin() {
    let mut ours = World::<PrivacyPlugin>::new(&[("ip", "keep"), ("user-agent", "keep")]);
    let mut reference = World::<ReferencePlugin>::new(&[]);
    let mut more = events();
    // An event the reference refuses, for a user agent too long.
    let mut long = workspace_app(uuid_in(20, 9), T0, None, 200);
    long.user_agent = Some("x".repeat(4096));
    more.push(long);
    assert_eq!(ours.ingest(more.clone()), reference.ingest(more));
    assert_eq!(ours.plugin.inner.rows(), reference.plugin.rows());
    assert_eq!(ours.host.journal_events(), reference.host.journal_events());
    assert_eq!(ours.query(""), reference.query(""));
    assert_eq!(ours.everything_out(), reference.everything_out());
}

#[test]
fn events_refused_by_the_reference_are_refused_alike() {
    let mut ours = World::<PrivacyPlugin>::new(&[]);
    let mut reference = World::<ReferencePlugin>::new(&[]);
    let mut long = workspace_app(uuid_in(20, 9), T0, None, 200);
    long.user_agent = Some("x".repeat(4096));
    let mut no_session = ssh_connect(uuid_in(20, 8), T0, uuid_in(10, 8));
    no_session.connection_id = None;
    let batch = vec![long, no_session];
    let outcomes = ours.ingest(batch.clone());
    assert_eq!(outcomes, reference.ingest(batch));
    assert!(matches!(outcomes[0], EventOutcome::Rejected(_)));
    assert_eq!(ours.host.journal_len(), 0);
}

#[test]
fn hmac_pseudonyms_are_stable_and_hide_the_address() {
    let mut w = World::<PrivacyPlugin>::new(&[("ip", "hmac"), ("ip-hmac-key", KEY)]);
    w.ingest(events());
    let everything = w.everything_out();
    for raw in RAW_FRAGMENTS.iter().chain(&[KEY, "2001:db8"]) {
        assert!(!everything.contains(raw), "{raw} got out");
    }
    let rows = w.query("type:workspace_app");
    // The same client, spelt two ways, is one pseudonym in fd00::/8.
    let ips: Vec<&str> = rows.iter().filter_map(|r| r.ip.as_deref()).collect();
    assert_eq!(ips.len(), 2, "{rows:?}");
    assert_eq!(ips[0], ips[1]);
    assert!(ips[0].starts_with("fd"), "{}", ips[0]);
    // And the same pseudonym after a restart with the same key; another with another key.
    let mut again = World::<PrivacyPlugin>::new(&[("ip", "hmac"), ("ip-hmac-key", KEY)]);
    again.ingest(events());
    assert_eq!(again.query(""), w.query(""));
    let other_key = "another-key-of-at-least-16-bytes";
    let mut other = World::<PrivacyPlugin>::new(&[("ip", "hmac"), ("ip-hmac-key", other_key)]);
    other.ingest(events());
    assert_ne!(ip_and_ua(&other.query("")), ip_and_ua(&w.query("")));
}

#[test]
fn drop_keeps_neither() {
    let mut w = World::<PrivacyPlugin>::new(&[("ip", "drop"), ("user-agent", "drop")]);
    w.ingest(events());
    assert!(
        w.query("")
            .iter()
            .all(|r| r.ip.is_none() && r.user_agent.is_none())
    );
    assert!(
        w.host
            .journal_events()
            .iter()
            .all(|e| e.ip.is_none() && e.user_agent.is_none())
    );
}

#[test]
fn replay_rebuilds_the_same_rows_and_leaves_journaled_events_as_they_are() {
    let mut w = World::<PrivacyPlugin>::new(&[]);
    w.ingest(events());
    let journal = w.host.journal_events();
    let mut fresh = World::<PrivacyPlugin>::new(&[]);
    fresh
        .plugin
        .replay(&mut fresh.host, &event_refs(&journal))
        .expect("replay");
    assert_eq!(fresh.plugin.inner.rows(), w.plugin.inner.rows());

    // Events journaled by the reference plugin before a swap keep what they had.
    let mut before = World::<ReferencePlugin>::new(&[]);
    before.ingest(events());
    let journal = before.host.journal_events();
    let mut swapped = World::<PrivacyPlugin>::new(&[]);
    swapped
        .plugin
        .replay(&mut swapped.host, &event_refs(&journal))
        .expect("replay");
    assert_eq!(swapped.plugin.inner.rows(), before.plugin.rows());
}

#[test]
fn max_retention_purges_what_the_operator_would_keep() {
    let mut w = World::<PrivacyPlugin>::new(&[("max-retention", "30m")]);
    w.ingest(events());
    // The operator keeps rows forever; this plugin keeps them 30 minutes.
    let retention = w.plugin.set_retention(None);
    assert_eq!(retention, Some(30 * 60 * SECOND as u64));
    let plugin = &mut w.plugin;
    let report = w
        .host
        .transaction(|h| plugin.purge(h, T0 + HOUR))
        .expect("no storage error");
    assert_eq!(report.purged, 5);
    assert!(w.query("").is_empty());
    assert_eq!(w.host.journal_len(), 0);
}
