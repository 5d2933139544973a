//! `Coder-Session-Token` authentication against the directory's hashed tokens, with Coder's
//! 401 bodies (`coderd/httpmw/apikey.go`).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use axum::http::HeaderMap;

use crate::directory::{Directory, ROLE_OWNER, TokenRejection};
use crate::model::Actor;

/// The header Coder's clients send.
pub const SESSION_TOKEN_HEADER: &str = "Coder-Session-Token";
/// The cookie and query parameter Coder also reads.
pub const SESSION_TOKEN_COOKIE: &str = "coder_session_token";

/// Coder's `SignedOutErrorMessage`.
pub const SIGNED_OUT_MESSAGE: &str =
    "You are signed out or your session has expired. Please sign in again to continue.";

/// Why a request is not authenticated: Coder's message and detail, sent with a 401.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unauthorized {
    pub message: String,
    pub detail: Option<String>,
}

impl Unauthorized {
    fn signed_out(detail: impl Into<String>) -> Self {
        Self {
            message: SIGNED_OUT_MESSAGE.to_owned(),
            detail: Some(detail.into()),
        }
    }
}

/// Who made a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub actor: Actor,
}

impl Caller {
    pub fn is_owner(&self) -> bool {
        self.actor.site_roles.iter().any(|r| r == ROLE_OWNER)
    }
}

/// Checks tokens against the directory file, re-reading it when it changes on disk (so
/// that `connlog token create` works while the server runs).
pub struct Authenticator {
    path: Option<PathBuf>,
    current: RwLock<(Option<FileStamp>, Arc<Directory>)>,
}

/// What tells one version of the directory file from another: saves replace the file
/// (a new inode), and two saves within one tick of the file system's clock share an mtime.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: SystemTime,
    inode: u64,
    len: u64,
}

impl Authenticator {
    /// `path` is re-read when it changes (`FileStamp`); `None` never re-reads.
    pub fn new(directory: Arc<Directory>, path: Option<PathBuf>) -> Self {
        let mtime = path.as_ref().and_then(|p| modified(p));
        Self {
            path,
            current: RwLock::new((mtime, directory)),
        }
    }

