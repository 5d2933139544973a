//! Coder's app-name registry (`codersdk/appname.go`, spec §3): how a client's self-reported
//! app name is normalised, which family it belongs to, and how it is displayed.

/// Longest normalised name, in characters (runes).
pub const MAX_APP_NAME_CHARS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppFamily {
    Vscode,
    Jetbrains,
    Ssh,
    ReconnectingPty,
    PortForwarding,
    Sftp,
    /// Anything unregistered.
    Unknown,
}

impl AppFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vscode => "vscode",
            Self::Jetbrains => "jetbrains",
            Self::Ssh => "ssh",
            Self::ReconnectingPty => "reconnecting_pty",
            Self::PortForwarding => "port_forwarding",
            Self::Sftp => "sftp",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisteredApp {
    pub name: &'static str,
    pub family: AppFamily,
    pub display_name: &'static str,
}

const fn app(name: &'static str, family: AppFamily, display_name: &'static str) -> RegisteredApp {
    RegisteredApp {
        name,
        family,
        display_name,
    }
}

use AppFamily::{Jetbrains, PortForwarding, ReconnectingPty, Sftp, Ssh, Vscode};

/// The 36 registered names, in the registry's order.
pub const REGISTRY: [RegisteredApp; 36] = [
    app("vscode", Vscode, "VS Code"),
    app("vscode_insiders", Vscode, "VS Code Insiders"),
    app("vscode_web", Vscode, "VS Code Web"),
    app("code_server", Vscode, "code-server"),
    app("code_oss", Vscode, "Code - OSS"),
    app("cursor", Vscode, "Cursor"),
    app("windsurf", Vscode, "Windsurf"),
    app("positron", Vscode, "Positron"),
    app("vscodium", Vscode, "VSCodium"),
    app("vscodium_insiders", Vscode, "VSCodium Insiders"),
    app("codium", Vscode, "VSCodium"),
    app("antigravity", Vscode, "Antigravity"),
    app("trae", Vscode, "Trae"),
    app("trae_cn", Vscode, "Trae CN"),
    app("kiro", Vscode, "Kiro"),
    app("devin", Vscode, "Devin Desktop"),
    app("devin_next", Vscode, "Devin Desktop Next"),
    app("jetbrains", Jetbrains, "JetBrains"),
    app("intellij", Jetbrains, "IntelliJ IDEA"),
    app("pycharm", Jetbrains, "PyCharm"),
    app("goland", Jetbrains, "GoLand"),
    app("webstorm", Jetbrains, "WebStorm"),
    app("phpstorm", Jetbrains, "PhpStorm"),
    app("rubymine", Jetbrains, "RubyMine"),
    app("clion", Jetbrains, "CLion"),
    app("rider", Jetbrains, "Rider"),
    app("rustrover", Jetbrains, "RustRover"),
    app("datagrip", Jetbrains, "DataGrip"),
    app("dataspell", Jetbrains, "DataSpell"),
    app("mps", Jetbrains, "MPS"),
    app("android_studio", Jetbrains, "Android Studio"),
    app("sftp", Sftp, "SFTP"),
    app("zed", Ssh, "Zed"),
    app("ssh", Ssh, "SSH"),
    app("reconnecting_pty", ReconnectingPty, "Web Terminal"),
    app("port_forwarding", PortForwarding, "Port Forwarding"),
];

/// Coder's `NormalizeAppName`: drop control characters, trim, keep 64 characters, trim
/// again; empty becomes `unknown`; lowercase, and `-` becomes `_`.
pub fn normalize_app_name(raw: &str) -> String {
    let without_controls: String = raw.chars().filter(|c| !c.is_control()).collect();
    let truncated: String = without_controls
        .trim()
        .chars()
        .take(MAX_APP_NAME_CHARS)
        .collect();
    let trimmed = truncated.trim();
    if trimmed.is_empty() {
        return "unknown".to_string();
    }
    trimmed.to_lowercase().replace('-', "_")
}

