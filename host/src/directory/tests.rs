//! The directory's tests: loading, look-ups, actors, tokens and saving, on one sample file.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::*;
use crate::events::parse_time;

const ORG_A: &str = "a0f6e7b4-9f36-4c4b-8a2d-1f2e3d4c5b6a";
const ORG_B: &str = "b1f6e7b4-9f36-4c4b-8a2d-1f2e3d4c5b6a";
const ALICE: &str = "11111111-1111-4111-8111-111111111111";
const BOB_OLD: &str = "22222222-2222-4222-8222-222222222222";
const BOB: &str = "33333333-3333-4333-8333-333333333333";
const CAROL: &str = "44444444-4444-4444-8444-444444444444";

fn sample() -> String {
    serde_json::json!({
        "organizations": [
            {"id": ORG_A, "name": "coder", "display_name": "Coder", "icon": ""},
            {"id": ORG_B, "name": "Research", "display_name": "Research", "icon": "/emojis/1f52c.png"}
        ],
        "users": [
            {"id": ALICE, "username": "alice", "email": "alice@example.com", "name": "Alice",
             "created_at": "2025-06-01T09:00:00Z", "roles": ["owner"],
             "organization_roles": {ORG_A: [], ORG_B: ["organization-admin"]}},
            {"id": BOB_OLD, "username": "bob", "email": "bob@example.com", "deleted": true,
             "created_at": "2025-05-01T09:00:00Z", "updated_at": "2025-06-01T09:00:00.5+02:00",
             "organization_roles": {ORG_A: []}},
            {"id": BOB, "username": "Bob", "email": "bob@example.com",
             "created_at": "2025-06-02T09:00:00Z", "organization_roles": {ORG_A: []}},
            {"id": CAROL, "username": "carol", "email": "carol@example.com", "status": "suspended",
             "login_type": "oidc", "created_at": "2025-06-03T09:00:00Z", "roles": ["auditor"],
             "organization_roles": {ORG_B: ["organization-auditor"]}}
        ]
    })
    .to_string()
}

