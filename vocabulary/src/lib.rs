//! Coder's connection vocabulary (spec "version D"), as pure functions both sides of the
//! contract use: plugins to validate, filter and render; the host to read both generations
//! of Coder's log lines, to speak to `0.1.0` plugins and to upgrade old stores; and Go's
//! quoting (`gostr`), in which Coder's messages spell values, for the plugins' filter
//! errors and the host's API errors. Keeping it in one crate keeps the two sides from
//! drifting apart.

mod app;
pub mod gostr;
mod legacy;
mod method;

pub use app::{
    AppFamily, MAX_APP_NAME_CHARS, REGISTRY, RegisteredApp, app_display_name, app_family,
    apps_in_family, normalize_app_name,
};
pub use legacy::{LegacyType, TypeFilter, downgrade, upgrade};
pub use method::{ConnectionMethod, UnknownMethod};

/// Coder's `client_session_id` CHECK: exactly 32 lowercase hex characters (a UUID without
/// dashes).
pub fn is_client_session_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::is_client_session_id;

    #[test]
    fn client_session_ids_are_32_lowercase_hex() {
        assert!(is_client_session_id("0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "01234567-89ab-cdef-0123-456789abcdef",
            "0123456789abcdef0123456789abcdeg",
        ] {
            assert!(!is_client_session_id(bad), "{bad:?} passed");
        }
    }
}
