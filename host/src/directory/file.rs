//! The directory file: reading and checking it (reporting every problem), writing it back, and
//! the JSON records it is made of.

use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ApiToken, Directory, DirectoryError, Member};
use crate::events::{format_time, parse_time};
use crate::model::{Organization, UnixNanos, User, Uuid};

impl Directory {
    /// Reads and checks a directory file, reporting every problem found.
    pub fn load(path: &Path) -> Result<Self, DirectoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| DirectoryError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// As [`Directory::load`], but a missing file is an empty directory.
    pub fn load_or_empty(path: &Path) -> Result<Self, DirectoryError> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::new()),
            _ => Self::load(path),
        }
    }

    /// Parses a directory; `path` only names the source in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, DirectoryError> {
        let file: DirectoryFile = serde_json::from_str(text).map_err(|e| {
            let full = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            DirectoryError::Json {
                path: path.to_owned(),
                line: e.line(),
                column: e.column(),
                message: full.strip_suffix(&suffix).unwrap_or(&full).to_owned(),
            }
        })?;
        let mut dir = Self::new();
        let mut problems = Vec::new();
        for (i, org) in file.organizations.into_iter().enumerate() {
            if let Err(p) = dir.insert_organization(org.into()) {
                problems.push(format!("organizations[{i}]: {p}"));
            }
        }
        for (i, user) in file.users.into_iter().enumerate() {
            let result = user.into_member().and_then(|m| dir.insert_member(m));
            if let Err(p) = result {
                problems.push(format!("users[{i}]: {p}"));
            }
        }
        for (i, token) in file.api_tokens.into_iter().enumerate() {
            let result = token.into_token().and_then(|t| dir.insert_token(t));
            if let Err(p) = result {
                problems.push(format!("api_tokens[{i}]: {p}"));
            }
        }
        if problems.is_empty() {
            Ok(dir)
        } else {
            Err(DirectoryError::Invalid {
                path: path.to_owned(),
                problems,
            })
        }
    }

    /// The file's text: pretty JSON, in insertion order.
    pub fn to_json(&self) -> String {
        let file = DirectoryFile {
            organizations: self
                .organizations
                .iter()
                .map(OrganizationRecord::from)
                .collect(),
            users: self.members.iter().map(UserRecord::from).collect(),
            api_tokens: self.tokens.iter().map(TokenRecord::from).collect(),
        };
        let mut text =
            serde_json::to_string_pretty(&file).expect("the directory always serialises");
        text.push('\n');
        text
    }

    /// Writes the file atomically (mode 0600 on Unix: it holds emails and token hashes).
    pub fn save(&self, path: &Path) -> Result<(), DirectoryError> {
        write_atomic(path, self.to_json().as_bytes()).map_err(|source| DirectoryError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

/// Writes a file so that readers see the old or the new content, never a mix: a temporary
/// file in the same folder, synced, renamed over the target, then the folder synced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_file(path, bytes, true)
}

/// `write_atomic` without the syncs: readers still see the old or the new content, but
/// after a power loss the file may be the old one, or missing. For records whose loss is
/// safe (`store::seal`'s running seal) and that are written too often to sync.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_file(path, bytes, false)
}

fn replace_file(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    #[cfg(unix)]
    if sync && let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

// ----- the file's shape -----

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    #[serde(default)]
    organizations: Vec<OrganizationRecord>,
    #[serde(default)]
    users: Vec<UserRecord>,
    #[serde(default)]
    api_tokens: Vec<TokenRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganizationRecord {
    id: Uuid,
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    icon: String,
}

impl From<OrganizationRecord> for Organization {
    fn from(r: OrganizationRecord) -> Self {
        Organization {
            id: r.id,
            name: r.name,
            display_name: r.display_name,
            icon: r.icon,
        }
    }
}

impl From<&Organization> for OrganizationRecord {
    fn from(o: &Organization) -> Self {
        OrganizationRecord {
            id: o.id,
            name: o.name.clone(),
            display_name: o.display_name.clone(),
            icon: o.icon.clone(),
        }
    }
}

fn default_status() -> String {
    "active".into()
}

fn default_login_type() -> String {
    "password".into()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRecord {
    id: Uuid,
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    avatar_url: String,
    #[serde(default = "default_status")]
    status: String,
    #[serde(default = "default_login_type")]
    login_type: String,
    created_at: String,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    last_seen_at: Option<String>,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    organization_roles: BTreeMap<Uuid, Vec<String>>,
}

fn time_field(name: &str, value: &str) -> Result<UnixNanos, String> {
    parse_time(value).map_err(|e| format!("{name} {value:?}: {e}"))
}

impl UserRecord {
    fn into_member(self) -> Result<Member, String> {
        let created_at = time_field("created_at", &self.created_at)?;
        let updated_at = match &self.updated_at {
            Some(t) => time_field("updated_at", t)?,
            None => created_at,
        };
        let last_seen_at = match &self.last_seen_at {
            Some(t) => time_field("last_seen_at", t)?,
            None => created_at,
        };
        Ok(Member {
            user: User {
                id: self.id,
                username: self.username,
                email: self.email,
                name: self.name,
                avatar_url: self.avatar_url,
                status: self.status,
                login_type: self.login_type,
                created_at,
                updated_at,
                last_seen_at,
                deleted: self.deleted,
                site_roles: self.roles,
            },
            organization_roles: self.organization_roles,
        })
    }
}

impl From<&Member> for UserRecord {
    fn from(m: &Member) -> Self {
        let u = &m.user;
        UserRecord {
            id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            avatar_url: u.avatar_url.clone(),
            status: u.status.clone(),
            login_type: u.login_type.clone(),
            created_at: format_time(u.created_at),
            updated_at: Some(format_time(u.updated_at)),
            last_seen_at: Some(format_time(u.last_seen_at)),
            deleted: u.deleted,
            roles: u.site_roles.clone(),
            organization_roles: m.organization_roles.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRecord {
    id: String,
    user_id: Uuid,
    /// Hex SHA-256 of the token's secret.
    hash: String,
    created_at: String,
}

impl TokenRecord {
    fn into_token(self) -> Result<ApiToken, String> {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&self.hash, &mut hash)
            .map_err(|_| format!("token {:?}: hash is not 64 hex digits", self.id))?;
        Ok(ApiToken {
            created_at: time_field("created_at", &self.created_at)?,
            id: self.id,
            user_id: self.user_id,
            hash,
        })
    }
}

impl From<&ApiToken> for TokenRecord {
    fn from(t: &ApiToken) -> Self {
        TokenRecord {
            id: t.id.clone(),
            user_id: t.user_id,
            hash: hex::encode(t.hash),
            created_at: format_time(t.created_at),
        }
    }
}