fn registered(normalized: &str) -> Option<&'static RegisteredApp> {
    REGISTRY.iter().find(|app| app.name == normalized)
}

/// Coder's `AppDisplayName`: the registry's name for the normalised name, else the
/// normalised name itself.
pub fn app_display_name(raw: &str) -> String {
    let normalized = normalize_app_name(raw);
    registered(&normalized).map_or(normalized, |app| app.display_name.to_string())
}

/// Coder's `AppNameFamily`: the registry's family of the normalised name, else `Unknown`.
pub fn app_family(raw: &str) -> AppFamily {
    registered(&normalize_app_name(raw)).map_or(AppFamily::Unknown, |app| app.family)
}

/// Coder's `appsInFamily`: the registered names of `family`, sorted bytewise.
pub fn apps_in_family(family: AppFamily) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = REGISTRY
        .iter()
        .filter(|app| app.family == family)
        .map(|app| app.name)
        .collect();
    names.sort_unstable();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec §11.10.
    #[test]
    fn names_displays_and_families() {
        let a74 = "a".repeat(74);
        let a64 = "a".repeat(64);
        let cases: [(&str, &str, &str, AppFamily); 13] = [
            ("Cursor", "cursor", "Cursor", Vscode),
            ("Code-Server", "code_server", "code-server", Vscode),
            (
                "vscode-insiders",
                "vscode_insiders",
                "VS Code Insiders",
                Vscode,
            ),
            ("Trae-CN", "trae_cn", "Trae CN", Vscode),
            ("devin", "devin", "Devin Desktop", Vscode),
            (
                "Android-Studio",
                "android_studio",
                "Android Studio",
                Jetbrains,
            ),
            ("GoLand", "goland", "GoLand", Jetbrains),
            ("zed", "zed", "Zed", Ssh),
            (
                "Some-New-IDE",
                "some_new_ide",
                "some_new_ide",
                AppFamily::Unknown,
            ),
            ("", "unknown", "unknown", AppFamily::Unknown),
            ("   ", "unknown", "unknown", AppFamily::Unknown),
            (" vscode\t", "vscode", "VS Code", Vscode),
            ("cur\x00sor", "cursor", "Cursor", Vscode),
        ];
        for (raw, name, display, family) in cases {
            assert_eq!(normalize_app_name(raw), name, "normalising {raw:?}");
            assert_eq!(app_display_name(raw), display, "display of {raw:?}");
            assert_eq!(app_family(raw), family, "family of {raw:?}");
        }
        assert_eq!(normalize_app_name("\x00\x00"), "unknown");
        assert_eq!(normalize_app_name(&a74), a64);
        assert_eq!(app_display_name(&a74), a64);
    }

    #[test]
    fn truncation_counts_characters_then_trims() {
        let long = format!("{}  tail", "é".repeat(63));
        assert_eq!(normalize_app_name(&long), "é".repeat(63));
    }

    /// Spec §3.4.
    #[test]
    fn family_members_sorted() {
        assert_eq!(
            apps_in_family(Vscode),
            [
                "antigravity",
                "code_oss",
                "code_server",
                "codium",
                "cursor",
                "devin",
                "devin_next",
                "kiro",
                "positron",
                "trae",
                "trae_cn",
                "vscode",
                "vscode_insiders",
                "vscode_web",
                "vscodium",
                "vscodium_insiders",
                "windsurf",
            ]
        );
        assert_eq!(
            apps_in_family(Jetbrains),
            [
                "android_studio",
                "clion",
                "datagrip",
                "dataspell",
                "goland",
                "intellij",
                "jetbrains",
                "mps",
                "phpstorm",
                "pycharm",
                "rider",
                "rubymine",
                "rustrover",
                "webstorm",
            ]
        );
        assert_eq!(apps_in_family(Ssh), ["ssh", "zed"]);
        assert_eq!(apps_in_family(PortForwarding), ["port_forwarding"]);
        assert_eq!(apps_in_family(Sftp), ["sftp"]);
        assert!(apps_in_family(AppFamily::Unknown).is_empty());
    }
}
