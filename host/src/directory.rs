//! The directory file (`directory.json`): the host's stand-in for Coder's `organizations`,
//! `users` and `api_keys` tables.
//!
//! ```json
//! {
//!   "organizations": [{"id": "…", "name": "coder", "display_name": "Coder", "icon": ""}],
//!   "users": [{"id": "…", "username": "alice", "email": "alice@example.com", "name": "Alice",
//!              "avatar_url": "", "status": "active", "login_type": "password",
//!              "created_at": "2025-06-01T09:00:00Z", "updated_at": "…", "last_seen_at": "…",
//!              "deleted": false, "roles": ["auditor"],
//!              "organization_roles": {"<org id>": ["organization-auditor"]}}],
//!   "api_tokens": [{"id": "Xk2…", "user_id": "…", "hash": "<sha256 hex>", "created_at": "…"}]
//! }
//! ```
//!
//! - Membership: a user belongs to exactly the organizations that are keys of
//!   `organization_roles` (an empty list means a plain member).
//! - Uniqueness follows Coder's indexes: ids are unique; organization names are unique
//!   case-insensitively; usernames (case-insensitively) and emails are unique among users
//!   that are not deleted, so a deleted `bob` and a new `bob` may coexist.
//! - Optional user fields: `name`, `avatar_url` (default `""`), `status` (`active`),
//!   `login_type` (`password`), `updated_at` and `last_seen_at` (default `created_at`),
//!   `deleted` (false), `roles` and `organization_roles` (empty). Unknown keys are refused, so
//!   that a misspelt key does not silently drop roles.
//! - Tokens: Coder's format, `<10-char id>-<22-char secret>`. Only the SHA-256 of the secret
//!   is stored, as Coder stores `hashed_secret`; the plain token is shown once, when created.
//! - Look-ups go through indexes built when the file is loaded, so each is O(1).
//! - Saving is atomic: a temporary file in the same folder, synced, then renamed over.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::events::{format_time, parse_time};
use crate::model::{Actor, Organization, UnixNanos, User, Uuid};

/// Site roles and organization roles that the plugin's authorisation looks at.
pub const ROLE_OWNER: &str = "owner";
pub const ROLE_AUDITOR: &str = "auditor";
pub const ROLE_ORGANIZATION_AUDITOR: &str = "organization-auditor";

/// User statuses Coder knows.
pub const USER_STATUSES: [&str; 3] = ["active", "dormant", "suspended"];
/// Login types Coder knows.
pub const LOGIN_TYPES: [&str; 5] = ["password", "github", "oidc", "token", "none"];

const TOKEN_ID_LEN: usize = 10;
const TOKEN_SECRET_LEN: usize = 22;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: bad JSON at line {line}, column {column}: {message}", .path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {}", .path.display(), .problems.join("; "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
    /// A change that would break the directory's rules (duplicate id, unknown organization…).
    #[error("{0}")]
    Conflict(String),
    #[error("no user {0:?} in the directory")]
    UnknownUser(String),
    #[error("user {0:?} is deleted")]
    DeletedUser(String),
    #[error("user {0:?} is suspended")]
    SuspendedUser(String),
}

/// A user with the organizations they belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub user: User,
    /// Organization id → role names held there; the keys are the user's organizations.
    pub organization_roles: BTreeMap<Uuid, Vec<String>>,
}

/// A stored API token: never the token itself, only the hash of its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub user_id: Uuid,
    pub hash: [u8; 32],
    pub created_at: UnixNanos,
}

/// Why [`Directory::check_token`] refused a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRejection {
    /// No such token, or its user is gone.
    Unknown,
    /// The token exists but the secret is wrong.
    WrongSecret,
}

/// Organizations, users and API tokens, with indexes for the look-ups queries make.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    organizations: Vec<Organization>,
    members: Vec<Member>,
    tokens: Vec<ApiToken>,
    org_by_id: HashMap<Uuid, usize>,
    /// Lower-cased name.
    org_by_name: HashMap<String, usize>,
    user_by_id: HashMap<Uuid, usize>,
    /// Lower-cased username; deleted users included.
    users_by_username: HashMap<String, Vec<usize>>,
    users_by_email: HashMap<String, Vec<usize>>,
    members_by_org: HashMap<Uuid, Vec<usize>>,
    token_by_id: HashMap<String, usize>,
}

