//! Small pieces of Go's standard library that the output formats must match byte for byte:
//! `encoding/json` string escaping, slog's human value quoting (on top of `strconv.Quote`,
//! in [`connlog_vocabulary::gostr`]), and the string forms of IP addresses (`net.IP.String`,
//! `netip.Addr.String`).

use core::fmt::Write;
use core::net::IpAddr;

use connlog_vocabulary::gostr::strconv_quote;

/// Appends `s` as a JSON string the way Go's `encoding/json` writes it with HTML escaping on
/// (the default of `json.Marshal`, and what Coder's `httpapi.Write` uses): `<`, `>`, `&`,
/// U+2028 and U+2029 become `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`; control
/// characters use `\b \f \n \r \t` (Go 1.22+) or `\u00XX`.
///
/// Text that needs no escape is copied a run at a time, not a character at a time.
pub fn push_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let (mut run, mut i) = (0, 0);
    while i < bytes.len() {
        // Every escaped character is ASCII, or U+2028/U+2029 (E2 80 A8/A9 in UTF-8): `i` is
        // on a character boundary whenever it finds one.
        let width = match bytes[i] {
            b'"' | b'\\' | b'<' | b'>' | b'&' | 0..=0x1f => 1,
            0xE2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                3
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&s[run..i]);
        match bytes[i] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                let c = s[i..].chars().next().unwrap_or_default();
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        i += width;
        run = i;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_str(&mut out, s);
    out
}

/// slog's human sink (`entryhuman.quote`): `""` for the empty string; the value itself when
/// it has no white space and `strconv.Quote` would not change it; else `strconv.Quote`.
pub fn slog_quote(s: &str) -> String {
    if s.is_empty() {
        return "\"\"".to_string();
    }
    let quoted = strconv_quote(s);
    let has_space = s.chars().any(char::is_whitespace);
    if !has_space && quoted[1..quoted.len() - 1] == *s {
        s.to_string()
    } else {
        quoted
    }
}

/// Go's `net.IP.String()` of a parsed address (what Coder's slog exporter writes for `Ip`):
/// an IPv4-mapped IPv6 address prints as dotted quad. `None` when `ip` does not parse.
pub fn net_ip_string(ip: &str) -> Option<String> {
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(v4.to_string()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Some(v4.to_string()),
            None => Some(v6.to_string()),
        },
    }
}

/// Go's `netip.Addr.String()` (what the API writes for `ip`): IPv4-mapped IPv6 stays
/// `::ffff:a.b.c.d`. `None` when `ip` does not parse.
pub fn netip_string(ip: &str) -> Option<String> {
    Some(ip.parse::<IpAddr>().ok()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_as_go_does() {
        assert_eq!(json_str("<nil>"), r#""\u003cnil\u003e""#);
        assert_eq!(json_str("a&b"), r#""a\u0026b""#);
        assert_eq!(json_str("q\"\\"), r#""q\"\\""#);
        assert_eq!(
            json_str("\n\r\t\u{8}\u{c}\u{1}\u{1f}"),
            r#""\n\r\t\b\f\u0001\u001f""#
        );
        assert_eq!(json_str("\u{2028}\u{2029}"), r#""\u2028\u2029""#);
        assert_eq!(json_str("é日本\u{7f}"), "\"é日本\u{7f}\"");
    }

    /// Go's escaping, one character at a time: what the run-copying version must equal.
    fn json_str_by_char(s: &str) -> String {
        let mut out = String::from('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    proptest::proptest! {
        #[test]
        fn escaping_runs_equals_escaping_each_character(
            s in "([a-z<>&\"\\\\\u{0}-\u{1f}\u{7f}é\u{2027}-\u{202a}日]|\\PC){0,24}"
        ) {
            proptest::prop_assert_eq!(json_str(&s), json_str_by_char(&s));
        }
    }

    #[test]
    fn slog_quoting() {
        assert_eq!(slog_quote(""), r#""""#);
        assert_eq!(slog_quote("dev"), "dev");
        assert_eq!(slog_quote("code-server"), "code-server");
        assert_eq!(slog_quote("<nil>"), "<nil>");
        assert_eq!(slog_quote("a b"), r#""a b""#);
        assert_eq!(slog_quote("tab\there"), r#""tab\there""#);
        assert_eq!(slog_quote("nbsp\u{a0}"), r#""nbsp\u00a0""#);
        assert_eq!(slog_quote("q\"x"), r#""q\"x""#);
        assert_eq!(slog_quote("日本"), "日本");
    }

    #[test]
    fn ip_strings() {
        assert_eq!(net_ip_string("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(
            net_ip_string("::ffff:10.0.0.1").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            netip_string("::ffff:10.0.0.1").as_deref(),
            Some("::ffff:10.0.0.1")
        );
        assert_eq!(
            net_ip_string("FD7A:115C:A1E0:4B86:9046:080E:6C70:33B7").as_deref(),
            Some("fd7a:115c:a1e0:4b86:9046:80e:6c70:33b7")
        );
        assert_eq!(
            net_ip_string("2001:db8:0:0:1:0:0:1").as_deref(),
            Some("2001:db8::1:0:0:1")
        );
        assert_eq!(
            net_ip_string("2001:db8:0:1:1:1:1:1").as_deref(),
            Some("2001:db8:0:1:1:1:1:1")
        );
        assert_eq!(net_ip_string("not an ip"), None);
        assert_eq!(netip_string("1.2.3.4:80"), None);
    }
}
