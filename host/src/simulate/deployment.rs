//! The simulated deployment: organizations, users with their roles, workspaces and agents.

use std::collections::{BTreeMap, HashSet};

use crate::model::{Organization, UnixNanos, User, Uuid};

use super::catalog::*;
use super::rng::SimRng;
use super::{NANOS_PER_DAY, SimConfig};
use crate::directory::{Directory, ROLE_AUDITOR, ROLE_ORGANIZATION_AUDITOR, ROLE_OWNER};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub id: Uuid,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workspace {
    pub id: Uuid,
    pub name: String,
    pub owner_id: Uuid,
    pub organization_id: Uuid,
    pub agents: Vec<Agent>,
    /// Slugs of the workspace's apps.
    pub apps: Vec<String>,
    /// Ports its users forward in the browser.
    pub ports: Vec<u16>,
    /// How busy it is, relative to the others (1 to 20).
    pub activity: u32,
}

/// A generated deployment. The directory holds no API tokens: issue them with
/// [`Directory::create_token`] (they are random, not seeded).
#[derive(Clone, Debug)]
pub struct Deployment {
    pub directory: Directory,
    pub workspaces: Vec<Workspace>,
}

/// The well-known accounts every generated deployment has (when there are enough users).
pub const ADMIN_USERNAME: &str = "admin";
pub const AUDITOR_USERNAME: &str = "auditor";

/// The organization auditor of an organization is called `<org name>-auditor`.
pub fn organization_auditor_username(org_name: &str) -> String {
    format!("{org_name}-auditor")
}

struct PlannedUser {
    user: User,
    org_roles: BTreeMap<Uuid, Vec<String>>,
    special: bool,
}

