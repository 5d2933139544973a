//! `github.com/google/uuid`'s `Parse`, byte for byte: which strings Coder takes as a UUID.
//!
//! Lengths are in bytes, as in Go:
//! - 36: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`;
//! - 45: `urn:uuid:` (any case) then the 36-byte form;
//! - 38: one byte, the 36-byte form, one byte. Go drops the first byte and never looks at the
//!   last, so `{…}` is accepted, and so is any other pair of wrapping bytes;
//! - 32: 32 hex digits.
//!
//! Hex digits may be of either case. Errors carry no text: Coder prints its own.

use uuid::Uuid;

pub(crate) fn parse(s: &str) -> Option<Uuid> {
    let b = s.as_bytes();
    let hyphenated: &[u8] = match b.len() {
        36 => b,
        45 => {
            if !b[..9].eq_ignore_ascii_case(b"urn:uuid:") {
                return None;
            }
            &b[9..]
        }
        38 => &b[1..],
        32 => {
            let mut out = [0u8; 16];
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = xtob(b[i * 2], b[i * 2 + 1])?;
            }
            return Some(Uuid::from_bytes(out));
        }
        _ => return None,
    };
    if hyphenated[8] != b'-'
        || hyphenated[13] != b'-'
        || hyphenated[18] != b'-'
        || hyphenated[23] != b'-'
    {
        return None;
    }
    const STARTS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut out = [0u8; 16];
    for (byte, x) in out.iter_mut().zip(STARTS) {
        *byte = xtob(hyphenated[x], hyphenated[x + 1])?;
    }
    Some(Uuid::from_bytes(out))
}

fn xtob(high: u8, low: u8) -> Option<u8> {
    let h = (high as char).to_digit(16)?;
    let l = (low as char).to_digit(16)?;
    Some((h << 4 | l) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANONICAL: &str = "4fe722f0-49bc-4a90-a3eb-4ac439bfce20";

    fn want() -> Option<Uuid> {
        Some(Uuid::from_u128(0x4fe722f0_49bc_4a90_a3eb_4ac439bfce20))
    }

    #[test]
    fn accepts_go_forms() {
        assert_eq!(parse(CANONICAL), want());
        assert_eq!(parse(&CANONICAL.to_uppercase()), want());
        assert_eq!(parse(&format!("urn:uuid:{CANONICAL}")), want());
        assert_eq!(parse(&format!("URN:UUID:{CANONICAL}")), want());
        assert_eq!(parse(&format!("{{{CANONICAL}}}")), want());
        // Go never checks the wrapping bytes of the 38-byte form.
        assert_eq!(parse(&format!("x{CANONICAL}y")), want());
        assert_eq!(parse(&CANONICAL.replace('-', "")), want());
        assert_eq!(
            parse("00000000-0000-0000-0000-000000000000"),
            Some(Uuid::nil())
        );
    }

    #[test]
    fn rejects_everything_else() {
        let rejected = [
            "",
            "foo",
            "4fe722f0-49bc-4a90-a3eb-4ac439bfce2",
            "4fe722f0-49bc-4a90-a3eb-4ac439bfce200",
            "4fe722f049bc-4a90-a3eb-4ac439bfce20-",
            "4fe722f0-49bc-4a90-a3eb-4ac439bfce2g",
            "4fe722f0+49bc-4a90-a3eb-4ac439bfce20",
            "urn:uuix:4fe722f0-49bc-4a90-a3eb-4ac439bfce20",
            "4fe722f049bc4a90a3eb4ac439bfce2g",
            "{4fe722f049bc4a90a3eb4ac439bfce20}",
            // Braces around the 36-byte form shifted by one byte.
            "{{4fe722f0-49bc-4a90-a3eb-4ac439bfce2}",
            // A multi-byte character makes the byte length, not the character count, count.
            "é4fe722f0-49bc-4a90-a3eb-4ac439bfce20",
        ];
        for s in rejected {
            assert_eq!(parse(s), None, "{s:?} must be rejected");
        }
    }
}
