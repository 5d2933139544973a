//! Event timestamps: RFC 3339 in, Go's `RFC3339Nano` in UTC out, held as nanoseconds since the
//! Unix epoch.

use crate::model::UnixNanos;

/// Why a time could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("not an RFC 3339 time")]
    NotRfc3339,
    #[error("time out of range for nanoseconds since the Unix epoch in 64 bits")]
    OutOfRange,
}

/// RFC 3339 with up to nanoseconds and any offset, to UTC nanoseconds since the Unix epoch.
pub fn parse_time(s: &str) -> Result<UnixNanos, TimeError> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| TimeError::NotRfc3339)?;
    i64::try_from(t.unix_timestamp_nanos()).map_err(|_| TimeError::OutOfRange)
}

/// Go's `time.RFC3339Nano` in UTC, as Coder's JSON writes times: `2025-07-10T10:14:38.942776145Z`,
/// `2025-07-03T06:57:16.1447Z`, `2025-07-03T06:57:16Z` (trailing zeros of the fraction dropped).
pub fn format_time(t: UnixNanos) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t))
        .expect("every i64 nanosecond count is a valid time");
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    let nanos = dt.nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_any_offset_and_precision() {
        let table: &[(&str, i64)] = &[
            ("2025-07-10T10:14:38Z", 1_752_142_478_000_000_000),
            ("2025-07-10T10:14:38.9Z", 1_752_142_478_900_000_000),
            ("2025-07-10T10:14:38.942776Z", 1_752_142_478_942_776_000),
            (
                "2025-07-10T12:14:38.942776145+02:00",
                1_752_142_478_942_776_145,
            ),
            (
                "2025-07-10T05:14:38.942776145-05:00",
                1_752_142_478_942_776_145,
            ),
            ("1970-01-01T00:00:00Z", 0),
            ("1969-12-31T23:59:59.999999999Z", -1),
            ("2262-04-11T23:47:16.854775807Z", i64::MAX),
            ("1677-09-21T00:12:43.145224192Z", i64::MIN),
            // RFC 3339 lets applications use a space or lower case letters.
            ("2025-07-10 10:14:38Z", 1_752_142_478_000_000_000),
            ("2025-07-10t10:14:38z", 1_752_142_478_000_000_000),
        ];
        for &(s, want) in table {
            assert_eq!(parse_time(s), Ok(want), "{s}");
        }
        assert_eq!(
            parse_time("2262-04-11T23:47:16.854775808Z"),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            parse_time("9999-12-31T23:59:59Z"),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            parse_time("1677-09-21T00:12:43.145224191Z"),
            Err(TimeError::OutOfRange)
        );
        for bad in [
            "2025-07-10",
            "2025-07-10T10:14Z",
            "10:14:38",
            "2025-07-10T10:14:38",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_time(bad), Err(TimeError::NotRfc3339), "{bad}");
        }
    }

    #[test]
    fn formats_times_as_go() {
        assert_eq!(
            format_time(1_752_142_478_942_776_145),
            "2025-07-10T10:14:38.942776145Z"
        );
        assert_eq!(
            format_time(1_752_142_478_942_776_000),
            "2025-07-10T10:14:38.942776Z"
        );
        assert_eq!(
            format_time(1_752_142_478_900_000_000),
            "2025-07-10T10:14:38.9Z"
        );
        assert_eq!(
            format_time(1_752_142_478_000_000_000),
            "2025-07-10T10:14:38Z"
        );
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(-1), "1969-12-31T23:59:59.999999999Z");
        for t in [i64::MIN, i64::MAX, -1, 0, 1, 1_752_142_478_942_776_145] {
            assert_eq!(parse_time(&format_time(t)), Ok(t));
        }
    }
}
