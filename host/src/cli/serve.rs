//! `connlog serve`: Coder's REST API on a real HTTP server.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;

use super::{CliError, ExitStatus, GlobalOptions};
use crate::duration::parse_duration;
use crate::plugin::PluginSource;
use crate::retention::{self, RetentionScheduler};
use crate::server::{AppState, Authenticator, DEFAULT_MAX_BODY_BYTES, Metrics, router};
use crate::service::{SharedConnLog, swap_plugin};

/// Serve Coder's REST API for the connection log.
///
/// Routes:
///   GET  /api/v2/connectionlog?q=&limit=&offset=   any user's token; Coder's response
///   POST /api/v2/connectionlog/ingest              an owner's token; NDJSON events
///   POST /api/v2/connectionlog/plugin              an owner's token; {"path": "…"} swaps the plugin
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
///     'http://127.0.0.1:3000/api/v2/connectionlog?q=type:ssh&limit=5'
///   curl -X POST -H "Coder-Session-Token: $OWNER_TOKEN" --data-binary @events.ndjson \
///     http://127.0.0.1:3000/api/v2/connectionlog/ingest
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
    let directory = Arc::new(global.load_directory()?);
    if directory.tokens().is_empty() {
        eprintln!(
            "connlog: {} holds no API token, so every request will be refused (401): run `connlog simulate` or `connlog token create --user NAME`",
            directory_path.display()
        );
    }
    let service = global.open_service(directory.clone())?;
    let rows = service.last_restore().rows;
    let shared: SharedConnLog = Arc::new(Mutex::new(service));
    let state = Arc::new(AppState {
        service: shared.clone(),
        auth: Authenticator::new(directory, Some(directory_path)),
        metrics: Metrics::default(),
        max_body_bytes: args.max_body_bytes,
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("starting the async runtime: {e}")))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", args.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::Failed(e.to_string()))?;

        // Purging with retention 0 does nothing, so the scheduler runs only with a retention.
        let _retention = (!global.connection_logs_retention.is_forever())
            .then(|| RetentionScheduler::spawn(shared.clone(), args.retention_interval));
        spawn_reload_on_sighup(shared.clone(), global.plugin_source());

        eprintln!(
            "connlog: serving {rows} rows from {} with {}",
            global.data.display(),
            global.plugin_source().describe()
        );
        println!("listening on http://{addr}");
        let _ = std::io::stdout().flush();

        axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| CliError::Failed(format!("serving: {e}")))
    })?;
    eprintln!("connlog: stopped");
    Ok(ExitStatus::Success)
}

/// SIGHUP swaps in the `--plugin` file again (a rebuilt plugin, say). Failures are logged
/// and the running plugin keeps serving.
fn spawn_reload_on_sighup(shared: SharedConnLog, source: PluginSource) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: plugin reload is off");
            return;
        };
        while hangups.recv().await.is_some() {
            eprintln!("connlog: SIGHUP: swapping in {}", source.describe());
            let (shared, source) = (shared.clone(), source.clone());
            match tokio::task::spawn_blocking(move || swap_plugin(&shared, &source)).await {
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
