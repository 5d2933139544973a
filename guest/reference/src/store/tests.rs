use super::*;
use crate::authz::Visibility;
use crate::search::{CodeRange, Filter, SessionStatus};
use ConnectionMethod::{PortForwarding, ReconnectingPty, Ssh, Tunnel, WorkspaceApp};
use proptest::prelude::*;

fn u(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn row(id: u128, t: i64) -> ConnectionLog {
    ConnectionLog {
        id: u(id),
        connect_time: t,
        organization_id: u(0xa1),
        workspace_owner_id: u(0xb1),
        workspace_id: u(0xc1),
        workspace_name: "alpha".into(),
        agent_name: "main".into(),
        connection_method: Ssh,
        code: None,
        ip: Some("10.0.0.1".into()),
        user_agent: None,
        user_id: None,
        app_name_or_port: None,
        connection_id: Some(u(0xd000u128.wrapping_add(id))),
        disconnect_time: None,
        disconnect_reason: None,
        client_session_id: None,
    }
}

fn web(id: u128, t: i64, method: ConnectionMethod) -> ConnectionLog {
    ConnectionLog {
        connection_id: None,
        connection_method: method,
        user_id: Some(u(0xe1)),
        ..row(id, t)
    }
}

/// The obvious implementation the store must agree with.
#[derive(Default, Clone)]
struct Model {
    rows: Vec<ConnectionLog>,
}

#[derive(PartialEq)]
enum Key {
    Session(Uuid, Uuid, String),
    Id(Uuid),
}

fn key(r: &ConnectionLog) -> Key {
    match r.connection_id {
        Some(c) => Key::Session(c, r.workspace_id, r.agent_name.clone()),
        None => Key::Id(r.id),
    }
}

fn matches(r: &ConnectionLog, f: &Filter, v: &Visibility) -> bool {
    let terminal = r.connection_method.is_terminal();
    let app = r.app_name_or_port.as_ref();
    (match v {
        Visibility::All => true,
        Visibility::Organizations(list) => list.contains(&r.organization_id),
    }) && f.organization_id.is_none_or(|o| o == r.organization_id)
        && f.workspace_owner_ids
            .as_ref()
            .is_none_or(|l| l.contains(&r.workspace_owner_id))
        && f.user_ids
            .as_ref()
            .is_none_or(|l| r.user_id.is_some_and(|x| l.contains(&x)))
        && f.method.is_none_or(|m| m == r.connection_method)
        && f.app_names
            .as_ref()
            .is_none_or(|l| terminal && app.is_some_and(|a| l.contains(a)))
        && (f.excluded_app_names.is_empty()
            || terminal && app.is_none_or(|a| !f.excluded_app_names.contains(a)))
        && f.connected_after.is_none_or(|t| r.connect_time >= t)
        && f.connected_before.is_none_or(|t| r.connect_time <= t)
        && f.workspace_id.is_none_or(|w| w == r.workspace_id)
        && f.connection_id.is_none_or(|c| r.connection_id == Some(c))
        && f.status.is_none_or(|s| match s {
            SessionStatus::Ongoing => r.disconnect_time.is_none() && terminal,
            SessionStatus::Completed => r.disconnect_time.is_some() && terminal,
        })
        && f.codes
            .as_ref()
            .is_none_or(|l| r.code.is_some_and(|c| l.iter().any(|x| x.contains(c))))
}

impl Model {
    fn upsert(&mut self, r: ConnectionLog) {
        let k = key(&r);
        match self.rows.iter_mut().find(|x| key(x) == k) {
            Some(x) => *x = r,
            None => self.rows.push(r),
        }
    }
    fn sorted(&self) -> Vec<ConnectionLog> {
        let mut v = self.rows.clone();
        // Newest first, ties by id descending.
        v.sort_by_key(|r| std::cmp::Reverse((r.connect_time, r.id.as_u128())));
        v
    }
    fn query(
        &self,
        f: &Filter,
        v: &Visibility,
        limit: u32,
        offset: u32,
    ) -> (Vec<ConnectionLog>, u64) {
        let all: Vec<_> = self
            .sorted()
            .into_iter()
            .filter(|r| matches(r, f, v))
            .collect();
        let n = all.len() as u64;
        (
            all.into_iter()
                .skip(offset as usize)
                .take(limit as usize)
                .collect(),
            n,
        )
    }
    fn remove_before(&mut self, cutoff: i64) -> u64 {
        let before = self.rows.len();
        self.rows.retain(|r| r.connect_time >= cutoff);
        (before - self.rows.len()) as u64
    }
}

fn origin_of(r: &ConnectionLog) -> RowOrigin {
    match r.connection_id {
        Some(c) => RowOrigin::Session(SessionKey {
            connection_id: c,
            workspace_id: r.workspace_id,
            agent_name: r.agent_name.clone(),
        }),
        None => RowOrigin::SingleEvent(r.id),
    }
}

fn snapshot(s: &RowStore, chunk: usize) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    s.encode(chunk, &mut |c| {
        assert!(
            !c.is_empty() && c.len() <= chunk,
            "chunk of {} bytes (limit {chunk})",
            c.len()
        );
        chunks.push(c.to_vec());
        Ok(())
    })
    .unwrap();
    chunks
}

fn restore_with(chunks: Vec<Vec<u8>>, tuning: Tuning) -> Result<RowStore, JournalError> {
    let mut it = chunks.into_iter();
    snapshot::decode(&mut || Ok(it.next()), tuning)
}

fn restore(chunks: Vec<Vec<u8>>) -> Result<RowStore, JournalError> {
    let mut it = chunks.into_iter();
    RowStore::decode(&mut || Ok(it.next()))
}

fn ids(rows: &[ConnectionLog]) -> Vec<u128> {
    rows.iter().map(|r| r.id.as_u128()).collect()
}

fn all(s: &RowStore, f: &Filter) -> (Vec<u128>, u64) {
    let (rows, n) = s.query(f, &Visibility::All, 1000, 0);
    (ids(&rows), n)
}

fn tunings() -> [Tuning; 3] {
    [
        Tuning::default(),
        Tuning {
            bucket_max: 2,
            collect_limit: 0,
            bulk_remove: 1,
            // Compactions over a few slots at a time, to check they never change a list.
            compact_slots: 4,
        },
        Tuning {
            bucket_max: 3,
            collect_limit: 4,
            bulk_remove: 3,
            compact_slots: 3,
        },
    ]
}

#[test]
fn empty_store() {
    let s = RowStore::new();
    assert!(s.is_empty());
    assert_eq!(
        s.query(&Filter::default(), &Visibility::All, 10, 0),
        (vec![], 0)
    );
    assert!(s.rows().is_empty());
    assert!(s.expired(i64::MAX).is_empty());
    let back = restore(snapshot(&s, 64)).unwrap();
    assert!(back.is_empty());
}

