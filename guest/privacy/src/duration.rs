//! The `max-retention` duration: whole numbers each followed by a unit, largest unit first.

/// Nanoseconds in one second.
const SECOND: u64 = 1_000_000_000;

/// The units, largest first: a value names each at most once, in this order.
const UNITS: [(char, u64); 4] = [
    ('d', 86_400 * SECOND),
    ('h', 3_600 * SECOND),
    ('m', 60 * SECOND),
    ('s', SECOND),
];

/// The longest duration accepted: what the plugin beneath can still subtract from a clock
/// in nanoseconds (`i64::MAX` ns, about 292 years).
pub const MAX_NANOS: u64 = i64::MAX as u64;

/// The reason a refused duration is given, naming the accepted format. It never quotes the
/// value.
pub const FORMAT: &str = "must be a positive duration: whole numbers each followed by a unit \
     d, h, m or s, largest unit first, such as 30d, 720h, 90m, 3600s or 1d12h";

/// The reason given for a duration longer than [`MAX_NANOS`].
pub const TOO_LONG: &str = "must be at most 106751d (about 292 years)";

/// Why a duration is refused: the reason to show the operator.
pub type Reason = &'static str;

/// `30d`, `720h`, `90m`, `3600s`, `1d12h`, … in nanoseconds. Refused: an empty value, a
/// number without a unit, a unit without a number, an unknown or repeated unit, units out
/// of order, signs, spaces, fractions, zero, and anything over [`MAX_NANOS`].
pub fn parse(text: &str) -> Result<u64, Reason> {
    let mut total: u64 = 0;
    let mut next_unit = 0; // index into UNITS of the smallest unit still allowed
    let mut rest = text;
    if rest.is_empty() {
        return Err(FORMAT);
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(FORMAT);
        }
        let (number, tail) = rest.split_at(digits);
        let mut chars = tail.chars();
        let unit = chars.next().ok_or(FORMAT)?;
        let position = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or(FORMAT)?;
        let (_, nanos_per_unit) = UNITS[next_unit + position];
        next_unit += position + 1;
        // A number too long for u64 is certainly too long a duration.
        let amount: u64 = number.parse().map_err(|_| TOO_LONG)?;
        total = amount
            .checked_mul(nanos_per_unit)
            .and_then(|n| total.checked_add(n))
            .ok_or(TOO_LONG)?;
        rest = chars.as_str();
    }
    if total == 0 {
        return Err(FORMAT);
    }
    if total > MAX_NANOS {
        return Err(TOO_LONG);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60 * SECOND;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;

    #[test]
    fn accepted_durations() {
        let cases: &[(&str, u64)] = &[
            ("30d", 30 * DAY),
            ("720h", 720 * HOUR),
            ("90m", 90 * MINUTE),
            ("3600s", 3600 * SECOND),
            ("1d12h", DAY + 12 * HOUR),
            ("1d2h3m4s", DAY + 2 * HOUR + 3 * MINUTE + 4 * SECOND),
            ("1h30m", HOUR + 30 * MINUTE),
            ("1d0h", DAY),
            ("0d1s", SECOND),
            ("007d", 7 * DAY),
            ("1s", SECOND),
            ("106751d", 106_751 * DAY),
        ];
        for (text, nanos) in cases {
            assert_eq!(parse(text), Ok(*nanos), "{text}");
        }
        assert_eq!(parse("30d"), parse("720h"));
    }

    #[test]
    fn refused_durations() {
        let cases: &[(&str, Reason)] = &[
            ("", FORMAT),
            ("30", FORMAT),
            ("d", FORMAT),
            ("30days", FORMAT),
            ("30D", FORMAT),
            ("30w", FORMAT),
            ("1.5d", FORMAT),
            ("-1d", FORMAT),
            ("+1d", FORMAT),
            (" 1d", FORMAT),
            ("1d ", FORMAT),
            ("1d 12h", FORMAT),
            ("12h1d", FORMAT),
            ("1h1h", FORMAT),
            ("0s", FORMAT),
            ("0d0h", FORMAT),
            ("1ms", FORMAT),
            ("1µs", FORMAT),
            ("106752d", TOO_LONG),
            ("99999999999999999999999d", TOO_LONG),
            ("213503982334601s", TOO_LONG),
        ];
        for (text, reason) in cases {
            assert_eq!(parse(text), Err(*reason), "{text:?}");
        }
    }

    #[test]
    fn the_reason_names_the_format_and_every_unit() {
        for token in ["30d", "720h", "90m", "3600s", "1d12h", "positive"] {
            assert!(FORMAT.contains(token), "{token}");
        }
    }
}
