//! Go's time formats, for output: RFC 3339 with trailing zeros of the fraction dropped
//! (`time.RFC3339Nano`, also what Go's JSON uses), `time.Time.String()`, and slog's human
//! timestamp.
//!
//! All times are UTC. Civil dates come from Howard Hinnant's `civil_from_days`, which is
//! exact over the whole proleptic Gregorian calendar; an `i64` of nanoseconds only spans
//! 1677-09-21 to 2262-04-11, so Go's special cases for years outside 0..=9999 never arise,
//! but the year is still written the way Go's `appendInt(year, 4)` writes it.

use connlog_plugin_sdk::model::UnixNanos;

const NANOS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// A UTC instant broken into civil fields, as Go's `Time.Date()`/`Clock()`/`Nanosecond()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// Always in `0..1_000_000_000`, also before 1970 (Go floors, it does not truncate).
    pub nanosecond: u32,
}

pub fn civil(t: UnixNanos) -> Civil {
    let secs = t.div_euclid(NANOS_PER_SEC);
    let nanosecond = t.rem_euclid(NANOS_PER_SEC) as u32;
    let days = secs.div_euclid(SECS_PER_DAY);
    let sod = secs.rem_euclid(SECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: (sod / 3600) as u32,
        minute: ((sod / 60) % 60) as u32,
        second: (sod % 60) as u32,
        nanosecond,
    }
}

