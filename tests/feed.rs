//! The live feed's reads (`ConnLog::feed`), in process: which rows an ingest created or
//! completed, at which positions, for whom. Read in chunks of any size, the feed gives
//! every row once per change, in position order, never a position twice; it answers with
//! the filter language and authorization of the list; a 0.1.0 plugin has no feed.
//! (`tests/watch.rs` tests the HTTP stream built on it.)

mod service_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};

use connlog::model::{Actor, QueryError};
use connlog::plugin::{Embedded, PluginSource};
use connlog::service::{ConnLog, FeedChunk, ServiceError};
use service_support::*;

fn reference(data: &std::path::Path) -> ConnLog {
    open(data, PluginSource::Embedded(Embedded::Reference))
}

fn actor(name: &str) -> Actor {
    directory().actor_for(name).unwrap()
}

fn read(service: &mut ConnLog, who: &Actor, q: &str, after: i64, max: usize) -> FeedChunk {
    service
        .feed(who, q, after, max)
        .expect("the feed call")
        .unwrap_or_else(|e| panic!("feed {q:?} refused: {e:?}"))
}

/// Every message from `after` to the head, `max` events per read: (position, row).
fn read_all(
    service: &mut ConnLog,
    who: &Actor,
    q: &str,
    mut after: i64,
    max: usize,
) -> Vec<(i64, serde_json::Value)> {
    let mut out = Vec::new();
    while after < service.merged_upto() {
        let chunk = read(service, who, q, after, max);
        assert!(chunk.scanned_to > after, "a read must move forward");
        for m in chunk.messages {
            assert!(m.position > after && m.position <= chunk.scanned_to);
            out.push((m.position, serde_json::from_str(&m.row_json).unwrap()));
        }
        after = chunk.scanned_to;
    }
    out
}