impl PartialEq for Directory {
    fn eq(&self, other: &Self) -> bool {
        self.organizations == other.organizations
            && self.members == other.members
            && self.tokens == other.tokens
    }
}

impl Directory {
    pub fn new() -> Self {
        Self::default()
    }

    // ----- loading and saving -----

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

    // ----- changes -----

    pub fn add_organization(&mut self, org: Organization) -> Result<(), DirectoryError> {
        self.insert_organization(org)
            .map_err(DirectoryError::Conflict)
    }

    /// Adds a user; `organization_roles` names their organizations, which must exist.
    pub fn add_user(
        &mut self,
        user: User,
        organization_roles: BTreeMap<Uuid, Vec<String>>,
    ) -> Result<(), DirectoryError> {
        self.insert_member(Member {
            user,
            organization_roles,
        })
        .map_err(DirectoryError::Conflict)
    }

    /// Issues an API token for a user (username or id) and returns it: this is the only time the
    /// plain token exists. Only the hash of its secret is kept.
    pub fn create_token(&mut self, username_or_id: &str) -> Result<String, DirectoryError> {
        let user = self.resolve_user(username_or_id)?;
        if user.deleted {
            return Err(DirectoryError::DeletedUser(username_or_id.to_owned()));
        }
        let user_id = user.id;
        let now = now_nanos();
        loop {
            let id = random_alphanumeric(TOKEN_ID_LEN);
            if self.token_by_id.contains_key(&id) {
                continue;
            }
            let secret = random_alphanumeric(TOKEN_SECRET_LEN);
            let token = ApiToken {
                id: id.clone(),
                user_id,
                hash: hash_secret(&secret),
                created_at: now,
            };
            self.insert_token(token).map_err(DirectoryError::Conflict)?;
            return Ok(format!("{id}-{secret}"));
        }
    }

    /// Deletes a token by its id (the part before the `-`); true if it existed.
    pub fn revoke_token(&mut self, id: &str) -> bool {
        let Some(index) = self.token_by_id.remove(id) else {
            return false;
        };
        self.tokens.remove(index);
        self.token_by_id = self
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        true
    }

    // ----- look-ups -----

    pub fn organizations(&self) -> &[Organization] {
        &self.organizations
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.members.iter().map(|m| &m.user)
    }

    pub fn tokens(&self) -> &[ApiToken] {
        &self.tokens
    }

    pub fn organization(&self, id: Uuid) -> Option<&Organization> {
        self.org_by_id.get(&id).map(|&i| &self.organizations[i])
    }

    /// Case-insensitive.
    pub fn organization_named(&self, name: &str) -> Option<&Organization> {
        self.org_by_name
            .get(&name.to_lowercase())
            .map(|&i| &self.organizations[i])
    }

    pub fn user(&self, id: Uuid) -> Option<&User> {
        self.member(id).map(|m| &m.user)
    }

    pub fn member(&self, id: Uuid) -> Option<&Member> {
        self.user_by_id.get(&id).map(|&i| &self.members[i])
    }

    /// Case-insensitive; deleted users included (check `deleted`).
    pub fn users_named(&self, username: &str) -> impl Iterator<Item = &User> {
        self.users_by_username
            .get(&username.to_lowercase())
            .into_iter()
            .flatten()
            .map(|&i| &self.members[i].user)
    }

    /// Exact; deleted users included (check `deleted`).
    pub fn users_with_email(&self, email: &str) -> impl Iterator<Item = &User> {
        self.users_by_email
            .get(email)
            .into_iter()
            .flatten()
            .map(|&i| &self.members[i].user)
    }

    /// The members of an organization, in directory order.
    pub fn members_of(&self, org: Uuid) -> impl Iterator<Item = &Member> {
        self.members_by_org
            .get(&org)
            .into_iter()
            .flatten()
            .map(|&i| &self.members[i])
    }

