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

mod file;
mod index;
#[cfg(test)]
mod tests;
mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;

use crate::model::{Organization, User, Uuid};

pub use file::{write_atomic, write_atomic_unsynced};
pub use index::Lookup;
pub use tokens::{ApiToken, TokenRejection, write_tokens_file};

/// Site roles and organization roles that the plugin's authorisation looks at.
pub const ROLE_OWNER: &str = "owner";
pub const ROLE_AUDITOR: &str = "auditor";
pub const ROLE_ORGANIZATION_AUDITOR: &str = "organization-auditor";

/// A site owner no user is: who the host asks as when it needs every row counted.
pub fn site_owner() -> crate::model::Actor {
    crate::model::Actor {
        user_id: crate::model::Uuid::nil(),
        site_roles: vec![ROLE_OWNER.to_owned()],
        organization_roles: Vec::new(),
    }
}

/// User statuses Coder knows.
pub const USER_STATUSES: [&str; 3] = ["active", "dormant", "suspended"];
/// Login types Coder knows.
pub const LOGIN_TYPES: [&str; 5] = ["password", "github", "oidc", "token", "none"];

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
}
