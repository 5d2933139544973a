//! The operator's settings (`--plugin-setting KEY=VALUE`), parsed and checked. No message
//! ever quotes a value: `ip-hmac-key` is a secret, and any value might be one mistyped.

use connlog_plugin_sdk::model::{Setting, SettingsError};

use crate::duration;
use crate::ip::{IpRule, MIN_HMAC_KEY_BYTES, Pseudonymizer};
use crate::user_agent::UserAgentRule;

/// `ip`: what is kept of a client IP.
pub const IP: &str = "ip";
/// `ip-hmac-key`: the secret of `ip=hmac`.
pub const IP_HMAC_KEY: &str = "ip-hmac-key";
/// `user-agent`: what is kept of a user agent.
pub const USER_AGENT: &str = "user-agent";
/// `max-retention`: the longest any row is kept.
pub const MAX_RETENTION: &str = "max-retention";

/// Every key this plugin takes, as named to an operator who gives an unknown one.
pub const KEYS: &[&str] = &[IP, IP_HMAC_KEY, USER_AGENT, MAX_RETENTION];

/// The reasons a setting is refused, exactly as the operator sees them.
pub mod reason {
    pub const REPEATED: &str = "given more than once";
    pub const IP_VALUES: &str = "must be one of truncate (the default), hmac, drop or keep";
    pub const USER_AGENT_VALUES: &str = "must be one of coarse (the default), drop or keep";
    pub const KEY_REQUIRED: &str = "required when ip=hmac";
    pub const KEY_UNUSED: &str = "only used with ip=hmac";
    pub const KEY_TOO_SHORT: &str = "must be at least 16 bytes";
}

const _: () = assert!(MIN_HMAC_KEY_BYTES == 16, "reason::KEY_TOO_SHORT names 16");

/// What this plugin keeps, as configured.
#[derive(Clone, Debug)]
pub struct Settings {
    pub ip: IpRule,
    pub user_agent: UserAgentRule,
    /// The longest any row is kept, in nanoseconds; `None`: as long as the operator's
    /// retention says.
    pub max_retention: Option<u64>,
}

impl Default for Settings {
    /// No setting given: `ip=truncate`, `user-agent=coarse`, no `max-retention`.
    fn default() -> Self {
        Self {
            ip: IpRule::Truncate,
            user_agent: UserAgentRule::Coarse,
            max_retention: None,
        }
    }
}

impl Settings {
    /// Takes this plugin's settings out of `settings` and returns the others, in their
    /// order, for the plugin beneath to judge.
    ///
    /// Refused: a key of this plugin given twice (checked as the settings are read), then
    /// in this order an invalid `ip`, an `ip-hmac-key` missing, unused or too short, an
    /// invalid `user-agent`, an invalid `max-retention`.
    pub fn parse(settings: Vec<Setting>) -> Result<(Settings, Vec<Setting>), SettingsError> {
        let mut ip = None;
        let mut key = None;
        let mut user_agent = None;
        let mut max_retention = None;
        let mut others = Vec::new();
        for setting in settings {
            let slot = match setting.key.as_str() {
                IP => &mut ip,
                IP_HMAC_KEY => &mut key,
                USER_AGENT => &mut user_agent,
                MAX_RETENTION => &mut max_retention,
                _ => {
                    others.push(setting);
                    continue;
                }
            };
            if slot.is_some() {
                return Err(invalid(&setting.key, reason::REPEATED));
            }
            *slot = Some(setting.value);
        }

        let ip = match ip.as_deref() {
            None | Some("truncate") => IpRule::Truncate,
            Some("hmac") => {
                let key = key
                    .take()
                    .ok_or_else(|| invalid(IP_HMAC_KEY, reason::KEY_REQUIRED))?;
                let pseudonymizer = Pseudonymizer::new(key.as_bytes())
                    .ok_or_else(|| invalid(IP_HMAC_KEY, reason::KEY_TOO_SHORT))?;
                IpRule::Hmac(pseudonymizer)
            }
            Some("drop") => IpRule::Drop,
            Some("keep") => IpRule::Keep,
            Some(_) => return Err(invalid(IP, reason::IP_VALUES)),
        };
        if key.is_some() {
            return Err(invalid(IP_HMAC_KEY, reason::KEY_UNUSED));
        }
        let user_agent = match user_agent.as_deref() {
            None | Some("coarse") => UserAgentRule::Coarse,
            Some("drop") => UserAgentRule::Drop,
            Some("keep") => UserAgentRule::Keep,
            Some(_) => return Err(invalid(USER_AGENT, reason::USER_AGENT_VALUES)),
        };
        let max_retention = max_retention
            .as_deref()
            .map(duration::parse)
            .transpose()
            .map_err(|reason| invalid(MAX_RETENTION, reason))?;
        Ok((
            Settings {
                ip,
                user_agent,
                max_retention,
            },
            others,
        ))
    }
}