#[test]
fn order_is_time_desc_then_id_desc() {
    for t in tunings() {
        let mut s = RowStore::with_tuning(t);
        for (id, time) in [(1, 10), (5, 20), (3, 20), (9, 5), (4, 20), (2, 30)] {
            s.upsert(row(id, time).as_row_ref());
        }
        assert_eq!(ids(&s.rows()), [2, 5, 4, 3, 1, 9]);
        let page = |limit, offset| {
            ids(&s
                .query(&Filter::default(), &Visibility::All, limit, offset)
                .0)
        };
        assert_eq!(page(2, 0), [2, 5]);
        assert_eq!(page(2, 2), [4, 3]);
        assert_eq!(page(2, 4), [1, 9]);
        assert_eq!(page(2, 6), Vec::<u128>::new());
        assert_eq!(s.query(&Filter::default(), &Visibility::All, 2, 6).1, 6);
    }
}

#[test]
fn ids_compare_as_unsigned_128_bit() {
    let mut s = RowStore::new();
    s.upsert(row(1, 10).as_row_ref());
    s.upsert(row(u128::MAX - 1, 10).as_row_ref());
    s.upsert(row(1 << 127, 10).as_row_ref());
    assert_eq!(ids(&s.rows()), [u128::MAX - 1, 1 << 127, 1]);
}

#[test]
fn upsert_replaces_by_session_key_and_moves_in_order() {
    for t in tunings() {
        let mut s = RowStore::with_tuning(t);
        for id in 1..=5 {
            s.upsert(row(id, id as i64 * 10).as_row_ref());
        }
        // Same session (connection id of row 5), earlier connect and a new id.
        let mut r = row(5, 1);
        r.id = u(77);
        r.disconnect_time = Some(100);
        r.app_name_or_port = Some("vscode".into());
        r.client_session_id = Some("0123456789abcdef0123456789abcdef".into());
        s.upsert(r.as_row_ref());
        assert_eq!(s.len(), 5);
        assert_eq!(ids(&s.rows()), [4, 3, 2, 1, 77]);
        let f = Filter {
            method: Some(Ssh),
            excluded_app_names: vec!["vscode".into()],
            ..Default::default()
        };
        assert_eq!(all(&s, &f), (vec![4, 3, 2, 1], 4));
        let f = Filter {
            status: Some(SessionStatus::Completed),
            ..Default::default()
        };
        assert_eq!(all(&s, &f), (vec![77], 1));
        let f = Filter {
            status: Some(SessionStatus::Ongoing),
            ..Default::default()
        };
        assert_eq!(all(&s, &f).1, 4);
        assert_eq!(s.rows().last().unwrap(), &r);
        // A different agent is another session.
        let mut other = row(5, 50);
        other.agent_name = "dev".into();
        s.upsert(other.as_row_ref());
        assert_eq!(s.len(), 6);
    }
}

#[test]
fn upsert_replaces_single_events_by_id() {
    let mut s = RowStore::new();
    s.upsert(web(1, 10, WorkspaceApp).as_row_ref());
    s.upsert(web(1, 20, Tunnel).as_row_ref());
    assert_eq!(s.len(), 1);
    assert_eq!(s.rows()[0].connection_method, Tunnel);
    // A row with a connection id is keyed by session, not by id.
    s.upsert(row(1, 30).as_row_ref());
    assert_eq!(s.len(), 2);
}

#[test]
fn session_lookup() {
    let mut s = RowStore::new();
    s.upsert(row(1, 10).as_row_ref());
    s.upsert(web(2, 10, WorkspaceApp).as_row_ref());
    let (connection, workspace) = (u(0xd001), u(0xc1));
    let session = |s: &RowStore, connection, workspace, agent| {
        (s.find_session(connection, workspace, agent)).map(|found| s.row_of(found))
    };
    assert_eq!(session(&s, connection, workspace, "main"), Some(row(1, 10)));
    assert_eq!(session(&s, connection, workspace, "dev"), None);
    assert_eq!(session(&s, connection, u(9), "main"), None);
    assert_eq!(session(&s, u(2), workspace, "main"), None);
    s.remove_before(11);
    assert_eq!(session(&s, connection, workspace, "main"), None);
}

/// The key table grows by a rebuild in slot order (`RowStore::reserve_key`): across its
/// growths, with rows purged and their slots taken again in between, every row is found by
/// its key and no purged one is, and new rows alone grow it as hashbrown would.
#[test]
fn the_key_table_finds_every_row_across_its_growths() {
    let make = |id: u128| match id % 3 {
        0 => web(id, id as i64, Tunnel),
        _ => row(id, id as i64),
    };
    let mut s = RowStore::new();
    let mut grown = hashbrown::HashTable::<u32>::new();
    for id in 0..1000 {
        s.upsert(make(id).as_row_ref());
        grown.insert_unique(id as u64, id as u32, |&i| i as u64);
        assert_eq!(s.keys.capacity(), grown.capacity(), "after {} rows", id + 1);
    }
    assert_eq!(s.remove_before(400), 400);
    for id in 1000..3000 {
        s.upsert(make(id).as_row_ref());
    }
    assert_eq!(s.len(), 2600);
    for id in 0..3000 {
        let found = s
            .slot_of(&origin_of(&make(id)))
            .map(|slot| s.cols.row(slot));
        assert_eq!(found, (id >= 400).then(|| make(id)), "row {id}");
    }
}

/// A small fixed data set: each conjunct on its own.
fn fixture(t: Tuning) -> RowStore {
    let mut s = RowStore::with_tuning(t);
    let mut r1 = row(1, 100);
    r1.user_id = Some(u(0xe1));
    let mut r2 = row(2, 200);
    r2.organization_id = u(0xa2);
    r2.workspace_owner_id = u(0xb2);
    r2.disconnect_time = Some(250);
    r2.app_name_or_port = Some("vscode".into());
    let mut r3 = row(3, 300);
    r3.workspace_id = u(0xc2);
    r3.user_id = Some(u(0xe2));
    r3.connection_method = ReconnectingPty;
    r3.app_name_or_port = Some("cursor".into());
    let mut r4 = web(4, 400, WorkspaceApp);
    r4.app_name_or_port = Some("cursor".into());
    let mut r5 = web(5, 500, Tunnel);
    r5.disconnect_time = Some(600);
    r5.organization_id = u(0xa2);
    for r in [r1, r2, r3, r4, r5] {
        s.upsert(r.as_row_ref());
    }
    s
}

