//! API tokens in Coder's format: issuing, revoking and checking them, storing only the hash
//! of each secret.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Directory, DirectoryError, write_atomic};
use crate::model::{UnixNanos, User, Uuid};

const TOKEN_ID_LEN: usize = 10;
const TOKEN_SECRET_LEN: usize = 22;

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

impl Directory {
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

    pub fn tokens(&self) -> &[ApiToken] {
        &self.tokens
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

    pub(super) fn insert_token(&mut self, token: ApiToken) -> Result<(), String> {
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
