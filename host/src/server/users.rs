//! Who is signed in, and the users and organizations a caller may pick from, as Coder's
//! `codersdk.User` and `codersdk.Organization` JSON.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v2/users/me` | the caller as a `codersdk.User` |
//! | `GET /api/v2/users?q=&limit=&offset=` | `{"users":[…],"count":N}`, sorted by username |
//! | `GET /api/v2/organizations` | `[codersdk.Organization, …]` |
//!
//! The lists are scoped as the connection log is (see [`Reach`]): a site owner or auditor
//! sees everyone, an organization auditor the organizations they audit and their members,
//! anyone else themselves and their own organizations. Deleted users are never listed.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::api::{authenticate, reader};
use super::auth::Caller;
use super::{AppState, invalid_parameters, json_response};
use crate::directory::{Directory, Member, ROLE_AUDITOR, ROLE_ORGANIZATION_AUDITOR, ROLE_OWNER};
use crate::events::format_time;
use crate::model::{Organization, Uuid, Validation};
use crate::responses::validation_body;

/// Coder's message for a bad `q` on `/users`.
const INVALID_USER_QUERY: &str = "Invalid user search query.";

/// Go's zero `time.Time`: the directory keeps no creation time for organizations.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Which users and organizations a caller may list.
#[derive(Debug, PartialEq, Eq)]
enum Reach {
    Everyone,
    /// The organizations the caller audits.
    Audited(BTreeSet<Uuid>),
    /// The caller alone, and the organizations they belong to.
    Themselves,
}

impl Reach {
    fn of(caller: &Caller) -> Self {
        let actor = &caller.actor;
        if actor
            .site_roles
            .iter()
            .any(|r| r == ROLE_OWNER || r == ROLE_AUDITOR)
        {
            return Self::Everyone;
        }
        let audited: BTreeSet<Uuid> = actor
            .organization_roles
            .iter()
            .filter(|(_, roles)| roles.iter().any(|r| r == ROLE_ORGANIZATION_AUDITOR))
            .map(|(id, _)| *id)
            .collect();
        if audited.is_empty() {
            Self::Themselves
        } else {
            Self::Audited(audited)
        }
    }

    fn sees_user(&self, caller: &Caller, member: &Member) -> bool {
        match self {
            Self::Everyone => true,
            Self::Audited(orgs) => {
                member.user.id == caller.actor.user_id
                    || member.organization_roles.keys().any(|o| orgs.contains(o))
            }
            Self::Themselves => member.user.id == caller.actor.user_id,
        }
    }

    fn sees_organization(&self, caller: &Caller, org: &Organization) -> bool {
        match self {
            Self::Everyone => true,
            Self::Audited(orgs) => orgs.contains(&org.id),
            Self::Themselves => caller
                .actor
                .organization_roles
                .iter()
                .any(|(id, _)| *id == org.id),
        }
    }
}

/// `codersdk.SlimRole`.
#[derive(Serialize)]
struct RoleJson {
    name: String,
    display_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization_id: Option<Uuid>,
}

/// `codersdk.User`, in Go's field order. `theme_preference` is `omitempty` in Coder and the
/// directory keeps none, so it is never written.
#[derive(Serialize)]
pub(super) struct UserJson<'a> {
    id: Uuid,
    username: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    avatar_url: &'a str,
    email: &'a str,
    created_at: String,
    updated_at: String,
    last_seen_at: String,
    status: &'a str,
    login_type: &'a str,
    organization_ids: Vec<Uuid>,
    /// Site roles as Coder lists them, then each organization role with its organization
    /// (Coder's `SlimRole.organization_id`), so the page can say what the caller audits.
    roles: Vec<RoleJson>,
}

impl<'a> UserJson<'a> {
    pub(super) fn of(member: &'a Member) -> Self {
        let user = &member.user;
        let site = user.site_roles.iter().map(|name| RoleJson {
            display_name: role_display_name(name),
            name: name.clone(),
            organization_id: None,
        });
        let organization = member.organization_roles.iter().flat_map(|(org, names)| {
            names.iter().map(|name| RoleJson {
                display_name: role_display_name(name),
                name: name.clone(),
                organization_id: Some(*org),
            })
        });
        Self {
            id: user.id,
            username: &user.username,
            name: &user.name,
            avatar_url: &user.avatar_url,
            email: &user.email,
            created_at: format_time(user.created_at),
            updated_at: format_time(user.updated_at),
            last_seen_at: format_time(user.last_seen_at),
            status: &user.status,
            login_type: &user.login_type,
            organization_ids: member.organization_roles.keys().copied().collect(),
            roles: site.chain(organization).collect(),
        }
    }
}