#[test]
fn each_conjunct() {
    for t in tunings() {
        let s = fixture(t);
        let f = |f: Filter| all(&s, &f);
        let d = Filter::default;
        assert_eq!(f(d()), (vec![5, 4, 3, 2, 1], 5));
        assert_eq!(
            f(Filter {
                organization_id: Some(u(0xa2)),
                ..d()
            }),
            (vec![5, 2], 2)
        );
        assert_eq!(
            f(Filter {
                organization_id: Some(u(0xff)),
                ..d()
            }),
            (vec![], 0)
        );
        assert_eq!(
            f(Filter {
                workspace_owner_ids: Some(vec![u(0xb2)]),
                ..d()
            }),
            (vec![2], 1)
        );
        assert_eq!(
            f(Filter {
                workspace_owner_ids: Some(vec![u(0xb2), u(0xb1)]),
                ..d()
            })
            .1,
            5
        );
        assert_eq!(
            f(Filter {
                workspace_owner_ids: Some(vec![]),
                ..d()
            }),
            (vec![], 0)
        );
        assert_eq!(
            f(Filter {
                user_ids: Some(vec![u(0xe1)]),
                ..d()
            }),
            (vec![5, 4, 1], 3)
        );
        assert_eq!(
            f(Filter {
                user_ids: Some(vec![]),
                ..d()
            }),
            (vec![], 0)
        );
        assert_eq!(
            f(Filter {
                user_ids: Some(vec![u(0x99)]),
                ..d()
            }),
            (vec![], 0)
        );
        assert_eq!(
            f(Filter {
                method: Some(Ssh),
                ..d()
            }),
            (vec![2, 1], 2)
        );
        assert_eq!(
            f(Filter {
                method: Some(PortForwarding),
                ..d()
            }),
            (vec![], 0)
        );
        // Apps match SSH and web-terminal rows only: not the workspace app's slug.
        let apps = |names: &[&str]| Some(names.iter().map(|n| n.to_string()).collect());
        assert_eq!(
            f(Filter {
                app_names: apps(&["cursor"]),
                ..d()
            }),
            (vec![3], 1)
        );
        assert_eq!(
            f(Filter {
                app_names: apps(&["cursor", "vscode"]),
                ..d()
            }),
            (vec![3, 2], 2)
        );
        assert_eq!(
            f(Filter {
                app_names: apps(&["nope"]),
                ..d()
            }),
            (vec![], 0)
        );
        assert_eq!(
            f(Filter {
                app_names: apps(&[]),
                ..d()
            }),
            (vec![], 0)
        );
        assert_eq!(
            f(Filter {
                method: Some(Ssh),
                app_names: apps(&["cursor"]),
                ..d()
            }),
            (vec![], 0)
        );
        // Exclusion keeps rows without an app.
        assert_eq!(
            f(Filter {
                excluded_app_names: vec!["vscode".into()],
                ..d()
            }),
            (vec![3, 1], 2)
        );
        assert_eq!(
            f(Filter {
                connected_after: Some(200),
                ..d()
            }),
            (vec![5, 4, 3, 2], 4)
        );
        assert_eq!(
            f(Filter {
                connected_before: Some(200),
                ..d()
            }),
            (vec![2, 1], 2)
        );
        assert_eq!(
            f(Filter {
                connected_after: Some(200),
                connected_before: Some(400),
                ..d()
            }),
            (vec![4, 3, 2], 3)
        );
        assert_eq!(
            f(Filter {
                connected_after: Some(201),
                connected_before: Some(200),
                ..d()
            }),
            (vec![], 0)
        );
        assert_eq!(
            f(Filter {
                workspace_id: Some(u(0xc2)),
                ..d()
            }),
            (vec![3], 1)
        );
        assert_eq!(
            f(Filter {
                workspace_id: Some(u(0xc9)),
                ..d()
            }),
            (vec![], 0)
        );
        assert_eq!(
            f(Filter {
                connection_id: Some(u(0xd002)),
                ..d()
            }),
            (vec![2], 1)
        );
        assert_eq!(
            f(Filter {
                connection_id: Some(u(0xd004)),
                ..d()
            }),
            (vec![], 0),
            "web rows have no connection id"
        );
        assert_eq!(
            f(Filter {
                status: Some(SessionStatus::Ongoing),
                ..d()
            }),
            (vec![3, 1], 2)
        );
        assert_eq!(
            f(Filter {
                status: Some(SessionStatus::Completed),
                ..d()
            }),
            (vec![2], 1),
            "web rows never have a status"
        );
        let vis = |v: Visibility| ids(&s.query(&d(), &v, 100, 0).0);
        assert_eq!(vis(Visibility::Organizations(vec![u(0xa2)])), [5, 2]);
        assert_eq!(
            vis(Visibility::Organizations(vec![u(0xa2), u(0xa1)])),
            [5, 4, 3, 2, 1]
        );
        assert_eq!(vis(Visibility::Organizations(vec![])), Vec::<u128>::new());
        let both = Filter {
            organization_id: Some(u(0xa1)),
            status: Some(SessionStatus::Ongoing),
            connected_after: Some(150),
            ..d()
        };
        assert_eq!(f(both), (vec![3], 1));
    }
}

/// `code:` (connlog's extension) on the fixture with codes: r1 none, r2 exit code 0, r3
/// exit code 1, r4 HTTP 200, r5 a denied tunnel (403); then a replacement, a purge and a
/// snapshot keep the code lists right.
#[test]
fn code_conjunct() {
    let codes = |list: &[CodeRange]| Filter {
        codes: Some(list.to_vec()),
        ..Filter::default()
    };
    let (one, class) = (CodeRange::one, CodeRange::class);
    for t in tunings() {
        let mut s = fixture(t);
        for (r, code) in s
            .rows()
            .into_iter()
            .zip([Some(403), Some(200), Some(1), Some(0), None])
        {
            s.upsert(ConnectionLog { code, ..r }.as_row_ref());
        }
        let check = |s: &RowStore| {
            let f = |f: Filter| all(s, &f);
            assert_eq!(f(codes(&[one(403)])), (vec![5], 1));
            assert_eq!(f(codes(&[class(4)])), (vec![5], 1));
            assert_eq!(
                f(codes(&[one(0)])),
                (vec![2], 1),
                "a row without a code is not 0"
            );
            assert_eq!(f(codes(&[class(2), one(1)])), (vec![4, 3], 2));
            assert_eq!(
                f(codes(&[one(0), one(1), class(2), class(4)])),
                (vec![5, 4, 3, 2], 4)
            );
            assert_eq!(f(codes(&[class(5), one(404)])), (vec![], 0), "no such code");
            assert_eq!(f(codes(&[])), (vec![], 0));
            assert_eq!(
                f(Filter {
                    method: Some(Tunnel),
                    ..codes(&[class(4)])
                }),
                (vec![5], 1)
            );
            assert_eq!(
                f(Filter {
                    method: Some(Ssh),
                    ..codes(&[class(4)])
                }),
                (vec![], 0)
            );
            assert_eq!(
                f(Filter {
                    status: Some(SessionStatus::Ongoing),
                    ..codes(&[one(0), one(1)])
                }),
                (vec![3], 1)
            );
            let origins: Vec<RowOrigin> = s.rows().iter().map(origin_of).collect();
            let fed = s.rows_by_origin(&codes(&[class(4)]), &Visibility::All, &origins);
            assert_eq!(
                fed.iter()
                    .flatten()
                    .map(|r| r.id.as_u128())
                    .collect::<Vec<_>>(),
                [5]
            );
        };
        check(&s);
        check(&restore(snapshot(&s, 64)).unwrap());

        // A replacement moves the row to its new code's list.
        let r5 = s.rows().into_iter().find(|r| r.id == u(5)).unwrap();
        s.upsert(
            ConnectionLog {
                code: Some(101),
                ..r5.clone()
            }
            .as_row_ref(),
        );
        assert_eq!(all(&s, &codes(&[class(4)])), (vec![], 0));
        assert_eq!(all(&s, &codes(&[one(101)])), (vec![5], 1));
        s.upsert(ConnectionLog { code: None, ..r5 }.as_row_ref());
        assert_eq!(all(&s, &codes(&[one(101), class(4)])), (vec![], 0));
        // A purge leaves the lists; a snapshot rebuilds them.
        s.remove_before(350);
        assert_eq!(all(&s, &codes(&[one(0), one(1), class(2)])), (vec![4], 1));
        let back = restore(snapshot(&s, 64)).unwrap();
        assert_eq!(
            all(&back, &codes(&[one(0), one(1), class(2)])),
            (vec![4], 1)
        );
    }
}

