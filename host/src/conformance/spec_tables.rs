//! Spec tables (`coder-connection-logs-current.md` §11) that more than one judge runs: the
//! kit's cases, the reference plugin's native tests and the REST API's end-to-end tests
//! read the same rows, so that a table is written once, as the spec writes it.

use crate::model::ConnectionMethod::{
    self, PortForwarding, ReconnectingPty, Ssh, Tunnel, WorkspaceApp,
};

/// §11.8 (`TestConnectionLogs/AppName`): one workspace's rows as (letter, method, app name
/// or port). The agent's rows carry connection ids, web and tunnel rows none (the tunnel's
/// code is 101); none is disconnected.
pub const APP_FIXTURE: [(char, ConnectionMethod, Option<&str>); 10] = [
    ('A', Ssh, None),
    ('B', Ssh, Some("cursor")),
    ('C', Ssh, Some("vscode")),
    ('D', Ssh, Some("goland")),
    ('E', Ssh, Some("an_unregistered_ide")),
    ('F', ReconnectingPty, None),
    ('G', ReconnectingPty, Some("cursor")),
    ('H', WorkspaceApp, Some("cursor")),
    ('I', PortForwarding, Some("8080")),
    ('J', Tunnel, None),
];

/// (q, the letters of the rows it returns): §11.8's table, then the queries of a current
/// dashboard and old bookmarks (§10.12), and `app:` lists, spellings and exactness (§6.2).
pub const APP_FIXTURE_QUERIES: [(&str, &str); 27] = [
    ("", "ABCDEFGHIJ"),
    ("type:vscode", "BC"),
    ("type:jetbrains", "D"),
    ("type:ssh", "AE"),
    ("type:reconnecting_pty", "FG"),
    ("type:workspace_app", "H"),
    ("type:port_forwarding", "I"),
    ("type:tunnel", "J"),
    ("method:ssh", "ABCDE"),
    ("method:reconnecting_pty", "FG"),
    ("method:workspace_app", "H"),
    ("app:cursor", "BG"),
    ("app:vscode", "C"),
    ("app:8080", ""),
    ("method:workspace_app app:cursor", ""),
    ("method:ssh app:cursor", "B"),
    ("method:reconnecting_pty app:cursor", "G"),
    ("status:ongoing", "ABCDEFG"),
    ("status:completed", ""),
    ("status:ongoing method:ssh", "ABCDE"),
    ("type:ssh status:ongoing", "AE"),
    ("app:cursor,goland", "BDG"),
    ("app:Cursor,GoLand", "BDG"),
    ("app:vscode app:Cursor app:cursor method:ssh", "BC"),
    ("app:vscode app:an_unregistered_ide", "CE"),
    ("app:An-Unregistered-IDE", "E"),
    ("app:code_server", ""),
];

/// (q, its validations in order as (field, detail)): §11.8's 400s, and §6.2's rules: an
/// invalid `type` is no type (one error, not two), the order of the keys, a repeated key,
/// D2's `family:` gone.
pub fn app_fixture_refusals() -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let invalid = |key: &'static str, value: &str| {
        (
            key,
            format!(r#"Query param "{key}" has invalid value: "{value}" is not a valid value"#),
        )
    };
    let combined = || {
        (
            "type",
            "type cannot be combined with method or app".to_string(),
        )
    };
    vec![
        ("type:unknown", vec![invalid("type", "unknown")]),
        ("type:cursor", vec![invalid("type", "cursor")]),
        ("method:vscode", vec![invalid("method", "vscode")]),
        ("method:unknown", vec![invalid("method", "unknown")]),
        ("type:ssh method:ssh", vec![combined()]),
        ("type:vscode app:cursor", vec![combined()]),
        ("method:reconnecting_pty type:vscode", vec![combined()]),
        ("method:tunnel type:ssh", vec![combined()]),
        ("type:cursor method:ssh", vec![invalid("type", "cursor")]),
        (
            "type:bogus method:foo status:sometimes",
            vec![
                invalid("status", "sometimes"),
                invalid("method", "foo"),
                invalid("type", "bogus"),
            ],
        ),
        (
            "method:ssh method:tunnel",
            vec![(
                "method",
                r#"Query param "method" provided more than once, found 2 times. Only provide 1 instance of this query param."#
                    .to_string(),
            )],
        ),
        (
            "family:vscode",
            vec![("family", r#""family" is not a valid query param"#.to_string())],
        ),
    ]
}

/// How a row is returned: (letter, `type`, `connection_method`, `app_name`,
/// `web_info.slug_or_port`; `None` where the key is absent).
pub type RowShape = (
    char,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

/// How §11.8's rows are returned.
pub const APP_FIXTURE_SHAPES: [RowShape; 10] = [
    ('A', "ssh", "ssh", None, None),
    ('B', "vscode", "ssh", Some("cursor"), None),
    ('C', "vscode", "ssh", Some("vscode"), None),
    ('D', "jetbrains", "ssh", Some("goland"), None),
    ('E', "ssh", "ssh", Some("an_unregistered_ide"), None),
    ('F', "reconnecting_pty", "reconnecting_pty", None, None),
    (
        'G',
        "reconnecting_pty",
        "reconnecting_pty",
        Some("cursor"),
        None,
    ),
    ('H', "workspace_app", "workspace_app", None, Some("cursor")),
    (
        'I',
        "port_forwarding",
        "port_forwarding",
        None,
        Some("8080"),
    ),
    ('J', "tunnel", "tunnel", None, Some("")),
];

/// §8: the fields of Coder's current `connection_log` service-log line, in its order.
pub const CURRENT_LOG_FIELDS: [&str; 17] = [
    "ID",
    "OrganizationID",
    "WorkspaceOwnerID",
    "WorkspaceID",
    "WorkspaceName",
    "AgentName",
    "ConnectionMethod",
    "Code",
    "IP",
    "UserAgent",
    "UserID",
    "AppNameOrPort",
    "ConnectionID",
    "DisconnectReason",
    "ClientSessionID",
    "Time",
    "ConnectionStatus",
];
