//! The conformance kit: every behaviour a connection-log plugin owes, run through the real
//! host (a `ConnLog` over a temporary SQLite store) against any plugin component.
//!
//! A [`Case`] is a name and a check. Each runs on its own [`Harness`] (an empty store, the
//! fixture directory, a fixed clock, no retention), may open more of them, and returns a
//! short reason when the plugin falls short. A case that panics fails alone.
//!
//! The component is compiled once, into a cache every harness then loads it from, so the
//! whole kit takes seconds.
//!
//! The kit judges Coder's current API ("version D": connection methods, app names, client
//! session ids; `vectors` ports the spec's §11 tables). A case that sends what contract
//! 0.1.0 cannot carry says so ([`Case::needs_0_2`]); for a 0.1.0 plugin it is skipped,
//! counted and listed (`skip  area/name: needs contract 0.2.0 (…)`), not failed.
//!
//! What a plugin stores of a client IP and a user agent, and how long it keeps rows, is
//! judged by the kit's expectation profile ([`privacy::Rules`], on [`Kit::rules`]): the
//! identity (what the reference plugin stores) for every plugin but the embedded privacy
//! plugin (`connlog-privacy`), which is judged by the privacy rules its settings select
//! (by default IPs truncated to /24 and /48 and user agents coarsened). Cases compare IPs
//! and user agents through [`Harness::expect_ip`] and [`Harness::expect_user_agent`], and
//! retention through [`privacy::Rules::retention`]; the `privacy` area checks that the
//! values the rules replace never reach the store, the API, the service log, exports or the
//! data directory.

/// Fails with `context` unless `got == want`.
macro_rules! ensure_eq {
    ($got:expr, $want:expr, $($context:tt)+) => {{
        // A match keeps temporaries in the operands alive for the comparison.
        match (&$got, &$want) {
            (got, want) => {
                if got != want {
                    return Err(format!(
                        "{}: expected {}, got {}",
                        format!($($context)+),
                        $crate::conformance::short(want),
                        $crate::conformance::short(got)
                    ));
                }
            }
        }
    }};
}

/// Fails with the message unless the condition holds.
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {{
        if !$condition {
            return Err(format!($($message)+));
        }
    }};
}

mod authz;
mod feed;
pub mod fixtures;
mod formats;
mod limits;
mod merge;
pub mod privacy;
mod query;
mod retention;
mod snapshot;
pub mod spec_tables;
mod vectors;

use std::fmt::{self, Debug};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::directory::Directory;
use crate::model::{
    ConnectionEvent, ConnectionLog, EventOutcome, LogFields, LogFormat, LogLine, Page, PurgeReport,
    QueryError, QueryRequest, UnixNanos, Uuid, Validation,
};
use crate::plugin::{
    Clock, ComponentCache, Limits, PluginError, PluginHost, PluginInfo, PluginSpec, ServiceLogSink,
};
use crate::service::{ConnLog, ServiceConfig, ServiceError};
use fixtures::{HOUR, T0, admin_id, id_name};

/// What a check returns: `Err` carries the reason it failed, on one line.
pub type Check = Result<(), String>;

/// One behaviour a plugin owes.
pub struct Case {
    pub area: &'static str,
    pub name: &'static str,
    /// What of contract 0.2.0 the case needs, when an older contract cannot carry it.
    pub needs: Option<&'static str>,
    run: Box<dyn Fn(&mut Harness) -> Check>,
}

impl Case {
    pub fn new(area: &'static str, name: &'static str, run: fn(&mut Harness) -> Check) -> Self {
        Self::boxed(area, name, run)
    }

    pub fn boxed(
        area: &'static str,
        name: &'static str,
        run: impl Fn(&mut Harness) -> Check + 'static,
    ) -> Self {
        Self {
            area,
            name,
            needs: None,
            run: Box::new(run),
        }
    }

    /// The case sends what only contract 0.2.0 carries (`what`: client session ids, a web
    /// terminal's app, agent-reported port forwards, the current service-log line): a
    /// 0.1.0 plugin is never sent it, so the case is skipped for one, not failed.
    pub fn needs_0_2(self, what: &'static str) -> Self {
        Self {
            needs: Some(what),
            ..self
        }
    }

