//! Who may read which rows (spec §7): site `owner` and `auditor` read everything, an
//! `organization-auditor` reads its organizations, anyone else reads nothing.

use crate::model::*;

/// `None` when the actor may read no row at all (an empty page, not an error).
pub fn visibility(actor: &Actor) -> Option<Visibility> {
    let _ = actor;
    todo!("authz::visibility")
}
