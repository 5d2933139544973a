//! The expectation profile, and the `privacy` area.
//!
//! A plugin owes Coder's semantics, but not necessarily Coder's data: the embedded
//! `privacy` plugin (`connlog-privacy`) stores a client IP truncated, pseudonymised or not
//! at all, a user agent coarsened or not at all, and may keep rows for at most a
//! `max-retention`. [`Rules`] says how the plugin under test is expected to store an IP and
//! a user agent, and how long it keeps rows: the identity (what the reference plugin
//! stores, for as long as the operator's retention says) for every plugin but
//! `connlog-privacy`, whose rules are read from the settings the kit was given, with the
//! plugin's defaults (`ip=truncate`, `user-agent=coarse`, no `max-retention`). A setting
//! the plugin does not take cannot reach here: the plugin refused it at load.
//!
//! The rules are an oracle written in the host, apart from the plugin's code: IPv4 to its
//! /24 and IPv6 to its /48 through `std::net`; the pseudonym `fd` followed by the first 15
//! bytes of HMAC-SHA256(`ip-hmac-key`, canonical IP text) through the RustCrypto `hmac`
//! crate; the coarse user agent from a table of the user agents the kit sends, written out
//! by hand ([`COARSE_USER_AGENTS`]), not from the plugin's classifier. They apply to the
//! value the reference plugin stores (the IP already canonical: `localhost` is `127.0.0.1`,
//! text that is not an address is absent), which is what every case expects for the
//! identity.
//!
//! The cases of this area check what only a plugin keeping less data could get wrong, and
//! check the identity for any other plugin: that no raw IP or user agent the rules replace
//! reaches the journal, the rows, the API, the service log, an export or any file of the
//! data directory; that rows stored before a hot swap keep what they had; and that
//! `max-retention` purges rows even with the operator's retention off.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::fixtures::*;
use super::{Case, Check, Harness, Options, same_rows};
use crate::duration::format_duration;
use crate::model::*;
use crate::plugin::{Embedded, PluginSource, PluginSpec};

/// The name the privacy plugin gives itself.
pub const PRIVACY_PLUGIN: &str = "connlog-privacy";

/// A Chrome user agent on Windows.
pub const CHROME_ON_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
/// A Firefox user agent on Linux.
pub const FIREFOX_ON_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
/// curl's user agent.
pub const CURL: &str = "curl/8.5.0";

/// Every user agent the kit sends, and the coarse form (`user-agent=coarse`) the privacy
/// plugin documents for it: client family and OS, `Other` when it names neither.
pub const COARSE_USER_AGENTS: &[(&str, &str)] = &[
    // The fixtures' web events.
    ("Mozilla/5.0", "Other"),
    // A coarse form sent in again (an export ingested into another store).
    ("Other", "Other"),
    (CHROME_ON_WINDOWS, "Chrome on Windows"),
    (FIREFOX_ON_LINUX, "Firefox on Linux"),
    (CURL, "curl"),
];

const SECOND: u64 = 1_000_000_000;

/// How the plugin under test is expected to store an IP and a user agent, and how long it
/// keeps rows.
#[derive(Clone)]
pub struct Rules {
    ip: IpRule,
    user_agent: UserAgentRule,
    /// In nanoseconds.
    max_retention: Option<u64>,
}

#[derive(Clone)]
enum IpRule {
    Keep,
    /// IPv4 to its /24, IPv6 to its /48.
    Truncate,
    /// HMAC-SHA256 under this key.
    Hmac(Vec<u8>),
    Drop,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum UserAgentRule {
    Keep,
    Coarse,
    Drop,
}

impl Rules {
    /// What the reference plugin keeps: every IP and user agent as stored, rows as long as
    /// the operator says.
    pub fn identity() -> Self {
        Self {
            ip: IpRule::Keep,
            user_agent: UserAgentRule::Keep,
            max_retention: None,
        }
    }

