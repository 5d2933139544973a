//! Durations as Coder's retention settings take them: Go's `time.ParseDuration` grammar plus
//! the units `d` (24h) and `w` (7d), e.g. `30d`, `1h30m`, `1.5h`, `2w`, `500ms`, `0`.
//!
//! The parser follows Go's algorithm step by step (including how it rounds fractions and where
//! it reports overflow), so that any value Coder accepts is accepted here with the same
//! result, and errors read as Go's do: `time: invalid duration "x"`,
//! `time: missing unit in duration "10"`, `time: unknown unit "y" in duration "10y"`.
//!
//! One deliberate difference: a negative duration is refused, since a retention cannot be
//! negative. `-0` is still 0, as in Go.

use std::fmt;

pub const NANOSECOND: u64 = 1;
pub const MICROSECOND: u64 = 1_000;
pub const MILLISECOND: u64 = 1_000_000;
pub const SECOND: u64 = 1_000_000_000;
pub const MINUTE: u64 = 60 * SECOND;
pub const HOUR: u64 = 60 * MINUTE;
pub const DAY: u64 = 24 * HOUR;
pub const WEEK: u64 = 7 * DAY;

/// The longest duration Go can hold: `i64::MAX` nanoseconds (about 292 years).
pub const MAX: u64 = i64::MAX as u64;

/// Why a duration was refused. `Display` gives Go's wording.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Bad syntax or a value past [`MAX`].
    #[error("time: invalid duration {}", go_quote(.input))]
    Invalid { input: String },
    #[error("time: missing unit in duration {}", go_quote(.input))]
    MissingUnit { input: String },
    #[error("time: unknown unit {} in duration {}", go_quote(.unit), go_quote(.input))]
    UnknownUnit { unit: String, input: String },
    #[error("negative duration {}: a retention cannot be negative", go_quote(.input))]
    Negative { input: String },
}

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => NANOSECOND,
        // U+00B5 (micro sign) and U+03BC (Greek mu), as Go accepts both.
        "us" | "\u{b5}s" | "\u{3bc}s" => MICROSECOND,
        "ms" => MILLISECOND,
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        "w" => WEEK,
        _ => return None,
    })
}

/// Parses a duration into nanoseconds. See the module documentation for the grammar.
pub fn parse_duration(input: &str) -> Result<u64, DurationError> {
    let invalid = || DurationError::Invalid {
        input: input.to_owned(),
    };
    let mut s = input.as_bytes();
    let mut negative = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        negative = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    // Go accumulates in a uint64 and allows up to 1<<63 (for the negative extreme).
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        // The next character must be [0-9.].
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let before = s.len();
        let (mut v, rest) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        let pre = before != s.len();
        // Fraction.
        let mut post = false;
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            let (frac, sc, rest) = leading_fraction(s);
            f = frac;
            scale = sc;
            s = rest;
            post = before != s.len();
        }
        if !pre && !post {
            // No digits (e.g. ".s").
            return Err(invalid());
        }
        // Unit: everything up to the next [0-9.].
        let i = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if i == 0 {
            return Err(DurationError::MissingUnit {
                input: input.to_owned(),
            });
        }
        let unit_bytes = &s[..i];
        s = &s[i..];
        // The unit ends at an ASCII byte or the end, so it is a whole UTF-8 sequence.
        let unit_str = std::str::from_utf8(unit_bytes).unwrap_or_default();
        let unit = unit_nanos(unit_str).ok_or_else(|| DurationError::UnknownUnit {
            unit: String::from_utf8_lossy(unit_bytes).into_owned(),
            input: input.to_owned(),
        })?;
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            // Go: v += uint64(float64(f) * (float64(unit) / scale)).
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total += v;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        return Err(DurationError::Negative {
            input: input.to_owned(),
        });
    }
    if total > MAX {
        return Err(invalid());
    }
    Ok(total)
}

