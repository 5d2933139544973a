//! What is kept of a client IP: its network (`truncate`), a keyed pseudonym (`hmac`),
//! nothing (`drop`), or all of it (`keep`).
//!
//! Every rule but `keep` first canonicalises the address exactly as the reference plugin
//! does ([`canonical_ip`]: `localhost` is `127.0.0.1`, Go's `net.ParseIP` grammar,
//! IPv4-mapped IPv6 printed as IPv4), so that one client is treated the same however it was
//! spelt, and text that is not an address becomes absent, as it would in the reference.
//! Every result is again an address in that canonical text, which Coder's API accepts as
//! an `inet`.

use std::net::{Ipv4Addr, Ipv6Addr};

use connlog_reference::validate::canonical_ip;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest `ip-hmac-key` accepted, in bytes.
pub const MIN_HMAC_KEY_BYTES: usize = 16;

/// What is kept of a client IP.
#[derive(Clone)]
pub enum IpRule {
    /// IPv4 to its /24 (`a.b.c.0`), IPv6 to its /48 (the first three groups).
    Truncate,
    /// A pseudonym in `fd00::/8`, keyed: stable for one key, not reversible without it.
    Hmac(Pseudonymizer),
    /// No IP.
    Drop,
    /// The IP as sent, as Coder keeps it.
    Keep,
}

impl IpRule {
    /// The IP to store for `raw`, an event's IP as sent.
    pub fn apply(&self, raw: Option<String>) -> Option<String> {
        match self {
            IpRule::Keep => raw,
            IpRule::Drop => None,
            IpRule::Truncate => truncate(&canonical_ip(raw.as_deref()?)?),
            IpRule::Hmac(pseudonymizer) => {
                Some(pseudonymizer.pseudonym(&canonical_ip(raw.as_deref()?)?))
            }
        }
    }
}

impl core::fmt::Debug for IpRule {
    /// Never prints the key.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            IpRule::Truncate => "Truncate",
            IpRule::Hmac(_) => "Hmac(..)",
            IpRule::Drop => "Drop",
            IpRule::Keep => "Keep",
        })
    }
}

/// The network of a canonical address: IPv4 to its /24, IPv6 to its /48, in canonical
/// text. `None` if `canonical` is not an address.
pub fn truncate(canonical: &str) -> Option<String> {
    if let Ok(v4) = canonical.parse::<Ipv4Addr>() {
        let [a, b, c, _] = v4.octets();
        return Some(Ipv4Addr::new(a, b, c, 0).to_string());
    }
    let v6 = canonical.parse::<Ipv6Addr>().ok()?;
    let [g0, g1, g2, ..] = v6.segments();
    canonical_ip(&Ipv6Addr::new(g0, g1, g2, 0, 0, 0, 0, 0).to_string())
}

/// HMAC-SHA256 of a canonical address under the operator's key, rendered as an address in
/// the unique-local range: `fd` and the first 15 bytes of the MAC.
#[derive(Clone)]
pub struct Pseudonymizer {
    /// The MAC with the key already absorbed; cloned for each address.
    keyed: Hmac<Sha256>,
}

impl Pseudonymizer {
    /// `None` if the key is shorter than [`MIN_HMAC_KEY_BYTES`].
    pub fn new(key: &[u8]) -> Option<Self> {
        if key.len() < MIN_HMAC_KEY_BYTES {
            return None;
        }
        let keyed = Hmac::<Sha256>::new_from_slice(key).ok()?;
        Some(Self { keyed })
    }