    /// The rules for the plugin named `plugin` configured with `settings`: the identity
    /// unless it is the privacy plugin. Refused: a privacy setting the kit cannot read,
    /// which the plugin would have refused at load already. No message quotes a value.
    pub fn for_plugin(plugin: &str, settings: &[Setting]) -> Result<Self, String> {
        let mut rules = Self::identity();
        if plugin != PRIVACY_PLUGIN {
            return Ok(rules);
        }
        rules.ip = IpRule::Truncate;
        rules.user_agent = UserAgentRule::Coarse;
        let mut key = None;
        let unreadable = |key: &str| format!("the kit cannot read the privacy setting {key:?}");
        for setting in settings {
            let value = setting.value.as_str();
            match setting.key.as_str() {
                "ip" => {
                    rules.ip = match value {
                        "keep" => IpRule::Keep,
                        "truncate" => IpRule::Truncate,
                        "hmac" => IpRule::Hmac(Vec::new()),
                        "drop" => IpRule::Drop,
                        _ => return Err(unreadable("ip")),
                    }
                }
                "ip-hmac-key" => key = Some(value.as_bytes().to_vec()),
                "user-agent" => {
                    rules.user_agent = match value {
                        "keep" => UserAgentRule::Keep,
                        "coarse" => UserAgentRule::Coarse,
                        "drop" => UserAgentRule::Drop,
                        _ => return Err(unreadable("user-agent")),
                    }
                }
                "max-retention" => {
                    rules.max_retention =
                        Some(parse_duration(value).ok_or_else(|| unreadable("max-retention"))?)
                }
                other => return Err(unreadable(other)),
            }
        }
        if let IpRule::Hmac(slot) = &mut rules.ip {
            *slot = key.ok_or_else(|| unreadable("ip-hmac-key"))?;
        }
        Ok(rules)
    }

    /// Whether these rules store everything as the reference plugin does.
    pub fn is_identity(&self) -> bool {
        !self.transforms_ip() && !self.transforms_user_agent() && self.max_retention.is_none()
    }

    /// Whether IPs are stored otherwise than as sent.
    pub fn transforms_ip(&self) -> bool {
        !matches!(self.ip, IpRule::Keep)
    }

    /// Whether user agents are stored otherwise than as sent.
    pub fn transforms_user_agent(&self) -> bool {
        self.user_agent != UserAgentRule::Keep
    }

    /// The IP the plugin is expected to store where the reference plugin stores `stored`
    /// (canonical text, or absent).
    pub fn ip(&self, stored: Option<&str>) -> Option<String> {
        let stored = stored?;
        match &self.ip {
            IpRule::Keep => Some(stored.to_string()),
            IpRule::Drop => None,
            IpRule::Truncate => address(stored).map(|a| text(truncate(a))),
            IpRule::Hmac(key) => address(stored).map(|a| text(pseudonym(key, &text(a)))),
        }
    }

    /// The user agent the plugin is expected to store where the reference plugin stores
    /// `stored`. Panics (failing the case) on a user agent the kit has no coarse form for:
    /// add it to [`COARSE_USER_AGENTS`].
    pub fn user_agent(&self, stored: Option<&str>) -> Option<String> {
        let stored = stored?;
        match self.user_agent {
            UserAgentRule::Keep => Some(stored.to_string()),
            UserAgentRule::Drop => None,
            UserAgentRule::Coarse => {
                match COARSE_USER_AGENTS.iter().find(|(ua, _)| *ua == stored) {
                    Some((_, coarse)) => Some(coarse.to_string()),
                    None => panic!("the kit knows no coarse form of the user agent {stored:?}"),
                }
            }
        }
    }

    /// The plugin's `max-retention`, in nanoseconds.
    pub fn max_retention(&self) -> Option<u64> {
        self.max_retention
    }

