//! Coder's `searchTerms` (`coderd/searchquery/search.go`): turns a query into `key → values`,
//! the way Go fills a `url.Values`.
//!
//! 1. Split on spaces outside double quotes, keeping the quotes (`strings.FieldsFunc`, where
//!    every `"` toggles the quoted state and empty fields vanish).
//! 2. Tokens with a `:` keep their order; tokens without one are joined by single spaces into
//!    one element, appended last.
//! 3. Each element: starting or ending with `:` is an error; otherwise split on `:` outside
//!    quotes (empty parts vanish) and trim `"` from each part. One part goes to the default key
//!    `search` (the element itself, quotes and all), two parts are `key:value`, more is an
//!    error. The first error stops everything and is returned alone.
//!
//! The caller lowercases the query first (Coder's `strings.ToLower`): see [`go_to_lower`].

use std::collections::BTreeMap;

use connlog_plugin_sdk::model::Validation;

use connlog_vocabulary::gostr::strconv_quote;

/// The key bare words go to. `ConnectionLogs` never reads it, so it is always an error.
pub(crate) const DEFAULT_KEY: &str = "search";

/// Go's `url.Values`: every value of a key, in the order given. Keys are sorted here (Go's map
/// order is random); the parser reads them by name, so only the order of the "not a valid
/// query param" errors depends on it.
pub(crate) type Values = BTreeMap<String, Vec<String>>;

pub(crate) fn search_terms(query: &str) -> Result<Values, Validation> {
    let mut values = Values::new();
    let tokens = split_outside_quotes(query, ' ', true);
    for element in process_tokens(tokens) {
        if element.starts_with(':') || element.ends_with(':') {
            return Err(Validation::new(
                "q",
                format!(
                    "Query element {} cannot start or end with ':'",
                    strconv_quote(&element)
                ),
            ));
        }
        let mut parts = split_outside_quotes(&element, ':', false);
        match parts.len() {
            1 => values
                .entry(DEFAULT_KEY.to_string())
                .or_default()
                .push(element),
            2 => {
                let value = parts.pop().unwrap_or_default();
                let key = go_to_lower(&parts.pop().unwrap_or_default());
                values.entry(key).or_default().push(value);
            }
            _ => {
                return Err(Validation::new(
                    "q",
                    format!(
                        "Query element {} can only contain 1 ':'",
                        strconv_quote(&element)
                    ),
                ));
            }
        }
    }
    Ok(values)
}

/// `splitQueryParameterByDelimiter`.
fn split_outside_quotes(s: &str, delimiter: char, keep_quotes: bool) -> Vec<String> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start: Option<usize> = None;
    for (i, c) in s.char_indices() {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && c == delimiter {
            if let Some(begin) = start.take() {
                parts.push(&s[begin..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(begin) = start {
        parts.push(&s[begin..]);
    }
    parts
        .into_iter()
        .map(|part| {
            if keep_quotes {
                part.to_string()
            } else {
                part.trim_matches('"').to_string()
            }
        })
        .collect()
}

/// `processTokens`.
fn process_tokens(tokens: Vec<String>) -> Vec<String> {
    let (mut fields, bare): (Vec<String>, Vec<String>) =
        tokens.into_iter().partition(|t| t.contains(':'));
    if !bare.is_empty() {
        fields.push(bare.join(" "));
    }
    fields
}

/// Go's `strings.ToLower`: each rune through `unicode.ToLower`, the simple one-to-one mapping.
/// Rust's full mapping differs only for `İ` (U+0130), which becomes `i` plus a combining dot
/// there and plain `i` in Go, and in `str::to_lowercase`'s context rule for a final `Σ`, which
/// Go does not have; mapping char by char avoids the latter.
pub(crate) fn go_to_lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => l,
                _ => {
                    if c == '\u{130}' {
                        'i'
                    } else {
                        c
                    }
                }
            }
        })
        .collect()
}

