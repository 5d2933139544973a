//! Helpers shared by the integration tests: a data directory with a small directory file,
//! events in the input format, and the `connlog` binary.

#![allow(dead_code)]

pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const ORG: &str = "1a2bb67e-0117-4168-92e0-58138989a7f5";
pub const OTHER_ORG: &str = "2b3cc78f-1228-4279-a3f1-69249a9ab8a6";
pub const ADMIN: &str = "fe8f4bab-3128-41f1-8fec-1cc0755affe5";
pub const MEMBER: &str = "0d9c1f3e-4b5a-4c6d-8e7f-a0b1c2d3e4f5";
pub const ORG_AUDITOR: &str = "1e2f3a4b-5c6d-4e7f-8a9b-c0d1e2f3a4b5";

/// A data directory holding `directory.json` with an owner (`admin`), a plain member
/// (`member`) and an auditor of the first organization (`orgaudit`).
pub fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("directory.json"), directory_json()).unwrap();
    dir
}

pub fn directory_json() -> String {
    let user = |id: &str, name: &str, roles: &str, org_roles: &str| {
        format!(
            r#"{{"id":"{id}","username":"{name}","email":"{name}@example.com","name":"","avatar_url":"","status":"active","login_type":"password","created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z","last_seen_at":"2025-07-01T00:00:00Z","deleted":false,"roles":[{roles}],"organization_roles":{{{org_roles}}}}}"#
        )
    };
    format!(
        r#"{{"organizations":[{{"id":"{ORG}","name":"coder","display_name":"Coder","icon":""}},{{"id":"{OTHER_ORG}","name":"other","display_name":"Other","icon":""}}],
"users":[{},{},{}],"api_tokens":[]}}"#,
        user(
            ADMIN,
            "admin",
            r#""owner""#,
            &format!(r#""{ORG}":["organization-member"]"#)
        ),
        user(
            MEMBER,
            "member",
            "",
            &format!(r#""{ORG}":["organization-member"]"#)
        ),
        user(
            ORG_AUDITOR,
            "orgaudit",
            "",
            &format!(r#""{ORG}":["organization-auditor"]"#)
        ),
    )
}

/// One event line in the input format. `connection_id` is `None` for web and tunnel events.
pub fn event_line(
    id: &str,
    time: &str,
    org: &str,
    kind: &str,
    connection_id: Option<&str>,
    status: &str,
) -> String {
    let connection = connection_id.map_or("null".to_string(), |c| format!("\"{c}\""));
    let user = if connection_id.is_none() {
        format!("\"{ADMIN}\"")
    } else {
        "null".into()
    };
    let code = if status == "disconnected" || connection_id.is_none() {
        "200"
    } else {
        "null"
    };
    format!(
        r#"{{"ID":"{id}","Time":"{time}","OrganizationID":"{org}","WorkspaceOwnerID":"{ADMIN}","WorkspaceID":"05567e23-31e2-4c00-bd05-4d499d437347","WorkspaceName":"dev","AgentName":"main","Type":"{kind}","Code":{code},"Ip":"127.0.0.1","UserAgent":"","UserID":{user},"SlugOrPort":"","ConnectionID":{connection},"DisconnectReason":"","ConnectionStatus":"{status}"}}"#
    )
}

pub const CONNECT: &str = "ca5dfc63-dc43-463a-bb3e-38526866fd4b";
pub const DISCONNECT: &str = "da5dfc63-dc43-463a-bb3e-38526866fd4b";
pub const WEB: &str = "f0249951-d454-48f6-9504-e73340fa07b7";
pub const SESSION: &str = "7a6fafdc-e3d0-43cb-a1b7-1f19802d7908";

/// An SSH session (connect, then disconnect) in the first organization and a workspace-app
/// open in the other: two rows.
pub fn sample_events() -> String {
    [
        event_line(
            CONNECT,
            "2025-07-10T10:14:38.942776145Z",
            ORG,
            "ssh",
            Some(SESSION),
            "connected",
        ),
        event_line(
            DISCONNECT,
            "2025-07-10T11:14:38Z",
            ORG,
            "ssh",
            Some(SESSION),
            "disconnected",
        ),
        event_line(
            WEB,
            "2025-07-03T06:57:16.144719Z",
            OTHER_ORG,
            "workspace_app",
            None,
            "connected",
        ),
    ]
    .join("\n")
}

pub fn connlog_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_connlog"))
}

/// `connlog --data <data>` with a private compile cache and no inherited data directory or
/// retention setting.
pub fn connlog_command(data: &Path) -> Command {
    let mut command = Command::new(connlog_bin());
    command
        .arg("--data")
        .arg(data)
        .env("CONNLOG_CACHE_DIR", data.join(".cache"))
        .env_remove("CODER_CONNECTION_LOGS_RETENTION")
        .env_remove("CONNLOG_DATA");
    command
}

/// Runs `connlog --data <data> <args…>` (see [`connlog_command`]) with `stdin`.
pub fn connlog(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = connlog_command(data)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning connlog");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            stdout(output),
            stderr(output)
        )
    })
}
