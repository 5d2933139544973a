//! The `connlog` command line. Each subcommand lives in its own file; this one holds the
//! options every command shares and the one way to open the service.

mod conformance;
mod context;
mod exit;
mod export;
mod ingest;
mod migrate;
mod progress;
mod purge;
mod query;
mod remote;
mod serve;
mod signals;
mod simulate;
mod table;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub use exit::{CliError, ExitStatus};
use remote::Request;

use crate::directory::Directory;
use crate::duration::Retention;
use crate::model::LogFormat;
use crate::plugin::{Clock, ComponentCache, Limits, PluginSource, PluginSpec};
use crate::service::{ConnLog, RetentionConflict, ServiceConfig};
use crate::service_log::{LogTarget, ServiceLogWriter};

/// Coder's Connection Log as a WebAssembly component plugin.
#[derive(Parser, Debug)]
#[command(name = "connlog", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalOptions {
    /// The data directory: the SQLite store and directory.json live here.
    #[arg(
        long,
        global = true,
        env = "CONNLOG_DATA",
        default_value = "./connlog-data"
    )]
    pub data: PathBuf,
    /// The plugin: `reference` (embedded, the default), `privacy` (embedded: the reference
    /// plugin keeping less personal data) or a component file.
    #[arg(long, global = true, value_name = "NAME|PATH")]
    pub plugin: Option<PathBuf>,
    /// A setting for the plugin, `KEY=VALUE`; repeat it for more. The plugin judges them
    /// and refuses bad ones before it serves (`privacy` takes `ip`, `ip-hmac-key`,
    /// `user-agent`, `max-retention`; `reference` takes none).
    #[arg(long = "plugin-setting", global = true, value_name = "KEY=VALUE", value_parser = crate::model::Setting::parse)]
    pub plugin_settings: Vec<crate::model::Setting>,
    /// The directory of organizations, users and tokens [default: <data>/directory.json].
    #[arg(long, global = true, value_name = "FILE")]
    pub directory: Option<PathBuf>,
    /// How long rows are kept, as a Go duration plus `d` and `w` (`90d`); 0 keeps them forever.
    #[arg(
        long,
        global = true,
        env = "CODER_CONNECTION_LOGS_RETENTION",
        default_value = "0",
        value_name = "DUR"
    )]
    pub connection_logs_retention: Retention,
    /// The most linear memory the plugin instance may use, in MiB.
    #[arg(long, global = true, default_value_t = 2048, value_name = "MIB")]
    pub plugin_memory_mib: usize,
    /// How long one call into the plugin may run, in seconds.
    #[arg(long, global = true, default_value_t = 60, value_name = "SECS")]
    pub plugin_call_timeout: u64,
    /// Where compiled plugins are cached [default: $CONNLOG_CACHE_DIR, $XDG_CACHE_HOME/connlog or ~/.cache/connlog].
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Write every ingested event as a Coder JSON `connection_log` service-log line to FILE
    /// (`/dev/stderr`, `/dev/stdout` or a file, appended to).
    #[arg(long, global = true, env = "CODER_LOGGING_JSON", value_name = "FILE")]
    pub log_json: Option<PathBuf>,
    /// Write every ingested event as a Coder human-format `connection_log` service-log line
    /// to FILE (`/dev/stderr`, `/dev/stdout` or a file, appended to).
    #[arg(long, global = true, env = "CODER_LOGGING_HUMAN", value_name = "FILE")]
    pub log_human: Option<PathBuf>,
    /// Which generation of Coder's `connection_log` fields service-log lines carry, in
    /// `--log-json`, `--log-human` and `export --format json|human`: `current` (Coder's
    /// `ConnectionMethod`, `AppNameOrPort`, `ClientSessionID`, `IP`) or `seed` (the older
    /// lines of Coder's docs: the deprecated 7-value `Type`, `SlugOrPort`, `Ip`; they cannot
    /// carry an app other than VS Code or JetBrains, nor a client session id).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "current",
        value_name = "GENERATION"
    )]
    pub log_fields: crate::model::LogFields,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Simulate(simulate::SimulateArgs),
    Ingest(ingest::IngestArgs),
    Query(query::QueryArgs),
    Export(export::ExportArgs),
    Purge(purge::PurgeArgs),
    Serve(serve::ServeArgs),
    #[command(subcommand)]
    Token(token::TokenCommand),
    Conformance(conformance::ConformanceArgs),
    Migrate(migrate::MigrateArgs),
}

