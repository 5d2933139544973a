//! The simulator's vocabulary: names, apps, client strings and the weights of the traffic mix.

use connlog_vocabulary::{AppFamily, REGISTRY};

pub const ORG_NAMES: [(&str, &str, &str); 8] = [
    ("coder", "Coder", "/emojis/1f3e2.png"),
    ("research", "Research", "/emojis/1f52c.png"),
    ("platform", "Platform Engineering", "/emojis/1f6e0-fe0f.png"),
    ("data-science", "Data Science", "/emojis/1f4ca.png"),
    ("mobile", "Mobile", "/emojis/1f4f1.png"),
    ("security", "Security", "/emojis/1f512.png"),
    ("infra", "Infrastructure", "/emojis/1f3d7-fe0f.png"),
    ("support", "Support", "/emojis/1f6df.png"),
];

pub const FIRST_NAMES: [&str; 64] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "kim",
    "leo", "mallory", "nina", "oscar", "peggy", "quinn", "rupert", "sybil", "trent", "uma",
    "victor", "wendy", "xavier", "yara", "zoe", "amir", "bea", "chen", "dmitri", "eva", "farah",
    "gus", "hana", "ines", "jonas", "kofi", "lena", "mateo", "noor", "olga", "priya", "rafael",
    "sana", "tomas", "ugo", "vera", "wei", "yusuf", "zara", "aiko", "bruno", "chloe", "diego",
    "elif", "felix", "greta", "hugo", "isla", "jin", "kai", "lucia", "milan", "nadia",
];

pub const SURNAMES: [&str; 32] = [
    "Nguyen", "Smith", "Garcia", "Müller", "Rossi", "Kowalski", "Tanaka", "Okafor", "Silva",
    "Dubois", "Jensen", "Novak", "Haddad", "Kim", "Patel", "Ivanova", "Moreau", "Larsen", "Costa",
    "Schmidt", "Yamamoto", "Mensah", "Fischer", "Lopez", "Berg", "Sato", "Khan", "Romero", "Weber",
    "Chen", "O'Brien", "Ahmed",
];

pub const WORKSPACE_NAMES: [&str; 16] = [
    "dev",
    "backend",
    "frontend",
    "ml",
    "gpu-box",
    "sandbox",
    "docs",
    "infra",
    "api",
    "mobile",
    "data",
    "playground",
    "monorepo",
    "review",
    "hotfix",
    "bench",
];

/// Agent names of multi-agent workspaces; single-agent workspaces call theirs `main`.
pub const AGENT_SETS: [&[&str]; 4] = [
    &["main"],
    &["main", "gpu"],
    &["dev", "db"],
    &["main", "sidecar"],
];

/// Workspace app slugs (`code-server` is by far the most common).
pub const APP_SLUGS: [(&str, u32); 6] = [
    ("code-server", 10),
    ("jupyter", 4),
    ("filebrowser", 2),
    ("grafana", 1),
    ("vscode-web", 2),
    ("rstudio", 1),
];

pub const PORTS: [u16; 8] = [3000, 5173, 8000, 8080, 8888, 4200, 9090, 6006];

/// Apps of plain SSH sessions, raw as agents report them (the plugin normalises them): most
/// clients name none; Zed and SFTP are registered, Emacs is not.
pub const SSH_APPS: [(Option<&str>, u32); 5] = [
    (None, 82),
    (Some("zed"), 8),
    (Some("sftp"), 5),
    (Some(" Zed "), 2),
    (Some("Emacs-TRAMP"), 3),
];

/// Apps of web-terminal (reconnecting PTY) sessions: the dashboard names none; IDE plugins
/// open terminals under their own name.
pub const PTY_APPS: [(Option<&str>, u32); 4] = [
    (None, 75),
    (Some("vscode"), 12),
    (Some("cursor"), 8),
    (Some("goland"), 5),
];

/// How popular each registered IDE is within its family; registered IDEs not listed get 1.
pub const IDE_POPULARITY: [(&str, u32); 16] = [
    ("vscode", 40),
    ("cursor", 16),
    ("windsurf", 6),
    ("code_server", 4),
    ("vscode_insiders", 4),
    ("positron", 3),
    ("vscodium", 3),
    ("kiro", 2),
    ("trae", 2),
    ("jetbrains", 10),
    ("intellij", 12),
    ("pycharm", 8),
    ("goland", 8),
    ("webstorm", 4),
    ("rider", 3),
    ("rustrover", 3),
];

/// The registered apps of `family`, weighted by [`IDE_POPULARITY`], in the registry's order.
pub fn ide_mix(family: AppFamily) -> Vec<(&'static str, u32)> {
    REGISTRY
        .iter()
        .filter(|app| app.family == family)
        .map(|app| {
            let weight = IDE_POPULARITY.iter().find(|(name, _)| *name == app.name);
            (app.name, weight.map_or(1, |(_, w)| *w))
        })
        .collect()
}

/// Exit codes of agent sessions, as reported on disconnect.
pub const EXIT_CODES: [(i32, u32); 4] = [(0, 86), (1, 7), (130, 4), (255, 3)];
pub const DISCONNECT_REASONS: [(&str, u32); 6] = [
    ("", 55),
    ("client disconnected", 25),
    ("agent shutdown", 6),
    ("connection timed out", 6),
    ("workspace stopped", 5),
    ("context canceled", 3),
];

/// HTTP codes of workspace-app opens by the workspace's owner and by someone else.
pub const APP_CODES_OWNER: [(i32, u32); 6] =
    [(200, 84), (302, 4), (303, 3), (404, 2), (502, 6), (403, 1)];
pub const APP_CODES_OTHER: [(i32, u32); 4] = [(200, 45), (403, 30), (404, 18), (303, 7)];
pub const PORT_CODES: [(i32, u32); 3] = [(200, 86), (502, 10), (404, 4)];

pub const BROWSER_AGENTS: [(&str, u32); 6] = [
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36",
        35,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36",
        25,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
        15,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15",
        12,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36 Edg/138.0.0.0",
        10,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/137.0.0.0 Safari/537.36",
        3,
    ),
];

pub const CLI_AGENTS: [(&str, u32); 4] = [
    ("coder-cli/2.24.1", 50),
    ("coder-cli/2.23.4", 25),
    ("coder-cli/2.25.0", 15),
    ("coder-cli/2.22.2", 10),
];
