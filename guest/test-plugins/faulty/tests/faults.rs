//! The fault hooks. Only the panic can be exercised natively: the endless loop and the
//! unbounded allocation are for the host's deadline and memory-cap tests against the real
//! component.

use connlog_faulty_plugin::{FaultyPlugin, faults};
use connlog_plugin_sdk::ConnectionLogPlugin;
use connlog_plugin_sdk::testing::MemoryHost;
use connlog_plugin_sdk::testing::fixtures::*;

#[test]
fn ordinary_events_pass_through() {
    let mut plugin = FaultyPlugin::new();
    let mut host = MemoryHost::at(T0);
    let event = ssh_connect(uuid(1), T0, uuid(2));
    faults::on_event(&event);
    faults::on_replay(&event.as_event_ref());
    let outcomes = plugin.ingest_batch(&mut host, vec![event]).unwrap();
    assert_eq!(outcomes, [connlog_plugin_sdk::model::EventOutcome::Stored]);
}

#[test]
#[should_panic(expected = "fault injection")]
fn the_panic_marker_panics_inside_ingest() {
    let mut plugin = FaultyPlugin::new();
    let mut host = MemoryHost::at(T0);
    let mut event = ssh_connect(uuid(1), T0, uuid(2));
    event.agent_name = faults::PANIC.to_string();
    let _ = plugin.ingest_batch(&mut host, vec![event]);
}

#[test]
#[should_panic(expected = "fault injection")]
fn the_replay_marker_panics_only_in_replay() {
    let mut plugin = FaultyPlugin::new();
    let mut host = MemoryHost::at(T0);
    let mut event = ssh_connect(uuid(1), T0, uuid(2));
    event.agent_name = faults::REPLAY_PANIC.to_string();
    let outcomes = plugin.ingest_batch(&mut host, vec![event.clone()]).unwrap();
    assert_eq!(outcomes, [connlog_plugin_sdk::model::EventOutcome::Stored]);
    let _ = plugin.replay(&mut host, &[event.as_event_ref()]);
}
