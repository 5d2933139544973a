//! `connlog simulate`: a deterministic Coder deployment and its traffic, driven through
//! the plugin into the data directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{CliError, ExitStatus, GlobalOptions};
use crate::directory::{site_owner, write_tokens_file};
use crate::events::{format_time, parse_time};
use crate::model::{ConnectionEvent, EventOutcome, QueryError, QueryRequest, Uuid};
use crate::owner::{DirectoryLock, LockError};
use crate::plugin::Clock;
use crate::service::{ConnLog, store_path};
use crate::simulate::{AUDITOR_USERNAME, Deployment, SimConfig, Summary, Traffic};

/// The file beside the directory that maps usernames to plain API tokens.
pub const TOKENS_FILE: &str = "tokens.json";

/// Simulate a Coder deployment and its connection traffic into the data directory.
///
/// Generates organizations, users (an owner `admin`, a site `auditor`, an organization
/// auditor `<org>-auditor` per organization, and members), workspaces with agents, and the
/// traffic of `--days` days, in Coder's current vocabulary: client sessions sharing a client
/// session id, over SSH from apps of Coder's registry (VS Code and its forks: cursor,
/// windsurf…; the JetBrains IDEs: goland, pycharm…; zed) or none, with agent-reported port
/// forwards, and web-terminal sessions, each a connect then a disconnect with exit codes and
/// reasons; workspace-app opens with realistic HTTP codes; browser port forwards; tunnel
/// authorisations (101 and 403). About a tenth of the lines are in the older generation of
/// Coder's fields (`Type`, `SlugOrPort`, `Ip`); every line goes through the event reader.
/// Some disconnects are lost, some deliveries duplicated or reordered, as on a real network.
/// Simulated time costs nothing: 30 days run in seconds.
///
/// The same options give the same data (API tokens aside). It writes `directory.json` and
/// `tokens.json` (username → API token, mode 0600) and ends with a summary. It refuses a
/// data directory that already holds a store or a directory unless --reset is given.
///
/// Examples:
///   connlog simulate
///   connlog simulate --seed 7 --days 90 --events 200000 --reset
///   connlog simulate --orgs 1 --users 10 --workspaces 12 --events 2000 --data /tmp/small
///   connlog query --as auditor --limit 5
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct SimulateArgs {
    /// The seed: the same seed and options give the same deployment and traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Organizations (the first is the default one everybody belongs to).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub orgs: usize,
    /// Users, the well-known accounts included.
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub users: usize,
    #[arg(long, default_value_t = 60, value_name = "N")]
    pub workspaces: usize,
    /// Length of the simulated window, in days; it ends today at 00:00 UTC unless --start is given.
    #[arg(long, default_value_t = 30, value_name = "D")]
    pub days: u32,
    /// Events delivered in all, duplicates included.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub events: u64,
    /// Start of the window, RFC 3339 [default: --days days before today, 00:00 UTC].
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Share of agent sessions whose disconnect is never delivered (they stay ongoing).
    #[arg(long, default_value_t = 0.03, value_name = "SHARE")]
    pub lost_disconnects: f64,
    /// Share of events delivered twice (a replay: stored once).
    #[arg(long, default_value_t = 0.02, value_name = "SHARE")]
    pub duplicates: f64,
    /// Share of sessions and web events delivered out of order.
    #[arg(long, default_value_t = 0.03, value_name = "SHARE")]
    pub reorder: f64,
    /// Events per plugin call (one durable transaction each).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub batch: usize,
    /// Delete the store, directory.json and tokens.json of the data directory first.
    #[arg(long)]
    pub reset: bool,
}