    /// The retention in force when the operator's is `operator` (`None`: off): the shorter
    /// of it and `max-retention`.
    pub fn retention(&self, operator: Option<u64>) -> Option<u64> {
        match (self.max_retention, operator) {
            (Some(ours), Some(theirs)) => Some(ours.min(theirs)),
            (ours, theirs) => ours.or(theirs),
        }
    }
}

/// The cutoff of a purge at `now` under `retention`: rows connected strictly before it go.
pub fn cutoff(now: UnixNanos, retention: u64) -> UnixNanos {
    now.saturating_sub(i64::try_from(retention).unwrap_or(i64::MAX))
}

impl fmt::Display for Rules {
    /// What is expected, for the kit's header. Never shows the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = match self.ip {
            IpRule::Keep => "IPs kept",
            IpRule::Truncate => "IPs truncated to /24 and /48",
            IpRule::Hmac(_) => "IPs pseudonymised (HMAC-SHA256 in fd00::/8)",
            IpRule::Drop => "IPs dropped",
        };
        let user_agent = match self.user_agent {
            UserAgentRule::Keep => "user agents kept",
            UserAgentRule::Coarse => "user agents coarsened to family and OS",
            UserAgentRule::Drop => "user agents dropped",
        };
        write!(f, "{ip}, {user_agent}")?;
        if let Some(max) = self.max_retention {
            write!(f, ", rows kept at most {}", format_duration(max))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rules({self})")
    }
}

/// `localhost`, or an address in any text Rust reads, as the address Go's `net.IP` would
/// print (IPv4-mapped IPv6 as IPv4).
fn address(stored: &str) -> Option<IpAddr> {
    if stored == "localhost" {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    match stored.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

/// Canonical text: dotted IPv4, or RFC 5952 IPv6 (which Go's `net.IP.String` also
/// writes for every address that is not IPv4-mapped).
fn text(address: IpAddr) -> String {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        v4 => v4.to_string(),
    }
}

fn truncate(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            let [g0, g1, g2, ..] = v6.segments();
            IpAddr::V6(Ipv6Addr::new(g0, g1, g2, 0, 0, 0, 0, 0))
        }
    }
}

/// `fd` and the first 15 bytes of HMAC-SHA256(`key`, `canonical`).
fn pseudonym(key: &[u8], canonical: &str) -> IpAddr {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(canonical.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut octets = [0u8; 16];
    octets[0] = 0xfd;
    octets[1..].copy_from_slice(&digest[..15]);
    IpAddr::V6(Ipv6Addr::from(octets))
}

/// The units of `max-retention`, largest first.
const UNITS: [(u8, u64); 4] = [
    (b'd', 86_400 * SECOND),
    (b'h', 3_600 * SECOND),
    (b'm', 60 * SECOND),
    (b's', SECOND),
];

/// `30d`, `720h`, `1d12h`, …: whole numbers each followed by a unit, largest first, in
/// nanoseconds; positive and at most `i64::MAX`.
fn parse_duration(value: &str) -> Option<u64> {
    let mut rest = value.as_bytes();
    let mut total: u64 = 0;
    let mut smallest_allowed = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits == rest.len() {
            return None;
        }
        let n: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
        let at = smallest_allowed
            + UNITS[smallest_allowed..]
                .iter()
                .position(|(unit, _)| *unit == rest[digits])?;
        total = total.checked_add(n.checked_mul(UNITS[at].1)?)?;
        smallest_allowed = at + 1;
        rest = &rest[digits + 1..];
    }
    (total > 0 && total <= i64::MAX as u64).then_some(total)
}

// ---- the cases -------------------------------------------------------------------------

pub fn cases() -> Vec<Case> {
    let p = |name: &'static str, run: fn(&mut Harness) -> Check| Case::new("privacy", name, run);
    vec![
        p(
            "raw IPs and user agents never reach the store",
            never_stored,
        ),
        p(
            "rows stored before a swap keep what they had",
            stored_before_a_swap,
        ),
        p(
            "a row older than max-retention is purged even with the operator's retention off",
            max_retention,
        ),
    ]
}

/// IPs as sent, each with the canonical text the reference plugin stores.
const RAW_IPS: [(&str, &str); 4] = [
    ("203.0.113.77", "203.0.113.77"),
    ("2001:DB8:ABCD:12::1", "2001:db8:abcd:12::1"),
    ("::ffff:198.51.100.23", "198.51.100.23"),
    ("192.0.2.146", "192.0.2.146"),
];

fn with_user_agent(event: ConnectionEvent, user_agent: &str) -> ConnectionEvent {
    event.with(|e| e.user_agent = Some(user_agent.to_string()))
}

/// A row's id, with the IP and user agent the reference plugin stores in it.
type RowData = (Uuid, Option<&'static str>, Option<&'static str>);

