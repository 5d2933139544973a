//! Coder's filter language and paging, with Coder's exact validation messages. Every query
//! is asked twice, through `query` and `api-page`, which must agree (see `Harness::page`).
//! Where connlog improves on Coder the case says so: ties ordered by id, exact counts.

use super::fixtures::*;
use super::{Case, Check, Harness, same_ids};
use crate::model::*;

pub fn cases() -> Vec<Case> {
    let q = |name: &'static str, run: fn(&mut Harness) -> Check| Case::new("query", name, run);
    let p = |name: &'static str, run: fn(&mut Harness) -> Check| Case::new("paging", name, run);
    vec![
        p("a limit of 0 means 100 rows", limit_zero),
        p("there is no maximum limit", no_maximum),
        p("an offset near the end gives the rest", offset_near_the_end),
        p(
            "paging one row at a time walks the same order",
            paging_walks_the_order,
        ),
        p(
            "the count is exact beyond Coder's cap of 2001",
            counts_are_exact,
        ),
        p(
            "pages add up to the count, without repeats, and every page reports it",
            pages_agree_with_the_count,
        ),
        q(
            "rows at the same connect time are ordered by id descending",
            ties_by_id,
        ),
        q(
            "status:ongoing gives sessions without a disconnect, never web rows",
            status_ongoing,
        ),
        q(
            "status:completed counts a disconnect-only session, never web rows",
            status_completed,
        ),
        q(
            "web, port-forwarding and tunnel rows are listed without a status filter",
            status_free,
        ),
        q(
            "user filters match web rows only",
            user_filters_match_web_rows,
        ),
        q(
            "the whole query is lowercased: a mixed-case email never matches",
            lowercased_email,
        ),
        q("username matches whatever its case", username_any_case),
        q(
            "username ignores deleted users, user_email does not",
            deleted_users,
        ),
        q(
            "unknown usernames, owners and emails match nothing",
            unknown_names,
        ),
        q(
            "an unknown organization name is Coder's validation error",
            unknown_organization_name,
        ),
        q(
            "an unknown organization id matches nothing; a known name matches its rows",
            organizations,
        ),
        q("quoted values keep their colons", quoted_colons),
        q(
            "an unquoted value with a colon is Coder's validation error",
            unquoted_colons,
        ),
        q("quoted values keep their spaces", quoted_spaces),
        q("a bare word is Coder's search error", bare_word),
        q(
            "an unquoted value with spaces leaves bare words",
            unquoted_spaces,
        ),
        q("an empty value disables the filter", empty_value),
        q(
            "status: matches SSH and the web terminal only, never an agent-reported port forward",
            status_sessions_only,
        )
        .needs_0_2("agent-reported port forwards"),
        q(
            "method:port_forwarding lists agent-reported and browser port forwards",
            port_forwards,
        )
        .needs_0_2("agent-reported port forwards"),
    ]
}

fn web_rows(h: &mut Harness, n: u64) -> Check {
    h.store(
        (0..n)
            .map(|i| web(1000 + i, i as i64, Some(bob())))
            .collect(),
    )
}

fn limit_zero(h: &mut Harness) -> Check {
    web_rows(h, 150)?;
    let page = h.page(admin_id(), "", 0, 0)?;
    ensure_eq!((page.rows.len(), page.count), (100, 150), "rows and count");
    Ok(())
}

fn no_maximum(h: &mut Harness) -> Check {
    web_rows(h, 150)?;
    let page = h.page(admin_id(), "", 1000, 0)?;
    ensure_eq!((page.rows.len(), page.count), (150, 150), "rows and count");
    Ok(())
}

fn offset_near_the_end(h: &mut Harness) -> Check {
    web_rows(h, 150)?;
    let page = h.page(admin_id(), "", 100, 140)?;
    ensure_eq!((page.rows.len(), page.count), (10, 150), "rows and count");
    Ok(())
}

/// Five rows at one instant and two later ones.
fn ties(h: &mut Harness) -> Result<Vec<Uuid>, String> {
    let mut events: Vec<ConnectionEvent> = (0..5).map(|i| web(10 + i, 0, None)).collect();
    events.push(connect(20, 1, 30));
    events.push(web(30, 60, None));
    h.store(events)?;
    Ok([30, 20, 14, 13, 12, 11, 10].map(eid).to_vec())
}

