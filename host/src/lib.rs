//! The connlog host: reads events, keeps the directory of users and organizations, parses
//! durations and simulates a Coder deployment's traffic.

pub mod directory;
pub mod duration;
pub mod events;
pub mod simulate;
