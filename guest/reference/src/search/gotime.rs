//! Go's `time.Parse(time.RFC3339Nano, value)`, with Go's exact error texts.
//!
//! `time.Parse` first tries a strict RFC 3339 fast path and, when that fails, runs its general
//! layout parser, whose result (or error) is what the caller sees. The general parser accepts
//! everything the fast path accepts, with the same result, so this is a port of the general
//! parser specialised to the one layout `2006-01-02T15:04:05.999999999Z07:00`:
//!
//! | chunk | rule |
//! |---|---|
//! | `2006` | four bytes, the first a digit, all digits |
//! | `01`, `02`, `04`, `05` | exactly two digits |
//! | `15` | one or two digits |
//! | `.999999999` | optional: `.` or `,` then any number of digits, truncated to nanoseconds |
//! | `Z07:00` | `Z`, or a sign, two digits, `:`, two digits; hours up to 24, minutes up to 60 |
//!
//! Month, hour, minute and second are range-checked as they are read; the day is checked
//! against the month at the end. Go works on bytes, so does this.

use connlog_vocabulary::gostr::time_quote;

/// `time.RFC3339Nano`.
pub(crate) const RFC3339_NANO: &str = "2006-01-02T15:04:05.999999999Z07:00";

/// An instant as Go's `time.Time` holds it after `.UTC()`: seconds since the Unix epoch (any
/// year from 0000 to 9999, so beyond what an `i64` of nanoseconds holds) and nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GoInstant {
    pub unix_seconds: i64,
    pub nanos: u32,
}

/// Seconds from 0001-01-01T00:00:00Z, Go's zero `time.Time`, to the Unix epoch.
const ZERO_TIME_UNIX_SECONDS: i64 = -62_135_596_800;

impl GoInstant {
    /// Go's `Time.IsZero` on a UTC time: the instant 0001-01-01T00:00:00Z, which Coder's SQL
    /// treats as "no bound".
    pub(crate) fn is_zero(self) -> bool {
        self.unix_seconds == ZERO_TIME_UNIX_SECONDS && self.nanos == 0
    }

    /// Nanoseconds since the Unix epoch, saturated at the ends of `i64` (years before 1677 or
    /// after 2262). Every stored time lies inside that range, so comparisons are unchanged.
    pub(crate) fn unix_nanos_saturating(self) -> i64 {
        let nanos = i128::from(self.unix_seconds) * 1_000_000_000 + i128::from(self.nanos);
        nanos.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

/// Parses `value` with the layout [`RFC3339_NANO`]. The error is Go's `ParseError.Error()`.
pub(crate) fn parse_rfc3339_nano(value: &str) -> Result<GoInstant, String> {
    Parser {
        whole: value.as_bytes(),
    }
    .parse()
}

struct Parser<'a> {
    whole: &'a [u8],
}

/// What went wrong, before it is turned into Go's text.
enum Failure<'a> {
    /// `cannot parse <value_elem> as <layout_elem>`.
    Cannot {
        layout_elem: &'static str,
        value_elem: &'a [u8],
    },
    /// A message appended to `parsing time "<value>"`.
    Message(String),
}

impl<'a> Parser<'a> {
    fn parse(&self) -> Result<GoInstant, String> {
        self.parse_parts().map_err(|failure| self.render(failure))
    }

    fn render(&self, failure: Failure<'_>) -> String {
        match failure {
            Failure::Cannot {
                layout_elem,
                value_elem,
            } => format!(
                "parsing time {} as {}: cannot parse {} as {}",
                time_quote(self.whole),
                time_quote(RFC3339_NANO.as_bytes()),
                time_quote(value_elem),
                time_quote(layout_elem.as_bytes()),
            ),
            Failure::Message(message) => {
                format!("parsing time {}{}", time_quote(self.whole), message)
            }
        }
    }

    fn parse_parts(&self) -> Result<GoInstant, Failure<'a>> {
        let mut v: &'a [u8] = self.whole;

        // "2006"
        let hold = v;
        if v.len() < 4 || !is_digit(v, 0) {
            return Err(cannot("2006", hold));
        }
        let year = atoi(&v[..4]).ok_or(cannot("2006", hold))?;
        v = &v[4..];

        v = skip(v, b'-')?;

        // "01"
        let hold = v;
        let (month, rest) = getnum(v, true).ok_or(cannot("01", hold))?;
        v = rest;
        if !(1..=12).contains(&month) {
            return Err(out_of_range("month"));
        }

        v = skip(v, b'-')?;