fn load(text: &str) -> Result<Directory, DirectoryError> {
    Directory::from_json(text, Path::new("directory.json"))
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

#[test]
fn look_ups() {
    let d = load(&sample()).unwrap();
    assert_eq!(d.organization(uuid(ORG_A)).unwrap().name, "coder");
    assert_eq!(d.organization_named("RESEARCH").unwrap().id, uuid(ORG_B));
    assert_eq!(d.organization_named("nope"), None);
    assert_eq!(d.user(uuid(ALICE)).unwrap().username, "alice");
    let bobs: Vec<Uuid> = d.users_named("BOB").map(|u| u.id).collect();
    assert_eq!(bobs, vec![uuid(BOB_OLD), uuid(BOB)]);
    assert_eq!(d.users_with_email("bob@example.com").count(), 2);
    assert_eq!(
        d.users_with_email("BOB@example.com").count(),
        0,
        "email is exact"
    );
    assert_eq!(
        d.resolve_user("bob").unwrap().id,
        uuid(BOB),
        "the live bob wins"
    );
    assert_eq!(d.resolve_user(BOB_OLD).unwrap().id, uuid(BOB_OLD));
    assert_eq!(d.members_of(uuid(ORG_A)).count(), 3);
    assert_eq!(d.members_of(uuid(ORG_B)).count(), 2);
    // Defaults and times.
    let alice = d.user(uuid(ALICE)).unwrap();
    assert_eq!(
        (alice.status.as_str(), alice.login_type.as_str()),
        ("active", "password")
    );
    assert_eq!(alice.updated_at, alice.created_at);
    assert_eq!(
        d.user(uuid(BOB_OLD)).unwrap().updated_at,
        parse_time("2025-06-01T07:00:00.5Z").unwrap()
    );
}

#[test]
fn trait_look_ups() {
    let d = load(&sample()).unwrap();
    assert_eq!(d.organization_by_name("Coder").unwrap().id, uuid(ORG_A));
    assert_eq!(d.organization_by_id(uuid(ORG_B)).unwrap().name, "Research");
    assert!(d.user_by_id(uuid(CAROL)).is_some());
    let bobs = d.users_by_username("bob");
    assert_eq!(bobs.len(), 2);
    assert!(bobs[0].deleted && !bobs[1].deleted);
    assert_eq!(d.users_by_email("carol@example.com").len(), 1);
}

#[test]
fn actors() {
    let d = load(&sample()).unwrap();
    let alice = d.actor_for("alice").unwrap();
    assert_eq!(alice.user_id, uuid(ALICE));
    assert_eq!(alice.site_roles, vec!["owner".to_owned()]);
    assert_eq!(
        alice.organization_roles,
        vec![
            (uuid(ORG_A), vec![]),
            (uuid(ORG_B), vec!["organization-admin".to_owned()])
        ]
    );
    assert_eq!(d.actor_for(BOB).unwrap().user_id, uuid(BOB));
    assert!(matches!(
        d.actor_for(BOB_OLD),
        Err(DirectoryError::DeletedUser(_))
    ));
    assert!(matches!(
        d.actor_for("carol"),
        Err(DirectoryError::SuspendedUser(_))
    ));
    assert!(matches!(
        d.actor_for("nobody"),
        Err(DirectoryError::UnknownUser(_))
    ));
    assert_eq!(
        d.actor_for("nobody").unwrap_err().to_string(),
        "no user \"nobody\" in the directory"
    );
    assert_eq!(
        d.actor(uuid(CAROL)).unwrap().site_roles,
        vec!["auditor".to_owned()]
    );
}

#[test]
fn tokens() {
    let mut d = load(&sample()).unwrap();
    let token = d.create_token("alice").unwrap();
    let (id, secret) = token.split_once('-').unwrap();
    assert_eq!((id.len(), secret.len()), (10, 22));
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    assert_eq!(d.authenticate(&token).unwrap().username, "alice");
    assert_eq!(d.authenticate(&format!("{id}-{}", "x".repeat(22))), None);
    assert_eq!(d.authenticate(id), None);
    assert_eq!(d.authenticate(""), None);
    assert_eq!(d.authenticate("-"), None);
    // Only the hash is stored.
    let text = d.to_json();
    assert!(!text.contains(secret));
    assert!(text.contains(&hex::encode(Sha256::digest(secret.as_bytes()))));
    // Two tokens differ.
    let other = d.create_token(ALICE).unwrap();
    assert_ne!(token, other);
    // Suspended users' tokens do not authenticate; deleted users get none.
    let carol = d.create_token("carol").unwrap();
    assert_eq!(d.authenticate(&carol), None);
    assert!(matches!(
        d.create_token(BOB_OLD),
        Err(DirectoryError::DeletedUser(_))
    ));
    assert!(matches!(
        d.create_token("zed"),
        Err(DirectoryError::UnknownUser(_))
    ));
    // Survives a reload, and revocation.
    let reloaded = load(&text).unwrap();
    assert_eq!(reloaded.authenticate(&token).unwrap().username, "alice");
    assert!(d.revoke_token(id));
    assert_eq!(d.authenticate(&token), None);
    assert_eq!(d.authenticate(&other).unwrap().username, "alice");
    assert!(!d.revoke_token(id));
}

#[test]
fn save_and_load_round_trip() {
    let dir = std::env::temp_dir().join(format!("connlog-dir-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("directory.json");
    let mut d = load(&sample()).unwrap();
    d.create_token("bob").unwrap();
    d.save(&path).unwrap();
    let back = Directory::load(&path).unwrap();
    assert_eq!(back, d);
    // Saving again replaces the file and leaves no temporary behind.
    back.save(&path).unwrap();
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("directory.json")]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let mut tokens = BTreeMap::new();
    tokens.insert("bob".to_owned(), "abc-def".to_owned());
    write_tokens_file(&dir.join("tokens.json"), &tokens).unwrap();
    let read: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokens.json")).unwrap()).unwrap();
    assert_eq!(read, tokens);
    assert!(
        Directory::load_or_empty(&dir.join("missing.json"))
            .unwrap()
            .organizations()
            .is_empty()
    );
    let err = Directory::load(&dir.join("missing.json"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing.json") && err.contains("No such file"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn clear_load_errors() {
    let err = load("{\n  \"organizations\": [\n    {\"id\": 5}\n  ]\n}")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("directory.json: bad JSON at line 3, column"),
        "{err}"
    );
    assert!(err.contains("invalid type: integer `5`"), "{err}");

    let err = load(r#"{"users": [{"id": "11111111-1111-4111-8111-111111111111", "username": "a", "created_at": "2025-06-01T09:00:00Z", "organisation_roles": {}}]}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `organisation_roles`"), "{err}");

    let text = serde_json::json!({
        "organizations": [
            {"id": ORG_A, "name": "coder"},
            {"id": ORG_A, "name": "other"},
            {"id": ORG_B, "name": "CODER"}
        ],
        "users": [
            {"id": ALICE, "username": "alice", "email": "a@x", "created_at": "2025-06-01T09:00:00Z"},
            {"id": ALICE, "username": "alice2", "created_at": "2025-06-01T09:00:00Z"},
            {"id": BOB, "username": "ALICE", "created_at": "2025-06-01T09:00:00Z"},
            {"id": BOB_OLD, "username": "bob", "email": "a@x", "created_at": "2025-06-01T09:00:00Z"},
            {"id": CAROL, "username": "carol", "created_at": "2025-06-01T09:00:00Z",
             "organization_roles": {ORG_B: []}},
            {"id": "55555555-5555-4555-8555-555555555555", "username": "dan", "created_at": "yesterday"},
            {"id": "66666666-6666-4666-8666-666666666666", "username": "eve", "status": "banned",
             "created_at": "2025-06-01T09:00:00Z"}
        ],
        "api_tokens": [
            {"id": "abc", "user_id": CAROL, "hash": "zz", "created_at": "2025-06-01T09:00:00Z"},
            {"id": "abd", "user_id": ORG_A, "hash": "00".repeat(32), "created_at": "2025-06-01T09:00:00Z"}
        ]
    })
    .to_string();
    let Err(DirectoryError::Invalid { path, problems }) = load(&text) else {
        panic!("expected problems")
    };
    assert_eq!(path, Path::new("directory.json"));
    assert_eq!(
        problems,
        vec![
            format!("organizations[1]: duplicate organization id {ORG_A}"),
            "organizations[2]: duplicate organization name \"CODER\"".to_owned(),
            format!("users[1]: duplicate user id {ALICE}"),
            "users[2]: duplicate username \"ALICE\"".to_owned(),
            "users[3]: duplicate email \"a@x\"".to_owned(),
            format!("users[4]: user \"carol\" has roles in unknown organization {ORG_B}"),
            "users[5]: created_at \"yesterday\": not an RFC 3339 time".to_owned(),
            "users[6]: user \"eve\" has unknown status \"banned\" (one of [\"active\", \"dormant\", \"suspended\"])"
                .to_owned(),
            "api_tokens[0]: token \"abc\": hash is not 64 hex digits".to_owned(),
            format!("api_tokens[1]: token \"abd\" belongs to unknown user {ORG_A}"),
        ]
    );
}

#[test]
fn building_a_directory() {
    let mut d = Directory::new();
    let org = Organization {
        id: uuid(ORG_A),
        name: "coder".into(),
        display_name: "Coder".into(),
        icon: "".into(),
    };
    d.add_organization(org.clone()).unwrap();
    assert!(d.add_organization(org).is_err());
    let user = User {
        id: uuid(ALICE),
        username: "alice".into(),
        email: "alice@example.com".into(),
        name: "Alice".into(),
        avatar_url: String::new(),
        status: "active".into(),
        login_type: "password".into(),
        created_at: 1,
        updated_at: 2,
        last_seen_at: 3,
        deleted: false,
        site_roles: vec![ROLE_AUDITOR.into()],
    };
    let roles = BTreeMap::from([(uuid(ORG_B), vec![])]);
    let err = d.add_user(user.clone(), roles).unwrap_err().to_string();
    assert!(err.contains("unknown organization"), "{err}");
    d.add_user(
        user,
        BTreeMap::from([(uuid(ORG_A), vec![ROLE_ORGANIZATION_AUDITOR.into()])]),
    )
    .unwrap();
    let back = load(&d.to_json()).unwrap();
    assert_eq!(back, d);
    assert_eq!(back.user(uuid(ALICE)).unwrap().last_seen_at, 3);
}