pub fn main() -> ExitCode {
    // Help and version go to stdout with 0; usage errors to stderr with 2 (`ExitStatus::Usage`).
    let cli = Cli::parse();
    init_tracing();
    let outcome = match &cli.command {
        Command::Simulate(args) => simulate::run(&cli.global, args),
        Command::Serve(args) => serve::run(&cli.global, args),
        Command::Ingest(args) => remote::run(&cli.global, Request::Ingest(args.clone())),
        Command::Query(args) => remote::run(&cli.global, Request::Query(args.clone())),
        Command::Export(args) => {
            // The owner may be another process: the request carries the generation asked for.
            let args = export::ExportArgs {
                log_fields: cli.global.log_fields,
                ..args.clone()
            };
            remote::run(&cli.global, Request::Export(args))
        }
        Command::Purge(args) => remote::run(&cli.global, Request::Purge(args.clone())),
        Command::Token(command) => remote::run(&cli.global, Request::Token(command.clone())),
        Command::Conformance(args) => conformance::run(&cli.global, args),
        Command::Migrate(args) => migrate::run(&cli.global, args),
    };
    match outcome {
        Ok(status) => status.into(),
        Err(error) => {
            eprintln!("connlog: {error}");
            error.status().into()
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONNLOG_LOG")
        .unwrap_or_else(|_| "warn".into());
    // Colours only for a terminal: a log redirected to a file stays plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

impl GlobalOptions {
    pub fn directory_path(&self) -> PathBuf {
        self.directory
            .clone()
            .unwrap_or_else(|| self.data.join("directory.json"))
    }

    pub fn load_directory(&self) -> Result<Directory, CliError> {
        Directory::load_or_empty(&self.directory_path()).map_err(|e| CliError::Data(e.to_string()))
    }

    /// The actor for `--as USER`, with a hint when the directory is empty or missing.
    pub fn actor_for(
        &self,
        directory: &Directory,
        user: &str,
    ) -> Result<crate::model::Actor, CliError> {
        directory.actor_for(user).map_err(|e| {
            if directory.members().is_empty() {
                CliError::Usage(format!(
                    "{e}: {} holds no users; run `connlog simulate` first, or pass --directory FILE",
                    self.directory_path().display()
                ))
            } else {
                CliError::Usage(e.to_string())
            }
        })
    }

    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.plugin_memory_mib.saturating_mul(1 << 20),
            call_deadline: Duration::from_secs(self.plugin_call_timeout),
            ..Limits::default()
        }
    }

    /// The plugin `--plugin` names, with the `--plugin-setting`s.
    pub fn plugin_spec(&self) -> PluginSpec {
        PluginSpec {
            source: self
                .plugin
                .as_deref()
                .map_or_else(PluginSource::default, PluginSource::from_arg),
            settings: self.plugin_settings.clone(),
        }
    }

    pub fn cache(&self) -> Option<ComponentCache> {
        self.cache_dir
            .clone()
            .or_else(ComponentCache::default_dir)
            .map(ComponentCache::new)
    }

    /// The service-log sink that `--log-json` and `--log-human` ask for.
    pub fn service_log(&self) -> Result<ServiceLogWriter, CliError> {
        let mut targets = Vec::new();
        if let Some(path) = &self.log_json {
            targets.push((LogFormat::Json, LogTarget::parse(path)));
        }
        if let Some(path) = &self.log_human {
            targets.push((LogFormat::Human, LogTarget::parse(path)));
        }
        ServiceLogWriter::open(&targets)
            .map_err(|e| CliError::Usage(format!("cannot open the service log: {e}")))
    }

    /// The service over this data directory, with the plugin loaded and up to date. The
    /// caller owns the directory (`owner.rs`). A replica's local copy of a shared store is
    /// refused: what was written to it alone would never reach the other replicas.
    pub fn open_service(&self, directory: Arc<Directory>) -> Result<ConnLog, CliError> {
        let service = self.open_store(directory)?;
        match service.replica_of().map_err(CliError::from)? {
            None => Ok(service),
            Some(store) => Err(CliError::Data(format!(
                "the data directory {} is a replica's copy of the shared store {store} in \
                 PostgreSQL: serve it with `connlog serve --store URL`, and run other \
                 commands while it serves",
                self.data.display()
            ))),
        }
    }

    /// The service as a replica of the shared store `config` names (`serve --store`).
    pub fn open_replica(
        &self,
        directory: Arc<Directory>,
        config: &crate::store::postgres::Config,
    ) -> Result<ConnLog, CliError> {
        let mut service = self.open_store(directory)?;
        service
            .attach_upstream(config, &self.directory_path())
            .map_err(|e| match e.downcast_ref::<RetentionConflict>() {
                Some(conflict) => CliError::Usage(conflict.to_string()),
                None => e.into(),
            })?;
        Ok(service)
    }

    fn open_store(&self, directory: Arc<Directory>) -> Result<ConnLog, CliError> {
        let service_log = self.service_log()?;
        ConnLog::open(ServiceConfig {
            data_dir: self.data.clone(),
            plugin: self.plugin_spec(),
            directory,
            limits: self.limits(),
            log_formats: service_log.formats(),
            log_fields: self.log_fields,
            service_log: Arc::new(service_log),
            retention: Duration::from_nanos(self.connection_logs_retention.0),
            cache: self.cache(),
            clock: Clock::System,
        })
        .map_err(CliError::from_open_error)
    }
}

/// A query's answer (a page, or its body), or Coder's 400 body when `q` is invalid; a
/// storage failure is an error.
fn answer_or_invalid<T>(
    outcome: Result<T, crate::model::QueryError>,
) -> Result<Result<T, String>, CliError> {
    use crate::model::QueryError;
    match outcome {
        Ok(answer) => Ok(Ok(answer)),
        Err(QueryError::InvalidQuery(validations)) => Ok(Err(crate::responses::validation_body(
            crate::responses::INVALID_QUERY_MESSAGE,
            &validations,
        ))),
        Err(QueryError::Storage(e)) => Err(CliError::Failed(format!("storage error: {e}"))),
    }
}
