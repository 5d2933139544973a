//! The live feed (`query.feed-rows`, since contract 0.2.0): read after any position, in
//! reads of any size, it sends each reader the rows the list shows them; a session is sent
//! again when it closes; an invalid filter is refused before anything is read.

use std::collections::BTreeSet;

use super::fixtures::*;
use super::{Case, Check, Harness, query_error};
use crate::model::{QueryError, Uuid};

pub fn cases() -> Vec<Case> {
    let f = |name, run| Case::new("feed", name, run).needs_0_2("the live feed");
    vec![
        f(
            "the feed sends each reader the rows the list shows them",
            same_rows_as_the_list,
        ),
        f(
            "a session is sent when it opens and again when it closes",
            open_then_close,
        ),
        f(
            "an invalid filter is refused before anything is read",
            invalid_filter,
        ),
    ]
}

/// Readers and filters over both organizations; the member reads nothing.
/// A reader (by a fixture's user) and a filter.
type Reader = (fn() -> Uuid, &'static str);

const READERS: [Reader; 8] = [
    (admin_id, ""),
    (admin_id, "method:ssh"),
    (admin_id, "status:ongoing"),
    (admin_id, "app:cursor,goland"),
    (admin_id, "organization:other"),
    (org_auditor, ""),
    (two_org_auditor, "method:tunnel"),
    (member, ""),
];

fn same_rows_as_the_list(h: &mut Harness) -> Check {
    h.store(current_events())?;
    for (user, q) in READERS {
        let listed: BTreeSet<Uuid> = h
            .page(user(), q, u32::MAX, 0)?
            .rows
            .iter()
            .map(|r| r.id)
            .collect();
        for chunk in [1, 5, 1000] {
            let fed = h
                .feed(user(), q, 0, chunk)?
                .map_err(|e| format!("the feed refuses {q:?}: {}", query_error(&e)))?;
            ensure!(
                fed.windows(2).all(|w| w[0].position < w[1].position),
                "{q:?} as {}: positions are not increasing",
                id_name(user())
            );
            let ids: BTreeSet<Uuid> = fed.iter().map(|m| m.id).collect();
            ensure_eq!(
                ids,
                listed,
                "the feed's rows for {q:?} as {} read {chunk} events at a time",
                id_name(user())
            );
        }
    }
    Ok(())
}

fn open_then_close(h: &mut Harness) -> Check {
    h.store(vec![connect(1, 1, 10)])?;
    let opened = h
        .feed(admin_id(), "", 0, 100)?
        .map_err(|e| query_error(&e))?;
    ensure_eq!(
        opened
            .iter()
            .map(|m| (m.id, m.completed))
            .collect::<Vec<_>>(),
        vec![(eid(1), false)],
        "the feed after the connect"
    );
    let after = opened[0].position;
    h.store(vec![disconnect(2, 1, 20, Some(0), None)])?;
    let closed = h
        .feed(admin_id(), "", after, 100)?
        .map_err(|e| query_error(&e))?;
    ensure_eq!(
        closed
            .iter()
            .map(|m| (m.id, m.completed))
            .collect::<Vec<_>>(),
        vec![(eid(1), true)],
        "the feed after the disconnect"
    );
    Ok(())
}

fn invalid_filter(h: &mut Harness) -> Check {
    h.store(vec![connect(1, 1, 10)])?;
    match h.feed(admin_id(), "color:blue", 0, 0)? {
        Err(QueryError::InvalidQuery(v)) => {
            let want = h.invalid("color:blue")?;
            ensure_eq!(v, want, "the feed's validations for color:blue");
            Ok(())
        }
        other => Err(format!(
            "the feed accepts color:blue: {:?}",
            other.map(|m| m.len())
        )),
    }
}
