//! `connection_log_method`: how a connection was established (migration 000614).

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectionMethod {
    Ssh,
    ReconnectingPty,
    WorkspaceApp,
    PortForwarding,
    Tunnel,
}

/// A method name Coder does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownMethod(pub String);

impl fmt::Display for UnknownMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a connection method (", self.0)?;
        for (i, m) in ConnectionMethod::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(m.as_str())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownMethod {}

impl ConnectionMethod {
    /// In the enum's order, which is also each method's index in a replay batch.
    pub const ALL: [Self; 5] = [
        Self::Ssh,
        Self::ReconnectingPty,
        Self::WorkspaceApp,
        Self::PortForwarding,
        Self::Tunnel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ssh => "ssh",
            Self::ReconnectingPty => "reconnecting_pty",
            Self::WorkspaceApp => "workspace_app",
            Self::PortForwarding => "port_forwarding",
            Self::Tunnel => "tunnel",
        }
    }

    /// The exact lowercase name, as Coder's enum parses it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// SSH and the web terminal: their `app_name_or_port` is the client's app name, their
    /// rows carry `ssh_info`, and only they match `status:` and `app:`.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Ssh | Self::ReconnectingPty)
    }

    /// The position in [`Self::ALL`].
    pub fn index(self) -> u8 {
        self as u8
    }

    pub fn from_index(index: u8) -> Option<Self> {
        Self::ALL.get(usize::from(index)).copied()
    }
}

impl fmt::Display for ConnectionMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConnectionMethod {
    type Err = UnknownMethod;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::parse(name).ok_or_else(|| UnknownMethod(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectionMethod;

    /// Spec §11.6.
    #[test]
    fn valid_methods() {
        for m in ConnectionMethod::ALL {
            assert_eq!(ConnectionMethod::parse(m.as_str()), Some(m));
            assert_eq!(ConnectionMethod::from_index(m.index()), Some(m));
        }
        for bad in ["", "vscode", "jetbrains", "unknown", "SSH"] {
            assert_eq!(ConnectionMethod::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            "vscode"
                .parse::<ConnectionMethod>()
                .unwrap_err()
                .to_string(),
            "\"vscode\" is not a connection method (ssh, reconnecting_pty, workspace_app, \
             port_forwarding, tunnel)"
        );
    }
}