#[test]
fn purge_is_strictly_before() {
    for t in tunings() {
        let mut s = RowStore::with_tuning(t);
        for id in 1..=6 {
            s.upsert(row(id, id as i64 * 10).as_row_ref());
        }
        s.upsert(web(7, 30, Tunnel).as_row_ref());
        let mut expired = s.expired(30);
        expired.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(expired.len(), 2);
        assert!(expired.contains(&origin_of(&row(1, 10))));
        assert!(expired.contains(&origin_of(&row(2, 20))));
        assert_eq!(s.remove_before(30), 2);
        assert_eq!(ids(&s.rows()), [6, 5, 4, 7, 3]);
        let mut expired = s.expired(31);
        expired.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(
            expired,
            [origin_of(&row(3, 30)), RowOrigin::SingleEvent(u(7))]
        );
        assert_eq!(s.remove_before(31), 2);
        assert_eq!(ids(&s.rows()), [6, 5, 4]);
        assert_eq!(s.remove_before(i64::MIN), 0);
        assert_eq!(s.remove_before(i64::MAX), 3);
        assert!(s.is_empty());
        // The store works after being emptied, and freed slots are reused.
        s.upsert(row(8, 5).as_row_ref());
        assert_eq!(ids(&s.rows()), [8]);
    }
}

#[test]
fn snapshot_round_trip_in_any_chunk_size() {
    for t in tunings() {
        let s = fixture(t);
        for chunk in [1, 3, 7, 64, 1 << 20] {
            let back = restore(snapshot(&s, chunk)).unwrap();
            assert_eq!(back.rows(), s.rows());
            assert_eq!(back.len(), s.len());
            assert_eq!(
                all(
                    &back,
                    &Filter {
                        status: Some(SessionStatus::Ongoing),
                        ..Default::default()
                    }
                ),
                (vec![3, 1], 2)
            );
        }
    }
}

#[test]
fn snapshot_rejects_damage_with_clear_errors() {
    let s = fixture(Tuning::default());
    let bytes: Vec<u8> = snapshot(&s, 1 << 20).concat();
    let err = |b: Vec<u8>| match restore(vec![b]) {
        Err(JournalError::Corrupt(m)) => m,
        Err(e) => panic!("wrong error {e:?}"),
        Ok(_) => panic!("damaged snapshot accepted"),
    };
    assert!(err(b"{\"rows\":[]}".to_vec()).contains("bad magic"));
    assert!(err(b"CLR".to_vec()).contains("too short"));
    assert!(err(vec![]).contains("too short"));
    let mut v = bytes.clone();
    v[8] = 9;
    assert!(err(v).contains("version 9"));
    // Snapshots from before connection methods (format 1), before stored posting lists
    // (format 2), with session values for every row (format 3), with client session ids as
    // text (format 4) and interned (format 5) are refused, not misread.
    for old in [1, 2, 3, 4, 5] {
        let mut v = bytes.clone();
        v[8] = old;
        assert_eq!(
            err(v),
            format!("row snapshot: unsupported format version {old} (this plugin reads version 6)")
        );
    }
    // Every single-byte flip past the header is caught, never a panic.
    for i in 12..bytes.len() {
        let mut v = bytes.clone();
        v[i] ^= 0x10;
        let _ = err(v);
    }
    for cut in [12, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            err(bytes[..cut].to_vec()).contains("truncated"),
            "cut at {cut}"
        );
    }
    let mut v = bytes.clone();
    v.push(0);
    assert!(err(v).contains("after the checksum"));
    assert!(matches!(
        restore(vec![bytes.clone(), vec![], vec![1]]),
        Err(JournalError::Corrupt(_))
    ));
    // The source's error is passed on unchanged.
    let mut failing = || Err(JournalError::Unavailable("disk gone".into()));
    assert_eq!(
        RowStore::decode(&mut failing).err(),
        Some(JournalError::Unavailable("disk gone".into()))
    );
    let mut sink_fails = |_: &[u8]| Err(JournalError::Unavailable("full".into()));
    assert_eq!(
        s.encode(16, &mut sink_fails),
        Err(JournalError::Unavailable("full".into()))
    );
}

/// The posting lists are read as stored, not rebuilt: lists that do not fit the rows (a
/// row missing from its organization's list, or a list naming a row past the last) are
/// refused even under a right checksum.
#[test]
fn a_snapshot_whose_lists_do_not_fit_its_rows_is_refused() {
    let tampered = |change: fn(&mut RowStore)| {
        let mut s = fixture(Tuning::default());
        change(&mut s);
        match restore(snapshot(&s, 64)) {
            Err(JournalError::Corrupt(m)) => m,
            Err(e) => panic!("wrong error {e:?}"),
            Ok(_) => panic!("lists that do not fit accepted"),
        }
    };
    let refused = "row snapshot: the posting lists do not fit the rows";
    assert_eq!(tampered(|s| assert!(s.org_bits[0].remove(0))), refused);
    assert_eq!(tampered(|s| assert!(s.ongoing.insert(5))), refused);
    // r4, a workspace app, in the SSH list as well.
    assert_eq!(
        tampered(|s| assert!(s.method_bits[usize::from(Ssh.index())].insert(3))),
        refused
    );
    // r1, an SSH row without an app, missing from its type's list; r4 in the VS Code one.
    assert_eq!(tampered(|s| assert!(s.type_bits[0].remove(0))), refused);
    assert_eq!(tampered(|s| assert!(s.type_bits[1].insert(3))), refused);
}