pub fn run(global: &GlobalOptions, args: &SimulateArgs) -> Result<ExitStatus, CliError> {
    let config = sim_config(args)?;
    // Held until the end: nothing else may use the store while it is replaced and filled.
    let _lock = DirectoryLock::acquire_waiting(&global.data, "simulate", Duration::from_secs(10))
        .map_err(|e| match e {
        LockError::Owned { dir, owner } => CliError::Data(format!(
            "the data directory {} is in use by {}; stop it before simulating into it",
            dir.display(),
            owner.describe()
        )),
        other => CliError::Data(other.to_string()),
    })?;
    let directory_path = global.directory_path();
    let tokens_path = tokens_path(&directory_path);
    let store = store_path(&global.data);
    prepare_data_dir(
        &global.data,
        &store,
        &directory_path,
        &tokens_path,
        args.reset,
    )?;

    let started = Instant::now();
    let deployment = Deployment::generate(&config).map_err(CliError::Usage)?;
    let mut directory = deployment.directory.clone();
    let mut tokens = BTreeMap::new();
    let live: Vec<(Uuid, String)> = directory
        .users()
        .filter(|u| !u.deleted)
        .map(|u| (u.id, u.username.clone()))
        .collect();
    for (id, username) in live {
        let token = directory
            .create_token(&id.to_string())
            .map_err(|e| CliError::Failed(e.to_string()))?;
        tokens.insert(username, token);
    }
    directory
        .save(&directory_path)
        .map_err(|e| CliError::Data(e.to_string()))?;
    write_tokens_file(&tokens_path, &tokens).map_err(|e| CliError::Data(e.to_string()))?;

    let mut service = global.open_service(Arc::new(directory.clone()))?;
    let mut traffic = Traffic::new(&deployment, &config);
    let bar = progress_bar(traffic.total_events());
    let mut outcome = Outcome::default();
    let batch_size = args.batch.max(1);
    let mut batch: Vec<ConnectionEvent> = Vec::with_capacity(batch_size);
    loop {
        while batch.len() < batch_size
            && let Some(delivery) = traffic.next_delivery()
        {
            batch.push(read_back(&delivery.line())?);
        }
        if batch.is_empty() {
            break;
        }
        let n = batch.len() as u64;
        let outcomes = service.ingest(std::mem::take(&mut batch))?;
        outcome.count(outcomes);
        bar.inc(n);
        if let Some(t) = traffic.sim_time() {
            bar.set_message(format!("simulated {}", &format_time(t)[..10]));
        }
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed();

    let rows = service.stats()?.rows;
    let ongoing = count(&mut service, "status:ongoing")?;
    let completed = count(&mut service, "status:completed")?;
    let report = Report {
        config: &config,
        summary: traffic.summary(),
        outcome: &outcome,
        rows,
        ongoing,
        completed,
        elapsed,
        directory_path: &directory_path,
        tokens_path: &tokens_path,
        users: directory.users().count(),
        organizations: directory.organizations().len(),
        workspaces: deployment.workspaces.len(),
    };
    print!("{}", report.render());
    Ok(if outcome.rejected == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Rejected
    })
}

fn sim_config(args: &SimulateArgs) -> Result<SimConfig, CliError> {
    let start = match &args.start {
        Some(text) => parse_time(text).map_err(|e| {
            CliError::Usage(format!(
                "--start {text:?}: {e} (write it as 2025-06-01T00:00:00Z)"
            ))
        })?,
        None => SimConfig::start_ending_today(Clock::System.now(), args.days),
    };
    let config = SimConfig {
        seed: args.seed,
        orgs: args.orgs,
        users: args.users,
        workspaces: args.workspaces,
        days: args.days,
        events: args.events,
        lost_disconnect_share: args.lost_disconnects,
        duplicate_share: args.duplicates,
        reorder_share: args.reorder,
        start,
    };
    config.validate().map_err(CliError::Usage)?;
    Ok(config)
}

pub fn tokens_path(directory_path: &Path) -> PathBuf {
    match directory_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(TOKENS_FILE),
        _ => PathBuf::from(TOKENS_FILE),
    }
}

