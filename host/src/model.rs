//! The host's vocabulary: connection events, rows, queries and their errors.
//!
//! For now these are the reference plugin's plain types, re-exported; host code names them
//! through this module only, so that the host can own its types (converted to and from each
//! contract version's bindings) without touching its users.

pub use connlog_guest::model::*;