/// The client session ids of a snapshot are checked against its rows even under a right
/// checksum: one for a row without session values, a text one for a row without any, past
/// the last row or out of order, and one naming a string the snapshot lacks.
#[test]
fn a_snapshot_whose_client_session_ids_do_not_fit_is_refused() {
    // A web row, then a session with a text client session id.
    let mut s = RowStore::new();
    s.upsert(web(1, 10, WorkspaceApp).as_row_ref());
    let mut text = row(2, 20);
    text.client_session_id = Some("Not-Hex".into());
    s.upsert(text.as_row_ref());
    let bytes = snapshot(&s, 1 << 20).concat();
    // Position 1's connection id, then: its disconnect time (8 bytes), its client session
    // id (16), the number of text ids (4) and the position of the one (4).
    let connection = u(0xd002).as_u128().to_le_bytes();
    let at = bytes.windows(16).rposition(|w| w == connection).unwrap();
    let (csid, count, position) = (at + 24, at + 40, at + 44);
    assert_eq!(bytes[count..count + 8], [1, 0, 0, 0, 1, 0, 0, 0]);
    // Before it, the two bitmaps: which rows have session values, then which a client
    // session id.
    let (sessions, csids) = (at - 16, at - 8);
    assert_eq!((bytes[sessions], bytes[csids]), (0b10, 0b10));
    let refused = |change: &dyn Fn(&mut Vec<u8>)| {
        let mut v = bytes.clone();
        change(&mut v);
        let body = v.len() - 8;
        let mut sum = snapshot::Checksum::new();
        sum.update(&v[..body]);
        v[body..].copy_from_slice(&sum.finish().to_le_bytes());
        match restore(vec![v]) {
            Err(JournalError::Corrupt(m)) => m,
            other => panic!("accepted or wrong error: {:?}", other.map(|s| s.rows())),
        }
    };
    assert_eq!(
        refused(&|v| v[csids] = 0b11),
        "row snapshot: a client session id for a row without session values"
    );
    let no_such_row = "row snapshot: a text client session id for a row without one";
    assert_eq!(refused(&|v| v[position] = 0), no_such_row);
    assert_eq!(refused(&|v| v[position] = 2), no_such_row);
    assert_eq!(
        refused(&|v| v[csid..csid + 4].copy_from_slice(&999u32.to_le_bytes())),
        "row snapshot: row names an unknown client session id"
    );
    assert_eq!(
        refused(&|v| v[csid + 4] = 1),
        "row snapshot: row names an unknown client session id"
    );
}

#[test]
fn buckets_split_and_stay_consistent_with_equal_times() {
    let mut s = RowStore::with_tuning(Tuning {
        bucket_max: 4,
        collect_limit: 0,
        bulk_remove: 1,
        ..Tuning::default()
    });
    for id in 1..=40 {
        s.upsert(row(id, 7).as_row_ref()); // all equal: a bucket that cannot split
    }
    for id in 41..=80 {
        s.upsert(row(id, id as i64).as_row_ref());
    }
    assert!(s.buckets.len() > 5);
    let (page, n) = s.query(
        &Filter {
            connected_before: Some(7),
            ..Default::default()
        },
        &Visibility::All,
        5,
        3,
    );
    assert_eq!(n, 40);
    assert_eq!(ids(&page), [37, 36, 35, 34, 33]);
    assert_eq!(s.len(), 80);
    assert!(s.memory_bytes() > 80 * 56);
}

/// Thousands of rows, so a page keeps only its newest candidates and drops older ones
/// as it goes: arrival order against time order, many equal times, pages that straddle
/// buckets, and the filtered and time-ranged paths.
#[test]
fn pages_of_many_rows_match_a_full_sort() {
    let mut s = RowStore::new();
    let mut want: Vec<(i64, u128)> = Vec::new();
    for n in 1..=20_000u128 {
        // Times mostly ascending with jitter and repeats, as connections arrive; ids in no
        // particular order, so ties are decided by ids the scan meets in any order.
        let t = (n as i64 / 40) + ((n * 7919) % 7) as i64;
        let id = (n * 2_654_435_761) % 1_000_003;
        let mut r = row(id, t);
        if id % 4 == 0 {
            r.app_name_or_port = Some("vscode".into());
        }
        s.upsert(r.as_row_ref());
        want.push((t, id));
    }
    want.sort_by(|a, b| b.cmp(a));
    let vscode: Vec<(i64, u128)> = want.iter().copied().filter(|(_, id)| id % 4 == 0).collect();
    let ranged: Vec<(i64, u128)> = want
        .iter()
        .copied()
        .filter(|(t, _)| (100..=400).contains(t))
        .collect();
    let cases = [
        (Filter::default(), &want),
        (
            Filter {
                app_names: Some(vec!["vscode".into()]),
                ..Default::default()
            },
            &vscode,
        ),
        (
            Filter {
                connected_after: Some(100),
                connected_before: Some(400),
                ..Default::default()
            },
            &ranged,
        ),
    ];
    for (filter, expected) in cases {
        for (limit, offset) in [
            (1, 0),
            (100, 0),
            (100, 4_090),
            (500, 4_000),
            (37, 9_999),
            (100, 19_950),
        ] {
            let (rows, n) = s.query(&filter, &Visibility::All, limit, offset);
            let expect: Vec<u128> = expected
                .iter()
                .skip(offset as usize)
                .take(limit as usize)
                .map(|k| k.1)
                .collect();
            assert_eq!(n, expected.len() as u64, "{filter:?}");
            assert_eq!(
                ids(&rows),
                expect,
                "{filter:?} limit {limit} offset {offset}"
            );
        }
    }
}

#[test]
fn checksum_is_streaming() {
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut whole = snapshot::Checksum::new();
    whole.update(&data);
    for split in [0, 1, 31, 32, 33, 500, 999] {
        let mut parts = snapshot::Checksum::new();
        parts.update(&data[..split]);
        parts.update(&data[split..]);
        assert_eq!(parts.finish(), whole.finish());
    }
    let mut other = snapshot::Checksum::new();
    other.update(&data[..999]);
    assert_ne!(other.finish(), whole.finish());
}

// ---------------------------------------------------------------------------------------
// Model-based property test.

/// (method, app name or port) of the generated rows.
const KINDS: [(ConnectionMethod, Option<&str>); 8] = [
    (Ssh, None),
    (Ssh, Some("vscode")),
    (Ssh, Some("goland")),
    (ReconnectingPty, Some("cursor")),
    (WorkspaceApp, Some("cursor")),
    (PortForwarding, Some("8080")),
    (PortForwarding, None),
    (Tunnel, None),
];
/// The codes rows have: exit codes, tunnel decisions, HTTP statuses.
const CODES: [i32; 9] = [-1, 0, 1, 101, 200, 302, 403, 404, 500];

/// The apps the generated filters name.
const APPS: [&str; 5] = ["vscode", "goland", "cursor", "8080", "zed"];

/// What a generated `code:` holds: codes rows have and do not have, and classes.
fn code_list() -> impl Strategy<Value = Vec<CodeRange>> {
    proptest::collection::vec(
        prop_oneof![
            proptest::sample::select(vec![-1, 0, 2, 101, 200, 403, 404, 418])
                .prop_map(CodeRange::one),
            (1i32..6).prop_map(CodeRange::class),
        ],
        0..3,
    )
    .prop_map(|mut l| {
        l.sort_unstable();
        l.dedup();
        l
    })
}

