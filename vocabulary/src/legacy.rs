//! The generation before connection methods: Coder's 7-value `connection_type`, which the
//! API still returns as a deprecated `type` and the `type:` filter still takes, and
//! migration 000614, which turned it into a method and an app.

use std::fmt;

use crate::app::{AppFamily, app_family, apps_in_family};
use crate::method::ConnectionMethod;

/// The released `connection_type` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LegacyType {
    Ssh,
    Vscode,
    Jetbrains,
    ReconnectingPty,
    WorkspaceApp,
    PortForwarding,
    Tunnel,
}

/// What `type:` means in method and app terms (Coder's `applyConnectionTypeFilter`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeFilter {
    pub method: ConnectionMethod,
    /// Only rows with one of these apps; `None`: any app.
    pub apps: Option<Vec<&'static str>>,
    /// Rows with one of these apps are left out (rows with no app stay).
    pub excluded_apps: Vec<&'static str>,
}

impl LegacyType {
    pub const ALL: [Self; 7] = [
        Self::Ssh,
        Self::Vscode,
        Self::Jetbrains,
        Self::ReconnectingPty,
        Self::WorkspaceApp,
        Self::PortForwarding,
        Self::Tunnel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ssh => "ssh",
            Self::Vscode => "vscode",
            Self::Jetbrains => "jetbrains",
            Self::ReconnectingPty => "reconnecting_pty",
            Self::WorkspaceApp => "workspace_app",
            Self::PortForwarding => "port_forwarding",
            Self::Tunnel => "tunnel",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The position in [`Self::ALL`].
    pub fn index(self) -> u8 {
        self as u8
    }

    /// The deprecated `type` of a row (Coder's `db2sdk.ConnectionLogType`): the app's
    /// family for SSH from a VS Code or JetBrains app, else the method's name.
    pub fn of(method: ConnectionMethod, app: Option<&str>) -> Self {
        match method {
            ConnectionMethod::Ssh => match app.map(app_family) {
                Some(AppFamily::Vscode) => Self::Vscode,
                Some(AppFamily::Jetbrains) => Self::Jetbrains,
                _ => Self::Ssh,
            },
            ConnectionMethod::ReconnectingPty => Self::ReconnectingPty,
            ConnectionMethod::WorkspaceApp => Self::WorkspaceApp,
            ConnectionMethod::PortForwarding => Self::PortForwarding,
            ConnectionMethod::Tunnel => Self::Tunnel,
        }
    }

    /// The rows `type:<self>` matches: exactly those [`Self::of`] returns `self` for.
    pub fn filter(self) -> TypeFilter {
        let only_method = |method| TypeFilter {
            method,
            apps: None,
            excluded_apps: Vec::new(),
        };
        match self {
            Self::Vscode | Self::Jetbrains => TypeFilter {
                method: ConnectionMethod::Ssh,
                apps: Some(apps_in_family(if self == Self::Vscode {
                    AppFamily::Vscode
                } else {
                    AppFamily::Jetbrains
                })),
                excluded_apps: Vec::new(),
            },
            Self::Ssh => {
                let mut excluded = apps_in_family(AppFamily::Vscode);
                excluded.extend(apps_in_family(AppFamily::Jetbrains));
                TypeFilter {
                    method: ConnectionMethod::Ssh,
                    apps: None,
                    excluded_apps: excluded,
                }
            }
            Self::ReconnectingPty => only_method(ConnectionMethod::ReconnectingPty),
            Self::WorkspaceApp => only_method(ConnectionMethod::WorkspaceApp),
            Self::PortForwarding => only_method(ConnectionMethod::PortForwarding),
            Self::Tunnel => only_method(ConnectionMethod::Tunnel),
        }
    }
}

impl fmt::Display for LegacyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An older generation's `(type, slug_or_port)` as a method and an app, as migration
/// 000614 converts them. A `type` outside the 7 values is an app name, which an agent
/// reported over SSH (connlog's earlier contract stored those there): it becomes that app.
pub fn upgrade<'a>(
    connection_type: &'a str,
    slug_or_port: Option<&'a str>,
) -> (ConnectionMethod, Option<&'a str>) {
    let slug = slug_or_port.filter(|s| !s.is_empty());
    match LegacyType::parse(connection_type) {
        Some(LegacyType::Ssh) => (ConnectionMethod::Ssh, None),
        Some(LegacyType::Vscode | LegacyType::Jetbrains) => {
            (ConnectionMethod::Ssh, Some(connection_type))
        }
        Some(LegacyType::ReconnectingPty) => (ConnectionMethod::ReconnectingPty, None),
        Some(LegacyType::WorkspaceApp) => (ConnectionMethod::WorkspaceApp, slug),
        Some(LegacyType::PortForwarding) => (ConnectionMethod::PortForwarding, slug),
        Some(LegacyType::Tunnel) => (ConnectionMethod::Tunnel, None),
        None => (ConnectionMethod::Ssh, Some(connection_type)),
    }
}

