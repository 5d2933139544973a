//! `connlog-privacy`: the reference connection-log plugin, keeping less personal data.
//!
//! Coder keeps every connection's client IP and user agent in full, for as long as the
//! operator's retention says. Many deployments may not. This plugin is the reference plugin
//! ([`connlog_reference::ReferencePlugin`]: the same validation, sessions, filter language,
//! authorization, API rows and service-log lines) with three differences, applied to each
//! event *before* the reference plugin validates, journals, merges or logs it:
//!
//! - the **client IP** is truncated to its network (by default), replaced by a keyed
//!   pseudonym, or dropped;
//! - the **user agent** is reduced to the client family and OS (by default), or dropped;
//! - rows may be kept for at most a **maximum retention**, whatever the operator's.
//!
//! So what is not kept never reaches the journal, the rows, the API, exports or the service
//! log: nothing holds the full IP or user agent but the request that carried them in.
//!
//! # Settings
//!
//! All optional, given as `--plugin-setting KEY=VALUE`. Values are matched exactly
//! (lowercase). No error message ever quotes a value.
//!
//! | key | values | default | what is kept |
//! |---|---|---|---|
//! | `ip` | `truncate` | ✓ | IPv4 to its /24 (`203.0.113.77` → `203.0.113.0`), IPv6 to its /48 (`2001:db8:abcd:12::1` → `2001:db8:abcd::`) |
//! | | `hmac` | | a pseudonym in `fd00::/8`: `fd` then the first 15 bytes of HMAC-SHA256(`ip-hmac-key`, the canonical IP text). One client keeps one pseudonym for one key, so an auditor can still tell sessions of the same client apart from others; the IP cannot be recovered without the key |
//! | | `drop` | | no IP |
//! | | `keep` | | the IP as Coder keeps it |
//! | `ip-hmac-key` | a secret of at least 16 bytes | — | required with `ip=hmac`, refused otherwise. Changing it changes every pseudonym from then on |
//! | `user-agent` | `coarse` | ✓ | the client family and OS: `Chrome on Windows`, `Firefox on Linux`, `Safari on iOS`, `Edge on Windows`, `curl`, `Go-http-client`; `Other on Linux` for an unknown client on a known OS, `Other` when neither is known |
//! | | `drop` | | no user agent |
//! | | `keep` | | the user agent as Coder keeps it |
//! | `max-retention` | a positive duration: `30d`, `720h`, `90m`, `3600s`, `1d12h` (whole numbers, units `d` `h` `m` `s`, largest first) | none | no row is kept longer than this, even when the operator's retention is longer or off; a shorter operator retention still applies |
//!
//! A key given twice is refused, as is a value not in the table. A key this plugin does
//! not know goes to the reference plugin, which takes none, so it is refused with the list
//! of the keys above. With `ip=keep` and `user-agent=keep` (and no `max-retention`) this
//! plugin stores exactly what the reference plugin stores.
//!
//! IPs are first made canonical as the reference plugin does (`localhost` is `127.0.0.1`;
//! IPv4-mapped IPv6 is IPv4; text that is not an address is no IP), so one client is one
//! network or one pseudonym however it was spelt. Every stored IP is still an address, as
//! Coder's API and its `ip` column (an `inet`) expect. A user agent longer than the
//! reference accepts (2048 bytes) is refused by the reference, as it would be without
//! this plugin.
//!
//! # Examples
//!
//! ```text
//! # The defaults: IPs truncated to their network, user agents coarsened.
//! connlog serve --plugin privacy
//!
//! # Pseudonymous IPs; no user agents; nothing kept beyond 30 days.
//! connlog serve --plugin privacy \
//!     --plugin-setting ip=hmac --plugin-setting ip-hmac-key="$(cat /etc/connlog/ip-key)" \
//!     --plugin-setting user-agent=drop --plugin-setting max-retention=30d
//! ```
//!
//! Keep the key secret and stable: whoever has it can test a guessed IP against a
//! pseudonym, and a new key gives every client a new pseudonym.
//!
//! # Rows already stored are not rewritten
//!
//! This plugin changes events on their way in. Events already in the journal, stored by
//! this plugin under other settings or by another plugin before a swap to this one, are
//! replayed as they were stored: their rows keep what they had, full IPs and user agents
//! included, until retention removes them (a `max-retention` applies to them too). Changing
//! `ip-hmac-key` likewise leaves stored pseudonyms as they are.
//!
//! # For plugin authors
//!
//! This crate is a small example of the SDK's layer API
//! ([`connlog_plugin_sdk::layer`]): [`Privacy`] implements [`PluginLayer`] and
//! [`PrivacyPlugin`] is `Layered<Privacy, ReferencePlugin>`. Its parts: `settings` parses
//! and checks the settings, `ip` and `user_agent` hold the two rules, and `duration` the
//! `max-retention` format. With the default feature `component` the crate's `cdylib`
//! exports [`PrivacyPlugin`] as a component; with `default-features = false` it is a
//! library to build on.

