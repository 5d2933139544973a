//! What every plugin shares: one wasmtime `Engine` (components, epoch interruption), the
//! `Linker` with the host's imports, and the thread that advances the epoch.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

use super::wit::v0_1::ConnectionLogPlugin;
use super::{ComponentCache, HostState};

/// How often the epoch advances; deadlines are measured in these ticks.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(10);

pub struct PluginHost {
    pub(super) engine: Engine,
    pub(super) linker: Arc<Linker<HostState>>,
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
        let mut linker = Linker::new(&engine);
        ConnectionLogPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        start_epoch_ticker(&engine);
        Ok(Self {
            engine,
            linker: Arc::new(linker),
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
