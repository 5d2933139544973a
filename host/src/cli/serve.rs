//! `connlog serve`: Coder's REST API on a real HTTP server.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;

use super::context::OwnedDataDir;
use super::{CliError, ExitStatus, GlobalOptions};
use crate::duration::parse_duration;
use crate::owner::{DirectoryLock, LockError};
use crate::plugin::PluginSpec;
use crate::retention::{self, RetentionScheduler};
use crate::server::watch::WatchSettings;
use crate::server::{AppState, Authenticator, DEFAULT_MAX_BODY_BYTES, Metrics, router};
use crate::service::{Follower, IngestQueue, SharedConnLog, share_directory, swap_plugin};
use crate::store::postgres;

/// How long `serve` waits for a command that owns the data directory to finish.
const OWNER_WAIT: Duration = Duration::from_secs(10);

/// How long a stop waits for open responses to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serve Coder's REST API for the connection log.
///
/// Routes:
///   GET  /api/v2/connectionlog?q=&limit=&offset=   any user's token; Coder's response
///   GET  /api/v2/connectionlog/export?q=&format=csv|ndjson
///                                                  any user's token; every matching row, as a
///                                                  download (what `connlog export` writes)
///   GET  /api/v2/connectionlog/watch?q=&after=N&format=sse|ndjson
///                                                  any user's token; the live feed: rows as
///                                                  they are created or completed, as
///                                                  Server-Sent Events (or NDJSON), resumable
///                                                  from Last-Event-ID (which wins) or after=N
///   POST /api/v2/connectionlog/ingest              an owner's token; NDJSON events
///   POST /api/v2/connectionlog/plugin              an owner's token; {"plugin": "reference"} or
///                                                  {"plugin": "<file in --plugin-dir>"} swaps the plugin
///   GET  /api/v2/users/me, /api/v2/users, /api/v2/organizations
///                                                  any user's token; Coder's shapes, scoped by role
///   GET  /connectionlog (and / redirects there)    the auditor's Connection Log page: sign in
///                                                  with a token (kept in an HttpOnly cookie)
///   POST /api/v2/users/session-cookie, /api/v2/users/logout
///                                                  the page's sign-in and sign-out
///   GET  /healthz                                  OK
///   GET  /metrics                                  Prometheus text
///
/// Authenticate with the `Coder-Session-Token` header (or Coder's `coder_session_token`
/// cookie or query parameter). `connlog simulate` writes a token per user to tokens.json;
/// `connlog token create --user NAME` issues more. It prints `listening on http://ADDR`
/// once ready. SIGHUP reloads the --plugin file (hot swap; the old plugin stays on error).
/// With a retention set, expired rows are purged at start and then every
/// --retention-interval.
///
/// Examples:
///   connlog serve
///   connlog serve --listen 0.0.0.0:8080 --connection-logs-retention 90d --log-json /dev/stderr
///   curl -H "Coder-Session-Token: $(jq -r .auditor connlog-data/tokens.json)" \
///     'http://127.0.0.1:3000/api/v2/connectionlog?q=method:ssh&limit=5'
///   curl -X POST -H "Coder-Session-Token: $OWNER_TOKEN" --data-binary @events.ndjson \
///     http://127.0.0.1:3000/api/v2/connectionlog/ingest
///   curl -N -H "Coder-Session-Token: $TOKEN" 'http://127.0.0.1:3000/api/v2/connectionlog/watch?q=method:ssh'
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ServeArgs {
    /// The address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:3000", value_name = "ADDR")]
    pub listen: String,
    /// How often retention runs (Coder: every 10 minutes), as a Go duration.
    #[arg(long, default_value = "10m", value_name = "DUR", value_parser = parse_interval)]
    pub retention_interval: Duration,
    /// The largest request body accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// The only directory the swap endpoint loads plugin files from (by plain file name).
    #[arg(long, value_name = "DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Follow Coder's JSON service log (`coder server --log-json FILE`) as it grows, as
    /// `connlog ingest --follow FILE` does.
    #[arg(long, value_name = "FILE")]
    pub follow: Option<PathBuf>,
    /// How long a live feed (`/watch`) with nothing to send stays silent before a
    /// keep-alive, as a Go duration.
    #[arg(long, default_value = "15s", value_name = "DUR", value_parser = parse_interval)]
    pub watch_heartbeat: Duration,
    /// How many events further behind the head than its best a live feed's client may fall
    /// before the stream ends with a `disconnect` message (it resumes from there).
    #[arg(long, default_value_t = crate::server::watch::DEFAULT_MAX_LAG, value_name = "EVENTS")]
    pub watch_max_lag: u64,
    /// Serve as a replica of a shared store in PostgreSQL (a `postgres://` URL or libpq
    /// `key=value` pairs): every event is durable there before it is acknowledged, and
    /// events other replicas store appear here within a second. --data is then this
    /// replica's own directory (its local copy), empty at first; `connlog migrate` moves
    /// an existing one into PostgreSQL.
    #[arg(long, value_name = "URL", env = "CONNLOG_STORE")]
    pub store: Option<String>,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    match parse_duration(s) {
        Ok(0) => Err("the interval must be more than 0".into()),
        Ok(n) => Ok(Duration::from_nanos(n)),
        Err(e) => Err(e.to_string()),
    }
}

