//! A test plugin that is deliberately wrong: the reference plugin, except that it drops
//! every event's connection ID before anything else sees it. Agent-reported events then
//! never merge into sessions: each connect and each disconnect is a row of its own, and
//! disconnects are refused for lacking the ID. It loads and answers like any plugin; the
//! conformance kit must fail it, naming the merge cases.

use connlog_plugin_sdk::layer::{Layered, PluginLayer};
use connlog_plugin_sdk::model::ConnectionEvent;
use connlog_reference::ReferencePlugin;

#[derive(Default)]
pub struct ForgetSessions;

impl PluginLayer for ForgetSessions {
    const NAME: &'static str = "connlog-sessionless-plugin";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn on_event(&self, event: &mut ConnectionEvent) {
        event.connection_id = None;
    }
}

pub type SessionlessPlugin = Layered<ForgetSessions, ReferencePlugin>;

connlog_plugin_sdk::export_plugin!(SessionlessPlugin);
