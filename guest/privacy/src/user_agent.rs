//! What is kept of a user agent: its client family and OS (`coarse`), nothing (`drop`), or
//! all of it (`keep`).
//!
//! The coarse form is `FAMILY on OS` (`Chrome on Windows`), the family alone when the agent
//! names no known OS (`curl`), `Other on OS` when it names a known OS but no known family,
//! and `Other` when it names neither. Versions, device models, languages, build numbers and
//! everything else are dropped: they are what makes a user agent a fingerprint.
//!
//! The classifier is a pair of ordered tables below; the first entry that matches wins.
//! Order matters because browsers claim each other's names: Chrome's agent contains
//! `Safari/`, Edge's and Opera's contain `Chrome/` and `Safari/`, and iOS agents contain
//! `like Mac OS X`, Android agents `Linux`.

use connlog_reference::validate::MAX_USER_AGENT_BYTES;

/// What is kept of a user agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAgentRule {
    /// Client family and OS only.
    Coarse,
    /// No user agent.
    Drop,
    /// The user agent as sent, as Coder keeps it.
    Keep,
}

impl UserAgentRule {
    /// The user agent to store for `raw`, an event's user agent as sent.
    ///
    /// An empty user agent stays as it is (the reference stores it as absent). So does one
    /// longer than the reference accepts ([`MAX_USER_AGENT_BYTES`]): the reference then
    /// refuses the event, by its length alone, just as it would without this plugin, so
    /// both plugins accept exactly the same events.
    pub fn apply(self, raw: Option<String>) -> Option<String> {
        match self {
            UserAgentRule::Keep => raw,
            UserAgentRule::Drop => None,
            UserAgentRule::Coarse => match raw {
                Some(ua) if !ua.is_empty() && ua.len() <= MAX_USER_AGENT_BYTES => {
                    Some(coarsen(&ua))
                }
                other => other,
            },
        }
    }
}

/// Command-line and library clients: the product token the agent starts with.
const CLIENTS: &[(&str, &str)] = &[
    ("curl/", "curl"),
    ("Wget/", "Wget"),
    ("Go-http-client/", "Go-http-client"),
    ("python-requests/", "python-requests"),
    ("okhttp/", "okhttp"),
    ("PostmanRuntime/", "Postman"),
];

/// Browsers: a token anywhere in the agent, most specific first.
const BROWSERS: &[(&[&str], &str)] = &[
    // Edge and Opera also say Chrome and Safari.
    (&["Edg/", "Edge/", "EdgA/", "EdgiOS/"], "Edge"),
    (&["OPR/", "Opera", "OPiOS/", "OPT/"], "Opera"),
    (&["SamsungBrowser/"], "Samsung Internet"),
    // Electron apps (VS Code, …) say Chrome too.
    (&["Electron/"], "Electron"),
    (&["Firefox/", "FxiOS/"], "Firefox"),
    // Chrome says Safari.
    (&["CriOS/", "Chrome/", "Chromium/"], "Chrome"),
    (&["Safari/"], "Safari"),
    (&["MSIE ", "Trident/"], "Internet Explorer"),
];

/// Operating systems: a token anywhere in the agent, most specific first.
const SYSTEMS: &[(&[&str], &str)] = &[
    // iOS agents say `like Mac OS X`.
    (&["iPhone", "iPad", "iPod"], "iOS"),
    // Android agents say Linux.
    (&["Android"], "Android"),
    (&["CrOS"], "ChromeOS"),
    (&["Windows"], "Windows"),
    (&["Macintosh", "Mac OS X"], "macOS"),
    (&["Linux"], "Linux"),
];

/// The coarse form of a user agent: `FAMILY on OS`, `FAMILY`, `Other on OS` or `Other`.
pub fn coarsen(user_agent: &str) -> String {
    let family = family(user_agent);
    let os = first_match(SYSTEMS, user_agent);
    match (family, os) {
        (Some(family), Some(os)) => format!("{family} on {os}"),
        (Some(family), None) => family.to_string(),
        (None, Some(os)) => format!("Other on {os}"),
        (None, None) => "Other".to_string(),
    }
}