pub fn run(global: &GlobalOptions, args: &ServeArgs) -> Result<ExitStatus, CliError> {
    debug_assert_eq!(retention::DEFAULT_INTERVAL, Duration::from_secs(600));
    let directory_path = global.directory_path();
    let upstream = args
        .store
        .as_deref()
        .map(postgres::parse_url)
        .transpose()
        .map_err(|e| CliError::Usage(format!("--store: {e}")))?;
    if let Some(config) = &upstream {
        // A replica serves the shared directory (users, tokens) from the start; its own
        // file is offered once its data directory is known to be a copy of this store.
        postgres::PgStore::open(config)
            .and_then(|mut pg| share_directory(&mut pg, &directory_path, false))?;
    }
    let directory = Arc::new(global.load_directory()?);
    if directory.tokens().is_empty() {
        eprintln!(
            "connlog: {} holds no API token, so every request will be refused (401): run `connlog simulate` or `connlog token create --user NAME`",
            directory_path.display()
        );
    }
    let mut lock = match DirectoryLock::acquire_waiting(&global.data, "serve", OWNER_WAIT) {
        Ok(lock) => lock,
        Err(LockError::Owned { dir, owner }) => {
            return Err(CliError::Data(format!(
                "the data directory {} is in use by {}; one process serves a data directory at a time",
                dir.display(),
                owner.describe()
            )));
        }
        Err(e) => return Err(CliError::Data(e.to_string())),
    };
    let mut service = match &upstream {
        None => global.open_service(directory.clone())?,
        Some(config) => {
            let service = global.open_replica(directory.clone(), config)?;
            eprintln!(
                "connlog: a replica of the shared store at {}",
                postgres::describe(config)
            );
            service
        }
    };
    let rows = service.stats()?.rows;
    let shared: SharedConnLog = Arc::new(Mutex::new(service));
    let replica = upstream
        .map(|config| Follower::spawn(shared.clone(), config, &global.data, &directory_path))
        .transpose()?;
    let ingest = Arc::new(IngestQueue::new(shared.clone()));
    let auth = Arc::new(Authenticator::new(directory, Some(directory_path)));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("starting the async runtime: {e}")))?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(&args.listen))
        .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    lock.set_listen(addr.to_string())
        .map_err(|e| CliError::Data(format!("cannot write the lock file: {e}")))?;
    let owned = OwnedDataDir::serving(global.clone(), lock, ingest.clone(), auth.clone())?;
    let following = args
        .follow
        .as_ref()
        .map(|path| spawn_follower(&owned, &ingest, path));
    let (stop_watchers, stopping) = tokio::sync::watch::channel(false);
    let state = Arc::new(AppState {
        service: shared.clone(),
        ingest,
        auth,
        metrics: Metrics::default(),
        max_body_bytes: args.max_body_bytes,
        plugin_dir: args.plugin_dir.clone(),
        follow: args.follow.as_ref().map(|_| owned.follow_stats.clone()),
        watch: WatchSettings {
            heartbeat: args.watch_heartbeat,
            max_lag: args.watch_max_lag,
            stopping: stopping.clone(),
        },
    });

    let served = runtime.block_on(async {
        // Always: a plugin may apply a retention of its own (the privacy plugin's
        // `max-retention`) when the operator's keeps rows forever, and a purge with no
        // retention costs one short call.
        let _retention = RetentionScheduler::spawn(shared.clone(), args.retention_interval);
        spawn_reload_on_sighup(shared.clone(), global.plugin_spec());

        eprintln!(
            "connlog: serving {rows} rows from {} with {}",
            global.data.display(),
            global.plugin_spec().source.describe()
        );
        println!("listening on http://{addr}");
        let _ = std::io::stdout().flush();

        let serving = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
            super::signals::wait_for_stop().await;
            // Live feeds never end by themselves: this ends them.
            let _ = stop_watchers.send(true);
        });
        // A response whose client stopped reading is never finished: past the grace period
        // the server stops without waiting for it.
        let mut stopped = stopping;
        tokio::select! {
            served = serving => served.map_err(|e| CliError::Failed(format!("serving: {e}"))),
            _ = async {
                let _ = stopped.wait_for(|stopping| *stopping).await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => {
                eprintln!("connlog: stopping without waiting for responses their clients stopped reading");
                Ok(())
            }
        }
    });
    if let Some((stop, follower)) = following {
        stop.store(true, Ordering::SeqCst);
        let _ = follower.join();
    }
    drop(replica);
    drop(runtime);
    let closed = owned.close();
    served?;
    closed?;
    eprintln!("connlog: stopped");
    Ok(ExitStatus::Success)
}

