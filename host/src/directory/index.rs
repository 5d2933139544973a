//! The in-memory indexes: inserting under the directory's rules, and the O(1) look-ups they
//! serve, including the plugin's [`Lookup`] view.

use std::collections::BTreeMap;

use super::{Directory, DirectoryError, LOGIN_TYPES, Member, USER_STATUSES};
use crate::model::{Actor, Organization, User, Uuid};

impl Directory {
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

    // ----- insertion with the directory's rules -----

    pub(super) fn insert_organization(&mut self, org: Organization) -> Result<(), String> {
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

    pub(super) fn insert_member(&mut self, member: Member) -> Result<(), String> {
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