/// Sessions and web events carrying every raw IP and user agent, and the rows they make.
fn raw_events() -> (Vec<ConnectionEvent>, Vec<RowData>) {
    let events = vec![
        connect(1, 1, 0).ip(RAW_IPS[0].0),
        // A disconnect's IP is journaled too, though its row keeps the connect's.
        disconnect(2, 1, 60, Some(0), None).ip(RAW_IPS[1].0),
        connect(3, 2, 5).ip(RAW_IPS[1].0),
        connect(4, 3, 6).ip(RAW_IPS[2].0),
        with_user_agent(web(5, 1, Some(bob())).ip(RAW_IPS[3].0), CHROME_ON_WINDOWS),
        with_user_agent(web(6, 2, None).ip(RAW_IPS[0].0), FIREFOX_ON_LINUX),
        with_user_agent(web(7, 3, Some(dave())).ip(RAW_IPS[2].0), CURL)
            .method(ConnectionMethod::PortForwarding)
            .app("8080"),
    ];
    let rows = vec![
        (eid(1), Some(RAW_IPS[0].1), None),
        (eid(3), Some(RAW_IPS[1].1), None),
        (eid(4), Some(RAW_IPS[2].1), None),
        (eid(5), Some(RAW_IPS[3].1), Some(CHROME_ON_WINDOWS)),
        (eid(6), Some(RAW_IPS[0].1), Some(FIREFOX_ON_LINUX)),
        (eid(7), Some(RAW_IPS[2].1), Some(CURL)),
    ];
    (events, rows)
}

/// Fails unless the row `id` holds what the rules make of `ip` and `user_agent` (as the
/// reference plugin stores them).
fn expect_row(
    h: &Harness,
    rows: &[ConnectionLog],
    id: Uuid,
    ip: Option<&str>,
    user_agent: Option<&str>,
    context: &str,
) -> Check {
    let name = id_name(id);
    let row = rows
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| format!("{context}: no row {name}"))?;
    ensure_eq!(
        (row.ip.clone(), row.user_agent.clone()),
        (h.expect_ip(ip), h.expect_user_agent(user_agent)),
        "{context}: {name}'s IP and user agent"
    );
    Ok(())
}

/// The values the rules replace, as they were sent and as the reference would store them:
/// none of them may be found anywhere.
fn replaced_values(h: &Harness) -> Vec<String> {
    let mut needles = Vec::new();
    for (raw, canonical) in RAW_IPS {
        if h.expect_ip(Some(canonical)).as_deref() != Some(canonical) {
            needles.push(raw.to_string());
            needles.push(canonical.to_string());
        }
    }
    for user_agent in [CHROME_ON_WINDOWS, FIREFOX_ON_LINUX, CURL] {
        if h.expect_user_agent(Some(user_agent)).as_deref() != Some(user_agent) {
            needles.push(user_agent.to_string());
        }
    }
    needles.dedup();
    needles
}