/// Go's `leadingInt`: the leading digits, or `None` on overflow.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > (1 << 63) / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > 1 << 63 {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// Go's `leadingFraction`: digits after the point, as a value and its scale; digits past what
/// fits are consumed and dropped.
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let mut x: u64 = 0;
    let mut scale = 1.0;
    let mut overflow = false;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if !overflow {
            if x > (1 << 63) / 10 {
                overflow = true;
            } else {
                let y = x * 10 + u64::from(s[i] - b'0');
                if y > 1 << 63 {
                    overflow = true;
                } else {
                    x = y;
                    scale *= 10.0;
                }
            }
        }
        i += 1;
    }
    (x, scale, &s[i..])
}

/// Go's `time.quote`: double quotes, `"` and `\` escaped, bytes of non-ASCII or control
/// characters as `\xNN`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if !c.is_ascii() || (c as u32) < 0x20 {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// A compact form that [`parse_duration`] reads back to the same value, for messages:
/// `0`, `30d`, `1h30m`, `1d12h`, `1m30s`, `1s500ms`, `1us`. Weeks are written as days
/// (`14d`), the unit operators think in for retention.
pub fn format_duration(nanos: u64) -> String {
    if nanos == 0 {
        return "0".to_owned();
    }
    let mut out = String::new();
    let mut rest = nanos;
    for (unit, name) in [
        (DAY, "d"),
        (HOUR, "h"),
        (MINUTE, "m"),
        (SECOND, "s"),
        (MILLISECOND, "ms"),
        (MICROSECOND, "us"),
        (NANOSECOND, "ns"),
    ] {
        let n = rest / unit;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(name);
            rest -= n * unit;
        }
    }
    out
}

