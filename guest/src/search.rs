//! Coder's filter language for connection logs (`searchquery.ConnectionLogs`, spec §5):
//! tokenizer, keys, look-ups through the directory, and Coder's exact error texts.

use crate::host::Directory;
use crate::model::*;

/// Parses `q` for `actor` (who `me` means). Look-ups of names and emails go through
/// `directory`. Errors come in Coder's order, each with its field and detail.
pub fn parse_filter(q: &str, actor: &Actor, directory: &dyn Directory) -> Result<Filter, Vec<Validation>> {
    let _ = (q, actor, directory);
    todo!("search::parse_filter")
}
