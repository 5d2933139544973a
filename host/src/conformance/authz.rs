//! Who reads what: the site owner and site auditors read every organization, an
//! organization auditor reads their organizations, anyone else gets an empty page (not an
//! error), and the count is always that of the visible rows.

use super::fixtures::*;
use super::{Case, Check, Harness, same_ids};
use crate::model::*;

pub fn cases() -> Vec<Case> {
    let a = |name: &'static str, run: fn(&mut Harness) -> Check| Case::new("authz", name, run);
    vec![
        a(
            "a plain member gets an empty page, not an error",
            member_sees_nothing,
        ),
        a(
            "a user without roles sees nothing, whatever the filter",
            no_roles_sees_nothing,
        ),
        a(
            "an organization auditor sees only their organization's rows",
            org_auditor_sees_own_org,
        ),
        a(
            "an auditor of two organizations sees both",
            two_org_auditor_sees_both,
        ),
        a(
            "a site auditor sees every organization",
            site_auditor_sees_all,
        ),
        a("the site owner sees every organization", owner_sees_all),
    ]
}

/// A session in `coder`, a web row in `other`.
fn two_orgs(h: &mut Harness) -> Check {
    h.store(vec![connect(1, 1, 0), web(2, 1, None).in_org(other_org())])
}

fn empty(h: &mut Harness, user: Uuid, q: &str) -> Check {
    let page = h.page(user, q, 0, 0)?;
    ensure_eq!(
        page,
        Page {
            rows: vec![],
            count: 0
        },
        "the page for {q:?}"
    );
    Ok(())
}

fn member_sees_nothing(h: &mut Harness) -> Check {
    two_orgs(h)?;
    empty(h, member(), "")
}

fn no_roles_sees_nothing(h: &mut Harness) -> Check {
    two_orgs(h)?;
    empty(h, bob(), "")?;
    empty(h, bob(), "type:ssh")
}

fn org_auditor_sees_own_org(h: &mut Harness) -> Check {
    two_orgs(h)?;
    let page = h.page(org_auditor(), "", 0, 0)?;
    ensure_eq!(page.count, 1, "count");
    same_ids(
        &page.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        &[eid(1)],
        "rows",
    )?;
    let ongoing = h.page(org_auditor(), "status:ongoing", 0, 0)?;
    same_ids(
        &ongoing.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        &[eid(1)],
        "rows for status:ongoing",
    )
}

fn sees_both(h: &mut Harness, user: Uuid) -> Check {
    two_orgs(h)?;
    let page = h.page(user, "", 0, 0)?;
    same_ids(
        &page.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        &[eid(2), eid(1)],
        "rows",
    )?;
    ensure_eq!(page.count, 2, "count");
    Ok(())
}

fn two_org_auditor_sees_both(h: &mut Harness) -> Check {
    sees_both(h, two_org_auditor())
}

fn site_auditor_sees_all(h: &mut Harness) -> Check {
    sees_both(h, site_auditor())
}

fn owner_sees_all(h: &mut Harness) -> Check {
    sees_both(h, admin_id())
}