    /// [`Self::needs_0_2`] when `what` is given.
    pub fn needing(self, what: Option<&'static str>) -> Self {
        match what {
            Some(what) => self.needs_0_2(what),
            None => self,
        }
    }
}

/// The contract version whose vocabulary (methods, apps, client session ids, the current
/// service-log line) [`Case::needs_0_2`] refers to.
pub const CONTRACT_0_2: &str = "0.2.0";

/// Does a plugin of contract `version` speak what [`CONTRACT_0_2`] added?
fn speaks_0_2(version: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(version) >= parts(CONTRACT_0_2)
}

/// Every case of the kit, area by area.
pub fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(merge::cases());
    all.extend(query::cases());
    all.extend(feed::cases());
    all.extend(authz::cases());
    all.extend(formats::cases());
    all.extend(retention::cases());
    all.extend(snapshot::cases());
    all.extend(limits::cases());
    all.extend(privacy::cases());
    all.extend(vectors::cases());
    all
}

/// How one case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// Not run: the plugin's contract cannot carry what the case sends (the reason says
    /// what).
    Skipped(String),
    /// The reason, on one line.
    Failed(String),
}

impl Verdict {
    pub fn is_failed(&self) -> bool {
        matches!(self, Self::Failed(_))
    }
}

pub struct Outcome {
    pub area: &'static str,
    pub name: &'static str,
    pub verdict: Verdict,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::Passed => write!(f, "ok    {}/{}", self.area, self.name),
            Verdict::Skipped(why) => write!(f, "skip  {}/{}: {why}", self.area, self.name),
            Verdict::Failed(reason) => {
                write!(f, "FAIL  {}/{}: {}", self.area, self.name, one_line(reason))
            }
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub skipped: usize,
    pub failed: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} skipped, {} failed",
            self.passed, self.skipped, self.failed
        )
    }
}

/// The plugin under test, compiled once, and what every harness shares.
pub struct Kit {
    spec: PluginSpec,
    cache: ComponentCache,
    /// A private cache when the caller has none; removed with the kit.
    _cache_dir: Option<tempfile::TempDir>,
    directory: Arc<Directory>,
    limits: Limits,
    pub info: PluginInfo,
    /// How the plugin is expected to store IPs and user agents, and how long it keeps rows.
    pub rules: privacy::Rules,
}

impl Kit {
    /// Compiles and checks the plugin (a component that is not a plugin for this contract,
    /// or that refuses its settings, is refused here), keeping the compiled code in `cache`,
    /// or in a private one. The expectation profile follows from the plugin's name and
    /// settings.
    pub fn load(
        spec: PluginSpec,
        cache: Option<ComponentCache>,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        let (cache, private) = match cache {
            Some(cache) => (cache, None),
            None => {
                let dir = tempfile::tempdir()?;
                (ComponentCache::new(dir.path().to_path_buf()), Some(dir))
            }
        };
        let host = PluginHost::new(Some(cache.clone()))?;
        let loaded = host.load_spec(&spec)?;
        let rules = privacy::Rules::for_plugin(&loaded.info.name, &spec.settings)
            .map_err(anyhow::Error::msg)?;
        Ok(Self {
            spec,
            cache,
            _cache_dir: private,
            directory: Arc::new(fixtures::directory()),
            limits,
            info: loaded.info,
            rules,
        })
    }

    /// Runs every case in order, handing each outcome to `report` as it ends.
    pub fn run(&self, report: impl FnMut(&Outcome)) -> Summary {
        self.run_where(|_, _| true, report)
    }