impl Deployment {
    /// Builds the deployment `config` describes. Users, in order:
    /// - `admin`: site `owner`, member of every organization;
    /// - `auditor`: site `auditor`;
    /// - `<org>-auditor` for each organization: `organization-auditor` there;
    /// - members with first names (`alice`, `bob`…), some with other roles, a few dormant,
    ///   suspended (at least one from 10 users) or deleted (likewise). From 12 users, one
    ///   deleted user shares the username of a live one, as Coder allows.
    ///
    /// Everyone belongs to the first organization (Coder's default one); members join each
    /// other organization with probability 0.4, and every organization gets at least two.
    pub fn generate(config: &SimConfig) -> Result<Self, String> {
        config.validate()?;
        let mut rng = SimRng::new(config.seed, 0);
        let start = config.start;
        let window = config.end() - start;

        // Organizations.
        let orgs: Vec<Organization> = (0..config.orgs)
            .map(|i| {
                let id = rng.uuid();
                match ORG_NAMES.get(i) {
                    Some(&(name, display, icon)) => Organization {
                        id,
                        name: name.into(),
                        display_name: display.into(),
                        icon: icon.into(),
                    },
                    None => Organization {
                        id,
                        name: format!("org-{}", i + 1),
                        display_name: format!("Organization {}", i + 1),
                        icon: String::new(),
                    },
                }
            })
            .collect();

        // Users.
        let mut first_names: Vec<&str> = FIRST_NAMES.to_vec();
        for i in (1..first_names.len()).rev() {
            first_names.swap(i, rng.index(i + 1));
        }
        let mut planned: Vec<PlannedUser> = Vec::with_capacity(config.users);
        let mut used_names: HashSet<String> = HashSet::new();
        let mut member_no = 0usize;
        for i in 0..config.users {
            let special_org = i.checked_sub(2).filter(|&j| j < orgs.len());
            let (username, display, site_roles, special) = match (i, special_org) {
                (0, _) => (
                    ADMIN_USERNAME.to_owned(),
                    "Ada Admin".to_owned(),
                    vec![ROLE_OWNER.to_owned()],
                    true,
                ),
                (1, _) => (
                    AUDITOR_USERNAME.to_owned(),
                    "Audrey Auditor".to_owned(),
                    vec![ROLE_AUDITOR.to_owned()],
                    true,
                ),
                (_, Some(j)) => (
                    organization_auditor_username(&orgs[j].name),
                    format!("{} Auditor", orgs[j].display_name),
                    vec![],
                    true,
                ),
                _ => {
                    let base = first_names[member_no % first_names.len()];
                    let round = member_no / first_names.len();
                    member_no += 1;
                    let mut username = if round == 0 {
                        base.to_owned()
                    } else {
                        format!("{base}{}", round + 1)
                    };
                    while used_names.contains(&username) {
                        username.push('x');
                    }
                    let display = format!(
                        "{}{} {}",
                        base[..1].to_uppercase(),
                        &base[1..],
                        rng.pick(&SURNAMES)
                    );
                    let roles = match rng.below(100) {
                        0..=2 => vec!["template-admin".to_owned()],
                        3..=4 => vec!["user-admin".to_owned()],
                        _ => vec![],
                    };
                    (username, display, roles, false)
                }
            };
            used_names.insert(username.clone());
            let login_type = *rng.weighted(&[("password", 40), ("github", 25), ("oidc", 35)]);
            let avatar_url = if login_type == "github" {
                format!(
                    "https://avatars.githubusercontent.com/u/{}?v=4",
                    1_000_000 + rng.below(90_000_000)
                )
            } else {
                String::new()
            };
            let created_at =
                start - rng.range_i64(30, 400) * NANOS_PER_DAY - rng.range_i64(0, NANOS_PER_DAY);
            let last_seen_at = start + rng.range_i64(0, window - 1);
            let mut org_roles = BTreeMap::new();
            org_roles.insert(orgs[0].id, vec![]);
            if i == 0 {
                for org in &orgs {
                    org_roles.insert(org.id, vec![]);
                }
            }
            if let Some(j) = special_org {
                org_roles.insert(orgs[j].id, vec![ROLE_ORGANIZATION_AUDITOR.to_owned()]);
            }
            if !special {
                for org in &orgs[1..] {
                    if rng.chance(0.4) {
                        org_roles.insert(org.id, vec![]);
                    }
                }
                for roles in org_roles.values_mut() {
                    match rng.below(100) {
                        0..=3 => roles.push("organization-admin".to_owned()),
                        4..=6 => roles.push("organization-template-admin".to_owned()),
                        _ => {}
                    }
                }
            }
            planned.push(PlannedUser {
                user: User {
                    id: rng.uuid(),
                    email: format!("{username}@example.com"),
                    username,
                    name: display,
                    avatar_url,
                    status: "active".to_owned(),
                    login_type: login_type.to_owned(),
                    created_at,
                    updated_at: last_seen_at.max(created_at),
                    last_seen_at,
                    deleted: false,
                    site_roles,
                },
                org_roles,
                special,
            });
        }

        // States of regular members: a few deleted, suspended and dormant.
        let regular: Vec<usize> = (0..planned.len())
            .filter(|&i| !planned[i].special)
            .collect();
        let mut deleted = Vec::new();
        let mut suspended = Vec::new();
        for &i in &regular {
            match rng.below(100) {
                0..=3 => deleted.push(i),
                4..=8 => suspended.push(i),
                9..=13 => {
                    let u = &mut planned[i].user;
                    u.status = "dormant".to_owned();
                    u.last_seen_at = start - rng.range_i64(91, 200) * NANOS_PER_DAY;
                    u.updated_at = u.last_seen_at.max(u.created_at);
                }
                _ => {}
            }
        }
        if config.users >= 10 && regular.len() >= 4 {
            let last = regular[regular.len() - 1];
            let before = regular[regular.len() - 2];
            if deleted.is_empty() {
                suspended.retain(|&i| i != last);
                deleted.push(last);
            }
            if suspended.is_empty() {
                let pick = if deleted.contains(&before) {
                    regular[regular.len() - 3]
                } else {
                    before
                };
                suspended.push(pick);
            }
        }
        for &i in &suspended {
            let u = &mut planned[i].user;
            u.status = "suspended".to_owned();
            u.updated_at = start + rng.range_i64(0, window / 2);
            u.last_seen_at = u.updated_at - rng.range_i64(0, 3 * NANOS_PER_DAY);
        }
        for &i in &deleted {
            let u = &mut planned[i].user;
            u.deleted = true;
            u.status = "active".to_owned();
            // Deleted somewhere in the first half of the window.
            u.updated_at = start + window / 5 + rng.range_i64(0, window * 3 / 10);
            u.last_seen_at = u.updated_at - rng.range_i64(0, 2 * NANOS_PER_DAY);
        }
        // One deleted user whose username a newer live user took over.
        if config.users >= 12
            && let Some(&d) = deleted.first()
            && let Some(&live) = regular
                .iter()
                .find(|&&i| !planned[i].user.deleted && i != d)
        {
            let name = planned[live].user.username.clone();
            planned[d].user.email = format!("{name}.old@example.com");
            planned[d].user.username = name;
        }

        // Every organization past the first gets at least two regular members who may act.
        for org in &orgs[1..] {
            let members = regular
                .iter()
                .filter(|&&i| {
                    planned[i].org_roles.contains_key(&org.id) && !planned[i].user.deleted
                })
                .count();
            let mut missing = 2usize.saturating_sub(members);
            for &i in &regular {
                if missing == 0 {
                    break;
                }
                if !planned[i].user.deleted && !planned[i].org_roles.contains_key(&org.id) {
                    planned[i].org_roles.insert(org.id, vec![]);
                    missing -= 1;
                }
            }
        }

        let mut directory = Directory::new();
        for org in &orgs {
            directory
                .add_organization(org.clone())
                .map_err(|e| e.to_string())?;
        }
        for p in &planned {
            directory
                .add_user(p.user.clone(), p.org_roles.clone())
                .map_err(|e| e.to_string())?;
        }

        // Workspaces: owned by users who are not deleted, busy users owning more.
        let owners: Vec<&PlannedUser> = planned.iter().filter(|p| !p.user.deleted).collect();
        let mut names_taken: HashSet<(Uuid, String)> = HashSet::new();
        let mut workspaces = Vec::with_capacity(config.workspaces);
        for _ in 0..config.workspaces {
            // Skewed towards the first owners: x² of a uniform x.
            let x = rng.f64();
            let owner = owners[((x * x) * owners.len() as f64) as usize % owners.len()];
            let owner_orgs: Vec<Uuid> = owner.org_roles.keys().copied().collect();
            let organization_id = if rng.chance(0.5) {
                orgs[0].id
            } else {
                *rng.pick(&owner_orgs)
            };
            let base = *rng.pick(&WORKSPACE_NAMES);
            let mut name = base.to_owned();
            let mut n = 2;
            while !names_taken.insert((owner.user.id, name.clone())) {
                name = format!("{base}-{n}");
                n += 1;
            }
            let set = if rng.chance(0.85) {
                0
            } else {
                1 + rng.index(AGENT_SETS.len() - 1)
            };
            let agent_names = AGENT_SETS[set];
            let agents = agent_names
                .iter()
                .map(|n| Agent {
                    id: rng.uuid(),
                    name: (*n).to_owned(),
                })
                .collect();
            let mut apps: Vec<String> = vec![];
            for _ in 0..1 + rng.below(3) {
                let slug = rng.weighted(&APP_SLUGS).to_string();
                if !apps.contains(&slug) {
                    apps.push(slug);
                }
            }
            let mut ports: Vec<u16> = vec![];
            for _ in 0..1 + rng.below(2) {
                let port = *rng.pick(&PORTS);
                if !ports.contains(&port) {
                    ports.push(port);
                }
            }
            let activity = (rng.log_normal(3.0, 0.8).round() as u32).clamp(1, 20);
            workspaces.push(Workspace {
                id: rng.uuid(),
                name,
                owner_id: owner.user.id,
                organization_id,
                agents,
                apps,
                ports,
                activity,
            });
        }
        Ok(Self {
            directory,
            workspaces,
        })
    }

    /// When a deleted user was deleted (their `updated_at`); `None` for everyone else.
    pub fn deleted_at(&self, user_id: Uuid) -> Option<UnixNanos> {
        self.directory
            .user(user_id)
            .filter(|u| u.deleted)
            .map(|u| u.updated_at)
    }
}
