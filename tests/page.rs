//! The page's HTTP side against a real `connlog serve`: its security headers, signing in
//! and out with the session cookie (and refusing it cross-site), where a token is accepted,
//! and the role-scoped user and organization lists it reads.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::server::Server;
use support::*;

const SIGN_IN: &str = "/api/v2/users/session-cookie";
const LOGOUT: &str = "/api/v2/users/logout";
const SIGNED_OUT: &str =
    "You are signed out or your session has expired. Please sign in again to continue.";

/// A response: status, headers as (lower-case name, value), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        body_json(&self.body)
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

fn answer(mut response: ureq::http::Response<ureq::Body>) -> Answer {
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    Answer {
        status: response.status().as_u16(),
        headers,
        body: response.body_mut().read_to_string().unwrap(),
    }
}

fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = agent().get(format!("{}{path}", server.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(request.call().unwrap())
}

fn post(server: &Server, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut request = agent().post(format!("{}{path}", server.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(request.send(body).unwrap())
}

/// What the page's own `fetch` sends to sign in.
fn sign_in(server: &Server, token: &str) -> Answer {
    let origin = server.base.clone();
    post(
        server,
        SIGN_IN,
        &[
            ("content-type", "application/json"),
            ("origin", &origin),
            ("sec-fetch-site", "same-origin"),
        ],
        &serde_json::json!({ "session_token": token }).to_string(),
    )
}

fn assert_page_headers(a: &Answer, what: &str) {
    let csp = a
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"));
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: {directive} missing from {csp}"
        );
    }
    assert!(!csp.contains("unsafe"), "{what}: {csp}");
    assert_eq!(
        a.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(a.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(a.header("x-frame-options"), Some("DENY"), "{what}");
}

#[test]
fn the_page_and_its_assets_carry_a_strict_policy_and_root_redirects() {
    let data = data_dir();
    let server = Server::start(data.path());

    let root = get(&server, "/", &[]);
    assert_eq!(root.status, 307);
    assert_eq!(root.header("location"), Some("/connectionlog"));
    assert_page_headers(&root, "/");

    let page = get(&server, "/connectionlog", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_page_headers(&page, "/connectionlog");
    assert!(page.body.contains("<title>Connection Log</title>"));
    // Nothing inline for the policy to block, and nothing from elsewhere.
    for tag in page.body.split("<script").skip(1) {
        let tag = tag.split('>').next().unwrap();
        assert!(
            tag.contains("src=\"/connectionlog/assets/"),
            "<script{tag}>"
        );
    }
    assert!(!page.body.contains("style="), "an inline style attribute");
    assert!(!page.body.contains("http://") && !page.body.contains("https://"));

    // Every asset the shell names is served, immutable, with its type.
    let assets: BTreeSet<&str> = page
        .body
        .split('"')
        .filter(|s| s.starts_with("/connectionlog/assets/"))
        .collect();
    assert_eq!(assets.len(), 3, "{assets:?}");
    for path in &assets {
        let a = get(&server, path, &[]);
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(
            a.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{path}"
        );
        let expected = if path.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert_eq!(
            a.header("content-type"),
            Some(&*format!("{expected}; charset=utf-8"))
        );
        assert_page_headers(&a, path);
        assert!(!a.body.contains("innerHTML"), "{path} writes HTML");
    }
    // Modules the entry point imports, and the generated app registry.
    let app = assets.iter().find(|p| p.ends_with("/app.js")).unwrap();
    let folder = app.trim_end_matches("app.js");
    for module in [
        "rows.js", "query.js", "live.js", "menus.js", "agent.js", "icons.js", "apps.js",
    ] {
        let a = get(&server, &format!("{folder}{module}"), &[]);
        assert_eq!(a.status, 200, "{module}");
        assert!(!a.body.contains("innerHTML"), "{module} writes HTML");
    }
    // Another build's assets are gone, not served stale.
    let stale = get(
        &server,
        "/connectionlog/assets/0000000000000000/app.js",
        &[],
    );
    assert_eq!(stale.status, 404);
    assert_eq!(get(&server, &format!("{folder}nope.js"), &[]).status, 404);
}

#[test]
fn sign_in_sets_an_http_only_strict_cookie_and_never_echoes_the_token() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());

    let a = sign_in(&server, &admin);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.header("set-cookie"),
        Some(&*format!(
            "coder_session_token={admin}; Path=/; HttpOnly; SameSite=Strict"
        ))
    );
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert!(!a.body.contains(&admin), "the token is echoed: {}", a.body);
    let me = a.json();
    assert_eq!(me["username"], "admin");
    assert_eq!(me["id"], ADMIN);
    assert_eq!(
        me["roles"],
        serde_json::json!([
            {"name": "owner", "display_name": "Owner"},
            {"name": "organization-member", "display_name": "Organization Member", "organization_id": ORG},
        ])
    );

    // The cookie is what authenticates the page's requests.
    let cookie = format!("coder_session_token={admin}");
    let me = get(&server, "/api/v2/users/me", &[("cookie", &cookie)]);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["username"], "admin");
    let list = get(&server, "/api/v2/connectionlog", &[("cookie", &cookie)]);
    assert_eq!(list.status, 200, "{}", list.body);

    // A bad token: Coder's 401 bodies, no cookie, nothing echoed.
    for (bad, detail) in [
        (
            "",
            "Cookie \"coder_session_token\" or query parameter must be provided.",
        ),
        (
            "not-a-token",
            "Invalid API key format: incorrect amount of API key parts, expected 2 got 3",
        ),
        ("abcdefghij-abcdefghijabcdefghijab", "API key is invalid."),
    ] {
        let a = sign_in(&server, bad);
        assert_eq!(a.status, 401, "{bad:?}: {}", a.body);
        assert_eq!(a.json()["message"], SIGNED_OUT);
        assert_eq!(a.json()["detail"], detail);
        assert_eq!(a.header("set-cookie"), None);
    }
    let (id, _) = admin.split_once('-').unwrap();
    let wrong = format!("{id}-abcdefghijabcdefghijab");
    let a = sign_in(&server, &wrong);
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["detail"], "API key secret is invalid.");
    assert!(!a.body.contains(&wrong));
}

