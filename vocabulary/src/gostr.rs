//! Go's ways of quoting a string, as Coder's messages spell values: the plugins' output
//! formats and filter errors, and the host's own API errors.
//!
//! - [`strconv_quote`] is `strconv.Quote` (`fmt`'s `%q`), on top of [`is_print`]
//!   (`strconv.IsPrint`). The service log's human sink uses it, and so do Coder's own
//!   messages (`Query element %q …`, `%q is not a valid value`, `organization %q …`).
//! - [`time_quote`] is the `time` package's private `quote`, used inside `time.ParseError`
//!   texts. It escapes every byte outside printable ASCII as `\xNN`.

use core::fmt::Write;

/// Go's `strconv.IsPrint` (`unicode.IsPrint`): letters, marks, numbers, punctuation, symbols
/// and the ASCII space.
///
/// Without Unicode tables: we treat as unprintable the control characters, every space other
/// than U+0020, the format characters (category Cf), private-use code points and
/// noncharacters. That is exact for Latin-1 and for every space, control, format and
/// private-use character; unassigned code points (Cn), which Go also escapes, are the one
/// approximation: they are not detected and pass through as printable.
pub fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    !(is_format(u) || is_private_use(u) || is_noncharacter(u))
}

/// General category Cf (format characters).
fn is_format(u: u32) -> bool {
    matches!(
        u,
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

fn is_private_use(u: u32) -> bool {
    matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD)
}

fn is_noncharacter(u: u32) -> bool {
    (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE
}

/// Go's `strconv.Quote`: `"` and `\` backslashed, the usual C escapes, other non-printable
/// runes as `\xNN` (below U+0080), `\uNNNN` or `\UNNNNNNNN`; printable runes (see
/// [`is_print`]) as they are.
pub fn strconv_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// The `time` package's `quote`, over bytes: a value element of a `ParseError` may start in
/// the middle of a UTF-8 sequence, because Go slices the value by bytes.
pub fn time_quote(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        if !(0x20..0x80).contains(&b) {
            out.push_str("\\x");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xF) as usize] as char);
        } else {
            if b == b'"' || b == b'\\' {
                out.push('\\');
            }
            out.push(b as char);
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strconv_quote_matches_go() {
        assert_eq!(strconv_quote("abc"), r#""abc""#);
        assert_eq!(strconv_quote("a b"), r#""a b""#);
        assert_eq!(
            strconv_quote("\u{7}\u{8}\u{c}\n\r\t\u{b}"),
            r#""\a\b\f\n\r\t\v""#
        );
        assert_eq!(strconv_quote("\u{0}\u{1b}\u{7f}"), r#""\x00\x1b\x7f""#);
        assert_eq!(
            strconv_quote("\u{a0}\u{200b}\u{feff}"),
            r#""\u00a0\u200b\ufeff""#
        );
        assert_eq!(strconv_quote("\u{f0000}"), r#""\U000f0000""#);
        assert_eq!(strconv_quote("日本語 é"), "\"日本語 é\"");
        assert_eq!(strconv_quote("say \"hi\" \\"), r#""say \"hi\" \\""#);
    }

    #[test]
    fn strconv_quote_matches_go_in_error_texts() {
        let cases = [
            ("", r#""""#),
            ("type:", r#""type:""#),
            (r#"a"b\c"#, r#""a\"b\\c""#),
            ("tab\there", r#""tab\there""#),
            ("nl\n\r\x07\x08\x0c\x0b", r#""nl\n\r\a\b\f\v""#),
            ("\x1b[31m", r#""\x1b[31m""#),
            ("\x7f", r#""\x7f""#),
            ("日本語", r#""日本語""#),
            ("é", r#""é""#),
            ("\u{a0}", r#""\u00a0""#),
            ("\u{ad}", r#""\u00ad""#),
            ("\u{85}", r#""\u0085""#),
            ("\u{200b}", r#""\u200b""#),
            ("\u{3000}", r#""\u3000""#),
            ("\u{feff}", r#""\ufeff""#),
            ("\u{e000}", r#""\ue000""#),
            ("\u{10fffd}", r#""\U0010fffd""#),
            ("\u{fffd}", r#""�""#),
        ];
        for (input, want) in cases {
            assert_eq!(strconv_quote(input), want, "quoting {input:?}");
        }
    }

    #[test]
    fn time_quote_matches_go() {
        assert_eq!(time_quote(b"2023-01-01"), r#""2023-01-01""#);
        assert_eq!(time_quote(b"a\"b\\"), r#""a\"b\\""#);
        assert_eq!(time_quote("é".as_bytes()), r#""\xc3\xa9""#);
        assert_eq!(time_quote(&"é".as_bytes()[1..]), r#""\xa9""#);
        assert_eq!(time_quote(b"\t\x7f"), "\"\\x09\x7f\"");
    }
}