fn ties_by_id(h: &mut Harness) -> Check {
    let want = ties(h)?;
    same_ids(&h.ids("")?, &want, "order")
}

fn paging_walks_the_order(h: &mut Harness) -> Check {
    let want = ties(h)?;
    let mut paged = Vec::new();
    for offset in 0..7 {
        let page = h.page(admin_id(), "", 1, offset)?;
        ensure_eq!(page.rows.len(), 1, "rows at offset {offset}");
        paged.push(page.rows[0].id);
    }
    same_ids(&paged, &want, "pages of one row")
}

fn counts_are_exact(h: &mut Harness) -> Check {
    web_rows(h, 2500)?;
    ensure_eq!(h.query("")?.count, 2500, "count");
    Ok(())
}

fn pages_agree_with_the_count(h: &mut Harness) -> Check {
    web_rows(h, 2500)?;
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = h.page(admin_id(), "", 700, offset)?;
        ensure_eq!(page.count, 2500, "count of the page at offset {offset}");
        if page.rows.is_empty() {
            break;
        }
        seen.extend(page.rows.iter().map(|r| r.id));
        offset += 700;
        ensure!(offset <= 3500, "pages never end");
    }
    ensure_eq!(seen.len(), 2500, "rows over all pages");
    let all: Vec<Uuid> = h.rows()?.iter().map(|r| r.id).collect();
    ensure!(
        seen == all,
        "the pages do not list every row once, in order"
    );
    Ok(())
}

fn statuses(h: &mut Harness) -> Check {
    h.store(vec![
        connect(1, 1, 0),
        disconnect(2, 2, 5, Some(0), None),
        web(3, 1, Some(bob())),
        web(4, 2, None)
            .method(ConnectionMethod::PortForwarding)
            .app("8080"),
        web(5, 3, Some(bob()))
            .method(ConnectionMethod::Tunnel)
            .no_app()
            .with(|e| e.code = Some(101)),
    ])
}

fn status_ongoing(h: &mut Harness) -> Check {
    statuses(h)?;
    same_ids(&h.ids("status:ongoing")?, &[eid(1)], "status:ongoing")
}

fn status_completed(h: &mut Harness) -> Check {
    statuses(h)?;
    same_ids(&h.ids("status:completed")?, &[eid(2)], "status:completed")
}

fn status_free(h: &mut Harness) -> Check {
    statuses(h)?;
    ensure_eq!(h.query("")?.count, 5, "count");
    Ok(())
}

fn user_filters_match_web_rows(h: &mut Harness) -> Check {
    h.store(vec![
        connect(1, 1, 0),
        web(2, 1, Some(bob())),
        web(3, 2, None),
    ])?;
    for q in ["username:bob", "user_email:bob@example.com"] {
        same_ids(&h.ids(q)?, &[eid(2)], q)?;
    }
    Ok(())
}

fn lowercased_email(h: &mut Harness) -> Check {
    h.store(vec![web(1, 0, Some(dave()))])?;
    ensure_eq!(
        h.query("user_email:Dave@Example.com")?.count,
        0,
        "rows for the stored mixed-case email"
    );
    Ok(())
}

fn username_any_case(h: &mut Harness) -> Check {
    h.store(vec![web(1, 0, Some(dave()))])?;
    ensure_eq!(h.query("username:DAVE")?.count, 1, "rows for username:DAVE");
    Ok(())
}

fn deleted_users(h: &mut Harness) -> Check {
    h.store(vec![web(1, 0, Some(carol()))])?;
    ensure_eq!(
        h.query("username:carol")?.count,
        0,
        "rows for username:carol"
    );
    ensure_eq!(
        h.query("user_email:carol@example.com")?.count,
        1,
        "rows for user_email:carol@example.com"
    );
    Ok(())
}

fn unknown_names(h: &mut Harness) -> Check {
    h.store(vec![web(1, 0, Some(bob())), connect(2, 1, 0)])?;
    for q in [
        "username:nobody",
        "workspace_owner:nobody",
        "workspace_owner_email:no@where",
        "user_email:no@where",
    ] {
        ensure_eq!(h.query(q)?.count, 0, "rows for {q}");
    }
    Ok(())
}