/// Coder's built-in role names; any other role has no display name (`SlimRoleFromName`).
fn role_display_name(name: &str) -> &'static str {
    match name {
        "owner" => "Owner",
        "member" => "Member",
        "auditor" => "Auditor",
        "template-admin" => "Template Admin",
        "user-admin" => "User Admin",
        "organization-admin" => "Organization Admin",
        "organization-auditor" => "Organization Auditor",
        "organization-template-admin" => "Organization Template Admin",
        "organization-user-admin" => "Organization User Admin",
        "organization-member" => "Organization Member",
        _ => "",
    }
}

/// `codersdk.Organization`.
#[derive(Serialize)]
struct OrganizationJson<'a> {
    id: Uuid,
    name: &'a str,
    display_name: &'a str,
    description: &'static str,
    icon: &'a str,
    created_at: &'static str,
    updated_at: &'static str,
    is_default: bool,
}

#[derive(Serialize)]
struct UsersPage<'a> {
    users: Vec<UserJson<'a>>,
    count: usize,
}

/// The caller's own directory entry as JSON.
pub(super) fn me_body(directory: &Directory, caller: &Caller) -> String {
    let member = directory
        .member(caller.actor.user_id)
        .expect("an authenticated caller is in the directory");
    serde_json::to_string(&UserJson::of(member)).expect("plain data")
}

/// `GET /api/v2/users/me`.
pub async fn me(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match authenticate(&state, &headers, query.as_deref()) {
        Ok(caller) => json_response(StatusCode::OK, me_body(&state.auth.directory(), &caller)),
        Err(refusal) => refusal,
    }
}

/// `GET /api/v2/users?q=&limit=&offset=`: every word of `q` must occur in the username or
/// the email (case-insensitively), as Coder's plain search terms do.
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (caller, params) = match reader(&state, &headers, query.as_deref()) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let (limit, offset) = match params.pagination() {
        Ok(p) => p,
        Err(validations) => return invalid_parameters(&validations),
    };
    let words = match search_words(params.get("q").unwrap_or("")) {
        Ok(w) => w,
        Err(validations) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                validation_body(INVALID_USER_QUERY, &validations),
            );
        }
    };
    let directory = state.auth.directory();
    let reach = Reach::of(&caller);
    let mut found: Vec<&Member> = directory
        .members()
        .iter()
        .filter(|m| !m.user.deleted && reach.sees_user(&caller, m))
        .filter(|m| {
            let (name, email) = (m.user.username.to_lowercase(), m.user.email.to_lowercase());
            words
                .iter()
                .all(|w| name.contains(w.as_str()) || email.contains(w.as_str()))
        })
        .collect();
    found.sort_by(|a, b| a.user.username.cmp(&b.user.username));
    let count = found.len();
    let limit = if limit == 0 {
        usize::MAX
    } else {
        limit as usize
    };
    let page = UsersPage {
        users: found
            .into_iter()
            .skip(offset as usize)
            .take(limit)
            .map(UserJson::of)
            .collect(),
        count,
    };
    json_response(
        StatusCode::OK,
        serde_json::to_string(&page).expect("plain data"),
    )
}

/// The lower-cased words of a user search; `key:value` terms are not supported here.
fn search_words(q: &str) -> Result<Vec<String>, Vec<Validation>> {
    let mut words = Vec::new();
    let mut errors = Vec::new();
    for word in q.split_whitespace() {
        match word.split_once(':') {
            Some((key, _)) => errors.push(Validation::new(
                key,
                format!("{key:?} is not a valid query param"),
            )),
            None => words.push(word.to_lowercase()),
        }
    }
    if errors.is_empty() {
        Ok(words)
    } else {
        Err(errors)
    }
}

/// `GET /api/v2/organizations`.
pub async fn organizations(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let caller = match authenticate(&state, &headers, query.as_deref()) {
        Ok(c) => c,
        Err(refusal) => return refusal,
    };
    let directory = state.auth.directory();
    let reach = Reach::of(&caller);
    let orgs: Vec<OrganizationJson> = directory
        .organizations()
        .iter()
        .filter(|o| reach.sees_organization(&caller, o))
        .map(|o| OrganizationJson {
            id: o.id,
            name: &o.name,
            display_name: &o.display_name,
            description: "",
            icon: &o.icon,
            created_at: GO_ZERO_TIME,
            updated_at: GO_ZERO_TIME,
            is_default: false,
        })
        .collect();
    json_response(
        StatusCode::OK,
        serde_json::to_string(&orgs).expect("plain data"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_search_words_and_their_errors() {
        assert_eq!(search_words(" Ali  EX ").unwrap(), ["ali", "ex"]);
        let errors = search_words("bob role:owner").unwrap_err();
        assert_eq!(errors[0].field, "role");
        assert_eq!(errors[0].detail, "\"role\" is not a valid query param");
    }
}