/// Follows `path` on a thread of its own until the returned flag is set.
fn spawn_follower(
    owned: &Arc<OwnedDataDir>,
    queue: &Arc<IngestQueue>,
    path: &std::path::Path,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (owned, queue, path, flag) = (
        owned.clone(),
        queue.clone(),
        path.to_path_buf(),
        stop.clone(),
    );
    let thread = std::thread::Builder::new()
        .name("connlog-follow-main".into())
        .spawn(move || {
            eprintln!("connlog: following {}", path.display());
            let outcome = crate::follow::follow(
                &queue,
                &owned.global.data,
                &path,
                owned.follow_stats.clone(),
                flag,
                &mut |line| eprintln!("{line}"),
            );
            match outcome {
                Ok(answer) => eprintln!(
                    "connlog: stopped following {}: accepted {}, rejected {}, skipped {}",
                    path.display(),
                    answer.accepted,
                    answer.rejected.len(),
                    answer.skipped
                ),
                Err((answer, e)) => eprintln!(
                    "connlog: following {} stopped after {} accepted events: {e}",
                    path.display(),
                    answer.accepted
                ),
            }
        })
        .expect("spawning the follower");
    (stop, thread)
}

/// SIGHUP swaps in the `--plugin` file again (a rebuilt plugin, say). Failures are logged
/// and the running plugin keeps serving.
fn spawn_reload_on_sighup(shared: SharedConnLog, spec: PluginSpec) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: plugin reload is off");
            return;
        };
        while hangups.recv().await.is_some() {
            eprintln!("connlog: SIGHUP: swapping in {}", spec.source.describe());
            let (shared, spec) = (shared.clone(), spec.clone());
            match tokio::task::spawn_blocking(move || swap_plugin(&shared, &spec)).await {
                Ok(Ok(report)) => eprintln!(
                    "connlog: now serving {} {} ({} events replayed, {} caught up, {:?})",
                    report.current.name,
                    report.current.version,
                    report.events_replayed,
                    report.events_caught_up,
                    report.elapsed
                ),
                Ok(Err(e)) => eprintln!("connlog: swap refused, the old plugin keeps serving: {e}"),
                Err(e) => eprintln!("connlog: swap failed, the old plugin keeps serving: {e}"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (shared, source);
}