#[test]
fn sign_in_and_out_refuse_cross_site_requests_and_tokens_outside_a_json_body() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());
    let body = serde_json::json!({ "session_token": admin }).to_string();
    let json = ("content-type", "application/json");

    for (what, headers) in [
        (
            "another site's Origin",
            vec![json, ("origin", "http://evil.example")],
        ),
        ("a null Origin", vec![json, ("origin", "null")]),
        (
            "Sec-Fetch-Site: cross-site",
            vec![json, ("sec-fetch-site", "cross-site")],
        ),
        (
            "Sec-Fetch-Site: same-site",
            vec![json, ("sec-fetch-site", "same-site")],
        ),
    ] {
        let a = post(&server, SIGN_IN, &headers, &body);
        assert_eq!(a.status, 403, "{what}: {}", a.body);
        assert_eq!(a.json()["message"], "Cross-site request refused.", "{what}");
        assert_eq!(a.header("set-cookie"), None, "{what}");
        let a = post(&server, LOGOUT, &headers, "");
        assert_eq!(a.status, 403, "logout with {what}: {}", a.body);
        assert_eq!(a.header("set-cookie"), None, "logout with {what}");
    }

    // A form (what another site could post without asking) or plain text: refused.
    let form = format!("session_token={admin}");
    for content_type in [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
    ] {
        let a = post(&server, SIGN_IN, &[("content-type", content_type)], &form);
        assert_eq!(a.status, 415, "{content_type}: {}", a.body);
        assert_eq!(a.header("set-cookie"), None);
        assert!(!a.body.contains(&admin));
    }
    // The token in the URL is not read by sign-in, nor turned into a cookie by the page.
    let a = post(
        &server,
        &format!("{SIGN_IN}?coder_session_token={admin}"),
        &[json],
        "{\"session_token\":\"\"}",
    );
    assert_eq!(a.status, 401, "{}", a.body);
    let page = get(
        &server,
        &format!("/connectionlog?coder_session_token={admin}"),
        &[],
    );
    assert_eq!(page.status, 200);
    assert_eq!(page.header("set-cookie"), None);
    // Unknown fields are refused rather than guessed at.
    let a = post(
        &server,
        SIGN_IN,
        &[json],
        &format!("{{\"token\":\"{admin}\"}}"),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(!a.body.contains(&admin), "{}", a.body);
}

#[test]
fn users_me_takes_the_header_cookie_or_coders_query_parameter_and_nothing_else() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());

    let a = get(&server, "/api/v2/users/me", &[]);
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["message"], SIGNED_OUT);
    assert_eq!(
        a.json()["detail"],
        "Cookie \"coder_session_token\" or query parameter must be provided."
    );
    let bearer = format!("Bearer {admin}");
    for (what, path, headers) in [
        (
            "Authorization: Bearer",
            "/api/v2/users/me".to_owned(),
            vec![("authorization", bearer.as_str())],
        ),
        (
            "a token= query parameter",
            format!("/api/v2/users/me?token={admin}"),
            vec![],
        ),
        (
            "a session_token= query parameter",
            format!("/api/v2/users/me?session_token={admin}"),
            vec![],
        ),
    ] {
        let a = get(&server, &path, &headers);
        assert_eq!(a.status, 401, "{what}: {}", a.body);
    }
    let header = get(
        &server,
        "/api/v2/users/me",
        &[("coder-session-token", &admin)],
    );
    assert_eq!(header.status, 200);
    let me = header.json();
    for key in [
        "id",
        "username",
        "email",
        "created_at",
        "updated_at",
        "last_seen_at",
        "status",
        "login_type",
        "organization_ids",
        "roles",
    ] {
        assert!(me.get(key).is_some(), "{key} missing: {me}");
    }
    assert_eq!(me["created_at"], "2025-01-01T00:00:00Z");
    assert_eq!(me["organization_ids"], serde_json::json!([ORG]));
    // Coder's query parameter still works for the JSON API (its CLI and links use it).
    let query = get(
        &server,
        &format!("/api/v2/users/me?coder_session_token={admin}"),
        &[],
    );
    assert_eq!(query.status, 200);
}

