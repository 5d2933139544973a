//! Who may read which rows (Coder's RBAC for `connection_log`): site `owner` and `auditor`
//! read everything, an `organization-auditor` reads its organizations, anyone else reads
//! nothing (an empty page, not a 403).

use connlog_plugin_sdk::model::*;

/// Which organizations' rows an actor may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Visibility {
    All,
    Organizations(Vec<Uuid>),
}

/// Site roles that read every organization's rows.
const SITE_READERS: [&str; 2] = ["owner", "auditor"];

/// The organization role that reads that organization's rows.
const ORGANIZATION_READER: &str = "organization-auditor";

/// `None` when the actor may read no row at all (an empty page, not an error).
///
/// Organizations come sorted and without repeats, however the actor lists them.
pub fn visibility(actor: &Actor) -> Option<Visibility> {
    if actor
        .site_roles
        .iter()
        .any(|role| SITE_READERS.contains(&role.as_str()))
    {
        return Some(Visibility::All);
    }
    let mut organizations: Vec<Uuid> = actor
        .organization_roles
        .iter()
        .filter(|(_, roles)| roles.iter().any(|role| role == ORGANIZATION_READER))
        .map(|(organization, _)| *organization)
        .collect();
    organizations.sort();
    organizations.dedup();
    (!organizations.is_empty()).then_some(Visibility::Organizations(organizations))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG_A: Uuid = Uuid::from_u128(0xa);
    const ORG_B: Uuid = Uuid::from_u128(0xb);

    fn actor(site_roles: &[&str], organization_roles: &[(Uuid, &[&str])]) -> Actor {
        Actor {
            user_id: Uuid::from_u128(1),
            site_roles: site_roles.iter().map(|r| r.to_string()).collect(),
            organization_roles: organization_roles
                .iter()
                .map(|(org, roles)| (*org, roles.iter().map(|r| r.to_string()).collect()))
                .collect(),
        }
    }

    #[test]
    fn who_sees_what() {
        let cases: Vec<(&str, Actor, Option<Visibility>)> = vec![
            ("site owner", actor(&["owner"], &[]), Some(Visibility::All)),
            (
                "site auditor",
                actor(&["member", "auditor"], &[]),
                Some(Visibility::All),
            ),
            (
                "site auditor who also audits an organization",
                actor(&["auditor"], &[(ORG_A, &["organization-auditor"])]),
                Some(Visibility::All),
            ),
            (
                "organization auditor",
                actor(
                    &["member"],
                    &[(ORG_A, &["organization-member", "organization-auditor"])],
                ),
                Some(Visibility::Organizations(vec![ORG_A])),
            ),
            (
                "auditor of two organizations: the union, sorted",
                actor(
                    &[],
                    &[
                        (ORG_B, &["organization-auditor"]),
                        (ORG_A, &["organization-auditor"]),
                    ],
                ),
                Some(Visibility::Organizations(vec![ORG_A, ORG_B])),
            ),
            (
                "only the organizations audited",
                actor(
                    &[],
                    &[
                        (ORG_A, &["organization-admin"]),
                        (ORG_B, &["organization-auditor"]),
                    ],
                ),
                Some(Visibility::Organizations(vec![ORG_B])),
            ),
            (
                "an organization listed twice",
                actor(
                    &[],
                    &[
                        (ORG_A, &["organization-auditor"]),
                        (ORG_A, &["organization-auditor"]),
                    ],
                ),
                Some(Visibility::Organizations(vec![ORG_A])),
            ),
            (
                "plain member",
                actor(&["member"], &[(ORG_A, &["organization-member"])]),
                None,
            ),
            ("no roles", actor(&[], &[]), None),
            (
                "other admin roles read nothing",
                actor(
                    &["template-admin", "user-admin"],
                    &[(ORG_A, &["organization-admin", "organization-user-admin"])],
                ),
                None,
            ),
            (
                "role names are exact",
                actor(&["Owner", "AUDITOR"], &[(ORG_A, &["Organization-Auditor"])]),
                None,
            ),
            (
                "an organization role is not a site role",
                actor(&["organization-auditor"], &[]),
                None,
            ),
            (
                "a site role is not an organization role",
                actor(&[], &[(ORG_A, &["auditor", "owner"])]),
                None,
            ),
        ];
        for (name, actor, want) in cases {
            assert_eq!(visibility(&actor), want, "{name}");
        }
    }
}