#[derive(Debug, Clone)]
struct Spec {
    id: u128,
    time: i64,
    org: u8,
    owner: u8,
    workspace: u8,
    agent: u8,
    ty: u8,
    user: Option<u8>,
    connection: Option<u8>,
    disconnect: Option<i64>,
    ip: Option<u8>,
    code: Option<i32>,
    reason: Option<u8>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<u128>(),
        0i64..40,
        (0u8..3, 0u8..3, 0u8..4, 0u8..2, 0u8..KINDS.len() as u8),
        proptest::option::of(0u8..3),
        proptest::option::of(1u8..6),
        proptest::option::of(0i64..60),
        (
            proptest::option::of(0u8..3),
            proptest::option::of(proptest::sample::select(CODES.to_vec())),
            proptest::option::of(0u8..2),
        ),
    )
        .prop_map(
            |(
                id,
                time,
                (org, owner, workspace, agent, ty),
                user,
                connection,
                disconnect,
                (ip, code, reason),
            )| Spec {
                id,
                time,
                org,
                owner,
                workspace,
                agent,
                ty,
                user,
                connection,
                disconnect,
                ip,
                code,
                reason,
            },
        )
}

fn build(s: &Spec) -> ConnectionLog {
    ConnectionLog {
        id: u(s.id),
        connect_time: s.time,
        organization_id: u(0xa0 + s.org as u128),
        workspace_owner_id: u(0xb0 + s.owner as u128),
        workspace_id: u(0xc0 + s.workspace as u128),
        workspace_name: format!("ws{}", s.workspace % 2),
        agent_name: ["main", "dev"][s.agent as usize].into(),
        connection_method: KINDS[s.ty as usize].0,
        code: s.code,
        ip: s
            .ip
            .map(|i| ["10.0.0.1", "127.0.0.1", ""][i as usize].into()),
        user_agent: s.ip.map(|i| format!("agent/{i}")),
        user_id: s.user.map(|x| u(0xe0 + x as u128)),
        app_name_or_port: KINDS[s.ty as usize].1.map(str::to_string),
        connection_id: s.connection.map(|c| u(0xd0 + c as u128)),
        disconnect_time: s.disconnect,
        disconnect_reason: s.reason.map(|r| ["", "closed"][r as usize].into()),
        // A number, and (as only another plugin's journal could hold) text.
        client_session_id: s.user.map(|x| match x {
            2 => "Not-Hex".into(),
            x => format!("{x:032x}"),
        }),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(Spec),
    /// Replace an existing row (by its key) with new contents.
    Replace(usize, Spec),
    Purge(i64),
    /// Close an existing row, when it is an ongoing session, by its disconnects
    /// (`RowStore::close`): at a time, with a code and a reason.
    Close(usize, i64, Option<i32>, Option<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => spec().prop_map(Op::Upsert),
        3 => (any::<usize>(), spec()).prop_map(|(i, s)| Op::Replace(i, s)),
        1 => (0i64..30).prop_map(Op::Purge),
        2 => (any::<usize>(), 0i64..40, proptest::option::of(0i32..3), proptest::option::of(0u8..2))
            .prop_map(|(i, t, code, reason)| Op::Close(i, t, code, reason)),
    ]
}

fn id_list(base: u128, n: u8) -> impl Strategy<Value = Option<Vec<Uuid>>> {
    proptest::option::of(proptest::collection::vec(
        (0..n + 1).prop_map(move |i| u(base + i as u128)),
        0..3,
    ))
}

fn app_list() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        proptest::sample::select(APPS.to_vec()).prop_map(str::to_string),
        0..3,
    )
}

fn filter() -> impl Strategy<Value = (Filter, Visibility)> {
    (
        proptest::option::of(0u8..4),
        id_list(0xb0, 3),
        (
            proptest::option::of(proptest::sample::select(ConnectionMethod::ALL.to_vec())),
            proptest::option::of(app_list()),
            proptest::option::of(app_list()),
            proptest::option::weighted(0.3, proptest::sample::select(LegacyType::ALL.to_vec())),
        ),
        id_list(0xe0, 3),
        (
            proptest::option::of(0i64..45),
            proptest::option::of(0i64..45),
        ),
        (proptest::option::of(0u8..5), proptest::option::of(0u8..7)),
        proptest::option::of(prop_oneof![
            Just(SessionStatus::Ongoing),
            Just(SessionStatus::Completed)
        ]),
        (id_list(0xa0, 3), proptest::option::of(code_list())),
    )
        .prop_map(
            |(
                org,
                owners,
                (method, apps, excluded, legacy_type),
                users,
                (after, before),
                (ws, conn),
                status,
                (vis, codes),
            )| {
                // A `type:` comes with its translation, as the parser gives it: the model
                // reads the translation, the store its own list.
                let (method, apps, excluded) = match legacy_type.map(LegacyType::filter) {
                    Some(t) => {
                        let names = |a: Vec<&str>| a.into_iter().map(str::to_string).collect();
                        (
                            Some(t.method),
                            t.apps.map(names),
                            Some(names(t.excluded_apps)),
                        )
                    }
                    None => (method, apps, excluded),
                };
                let f = Filter {
                    organization_id: org.map(|o| u(0xa0 + o as u128)),
                    workspace_owner_ids: owners,
                    method,
                    legacy_type,
                    app_names: apps,
                    excluded_app_names: excluded.unwrap_or_default(),
                    user_ids: users,
                    connected_after: after,
                    connected_before: before,
                    workspace_id: ws.map(|w| u(0xc0 + w as u128)),
                    connection_id: conn.map(|c| u(0xd0 + c as u128)),
                    status,
                    codes,
                };
                (f, vis.map_or(Visibility::All, Visibility::Organizations))
            },
        )
}