    /// Runs the cases `select` picks by area and name, in order, handing each outcome to
    /// `report` as it ends.
    pub fn run_where(
        &self,
        select: impl Fn(&str, &str) -> bool,
        mut report: impl FnMut(&Outcome),
    ) -> Summary {
        let mut summary = Summary::default();
        // A panicking case is reported as its failure, not on stderr.
        let hook = panic::take_hook();
        panic::set_hook(Box::new(|_| {}));
        let speaks_0_2 = speaks_0_2(self.info.contract_version);
        for case in cases().into_iter().filter(|c| select(c.area, c.name)) {
            let verdict = match case.needs {
                Some(what) if !speaks_0_2 => Verdict::Skipped(format!(
                    "needs contract {CONTRACT_0_2} ({what}); the plugin speaks {}",
                    self.info.contract_version
                )),
                _ => match self.run_case(&case) {
                    Ok(()) => Verdict::Passed,
                    Err(reason) => Verdict::Failed(reason),
                },
            };
            match verdict {
                Verdict::Passed => summary.passed += 1,
                Verdict::Skipped(_) => summary.skipped += 1,
                Verdict::Failed(_) => summary.failed += 1,
            }
            report(&Outcome {
                area: case.area,
                name: case.name,
                verdict,
            });
        }
        panic::set_hook(hook);
        summary
    }

    fn run_case(&self, case: &Case) -> Check {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            let mut harness = Harness::open(self, Options::default())?;
            (case.run)(&mut harness)
        }));
        match outcome {
            Ok(result) => result,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                Err(format!("panicked: {message}"))
            }
        }
    }
}

/// How a harness's service is set up, besides the kit's defaults.
#[derive(Clone, Default)]
pub struct Options {
    /// Service-log formats the plugin is configured with; lines are captured.
    pub log_formats: Vec<LogFormat>,
    /// Which generation of fields those lines carry.
    pub log_fields: LogFields,
    /// Replaces the kit's limits.
    pub limits: Option<Limits>,
    /// Runs this plugin in place of the kit's, until [`Harness::swap_to_kit_plugin`].
    pub plugin: Option<PluginSpec>,
}

/// Service-log lines written after each commit, kept for the checks.
#[derive(Default)]
pub struct Captured(Mutex<Vec<LogLine>>);

impl ServiceLogSink for Captured {
    fn write(&self, lines: &[LogLine]) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(lines);
    }
}

/// One message of the live feed, as the kit reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FedRow {
    pub position: i64,
    pub id: Uuid,
    /// Whether the row has a disconnect time.
    pub completed: bool,
}

/// One service over one temporary data directory, with the kit's plugin, the fixture
/// directory, the clock fixed at `T0 + 1h` and no retention.
pub struct Harness<'k> {
    kit: &'k Kit,
    data: tempfile::TempDir,
    options: Options,
    retention: Duration,
    service_log: Arc<Captured>,
    /// `None` only between the halves of a restart.
    service: Option<ConnLog>,
}

impl<'k> Harness<'k> {
    pub fn open(kit: &'k Kit, options: Options) -> Result<Self, String> {
        let data = tempfile::tempdir().map_err(|e| format!("a temporary data directory: {e}"))?;
        let mut harness = Self {
            kit,
            data,
            options,
            retention: Duration::ZERO,
            service_log: Arc::new(Captured::default()),
            service: None,
        };
        harness.service = Some(harness.start()?);
        Ok(harness)
    }