fn never_stored(h: &mut Harness) -> Check {
    let mut h = h.fresh_with(Options {
        log_formats: vec![LogFormat::Json, LogFormat::Human],
        ..Default::default()
    })?;
    let (events, expected) = raw_events();
    let sent = events.len() as u64;
    h.store(events)?;
    let rows = h.rows()?;
    ensure_eq!(rows.len(), expected.len(), "rows");
    for (id, ip, user_agent) in &expected {
        expect_row(&h, &rows, *id, *ip, *user_agent, "stored")?;
    }

    // Everything the store gives out or holds, as text.
    let mut texts: Vec<(String, String)> = Vec::new();
    let body = h
        .raw_api_page(admin_id(), "", 100, 0)?
        .map_err(|e| format!("the empty query is refused: {e:?}"))?;
    texts.push(("the API body".into(), body));
    for line in h.take_service_log() {
        texts.push((format!("a {:?} service-log line", line.format), line.line));
    }
    for row in &rows {
        let exported = h
            .service()?
            .row_events(row.clone())
            .map_err(|e| format!("row-events failed: {e}"))?;
        // Both generations of line: the seed's carries the IP as `Ip`.
        for (event, fields) in exported
            .iter()
            .flat_map(|e| [(e, LogFields::Current), (e, LogFields::Seed)])
        {
            let line = h
                .service()?
                .service_log_line(event.clone(), LogFormat::Json, fields, T0)
                .map_err(|e| format!("service-log-line failed: {e}"))?;
            texts.push((format!("{}'s {fields:?} export", id_name(row.id)), line));
        }
    }
    let journal = h.journal_ips_and_user_agents()?;
    ensure_eq!(journal.len() as u64, sent, "events in the journal");
    for (ip, user_agent) in journal {
        texts.push((
            "an event in the journal".into(),
            format!("{ip:?} {user_agent:?}"),
        ));
    }

    let needles = replaced_values(&h);
    for needle in &needles {
        if let Some((place, _)) = texts
            .iter()
            .find(|(_, text)| text.contains(needle.as_str()))
        {
            return Err(format!("{place} holds the value sent: {needle:?}"));
        }
    }
    // Every byte on disk, after a restart replayed the journal.
    h.restart()?;
    for id in expected.iter().map(|(id, ..)| *id) {
        ensure!(
            h.rows()?.iter().any(|r| r.id == id),
            "no row {} after a restart",
            id_name(id)
        );
    }
    let found = h.files_holding(&needles)?;
    if let Some((file, needle)) = found.first() {
        return Err(format!(
            "the data file {file} holds the value sent: {needle:?}"
        ));
    }
    Ok(())
}

fn stored_before_a_swap(h: &mut Harness) -> Check {
    let reference = PluginSpec::plain(PluginSource::Embedded(Embedded::Reference));
    let mut h = h.fresh_with(Options {
        plugin: Some(reference),
        ..Default::default()
    })?;
    let (ip, agent) = ("203.0.113.77", CHROME_ON_WINDOWS);
    h.store(vec![
        connect(1, 1, 0).ip(ip),
        with_user_agent(web(2, 1, Some(bob())).ip(ip), agent),
    ])?;
    let before = h.rows()?;
    for row in &before {
        ensure_eq!(
            row.ip.as_deref(),
            Some(ip),
            "{} under the reference plugin: IP",
            id_name(row.id)
        );
    }
    h.swap_to_kit_plugin()?;
    same_rows(&h.rows()?, &before, "rows after the swap")?;

    let (new_ip, new_agent) = ("198.51.100.23", FIREFOX_ON_LINUX);
    h.store(vec![
        // Closes the session stored before the swap; its row keeps its connect's IP.
        disconnect(3, 1, 60, Some(0), None).ip(new_ip),
        connect(4, 2, 10).ip(new_ip),
        with_user_agent(web(5, 11, None).ip(new_ip), new_agent),
    ])?;
    let after = h.rows()?;
    ensure_eq!(after.len(), 4, "rows");
    expect_row(&h, &after, eid(4), Some(new_ip), None, "after the swap")?;
    expect_row(
        &h,
        &after,
        eid(5),
        Some(new_ip),
        Some(new_agent),
        "after the swap",
    )?;
    let old_web = after
        .iter()
        .find(|r| r.id == eid(2))
        .ok_or("no row eid(2)")?;
    let old_web_before: Vec<ConnectionLog> =
        before.iter().filter(|r| r.id == eid(2)).cloned().collect();
    same_rows(
        std::slice::from_ref(old_web),
        &old_web_before,
        "the web row stored before the swap",
    )?;
    let session = after
        .iter()
        .find(|r| r.id == eid(1))
        .ok_or("no row eid(1)")?;
    ensure_eq!(
        (session.ip.as_deref(), session.disconnect_time),
        (Some(ip), Some(T0 + 60 * S)),
        "the session stored before the swap, closed after it: IP and disconnect time"
    );

    h.restart()?;
    same_rows(
        &h.rows()?,
        &after,
        "rows after a restart replaying the journal",
    )
}

