//! Coder's filter language for connection logs (`searchquery.ConnectionLogs`, spec §5):
//! tokenizer, keys, look-ups through the directory, and Coder's exact error texts.

#![allow(dead_code)] // the Go ports are wired into parse_filter next

mod goquote;
mod gotime;
mod gouuid;
mod tokenize;

use crate::host::Directory;
use crate::model::*;

/// Parses `q` for `actor` (who `me` means). Look-ups of names and emails go through
/// `directory`. Errors come in Coder's order, each with its field and detail.
pub fn parse_filter(q: &str, actor: &Actor, directory: &dyn Directory) -> Result<Filter, Vec<Validation>> {
    let _ = (q, actor, directory);
    todo!("search::parse_filter")
}
