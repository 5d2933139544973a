//! Helpers shared by the integration tests: a data directory with a small directory file,
//! events in the input format, and the `connlog` binary.

#![allow(dead_code)]

pub mod postgres;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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

pub const WORKSPACE: &str = "05567e23-31e2-4c00-bd05-4d499d437347";

/// An event in the input format, built field by field. [`Event::line`] writes Coder's
/// current fields (spec §8), [`Event::seed_line`] the seed's (`Type`, `SlugOrPort`, `Ip`).
/// Empty strings are written as Coder's service log writes absent values.
#[derive(Clone, Debug)]
pub struct Event {
    pub id: String,
    pub time: String,
    pub org: String,
    pub workspace_id: String,
    /// `ConnectionMethod` in a current line, `Type` in a seed line.
    pub kind: String,
    /// `AppNameOrPort` in a current line, `SlugOrPort` in a seed line.
    pub app: String,
    pub code: Option<i32>,
    pub ip: String,
    pub user_agent: String,
    pub user_id: Option<String>,
    pub connection_id: Option<String>,
    pub disconnect_reason: String,
    pub client_session_id: String,
    pub status: String,
}

impl Event {
    /// An agent's connect: a session of `kind` under `connection_id`, from 127.0.0.1.
    pub fn agent(id: &str, time: &str, kind: &str, connection_id: &str) -> Self {
        Self {
            id: id.into(),
            time: time.into(),
            org: ORG.into(),
            workspace_id: WORKSPACE.into(),
            kind: kind.into(),
            app: String::new(),
            code: None,
            ip: "127.0.0.1".into(),
            user_agent: String::new(),
            user_id: None,
            connection_id: Some(connection_id.into()),
            disconnect_reason: String::new(),
            client_session_id: String::new(),
            status: "connected".into(),
        }
    }

    /// A web or tunnel event by the owner, answered 200.
    pub fn web(id: &str, time: &str, kind: &str) -> Self {
        Self {
            code: Some(200),
            user_id: Some(ADMIN.into()),
            connection_id: None,
            ..Self::agent(id, time, kind, "")
        }
    }

    pub fn app(self, app: &str) -> Self {
        Self {
            app: app.into(),
            ..self
        }
    }

    pub fn csid(self, client_session_id: &str) -> Self {
        Self {
            client_session_id: client_session_id.into(),
            ..self
        }
    }

    pub fn ip(self, ip: &str) -> Self {
        Self {
            ip: ip.into(),
            ..self
        }
    }

    pub fn code(self, code: Option<i32>) -> Self {
        Self { code, ..self }
    }

    pub fn user_agent(self, user_agent: &str) -> Self {
        Self {
            user_agent: user_agent.into(),
            ..self
        }
    }

    pub fn workspace(self, workspace_id: &str) -> Self {
        Self {
            workspace_id: workspace_id.into(),
            ..self
        }
    }

    /// The disconnect of this session, with its exit code and reason.
    pub fn disconnect(self, code: Option<i32>, reason: &str) -> Self {
        Self {
            code,
            disconnect_reason: reason.into(),
            status: "disconnected".into(),
            ..self
        }
    }

    /// Coder's current fields, in the order of spec §8.
    pub fn line(&self) -> String {
        self.fields(false)
    }

    /// The seed's fields, in the order of Coder's docs example. It has no client session id.
    pub fn seed_line(&self) -> String {
        self.fields(true)
    }

    /// Both generations name three fields apart and order them alike; only the current one
    /// has `ClientSessionID`.
    fn fields(&self, seed: bool) -> String {
        let s = |v: &str| serde_json::to_string(v).unwrap();
        let generation = |current: &'static str, seed_name: &'static str| {
            if seed { seed_name } else { current }
        };
        let mut fields = vec![
            ("ID", s(&self.id)),
            ("OrganizationID", s(&self.org)),
            ("WorkspaceOwnerID", s(ADMIN)),
            ("WorkspaceID", s(&self.workspace_id)),
            ("WorkspaceName", s("dev")),
            ("AgentName", s("main")),
            (generation("ConnectionMethod", "Type"), s(&self.kind)),
            ("Code", json_or_null(self.code)),
            (generation("IP", "Ip"), s(&self.ip)),
            ("UserAgent", s(&self.user_agent)),
            ("UserID", json_or_null(self.user_id.as_deref())),
            (generation("AppNameOrPort", "SlugOrPort"), s(&self.app)),
            ("ConnectionID", json_or_null(self.connection_id.as_deref())),
            ("DisconnectReason", s(&self.disconnect_reason)),
        ];
        if !seed {
            fields.push(("ClientSessionID", s(&self.client_session_id)));
        }
        fields.extend([
            ("Time", s(&self.time)),
            ("ConnectionStatus", s(&self.status)),
        ]);
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", fields.join(","))
    }
}

fn json_or_null<T: serde::Serialize>(value: Option<T>) -> String {
    serde_json::to_string(&value).unwrap()
}

/// One event line in Coder's current fields. `connection_id` is `None` for web and tunnel
/// events, which come from the owner and are answered 200.
pub fn event_line(
    id: &str,
    time: &str,
    org: &str,
    method: &str,
    connection_id: Option<&str>,
    status: &str,
) -> String {
    let event = match connection_id {
        Some(c) => Event::agent(id, time, method, c),
        None => Event::web(id, time, method),
    };
    let event = if status == "disconnected" {
        event.disconnect(Some(200), "")
    } else {
        event
    };
    Event {
        org: org.into(),
        ..event
    }
    .line()
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

/// A token for `user`, made with `connlog token create`.
pub fn token(data: &Path, user: &str) -> String {
    let out = connlog(data, &["token", "create", "--user", user], None);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    stdout(&out).trim().to_owned()
}

pub fn body_json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
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

/// Polls `done` every 10 ms until it holds, and returns how long that took; fails the test
/// with `what()` once `within` has passed.
pub fn eventually(
    within: Duration,
    mut done: impl FnMut() -> bool,
    what: impl Fn() -> String,
) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < within,
            "after {:?}: {}",
            started.elapsed(),
            what()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}
