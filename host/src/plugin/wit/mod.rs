//! The host's bindings, one module per contract version (as Zed does with `since_v0_x`): each
//! holds its `bindgen!`, the conversions between its generated types and the host's
//! [`model`](crate::model), and its `Host` impls, thin glue over
//! [`HostState`](crate::plugin::HostState)'s methods, so that the rest of the host names no
//! generated type and every version's imports behave the same.

pub mod v0_1;