fn family(user_agent: &str) -> Option<&'static str> {
    CLIENTS
        .iter()
        .find(|(prefix, _)| user_agent.starts_with(prefix))
        .map(|(_, name)| *name)
        .or_else(|| first_match(BROWSERS, user_agent))
}

fn first_match(table: &[(&[&str], &'static str)], user_agent: &str) -> Option<&'static str> {
    table
        .iter()
        .find(|(tokens, _)| tokens.iter().any(|t| user_agent.contains(t)))
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real user agents and what is kept of them.
    const CASES: &[(&str, &str)] = &[
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "Chrome on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "Chrome on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
            "Firefox on Linux",
        ),
        (
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
            "Firefox on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
            "Firefox on Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
            "Opera on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
            "Opera on macOS",
        ),
        (
            "Opera/9.80 (Windows NT 6.1; U; en) Presto/2.10.289 Version/12.00",
            "Opera on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
            "Chrome on iOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
            "Firefox on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
            "Samsung Internet on Android",
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "Chrome on ChromeOS",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Code/1.89.0 Chrome/120.0.6099.291 Electron/28.2.8 Safari/537.36",
            "Electron on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
            "Internet Explorer on Windows",
        ),
        ("curl/8.5.0", "curl"),
        ("curl/7.81.0", "curl"),
        ("Go-http-client/1.1", "Go-http-client"),
        ("Go-http-client/2.0", "Go-http-client"),
        ("Wget/1.21.2", "Wget"),
        ("python-requests/2.31.0", "python-requests"),
        ("okhttp/4.12.0", "okhttp"),
        ("PostmanRuntime/7.37.3", "Postman"),
        // A known OS, an unknown client.
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
            "Other on iOS",
        ),
        ("SomeTool/1.0 (Windows NT 10.0)", "Other on Windows"),
        // Neither.
        ("Mozilla/5.0", "Other"),
        ("garbage", "Other"),
        ("   ", "Other"),
        ("<script>alert(1)</script>", "Other"),
        (
            "Coder Desktop/0.5 (build 1234; my-laptop.example.com)",
            "Other",
        ),
    ];

    #[test]
    fn coarse_forms() {
        for (ua, want) in CASES {
            assert_eq!(coarsen(ua), *want, "{ua}");
        }
    }

    #[test]
    fn coarse_rule() {
        let coarse = |ua: Option<&str>| UserAgentRule::Coarse.apply(ua.map(str::to_string));
        assert_eq!(coarse(None), None);
        assert_eq!(
            coarse(Some("")).as_deref(),
            Some(""),
            "the reference drops it"
        );
        assert_eq!(coarse(Some("curl/8.5.0")).as_deref(), Some("curl"));
        assert_eq!(coarse(Some("garbage")).as_deref(), Some("Other"));
        let at_limit = "x".repeat(MAX_USER_AGENT_BYTES);
        assert_eq!(coarse(Some(&at_limit)).as_deref(), Some("Other"));
        let too_long = "x".repeat(MAX_USER_AGENT_BYTES + 1);
        assert_eq!(
            coarse(Some(&too_long)),
            Some(too_long.clone()),
            "left for the reference to refuse"
        );
    }

    #[test]
    fn keep_and_drop() {
        for ua in [None, Some(""), Some("curl/8.5.0"), Some("garbage")] {
            let ua = ua.map(str::to_string);
            assert_eq!(UserAgentRule::Keep.apply(ua.clone()), ua);
            assert_eq!(UserAgentRule::Drop.apply(ua), None);
        }
    }

    #[test]
    fn coarse_forms_carry_no_version_or_detail() {
        for (ua, _) in CASES {
            let kept = coarsen(ua);
            assert!(!kept.chars().any(|c| c.is_ascii_digit()), "{kept}");
            assert!(!kept.contains('/') && !kept.contains('('), "{kept}");
        }
    }
}