/// A method and an app as contract `0.1.0`'s `(connection-type, slug-or-port)`: an SSH
/// app travels as the type, as that contract allowed, so that [`upgrade`] gives it back.
/// What 0.1.0 cannot say is dropped: a web terminal's app, and an SSH app named like a
/// method other than SSH.
pub fn downgrade(method: ConnectionMethod, app: Option<&str>) -> (&str, Option<&str>) {
    match (method, app) {
        (ConnectionMethod::Ssh, Some(app))
            if ConnectionMethod::parse(app).is_none() && !app.is_empty() =>
        {
            (app, None)
        }
        (ConnectionMethod::WorkspaceApp | ConnectionMethod::PortForwarding, slug) => {
            (method.as_str(), slug)
        }
        _ => (method.as_str(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnectionMethod::{PortForwarding, ReconnectingPty, Ssh, Tunnel, WorkspaceApp};

    /// Spec §11.1: migration 000614 up.
    #[test]
    fn migration_000614_up() {
        let cases = [
            ("ssh", None, Ssh, None),
            ("vscode", None, Ssh, Some("vscode")),
            ("jetbrains", None, Ssh, Some("jetbrains")),
            ("reconnecting_pty", None, ReconnectingPty, None),
            (
                "workspace_app",
                Some("code-server"),
                WorkspaceApp,
                Some("code-server"),
            ),
            (
                "port_forwarding",
                Some("8080"),
                PortForwarding,
                Some("8080"),
            ),
            ("tunnel", None, Tunnel, None),
            // What the SQL implies: a slug on an agent or tunnel row is dropped, an empty
            // slug is NULL, and a family type overwrites the slug.
            ("ssh", Some("x"), Ssh, None),
            ("tunnel", Some("x"), Tunnel, None),
            ("vscode", Some("x"), Ssh, Some("vscode")),
            ("workspace_app", Some(""), WorkspaceApp, None),
            // connlog's earlier contract: an app name as the type.
            ("cursor", None, Ssh, Some("cursor")),
        ];
        for (t, slug, method, app) in cases {
            assert_eq!(upgrade(t, slug), (method, app), "upgrading ({t}, {slug:?})");
        }
    }

    #[test]
    fn downgrade_round_trips_what_0_1_0_can_say() {
        let cases = [
            (Ssh, None, "ssh", None),
            (Ssh, Some("cursor"), "cursor", None),
            (Ssh, Some("vscode"), "vscode", None),
            (Ssh, Some("tunnel"), "ssh", None),
            (ReconnectingPty, Some("cursor"), "reconnecting_pty", None),
            (
                WorkspaceApp,
                Some("code-server"),
                "workspace_app",
                Some("code-server"),
            ),
            (
                PortForwarding,
                Some("8080"),
                "port_forwarding",
                Some("8080"),
            ),
            (Tunnel, None, "tunnel", None),
        ];
        for (method, app, t, slug) in cases {
            assert_eq!(downgrade(method, app), (t, slug), "({method}, {app:?})");
        }
        for (method, app) in [
            (Ssh, None),
            (Ssh, Some("cursor")),
            (Ssh, Some("goland")),
            (WorkspaceApp, Some("code-server")),
            (PortForwarding, Some("8080")),
            (Tunnel, None),
        ] {
            let (t, slug) = downgrade(method, app);
            assert_eq!(upgrade(t, slug), (method, app));
        }
    }

    /// Spec §11.5.
    #[test]
    fn deprecated_type_of_a_row() {
        let cases = [
            (Ssh, Some("cursor"), "vscode"),
            (Ssh, Some("jetbrains"), "jetbrains"),
            (Ssh, Some("goland"), "jetbrains"),
            (Ssh, Some("Code-Server"), "vscode"),
            (Ssh, Some(""), "ssh"),
            (Ssh, None, "ssh"),
            (Ssh, Some("zed"), "ssh"),
            (Ssh, Some("an_unregistered_ide"), "ssh"),
            (Ssh, Some("tunnel"), "ssh"),
            (Ssh, Some("sftp"), "ssh"),
            (ReconnectingPty, Some("cursor"), "reconnecting_pty"),
            (WorkspaceApp, Some("cursor"), "workspace_app"),
            (PortForwarding, Some("8080"), "port_forwarding"),
            (Tunnel, None, "tunnel"),
        ];
        for (method, app, want) in cases {
            assert_eq!(
                LegacyType::of(method, app).as_str(),
                want,
                "({method}, {app:?})"
            );
        }
    }

    /// Spec §11.6 and §11.7: the values `type:` takes and what each means.
    #[test]
    fn type_filters() {
        for bad in ["unknown", "cursor", ""] {
            assert_eq!(LegacyType::parse(bad), None);
        }
        let vscode = LegacyType::Vscode.filter();
        assert_eq!(vscode.method, Ssh);
        let apps = vscode.apps.unwrap();
        assert!(apps.contains(&"cursor") && !apps.contains(&"goland"));
        let jetbrains = LegacyType::Jetbrains.filter().apps.unwrap();
        assert!(jetbrains.contains(&"goland") && !jetbrains.contains(&"cursor"));
        let ssh = LegacyType::Ssh.filter();
        assert_eq!(
            (ssh.method, ssh.apps, ssh.excluded_apps.len()),
            (Ssh, None, 31)
        );
        let pty = LegacyType::ReconnectingPty.filter();
        assert_eq!((pty.method, pty.apps), (ReconnectingPty, None));
        assert!(pty.excluded_apps.is_empty());
        // The invariant behind the translation: a row matched by `type:X` reads back as X.
        for t in LegacyType::ALL {
            let f = t.filter();
            for app in crate::REGISTRY.iter().map(|a| Some(a.name)).chain([None]) {
                let matched = f
                    .apps
                    .as_ref()
                    .is_none_or(|apps| app.is_some_and(|a| apps.contains(&a)))
                    && app.is_none_or(|a| !f.excluded_apps.contains(&a));
                if matched {
                    assert_eq!(LegacyType::of(f.method, app), t, "type:{t} matched {app:?}");
                }
            }
        }
    }
}