#[test]
fn logout_clears_the_cookie_as_coder_answers() {
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());
    let cookie = format!("coder_session_token={admin}");
    let origin = server.base.clone();
    let a = post(
        &server,
        LOGOUT,
        &[
            ("cookie", &cookie),
            ("origin", &origin),
            ("sec-fetch-site", "same-origin"),
        ],
        "",
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body, "{\"message\":\"Logged out!\"}\n");
    assert_eq!(
        a.header("set-cookie"),
        Some("coder_session_token=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
    );
}

/// A simulated deployment's directory: (username → (site roles, {org id → org roles})).
fn simulated() -> (tempfile::TempDir, Value) {
    let data = tempfile::tempdir().unwrap();
    let out = connlog(data.path(), &["simulate", "--events", "200"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let directory = std::fs::read_to_string(data.path().join("directory.json")).unwrap();
    (data, body_json(&directory))
}

#[test]
fn the_user_and_organization_lists_are_scoped_by_role() {
    let (data, directory) = simulated();
    let tokens: Value =
        body_json(&std::fs::read_to_string(data.path().join("tokens.json")).unwrap());
    let server = Server::start(data.path());
    let token = |user: &str| tokens[user].as_str().unwrap().to_owned();
    let users = |user: &str| -> BTreeSet<String> {
        let (status, body) = server.get("/api/v2/users?limit=1000", Some(&token(user)));
        assert_eq!(status, 200, "{body}");
        let v = body_json(&body);
        let names: BTreeSet<String> = v["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(v["count"], names.len());
        names
    };
    let orgs = |user: &str| -> BTreeSet<String> {
        let (status, body) = server.get("/api/v2/organizations", Some(&token(user)));
        assert_eq!(status, 200, "{body}");
        body_json(&body)
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let all_users: Vec<&Value> = directory["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["deleted"] != true)
        .collect();
    let all_orgs: BTreeSet<String> = directory["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect();
    let name = |u: &Value| u["username"].as_str().unwrap().to_owned();

    // Owner and site auditor: everyone.
    for user in ["admin", "auditor"] {
        assert_eq!(users(user), all_users.iter().map(|u| name(u)).collect());
        assert_eq!(orgs(user), all_orgs);
    }
    // An organization auditor: the organization audited, and its members.
    let research = directory["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "research")
        .unwrap()["id"]
        .as_str()
        .unwrap();
    let members: BTreeSet<String> = all_users
        .iter()
        .filter(|u| u["organization_roles"].get(research).is_some())
        .map(|u| name(u))
        .collect();
    assert!(members.len() < all_users.len());
    assert_eq!(users("research-auditor"), members);
    assert_eq!(
        orgs("research-auditor"),
        BTreeSet::from(["research".to_owned()])
    );
    // A member: themselves, and their own organizations.
    let member = all_users
        .iter()
        .find(|u| {
            u["roles"].as_array().unwrap().is_empty()
                && u["organization_roles"]
                    .as_object()
                    .unwrap()
                    .values()
                    .all(|r| r.as_array().unwrap().is_empty())
                && tokens.get(name(u)).is_some()
        })
        .expect("a plain member");
    let member_name = name(member);
    assert_eq!(users(&member_name), BTreeSet::from([member_name.clone()]));
    let own: BTreeSet<String> = member["organization_roles"]
        .as_object()
        .unwrap()
        .keys()
        .map(|id| {
            directory["organizations"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["id"] == id.as_str())
                .unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(orgs(&member_name), own);

    // Search words, paging, and Coder's 400s.
    let (status, body) = server.get("/api/v2/users?q=ADMIN", Some(&token("admin")));
    assert_eq!(status, 200);
    let v = body_json(&body);
    assert_eq!(v["count"], 1);
    assert_eq!(v["users"][0]["username"], "admin");
    let (_, body) = server.get("/api/v2/users?limit=2&offset=1", Some(&token("admin")));
    let v = body_json(&body);
    assert_eq!(v["users"].as_array().unwrap().len(), 2);
    assert_eq!(v["count"], all_users.len());
    let (status, body) = server.get("/api/v2/users?q=role:owner", Some(&token("admin")));
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body_json(&body),
        serde_json::json!({"message": "Invalid user search query.", "validations": [{"field": "role", "detail": "\"role\" is not a valid query param"}]})
    );
    let (status, body) = server.get("/api/v2/users?limit=-1", Some(&token("admin")));
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body_json(&body)["message"],
        "Query parameters have invalid values."
    );
    for path in ["/api/v2/users", "/api/v2/organizations"] {
        assert_eq!(server.get(path, None).0, 401, "{path}");
    }
}