    /// A user by id, or by username (the live one when a deleted user had the same name, else
    /// the deleted one).
    pub fn resolve_user(&self, username_or_id: &str) -> Result<&User, DirectoryError> {
        let unknown = || DirectoryError::UnknownUser(username_or_id.to_owned());
        if let Ok(id) = Uuid::parse_str(username_or_id) {
            return self.user(id).ok_or_else(unknown);
        }
        let mut found = None;
        for user in self.users_named(username_or_id) {
            if !user.deleted {
                return Ok(user);
            }
            found = Some(user);
        }
        found.ok_or_else(unknown)
    }

    /// Who a user is to the plugin's authorisation: site roles and organization roles.
    /// Deleted and suspended users cannot act.
    pub fn actor_for(&self, username_or_id: &str) -> Result<Actor, DirectoryError> {
        let user = self.resolve_user(username_or_id)?;
        if user.deleted {
            return Err(DirectoryError::DeletedUser(username_or_id.to_owned()));
        }
        if user.status == "suspended" {
            return Err(DirectoryError::SuspendedUser(username_or_id.to_owned()));
        }
        Ok(self.actor(user.id).expect("the user was just found"))
    }

    /// The actor for a user id, whatever the user's state.
    pub fn actor(&self, user_id: Uuid) -> Option<Actor> {
        let member = self.member(user_id)?;
        Some(Actor {
            user_id,
            site_roles: member.user.site_roles.clone(),
            organization_roles: member
                .organization_roles
                .iter()
                .map(|(id, roles)| (*id, roles.clone()))
                .collect(),
        })
    }

    /// The user a token belongs to, if the token is valid and the user may still act (neither
    /// deleted nor suspended).
    pub fn authenticate(&self, token: &str) -> Option<&User> {
        let (id, secret) = token.trim().split_once('-')?;
        let user = self.check_token(id, secret).ok()?;
        (user.status != "suspended").then_some(user)
    }

    /// The user behind token `id` if `secret` is its secret (the hash is compared in
    /// constant time) and the user is not deleted: Coder deletes a deleted user's keys.
    /// The user may still be suspended.
    pub fn check_token(&self, id: &str, secret: &str) -> Result<&User, TokenRejection> {
        let stored = &self.tokens[*self.token_by_id.get(id).ok_or(TokenRejection::Unknown)?];
        if !constant_time_eq(&stored.hash, &hash_secret(secret)) {
            return Err(TokenRejection::WrongSecret);
        }
        match self.user(stored.user_id) {
            Some(user) if !user.deleted => Ok(user),
            _ => Err(TokenRejection::Unknown),
        }
    }

    // ----- insertion with the directory's rules -----

    fn insert_organization(&mut self, org: Organization) -> Result<(), String> {
        if org.id.is_nil() {
            return Err("organization id is the nil UUID".into());
        }
        if org.name.is_empty() {
            return Err(format!("organization {} has an empty name", org.id));
        }
        if self.org_by_id.contains_key(&org.id) {
            return Err(format!("duplicate organization id {}", org.id));
        }
        let key = org.name.to_lowercase();
        if self.org_by_name.contains_key(&key) {
            return Err(format!("duplicate organization name {:?}", org.name));
        }
        let index = self.organizations.len();
        self.org_by_id.insert(org.id, index);
        self.org_by_name.insert(key, index);
        self.organizations.push(org);
        Ok(())
    }

    fn insert_member(&mut self, member: Member) -> Result<(), String> {
        let user = &member.user;
        if user.id.is_nil() {
            return Err("user id is the nil UUID".into());
        }
        if user.username.is_empty() {
            return Err(format!("user {} has an empty username", user.id));
        }
        if self.user_by_id.contains_key(&user.id) {
            return Err(format!("duplicate user id {}", user.id));
        }
        if !USER_STATUSES.contains(&user.status.as_str()) {
            return Err(format!(
                "user {:?} has unknown status {:?} (one of {USER_STATUSES:?})",
                user.username, user.status
            ));
        }
        if !LOGIN_TYPES.contains(&user.login_type.as_str()) {
            return Err(format!(
                "user {:?} has unknown login_type {:?} (one of {LOGIN_TYPES:?})",
                user.username, user.login_type
            ));
        }
        let username_key = user.username.to_lowercase();
        if !user.deleted {
            let live = |indexes: Option<&Vec<usize>>| {
                indexes
                    .into_iter()
                    .flatten()
                    .any(|&i| !self.members[i].user.deleted)
            };
            if live(self.users_by_username.get(&username_key)) {
                return Err(format!("duplicate username {:?}", user.username));
            }
            if !user.email.is_empty() && live(self.users_by_email.get(&user.email)) {
                return Err(format!("duplicate email {:?}", user.email));
            }
        }
        if let Some(org) = member
            .organization_roles
            .keys()
            .find(|id| !self.org_by_id.contains_key(*id))
        {
            return Err(format!(
                "user {:?} has roles in unknown organization {org}",
                user.username
            ));
        }
        let index = self.members.len();
        self.user_by_id.insert(user.id, index);
        self.users_by_username
            .entry(username_key)
            .or_default()
            .push(index);
        if !user.email.is_empty() {
            self.users_by_email
                .entry(user.email.clone())
                .or_default()
                .push(index);
        }
        for org in member.organization_roles.keys() {
            self.members_by_org.entry(*org).or_default().push(index);
        }
        self.members.push(member);
        Ok(())
    }