/// Days since 1970-01-01 to (year, month, day). Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `value` in decimal, zero-padded to at least `width` digits. Written by hand: every row
/// of every export formats several times, and `core::fmt` costs far more per call.
fn push_digits(out: &mut String, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    while value > 0 {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    let start = start.min(digits.len() - width);
    out.extend(digits[start..].iter().map(|&d| char::from(d)));
}

/// Go's `appendInt(b, year, 4)`: a minus sign, then at least four digits.
fn push_year(out: &mut String, year: i64) {
    if year < 0 {
        out.push('-');
    }
    push_digits(out, year.unsigned_abs(), 4);
}

fn push_date_time(out: &mut String, c: &Civil, date_time_sep: char) {
    push_year(out, c.year);
    for (sep, value) in [
        ('-', c.month),
        ('-', c.day),
        (date_time_sep, c.hour),
        (':', c.minute),
        (':', c.second),
    ] {
        out.push(sep);
        push_digits(out, value.into(), 2);
    }
}

/// `2025-07-10T10:14:38.942776145Z`, `2025-07-03T06:57:16.144719Z`, `2025-07-03T06:57:16Z`.
pub fn rfc3339_nano(t: UnixNanos) -> String {
    let mut out = String::with_capacity(30);
    push_rfc3339_nano(&mut out, t);
    out
}

/// [`rfc3339_nano`], appended to `out`.
pub fn push_rfc3339_nano(out: &mut String, t: UnixNanos) {
    let c = civil(t);
    push_date_time(out, &c, 'T');
    push_fraction(out, c.nanosecond);
    out.push('Z');
}

/// Go's `.999999999`: a dot and nine digits without their trailing zeros; nothing for 0.
fn push_fraction(out: &mut String, nanosecond: u32) {
    if nanosecond == 0 {
        return;
    }
    let mut nanos = nanosecond;
    let mut width = 9;
    while nanos.is_multiple_of(10) {
        nanos /= 10;
        width -= 1;
    }
    out.push('.');
    push_digits(out, nanos.into(), width);
}

/// Go's `time.Time.String()` of a UTC time without a monotonic reading, layout
/// `2006-01-02 15:04:05.999999999 -0700 MST`: `2026-10-07 11:34:37.428773435 +0000 UTC`.
pub fn go_time_string(t: UnixNanos) -> String {
    let c = civil(t);
    let mut out = String::with_capacity(40);
    push_date_time(&mut out, &c, ' ');
    push_fraction(&mut out, c.nanosecond);
    out.push_str(" +0000 UTC");
    out
}

/// slog's human timestamp, Go layout `2006-01-02 15:04:05.000` (the fraction is truncated,
/// as Go's formatter truncates; it never rounds).
pub fn human_millis(t: UnixNanos) -> String {
    let c = civil(t);
    let mut out = String::with_capacity(23);
    push_date_time(&mut out, &c, ' ');
    out.push('.');
    push_digits(&mut out, (c.nanosecond / 1_000_000).into(), 3);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = NANOS_PER_SEC;

    #[test]
    fn docs_examples() {
        // 2025-07-10T10:14:38Z is 1752142478.
        assert_eq!(
            rfc3339_nano(1_752_142_478 * S + 942_776_145),
            "2025-07-10T10:14:38.942776145Z"
        );
        // 2025-07-03T06:57:16Z is 1751525836.
        assert_eq!(
            rfc3339_nano(1_751_525_836 * S + 144_719_000),
            "2025-07-03T06:57:16.144719Z"
        );
        assert_eq!(rfc3339_nano(1_751_525_836 * S), "2025-07-03T06:57:16Z");
        assert_eq!(
            human_millis(1_751_525_836 * S + 157_999_999),
            "2025-07-03 06:57:16.157"
        );
    }

    proptest::proptest! {
        /// The hand-written digits equal `core::fmt`'s padding, across every era.
        #[test]
        fn digits_match_core_fmt(t in proptest::prelude::any::<i64>()) {
            let c = civil(t);
            let year = if c.year < 0 { format!("-{:04}", -c.year) } else { format!("{:04}", c.year) };
            let date_time = format!(
                "{year}-{:02}-{:02}T{:02}:{:02}:{:02}",
                c.month, c.day, c.hour, c.minute, c.second
            );
            let fraction = format!("{:09}", c.nanosecond);
            let fraction = fraction.trim_end_matches('0');
            let expected = if fraction.is_empty() {
                format!("{date_time}Z")
            } else {
                format!("{date_time}.{fraction}Z")
            };
            proptest::prop_assert_eq!(rfc3339_nano(t), expected);
            proptest::prop_assert_eq!(
                human_millis(t),
                format!("{}.{:03}", date_time.replace('T', " "), c.nanosecond / 1_000_000)
            );
        }
    }

    #[test]
    fn go_time_strings() {
        // Spec §8's example: 2026-10-07T11:34:37Z is 1791372877.
        assert_eq!(
            go_time_string(1_791_372_877 * S + 428_773_435),
            "2026-10-07 11:34:37.428773435 +0000 UTC"
        );
        assert_eq!(go_time_string(S / 2), "1970-01-01 00:00:00.5 +0000 UTC");
        assert_eq!(go_time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time_string(-1),
            "1969-12-31 23:59:59.999999999 +0000 UTC"
        );
    }

    #[test]
    fn trailing_zeros_are_dropped() {
        assert_eq!(rfc3339_nano(S / 2), "1970-01-01T00:00:00.5Z");
        assert_eq!(rfc3339_nano(1), "1970-01-01T00:00:00.000000001Z");
        assert_eq!(rfc3339_nano(10), "1970-01-01T00:00:00.00000001Z");
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(human_millis(0), "1970-01-01 00:00:00.000");
    }

    #[test]
    fn negative_times_floor_like_go() {
        // Go: time.Unix(0, -1).UTC() is 1969-12-31 23:59:59.999999999.
        assert_eq!(rfc3339_nano(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(rfc3339_nano(-S), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339_nano(-S / 2), "1969-12-31T23:59:59.5Z");
        assert_eq!(human_millis(-1), "1969-12-31 23:59:59.999");
        // 1900-01-01T00:00:00Z is -2208988800 (1900 is not a leap year).
        assert_eq!(rfc3339_nano(-2_208_988_800 * S), "1900-01-01T00:00:00Z");
    }

    #[test]
    fn the_ends_of_the_i64_range() {
        // Go: time.Unix(0, math.MaxInt64).UTC() and time.Unix(0, math.MinInt64).UTC().
        assert_eq!(rfc3339_nano(i64::MAX), "2262-04-11T23:47:16.854775807Z");
        assert_eq!(rfc3339_nano(i64::MIN), "1677-09-21T00:12:43.145224192Z");
    }

    #[test]
    fn leap_days_and_year_boundaries() {
        // 2000-02-29T12:00:00Z is 951825600; 2024-12-31T23:59:59Z is 1735689599.
        assert_eq!(rfc3339_nano(951_825_600 * S), "2000-02-29T12:00:00Z");
        assert_eq!(rfc3339_nano(1_735_689_599 * S), "2024-12-31T23:59:59Z");
        assert_eq!(rfc3339_nano(1_735_689_600 * S), "2025-01-01T00:00:00Z");
    }

    #[test]
    fn civil_round_trips_against_a_day_walk() {
        // Walk day by day from 1677 to 2262 and check each date follows the previous one.
        let mut prev = civil_from_days(-106_752);
        assert_eq!(prev, (1677, 9, 21));
        for z in -106_751..=106_751i64 {
            let cur = civil_from_days(z);
            let dim = |y: i64, m: u32| match m {
                1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
                4 | 6 | 9 | 11 => 30,
                _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
                _ => 28,
            };
            let expected = if prev.2 < dim(prev.0, prev.1) {
                (prev.0, prev.1, prev.2 + 1)
            } else if prev.1 < 12 {
                (prev.0, prev.1 + 1, 1)
            } else {
                (prev.0 + 1, 1, 1)
            };
            assert_eq!(cur, expected, "day {z}");
            prev = cur;
        }
    }

    #[test]
    fn years_are_written_as_go_writes_them() {
        let mut s = String::new();
        push_year(&mut s, 999);
        assert_eq!(s, "0999");
        s.clear();
        push_year(&mut s, -1);
        assert_eq!(s, "-0001");
        s.clear();
        push_year(&mut s, 12345);
        assert_eq!(s, "12345");
    }
}