        // "02": any two digits here; checked against the month at the end.
        let hold = v;
        let (day, rest) = getnum(v, true).ok_or(cannot("02", hold))?;
        v = rest;

        v = skip(v, b'T')?;

        // "15"
        let hold = v;
        let (hour, rest) = getnum(v, false).ok_or(cannot("15", hold))?;
        v = rest;
        if hour >= 24 {
            return Err(out_of_range("hour"));
        }

        v = skip(v, b':')?;

        // "04"
        let hold = v;
        let (minute, rest) = getnum(v, true).ok_or(cannot("04", hold))?;
        v = rest;
        if minute >= 60 {
            return Err(out_of_range("minute"));
        }

        v = skip(v, b':')?;

        // "05"
        let hold = v;
        let (second, rest) = getnum(v, true).ok_or(cannot("05", hold))?;
        v = rest;
        if second >= 60 {
            return Err(out_of_range("second"));
        }

        // ".999999999": optional, any number of digits, after `.` or `,`.
        let mut nanos = 0u32;
        if v.len() >= 2 && (v[0] == b'.' || v[0] == b',') && is_digit(v, 1) {
            let mut digits = 1;
            while is_digit(v, 1 + digits) {
                digits += 1;
            }
            // Go keeps the first nine digits and scales them to nanoseconds.
            let kept = digits.min(9);
            let mut value = 0u32;
            for &d in &v[1..=kept] {
                value = value * 10 + u32::from(d - b'0');
            }
            nanos = value * 10u32.pow((9 - kept) as u32);
            v = &v[1 + digits..];
        }

        // "Z07:00"
        let offset_seconds: i64;
        if v.first() == Some(&b'Z') {
            v = &v[1..];
            offset_seconds = 0;
        } else {
            let hold = v;
            if v.len() < 6 || v[3] != b':' {
                return Err(cannot("Z07:00", hold));
            }
            let (sign, hh, mm) = (v[0], &v[1..3], &v[4..6]);
            v = &v[6..];
            // Go parses hours, then minutes, keeping 0 for what it did not reach, checks the
            // ranges, and only then looks at the sign.
            let hours = getnum(hh, true).map(|(n, _)| n);
            let minutes = hours.and_then(|_| getnum(mm, true).map(|(n, _)| n));
            let (hr, min) = (hours.unwrap_or(0), minutes.unwrap_or(0));
            let mut range_error = None;
            if hr > 24 {
                range_error = Some("time zone offset hour");
            }
            if min > 60 {
                range_error = Some("time zone offset minute");
            }
            if let Some(what) = range_error {
                return Err(out_of_range(what));
            }
            if hours.is_none() || minutes.is_none() {
                return Err(cannot("Z07:00", hold));
            }
            let magnitude = i64::from((hr * 60 + min) * 60);
            offset_seconds = match sign {
                b'+' => magnitude,
                b'-' => -magnitude,
                _ => return Err(cannot("Z07:00", hold)),
            };
        }

        if !v.is_empty() {
            return Err(Failure::Message(format!(": extra text: {}", time_quote(v))));
        }
        if day < 1 || day > days_in(month, year) {
            return Err(Failure::Message(": day out of range".to_string()));
        }

        let days = days_from_civil(i64::from(year), month, day);
        let unix_seconds =
            days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_seconds;
        Ok(GoInstant {
            unix_seconds,
            nanos,
        })
    }
}

fn cannot<'a>(layout_elem: &'static str, value_elem: &'a [u8]) -> Failure<'a> {
    Failure::Cannot {
        layout_elem,
        value_elem,
    }
}

fn out_of_range<'a>(what: &str) -> Failure<'a> {
    Failure::Message(format!(": {what} out of range"))
}

/// Go's `skip` for a one-byte literal of the layout.
fn skip(v: &[u8], literal: u8) -> Result<&[u8], Failure<'_>> {
    match v.first() {
        Some(&b) if b == literal => Ok(&v[1..]),
        _ => Err(Failure::Cannot {
            layout_elem: literal_str(literal),
            value_elem: v,
        }),
    }
}

fn literal_str(literal: u8) -> &'static str {
    match literal {
        b'-' => "-",
        b'T' => "T",
        _ => ":",
    }
}