    /// Another empty store, with the same options.
    pub fn fresh(&self) -> Result<Harness<'k>, String> {
        Harness::open(self.kit, self.options.clone())
    }

    /// An empty store with other options.
    pub fn fresh_with(&self, options: Options) -> Result<Harness<'k>, String> {
        Harness::open(self.kit, options)
    }

    /// The limits this harness's service runs under.
    pub fn limits(&self) -> Limits {
        self.options
            .limits
            .clone()
            .unwrap_or_else(|| self.kit.limits.clone())
    }

    fn config(&self) -> ServiceConfig {
        ServiceConfig {
            data_dir: self.data.path().to_path_buf(),
            plugin: self
                .options
                .plugin
                .clone()
                .unwrap_or_else(|| self.kit.spec.clone()),
            directory: self.kit.directory.clone(),
            limits: self.limits(),
            log_formats: self.options.log_formats.clone(),
            log_fields: self.options.log_fields,
            service_log: self.service_log.clone(),
            retention: self.retention,
            cache: Some(self.kit.cache.clone()),
            clock: Clock::Fixed(T0 + HOUR),
        }
    }

    fn start(&self) -> Result<ConnLog, String> {
        ConnLog::open(self.config()).map_err(|e| format!("the service does not start: {e:#}"))
    }

    pub fn service(&mut self) -> Result<&mut ConnLog, String> {
        self.service
            .as_mut()
            .ok_or_else(|| "the service did not restart".to_string())
    }

    /// Closes the service and opens a new one (new engine, component and instance) on the
    /// same data directory, which rebuilds its rows from the store.
    pub fn restart(&mut self) -> Check {
        if let Some(service) = self.service.take() {
            service
                .close()
                .map_err(|e| format!("closing the service: {e}"))?;
        }
        self.service = Some(self.start()?);
        Ok(())
    }

    /// One batch, one transaction.
    pub fn ingest(&mut self, events: Vec<ConnectionEvent>) -> Result<Vec<EventOutcome>, String> {
        self.service()?
            .ingest(events)
            .map_err(|e| format!("ingest failed: {e}"))
    }

    /// One batch whose every event must be stored.
    pub fn store(&mut self, events: Vec<ConnectionEvent>) -> Check {
        let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        let outcomes = self.ingest(events)?;
        for (id, outcome) in ids.iter().zip(&outcomes) {
            if *outcome != EventOutcome::Stored {
                return Err(format!(
                    "event {} was not stored: {outcome:?}",
                    id_name(*id)
                ));
            }
        }
        ensure_eq!(outcomes.len(), ids.len(), "outcomes for the batch");
        Ok(())
    }

    /// Every row, newest first: the site owner's empty query with no page limit.
    pub fn rows(&mut self) -> Result<Vec<ConnectionLog>, String> {
        let page = self
            .raw_query(admin_id(), "", u32::MAX, 0)?
            .map_err(|e| format!("the empty query as the site owner is refused: {e:?}"))?;
        ensure_eq!(
            page.rows.len() as u64,
            page.count,
            "one page holding every row"
        );
        Ok(page.rows)
    }

    fn actor(&self, user: Uuid) -> Result<crate::model::Actor, String> {
        self.kit
            .directory
            .actor(user)
            .ok_or_else(|| format!("no user {} in the directory", id_name(user)))
    }

    /// `query` alone.
    pub fn raw_query(
        &mut self,
        user: Uuid,
        q: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Result<Page, QueryError>, String> {
        let actor = self.actor(user)?;
        let request = request(q, limit, offset);
        self.service()?
            .query(actor, request)
            .map_err(|e| format!("query {q:?} failed: {e}"))
    }

    /// `api-page` alone: Coder's body, or the query's error.
    pub fn raw_api_page(
        &mut self,
        user: Uuid,
        q: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Result<String, QueryError>, String> {
        let actor = self.actor(user)?;
        let request = request(q, limit, offset);
        self.service()?
            .api_page(actor, request)
            .map_err(|e| format!("api-page {q:?} failed: {e}"))
    }

    /// A valid query's page as `user`, checked against the API body for the same request:
    /// the same count and the same rows in the same order.
    pub fn page(&mut self, user: Uuid, q: &str, limit: u32, offset: u32) -> Result<Page, String> {
        let page = self
            .raw_query(user, q, limit, offset)?
            .map_err(|e| format!("{q:?} is refused: {}", query_error(&e)))?;
        let body = self
            .raw_api_page(user, q, limit, offset)?
            .map_err(|e| format!("api-page refuses {q:?}: {}", query_error(&e)))?;
        let value: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| format!("the API body for {q:?} is not JSON: {e}"))?;
        let count = value["count"].as_u64();
        ensure_eq!(count, Some(page.count), "the API body's count for {q:?}");
        let body_ids: Vec<String> = value["connection_logs"]
            .as_array()
            .ok_or_else(|| format!("the API body for {q:?} has no connection_logs array"))?
            .iter()
            .map(|row| row["id"].as_str().unwrap_or("").to_string())
            .collect();
        let page_ids: Vec<String> = page.rows.iter().map(|r| r.id.to_string()).collect();
        if body_ids != page_ids {
            return Err(format!(
                "the API body for {q:?} lists other rows than the query's page ({} vs {})",
                body_ids.len(),
                page_ids.len()
            ));
        }
        Ok(page)
    }

    /// Every feed message for `user` and `q` after position `after`, read `chunk` events at a
    /// time, in position order.
    pub fn feed(
        &mut self,
        user: Uuid,
        q: &str,
        mut after: i64,
        chunk: usize,
    ) -> Result<Result<Vec<FedRow>, QueryError>, String> {
        let actor = self.actor(user)?;
        let mut out = Vec::new();
        loop {
            let read = match self.service()?.feed(&actor, q, after, chunk) {
                Ok(Ok(read)) => read,
                Ok(Err(e)) => return Ok(Err(e)),
                Err(e) => return Err(format!("feed {q:?} failed: {e}")),
            };
            for m in read.messages {
                let row: serde_json::Value = serde_json::from_str(&m.row_json)
                    .map_err(|e| format!("a feed row for {q:?} is not JSON: {e}"))?;
                let id = row["id"]
                    .as_str()
                    .and_then(|id| Uuid::parse_str(id).ok())
                    .ok_or_else(|| format!("a feed row for {q:?} has no id: {row}"))?;
                let completed = row["ssh_info"]["disconnect_time"].is_string();
                out.push(FedRow {
                    position: m.position,
                    id,
                    completed,
                });
            }
            ensure!(
                read.scanned_to >= after,
                "the feed went back from {after} to {}",
                read.scanned_to
            );
            if read.scanned_to == after || chunk == 0 {
                return Ok(Ok(out));
            }
            after = read.scanned_to;
        }
    }

    /// `q` as the site owner, default limit.
    pub fn query(&mut self, q: &str) -> Result<Page, String> {
        self.page(admin_id(), q, 0, 0)
    }

    /// The ids a query returns as the site owner (default limit), in order.
    pub fn ids(&mut self, q: &str) -> Result<Vec<Uuid>, String> {
        Ok(self.query(q)?.rows.iter().map(|r| r.id).collect())
    }

    /// The validations of an invalid `q`, the same from `query` and from `api-page`.
    pub fn invalid(&mut self, q: &str) -> Result<Vec<Validation>, String> {
        let from_query = match self.raw_query(admin_id(), q, 0, 0)? {
            Err(QueryError::InvalidQuery(v)) => v,
            Err(other) => return Err(format!("{q:?} failed otherwise: {other:?}")),
            Ok(page) => {
                return Err(format!(
                    "{q:?} should be invalid, but gave {} rows",
                    page.count
                ));
            }
        };
        match self.raw_api_page(admin_id(), q, 0, 0)? {
            Err(QueryError::InvalidQuery(v)) if v == from_query => Ok(from_query),
            Err(QueryError::InvalidQuery(v)) => Err(format!(
                "api-page and query disagree on {q:?}: {} vs {}",
                validations(&v),
                validations(&from_query)
            )),
            other => Err(format!("api-page accepts {q:?}: {}", short(&other))),
        }
    }

    /// Sets the retention (0 keeps rows forever); a restart keeps it.
    pub fn set_retention(&mut self, max_age_nanos: u64) -> Check {
        self.retention = Duration::from_nanos(max_age_nanos);
        let retention = self.retention;
        self.service()?
            .set_retention(retention)
            .map_err(|e| format!("set-retention failed: {e}"))
    }

    pub fn purge(&mut self, now: UnixNanos) -> Result<PurgeReport, String> {
        self.service()?
            .purge(now)
            .map_err(|e| format!("purge failed: {e}"))
    }

    /// How many events the store's journal holds, read on a second connection.
    pub fn journal_len(&self) -> Result<u64, String> {
        let path = crate::service::store_path(self.data.path());
        let journal =
            crate::store::Journal::open(&path).map_err(|e| format!("opening the store: {e:#}"))?;
        journal
            .event_count()
            .map_err(|e| format!("counting the journal: {e:?}"))
    }

    /// How the kit's plugin is expected to store IPs and user agents.
    pub fn rules(&self) -> &privacy::Rules {
        &self.kit.rules
    }

    /// The IP the kit's plugin is expected to store where the reference plugin stores
    /// `stored` (canonical, as every case's expected value is).
    pub fn expect_ip(&self, stored: Option<&str>) -> Option<String> {
        self.kit.rules.ip(stored)
    }

    /// The user agent the kit's plugin is expected to store where the reference plugin
    /// stores `stored`.
    pub fn expect_user_agent(&self, stored: Option<&str>) -> Option<String> {
        self.kit.rules.user_agent(stored)
    }

    /// Hot-swaps the running plugin (another one, from [`Options::plugin`]) for the kit's,
    /// as `connlog` does on a running service; restarts then run the kit's plugin too.
    pub fn swap_to_kit_plugin(&mut self) -> Check {
        let service = self.service.take().ok_or("the service did not restart")?;
        let shared = Arc::new(Mutex::new(service));
        let swapped = crate::service::swap_plugin(&shared, &self.kit.spec);
        let service = Arc::try_unwrap(shared)
            .map_err(|_| "the swap kept a hold of the service".to_string())?
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        self.service = Some(service);
        swapped.map_err(|e| format!("the swap to the plugin failed: {e}"))?;
        self.options.plugin = None;
        Ok(())
    }

    /// The IP and user agent of every event the store's journal holds, read on a second
    /// connection.
    pub fn journal_ips_and_user_agents(&self) -> Result<IpsAndUserAgents, String> {
        let path = crate::service::store_path(self.data.path());
        let read = || -> rusqlite::Result<IpsAndUserAgents> {
            let conn = rusqlite::Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?;
            let mut stmt = conn.prepare("SELECT ip, user_agent FROM events ORDER BY seq")?;
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        };
        read().map_err(|e| format!("reading the journal: {e}"))
    }

    /// Each file of the data directory holding one of `needles`, with the first it holds.
    pub fn files_holding(&self, needles: &[String]) -> Result<Vec<(String, String)>, String> {
        let mut found = Vec::new();
        let mut folders = vec![self.data.path().to_path_buf()];
        while let Some(folder) = folders.pop() {
            let entries = std::fs::read_dir(&folder)
                .map_err(|e| format!("listing {}: {e}", folder.display()))?;
            for entry in entries {
                let path = entry
                    .map_err(|e| format!("listing {}: {e}", folder.display()))?
                    .path();
                if path.is_dir() {
                    folders.push(path);
                    continue;
                }
                let bytes = match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    // Removed meanwhile (a snapshot replaced, a WAL truncated).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(format!("reading {}: {e}", path.display())),
                };
                let name = path
                    .strip_prefix(self.data.path())
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                if let Some(needle) = needles
                    .iter()
                    .find(|n| bytes.windows(n.len()).any(|w| w == n.as_bytes()))
                {
                    found.push((name, needle.clone()));
                }
            }
        }
        Ok(found)
    }

    /// Takes the service-log lines written so far.
    pub fn take_service_log(&self) -> Vec<LogLine> {
        std::mem::take(&mut *self.service_log.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// An IP and a user agent for each of some events.
pub type IpsAndUserAgents = Vec<(Option<String>, Option<String>)>;

/// A question: reader, `q`, limit, offset.
type Question = (fn() -> Uuid, &'static str, u32, u32);

/// The questions the equivalence cases ask: the deprecated `type:`, `method:` and `app:`
/// among them.
const QUESTIONS: [Question; 16] = [
    (admin_id, "", 0, 0),
    (admin_id, "", 3, 2),
    (admin_id, "type:ssh", 0, 0),
    (admin_id, "type:vscode", 0, 0),
    (admin_id, "type:jetbrains", 0, 0),
    (admin_id, "type:workspace_app", 0, 0),
    (admin_id, "method:ssh", 0, 0),
    (admin_id, "app:cursor,goland", 0, 0),
    (admin_id, "status:ongoing method:ssh", 0, 0),
    (admin_id, "status:ongoing", 0, 0),
    (admin_id, "status:completed", 0, 0),
    (admin_id, "username:bob", 0, 0),
    (admin_id, "organization:other", 0, 0),
    (fixtures::org_auditor, "", 0, 0),
    (fixtures::site_auditor, "method:port_forwarding", 0, 0),
    (fixtures::member, "", 0, 0),
];

impl Harness<'_> {
    /// The API body for each of a fixed set of questions, labelled.
    pub fn answers(&mut self) -> Result<Vec<(String, String)>, String> {
        let mut answers = Vec::new();
        for (user, q, limit, offset) in QUESTIONS {
            let user = user();
            let label = format!(
                "{q:?} as {} (limit {limit}, offset {offset})",
                id_name(user)
            );
            let body = self
                .raw_api_page(user, q, limit, offset)?
                .map_err(|e| format!("{label} is refused: {}", query_error(&e)))?;
            answers.push((label, body));
        }
        Ok(answers)
    }
}

/// Fails naming the first question answered differently.
pub fn same_answers(got: &[(String, String)], want: &[(String, String)], context: &str) -> Check {
    for ((label, got), (_, want)) in got.iter().zip(want) {
        ensure!(got == want, "{context}: {label} is answered differently");
    }
    ensure_eq!(got.len(), want.len(), "{context}: answers");
    Ok(())
}

impl Drop for Harness<'_> {
    fn drop(&mut self) {
        // The service first: its shutdown still writes into the data directory.
        drop(self.service.take());
    }
}

pub fn request(q: &str, limit: u32, offset: u32) -> QueryRequest {
    QueryRequest {
        q: q.to_string(),
        limit,
        offset,
    }
}

/// A trap's kind, when a service call failed because the plugin call did.
pub fn trap_kind(error: &ServiceError) -> Option<crate::plugin::TrapKind> {
    match error {
        ServiceError::Plugin(PluginError::Trapped { kind, .. }) => Some(*kind),
        _ => None,
    }
}

/// A value's `Debug` form on one line, cut short.
pub fn short(value: &impl Debug) -> String {
    let text = format!("{value:?}");
    let text = one_line(&text);
    if text.chars().count() > 160 {
        let cut: String = text.chars().take(157).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Ids by their fixture names: `[eid(2), eid(1)]`.
pub fn names(ids: &[Uuid]) -> String {
    let names: Vec<String> = ids.iter().map(|id| id_name(*id)).collect();
    format!("[{}]", names.join(", "))
}

/// Fails unless `got` lists exactly `want`, in order.
pub fn same_ids(got: &[Uuid], want: &[Uuid], context: &str) -> Check {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{context}: expected {}, got {}",
            names(want),
            names(got)
        ))
    }
}