fn prepare_data_dir(
    data: &Path,
    store: &Path,
    directory: &Path,
    tokens: &Path,
    reset: bool,
) -> Result<(), CliError> {
    let store_files: Vec<PathBuf> = ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut name = store.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect();
    let existing: Vec<&Path> = store_files
        .iter()
        .map(PathBuf::as_path)
        .chain([directory, tokens])
        .filter(|p| p.exists())
        .collect();
    if !existing.is_empty() {
        if !reset {
            return Err(CliError::Usage(format!(
                "{} already holds data ({}); pass --reset to replace it, or choose another --data",
                data.display(),
                existing
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for path in existing {
            std::fs::remove_file(path)
                .map_err(|e| CliError::Data(format!("removing {}: {e}", path.display())))?;
        }
    }
    if reset {
        // Positions in followed logs belong to the store being replaced.
        let follow = data.join("follow");
        if follow.exists() {
            std::fs::remove_dir_all(&follow)
                .map_err(|e| CliError::Data(format!("removing {}: {e}", follow.display())))?;
        }
    }
    for dir in [Some(data), directory.parent()].into_iter().flatten() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::Data(format!("creating {}: {e}", dir.display())))?;
        }
    }
    Ok(())
}

/// The event a simulated line stands for, read as `connlog ingest` reads it, so that both
/// generations of Coder's lines go through the reader. The simulator writes only lines it
/// can read: a failure here is a bug, reported as such.
fn read_back(line: &str) -> Result<ConnectionEvent, CliError> {
    match crate::events::parse_line(line) {
        Ok(crate::events::Parsed::Event(event)) => Ok(event),
        other => Err(CliError::Failed(format!(
            "the simulator wrote a line it cannot read ({other:?}): {line}"
        ))),
    }
}

fn progress_bar(total: u64) -> ProgressBar {
    // Drawn only when stderr is a terminal.
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events  {msg}",
        )
        .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

#[derive(Default)]
struct Outcome {
    stored: u64,
    duplicates: u64,
    rejected: u64,
    first_rejections: Vec<String>,
}

impl Outcome {
    fn count(&mut self, outcomes: Vec<EventOutcome>) {
        for outcome in outcomes {
            match outcome {
                EventOutcome::Stored => self.stored += 1,
                EventOutcome::Duplicate => self.duplicates += 1,
                EventOutcome::Rejected(v) => {
                    self.rejected += 1;
                    if self.first_rejections.len() < 5 {
                        self.first_rejections
                            .push(format!("{}: {}", v.field, v.detail));
                    }
                }
            }
        }
    }
}

/// Rows matching `q`, for a site owner.
fn count(service: &mut ConnLog, q: &str) -> Result<u64, CliError> {
    let request = QueryRequest {
        q: q.to_owned(),
        limit: 1,
        offset: 0,
    };
    match service.query(site_owner(), request)? {
        Ok(page) => Ok(page.count),
        Err(QueryError::InvalidQuery(v)) => {
            Err(CliError::Failed(format!("the plugin refused {q:?}: {v:?}")))
        }
        Err(QueryError::Storage(e)) => Err(CliError::Failed(format!("storage error: {e}"))),
    }
}

struct Report<'a> {
    config: &'a SimConfig,
    summary: &'a Summary,
    outcome: &'a Outcome,
    rows: u64,
    ongoing: u64,
    completed: u64,
    elapsed: Duration,
    directory_path: &'a Path,
    tokens_path: &'a Path,
    users: usize,
    organizations: usize,
    workspaces: usize,
}

impl Report<'_> {
    fn render(&self) -> String {
        use std::fmt::Write;
        let s = self.summary;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Simulated {} days ({} to {}), seed {}, in {:.1} s",
            self.config.days,
            format_time(self.config.start),
            format_time(self.config.end()),
            self.config.seed,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "deployment:  {} organizations, {} users, {} workspaces",
            self.organizations, self.users, self.workspaces
        );
        let _ = writeln!(
            out,
            "events:      {} delivered ({} connect, {} disconnect): {} stored, {} duplicates, {} rejected",
            s.events,
            s.connects,
            s.disconnects,
            self.outcome.stored,
            self.outcome.duplicates,
            self.outcome.rejected
        );
        let _ = writeln!(
            out,
            "network:     {} lost disconnects, {} delivered twice, {} reordered",
            s.lost_disconnects, s.duplicates, s.reordered
        );
        let _ = s.write_mix(&mut out);
        let sessions = self.ongoing + self.completed;
        let _ = writeln!(
            out,
            "rows:        {}: {} agent sessions ({} ongoing, {} completed), {} web and tunnel",
            self.rows,
            sessions,
            self.ongoing,
            self.completed,
            self.rows.saturating_sub(sessions)
        );
        let expected = s.expected_rows();
        let expected_ongoing = s.expected_ongoing();
        if self.rows == expected && self.ongoing == expected_ongoing {
            let _ = writeln!(out, "             as the simulator expected");
        } else {
            let _ = writeln!(
                out,
                "             DIFFERS from what the simulator expected: {expected} rows, {expected_ongoing} ongoing"
            );
        }
        for r in &self.outcome.first_rejections {
            let _ = writeln!(out, "rejected:    {r}");
        }
        let _ = writeln!(
            out,
            "directory:   {}\ntokens:      {} (username → API token)",
            self.directory_path.display(),
            self.tokens_path.display()
        );
        let _ = writeln!(
            out,
            "next:        connlog query --as {AUDITOR_USERNAME} --limit 5\n             connlog query --as admin -q 'method:ssh status:ongoing'\n             connlog serve"
        );
        out
    }
}
