//! The fault-injection hook (feature `fault-injection`). Only the panic can be exercised
//! natively: the endless loop and the unbounded allocation are for the host's deadline and
//! memory-cap tests against the real component.
#![cfg(feature = "fault-injection")]

use connlog_guest::faults;
use connlog_guest::plugin::Plugin;
use connlog_guest::testing::MemoryHost;
use connlog_guest::testing::fixtures::*;

#[test]
fn ordinary_events_pass_through() {
    faults::on_event(&ssh_connect(uuid(1), T0, uuid(2)));
}

#[test]
#[should_panic(expected = "fault injection")]
fn the_panic_marker_panics_inside_ingest() {
    let mut plugin = Plugin::new();
    let mut host = MemoryHost::at(T0);
    let mut event = ssh_connect(uuid(1), T0, uuid(2));
    event.agent_name = faults::PANIC.to_string();
    let _ = plugin.ingest_batch(&mut host, vec![event]);
}
