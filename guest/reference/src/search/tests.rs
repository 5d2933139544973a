//! Table-driven tests of `parse_filter`: Coder's `TestSearchConnectionLogs` cases, every rule
//! of its tokenizer, keys and `QueryParamParser`, and the parser's edge cases (lowercasing,
//! deleted users, look-ups that find nothing, quoting, bare words, empty values), and D3's
//! `method:`, `app:` and deprecated `type:`.

use super::*;
use connlog_plugin_sdk::testing::{MemoryHost, fixtures};
use connlog_vocabulary::{AppFamily, LegacyType, apps_in_family};

const ORG: Uuid = Uuid::from_u128(0x0000_0001_0000_4000_8000_0000_0000_0001);
const ORG_WITH_SPACE: Uuid = Uuid::from_u128(0x0000_0001_0000_4000_8000_0000_0000_0002);
const ACTOR: Uuid = Uuid::from_u128(0x0000_0002_0000_4000_8000_0000_0000_0001);
const OWNER: Uuid = Uuid::from_u128(0x0000_0002_0000_4000_8000_0000_0000_0002);
const ALICE: Uuid = Uuid::from_u128(0x0000_0002_0000_4000_8000_0000_0000_0003);
const DELETED_ALICE: Uuid = Uuid::from_u128(0x0000_0002_0000_4000_8000_0000_0000_0004);
const BOB: Uuid = Uuid::from_u128(0x0000_0002_0000_4000_8000_0000_0000_0005);
const CAROL: Uuid = Uuid::from_u128(0x0000_0002_0000_4000_8000_0000_0000_0006);
const GHOST: Uuid = Uuid::from_u128(0x0000_0002_0000_4000_8000_0000_0000_0007);
const SPACED: Uuid = Uuid::from_u128(0x0000_0002_0000_4000_8000_0000_0000_0008);
const WORKSPACE: Uuid = Uuid::from_u128(0x4fe7_22f0_49bc_4a90_a3eb_4ac4_39bf_ce20);
const CONNECTION: Uuid = Uuid::from_u128(0x08eb_6715_02f8_45c5_b86d_0378_6fcf_bb4e);

/// 2023-01-01T00:00:00Z and 2023-01-16T00:00:00Z.
const JAN_1: UnixNanos = 1_672_531_200_000_000_000;
const JAN_16: UnixNanos = 1_673_827_200_000_000_000;

const DATE_LAYOUT: &str = "2006-01-02T15:04:05.999999999Z07:00";

/// Coder's organizations and users, as the tests need them, in a [`MemoryHost`], whose
/// look-ups follow the `Directory` contract: names case-insensitive, emails exact, deleted
/// users included and flagged.
fn directory() -> MemoryHost {
    let user = |id, username: &str, email: &str, deleted| User {
        email: email.to_string(),
        deleted,
        ..fixtures::user(id, username, &[])
    };
    MemoryHost::with_directory(
        [
            fixtures::organization(ORG, "testorg"),
            fixtures::organization(ORG_WITH_SPACE, "my org"),
        ],
        [
            user(ACTOR, "actor", "actor@example.com", false),
            user(OWNER, "testowner", "owner@example.com", false),
            user(ALICE, "alice", "alice@example.com", false),
            user(DELETED_ALICE, "alice", "alice@example.com", true),
            user(BOB, "bob", "bob@example.com", false),
            user(CAROL, "Carol", "Carol@Example.com", false),
            user(GHOST, "ghost", "ghost@example.com", true),
            user(SPACED, "alice smith", "spaced@example.com", false),
        ],
    )
}

fn actor() -> Actor {
    Actor {
        user_id: ACTOR,
        site_roles: vec!["member".to_string()],
        organization_roles: Vec::new(),
    }
}

fn parse(q: &str) -> Result<Filter, Vec<Validation>> {
    parse_filter(q, &actor(), &directory())
}

fn errors(pairs: &[(&str, &str)]) -> Result<Filter, Vec<Validation>> {
    Err(pairs
        .iter()
        .map(|(field, detail)| Validation::new(*field, *detail))
        .collect())
}

fn ids(list: &[Uuid]) -> Option<Vec<Uuid>> {
    Some(list.to_vec())
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|n| n.to_string()).collect()
}

/// Spec §3.4's family members (the vocabulary crate pins the lists themselves).
fn family(f: AppFamily) -> Vec<String> {
    apps_in_family(f).into_iter().map(str::to_string).collect()
}

/// What a valid `type:<t>` alone parses to (spec §6.2's `applyConnectionTypeFilter` table).
fn legacy(t: &str) -> Filter {
    let method = |m| Filter {
        method: Some(m),
        legacy_type: LegacyType::parse(t),
        ..Filter::default()
    };
    match t {
        "vscode" => Filter {
            app_names: Some(family(AppFamily::Vscode)),
            ..method(ConnectionMethod::Ssh)
        },
        "jetbrains" => Filter {
            app_names: Some(family(AppFamily::Jetbrains)),
            ..method(ConnectionMethod::Ssh)
        },
        "ssh" => Filter {
            excluded_app_names: [family(AppFamily::Vscode), family(AppFamily::Jetbrains)].concat(),
            ..method(ConnectionMethod::Ssh)
        },
        other => method(ConnectionMethod::parse(other).expect("a method")),
    }
}

