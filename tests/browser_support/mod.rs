//! Headless Debian Chromium driven through chromedriver (WebDriver, with `fantoccini`), for
//! the page's browser tests: a browser per test with a fresh profile and download folder,
//! and helpers that wait for what the page shows.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a wait for the page gives up after.
const PATIENCE: Duration = Duration::from_secs(20);

/// One browser at a time: the tests run on two cores, and a Chromium each would make them
/// slow and flaky rather than fast.
/// (An async lock: it is held across the test's awaits, and a failed test does not poison it.)
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Fails (never skips) when the browser is missing: CI installs it with scripts/setup.sh.
fn require_browser() {
    for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: the browser tests need Debian's `chromium` and `chromium-driver` packages \
             (./scripts/setup.sh installs them; by hand: apt-get install -y chromium chromium-driver; missing: {package})"
        );
    }
}

/// chromedriver and the browser session it started; both end when this is dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    pub downloads: tempfile::TempDir,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Browser {
    /// A 1280×900 headless Chromium with a fresh profile.
    pub async fn start() -> Self {
        require_browser();
        let port = free_port();
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so the drop kills Chromium with it even after a panic.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = command.spawn().expect("starting chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    "--force-color-profile=srgb", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                },
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let started = Instant::now();
        let client = loop {
            match ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if started.elapsed() < PATIENCE => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver on {url} did not start a session: {e}"),
            }
        };
        Self {
            client,
            driver,
            downloads,
            _profile: profile,
        }
    }

    /// Ends the session (Chromium quits), then chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// `script`'s value (the body of a function: `return …`).
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("running {script:?}: {e}"))
    }

    /// Waits until `script` returns something truthy, and returns it; `what` says what
    /// was awaited when it times out, with the page's visible text.
    pub async fn wait_for(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.eval(script).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::Object(_) => true,
            };
            if truthy {
                return value;
            }
            if started.elapsed() > PATIENCE {
                let text = self.eval("return document.body.innerText").await;
                panic!(
                    "timed out waiting for {what}; the page shows:\n{}",
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// An element's visible text.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Replaces the filter box's text and presses Enter, as a person would.
    pub async fn type_filter(&self, q: &str) {
        let input = self.find("#filter").await;
        input.clear().await.unwrap();
        input.send_keys(&format!("{q}\u{E007}")).await.unwrap();
    }

    /// Chooses an option of a menu by its label.
    pub async fn choose(&self, select_css: &str, label: &str) {
        self.find(select_css)
            .await
            .select_by_label(label)
            .await
            .unwrap_or_else(|e| panic!("choosing {label:?} in {select_css}: {e}"));
    }

    /// Waits until the list has loaded (not busy), and returns its rows' ids, top to bottom.
    pub async fn row_ids(&self) -> Vec<String> {
        self.wait_for(
            "the list to load",
            "return document.getElementById('rows').getAttribute('aria-busy') === 'false'",
        )
        .await;
        let ids = self
            .eval("return [...document.querySelectorAll('#rows li.row')].map(li => li.dataset.id)")
            .await;
        serde_json::from_value(ids).unwrap()
    }

    /// The visible text of every row, top to bottom.
    pub async fn row_texts(&self) -> Vec<String> {
        let texts = self
            .eval("return [...document.querySelectorAll('#rows li.row')].map(li => li.innerText)")
            .await;
        serde_json::from_value(texts).unwrap()
    }

    /// The query string of the page's URL, decoded: `filter`, `page`, `size`.
    pub async fn url_param(&self, name: &str) -> Option<String> {
        let url = self.client.current_url().await.unwrap();
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Signs in on the page with `token`, and waits for who is signed in.
    pub async fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/connectionlog")).await;
        self.wait_for(
            "the sign-in form",
            "return !document.getElementById('sign-in').hidden",
        )
        .await;
        self.find("#token").await.send_keys(token).await.unwrap();
        self.click("#sign-in-form button[type=submit]").await;
        self.wait_for(
            "who is signed in",
            "return !document.getElementById('account').hidden && document.getElementById('who').innerText",
        )
        .await;
    }

    /// Saves a PNG of the viewport to `docs/screenshots/<name>.png` when
    /// `CONNLOG_SCREENSHOTS=1`.
    pub async fn screenshot(&self, name: &str) {
        if std::env::var("CONNLOG_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        let png = self.client.screenshot().await.unwrap();
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

pub fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

/// `1234567` as the page writes it: `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
