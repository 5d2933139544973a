//! What every plugin shares: one wasmtime `Engine` (components, epoch interruption), a
//! `Linker` with the host's imports for each contract version, and the thread that advances
//! the epoch.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use super::wit::SUPPORTED;
use super::{ComponentCache, HostState};

/// How often the epoch advances; deadlines are measured in these ticks.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(10);

pub struct PluginHost {
    pub(super) engine: Engine,
    /// One per contract version, in the order of [`SUPPORTED`].
    pub(super) linkers: Arc<Vec<Linker<HostState>>>,
    pub(super) cache: Option<ComponentCache>,
}

impl PluginHost {
    /// `cache`: where compiled components are kept; `None` compiles every time.
    pub fn new(cache: Option<ComponentCache>) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        // Lets `perf` name the plugin's compiled functions (written to /tmp/perf-<pid>.map).
        if std::env::var_os("CONNLOG_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let linkers = SUPPORTED
            .iter()
            .map(|version| (version.linker)(&engine))
            .collect::<wasmtime::Result<Vec<_>>>()?;
        start_epoch_ticker(&engine);
        Ok(Self {
            engine,
            linkers: Arc::new(linkers),
            cache,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Advances the engine's epoch every tick, from a thread that holds only a weak reference
/// and ends when the engine is dropped. A thread, not an async task: a guest that never
/// yields could starve an executor that is meant to interrupt it.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("connlog-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}