/// Go's `time.Duration.String()`: `720h0m0s`, `1.5s`, `500ms`, `0s`.
pub fn go_duration_string(nanos: u64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < SECOND {
        let (unit, name) = if nanos < MICROSECOND {
            (NANOSECOND, "ns")
        } else if nanos < MILLISECOND {
            (MICROSECOND, "\u{b5}s")
        } else {
            (MILLISECOND, "ms")
        };
        return format!("{}{name}", fixed_point(nanos, unit));
    }
    let hours = nanos / HOUR;
    let minutes = (nanos % HOUR) / MINUTE;
    let seconds = fixed_point(nanos % MINUTE, SECOND);
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// `value / unit` with the fraction's trailing zeros dropped.
fn fixed_point(value: u64, unit: u64) -> String {
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A parsed retention, kept with the text it came from for messages.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Retention(pub u64);

impl Retention {
    /// `0` keeps everything forever.
    pub fn is_forever(self) -> bool {
        self.0 == 0
    }
    pub fn nanos(self) -> u64 {
        self.0
    }
}

impl std::str::FromStr for Retention {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(Retention)
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_and_coder_examples() {
        let table: &[(&str, u64)] = &[
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("0s", 0),
            ("0d", 0),
            ("30d", 30 * DAY),
            ("60d", 60 * DAY),
            ("365d", 365 * DAY),
            ("1h30m", HOUR + 30 * MINUTE),
            ("1.5h", HOUR + 30 * MINUTE),
            ("90m", 90 * MINUTE),
            ("2w", 14 * DAY),
            ("1w2d", 9 * DAY),
            ("500ms", 500 * MILLISECOND),
            ("1us", MICROSECOND),
            ("1\u{b5}s", MICROSECOND),
            ("1\u{3bc}s", MICROSECOND),
            ("1ns", 1),
            ("+5s", 5 * SECOND),
            (".5s", 500 * MILLISECOND),
            ("5.s", 5 * SECOND),
            ("1.004s", 1_004 * MILLISECOND),
            ("100.00100s", 100 * SECOND + MILLISECOND),
            (
                "1h1m1s1ms1us1ns",
                HOUR + MINUTE + SECOND + MILLISECOND + MICROSECOND + 1,
            ),
            ("3h3h", 6 * HOUR),
            ("0.3333333333333333333h", 20 * MINUTE),
            ("9223372036854775807ns", MAX),
            ("9223372036.854775807s", MAX),
            ("2562047h47m16.854775807s", MAX),
            ("0.100000000000000000000h", 6 * MINUTE),
            ("1.5d", 36 * HOUR),
        ];
        for &(input, want) in table {
            assert_eq!(parse_duration(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn errors_read_as_go_phrases_them() {
        let table: &[(&str, &str)] = &[
            ("", r#"time: invalid duration """#),
            ("x", r#"time: invalid duration "x""#),
            ("3", r#"time: missing unit in duration "3""#),
            ("10", r#"time: missing unit in duration "10""#),
            ("10y", r#"time: unknown unit "y" in duration "10y""#),
            ("1d2x3h", r#"time: unknown unit "x" in duration "1d2x3h""#),
            ("-", r#"time: invalid duration "-""#),
            ("s", r#"time: invalid duration "s""#),
            (".", r#"time: invalid duration ".""#),
            ("-.", r#"time: invalid duration "-.""#),
            (".s", r#"time: invalid duration ".s""#),
            ("+.s", r#"time: invalid duration "+.s""#),
            ("1 h", r#"time: unknown unit " h" in duration "1 h""#),
            (" 1h", r#"time: invalid duration " 1h""#),
            ("30D", r#"time: unknown unit "D" in duration "30D""#),
            (
                "3\u{e9}s",
                r#"time: unknown unit "\xc3\xa9s" in duration "3\xc3\xa9s""#,
            ),
            (
                "9223372036854775808ns",
                r#"time: invalid duration "9223372036854775808ns""#,
            ),
            (
                "9223372036854775.808us",
                r#"time: invalid duration "9223372036854775.808us""#,
            ),
            ("106752d", r#"time: invalid duration "106752d""#),
            (
                "99999999999999999999h",
                r#"time: invalid duration "99999999999999999999h""#,
            ),
            (
                "-1h",
                r#"negative duration "-1h": a retention cannot be negative"#,
            ),
            (
                "-30d",
                r#"negative duration "-30d": a retention cannot be negative"#,
            ),
            ("\"1h\"", r#"time: invalid duration "\"1h\"""#),
        ];
        for &(input, want) in table {
            let err = parse_duration(input).expect_err(input);
            assert_eq!(err.to_string(), want, "{input}");
        }
    }

    #[test]
    fn format_round_trips() {
        let table: &[(u64, &str)] = &[
            (0, "0"),
            (30 * DAY, "30d"),
            (14 * DAY, "14d"),
            (HOUR + 30 * MINUTE, "1h30m"),
            (36 * HOUR, "1d12h"),
            (90 * SECOND, "1m30s"),
            (1_500 * MILLISECOND, "1s500ms"),
            (MICROSECOND, "1us"),
            (1, "1ns"),
            (MAX, "106751d23h47m16s854ms775us807ns"),
        ];
        for &(nanos, want) in table {
            assert_eq!(format_duration(nanos), want);
            assert_eq!(parse_duration(want), Ok(nanos));
        }
    }

    #[test]
    fn go_string_matches_go() {
        let table: &[(u64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1\u{b5}s"),
            (2_200 * MICROSECOND, "2.2ms"),
            (3_300 * MILLISECOND, "3.3s"),
            (4 * MINUTE + 5 * SECOND, "4m5s"),
            (4 * MINUTE + 5_001 * MILLISECOND, "4m5.001s"),
            (5 * HOUR + 6 * MINUTE + 7_001 * MILLISECOND, "5h6m7.001s"),
            (8 * MINUTE + 1, "8m0.000000001s"),
            (30 * DAY, "720h0m0s"),
            (MAX, "2562047h47m16.854775807s"),
        ];
        for &(nanos, want) in table {
            assert_eq!(go_duration_string(nanos), want);
        }
    }

    #[test]
    fn retention_from_str() {
        let r: Retention = "30d".parse().unwrap();
        assert_eq!(r.nanos(), 30 * DAY);
        assert!(!r.is_forever());
        assert!("0".parse::<Retention>().unwrap().is_forever());
        assert_eq!(r.to_string(), "30d");
    }
}