fn is_digit(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

/// Go's `getnum`: one or two digits (`fixed` demands two).
fn getnum(s: &[u8], fixed: bool) -> Option<(u32, &[u8])> {
    if !is_digit(s, 0) {
        return None;
    }
    if !is_digit(s, 1) {
        if fixed {
            return None;
        }
        return Some((u32::from(s[0] - b'0'), &s[1..]));
    }
    Some((
        u32::from(s[0] - b'0') * 10 + u32::from(s[1] - b'0'),
        &s[2..],
    ))
}

/// Go's `atoi` on the four year bytes, whose first byte is known to be a digit: all digits.
fn atoi(s: &[u8]) -> Option<u32> {
    s.iter().try_fold(0u32, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in(month: u32, year: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: &str = r#""2006-01-02T15:04:05.999999999Z07:00""#;

    fn ok(value: &str) -> (i64, u32) {
        let t = parse_rfc3339_nano(value).unwrap_or_else(|e| panic!("{value:?} must parse: {e}"));
        (t.unix_seconds, t.nanos)
    }

    fn cannot_text(value: &str, value_elem: &str, layout_elem: &str) -> String {
        format!(
            r#"parsing time "{value}" as {LAYOUT}: cannot parse "{value_elem}" as "{layout_elem}""#
        )
    }

    #[test]
    fn parses_valid_times() {
        // 2023-01-16T00:00:00Z
        assert_eq!(ok("2023-01-16T12:00:00+12:00"), (1_673_827_200, 0));
        assert_eq!(ok("2023-01-16T00:00:00Z"), (1_673_827_200, 0));
        assert_eq!(ok("2023-01-15T14:00:00-10:00"), (1_673_827_200, 0));
        assert_eq!(ok("1970-01-01T00:00:00Z"), (0, 0));
        assert_eq!(ok("1969-12-31T23:59:59.5Z"), (-1, 500_000_000));
        assert_eq!(
            ok("2023-01-01T00:00:00.123456789Z"),
            (1_672_531_200, 123_456_789)
        );
        // More than nine digits are truncated, not rounded; a comma works as well.
        assert_eq!(
            ok("2023-01-01T00:00:00.1234567899Z"),
            (1_672_531_200, 123_456_789)
        );
        assert_eq!(ok("2023-01-01T00:00:00,5Z"), (1_672_531_200, 500_000_000));
        // One-digit hours are accepted by Go's general parser.
        assert_eq!(ok("2023-01-01T1:00:00Z"), (1_672_534_800, 0));
        // Offsets of 24 hours and 60 minutes pass Go's range checks.
        assert_eq!(ok("2023-01-02T00:00:00+24:00"), (1_672_531_200, 0));
        assert_eq!(ok("2023-01-01T01:00:00+00:60"), (1_672_531_200, 0));
        // Leap days.
        assert_eq!(ok("2024-02-29T00:00:00Z"), (1_709_164_800, 0));
        assert_eq!(ok("2000-02-29T00:00:00Z"), (951_782_400, 0));
        // The ends of Go's year range.
        assert_eq!(ok("0001-01-01T00:00:00Z"), (ZERO_TIME_UNIX_SECONDS, 0));
        assert_eq!(
            ok("0000-02-29T00:00:00Z").0,
            ZERO_TIME_UNIX_SECONDS - 307 * 86_400
        );
        assert_eq!(
            ok("9999-12-31T23:59:59.999999999Z"),
            (253_402_300_799, 999_999_999)
        );
    }

    #[test]
    fn zero_time_and_saturation() {
        assert!(
            parse_rfc3339_nano("0001-01-01T00:00:00Z")
                .unwrap()
                .is_zero()
        );
        assert!(
            parse_rfc3339_nano("0001-01-01T01:00:00+01:00")
                .unwrap()
                .is_zero()
        );
        assert!(
            !parse_rfc3339_nano("0001-01-01T00:00:00.000000001Z")
                .unwrap()
                .is_zero()
        );
        let t = parse_rfc3339_nano("1000-01-01T00:00:00Z").unwrap();
        assert_eq!(t.unix_nanos_saturating(), i64::MIN);
        let t = parse_rfc3339_nano("9999-01-01T00:00:00Z").unwrap();
        assert_eq!(t.unix_nanos_saturating(), i64::MAX);
        let t = parse_rfc3339_nano("2023-01-01T00:00:00.5Z").unwrap();
        assert_eq!(t.unix_nanos_saturating(), 1_672_531_200_500_000_000);
    }

    #[test]
    fn errors_match_go() {
        let cases: Vec<(&str, String)> = vec![
            ("X", cannot_text("X", "X", "2006")),
            ("", cannot_text("", "", "2006")),
            ("202", cannot_text("202", "202", "2006")),
            ("20X3-01-01T00:00:00Z", cannot_text("20X3-01-01T00:00:00Z", "20X3-01-01T00:00:00Z", "2006")),
            ("2023", cannot_text("2023", "", "-")),
            ("2023/01/01", cannot_text("2023/01/01", "/01/01", "-")),
            ("2023-1-01T00:00:00Z", cannot_text("2023-1-01T00:00:00Z", "1-01T00:00:00Z", "01")),
            ("2023-01-01", cannot_text("2023-01-01", "", "T")),
            ("2023-01-01 00:00:00Z", cannot_text("2023-01-01 00:00:00Z", " 00:00:00Z", "T")),
            ("2023-01-01TX:00:00Z", cannot_text("2023-01-01TX:00:00Z", "X:00:00Z", "15")),
            ("2023-01-01T00:0:00Z", cannot_text("2023-01-01T00:0:00Z", "0:00Z", "04")),
            ("2023-01-01T00:00Z", cannot_text("2023-01-01T00:00Z", "Z", ":")),
            ("2023-01-01T00:00:00", cannot_text("2023-01-01T00:00:00", "", "Z07:00")),
            ("2023-01-01T00:00:00.Z", cannot_text("2023-01-01T00:00:00.Z", ".Z", "Z07:00")),
            ("2023-01-01T00:00:00+0100", cannot_text("2023-01-01T00:00:00+0100", "+0100", "Z07:00")),
            ("2023-01-01T00:00:00 01:00", cannot_text("2023-01-01T00:00:00 01:00", " 01:00", "Z07:00")),
            ("2023-01-01T00:00:00+1x:00", cannot_text("2023-01-01T00:00:00+1x:00", "+1x:00", "Z07:00")),
            (
                "2023-13-01T00:00:00Z",
                r#"parsing time "2023-13-01T00:00:00Z": month out of range"#.to_string(),
            ),
            (
                "2023-00-01T00:00:00Z",
                r#"parsing time "2023-00-01T00:00:00Z": month out of range"#.to_string(),
            ),
            (
                "2023-02-29T00:00:00Z",
                r#"parsing time "2023-02-29T00:00:00Z": day out of range"#.to_string(),
            ),
            (
                "2023-01-00T00:00:00Z",
                r#"parsing time "2023-01-00T00:00:00Z": day out of range"#.to_string(),
            ),
            (
                "2023-04-31T00:00:00Z",
                r#"parsing time "2023-04-31T00:00:00Z": day out of range"#.to_string(),
            ),
            (
                "2023-01-01T24:00:00Z",
                r#"parsing time "2023-01-01T24:00:00Z": hour out of range"#.to_string(),
            ),
            (
                "2023-01-01T00:60:00Z",
                r#"parsing time "2023-01-01T00:60:00Z": minute out of range"#.to_string(),
            ),
            (
                "2023-01-01T00:00:60Z",
                r#"parsing time "2023-01-01T00:00:60Z": second out of range"#.to_string(),
            ),
            (
                "2023-01-01T00:00:00+25:00",
                r#"parsing time "2023-01-01T00:00:00+25:00": time zone offset hour out of range"#.to_string(),
            ),
            (
                "2023-01-01T00:00:00+01:61",
                r#"parsing time "2023-01-01T00:00:00+01:61": time zone offset minute out of range"#.to_string(),
            ),
            // A range error on the offset hour wins over a malformed sign.
            (
                "2023-01-01T00:00:00X25:00",
                r#"parsing time "2023-01-01T00:00:00X25:00": time zone offset hour out of range"#.to_string(),
            ),
            (
                "2023-01-01T00:00:00ZJUNK",
                r#"parsing time "2023-01-01T00:00:00ZJUNK": extra text: "JUNK""#.to_string(),
            ),
            (
                "2023-01-01T00:00:00+01:00:00",
                r#"parsing time "2023-01-01T00:00:00+01:00:00": extra text: ":00""#.to_string(),
            ),
            // Extra text is reported before an impossible day.
            (
                "2023-02-30T00:00:00ZX",
                r#"parsing time "2023-02-30T00:00:00ZX": extra text: "X""#.to_string(),
            ),
            // Go slices by bytes, so an element can start inside a UTF-8 sequence.
            ("2023-01-01TÉ", r#"parsing time "2023-01-01T\xc3\x89" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "\xc3\x89" as "15""#.to_string()),
            ("2023É", r#"parsing time "2023\xc3\x89" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "\xc3\x89" as "-""#.to_string()),
        ];
        for (value, want) in cases {
            assert_eq!(parse_rfc3339_nano(value), Err(want), "parsing {value:?}");
        }
    }
}