fn unknown_organization_name(h: &mut Harness) -> Check {
    ensure_eq!(
        h.invalid("organization:nosuch")?,
        [Validation::new(
            "organization",
            "Query param \"organization\" has invalid value: organization \"nosuch\" either does not exist, or you are unauthorized to view it"
        )],
        "validations"
    );
    Ok(())
}

fn organizations(h: &mut Harness) -> Check {
    h.store(vec![web(1, 0, Some(bob())), connect(2, 1, 0)])?;
    let unknown = format!("organization:{}", uuid_in(1, 99));
    ensure_eq!(h.query(&unknown)?.count, 0, "rows for {unknown}");
    ensure_eq!(
        h.query("organization:coder")?.count,
        2,
        "rows for organization:coder"
    );
    Ok(())
}

fn two_sessions(h: &mut Harness) -> Check {
    h.store(vec![connect(1, 1, 0), connect(2, 2, 60)])
}

fn quoted_colons(h: &mut Harness) -> Check {
    two_sessions(h)?;
    let q = "connected_after:\"2025-07-10T10:00:30Z\"";
    same_ids(&h.ids(q)?, &[eid(2)], q)
}

fn unquoted_colons(h: &mut Harness) -> Check {
    two_sessions(h)?;
    ensure_eq!(
        h.invalid("connected_after:2025-07-10T10:00:30Z")?,
        [Validation::new(
            "q",
            "Query element \"connected_after:2025-07-10t10:00:30z\" can only contain 1 ':'"
        )],
        "validations"
    );
    Ok(())
}

fn quoted_spaces(h: &mut Harness) -> Check {
    two_sessions(h)?;
    ensure_eq!(
        h.query("username:\"no such user\"")?.count,
        0,
        "rows for username:\"no such user\""
    );
    Ok(())
}

fn bare_word(h: &mut Harness) -> Check {
    ensure_eq!(
        h.invalid("hello")?,
        [Validation::new(
            "search",
            "\"search\" is not a valid query param"
        )],
        "validations"
    );
    Ok(())
}

fn unquoted_spaces(h: &mut Harness) -> Check {
    let fields: Vec<String> = h
        .invalid("username:no such user")?
        .into_iter()
        .map(|v| v.field)
        .collect();
    ensure_eq!(
        fields.first().map(String::as_str),
        Some("search"),
        "first field"
    );
    Ok(())
}

fn empty_value(h: &mut Harness) -> Check {
    h.store(vec![connect(1, 1, 0), web(2, 1, None)])?;
    ensure_eq!(h.query("type:\"\"")?.count, 2, "rows for type:\"\"");
    Ok(())
}

/// Sessions of each agent-reported method, ongoing (odd ids) and completed, and a browser
/// port forward.
fn agent_sessions(h: &mut Harness) -> Check {
    use ConnectionMethod::{PortForwarding, ReconnectingPty};
    h.store(vec![
        connect(1, 1, 0),
        connect(2, 2, 1).method(ReconnectingPty),
        agent_port_forward(3, 3, 2),
        connect(4, 4, 3),
        disconnect(5, 4, 10, Some(0), None),
        agent_port_forward(6, 6, 4),
        disconnect(7, 6, 11, Some(0), None).method(PortForwarding),
        web(8, 5, None).method(PortForwarding).app("8080"),
    ])
}

fn status_sessions_only(h: &mut Harness) -> Check {
    agent_sessions(h)?;
    for (q, want) in [
        ("status:ongoing", vec![eid(1), eid(2)]),
        ("status:completed", vec![eid(4)]),
    ] {
        let mut ids = h.ids(q)?;
        ids.sort();
        same_ids(&ids, &want, q)?;
    }
    Ok(())
}

fn port_forwards(h: &mut Harness) -> Check {
    agent_sessions(h)?;
    let mut ids = h.ids("method:port_forwarding")?;
    ids.sort();
    same_ids(&ids, &[eid(3), eid(6), eid(8)], "method:port_forwarding")
}