fn check_same(
    store: &RowStore,
    model: &Model,
    queries: &[((Filter, Visibility), u32, u32)],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(store.len(), model.rows.len());
    prop_assert_eq!(store.rows(), model.sorted());
    for ((f, v), limit, offset) in queries {
        prop_assert_eq!(
            store.query(f, v, *limit, *offset),
            model.query(f, v, *limit, *offset),
            "filter {:?} vis {:?}",
            f,
            v
        );
        // The live feed admits exactly the rows the query would, whatever it is asked
        // about: every stored row, and an origin the store does not hold.
        let mut origins: Vec<RowOrigin> = model.rows.iter().map(origin_of).collect();
        origins.push(RowOrigin::SingleEvent(u(u128::MAX)));
        let want: Vec<Option<ConnectionLog>> = model
            .rows
            .iter()
            .map(|r| matches(r, f, v).then(|| r.clone()))
            .chain([None])
            .collect();
        prop_assert_eq!(
            store.rows_by_origin(f, v, &origins),
            want,
            "feed {:?} vis {:?}",
            f,
            v
        );
    }
    for r in &model.rows {
        if let RowOrigin::Session(k) = origin_of(r) {
            prop_assert!(
                store
                    .find_session(k.connection_id, k.workspace_id, &k.agent_name)
                    .is_some()
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_naive_model(
        ops in proptest::collection::vec(op(), 0..60),
        queries in proptest::collection::vec((filter(), 1u32..8, 0u32..12), 1..12),
        tuning in 0usize..3,
        cutoff in 0i64..45,
    ) {
        let tuning = tunings()[tuning];
        let mut store = RowStore::with_tuning(tuning);
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Upsert(s) => {
                    let r = build(&s);
                    store.upsert(r.as_row_ref());
                    model.upsert(r);
                }
                Op::Replace(i, s) => {
                    if model.rows.is_empty() {
                        continue;
                    }
                    let old = model.rows[i % model.rows.len()].clone();
                    let mut r = build(&s);
                    match old.connection_id {
                        Some(c) => {
                            r.connection_id = Some(c);
                            r.workspace_id = old.workspace_id;
                            r.agent_name = old.agent_name.clone();
                        }
                        None => {
                            r.id = old.id;
                            r.connection_id = None;
                        }
                    }
                    store.upsert(r.as_row_ref());
                    model.upsert(r);
                }
                Op::Close(i, time, code, reason) => {
                    let Some(old) = model.rows.get(i % model.rows.len().max(1)) else {
                        continue;
                    };
                    let Some(connection) = old.connection_id else {
                        continue;
                    };
                    let session = store.find_session(connection, old.workspace_id, &old.agent_name).unwrap();
                    prop_assert_eq!(store.is_ongoing(session), old.disconnect_time.is_none());
                    if old.disconnect_time.is_some() {
                        continue;
                    }
                    // `Closing` keeps only a non-empty reason.
                    let reason = reason.map(|r| ["", "closed"][r as usize]).filter(|r| !r.is_empty());
                    // What `merge::session_row` makes of the row's connect and one disconnect.
                    let closed = ConnectionLog {
                        connect_time: old.connect_time.min(time),
                        disconnect_time: Some(time),
                        disconnect_reason: reason.map(str::to_string),
                        code,
                        ..old.clone()
                    };
                    store.close(session, &Closing { time, reason, code });
                    model.upsert(closed);
                }
                Op::Purge(t) => {
                    let mut want: Vec<String> = model.rows.iter().filter(|r| r.connect_time < t).map(|r| format!("{:?}", origin_of(r))).collect();
                    let mut got: Vec<String> = store.expired(t).iter().map(|o| format!("{o:?}")).collect();
                    want.sort();
                    got.sort();
                    prop_assert_eq!(got, want);
                    prop_assert_eq!(store.remove_before(t), model.remove_before(t));
                }
            }
        }
        check_same(&store, &model, &queries)?;
        let chunks = snapshot(&store, 97);
        check_same(&restore(chunks.clone()).unwrap(), &model, &queries)?;
        let mut back = restore_with(chunks, tuning).unwrap();
        check_same(&back, &model, &queries)?;
        // The restored store keeps working.
        prop_assert_eq!(back.remove_before(cutoff), model.remove_before(cutoff));
        back.upsert(build(&Spec { id: 42, time: 44, org: 0, owner: 0, workspace: 0, agent: 0, ty: 0, user: None, connection: None, disconnect: None, ip: None, code: None, reason: None }).as_row_ref());
        model.upsert(build(&Spec { id: 42, time: 44, org: 0, owner: 0, workspace: 0, agent: 0, ty: 0, user: None, connection: None, disconnect: None, ip: None, code: None, reason: None }));
        check_same(&back, &model, &queries)?;
    }
}

#[test]
fn a_snapshot_keeps_nothing_only_removed_rows_used() {
    let mut s = RowStore::new();
    let gone = ConnectionLog {
        organization_id: u(0xa9),
        workspace_owner_id: u(0xb9),
        workspace_id: u(0xc9),
        workspace_name: "purged-workspace".into(),
        agent_name: "purged-agent".into(),
        connection_method: Ssh,
        ip: Some("192.0.2.99".into()),
        user_agent: Some("purged-agent-string".into()),
        user_id: Some(u(0xe9)),
        app_name_or_port: Some("purged-app".into()),
        disconnect_time: Some(20),
        disconnect_reason: Some("purged-reason".into()),
        client_session_id: Some("99999999999999999999999999999999".into()),
        ..web(1, 10, Ssh)
    };
    s.upsert(gone.as_row_ref());
    for (id, t) in [(2, 100), (3, 101)] {
        s.upsert(row(id, t).as_row_ref());
    }
    s.upsert(web(4, 102, PortForwarding).as_row_ref());
    assert_eq!(s.remove_before(50), 1);
    let bytes = snapshot(&s, 1 << 20).concat();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    for needle in [
        &b"purged"[..],
        b"192.0.2.99",
        b"99999999999999999999999999999999",
        &0xa9u128.to_le_bytes(),
        &0xb9u128.to_le_bytes(),
        &0xc9u128.to_le_bytes(),
        &0xe9u128.to_le_bytes(),
    ] {
        assert!(!contains(needle), "{needle:?} outlived its row");
    }
    let back = restore(snapshot(&s, 7)).unwrap();
    assert_eq!(back.rows(), s.rows());
    assert_eq!(
        snapshot(&back, 1 << 20).concat(),
        bytes,
        "a snapshot of the restored store is the same"
    );
    for t in tunings() {
        let s = fixture(t);
        let back = restore(snapshot(&s, 64)).unwrap();
        assert_eq!(back.rows(), s.rows());
    }
}

/// A snapshot of rows inserted out of time order builds its posting lists again in the
/// snapshot's order, a container's range of rows at a time: a store of more rows than two
/// rounds answers every filter as the store it was taken from.
#[test]
fn a_snapshot_of_many_rows_answers_as_its_store() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut store = RowStore::new();
    for i in 0..140_000u32 {
        let mut s = spec().new_tree(&mut runner).unwrap().current();
        // Mostly single events, so that the rows outnumber two rounds of staging.
        if i % 64 != 0 {
            s.connection = None;
        }
        store.upsert(build(&s).as_row_ref());
    }
    assert!(store.len() > 2 << 16, "{} rows", store.len());
    let ascending = store.slots_ascending();
    assert!(
        ascending.iter().enumerate().any(|(i, &s)| i as u32 != s),
        "rows inserted out of time order, so that their lists are written in the snapshot's order"
    );
    let bytes = snapshot(&store, 1 << 20);
    let back = restore(bytes.clone()).unwrap();
    assert_eq!(back.rows(), store.rows());
    assert!(
        snapshot(&back, 1 << 20) == bytes,
        "the loaded store, whose rows are in slot order, writes its lists as they are: the same bytes"
    );
    for _ in 0..64 {
        let (f, v) = filter().new_tree(&mut runner).unwrap().current();
        for offset in [0, 70_000] {
            assert_eq!(
                back.query(&f, &v, 25, offset),
                store.query(&f, &v, 25, offset),
                "filter {f:?} vis {v:?}"
            );
        }
    }
}

