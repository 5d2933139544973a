//! Turning a raw event into a canonical one, or a precise refusal (PRODUCT.md "Event input
//! format", spec §2).

use crate::model::*;

/// Validates and normalises one event: the type is normalised, the IP canonicalised,
/// empty strings become absent. The error names the input field (`ConnectionID`, …).
pub fn canonicalize(event: ConnectionEvent) -> Result<ConnectionEvent, Validation> {
    let _ = event;
    todo!("validate::canonicalize")
}
