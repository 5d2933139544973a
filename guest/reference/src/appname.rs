//! Coder's app-name registry, [`codersdk/appname.go`]: how agent-reported app names are
//! normalised, which family each belongs to, and how each is displayed.
//!
//! [`codersdk/appname.go`]: https://github.com/coder/coder/blob/main/codersdk/appname.go

/// Types recorded by coderd itself rather than reported by an agent. They never merge, carry
/// no connection id, and are point-in-time: the `status:` filter never returns them.
pub const WEB_TYPES: [&str; 3] = ["workspace_app", "port_forwarding", "tunnel"];

/// The values `type:` accepts (Coder C's `ConnectionType.Valid()`); each expands to its family.
pub const FILTERABLE_TYPES: [&str; 7] = [
    "ssh",
    "vscode",
    "jetbrains",
    "reconnecting_pty",
    "workspace_app",
    "port_forwarding",
    "tunnel",
];

/// Longest normalised name, in characters (runes).
pub const MAX_APP_NAME_CHARS: usize = 64;

/// Registered app names: (name, family, display name).
const REGISTRY: [(&str, &str, &str); 18] = [
    ("vscode", "vscode", "VS Code"),
    ("vscode_insiders", "vscode", "VS Code Insiders"),
    ("vscode_web", "vscode", "VS Code Web"),
    ("code_server", "vscode", "code-server"),
    ("cursor", "vscode", "Cursor"),
    ("windsurf", "vscode", "Windsurf"),
    ("positron", "vscode", "Positron"),
    ("vscodium", "vscode", "VSCodium"),
    ("codium", "vscode", "VSCodium"),
    ("antigravity", "vscode", "Antigravity"),
    ("trae", "vscode", "Trae"),
    ("kiro", "vscode", "Kiro"),
    ("devin", "vscode", "Devin"),
    ("jetbrains", "jetbrains", "JetBrains"),
    ("sftp", "sftp", "SFTP"),
    ("zed", "ssh", "Zed"),
    ("ssh", "ssh", "SSH"),
    ("reconnecting_pty", "reconnecting_pty", "Web Terminal"),
];

pub fn is_web_type(connection_type: &str) -> bool {
    WEB_TYPES.contains(&connection_type)
}

/// Coder's `NormalizeAppName`: drop control characters, trim, keep 64 characters, trim
/// again, lowercase, `-` becomes `_`. Coder turns an empty result into `unknown`; we return
/// it empty and let validation refuse it with a clear error.
pub fn normalize_app_name(raw: &str) -> String {
    let without_controls: String = raw.chars().filter(|c| !c.is_control()).collect();
    let truncated: String = without_controls
        .trim()
        .chars()
        .take(MAX_APP_NAME_CHARS)
        .collect();
    truncated.trim().to_lowercase().replace('-', "_")
}

fn registered(name: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    REGISTRY
        .iter()
        .find(|(registered, _, _)| *registered == name)
}

/// Coder's `AppNamesInFamily`: the family itself plus every registered name in it, sorted.
pub fn names_in_family(family: &str) -> Vec<String> {
    let mut names: Vec<String> = REGISTRY
        .iter()
        .filter(|(_, f, _)| *f == family)
        .map(|(name, _, _)| (*name).to_string())
        .collect();
    if !names.iter().any(|n| n == family) {
        names.push(family.to_string());
    }
    names.sort();
    names
}

/// The API's `type_display_name`: a fixed name for each web type, else the app's display
/// name.
pub fn type_display_name(connection_type: &str) -> String {
    match connection_type {
        "workspace_app" => "Workspace App".to_string(),
        "port_forwarding" => "Port Forwarding".to_string(),
        "tunnel" => "Tunnel".to_string(),
        other => app_display_name(other),
    }
}

/// Coder's `AppDisplayName`: the registry's name for the normalised identifier, else the
/// identifier itself.
pub fn app_display_name(raw: &str) -> String {
    let normalized = normalize_app_name(raw);
    match registered(&normalized) {
        Some((_, _, display)) => (*display).to_string(),
        None => normalized,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_matches_coder_cases() {
        let cases = [
            ("vscode", "vscode"),
            ("  VS-Code  ", "vs_code"),
            ("Cursor", "cursor"),
            ("\x1b[31mvscode\x1b[0m", "[31mvscode[0m"),
            ("code-server", "code_server"),
            ("\t\n", ""),
            ("", ""),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_app_name(raw), want, "normalising {raw:?}");
        }
    }

    #[test]
    fn normalisation_caps_at_64_characters_then_trims() {
        let long = format!("{}  tail", "é".repeat(63));
        assert_eq!(normalize_app_name(&long), "é".repeat(63));
        assert_eq!(normalize_app_name(&"a".repeat(100)).chars().count(), 64);
    }

    #[test]
    fn families_expand_as_in_coder() {
        assert_eq!(
            names_in_family("vscode"),
            [
                "antigravity",
                "code_server",
                "codium",
                "cursor",
                "devin",
                "kiro",
                "positron",
                "trae",
                "vscode",
                "vscode_insiders",
                "vscode_web",
                "vscodium",
                "windsurf"
            ]
        );
        assert_eq!(names_in_family("ssh"), ["ssh", "zed"]);
        assert_eq!(names_in_family("jetbrains"), ["jetbrains"]);
        assert_eq!(names_in_family("reconnecting_pty"), ["reconnecting_pty"]);
        assert_eq!(names_in_family("tunnel"), ["tunnel"]);
        assert_eq!(names_in_family("workspace_app"), ["workspace_app"]);
    }

    #[test]
    fn display_names() {
        let cases = [
            ("workspace_app", "Workspace App"),
            ("port_forwarding", "Port Forwarding"),
            ("tunnel", "Tunnel"),
            ("reconnecting_pty", "Web Terminal"),
            ("cursor", "Cursor"),
            ("code_server", "code-server"),
            ("vs_code", "vs_code"),
            ("unknown", "unknown"),
        ];
        for (t, want) in cases {
            assert_eq!(type_display_name(t), want, "display name of {t}");
        }
    }
}