fn invalid(key: &str, reason: &str) -> SettingsError {
    SettingsError::InvalidSetting {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "correct-horse-battery-staple";

    /// Settings as given: `(key, value)` pairs.
    type Pairs = &'static [(&'static str, &'static str)];
    const HOUR: u64 = 3_600_000_000_000;

    fn parse(pairs: &[(&str, &str)]) -> Result<(Settings, Vec<Setting>), SettingsError> {
        Settings::parse(pairs.iter().map(|(k, v)| Setting::new(*k, *v)).collect())
    }

    /// `(ip, user-agent, max-retention)`, comparable.
    type Summary<S> = (S, UserAgentRule, Option<u64>);

    /// The settings as a [`Summary`].
    fn summary(s: &Settings) -> Summary<String> {
        (format!("{:?}", s.ip), s.user_agent, s.max_retention)
    }

    #[test]
    fn accepted_settings() {
        use UserAgentRule::*;
        let cases: &[(Pairs, Summary<&str>)] = &[
            (&[], ("Truncate", Coarse, None)),
            (&[("ip", "truncate")], ("Truncate", Coarse, None)),
            (&[("ip", "drop")], ("Drop", Coarse, None)),
            (&[("ip", "keep")], ("Keep", Coarse, None)),
            (
                &[("ip", "hmac"), ("ip-hmac-key", SECRET)],
                ("Hmac(..)", Coarse, None),
            ),
            (
                &[("ip-hmac-key", "0123456789abcdef"), ("ip", "hmac")],
                ("Hmac(..)", Coarse, None),
            ),
            (&[("user-agent", "coarse")], ("Truncate", Coarse, None)),
            (&[("user-agent", "drop")], ("Truncate", Drop, None)),
            (&[("user-agent", "keep")], ("Truncate", Keep, None)),
            (&[("max-retention", "1h")], ("Truncate", Coarse, Some(HOUR))),
            (
                &[
                    ("ip", "keep"),
                    ("user-agent", "keep"),
                    ("max-retention", "1d12h"),
                ],
                ("Keep", Keep, Some(36 * HOUR)),
            ),
        ];
        for (pairs, want) in cases {
            let (settings, others) = parse(pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e}"));
            let (ip, ua, retention) = summary(&settings);
            assert_eq!((ip.as_str(), ua, retention), *want, "{pairs:?}");
            assert!(others.is_empty());
        }
    }

    #[test]
    fn other_keys_are_passed_on_in_order() {
        let (settings, others) = parse(&[
            ("zeta", "1"),
            ("ip", "drop"),
            ("alpha", SECRET),
            ("zeta", "2"),
        ])
        .expect("valid");
        assert_eq!(format!("{:?}", settings.ip), "Drop");
        assert_eq!(
            others,
            [
                Setting::new("zeta", "1"),
                Setting::new("alpha", SECRET),
                Setting::new("zeta", "2")
            ]
        );
    }

    #[test]
    fn refused_settings_name_the_key_and_the_reason_but_never_the_value() {
        let max_retention_format = duration::FORMAT;
        let cases: &[(Pairs, &str, &str)] = &[
            (&[("ip", SECRET)], "ip", reason::IP_VALUES),
            (&[("ip", "TRUNCATE")], "ip", reason::IP_VALUES),
            (&[("ip", "")], "ip", reason::IP_VALUES),
            (&[("ip", " keep")], "ip", reason::IP_VALUES),
            (&[("ip", "drop"), ("ip", "drop")], "ip", reason::REPEATED),
            (&[("ip", "hmac")], "ip-hmac-key", reason::KEY_REQUIRED),
            (
                &[("ip", "hmac"), ("ip-hmac-key", "short-secret")],
                "ip-hmac-key",
                reason::KEY_TOO_SHORT,
            ),
            (
                &[("ip", "hmac"), ("ip-hmac-key", "")],
                "ip-hmac-key",
                reason::KEY_TOO_SHORT,
            ),
            (
                &[("ip-hmac-key", SECRET)],
                "ip-hmac-key",
                reason::KEY_UNUSED,
            ),
            (
                &[("ip", "keep"), ("ip-hmac-key", SECRET)],
                "ip-hmac-key",
                reason::KEY_UNUSED,
            ),
            (
                &[
                    ("ip", "hmac"),
                    ("ip-hmac-key", SECRET),
                    ("ip-hmac-key", SECRET),
                ],
                "ip-hmac-key",
                reason::REPEATED,
            ),
            (
                &[("user-agent", SECRET)],
                "user-agent",
                reason::USER_AGENT_VALUES,
            ),
            (
                &[("user-agent", "Coarse")],
                "user-agent",
                reason::USER_AGENT_VALUES,
            ),
            (
                &[("user-agent", "keep"), ("user-agent", "drop")],
                "user-agent",
                reason::REPEATED,
            ),
            (
                &[("max-retention", SECRET)],
                "max-retention",
                max_retention_format,
            ),
            (
                &[("max-retention", "0s")],
                "max-retention",
                max_retention_format,
            ),
            (
                &[("max-retention", "30")],
                "max-retention",
                max_retention_format,
            ),
            (
                &[("max-retention", "-1d")],
                "max-retention",
                max_retention_format,
            ),
            (
                &[("max-retention", "999999d")],
                "max-retention",
                duration::TOO_LONG,
            ),
            (
                &[("max-retention", "1d"), ("max-retention", "2d")],
                "max-retention",
                reason::REPEATED,
            ),
            // A repeat is reported before anything else is judged.
            (&[("ip", SECRET), ("ip", "keep")], "ip", reason::REPEATED),
        ];
        for (pairs, key, reason) in cases {
            let error = parse(pairs).map(|_| ()).expect_err("refused");
            assert_eq!(
                error,
                SettingsError::InvalidSetting {
                    key: key.to_string(),
                    reason: reason.to_string()
                },
                "{pairs:?}"
            );
            // Values that could not appear in any message unless quoted.
            let distinctive = [
                SECRET,
                "short-secret",
                "TRUNCATE",
                "Coarse",
                "999999d",
                "-1d",
            ];
            for (_, value) in pairs.iter().filter(|(_, v)| distinctive.contains(v)) {
                for shown in [error.to_string(), format!("{error:?}")] {
                    assert!(!shown.contains(value), "{shown} quotes {value}");
                }
            }
        }
    }

    #[test]
    fn the_reasons_name_the_accepted_values() {
        for value in ["truncate", "hmac", "drop", "keep"] {
            assert!(reason::IP_VALUES.contains(value));
        }
        for value in ["coarse", "drop", "keep"] {
            assert!(reason::USER_AGENT_VALUES.contains(value));
        }
    }
}