    /// The directory as it is now on disk (or as loaded, if it cannot be read).
    pub fn directory(&self) -> Arc<Directory> {
        let Some(path) = &self.path else {
            return self.read().1.clone();
        };
        let mtime = modified(path);
        {
            let current = self.read();
            if current.0 == mtime {
                return current.1.clone();
            }
        }
        match Directory::load(path) {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
                *current = (mtime, fresh.clone());
                fresh
            }
            Err(e) => {
                // Remember the broken file's time too, so it is not re-read on every request.
                tracing::warn!("keeping the directory as loaded: {e}");
                let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
                current.0 = mtime;
                current.1.clone()
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (Option<FileStamp>, Arc<Directory>)> {
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The caller behind a request's token, or Coder's 401 reason.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Caller, Unauthorized> {
        self.authenticate_token(&token_from_request(headers, query))
    }

    /// The caller behind `token` (wherever it came from), or Coder's 401 reason.
    pub fn authenticate_token(&self, token: &str) -> Result<Caller, Unauthorized> {
        if token.is_empty() {
            return Err(Unauthorized::signed_out(format!(
                "Cookie {SESSION_TOKEN_COOKIE:?} or query parameter must be provided."
            )));
        }
        let (id, secret) = split_api_token(token)
            .map_err(|e| Unauthorized::signed_out(format!("Invalid API key format: {e}")))?;
        let directory = self.directory();
        let user = directory.check_token(id, secret).map_err(|rejection| {
            Unauthorized::signed_out(match rejection {
                TokenRejection::Unknown => "API key is invalid.",
                TokenRejection::WrongSecret => "API key secret is invalid.",
            })
        })?;
        if user.status == "suspended" {
            return Err(Unauthorized {
                message: format!(
                    "User is not active (status = {:?}). Contact an admin to reactivate your account.",
                    user.status
                ),
                detail: None,
            });
        }
        let actor = directory.actor(user.id).expect("the user was just found");
        Ok(Caller { actor })
    }
}

fn modified(path: &std::path::Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: meta.modified().ok()?,
        inode: meta.ino(),
        len: meta.len(),
    })
}

/// Coder's `ApiTokenFromRequest`: the cookie, then the query parameter, then the header.
fn token_from_request(headers: &HeaderMap, query: Option<&str>) -> String {
    for cookie in headers.get_all(axum::http::header::COOKIE) {
        let Ok(cookie) = cookie.to_str() else {
            continue;
        };
        for pair in cookie.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=')
                && name == SESSION_TOKEN_COOKIE
                && !value.is_empty()
            {
                return value.to_owned();
            }
        }
    }
    if let Some(query) = query
        && let Some((_, value)) =
            form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == SESSION_TOKEN_COOKIE)
        && !value.is_empty()
    {
        return value.into_owned();
    }
    headers
        .get(SESSION_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Coder's `SplitAPIToken`: `<10-char id>-<22-char secret>`.
fn split_api_token(token: &str) -> Result<(&str, &str), String> {
    let parts: Vec<&str> = token.split('-').collect();
    if parts.len() != 2 {
        return Err(format!(
            "incorrect amount of API key parts, expected 2 got {}",
            parts.len()
        ));
    }
    let (id, secret) = (parts[0], parts[1]);
    if id.len() != 10 {
        return Err(format!(
            "invalid API key ID length, expected 10 got {}",
            id.len()
        ));
    }
    if secret.len() != 22 {
        return Err(format!(
            "invalid API key secret length, expected 22 got {}",
            secret.len()
        ));
    }
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_formats_as_coder_reports_them() {
        assert!(split_api_token("abcdefghij-abcdefghijabcdefghijab").is_ok());
        assert_eq!(
            split_api_token("nodash").unwrap_err(),
            "incorrect amount of API key parts, expected 2 got 1"
        );
        assert_eq!(
            split_api_token("abc-abcdefghijabcdefghijab").unwrap_err(),
            "invalid API key ID length, expected 10 got 3"
        );
        assert_eq!(
            split_api_token("abcdefghij-short").unwrap_err(),
            "invalid API key secret length, expected 22 got 5"
        );
    }

    #[test]
    fn a_file_saved_twice_within_one_clock_tick_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.json");
        let mut directory = Directory::from_json(
            r#"{"organizations": [], "users": [{"id": "0d9c1f3e-4b5a-4c6d-8e7f-a0b1c2d3e4f5",
                "username": "alice", "email": "alice@example.com",
                "created_at": "2025-01-01T00:00:00Z"}]}"#,
            &path,
        )
        .unwrap();
        let first = directory.create_token("alice").unwrap();
        directory.save(&path).unwrap();
        let auth = Authenticator::new(
            Arc::new(Directory::load(&path).unwrap()),
            Some(path.clone()),
        );
        assert!(auth.authenticate_token(&first).is_ok());
        let first_saved = std::fs::metadata(&path).unwrap().modified().unwrap();

        let second = directory.create_token("alice").unwrap();
        directory.save(&path).unwrap();
        // As if both saves fell within one tick of the file system's clock.
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(first_saved)
            .unwrap();
        assert!(auth.authenticate_token(&second).is_ok());
    }

    #[test]
    fn token_sources_in_coders_order() {
        let mut headers = HeaderMap::new();
        headers.insert(SESSION_TOKEN_HEADER, "from-header".parse().unwrap());
        assert_eq!(token_from_request(&headers, None), "from-header");
        assert_eq!(
            token_from_request(&headers, Some("coder_session_token=from-query&q=x")),
            "from-query"
        );
        headers.insert(
            axum::http::header::COOKIE,
            "a=b; coder_session_token=from-cookie".parse().unwrap(),
        );
        assert_eq!(
            token_from_request(&headers, Some("coder_session_token=from-query")),
            "from-cookie"
        );
        assert_eq!(token_from_request(&HeaderMap::new(), None), "");
    }
}