fn max_retention(h: &mut Harness) -> Check {
    const DAY: u64 = 24 * HOUR as u64;
    for operator in [None, Some(HOUR as u64), Some(400 * DAY)] {
        let mut h = h.fresh()?;
        let context = match operator {
            None => "the operator's retention off".to_string(),
            Some(r) => format!("the operator's retention {}", format_duration(r)),
        };
        h.set_retention(operator.unwrap_or(0))?;
        h.store(vec![connect(1, 1, 0), web(2, 10, None)])?;
        let in_force = h.rules().retention(operator);
        // Just past the first row's expiry, before the second's.
        let now = match in_force {
            Some(r) => (T0 + 5 * S).saturating_add(i64::try_from(r).unwrap_or(i64::MAX)),
            None => T0 + 365 * 24 * HOUR,
        };
        let report = h.purge(now)?;
        let (want, left) = match in_force {
            Some(r) => (
                PurgeReport {
                    purged: 1,
                    cutoff: Some(cutoff(now, r)),
                },
                vec![eid(2)],
            ),
            None => (
                PurgeReport {
                    purged: 0,
                    cutoff: None,
                },
                vec![eid(2), eid(1)],
            ),
        };
        ensure_eq!(report, want, "{context}: the purge report");
        let ids: Vec<Uuid> = h.rows()?.iter().map(|r| r.id).collect();
        super::same_ids(&ids, &left, &format!("{context}: rows left"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef-a-test-key";

    fn privacy(pairs: &[(&str, &str)]) -> Rules {
        let settings: Vec<Setting> = pairs
            .iter()
            .map(|(k, v)| Setting {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect();
        Rules::for_plugin(PRIVACY_PLUGIN, &settings).expect("readable settings")
    }

    #[test]
    fn any_other_plugin_is_expected_to_keep_everything() {
        let settings = [Setting {
            key: "ip".into(),
            value: "drop".into(),
        }];
        for rules in [
            Rules::identity(),
            Rules::for_plugin("connlog-reference", &settings).unwrap(),
            Rules::for_plugin("my-plugin", &[]).unwrap(),
        ] {
            assert!(rules.is_identity());
            assert_eq!(rules.ip(Some("10.1.2.3")).as_deref(), Some("10.1.2.3"));
            assert_eq!(rules.ip(None), None);
            assert_eq!(
                rules.user_agent(Some("anything at all")).as_deref(),
                Some("anything at all")
            );
            assert_eq!(rules.retention(None), None);
            assert_eq!(rules.retention(Some(5)), Some(5));
        }
        let keep = privacy(&[("ip", "keep"), ("user-agent", "keep")]);
        assert!(keep.is_identity());
    }

    #[test]
    fn the_privacy_defaults_truncate_and_coarsen() {
        let rules = privacy(&[]);
        assert!(!rules.is_identity());
        let cases: &[(&str, Option<&str>)] = &[
            ("203.0.113.77", Some("203.0.113.0")),
            ("127.0.0.1", Some("127.0.0.0")),
            ("localhost", Some("127.0.0.0")),
            ("::ffff:10.0.0.7", Some("10.0.0.0")),
            ("10.0.0.0", Some("10.0.0.0")),
            ("2001:db8:abcd:12::1", Some("2001:db8:abcd::")),
            ("fd7a:115c:a1e0::1", Some("fd7a:115c:a1e0::")),
            (
                "fd7a:115c:a1e0:ab12:4843:cd96:626b:430b",
                Some("fd7a:115c:a1e0::"),
            ),
            ("2001:db8::1", Some("2001:db8::")),
            ("::1", Some("::")),
            ("not an address", None),
        ];
        for (stored, want) in cases {
            assert_eq!(rules.ip(Some(stored)).as_deref(), *want, "{stored}");
        }
        assert_eq!(
            rules.user_agent(Some("Mozilla/5.0")).as_deref(),
            Some("Other")
        );
        assert_eq!(
            rules.user_agent(Some(CHROME_ON_WINDOWS)).as_deref(),
            Some("Chrome on Windows")
        );
        assert_eq!(rules.user_agent(None), None);
        assert_eq!(rules.retention(None), None);
    }

    #[test]
    fn pseudonyms_match_hmac_sha256_computed_elsewhere() {
        // `printf %s IP | openssl dgst -sha256 -hmac KEY`, `fd` and its first 15 bytes.
        let rules = privacy(&[("ip", "hmac"), ("ip-hmac-key", KEY)]);
        let cases = [
            ("203.0.113.77", "fd90:d3c1:ffe7:401e:a6e9:4c80:6521:7f9a"),
            ("2001:db8::1", "fd41:d756:fbcc:3f0e:19e:3359:5a2b:d5db"),
            ("127.0.0.1", "fd18:c965:acf3:305e:c397:4a73:57ef:82e"),
            ("localhost", "fd18:c965:acf3:305e:c397:4a73:57ef:82e"),
        ];
        for (stored, want) in cases {
            assert_eq!(rules.ip(Some(stored)).as_deref(), Some(want), "{stored}");
        }
        assert_eq!(rules.ip(Some("garbage")), None);
        let other = privacy(&[("ip", "hmac"), ("ip-hmac-key", "another key, 16+ bytes")]);
        assert_ne!(
            other.ip(Some("203.0.113.77")),
            rules.ip(Some("203.0.113.77"))
        );
        assert!(
            !format!("{rules} {rules:?}").contains(KEY),
            "the key is never shown"
        );
    }

    #[test]
    fn drop_drops() {
        let rules = privacy(&[("ip", "drop"), ("user-agent", "drop")]);
        assert_eq!(rules.ip(Some("203.0.113.77")), None);
        assert_eq!(rules.user_agent(Some("Mozilla/5.0")), None);
        assert!(rules.transforms_ip() && rules.transforms_user_agent());
    }

    #[test]
    #[should_panic(expected = "no coarse form")]
    fn an_unknown_user_agent_is_a_kit_error() {
        privacy(&[]).user_agent(Some("SomethingNew/1.0"));
    }

    #[test]
    fn max_retention_is_the_shorter_of_the_two() {
        const HOUR: u64 = 3_600 * SECOND;
        let rules = privacy(&[("max-retention", "30d")]);
        assert_eq!(rules.max_retention(), Some(720 * HOUR));
        assert_eq!(rules.retention(None), Some(720 * HOUR));
        assert_eq!(rules.retention(Some(HOUR)), Some(HOUR));
        assert_eq!(rules.retention(Some(u64::MAX)), Some(720 * HOUR));
        assert!(!rules.is_identity());
        assert_eq!(
            rules.to_string(),
            "IPs truncated to /24 and /48, user agents coarsened to family and OS, rows kept at most 30d"
        );
        for (text, want) in [
            ("30d", Some(720 * HOUR)),
            ("720h", Some(720 * HOUR)),
            ("90m", Some(90 * 60 * SECOND)),
            ("3600s", Some(HOUR)),
            ("1d12h", Some(36 * HOUR)),
            ("1d2h3m4s", Some(93_784 * SECOND)),
            ("", None),
            ("0s", None),
            ("30", None),
            ("d", None),
            ("12h1d", None),
            ("1h1h", None),
            ("-1d", None),
            ("1.5h", None),
            ("999999d", None),
        ] {
            assert_eq!(parse_duration(text), want, "{text:?}");
        }
        assert_eq!(format_duration(36 * HOUR), "1d12h");
        assert_eq!(format_duration(90 * 60 * SECOND), "1h30m");
    }

    #[test]
    fn settings_the_kit_cannot_read_are_refused_without_their_value() {
        // Each with a value that no message could hold unless it quoted it.
        for (pairs, value) in [
            (&[("ip", "sometimes")][..], "sometimes"),
            // No key: nothing to quote.
            (&[("ip", "hmac")], ""),
            (&[("max-retention", "forever")], "forever"),
            (&[("user-agent", "Coarse")], "Coarse"),
            (&[("colour", "blue")], "blue"),
        ] {
            let settings: Vec<Setting> = pairs
                .iter()
                .map(|(k, v)| Setting {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect();
            let error = Rules::for_plugin(PRIVACY_PLUGIN, &settings).expect_err("refused");
            assert!(value.is_empty() || !error.contains(value), "{error}");
        }
    }

    #[test]
    fn cutoffs_saturate() {
        assert_eq!(cutoff(100, 30), 70);
        assert_eq!(cutoff(0, u64::MAX), -i64::MAX);
        assert_eq!(cutoff(i64::MIN + 5, 30), i64::MIN);
    }
}
