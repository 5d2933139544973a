//! The Connection Log page in a real browser: `connlog serve` on a simulated deployment,
//! headless Chromium through chromedriver. Every test asserts on what the page shows, and
//! compares it with what the API answers for the same user and filter.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/setup.sh installs them); without
//! them the tests fail, naming the packages. `CONNLOG_SCREENSHOTS=1` also writes
//! docs/screenshots/*.png.

mod browser_support;
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use browser_support::{Browser, grouped, one_at_a_time};
use serde_json::Value;
use support::server::Server;
use support::*;

/// A simulated deployment served over HTTP, with its users' tokens.
struct Deployment {
    server: Server,
    tokens: HashMap<String, String>,
    data: tempfile::TempDir,
}

impl Deployment {
    fn simulated() -> Self {
        let data = tempfile::tempdir().unwrap();
        let out = connlog(
            data.path(),
            &["simulate", "--events", "3000", "--seed", "14"],
            None,
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let tokens = std::fs::read_to_string(data.path().join("tokens.json")).unwrap();
        let tokens = serde_json::from_str(&tokens).unwrap();
        let server = Server::start(data.path());
        Self {
            server,
            tokens,
            data,
        }
    }

    fn token(&self, user: &str) -> &str {
        &self.tokens[user]
    }

    fn base(&self) -> &str {
        &self.server.base
    }

    /// The API's page for `user`: (row ids, count).
    fn api_page(&self, user: &str, q: &str, limit: u32, offset: u32) -> (Vec<String>, u64) {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", q)
            .append_pair("limit", &limit.to_string())
            .append_pair("offset", &offset.to_string())
            .finish();
        let (status, body) = self.server.get(
            &format!("/api/v2/connectionlog?{query}"),
            Some(self.token(user)),
        );
        assert_eq!(status, 200, "{body}");
        let page = body_json(&body);
        let ids = page["connection_logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        (ids, page["count"].as_u64().unwrap())
    }

    /// The API's 400 validation details for `q`.
    fn api_validations(&self, q: &str) -> Vec<String> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", q)
            .finish();
        let (status, body) = self.server.get(
            &format!("/api/v2/connectionlog?{query}"),
            Some(self.token("admin")),
        );
        assert_eq!(status, 400, "{body}");
        body_json(&body)["validations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["detail"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn showing(from: u64, to: u64, count: u64) -> String {
    format!(
        "Showing {} to {} of {} logs",
        grouped(from),
        grouped(to),
        grouped(count)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_shows_who_and_sign_out_returns_to_the_form() {
    let _one = one_at_a_time().await;
    let d = Deployment::simulated();
    let b = Browser::start().await;

    // A wrong token: Coder's 401 text on the form, and still signed out.
    b.goto(&format!("{}/", d.base())).await;
    b.wait_for(
        "the sign-in form",
        "return !document.getElementById('sign-in').hidden",
    )
    .await;
    assert!(b.client.current_url().await.unwrap().path() == "/connectionlog");
    b.find("#token").await.send_keys("nope").await.unwrap();
    b.click("#sign-in-form button[type=submit]").await;
    let error = b
        .wait_for(
            "the sign-in error",
            "return document.getElementById('sign-in-error').innerText",
        )
        .await;
    assert!(
        error
            .as_str()
            .unwrap()
            .contains("You are signed out or your session has expired"),
        "{error}"
    );

    b.sign_in(d.base(), d.token("admin")).await;
    assert_eq!(b.text("#who").await, "Signed in as admin (Owner)");
    // The token is in no URL and in no script-readable cookie.
    assert!(
        !b.client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains(d.token("admin"))
    );
    assert_eq!(b.eval("return document.cookie").await, "");
    let (ids, count) = d.api_page("admin", "", 25, 0);
    assert_eq!(b.row_ids().await, ids);
    assert_eq!(b.text("#showing").await, showing(1, 25, count));

    // Reloading keeps the session (the cookie), then signing out drops it.
    b.client.refresh().await.unwrap();
    b.wait_for(
        "who is signed in",
        "return document.getElementById('who').innerText",
    )
    .await;
    b.click("#sign-out").await;
    b.wait_for(
        "the sign-in form",
        "return !document.getElementById('sign-in').hidden",
    )
    .await;
    b.client.refresh().await.unwrap();
    b.wait_for(
        "the sign-in form after a reload",
        "return !document.getElementById('sign-in').hidden",
    )
    .await;
    assert!(b.find("#log").await.attr("hidden").await.unwrap().is_some());
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_by_typing_by_menus_and_presets_change_the_rows_and_the_url() {
    let _one = one_at_a_time().await;
    let d = Deployment::simulated();
    let b = Browser::start().await;
    b.sign_in(d.base(), d.token("admin")).await;
    let all = b.row_ids().await;

    // Typing.
    b.type_filter("method:ssh").await;
    let texts = shows_filter(&b, &d, "method:ssh").await;
    assert!(!texts.is_empty());
    assert_ne!(b.row_ids().await, all);
    for text in texts {
        assert!(
            text.contains("(SSH)") || text.contains("SSH session"),
            "{text}"
        );
    }

    // A menu adds its term.
    b.choose("#menu-status", "Ongoing").await;
    let texts = shows_filter(&b, &d, "method:ssh status:ongoing").await;
    assert!(!texts.is_empty());
    b.screenshot("filtered").await;
    for text in texts {
        assert!(text.contains("ongoing"), "{text}");
    }

    // Choosing a method replaces it in place.
    b.choose("#menu-method", "Web Terminal").await;
    for text in shows_filter(&b, &d, "method:reconnecting_pty status:ongoing").await {
        assert!(text.contains("Web Terminal"), "{text}");
    }

    // The organization and owner menus list the directory.
    b.choose("#menu-organization", "Research").await;
    shows_filter(
        &b,
        &d,
        "method:reconnecting_pty status:ongoing organization:research",
    )
    .await;

    // An owner and an app that have rows together, as the API says.
    let (_, body) = d.server.get(
        "/api/v2/connectionlog?q=method:ssh&limit=200",
        Some(d.token("admin")),
    );
    let with_app = body_json(&body)["connection_logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["app_display_name"].is_string())
        .expect("an SSH row from an app")
        .clone();
    let owner = with_app["workspace_owner_username"].as_str().unwrap();
    let (app, app_label) = (
        with_app["app_name"].as_str().unwrap(),
        with_app["app_display_name"].as_str().unwrap(),
    );
    b.click("button[data-preset='']").await;
    b.wait_for("no filter", "return location.search === ''")
        .await;
    b.choose("#menu-owner", owner).await;
    for text in shows_filter(&b, &d, &format!("workspace_owner:{owner}")).await {
        assert!(
            text.contains(&format!("{owner}'s")) || text.contains("their"),
            "{text}"
        );
    }
    b.choose("#menu-app", app_label).await;
    let q = format!("workspace_owner:{owner} app:{app}");
    let texts = shows_filter(&b, &d, &q).await;
    assert!(!texts.is_empty());
    for text in texts {
        assert!(text.contains(app_label), "{text}");
    }

    // The preset.
    b.click("button[data-preset='status:ongoing method:ssh']")
        .await;
    shows_filter(&b, &d, "status:ongoing method:ssh").await;

    // Back goes to the filter before, and shows its rows again.
    b.client.back().await.unwrap();
    shows_filter(&b, &d, &q).await;

    // The "Denied tunnels" preset: connlog's `code:` (Coder's filter has no key for it).
    let denied = "method:tunnel code:4xx";
    let button = format!("button[data-preset='{denied}']");
    assert_eq!(b.text(&button).await, "Denied tunnels");
    b.click(&button).await;
    let texts = shows_filter(&b, &d, denied).await;
    assert!(
        !texts.is_empty(),
        "the simulated deployment has denied tunnels"
    );
    for text in texts {
        assert!(text.contains("was denied a tunnel to"), "{text}");
    }
    b.close().await;
}

/// Waits for the URL to hold the filter `q`, then checks that the box shows it and that
/// the rows and the count are the API's first page for the site owner; returns the rows'
/// texts.
async fn shows_filter(b: &Browser, d: &Deployment, q: &str) -> Vec<String> {
    let quoted = serde_json::to_string(q).unwrap();
    b.wait_for(
        &format!("the filter {q} in the URL"),
        &format!("return new URLSearchParams(location.search).get('filter') === {quoted}"),
    )
    .await;
    assert_eq!(
        b.find("#filter")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(q)
    );
    let (ids, count) = d.api_page("admin", q, 25, 0);
    assert_eq!(b.row_ids().await, ids, "{q}");
    let want = if count > 0 {
        showing(1, 25.min(count), count)
    } else {
        "No records available".to_owned()
    };
    assert_eq!(b.text("#showing").await, want, "{q}");
    let texts = b.row_texts().await;
    assert_eq!(texts.len(), ids.len());
    texts
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_query_shows_coders_validation_and_type_shows_the_deprecation_banner() {
    let _one = one_at_a_time().await;
    let d = Deployment::simulated();
    let b = Browser::start().await;
    b.sign_in(d.base(), d.token("admin")).await;

    b.type_filter("method:vscode bogus:1").await;
    let expected = d.api_validations("method:vscode bogus:1");
    assert!(
        expected
            .iter()
            .any(|v| v.contains("\"vscode\" is not a valid value")),
        "{expected:?}"
    );
    let shown = b
        .wait_for(
            "the validation messages",
            "return [...document.querySelectorAll('#filter-errors li')].map(li => li.innerText)",
        )
        .await;
    let shown: Vec<String> = serde_json::from_value(shown).unwrap();
    assert_eq!(shown, expected);
    assert_eq!(
        b.find("#filter")
            .await
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert!(b.row_ids().await.is_empty());

    // Coder's deprecated `type:` works, with the banner; choosing a method replaces it.
    b.type_filter("status:ongoing type:ssh").await;
    let banner = b
        .wait_for(
            "the deprecation banner",
            "const a = document.getElementById('deprecation'); return !a.hidden && a.innerText",
        )
        .await;
    assert_eq!(
        banner,
        "The type filter is deprecated and will be removed in a future release. Use method and app instead."
    );
    // The banner follows the typed filter at once; the messages go with the answer to it.
    b.wait_for(
        "the validation messages to clear",
        "return document.querySelectorAll('#filter-errors li').length === 0",
    )
    .await;
    assert_eq!(
        b.row_ids().await,
        d.api_page("admin", "status:ongoing type:ssh", 25, 0).0
    );
    b.choose("#menu-method", "SSH").await;
    b.wait_for("the method", "return location.search.includes('method')")
        .await;
    assert_eq!(
        b.url_param("filter").await.as_deref(),
        Some("status:ongoing method:ssh")
    );
    b.wait_for(
        "the banner gone",
        "return document.getElementById('deprecation').hidden",
    )
    .await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_shows_the_exact_count_and_the_url_keeps_page_and_size() {
    let _one = one_at_a_time().await;
    let d = Deployment::simulated();
    let b = Browser::start().await;
    b.sign_in(d.base(), d.token("admin")).await;
    let (first, count) = d.api_page("admin", "", 25, 0);
    assert!(
        count > 1000,
        "the simulation is big enough to page: {count}"
    );
    assert_eq!(b.row_ids().await, first);
    assert_eq!(b.text("#showing").await, showing(1, 25, count));

    b.click("#next").await;
    b.wait_for("page 2", "return location.search.includes('page=2')")
        .await;
    assert_eq!(b.row_ids().await, d.api_page("admin", "", 25, 25).0);
    assert_eq!(b.text("#showing").await, showing(26, 50, count));
    // No live updates away from page 1.
    assert_eq!(b.text("#live-status").await, "Live updates on page 1 only");

    b.choose("#size", "100").await;
    b.wait_for("size 100", "return location.search.includes('size=100')")
        .await;
    assert_eq!(
        b.url_param("page").await,
        None,
        "a new size starts at page 1"
    );
    let ids = b.row_ids().await;
    assert_eq!(ids.len(), 100);
    assert_eq!(ids, d.api_page("admin", "", 100, 0).0);
    assert_eq!(b.text("#showing").await, showing(1, 100, count));

    // A shared link opens where it points; the last page ends at the count.
    let last = count.div_ceil(50);
    b.goto(&format!("{}/connectionlog?page={last}&size=50", d.base()))
        .await;
    let ids = b.row_ids().await;
    let offset = (last - 1) * 50;
    assert_eq!(ids, d.api_page("admin", "", 50, offset as u32).0);
    assert_eq!(b.text("#showing").await, showing(offset + 1, count, count));
    assert!(
        b.find("#next")
            .await
            .prop("disabled")
            .await
            .unwrap()
            .as_deref()
            == Some("true")
    );

    // Past the end: Coder's empty state for a later page.
    b.goto(&format!(
        "{}/connectionlog?page={}&size=50",
        d.base(),
        last + 5
    ))
    .await;
    b.row_ids().await;
    assert_eq!(
        b.text("#rows").await,
        "No connection logs available on this page"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_auditor_sees_their_organizations_and_a_member_the_empty_state() {
    let _one = one_at_a_time().await;
    let d = Deployment::simulated();
    let b = Browser::start().await;

    b.sign_in(d.base(), d.token("research-auditor")).await;
    assert_eq!(
        b.text("#who").await,
        "Signed in as research-auditor (Organization Auditor)"
    );
    let (ids, count) = d.api_page("research-auditor", "", 25, 0);
    let (_, all) = d.api_page("admin", "", 1, 0);
    assert!(count > 0 && count < all, "{count} of {all}");
    assert_eq!(b.row_ids().await, ids);
    assert_eq!(b.text("#showing").await, showing(1, 25.min(count), count));
    // Every row is the audited organization's (its details say so).
    let orgs = b
        .eval(
            "return [...document.querySelectorAll('#rows .details')].map(dl => \
               [...dl.querySelectorAll('.detail')].find(d => d.firstChild.textContent === 'Organization:').lastChild.textContent)",
        )
        .await;
    let orgs: Vec<String> = serde_json::from_value(orgs).unwrap();
    assert_eq!(orgs.len(), ids.len());
    assert!(orgs.iter().all(|o| o == "Research"), "{orgs:?}");
    // The organization menu offers only what they audit (one: hidden, as Coder hides it).
    let options = b
        .eval("return [...document.querySelectorAll('#menu-organization option')].map(o => o.textContent)")
        .await;
    assert_eq!(
        options,
        serde_json::json!(["All organizations", "Research"])
    );

    b.click("#sign-out").await;
    b.wait_for(
        "the sign-in form",
        "return !document.getElementById('sign-in').hidden",
    )
    .await;
    let member = d
        .tokens
        .keys()
        .find(|u| {
            let (status, body) = d.server.get("/api/v2/users/me", Some(d.token(u)));
            status == 200 && body_json(&body)["roles"].as_array().unwrap().is_empty()
        })
        .expect("a plain member")
        .clone();
    b.sign_in(d.base(), d.token(&member)).await;
    assert_eq!(
        b.text("#who").await,
        format!("Signed in as {member} (Member)")
    );
    b.row_ids().await;
    assert_eq!(b.text("#rows").await, "No connection logs available");
    assert_eq!(b.text("#showing").await, "No records available");
    b.close().await;
}

/// Ingests, over HTTP as the owner, an SSH connect from Cursor to the simulated
/// deployment's newest SSH row's workspace, now.
fn ingest_ssh_connect(d: &Deployment, id: &str, connection: &str) {
    let (_, body) = d.server.get(
        "/api/v2/connectionlog?limit=1&q=method:ssh",
        Some(d.token("admin")),
    );
    let row = &body_json(&body)["connection_logs"][0];
    let event = serde_json::json!({
        "ID": id, "Time": now_rfc3339(),
        "OrganizationID": row["organization"]["id"], "WorkspaceOwnerID": row["workspace_owner_id"],
        "WorkspaceID": row["workspace_id"], "WorkspaceName": row["workspace_name"],
        "AgentName": row["agent_name"], "ConnectionMethod": "ssh", "Code": null,
        "IP": "10.0.0.7", "UserAgent": "", "UserID": null, "AppNameOrPort": "cursor",
        "ConnectionID": connection, "DisconnectReason": "", "ClientSessionID": "",
        "ConnectionStatus": "connected",
    })
    .to_string();
    let (status, body) = d.server.post(
        "/api/v2/connectionlog/ingest",
        Some(d.token("admin")),
        &event,
    );
    assert_eq!(status, 200, "{body}");
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_ingested_over_http_appears_live_and_pause_holds_it_back() {
    let _one = one_at_a_time().await;
    let d = Deployment::simulated();
    let b = Browser::start().await;
    b.sign_in(d.base(), d.token("admin")).await;
    b.row_ids().await;
    b.wait_for(
        "the live stream",
        "return document.getElementById('live-status').dataset.state === 'live'",
    )
    .await;
    let (_, before) = d.api_page("admin", "", 1, 0);

    let id = "7e57ab1e-0000-4000-8000-000000000001";
    ingest_ssh_connect(&d, id, "7e57ab1e-0000-4000-8000-0000000000c1");
    b.wait_for(
        "the new row at the top",
        &format!("const li = document.querySelector('#rows li.row'); return li && li.dataset.id === '{id}'"),
    )
    .await;
    b.wait_for(
        "the count to go up",
        &format!(
            "return document.getElementById('showing').innerText === {:?}",
            showing(1, 25, before + 1)
        ),
    )
    .await;
    assert!(
        b.text("#announcer")
            .await
            .starts_with("New connection log: Cursor (SSH) session to")
    );

    // Paused: a new row waits; resumed: it arrives (the stream continues after the last
    // position, so nothing is missed).
    b.click("#pause").await;
    assert_eq!(
        b.find("#pause")
            .await
            .attr("aria-pressed")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    let held = "7e57ab1e-0000-4000-8000-000000000002";
    ingest_ssh_connect(&d, held, "7e57ab1e-0000-4000-8000-0000000000c2");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !b.row_ids().await.contains(&held.to_owned()),
        "shown while paused"
    );
    b.click("#pause").await;
    b.wait_for(
        "the held row after resuming",
        &format!("return document.querySelector('#rows li.row').dataset.id === '{held}'"),
    )
    .await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_csv_download_is_what_connlog_export_writes() {
    let _one = one_at_a_time().await;
    let d = Deployment::simulated();
    let b = Browser::start().await;
    b.sign_in(d.base(), d.token("coder-auditor")).await;
    let q = "method:ssh status:completed";
    b.type_filter(q).await;
    b.wait_for("the filter", "return location.search.includes('completed')")
        .await;
    b.row_ids().await;
    let href = b
        .find("#download-csv")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(href.starts_with("/api/v2/connectionlog/export?"), "{href}");
    assert!(!href.contains(d.token("coder-auditor")));

    // The browser's own download, with its cookie: what a person gets by clicking.
    b.click("#download-csv").await;
    let file = wait_for_download(b.downloads.path());
    let downloaded = std::fs::read(&file).unwrap();

    let cli = connlog(
        d.data.path(),
        &[
            "export",
            "--format",
            "csv",
            "-q",
            q,
            "--as",
            "coder-auditor",
        ],
        None,
    );
    assert_eq!(cli.status.code(), Some(0), "{}", stderr(&cli));
    assert!(cli.stdout.len() > 100, "a real export: {}", stdout(&cli));
    assert_eq!(String::from_utf8_lossy(&downloaded), stdout(&cli));
    b.close().await;
}

/// The one finished file in `dir` (Chromium writes `*.crdownload` until it is done).
fn wait_for_download(dir: &Path) -> std::path::PathBuf {
    let started = Instant::now();
    loop {
        let files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        if let [file] = files.as_slice()
            && file.extension().is_none_or(|e| e != "crdownload")
        {
            return file.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no finished download in {}: {files:?}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const HOSTILE_IMG: &str = "<img src=x onerror=alert(1)>";
const HOSTILE_SCRIPT: &str = "</script><script>alert(2)</script>";

#[tokio::test(flavor = "multi_thread")]
async fn hostile_strings_are_shown_as_text() {
    let _one = one_at_a_time().await;
    let data = data_dir();
    let admin = token(data.path(), "admin");
    let server = Server::start(data.path());
    let line = |fields: Value| fields.to_string();
    let base = serde_json::json!({
        "OrganizationID": ORG, "WorkspaceOwnerID": ADMIN, "WorkspaceID": WORKSPACE,
        "WorkspaceName": HOSTILE_IMG, "AgentName": HOSTILE_SCRIPT, "Code": null,
        "IP": "127.0.0.1", "UserAgent": "", "UserID": null, "AppNameOrPort": "",
        "ConnectionID": null, "DisconnectReason": "", "ClientSessionID": "",
    });
    let with = |extra: Value| {
        let mut v = base.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        line(v)
    };
    let events = [
        with(serde_json::json!({"ID": "aaaaaaaa-0000-4000-8000-000000000001", "Time": "2025-07-10T10:00:00Z",
            "ConnectionMethod": "ssh", "ConnectionID": SESSION, "ConnectionStatus": "connected",
            "AppNameOrPort": HOSTILE_SCRIPT})),
        with(serde_json::json!({"ID": "aaaaaaaa-0000-4000-8000-000000000002", "Time": "2025-07-10T11:00:00Z",
            "ConnectionMethod": "ssh", "ConnectionID": SESSION, "ConnectionStatus": "disconnected",
            "Code": 1, "DisconnectReason": HOSTILE_IMG})),
        with(serde_json::json!({"ID": "aaaaaaaa-0000-4000-8000-000000000003", "Time": "2025-07-10T12:00:00Z",
            "ConnectionMethod": "workspace_app", "ConnectionStatus": "connected", "Code": 200,
            "UserID": ADMIN, "UserAgent": HOSTILE_SCRIPT, "AppNameOrPort": HOSTILE_IMG})),
    ]
    .join("\n");
    let (status, body) = server.post("/api/v2/connectionlog/ingest", Some(&admin), &events);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body_json(&body)["accepted"], 3, "{body}");

    let b = Browser::start().await;
    b.sign_in(&server.base, &admin).await;
    let ids = b.row_ids().await;
    assert_eq!(ids.len(), 2);
    for button in b
        .client
        .find_all(fantoccini::Locator::Css("button.disclosure"))
        .await
        .unwrap()
    {
        button.click().await.unwrap();
    }
    let text = b.text("#rows").await;
    assert!(text.contains(&format!("{HOSTILE_IMG} workspace")), "{text}");
    assert!(
        text.contains(&format!("opened {HOSTILE_IMG} in their")),
        "{text}"
    );
    assert!(text.contains(HOSTILE_SCRIPT), "{text}");
    assert!(
        text.contains(&format!("Close Reason:\n{HOSTILE_IMG}"))
            || text.contains(&format!("Close Reason: {HOSTILE_IMG}")),
        "{text}"
    );
    // No dialog opened, and no element came from the data.
    assert!(b.client.get_alert_text().await.is_err(), "an alert is open");
    assert_eq!(
        b.eval("return document.querySelectorAll('img').length")
            .await,
        0
    );
    assert_eq!(b.eval("return document.scripts.length").await, 2);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn themes_screenshots_and_a_phone_with_nothing_overflowing() {
    let _one = one_at_a_time().await;
    let d = Deployment::simulated();
    let b = Browser::start().await;
    b.sign_in(d.base(), d.token("admin")).await;
    b.row_ids().await;
    b.eval("document.activeElement.blur()").await;
    b.screenshot("light").await;
    let light = b
        .eval("return getComputedStyle(document.body).backgroundColor")
        .await;

    b.click("#theme-toggle").await;
    assert_eq!(
        b.find("#theme-toggle")
            .await
            .attr("aria-pressed")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    let dark = b
        .eval("return getComputedStyle(document.body).backgroundColor")
        .await;
    assert_ne!(light, dark);
    // The choice is remembered across a reload.
    b.client.refresh().await.unwrap();
    b.row_ids().await;
    assert_eq!(
        b.eval("return getComputedStyle(document.body).backgroundColor")
            .await,
        dark
    );
    b.eval("document.activeElement.blur()").await;
    b.screenshot("dark").await;
    b.click("#theme-toggle").await;

    // The keyboard opens a row's details: the disclosure is a real button.
    let first = b.find("button.disclosure").await;
    b.eval("document.querySelector('button.disclosure').focus()")
        .await;
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    assert_eq!(
        first.attr("aria-expanded").await.unwrap().as_deref(),
        Some("true")
    );
    let controls = first.attr("aria-controls").await.unwrap().unwrap();
    assert!(
        b.find(&format!("#{controls}"))
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys(" ")
        .await
        .unwrap();
    assert_eq!(
        first.attr("aria-expanded").await.unwrap().as_deref(),
        Some("false")
    );

    // A 390 px phone: nothing wider than the screen, details open included.
    b.client.set_window_size(390, 844).await.unwrap();
    for button in b
        .client
        .find_all(fantoccini::Locator::Css("button.disclosure"))
        .await
        .unwrap()
        .iter()
        .take(5)
    {
        button.click().await.unwrap();
    }
    let widths = b
        .eval("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        .await;
    let (scroll, client) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
    assert!(client <= 390, "{client}");
    assert!(
        scroll <= client,
        "the page is {scroll}px wide on a {client}px screen"
    );
    b.close().await;
}
