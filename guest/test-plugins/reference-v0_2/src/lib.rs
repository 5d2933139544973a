//! A test plugin: the reference plugin, exported for contract `0.2.0` as a plugin built
//! before `0.3.0` was. The host's tests load it to check that a `0.2.0` plugin, whose
//! events cross as lists of records, still loads, serves and passes the conformance kit.

connlog_plugin_sdk::export_plugin_v0_2!(connlog_reference::ReferencePlugin);
