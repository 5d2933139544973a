//! Coder's output formats: API JSON (codersdk), service-log lines (JSON and human), and the
//! events that rebuild a row for exports.

pub mod api;
pub mod go;
pub mod row_events;
pub mod service_log;
pub mod timefmt;
