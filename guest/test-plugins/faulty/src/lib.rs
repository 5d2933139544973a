//! A test plugin: the reference plugin, except that marker events make it fail (see
//! [`faults`]). The host's isolation tests load it to check that a plugin's failure costs
//! one call, never the host or any data. It is built only for those tests.

pub mod faults;

use connlog_plugin_sdk::PluginHost;
use connlog_plugin_sdk::layer::{Layered, PluginLayer};
use connlog_plugin_sdk::model::{ConnectionEvent, EventRef};
use connlog_reference::ReferencePlugin;

/// The fault hooks, in front of the reference plugin's `ingest_batch`, `replay` and
/// `save-snapshot`.
#[derive(Default)]
pub struct Faults;

impl PluginLayer for Faults {
    const NAME: &'static str = "connlog-faulty-plugin";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn on_event(&self, event: &mut ConnectionEvent) {
        faults::on_event(event);
    }

    fn on_replay(&mut self, host: &mut dyn PluginHost, events: &[EventRef<'_>]) {
        events.iter().for_each(faults::on_replay);
        faults::read_journal_on_replay(host, events);
    }

    fn on_save(&self) {
        faults::on_save();
    }
}

pub type FaultyPlugin = Layered<Faults, ReferencePlugin>;

connlog_plugin_sdk::export_plugin!(FaultyPlugin);
