//! A running `connlog serve` on 127.0.0.1, and an HTTP client for it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use super::connlog_command;

/// A running `connlog serve`, killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    agent: ureq::Agent,
}

impl Server {
    pub fn start(data: &Path) -> Self {
        Self::start_with(data, &[])
    }

    /// `global` goes before `serve`, e.g. `["--plugin", path]`.
    pub fn start_with(data: &Path, global: &[&str]) -> Self {
        Self::start_args(data, global, &[])
    }

    /// `global` goes before `serve`, `serve_args` after it.
    pub fn start_args(data: &Path, global: &[&str], serve_args: &[&str]) -> Self {
        let mut child = connlog_command(data)
            .args(global)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(serve_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning connlog serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Self { child, base, agent }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        self.try_get(path, token).unwrap()
    }

    /// One line of `/metrics`, by metric name.
    pub fn metric(&self, name: &str) -> String {
        let (_, text) = self.get("/metrics", None);
        text.lines()
            .find(|l| l.split(' ').next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
            .to_owned()
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        self.try_post(path, token, body).unwrap()
    }
}

impl Server {
    /// [`Server::get`] that reports a transport failure (connection refused or reset…)
    /// instead of panicking, for threads that must count failures rather than die.
    pub fn try_get(&self, path: &str, token: Option<&str>) -> Result<(u16, String), String> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Coder-Session-Token", token);
        }
        let mut response = request.call().map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("GET {path}: reading the body: {e}"))?;
        Ok((status, body))
    }

    /// [`Server::post`] that reports a transport failure instead of panicking.
    pub fn try_post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> Result<(u16, String), String> {
        let mut request = self.agent.post(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Coder-Session-Token", token);
        }
        let mut response = request
            .send(body)
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("POST {path}: reading the body: {e}"))?;
        Ok((status, body))
    }
}

impl Server {
    /// Stops the server as an operator would (SIGTERM) and waits for it to exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        self.child.wait().unwrap()
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