/// Ids take two bytes per slot in a chunk until one needs more; widening a chunk, by an
/// append or an overwrite, keeps every id in it.
#[test]
fn id_columns_widen_a_chunk_when_an_id_needs_it() {
    use super::columns::{CHUNK, IdColumn};
    let slots = 3 * CHUNK + 10;
    let id = |s: usize| match s {
        _ if (CHUNK..2 * CHUNK).contains(&s) && s % 1000 == 999 => 70_000 + s as u32,
        _ => (s % 60_000) as u32,
    };
    let mut c = IdColumn::default();
    for s in 0..slots {
        c.push(id(s));
    }
    c.set(5, u32::MAX);
    c.set(2 * CHUNK as u32 + 3, 65_535);
    for s in 0..slots {
        let want = match s {
            5 => u32::MAX,
            _ if s == 2 * CHUNK + 3 => 65_535,
            _ => id(s),
        };
        assert_eq!(c.get(s as u32), want, "slot {s}");
    }
    // The first two chunks wide, the last two narrow (the last allocated whole).
    let data = 2 * CHUNK as u64 * 4 + 2 * CHUNK as u64 * 2;
    assert!(
        (data..data + 1024).contains(&c.memory_bytes()),
        "{}",
        c.memory_bytes()
    );
}

/// More distinct IP strings than 16 bits can number: rows keep theirs, through a snapshot.
#[test]
fn rows_keep_their_values_when_a_table_outgrows_16_bits() {
    let mut s = RowStore::new();
    for i in 0..70_000u128 {
        let mut r = web(i + 1, i as i64, WorkspaceApp);
        r.ip = Some(format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255));
        s.upsert(r.as_row_ref());
    }
    let rows = s.rows();
    assert_eq!(rows[0].ip.as_deref(), Some("10.1.17.111"));
    assert_eq!(rows[69_999].ip.as_deref(), Some("10.0.0.0"));
    assert_eq!(restore(snapshot(&s, 1 << 20)).unwrap().rows(), rows);
}

/// Session values and client session ids are found by rank across words and chunks, and a
/// full chunk keeps no spare capacity.
#[test]
fn session_columns_hold_values_for_the_slots_that_have_them() {
    use super::columns::{CHUNK, Csid, SessionColumns, SlotKind};
    let slots = 2 * CHUNK + 300;
    let kind = |s: usize| match (s % 3, s % 7) {
        _ if (CHUNK..CHUNK + 700).contains(&s) => SlotKind::SessionWithCsid,
        (0, 0 | 1) => SlotKind::SessionWithCsid,
        (0, _) => SlotKind::Session,
        _ => SlotKind::Plain,
    };
    let values = |s: usize, k: u32| SessionValues {
        connection: s as u128 * u128::from(k),
        disconnect: -(s as i64) * i64::from(k),
        csid: match (kind(s), s % 11) {
            (SlotKind::SessionWithCsid, 4) => Csid::Text(s as u32 + k),
            (SlotKind::SessionWithCsid, _) => Csid::Number(u128::MAX - s as u128 - u128::from(k)),
            _ => Csid::None,
        },
    };
    let mut c = SessionColumns::default();
    for s in 0..slots {
        c.push(kind(s));
    }
    for s in 0..slots {
        if kind(s) != SlotKind::Plain {
            c.set(s as u32, values(s, 7));
        }
    }
    for s in (0..slots).step_by(5) {
        if kind(s) != SlotKind::Plain {
            c.set(s as u32, values(s, 11));
        }
    }
    for s in 0..slots {
        let slot = s as u32;
        assert_eq!(c.kind(slot), kind(s), "slot {s}");
        let want = match (kind(s), s % 5 == 0) {
            (SlotKind::Plain, _) => SessionValues::default(),
            (_, false) => values(s, 7),
            (_, true) => values(s, 11),
        };
        assert_eq!(c.get(slot), want, "slot {s}");
        assert_eq!(c.connection(slot), want.connection, "slot {s}");
    }
    let count = |k: SlotKind| (0..slots).filter(|&s| kind(s) == k).count() as u64;
    let with_csid = count(SlotKind::SessionWithCsid);
    let values = count(SlotKind::Session) + with_csid;
    // 24 bytes per value and 16 per client session id; a bit per slot and per value and a
    // 2-byte rank per 64 of either; the open chunk's doubling slack (at most its 100
    // values); the chunks' headers and the text ids' bitmap.
    let bits = |n: u64| n / 8 + n / 32;
    let bound = values * 24 + with_csid * 16 + bits(slots as u64) + bits(values) + 100 * 40 + 4096;
    assert!(c.memory_bytes() <= bound, "{} > {bound}", c.memory_bytes());
}

/// A client session id is kept as the number it spells, and one that is not 32 lowercase
/// hexadecimal digits (which only another plugin's journal could hold) as its text, through
/// a snapshot too; a row with one but no connection id keeps it.
#[test]
fn client_session_ids_are_kept_as_numbers_or_as_text() {
    let mut s = RowStore::new();
    let hex = "0123456789abcdef0123456789abcdef";
    let mut a = row(1, 10);
    a.client_session_id = Some(hex.into());
    let mut b = row(2, 20);
    b.client_session_id = Some("Not-Hex".into());
    let mut c = web(3, 30, ConnectionMethod::WorkspaceApp);
    c.client_session_id = Some(hex.into());
    for r in [&a, &b, &c] {
        s.upsert(r.as_row_ref());
    }
    let want = vec![c.clone(), b.clone(), a.clone()];
    assert_eq!(s.rows(), want);
    assert_eq!(restore(snapshot(&s, 64)).unwrap().rows(), want);
    // The web row loses its client session id: it moves back to a slot without values.
    c.client_session_id = None;
    s.upsert(c.as_row_ref());
    assert_eq!(s.rows(), vec![c, b, a]);
}

/// Posting lists filled by appends give back their slack as containers' ranges of slots fill
/// up: a store of two full ranges costs what its copy loaded from a snapshot (read at exact
/// size) costs, but for the range the last row opened.
#[test]
fn filled_ranges_of_posting_lists_keep_no_slack() {
    let every = 2 << 16;
    let rows = u128::from(every) + 1;
    let mut store = RowStore::with_tuning(Tuning {
        compact_slots: every,
        ..Tuning::default()
    });
    for i in 0..rows {
        let mut r = web(i + 1, i as i64, WorkspaceApp);
        r.workspace_owner_id = u(0xb000 + i % 500);
        r.user_id = Some(u(0xe000 + i % 300));
        store.upsert(r.as_row_ref());
    }
    let back = restore(snapshot(&store, 1 << 20)).unwrap();
    assert_eq!(back.rows(), store.rows());
    let postings = |s: &RowStore| -> u64 {
        let report = s.memory_report().into_iter();
        report
            .filter(|(part, _)| part.ends_with("postings"))
            .map(|(_, bytes)| bytes)
            .sum()
    };
    // The last row's container in each of its lists: a header and a small array.
    let open_range = 8 * 64;
    assert!(
        postings(&store) <= postings(&back) + open_range,
        "built {} B, loaded {} B",
        postings(&store),
        postings(&back)
    );
}