/// Go's `strings.ToUpper`: each rune through `unicode.ToUpper`. Where Unicode's full mapping
/// expands a rune (`ß` → `SS`), Go's simple mapping mostly leaves it as it is, and so does
/// this; the few runes whose simple mapping differs from both (Greek with iota subscript)
/// only matter inside a date, where they are an error either way.
pub(crate) fn go_to_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &[&str])]) -> Values {
        pairs
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect()
    }

    #[test]
    fn splits_like_coder() {
        let cases: Vec<(&str, Values)> = vec![
            ("", values(&[])),
            ("     ", values(&[])),
            ("type:ssh", values(&[("type", &["ssh"])])),
            (
                "  type:ssh    status:ongoing  ",
                values(&[("type", &["ssh"]), ("status", &["ongoing"])]),
            ),
            (
                "type:ssh type:vscode",
                values(&[("type", &["ssh", "vscode"])]),
            ),
            // Bare words are joined into one element, appended last, quotes kept.
            (
                "foo type:ssh bar",
                values(&[("type", &["ssh"]), ("search", &["foo bar"])]),
            ),
            (
                r#""foo  bar" baz"#,
                values(&[("search", &[r#""foo  bar" baz"#])]),
            ),
            // Quotes keep spaces and colons inside a value and are trimmed from it.
            (r#"username:"a b""#, values(&[("username", &["a b"])])),
            (
                r#"connected_after:"2023-01-01T00:00:00z""#,
                values(&[("connected_after", &["2023-01-01T00:00:00z"])]),
            ),
            (r#""username":bob"#, values(&[("username", &["bob"])])),
            (r#"username:"""#, values(&[("username", &[""])])),
            (r#"username:""bob"""#, values(&[("username", &["bob"])])),
            // An element whose only colon is quoted goes to the default key whole.
            (r#""a:b""#, values(&[("search", &[r#""a:b""#])])),
            // Empty parts vanish, so a doubled colon is one separator.
            ("type::ssh", values(&[("type", &["ssh"])])),
            // An unbalanced quote runs to the end of the query.
            (
                r#"username:"bob type:ssh"#,
                values(&[("username", &["bob type:ssh"])]),
            ),
        ];
        for (query, want) in cases {
            assert_eq!(search_terms(query), Ok(want), "tokenizing {query:?}");
        }
    }

    #[test]
    fn element_errors_like_coder() {
        let cases = [
            (
                ":foo",
                r#"Query element ":foo" cannot start or end with ':'"#,
            ),
            (
                "type:",
                r#"Query element "type:" cannot start or end with ':'"#,
            ),
            (
                "type:ssh status:",
                r#"Query element "status:" cannot start or end with ':'"#,
            ),
            ("a:b:c", r#"Query element "a:b:c" can only contain 1 ':'"#),
            (
                "connected_after:2023-01-01t00:00:00z",
                r#"Query element "connected_after:2023-01-01t00:00:00z" can only contain 1 ':'"#,
            ),
            (
                r#"a:"b":c"#,
                r#"Query element "a:\"b\":c" can only contain 1 ':'"#,
            ),
            // The first bad element wins, even before a later one that is also bad.
            (
                "a:b:c :d",
                r#"Query element "a:b:c" can only contain 1 ':'"#,
            ),
        ];
        for (query, detail) in cases {
            assert_eq!(
                search_terms(query),
                Err(Validation::new("q", detail)),
                "tokenizing {query:?}"
            );
        }
    }

    #[test]
    fn case_mapping_is_go_s() {
        assert_eq!(go_to_lower("TYPE:SSH"), "type:ssh");
        assert_eq!(go_to_lower("İ"), "i");
        assert_eq!(go_to_lower("ΟΔΟΣ"), "οδοσ");
        assert_eq!(go_to_upper("2023-01-01t00:00:00z"), "2023-01-01T00:00:00Z");
        assert_eq!(go_to_upper("ß"), "ß");
    }
}