pub mod duration;
pub mod ip;
pub mod settings;
pub mod user_agent;

use connlog_plugin_sdk::PluginHost;
use connlog_plugin_sdk::layer::{Layered, PluginLayer};
use connlog_plugin_sdk::model::{ConnectionEvent, EventRef, Setting, SettingsError};
use connlog_reference::ReferencePlugin;

pub use settings::Settings;

/// The layer: what is kept of each event, and for how long.
#[derive(Default)]
pub struct Privacy {
    settings: Settings,
}

impl Privacy {
    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// The plugin: [`Privacy`] over the reference plugin.
pub type PrivacyPlugin = Layered<Privacy, ReferencePlugin>;

impl PluginLayer for Privacy {
    const NAME: &'static str = "connlog-privacy";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SETTINGS: &'static [&'static str] = settings::KEYS;

    /// Takes `ip`, `ip-hmac-key`, `user-agent` and `max-retention`; every other key goes to
    /// the reference plugin (which refuses it). Settings not given take their defaults,
    /// whatever an earlier call set.
    fn configure(&mut self, settings: Vec<Setting>) -> Result<Vec<Setting>, SettingsError> {
        let (parsed, others) = Settings::parse(settings)?;
        self.settings = parsed;
        Ok(others)
    }

    /// The only place IPs and user agents enter: what is dropped here is never journaled.
    fn on_event(&self, event: &mut ConnectionEvent) {
        event.ip = self.settings.ip.apply(event.ip.take());
        event.user_agent = self.settings.user_agent.apply(event.user_agent.take());
    }

    /// Nothing: journaled events were stored as they are, and are replayed as they are.
    fn on_replay(&mut self, _host: &mut dyn PluginHost, _events: &[EventRef<'_>]) {}

    /// The shorter of the operator's retention and `max-retention`.
    fn retention(&self, operator: Option<u64>) -> Option<u64> {
        match (self.settings.max_retention, operator) {
            (Some(ours), Some(operator)) => Some(ours.min(operator)),
            (ours, operator) => ours.or(operator),
        }
    }
}

#[cfg(feature = "component")]
connlog_plugin_sdk::export_plugin!(PrivacyPlugin);

#[cfg(test)]
mod tests {
    use super::*;
    use connlog_plugin_sdk::ConnectionLogPlugin;
    use connlog_plugin_sdk::model::PluginConfig;

    const HOUR: u64 = 3_600_000_000_000;
    /// Settings as given: `(key, value)` pairs.
    type Pairs = &'static [(&'static str, &'static str)];
    const DAY: u64 = 24 * HOUR;

    fn configured(pairs: &[(&str, &str)]) -> Result<PrivacyPlugin, SettingsError> {
        let mut plugin = PrivacyPlugin::new();
        plugin.configure(PluginConfig {
            service_log_formats: Vec::new(),
            service_log_fields: Default::default(),
            settings: pairs.iter().map(|(k, v)| Setting::new(*k, *v)).collect(),
        })?;
        Ok(plugin)
    }

    #[test]
    fn names_itself() {
        assert_eq!(PrivacyPlugin::NAME, "connlog-privacy");
        assert_eq!(PrivacyPlugin::VERSION, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn max_retention_never_lengthens_the_operators() {
        // (max-retention, operator's retention, what applies)
        let cases: &[(Option<&str>, Option<u64>, Option<u64>)] = &[
            (None, None, None),
            (None, Some(90 * DAY), Some(90 * DAY)),
            // Shorter than the operator's: ours.
            (Some("30d"), Some(90 * DAY), Some(30 * DAY)),
            // The operator keeps rows forever: ours.
            (Some("30d"), None, Some(30 * DAY)),
            (Some("90m"), None, Some(90 * 60_000_000_000)),
            // Longer than the operator's: ignored.
            (Some("30d"), Some(7 * DAY), Some(7 * DAY)),
            (Some("720h"), Some(30 * DAY), Some(30 * DAY)),
        ];
        for (ours, operator, want) in cases {
            let pairs: Vec<(&str, &str)> = ours.iter().map(|v| ("max-retention", *v)).collect();
            let mut plugin = configured(&pairs).expect("valid");
            assert_eq!(
                plugin.layer.retention(*operator),
                *want,
                "{ours:?} {operator:?}"
            );
            assert_eq!(
                plugin.set_retention(*operator),
                *want,
                "{ours:?} {operator:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused_by_the_reference_naming_ours() {
        let secret = "a-secret-the-operator-mistyped";
        let error = configured(&[("ip", "drop"), ("ip-hmac", secret)])
            .map(|_| ())
            .expect_err("unknown");
        assert_eq!(
            error,
            SettingsError::UnknownSetting {
                key: "ip-hmac".to_string(),
                known: ["ip", "ip-hmac-key", "user-agent", "max-retention"]
                    .map(String::from)
                    .to_vec(),
            }
        );
        assert!(!error.to_string().contains(secret));
    }

    #[test]
    fn invalid_settings_are_refused_before_the_reference_sees_any() {
        let error = configured(&[("nonsense", "x"), ("ip", "hash")])
            .map(|_| ())
            .expect_err("invalid");
        assert_eq!(
            error,
            SettingsError::InvalidSetting {
                key: "ip".to_string(),
                reason: settings::reason::IP_VALUES.to_string(),
            }
        );
    }

    #[test]
    fn configuring_again_starts_from_the_defaults() {
        let mut plugin = configured(&[("ip", "drop"), ("max-retention", "1d")]).expect("valid");
        plugin
            .configure(PluginConfig::default())
            .expect("no settings");
        let settings = plugin.layer.settings();
        assert_eq!(format!("{:?}", settings.ip), "Truncate");
        assert_eq!(settings.max_retention, None);
    }

    #[test]
    fn events_are_rewritten_per_the_settings() {
        let mut event = connlog_plugin_sdk::testing::fixtures::workspace_app(
            connlog_plugin_sdk::testing::fixtures::uuid(1),
            0,
            None,
            200,
        );
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
        event.ip = Some("203.0.113.77".to_string());
        event.user_agent = Some(chrome.to_string());
        let cases: &[(Pairs, Option<&str>, Option<&str>)] = &[
            (&[], Some("203.0.113.0"), Some("Chrome on Windows")),
            (&[("ip", "drop"), ("user-agent", "drop")], None, None),
            (
                &[("ip", "keep"), ("user-agent", "keep")],
                Some("203.0.113.77"),
                Some(chrome),
            ),
        ];
        for (pairs, ip, ua) in cases {
            let plugin = configured(pairs).expect("valid");
            let mut e = event.clone();
            plugin.layer.on_event(&mut e);
            assert_eq!((e.ip.as_deref(), e.user_agent.as_deref()), (*ip, *ua));
            let untouched = ConnectionEvent {
                ip: e.ip.clone(),
                user_agent: e.user_agent.clone(),
                ..event.clone()
            };
            assert_eq!(e, untouched, "nothing else changes");
        }
    }
}
