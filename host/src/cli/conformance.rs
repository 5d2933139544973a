//! `connlog conformance PLUGIN`: the conformance kit against a plugin.

use std::io::Write;
use std::path::Path;

use clap::Args;

use super::{CliError, ExitStatus, GlobalOptions};
use crate::conformance::Kit;
use crate::plugin::{PluginSource, PluginSpec};

/// Check that a plugin behaves as a connection-log plugin must, through the real host.
///
/// Every case runs on a fresh store in a temporary directory (your data directory is not
/// touched), with a fixed directory of organizations and users and a fixed clock: merge
/// rules in every order and after restarts, replays, Coder's filter language and its exact
/// 400 messages, authorization, paging and exact counts, the API body, service-log lines and
/// row-events, retention, snapshot and replay starts, the host's limits, and privacy.
///
/// Any plugin is expected to store client IPs and user agents as Coder does, except the
/// embedded privacy plugin (`connlog-privacy`), which is judged by the privacy rules its
/// --plugin-setting values select: IPs truncated to /24 and /48 (the default), replaced by
/// HMAC-SHA256 pseudonyms in fd00::/8 (ip=hmac with ip-hmac-key), dropped or kept; user
/// agents coarsened to family and OS (the default), dropped or kept; rows kept at most
/// max-retention. The `privacy` cases check that values those rules replace never reach the
/// store, the API, the service log, exports or the data directory, that rows stored before
/// a hot swap keep what they had, and that max-retention purges; for any other plugin they
/// check that everything is kept. Settings the plugin refuses are refused here (exit 2).
///
/// Prints one line per case (`ok    area/name`, `FAIL  area/name: reason`, or, for a plugin
/// of contract 0.1.0, `skip  area/name: needs contract 0.2.0 (…)` for what 0.1.0 cannot
/// carry: client session ids, a web terminal's app, agent-reported port forwards, Coder's
/// current service-log line) and ends with `N passed, S skipped, M failed`. Exits 0 when no
/// case failed, 1 when any failed, 3 when the plugin is refused at load.
///
/// Examples:
///   connlog conformance reference
///   connlog conformance privacy --plugin-setting ip=hmac --plugin-setting ip-hmac-key=…
///   connlog conformance ./target/my-plugin.wasm
///   connlog conformance my-plugin.wasm | grep FAIL
#[derive(Args, Clone, Debug)]
#[command(verbatim_doc_comment)]
pub struct ConformanceArgs {
    /// An embedded plugin (`reference`, `privacy`) or the path of a plugin component.
    // Not `plugin`: that id belongs to the global `--plugin`.
    #[arg(value_name = "PLUGIN")]
    pub component: String,
}

impl ConformanceArgs {
    fn spec(&self, global: &GlobalOptions) -> PluginSpec {
        PluginSpec {
            source: PluginSource::from_arg(Path::new(&self.component)),
            settings: global.plugin_settings.clone(),
        }
    }
}

pub fn run(global: &GlobalOptions, args: &ConformanceArgs) -> Result<ExitStatus, CliError> {
    if global.plugin.is_some() {
        return Err(CliError::Usage(
            "conformance takes the plugin as its argument (PLUGIN), not --plugin".into(),
        ));
    }
    let kit = Kit::load(args.spec(global), global.cache(), global.limits())
        .map_err(CliError::from_open_error)?;
    eprintln!(
        "connlog: checking {} {} (contract {})",
        kit.info.name, kit.info.version, kit.info.contract_version
    );
    if !kit.rules.is_identity() {
        eprintln!("connlog: expecting {}", kit.rules);
    }
    let mut out = std::io::stdout().lock();
    let mut write_error = None;
    let summary = kit.run(|outcome| {
        if write_error.is_none()
            && let Err(e) = writeln!(out, "{outcome}").and_then(|()| out.flush())
        {
            write_error = Some(e);
        }
    });
    if let Some(e) = write_error {
        return Err(CliError::Failed(format!("writing: {e}")));
    }
    writeln!(out, "{summary}").map_err(|e| CliError::Failed(format!("writing: {e}")))?;
    Ok(if summary.failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Rejected
    })
}