fn validations(v: &[Validation]) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|v| format!("{}: {}", v.field, v.detail))
        .collect();
    format!("[{}]", parts.join("; "))
}

fn query_error(e: &QueryError) -> String {
    match e {
        QueryError::InvalidQuery(v) => validations(v),
        QueryError::Storage(e) => format!("storage error {e:?}"),
    }
}

/// Fails with the first difference unless the two sets of rows are equal.
pub fn same_rows(got: &[ConnectionLog], want: &[ConnectionLog], context: &str) -> Check {
    if got == want {
        return Ok(());
    }
    if got.len() != want.len() {
        let ids = |rows: &[ConnectionLog]| names(&rows.iter().map(|r| r.id).collect::<Vec<_>>());
        return Err(format!(
            "{context}: {} rows {}, expected {} rows {}",
            got.len(),
            short(&ids(got)),
            want.len(),
            short(&ids(want))
        ));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if let Some(field) = row_difference(g, w) {
            return Err(format!(
                "{context}: row {i} ({}) differs in {field}",
                id_name(w.id)
            ));
        }
    }
    Ok(())
}

/// The first field in which two rows differ, with both values.
pub fn row_difference(got: &ConnectionLog, want: &ConnectionLog) -> Option<String> {
    macro_rules! compare {
        ($($field:ident),*) => {
            $(
                if got.$field != want.$field {
                    return Some(format!(
                        "{}: {} instead of {}",
                        stringify!($field),
                        short(&got.$field),
                        short(&want.$field)
                    ));
                }
            )*
        };
    }
    compare!(
        id,
        connect_time,
        organization_id,
        workspace_owner_id,
        workspace_id,
        workspace_name,
        agent_name,
        connection_method,
        code,
        ip,
        user_agent,
        user_id,
        app_name_or_port,
        connection_id,
        disconnect_time,
        disconnect_reason,
        client_session_id
    );
    None
}

/// Exactly one row.
pub fn only(rows: &[ConnectionLog]) -> Result<&ConnectionLog, String> {
    match rows {
        [row] => Ok(row),
        _ => Err(format!(
            "expected exactly one row, got {}: {}",
            rows.len(),
            names(&rows.iter().map(|r| r.id).collect::<Vec<_>>())
        )),
    }
}