/// A named query and the exact outcome it must have.
type Case<'a> = (&'a str, String, Result<Filter, Vec<Validation>>);

fn run(cases: Vec<Case<'_>>) {
    let mut failures = Vec::new();
    for (name, query, want) in cases {
        let got = parse(&query);
        if got != want {
            failures.push(format!(
                "{name}: q={query:?}\n   got: {got:?}\n  want: {want:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Coder's `TestSearchConnectionLogs` (`coderd/searchquery/search_test.go@036757dc`), the
/// cases other than `type`, `method` and `app` (those are in `method_app_and_type`).
#[test]
fn coder_search_connection_logs() {
    run(vec![
        (
            "All",
            format!(
                "organization:testorg workspace_owner:testowner workspace_owner_email:owner@example.com \
                 type:port_forwarding username:testuser user_email:test@example.com \
                 connected_after:\"2023-01-01T00:00:00Z\" connected_before:\"2023-01-16T12:00:00+12:00\" \
                 workspace_id:{WORKSPACE} connection_id:{CONNECTION} status:ongoing"
            ),
            Ok(Filter {
                organization_id: Some(ORG),
                workspace_owner_ids: ids(&[OWNER]),
                method: Some(ConnectionMethod::PortForwarding),
                legacy_type: Some(LegacyType::PortForwarding),
                app_names: None,
                excluded_app_names: Vec::new(),
                // Neither `testuser` nor `test@example.com` exists: a set that matches nothing.
                user_ids: ids(&[]),
                connected_after: Some(JAN_1),
                connected_before: Some(JAN_16),
                workspace_id: Some(WORKSPACE),
                connection_id: Some(CONNECTION),
                status: Some(SessionStatus::Ongoing),
                codes: None,
            }),
        ),
        (
            "Me",
            "username:me workspace_owner:me".to_string(),
            Ok(Filter {
                user_ids: ids(&[ACTOR]),
                workspace_owner_ids: ids(&[ACTOR]),
                ..Filter::default()
            }),
        ),
    ]);
}

#[test]
fn tokenizer_rules() {
    run(vec![
        ("empty query", String::new(), Ok(Filter::default())),
        ("only spaces", "    ".to_string(), Ok(Filter::default())),
        (
            "runs of spaces",
            "  type:ssh     status:ongoing ".to_string(),
            Ok(Filter {
                status: Some(SessionStatus::Ongoing),
                ..legacy("ssh")
            }),
        ),
        (
            "whole query lowercased",
            "TYPE:SSH Status:OnGoing".to_string(),
            Ok(Filter {
                status: Some(SessionStatus::Ongoing),
                ..legacy("ssh")
            }),
        ),
        ("quoted key", r#""type":ssh"#.to_string(), Ok(legacy("ssh"))),
        ("doubled colon", "type::ssh".to_string(), Ok(legacy("ssh"))),
        (
            "leading colon",
            ":foo".to_string(),
            errors(&[("q", r#"Query element ":foo" cannot start or end with ':'"#)]),
        ),
        (
            "trailing colon",
            "type:".to_string(),
            errors(&[("q", r#"Query element "type:" cannot start or end with ':'"#)]),
        ),
        (
            "element error is returned alone",
            "foo:bar status:nope type: bogus".to_string(),
            errors(&[("q", r#"Query element "type:" cannot start or end with ':'"#)]),
        ),
        (
            "two colons",
            "type:ssh:extra".to_string(),
            errors(&[(
                "q",
                r#"Query element "type:ssh:extra" can only contain 1 ':'"#,
            )]),
        ),
        (
            "quotes are escaped in the element",
            r#"username:"a":b"#.to_string(),
            errors(&[(
                "q",
                r#"Query element "username:\"a\":b" can only contain 1 ':'"#,
            )]),
        ),
    ]);
}

#[test]
fn query_param_parser_rules() {
    run(vec![
        ("empty value disables the key", r#"type:"""#.to_string(), Ok(Filter::default())),
        // `QueryParamParser` checks for an empty first value before it checks for duplicates.
        ("empty first value hides a duplicate", r#"type:"" type:ssh"#.to_string(), Ok(Filter::default())),
        (
            "empty later value is still a duplicate",
            r#"type:ssh type:"""#.to_string(),
            errors(&[(
                "type",
                r#"Query param "type" provided more than once, found 2 times. Only provide 1 instance of this query param."#,
            )]),
        ),
        (
            "duplicate count",
            "status:ongoing status:completed status:bogus".to_string(),
            errors(&[(
                "status",
                r#"Query param "status" provided more than once, found 3 times. Only provide 1 instance of this query param."#,
            )]),
        ),
        (
            "duplicate organization names are not looked up",
            "organization:nope1 organization:nope2".to_string(),
            errors(&[(
                "organization",
                r#"Query param "organization" provided more than once, found 2 times. Only provide 1 instance of this query param."#,
            )]),
        ),
        (
            "duplicate string keys",
            "username:alice username:bob".to_string(),
            errors(&[(
                "username",
                r#"Query param "username" provided more than once, found 2 times. Only provide 1 instance of this query param."#,
            )]),
        ),
        ("bare word", "foo".to_string(), errors(&[("search", r#""search" is not a valid query param"#)])),
        (
            "bare words with a valid key",
            "foo type:ssh bar".to_string(),
            errors(&[("search", r#""search" is not a valid query param"#)]),
        ),
        (
            "explicit search key and bare words: one error",
            "foo search:bar".to_string(),
            errors(&[("search", r#""search" is not a valid query param"#)]),
        ),
        ("unknown key", "foo:bar".to_string(), errors(&[("foo", r#""foo" is not a valid query param"#)])),
        (
            "unknown keys sorted, after field errors",
            "zeta:1 alpha:2 type:bad".to_string(),
            errors(&[
                ("type", r#"Query param "type" has invalid value: "bad" is not a valid value"#),
                ("alpha", r#""alpha" is not a valid query param"#),
                ("zeta", r#""zeta" is not a valid query param"#),
            ]),
        ),
        (
            "unknown key with characters Go escapes",
            "\"a\tb\":1".to_string(),
            errors(&[("a\tb", r#""a\tb" is not a valid query param"#)]),
        ),
        (
            "errors accumulate in Coder's key order",
            "extra bogus:1 status:x connection_id:x workspace_id:x connected_before:x connected_after:x \
             user_email:a user_email:b username:a username:b type:x workspace_owner_email:a \
             workspace_owner_email:b workspace_owner:a workspace_owner:b organization:nope method:x app:y"
                .to_string(),
            errors(&[
                (
                    "organization",
                    r#"Query param "organization" has invalid value: organization "nope" either does not exist, or you are unauthorized to view it"#,
                ),
                (
                    "workspace_owner",
                    r#"Query param "workspace_owner" provided more than once, found 2 times. Only provide 1 instance of this query param."#,
                ),
                (
                    "workspace_owner_email",
                    r#"Query param "workspace_owner_email" provided more than once, found 2 times. Only provide 1 instance of this query param."#,
                ),
                (
                    "username",
                    r#"Query param "username" provided more than once, found 2 times. Only provide 1 instance of this query param."#,
                ),
                (
                    "user_email",
                    r#"Query param "user_email" provided more than once, found 2 times. Only provide 1 instance of this query param."#,
                ),
                (
                    "connected_after",
                    r#"Query param "connected_after" must be a valid date format (2006-01-02T15:04:05.999999999Z07:00): parsing time "X" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "X" as "2006""#,
                ),
                (
                    "connected_before",
                    r#"Query param "connected_before" must be a valid date format (2006-01-02T15:04:05.999999999Z07:00): parsing time "X" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "X" as "2006""#,
                ),
                ("workspace_id", r#"Query param "workspace_id" must be a valid uuid"#),
                ("connection_id", r#"Query param "connection_id" must be a valid uuid"#),
                ("status", r#"Query param "status" has invalid value: "x" is not a valid value"#),
                ("method", r#"Query param "method" has invalid value: "x" is not a valid value"#),
                ("type", r#"Query param "type" has invalid value: "x" is not a valid value"#),
                ("bogus", r#""bogus" is not a valid query param"#),
                ("search", r#""search" is not a valid query param"#),
            ]),
        ),
    ]);
}

#[test]
fn organization_key() {
    let missing = Uuid::from_u128(0xdead_beef_0000_4000_8000_0000_0000_0000);
    run(vec![
        (
            "by name",
            "organization:testorg".to_string(),
            Ok(Filter {
                organization_id: Some(ORG),
                ..Filter::default()
            }),
        ),
        (
            "name case-insensitive",
            "organization:TestOrg".to_string(),
            Ok(Filter {
                organization_id: Some(ORG),
                ..Filter::default()
            }),
        ),
        (
            "quoted name with a space",
            r#"organization:"my org""#.to_string(),
            Ok(Filter {
                organization_id: Some(ORG_WITH_SPACE),
                ..Filter::default()
            }),
        ),
        // Edge case 22: an unknown UUID is used as is; an unknown name is an error.
        (
            "unknown uuid used as is",
            format!("organization:{missing}"),
            Ok(Filter {
                organization_id: Some(missing),
                ..Filter::default()
            }),
        ),
        (
            "uuid in braces",
            format!("organization:{{{missing}}}"),
            Ok(Filter {
                organization_id: Some(missing),
                ..Filter::default()
            }),
        ),
        (
            "unknown name",
            "organization:nope".to_string(),
            errors(&[(
                "organization",
                r#"Query param "organization" has invalid value: organization "nope" either does not exist, or you are unauthorized to view it"#,
            )]),
        ),
        (
            "unknown name with a quote in it",
            r#"organization:no"pe"#.to_string(),
            errors(&[(
                "organization",
                r#"Query param "organization" has invalid value: organization "no\"pe" either does not exist, or you are unauthorized to view it"#,
            )]),
        ),
        (
            "nil uuid is no filter",
            format!("organization:{}", Uuid::nil()),
            Ok(Filter::default()),
        ),
    ]);
}

#[test]
fn owner_and_user_keys() {
    run(vec![
        (
            "owner by username",
            "workspace_owner:testowner".to_string(),
            Ok(Filter {
                workspace_owner_ids: ids(&[OWNER]),
                ..Filter::default()
            }),
        ),
        (
            "owner me, any case",
            "workspace_owner:ME".to_string(),
            Ok(Filter {
                workspace_owner_ids: ids(&[ACTOR]),
                ..Filter::default()
            }),
        ),
        (
            "owner by email",
            "workspace_owner_email:owner@example.com".to_string(),
            Ok(Filter {
                workspace_owner_ids: ids(&[OWNER]),
                ..Filter::default()
            }),
        ),
        // Edge case 22: an unknown owner matches nothing, it is not an error.
        (
            "unknown owner",
            "workspace_owner:nobody".to_string(),
            Ok(Filter {
                workspace_owner_ids: ids(&[]),
                ..Filter::default()
            }),
        ),
        // Edge case 21: owners and usernames ignore deleted users.
        (
            "deleted owner by username",
            "workspace_owner:ghost".to_string(),
            Ok(Filter {
                workspace_owner_ids: ids(&[]),
                ..Filter::default()
            }),
        ),
        (
            "deleted owner by email",
            "workspace_owner_email:ghost@example.com".to_string(),
            Ok(Filter {
                workspace_owner_ids: ids(&[]),
                ..Filter::default()
            }),
        ),
        (
            "owner constraints intersect",
            "workspace_owner:me workspace_owner_email:owner@example.com".to_string(),
            Ok(Filter {
                workspace_owner_ids: ids(&[]),
                ..Filter::default()
            }),
        ),
        (
            "owner constraints agree",
            "workspace_owner:me workspace_owner_email:actor@example.com".to_string(),
            Ok(Filter {
                workspace_owner_ids: ids(&[ACTOR]),
                ..Filter::default()
            }),
        ),
        (
            "username skips the deleted namesake",
            "username:alice".to_string(),
            Ok(Filter {
                user_ids: ids(&[ALICE]),
                ..Filter::default()
            }),
        ),
        (
            "deleted username",
            "username:ghost".to_string(),
            Ok(Filter {
                user_ids: ids(&[]),
                ..Filter::default()
            }),
        ),
        // Edge case 21: user_email matches deleted users too.
        (
            "user email includes deleted users",
            "user_email:alice@example.com".to_string(),
            Ok(Filter {
                user_ids: ids(&[ALICE, DELETED_ALICE]),
                ..Filter::default()
            }),
        ),
        (
            "user email of a deleted user",
            "user_email:ghost@example.com".to_string(),
            Ok(Filter {
                user_ids: ids(&[GHOST]),
                ..Filter::default()
            }),
        ),
        (
            "user constraints intersect",
            "username:alice user_email:alice@example.com".to_string(),
            Ok(Filter {
                user_ids: ids(&[ALICE]),
                ..Filter::default()
            }),
        ),
        (
            "user constraints disagree",
            "username:alice user_email:bob@example.com".to_string(),
            Ok(Filter {
                user_ids: ids(&[]),
                ..Filter::default()
            }),
        ),
        (
            "username me with my email",
            "username:me user_email:actor@example.com".to_string(),
            Ok(Filter {
                user_ids: ids(&[ACTOR]),
                ..Filter::default()
            }),
        ),
        // Edge case 20: the query is lowercased, so a mixed-case stored email never matches,
        // while usernames compare case-insensitively.
        (
            "mixed-case stored email",
            "user_email:Carol@Example.com".to_string(),
            Ok(Filter {
                user_ids: ids(&[]),
                ..Filter::default()
            }),
        ),
        (
            "mixed-case owner email",
            "workspace_owner_email:Carol@Example.com".to_string(),
            Ok(Filter {
                workspace_owner_ids: ids(&[]),
                ..Filter::default()
            }),
        ),
        (
            "mixed-case stored username",
            "username:CAROL".to_string(),
            Ok(Filter {
                user_ids: ids(&[CAROL]),
                ..Filter::default()
            }),
        ),
        // Edge case 23: quoted values keep their spaces.
        (
            "quoted username with a space",
            r#"username:"Alice Smith""#.to_string(),
            Ok(Filter {
                user_ids: ids(&[SPACED]),
                ..Filter::default()
            }),
        ),
        (
            "owner and user are independent",
            "workspace_owner:testowner username:bob".to_string(),
            Ok(Filter {
                workspace_owner_ids: ids(&[OWNER]),
                user_ids: ids(&[BOB]),
                ..Filter::default()
            }),
        ),
    ]);
}

#[test]
fn me_for_an_actor_without_id_is_no_constraint() {
    let nobody = Actor::default();
    let got = parse_filter("username:me workspace_owner:me", &nobody, &directory());
    assert_eq!(got, Ok(Filter::default()));
}

#[test]
fn type_key() {
    run(vec![
        ("ssh", "type:ssh".to_string(), Ok(legacy("ssh"))),
        (
            "vscode family",
            "type:vscode".to_string(),
            Ok(legacy("vscode")),
        ),
        (
            "jetbrains family",
            "type:jetbrains".to_string(),
            Ok(legacy("jetbrains")),
        ),
        (
            "web terminal",
            "type:reconnecting_pty".to_string(),
            Ok(legacy("reconnecting_pty")),
        ),
        (
            "workspace app",
            "type:workspace_app".to_string(),
            Ok(legacy("workspace_app")),
        ),
        (
            "port forwarding",
            "type:port_forwarding".to_string(),
            Ok(legacy("port_forwarding")),
        ),
        ("tunnel", "type:tunnel".to_string(), Ok(legacy("tunnel"))),
        (
            "old bookmarks still work",
            "type:ssh status:ongoing".to_string(),
            Ok(Filter {
                status: Some(SessionStatus::Ongoing),
                ..legacy("ssh")
            }),
        ),
        // Only the 7 released values: app names and families are not types.
        (
            "cursor is not filterable",
            "type:cursor".to_string(),
            errors(&[(
                "type",
                r#"Query param "type" has invalid value: "cursor" is not a valid value"#,
            )]),
        ),
        (
            "zed is not filterable",
            "type:zed".to_string(),
            errors(&[(
                "type",
                r#"Query param "type" has invalid value: "zed" is not a valid value"#,
            )]),
        ),
        (
            "sftp is a family but not filterable",
            "type:sftp".to_string(),
            errors(&[(
                "type",
                r#"Query param "type" has invalid value: "sftp" is not a valid value"#,
            )]),
        ),
        (
            "unknown is not filterable",
            "type:unknown".to_string(),
            errors(&[(
                "type",
                r#"Query param "type" has invalid value: "unknown" is not a valid value"#,
            )]),
        ),
        (
            "the value is lowercased in the error",
            "type:VS-Code".to_string(),
            errors(&[(
                "type",
                r#"Query param "type" has invalid value: "vs-code" is not a valid value"#,
            )]),
        ),
        (
            "non-ASCII value",
            r#"type:"ünï code""#.to_string(),
            errors(&[(
                "type",
                r#"Query param "type" has invalid value: "ünï code" is not a valid value"#,
            )]),
        ),
    ]);
}

const COMBINED: (&str, &str) = ("type", "type cannot be combined with method or app");

fn invalid(key: &str, value: &str) -> (String, String) {
    (
        key.to_string(),
        format!(r#"Query param "{key}" has invalid value: "{value}" is not a valid value"#),
    )
}

fn error_list(pairs: &[(String, String)]) -> Result<Filter, Vec<Validation>> {
    Err(pairs
        .iter()
        .map(|(field, detail)| Validation::new(field.as_str(), detail.as_str()))
        .collect())
}

fn method(m: ConnectionMethod) -> Filter {
    Filter {
        method: Some(m),
        ..Filter::default()
    }
}

fn apps(list: &[&str]) -> Filter {
    Filter {
        app_names: Some(names(list)),
        ..Filter::default()
    }
}

/// Spec §11.7 (`TestSearchConnectionLogs@036757dc`) and §6.2's edge rules: `method:`,
/// `app:`, and `type:` with them.
#[test]
fn method_app_and_type() {
    use ConnectionMethod::*;
    let combined = || errors(&[COMBINED]);
    run(vec![
        (
            "method",
            "method:reconnecting_pty".to_string(),
            Ok(method(ReconnectingPty)),
        ),
        (
            "every method",
            "method:tunnel".to_string(),
            Ok(method(Tunnel)),
        ),
        (
            "method:vscode",
            "method:vscode".to_string(),
            error_list(&[invalid("method", "vscode")]),
        ),
        (
            "method:unknown",
            "method:unknown".to_string(),
            error_list(&[invalid("method", "unknown")]),
        ),
        (
            "method twice",
            "method:ssh method:tunnel".to_string(),
            errors(&[(
                "method",
                r#"Query param "method" provided more than once, found 2 times. Only provide 1 instance of this query param."#,
            )]),
        ),
        (
            "app normalised",
            "app:Code-Server".to_string(),
            Ok(apps(&["code_server"])),
        ),
        (
            "apps repeated, sorted, deduplicated, with a method",
            "app:vscode app:Cursor app:cursor method:ssh".to_string(),
            Ok(Filter {
                method: Some(Ssh),
                ..apps(&["cursor", "vscode"])
            }),
        ),
        (
            "apps comma-separated",
            "app:zed,cursor".to_string(),
            Ok(apps(&["cursor", "zed"])),
        ),
        (
            "a trailing comma is an empty app",
            "app:vscode,".to_string(),
            Ok(apps(&["unknown", "vscode"])),
        ),
        (
            "a quoted blank app",
            r#"app:"  ""#.to_string(),
            Ok(apps(&["unknown"])),
        ),
        (
            "an empty first app disables the key",
            r#"app:"" app:cursor"#.to_string(),
            Ok(Filter::default()),
        ),
        (
            "families do not expand",
            "app:vscode".to_string(),
            Ok(apps(&["vscode"])),
        ),
        (
            "type and method",
            "type:ssh method:ssh".to_string(),
            combined(),
        ),
        (
            "type and app",
            "type:vscode app:cursor".to_string(),
            combined(),
        ),
        (
            "an invalid type is one error, not two",
            "type:cursor method:ssh".to_string(),
            error_list(&[invalid("type", "cursor")]),
        ),
        (
            "an invalid method is not combined",
            "type:ssh method:vscode".to_string(),
            error_list(&[invalid("method", "vscode")]),
        ),
        (
            "an empty type is ignored",
            r#"type:"" method:ssh"#.to_string(),
            Ok(method(Ssh)),
        ),
        (
            "family is no key in D3",
            "family:jetbrains".to_string(),
            errors(&[("family", r#""family" is not a valid query param"#)]),
        ),
        (
            "family beside a type is only an unknown key",
            "type:vscode family:vscode".to_string(),
            errors(&[("family", r#""family" is not a valid query param"#)]),
        ),
        (
            "order: status, method, then the combination, then unknown keys",
            "family:x type:ssh app:x method:bad status:bad".to_string(),
            error_list(&[
                invalid("status", "bad"),
                invalid("method", "bad"),
                (COMBINED.0.to_string(), COMBINED.1.to_string()),
                (
                    "family".to_string(),
                    r#""family" is not a valid query param"#.to_string(),
                ),
            ]),
        ),
    ]);
    // `type:vscode` lists cursor, not goland; `type:jetbrains` the reverse.
    let vscode = legacy("vscode").app_names.unwrap();
    assert!(vscode.contains(&"cursor".to_string()) && !vscode.contains(&"goland".to_string()));
    let jetbrains = legacy("jetbrains").app_names.unwrap();
    assert!(
        jetbrains.contains(&"goland".to_string()) && !jetbrains.contains(&"cursor".to_string())
    );
}

#[test]
fn time_keys() {
    let date_error = |key: &str, go_error: &str| {
        (
            key.to_string(),
            format!(
                "Query param \"{key}\" must be a valid date format ({DATE_LAYOUT}): {go_error}"
            ),
        )
    };
    let one = |key: &str, go_error: &str| -> Result<Filter, Vec<Validation>> {
        let (field, detail) = date_error(key, go_error);
        Err(vec![Validation::new(field, detail)])
    };
    run(vec![
        ("after", r#"connected_after:"2023-01-01T00:00:00Z""#.to_string(), Ok(Filter {
            connected_after: Some(JAN_1),
            ..Filter::default()
        })),
        ("before with offset, to UTC", r#"connected_before:"2023-01-16T12:00:00+12:00""#.to_string(), Ok(Filter {
            connected_before: Some(JAN_16),
            ..Filter::default()
        })),
        ("lowercased t and z are uppercased back", r#"connected_after:"2023-01-01t00:00:00z""#.to_string(), Ok(Filter {
            connected_after: Some(JAN_1),
            ..Filter::default()
        })),
        ("nanoseconds", r#"connected_after:"2023-01-01T00:00:00.000000001Z""#.to_string(), Ok(Filter {
            connected_after: Some(JAN_1 + 1),
            ..Filter::default()
        })),
        ("negative offset", r#"connected_after:"2022-12-31T14:00:00-10:00""#.to_string(), Ok(Filter {
            connected_after: Some(JAN_1),
            ..Filter::default()
        })),
        ("zero time is no bound", r#"connected_before:"0001-01-01T00:00:00Z""#.to_string(), Ok(Filter::default())),
        ("far past saturates", r#"connected_after:"1000-01-01T00:00:00Z""#.to_string(), Ok(Filter {
            connected_after: Some(i64::MIN),
            ..Filter::default()
        })),
        ("far future saturates", r#"connected_before:"9999-12-31T23:59:59Z""#.to_string(), Ok(Filter {
            connected_before: Some(i64::MAX),
            ..Filter::default()
        })),
        // Edge case 23: an unquoted value containing ':' fails in the tokenizer.
        (
            "unquoted timestamp",
            "connected_after:2023-01-01T00:00:00Z".to_string(),
            errors(&[("q", r#"Query element "connected_after:2023-01-01t00:00:00z" can only contain 1 ':'"#)]),
        ),
        (
            "not a date",
            "connected_after:x".to_string(),
            one(
                "connected_after",
                r#"parsing time "X" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "X" as "2006""#,
            ),
        ),
        (
            "date only",
            "connected_after:2023-01-01".to_string(),
            one(
                "connected_after",
                r#"parsing time "2023-01-01" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "" as "T""#,
            ),
        ),
        (
            "no zone",
            r#"connected_before:"2023-01-01T00:00:00""#.to_string(),
            one(
                "connected_before",
                r#"parsing time "2023-01-01T00:00:00" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "" as "Z07:00""#,
            ),
        ),
        (
            "month out of range",
            r#"connected_after:"2023-13-01T00:00:00Z""#.to_string(),
            one("connected_after", r#"parsing time "2023-13-01T00:00:00Z": month out of range"#),
        ),
        (
            "day out of range",
            r#"connected_before:"2023-02-29T00:00:00Z""#.to_string(),
            one("connected_before", r#"parsing time "2023-02-29T00:00:00Z": day out of range"#),
        ),
        (
            "hour out of range",
            r#"connected_before:"2023-01-01T25:00:00Z""#.to_string(),
            one("connected_before", r#"parsing time "2023-01-01T25:00:00Z": hour out of range"#),
        ),
        (
            "extra text, uppercased",
            r#"connected_after:"2023-01-01T00:00:00Zjunk""#.to_string(),
            one("connected_after", r#"parsing time "2023-01-01T00:00:00ZJUNK": extra text: "JUNK""#),
        ),
        (
            "quoted space",
            r#"connected_after:"2023-01-01 00:00:00Z""#.to_string(),
            one(
                "connected_after",
                r#"parsing time "2023-01-01 00:00:00Z" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse " 00:00:00Z" as "T""#,
            ),
        ),
        (
            "both bounds wrong",
            r#"connected_before:"2023-01-01T00:00:60Z" connected_after:"2023-01-01T00:00:00+25:00""#.to_string(),
            Err(vec![
                {
                    let (f, d) = date_error(
                        "connected_after",
                        r#"parsing time "2023-01-01T00:00:00+25:00": time zone offset hour out of range"#,
                    );
                    Validation::new(f, d)
                },
                {
                    let (f, d) =
                        date_error("connected_before", r#"parsing time "2023-01-01T00:00:60Z": second out of range"#);
                    Validation::new(f, d)
                },
            ]),
        ),
    ]);
}

#[test]
fn uuid_keys() {
    let bad = |key: &str| errors(&[(key, &*format!("Query param \"{key}\" must be a valid uuid"))]);
    let hex = WORKSPACE.simple().to_string();
    run(vec![
        (
            "hyphenated",
            format!("workspace_id:{WORKSPACE}"),
            Ok(Filter {
                workspace_id: Some(WORKSPACE),
                ..Filter::default()
            }),
        ),
        (
            "uppercase hex",
            format!("workspace_id:{}", WORKSPACE.to_string().to_uppercase()),
            Ok(Filter {
                workspace_id: Some(WORKSPACE),
                ..Filter::default()
            }),
        ),
        (
            "32 hex digits",
            format!("workspace_id:{hex}"),
            Ok(Filter {
                workspace_id: Some(WORKSPACE),
                ..Filter::default()
            }),
        ),
        (
            "braces",
            format!("connection_id:{{{CONNECTION}}}"),
            Ok(Filter {
                connection_id: Some(CONNECTION),
                ..Filter::default()
            }),
        ),
        (
            "quoted urn",
            format!("connection_id:\"urn:uuid:{CONNECTION}\""),
            Ok(Filter {
                connection_id: Some(CONNECTION),
                ..Filter::default()
            }),
        ),
        (
            "unquoted urn",
            format!("connection_id:urn:uuid:{CONNECTION}"),
            errors(&[(
                "q",
                &*format!(
                    "Query element \"connection_id:urn:uuid:{CONNECTION}\" can only contain 1 ':'"
                ),
            )]),
        ),
        (
            "nil workspace is no filter",
            format!("workspace_id:{}", Uuid::nil()),
            Ok(Filter::default()),
        ),
        (
            "nil connection is no filter",
            format!("connection_id:{}", Uuid::nil()),
            Ok(Filter::default()),
        ),
        (
            "not a uuid",
            "workspace_id:abc".to_string(),
            bad("workspace_id"),
        ),
        (
            "one digit short",
            format!("connection_id:{}", &CONNECTION.to_string()[1..]),
            bad("connection_id"),
        ),
        (
            "bad hex",
            format!("workspace_id:{}g", &WORKSPACE.to_string()[..35]),
            bad("workspace_id"),
        ),
    ]);
}

#[test]
fn status_key() {
    run(vec![
        (
            "ongoing",
            "status:ongoing".to_string(),
            Ok(Filter {
                status: Some(SessionStatus::Ongoing),
                ..Filter::default()
            }),
        ),
        (
            "completed",
            "status:Completed".to_string(),
            Ok(Filter {
                status: Some(SessionStatus::Completed),
                ..Filter::default()
            }),
        ),
        (
            "invalid",
            "status:open".to_string(),
            errors(&[(
                "status",
                r#"Query param "status" has invalid value: "open" is not a valid value"#,
            )]),
        ),
        (
            "quoted invalid keeps the space",
            r#"status:"on going""#.to_string(),
            errors(&[(
                "status",
                r#"Query param "status" has invalid value: "on going" is not a valid value"#,
            )]),
        ),
    ]);
}

/// `code:`, connlog's extension (Coder answers it with "not a valid query param"): codes and
/// classes, comma-separated and repeatable, sorted and deduplicated; each bad value named.
#[test]
fn code_key() {
    let codes = |ranges: &[CodeRange]| {
        Ok(Filter {
            codes: Some(ranges.to_vec()),
            ..Filter::default()
        })
    };
    let one = CodeRange::one;
    let class = CodeRange::class;
    let forms = "(a 32-bit integer such as 403, or a class 1xx to 5xx)";
    let invalid = |value: &str| {
        errors(&[(
            "code",
            &format!(
                r#"Query param "code" has invalid value: {value} is not a valid code {forms}"#
            ),
        )])
    };
    run(vec![
        ("a code", "code:403".to_string(), codes(&[one(403)])),
        ("a class", "code:4xx".to_string(), codes(&[class(4)])),
        (
            "classes are 400..=499 and so on",
            "code:1xx,5xx".to_string(),
            codes(&[
                CodeRange { lo: 100, hi: 199 },
                CodeRange { lo: 500, hi: 599 },
            ]),
        ),
        (
            "a list, sorted and deduplicated",
            "code:5xx,4xx,403,4xx".to_string(),
            codes(&[class(4), one(403), class(5)]),
        ),
        (
            "repeatable, as app: is",
            "code:404 code:101".to_string(),
            codes(&[one(101), one(404)]),
        ),
        (
            "key and class case-insensitive",
            "CODE:4XX".to_string(),
            codes(&[class(4)]),
        ),
        ("quoted", r#"code:"200""#.to_string(), codes(&[one(200)])),
        (
            "exit codes: zero, signs and leading zeros as strconv reads them",
            "code:0,-1,+2,007".to_string(),
            codes(&[one(-1), one(0), one(2), one(7)]),
        ),
        (
            "32-bit bounds",
            "code:2147483647,-2147483648".to_string(),
            codes(&[one(i32::MIN), one(i32::MAX)]),
        ),
        (
            "with other keys",
            "method:tunnel code:4xx".to_string(),
            Ok(Filter {
                method: Some(ConnectionMethod::Tunnel),
                codes: Some(vec![class(4)]),
                ..Filter::default()
            }),
        ),
        (
            "an empty first value disables it",
            r#"code:"" code:x"#.to_string(),
            Ok(Filter::default()),
        ),
        ("not a number", "code:abc".to_string(), invalid(r#""abc""#)),
        ("no class 6xx", "code:6xx".to_string(), invalid(r#""6xx""#)),
        ("no class 0xx", "code:0xx".to_string(), invalid(r#""0xx""#)),
        (
            "not a partial class",
            "code:40x".to_string(),
            invalid(r#""40x""#),
        ),
        ("a sign alone", "code:-".to_string(), invalid(r#""-""#)),
        ("no fractions", "code:4.5".to_string(), invalid(r#""4.5""#)),
        (
            "out of 32 bits",
            "code:2147483648".to_string(),
            invalid(r#""2147483648""#),
        ),
        (
            "a trailing comma",
            "code:4xx,".to_string(),
            invalid(r#""""#),
        ),
        (
            "quoted with a space",
            r#"code:"4 xx""#.to_string(),
            invalid(r#""4 xx""#),
        ),
        (
            "every bad value, in order, in one error",
            "code:abc,403,9xx code:x".to_string(),
            errors(&[(
                "code",
                &format!(
                    r#"Query param "code" has invalid values: "abc", "9xx", "x" are not valid codes {forms}"#
                ),
            )]),
        ),
        (
            "after the type combination error, before unknown keys",
            "zeta:1 code:abc type:ssh method:ssh status:x".to_string(),
            errors(&[
                (
                    "status",
                    r#"Query param "status" has invalid value: "x" is not a valid value"#,
                ),
                ("type", "type cannot be combined with method or app"),
                (
                    "code",
                    &format!(
                        r#"Query param "code" has invalid value: "abc" is not a valid code {forms}"#
                    ),
                ),
                ("zeta", r#""zeta" is not a valid query param"#),
            ]),
        ),
    ]);
}