fn ids(messages: &[(i64, serde_json::Value)]) -> BTreeSet<String> {
    messages
        .iter()
        .map(|(_, row)| row["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every row id the list endpoint gives `who` for `q`.
fn listed(service: &mut ConnLog, who: &Actor, q: &str) -> BTreeSet<String> {
    let body = service
        .api_page(
            who.clone(),
            connlog::model::QueryRequest {
                q: q.into(),
                limit: 100_000,
                offset: 0,
            },
        )
        .unwrap()
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    body["connection_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn any_chunk_size_gives_each_change_once_in_position_order() {
    let data = support::data_dir();
    let mut service = reference(data.path());
    let start = service.merged_upto();
    // Sessions' connects and disconnects land in different batches.
    ingest_all(&mut service, mixed_events(0, 120, "feed"), 17);
    let admin = owner();
    let whole = read_all(&mut service, &admin, "", start, 100_000);
    let positions: Vec<i64> = whole.iter().map(|(p, _)| *p).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    // Read at once, each row is sent once, as it is now.
    assert_eq!(whole.len(), 120);
    assert_eq!(ids(&whole), listed(&mut service, &admin, ""));
    for size in [1, 2, 7, 50] {
        let chunked = read_all(&mut service, &admin, "", start, size);
        let positions: Vec<i64> = chunked.iter().map(|(p, _)| *p).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "size {size}");
        assert_eq!(ids(&chunked), ids(&whole), "size {size}");
        // In small reads a completed session comes twice: at its connect and at its
        // disconnect; the last message of each row is the row as it is now.
        let mut last: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for (_, row) in &chunked {
            last.insert(row["id"].as_str().unwrap().into(), row.clone());
        }
        for (_, row) in &whole {
            assert_eq!(&last[row["id"].as_str().unwrap()], row, "size {size}");
        }
    }
    let one_by_one = read_all(&mut service, &admin, "", start, 1);
    // 120 rows: 60 web rows and 60 sessions, of which 30 completed.
    assert_eq!(one_by_one.len(), 120 + 30);
}

#[test]
fn a_session_is_sent_when_it_opens_and_again_when_it_closes() {
    let data = support::data_dir();
    let mut service = reference(data.path());
    let admin = owner();
    let mut head = service.head();
    let [connect, disconnect] = session_events(1, T0, "open-close");
    let start = service.merged_upto();
    ingest_all(&mut service, vec![connect], 10);
    assert!(head.has_changed().unwrap(), "an ingest wakes the watchers");
    assert_eq!(*head.borrow_and_update(), service.merged_upto());
    let opened = read(&mut service, &admin, "", start, 100);
    assert_eq!(opened.messages.len(), 1);
    let row: serde_json::Value = serde_json::from_str(&opened.messages[0].row_json).unwrap();
    assert!(row["ssh_info"]["disconnect_time"].is_null(), "{row}");
    ingest_all(&mut service, vec![disconnect.clone()], 10);
    assert_eq!(*head.borrow_and_update(), service.merged_upto());
    let closed = read(&mut service, &admin, "", opened.scanned_to, 100);
    assert_eq!(closed.messages.len(), 1);
    let again: serde_json::Value = serde_json::from_str(&closed.messages[0].row_json).unwrap();
    assert_eq!(again["id"], row["id"]);
    assert!(again["ssh_info"]["disconnect_time"].is_string(), "{again}");
    assert!(closed.messages[0].position > opened.messages[0].position);
    // A replay changes nothing, so it sends nothing and wakes no one.
    ingest_all(&mut service, vec![disconnect], 10);
    assert!(!head.has_changed().unwrap());
    let nothing = read(&mut service, &admin, "", closed.scanned_to, 100);
    assert!(nothing.messages.is_empty());
    assert_eq!(nothing.scanned_to, closed.scanned_to);
}

#[test]
fn the_feed_filters_and_authorizes_as_the_list_does() {
    let data = support::data_dir();
    let mut service = reference(data.path());
    let start = service.merged_upto();
    ingest_all(&mut service, mixed_events(0, 90, "authz"), 25);
    for (who, q) in [
        ("admin", ""),
        ("admin", "method:ssh"),
        ("admin", "status:ongoing"),
        ("admin", "organization:other"),
        ("admin", "app:cursor,goland"),
        ("orgaudit", ""),
        ("orgaudit", "method:workspace_app"),
        ("member", ""),
    ] {
        let who_actor = actor(who);
        let fed = ids(&read_all(&mut service, &who_actor, q, start, 13));
        assert_eq!(fed, listed(&mut service, &who_actor, q), "{who} {q:?}");
        if who == "member" {
            assert!(fed.is_empty(), "a member reads nothing");
        } else {
            assert!(!fed.is_empty(), "{who} {q:?} should see rows");
        }
    }
}

#[test]
fn an_invalid_filter_is_refused_before_anything_is_read() {
    let data = support::data_dir();
    let mut service = reference(data.path());
    match service.feed(&owner(), "color:blue", 0, 0).unwrap() {
        Err(QueryError::InvalidQuery(validations)) => {
            assert_eq!(validations[0].field, "color", "{validations:?}")
        }
        other => panic!("expected the validations, got {other:?}"),
    }
    // Checking a filter reads nothing and stays where it was.
    ingest_all(&mut service, mixed_events(0, 4, "check"), 10);
    let checked = read(&mut service, &owner(), "method:ssh", 0, 0);
    assert!(checked.messages.is_empty());
    assert_eq!(checked.scanned_to, 0);
}

#[test]
fn a_plugin_of_contract_0_1_has_no_feed() {
    let data = support::data_dir();
    let mut service = open(
        data.path(),
        PluginSource::File(connlog_test_plugins::REFERENCE_V0_1_PLUGIN.into()),
    );
    match service.feed(&owner(), "", 0, 10) {
        Err(ServiceError::Unsupported(message)) => {
            assert!(message.contains("0.1.0"), "{message}");
            assert!(message.contains("no live feed"), "{message}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}