    /// The pseudonym of `canonical`, an address in canonical text.
    pub fn pseudonym(&self, canonical: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(canonical.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut octets = [0u8; 16];
        octets[0] = 0xfd;
        octets[1..].copy_from_slice(&digest[..15]);
        let address = Ipv6Addr::from(octets).to_string();
        // Go's canonical text of a unique-local address; `to_string` already parses.
        canonical_ip(&address).unwrap_or(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef-a-test-key";
    const OTHER_KEY: &[u8] = b"another key of 16+ bytes";

    fn truncated(raw: &str) -> Option<String> {
        IpRule::Truncate.apply(Some(raw.to_string()))
    }

    #[test]
    fn truncation_keeps_the_network() {
        let cases: &[(&str, Option<&str>)] = &[
            // IPv4 to its /24.
            ("203.0.113.77", Some("203.0.113.0")),
            ("10.1.2.3", Some("10.1.2.0")),
            ("192.168.0.0", Some("192.168.0.0")),
            ("255.255.255.255", Some("255.255.255.0")),
            ("0.0.0.0", Some("0.0.0.0")),
            ("127.0.0.1", Some("127.0.0.0")),
            ("localhost", Some("127.0.0.0")),
            // IPv4-mapped IPv6 is IPv4.
            ("::ffff:203.0.113.77", Some("203.0.113.0")),
            ("::ffff:cb00:714d", Some("203.0.113.0")),
            ("0:0:0:0:0:ffff:10.9.8.7", Some("10.9.8.0")),
            // IPv6 to its /48.
            ("2001:db8:abcd:12::1", Some("2001:db8:abcd::")),
            (
                "2001:0DB8:ABCD:0012:0000:0000:0000:0001",
                Some("2001:db8:abcd::"),
            ),
            ("fd7a:115c:a1e0::1", Some("fd7a:115c:a1e0::")),
            (
                "fd7a:115c:a1e0:ab12:4843:cd96:626b:430b",
                Some("fd7a:115c:a1e0::"),
            ),
            ("2001:db8::1", Some("2001:db8::")),
            ("2001::1", Some("2001::")),
            ("::1", Some("::")),
            ("::", Some("::")),
            ("fe80::1:2:3:4", Some("fe80::")),
            ("2001:db8:0:1::", Some("2001:db8::")),
            ("64:ff9b::192.0.2.33", Some("64:ff9b::")),
            // Not an address: absent, as in the reference.
            ("", None),
            ("not an ip", None),
            ("203.0.113.77:443", None),
            ("[2001:db8::1]", None),
            ("fe80::1%eth0", None),
            ("10.0.0.1/8", None),
            ("010.1.2.3", None),
            ("1.2.3", None),
            ("LOCALHOST", None),
            ("2001:db8::1::2", None),
        ];
        for (raw, want) in cases {
            assert_eq!(truncated(raw).as_deref(), *want, "{raw:?}");
        }
        assert_eq!(IpRule::Truncate.apply(None), None);
    }

    #[test]
    fn truncation_results_are_canonical_and_stable() {
        for raw in [
            "203.0.113.77",
            "2001:db8:abcd:12::1",
            "::ffff:1.2.3.4",
            "::1",
        ] {
            let once = truncated(raw).expect("an address");
            assert_eq!(canonical_ip(&once).as_deref(), Some(once.as_str()));
            assert_eq!(truncated(&once).as_deref(), Some(once.as_str()), "{raw}");
        }
    }

    #[test]
    fn keep_and_drop() {
        for raw in [
            None,
            Some(""),
            Some("203.0.113.77"),
            Some("garbage"),
            Some("localhost"),
        ] {
            let raw = raw.map(str::to_string);
            assert_eq!(IpRule::Keep.apply(raw.clone()), raw);
            assert_eq!(IpRule::Drop.apply(raw), None);
        }
    }

    fn pseudonym(key: &[u8], raw: &str) -> Option<String> {
        IpRule::Hmac(Pseudonymizer::new(key).expect("a long enough key")).apply(Some(raw.into()))
    }

    #[test]
    fn pseudonyms_are_stable_per_key_and_differ_across_keys() {
        let addresses = [
            "203.0.113.77",
            "203.0.113.78",
            "10.0.0.1",
            "2001:db8::1",
            "fd7a:115c:a1e0::1",
            "::1",
        ];
        let mut seen = std::collections::HashSet::new();
        for raw in addresses {
            let a = pseudonym(KEY, raw).expect("an address");
            assert_eq!(pseudonym(KEY, raw), Some(a.clone()), "stable: {raw}");
            let b = pseudonym(OTHER_KEY, raw).expect("an address");
            assert_ne!(a, b, "another key, another pseudonym: {raw}");
            assert!(seen.insert(a), "distinct addresses, distinct pseudonyms");
        }
    }

    #[test]
    fn one_client_however_spelt_has_one_pseudonym() {
        let spellings: &[&[&str]] = &[
            &["127.0.0.1", "localhost", "::ffff:127.0.0.1"],
            &["2001:db8::1", "2001:DB8:0:0:0:0:0:1", "2001:0db8::0001"],
        ];
        for same in spellings {
            let first = pseudonym(KEY, same[0]);
            for raw in &same[1..] {
                assert_eq!(pseudonym(KEY, raw), first, "{raw}");
            }
        }
    }

    #[test]
    fn pseudonyms_are_canonical_unique_local_addresses_without_the_raw_address() {
        for raw in ["203.0.113.77", "2001:db8::1", "::1", "localhost", "1.1.1.1"] {
            let p = pseudonym(KEY, raw).expect("an address");
            let v6: Ipv6Addr = p.parse().expect("IPv6 text");
            assert_eq!(v6.octets()[0], 0xfd, "{p} is in fd00::/8");
            assert_eq!(canonical_ip(&p).as_deref(), Some(p.as_str()), "canonical");
            assert!(!p.contains(raw), "{p} contains {raw}");
            let canonical = canonical_ip(raw).expect("an address");
            assert!(!p.contains(&canonical), "{p} contains {canonical}");
        }
    }

    #[test]
    fn a_pseudonym_is_the_documented_hmac() {
        // RFC 4231 test case 2's key is too short for us; this pins the construction:
        // fd, then the first 15 bytes of HMAC-SHA256(key, canonical text).
        let mut mac = Hmac::<Sha256>::new_from_slice(KEY).expect("any key length");
        mac.update(b"203.0.113.77");
        let digest = mac.finalize().into_bytes();
        let mut octets = [0xfd; 16];
        octets[1..].copy_from_slice(&digest[..15]);
        let want = Ipv6Addr::from(octets);
        let got: Ipv6Addr = pseudonym(KEY, "203.0.113.77").unwrap().parse().unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn pseudonyms_of_non_addresses_are_absent() {
        for raw in ["", "garbage", "1.2.3.4:80", "LOCALHOST"] {
            assert_eq!(pseudonym(KEY, raw), None, "{raw:?}");
        }
        let rule = IpRule::Hmac(Pseudonymizer::new(KEY).unwrap());
        assert_eq!(rule.apply(None), None);
    }

    #[test]
    fn short_keys_are_refused_and_debug_hides_the_key() {
        assert!(Pseudonymizer::new(b"").is_none());
        assert!(Pseudonymizer::new(&[7; MIN_HMAC_KEY_BYTES - 1]).is_none());
        assert!(Pseudonymizer::new(&[7; MIN_HMAC_KEY_BYTES]).is_some());
        let rule = IpRule::Hmac(Pseudonymizer::new(KEY).unwrap());
        assert_eq!(format!("{rule:?}"), "Hmac(..)");
    }
}
