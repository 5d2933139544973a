//! The host's bindings, one module per contract version (as Zed does with `since_v0_x`): each
//! holds its `bindgen!` and the conversions between its generated types and the host's
//! [`model`](crate::model), so that the rest of the host names no generated type.

pub mod v0_1;
