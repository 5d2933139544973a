//! Go's time formats, for output: RFC 3339 with trailing zeros of the fraction dropped
//! (`time.RFC3339Nano`, also what Go's JSON uses).

use crate::model::UnixNanos;

/// `2025-07-10T10:14:38.942776145Z`, `2025-07-03T06:57:16.144719Z`, `2025-07-03T06:57:16Z`.
pub fn rfc3339_nano(t: UnixNanos) -> String {
    let _ = t;
    todo!("timefmt::rfc3339_nano")
}