    fn insert_token(&mut self, token: ApiToken) -> Result<(), String> {
        if token.id.is_empty() || token.id.contains('-') {
            return Err(format!(
                "token id {:?} must be non-empty and without '-'",
                token.id
            ));
        }
        if self.token_by_id.contains_key(&token.id) {
            return Err(format!("duplicate token id {:?}", token.id));
        }
        if !self.user_by_id.contains_key(&token.user_id) {
            return Err(format!(
                "token {:?} belongs to unknown user {}",
                token.id, token.user_id
            ));
        }
        self.token_by_id.insert(token.id.clone(), self.tokens.len());
        self.tokens.push(token);
        Ok(())
    }
}

/// Coder's `organizations` and `users` tables, read-only: what a plugin instance answers its
/// `directory` import from. [`Directory`] is the one the host serves; tests may bring their own.
pub trait Lookup {
    fn organization_by_id(&self, id: Uuid) -> Option<Organization>;
    /// Case-insensitive; deleted organizations are not found.
    fn organization_by_name(&self, name: &str) -> Option<Organization>;
    fn user_by_id(&self, id: Uuid) -> Option<User>;
    /// Case-insensitive; deleted users included, flagged.
    fn users_by_username(&self, username: &str) -> Vec<User>;
    /// Exact; deleted users included, flagged.
    fn users_by_email(&self, email: &str) -> Vec<User>;
}

/// The plugin's view of the directory (the WIT `directory` import).
impl Lookup for Directory {
    fn organization_by_id(&self, id: Uuid) -> Option<Organization> {
        self.organization(id).cloned()
    }

    fn organization_by_name(&self, name: &str) -> Option<Organization> {
        self.organization_named(name).cloned()
    }

    fn user_by_id(&self, id: Uuid) -> Option<User> {
        self.user(id).cloned()
    }

    fn users_by_username(&self, username: &str) -> Vec<User> {
        self.users_named(username).cloned().collect()
    }

    fn users_by_email(&self, email: &str) -> Vec<User> {
        self.users_with_email(email).cloned().collect()
    }
}

/// Writes `tokens.json` (username → plain token) with mode 0600, atomically. `connlog simulate`
/// writes it beside the directory so that demos and tests can call the API at once.
pub fn write_tokens_file(
    path: &Path,
    tokens: &BTreeMap<String, String>,
) -> Result<(), DirectoryError> {
    let mut text =
        serde_json::to_string_pretty(tokens).expect("a map of strings always serialises");
    text.push('\n');
    write_atomic(path, text.as_bytes()).map_err(|source| DirectoryError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Writes a file so that readers see the old or the new content, never a mix: a temporary
/// file in the same folder, synced, renamed over the target, then the folder synced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
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
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// Random letters and digits from the OS generator (through `Uuid::new_v4`), without bias.
fn random_alphanumeric(len: usize) -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let bytes = Uuid::new_v4().into_bytes();
        // Bytes 6 and 8 carry the version and variant bits; the other 14 are random.
        for (i, &b) in bytes.iter().enumerate() {
            if i == 6 || i == 8 || b >= 248 {
                continue;
            }
            if out.len() < len {
                out.push(ALPHABET[usize::from(b % 62)] as char);
            }
        }
    }
    out
}

fn now_nanos() -> UnixNanos {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
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

#[cfg(test)]
mod tests {
    use super::Lookup as _;
    use super::*;

    const ORG_A: &str = "a0f6e7b4-9f36-4c4b-8a2d-1f2e3d4c5b6a";
    const ORG_B: &str = "b1f6e7b4-9f36-4c4b-8a2d-1f2e3d4c5b6a";
    const ALICE: &str = "11111111-1111-4111-8111-111111111111";
    const BOB_OLD: &str = "22222222-2222-4222-8222-222222222222";
    const BOB: &str = "33333333-3333-4333-8333-333333333333";
    const CAROL: &str = "44444444-4444-4444-8444-444444444444";

    fn sample() -> String {
        serde_json::json!({
            "organizations": [
                {"id": ORG_A, "name": "coder", "display_name": "Coder", "icon": ""},
                {"id": ORG_B, "name": "Research", "display_name": "Research", "icon": "/emojis/1f52c.png"}
            ],
            "users": [
                {"id": ALICE, "username": "alice", "email": "alice@example.com", "name": "Alice",
                 "created_at": "2025-06-01T09:00:00Z", "roles": ["owner"],
                 "organization_roles": {ORG_A: [], ORG_B: ["organization-admin"]}},
                {"id": BOB_OLD, "username": "bob", "email": "bob@example.com", "deleted": true,
                 "created_at": "2025-05-01T09:00:00Z", "updated_at": "2025-06-01T09:00:00.5+02:00",
                 "organization_roles": {ORG_A: []}},
                {"id": BOB, "username": "Bob", "email": "bob@example.com",
                 "created_at": "2025-06-02T09:00:00Z", "organization_roles": {ORG_A: []}},
                {"id": CAROL, "username": "carol", "email": "carol@example.com", "status": "suspended",
                 "login_type": "oidc", "created_at": "2025-06-03T09:00:00Z", "roles": ["auditor"],
                 "organization_roles": {ORG_B: ["organization-auditor"]}}
            ]
        })
        .to_string()
    }

    fn load(text: &str) -> Result<Directory, DirectoryError> {
        Directory::from_json(text, Path::new("directory.json"))
    }

    fn uuid(s: &str) -> Uuid {
        Uuid::parse_str(s).unwrap()
    }

    #[test]
    fn look_ups() {
        let d = load(&sample()).unwrap();
        assert_eq!(d.organization(uuid(ORG_A)).unwrap().name, "coder");
        assert_eq!(d.organization_named("RESEARCH").unwrap().id, uuid(ORG_B));
        assert_eq!(d.organization_named("nope"), None);
        assert_eq!(d.user(uuid(ALICE)).unwrap().username, "alice");
        let bobs: Vec<Uuid> = d.users_named("BOB").map(|u| u.id).collect();
        assert_eq!(bobs, vec![uuid(BOB_OLD), uuid(BOB)]);
        assert_eq!(d.users_with_email("bob@example.com").count(), 2);
        assert_eq!(
            d.users_with_email("BOB@example.com").count(),
            0,
            "email is exact"
        );
        assert_eq!(
            d.resolve_user("bob").unwrap().id,
            uuid(BOB),
            "the live bob wins"
        );
        assert_eq!(d.resolve_user(BOB_OLD).unwrap().id, uuid(BOB_OLD));
        assert_eq!(d.members_of(uuid(ORG_A)).count(), 3);
        assert_eq!(d.members_of(uuid(ORG_B)).count(), 2);
        // Defaults and times.
        let alice = d.user(uuid(ALICE)).unwrap();
        assert_eq!(
            (alice.status.as_str(), alice.login_type.as_str()),
            ("active", "password")
        );
        assert_eq!(alice.updated_at, alice.created_at);
        assert_eq!(
            d.user(uuid(BOB_OLD)).unwrap().updated_at,
            parse_time("2025-06-01T07:00:00.5Z").unwrap()
        );
    }

    #[test]
    fn trait_look_ups() {
        let d = load(&sample()).unwrap();
        assert_eq!(d.organization_by_name("Coder").unwrap().id, uuid(ORG_A));
        assert_eq!(d.organization_by_id(uuid(ORG_B)).unwrap().name, "Research");
        assert!(d.user_by_id(uuid(CAROL)).is_some());
        let bobs = d.users_by_username("bob");
        assert_eq!(bobs.len(), 2);
        assert!(bobs[0].deleted && !bobs[1].deleted);
        assert_eq!(d.users_by_email("carol@example.com").len(), 1);
    }

    #[test]
    fn actors() {
        let d = load(&sample()).unwrap();
        let alice = d.actor_for("alice").unwrap();
        assert_eq!(alice.user_id, uuid(ALICE));
        assert_eq!(alice.site_roles, vec!["owner".to_owned()]);
        assert_eq!(
            alice.organization_roles,
            vec![
                (uuid(ORG_A), vec![]),
                (uuid(ORG_B), vec!["organization-admin".to_owned()])
            ]
        );
        assert_eq!(d.actor_for(BOB).unwrap().user_id, uuid(BOB));
        assert!(matches!(
            d.actor_for(BOB_OLD),
            Err(DirectoryError::DeletedUser(_))
        ));
        assert!(matches!(
            d.actor_for("carol"),
            Err(DirectoryError::SuspendedUser(_))
        ));
        assert!(matches!(
            d.actor_for("nobody"),
            Err(DirectoryError::UnknownUser(_))
        ));
        assert_eq!(
            d.actor_for("nobody").unwrap_err().to_string(),
            "no user \"nobody\" in the directory"
        );
        assert_eq!(
            d.actor(uuid(CAROL)).unwrap().site_roles,
            vec!["auditor".to_owned()]
        );
    }

    #[test]
    fn tokens() {
        let mut d = load(&sample()).unwrap();
        let token = d.create_token("alice").unwrap();
        let (id, secret) = token.split_once('-').unwrap();
        assert_eq!((id.len(), secret.len()), (10, 22));
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        assert_eq!(d.authenticate(&token).unwrap().username, "alice");
        assert_eq!(d.authenticate(&format!("{id}-{}", "x".repeat(22))), None);
        assert_eq!(d.authenticate(id), None);
        assert_eq!(d.authenticate(""), None);
        assert_eq!(d.authenticate("-"), None);
        // Only the hash is stored.
        let text = d.to_json();
        assert!(!text.contains(secret));
        assert!(text.contains(&hex::encode(Sha256::digest(secret.as_bytes()))));
        // Two tokens differ.
        let other = d.create_token(ALICE).unwrap();
        assert_ne!(token, other);
        // Suspended users' tokens do not authenticate; deleted users get none.
        let carol = d.create_token("carol").unwrap();
        assert_eq!(d.authenticate(&carol), None);
        assert!(matches!(
            d.create_token(BOB_OLD),
            Err(DirectoryError::DeletedUser(_))
        ));
        assert!(matches!(
            d.create_token("zed"),
            Err(DirectoryError::UnknownUser(_))
        ));
        // Survives a reload, and revocation.
        let reloaded = load(&text).unwrap();
        assert_eq!(reloaded.authenticate(&token).unwrap().username, "alice");
        assert!(d.revoke_token(id));
        assert_eq!(d.authenticate(&token), None);
        assert_eq!(d.authenticate(&other).unwrap().username, "alice");
        assert!(!d.revoke_token(id));
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = std::env::temp_dir().join(format!("connlog-dir-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("directory.json");
        let mut d = load(&sample()).unwrap();
        d.create_token("bob").unwrap();
        d.save(&path).unwrap();
        let back = Directory::load(&path).unwrap();
        assert_eq!(back, d);
        // Saving again replaces the file and leaves no temporary behind.
        back.save(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("directory.json")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let mut tokens = BTreeMap::new();
        tokens.insert("bob".to_owned(), "abc-def".to_owned());
        write_tokens_file(&dir.join("tokens.json"), &tokens).unwrap();
        let read: BTreeMap<String, String> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("tokens.json")).unwrap())
                .unwrap();
        assert_eq!(read, tokens);
        assert!(
            Directory::load_or_empty(&dir.join("missing.json"))
                .unwrap()
                .organizations()
                .is_empty()
        );
        let err = Directory::load(&dir.join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing.json") && err.contains("No such file"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn clear_load_errors() {
        let err = load("{\n  \"organizations\": [\n    {\"id\": 5}\n  ]\n}")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("directory.json: bad JSON at line 3, column"),
            "{err}"
        );
        assert!(err.contains("invalid type: integer `5`"), "{err}");

        let err = load(r#"{"users": [{"id": "11111111-1111-4111-8111-111111111111", "username": "a", "created_at": "2025-06-01T09:00:00Z", "organisation_roles": {}}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `organisation_roles`"), "{err}");

        let text = serde_json::json!({
            "organizations": [
                {"id": ORG_A, "name": "coder"},
                {"id": ORG_A, "name": "other"},
                {"id": ORG_B, "name": "CODER"}
            ],
            "users": [
                {"id": ALICE, "username": "alice", "email": "a@x", "created_at": "2025-06-01T09:00:00Z"},
                {"id": ALICE, "username": "alice2", "created_at": "2025-06-01T09:00:00Z"},
                {"id": BOB, "username": "ALICE", "created_at": "2025-06-01T09:00:00Z"},
                {"id": BOB_OLD, "username": "bob", "email": "a@x", "created_at": "2025-06-01T09:00:00Z"},
                {"id": CAROL, "username": "carol", "created_at": "2025-06-01T09:00:00Z",
                 "organization_roles": {ORG_B: []}},
                {"id": "55555555-5555-4555-8555-555555555555", "username": "dan", "created_at": "yesterday"},
                {"id": "66666666-6666-4666-8666-666666666666", "username": "eve", "status": "banned",
                 "created_at": "2025-06-01T09:00:00Z"}
            ],
            "api_tokens": [
                {"id": "abc", "user_id": CAROL, "hash": "zz", "created_at": "2025-06-01T09:00:00Z"},
                {"id": "abd", "user_id": ORG_A, "hash": "00".repeat(32), "created_at": "2025-06-01T09:00:00Z"}
            ]
        })
        .to_string();
        let Err(DirectoryError::Invalid { path, problems }) = load(&text) else {
            panic!("expected problems")
        };
        assert_eq!(path, Path::new("directory.json"));
        assert_eq!(
            problems,
            vec![
                format!("organizations[1]: duplicate organization id {ORG_A}"),
                "organizations[2]: duplicate organization name \"CODER\"".to_owned(),
                format!("users[1]: duplicate user id {ALICE}"),
                "users[2]: duplicate username \"ALICE\"".to_owned(),
                "users[3]: duplicate email \"a@x\"".to_owned(),
                format!("users[4]: user \"carol\" has roles in unknown organization {ORG_B}"),
                "users[5]: created_at \"yesterday\": not an RFC 3339 time".to_owned(),
                "users[6]: user \"eve\" has unknown status \"banned\" (one of [\"active\", \"dormant\", \"suspended\"])"
                    .to_owned(),
                "api_tokens[0]: token \"abc\": hash is not 64 hex digits".to_owned(),
                format!("api_tokens[1]: token \"abd\" belongs to unknown user {ORG_A}"),
            ]
        );
    }

    #[test]
    fn building_a_directory() {
        let mut d = Directory::new();
        let org = Organization {
            id: uuid(ORG_A),
            name: "coder".into(),
            display_name: "Coder".into(),
            icon: "".into(),
        };
        d.add_organization(org.clone()).unwrap();
        assert!(d.add_organization(org).is_err());
        let user = User {
            id: uuid(ALICE),
            username: "alice".into(),
            email: "alice@example.com".into(),
            name: "Alice".into(),
            avatar_url: String::new(),
            status: "active".into(),
            login_type: "password".into(),
            created_at: 1,
            updated_at: 2,
            last_seen_at: 3,
            deleted: false,
            site_roles: vec![ROLE_AUDITOR.into()],
        };
        let roles = BTreeMap::from([(uuid(ORG_B), vec![])]);
        let err = d.add_user(user.clone(), roles).unwrap_err().to_string();
        assert!(err.contains("unknown organization"), "{err}");
        d.add_user(
            user,
            BTreeMap::from([(uuid(ORG_A), vec![ROLE_ORGANIZATION_AUDITOR.into()])]),
        )
        .unwrap();
        let back = load(&d.to_json()).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.user(uuid(ALICE)).unwrap().last_seen_at, 3);
    }
}
