//! Signing the page in and out with Coder's `coder_session_token` cookie.
//!
//! | route | answer |
//! |---|---|
//! | `POST /api/v2/users/session-cookie` with `{"session_token":"…"}` | the caller as `/users/me` answers it, and the cookie; Coder's 401 bodies for a bad token |
//! | `POST /api/v2/users/logout` | `{"message":"Logged out!"}`, and the cookie cleared |
//!
//! The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` and `Path=/`; JavaScript
//! cannot set such a cookie, hence the sign-in route. Both routes refuse cross-site
//! requests (an `Origin` other than the server's own, or `Sec-Fetch-Site` other than
//! `same-origin`), and sign-in takes the token from a JSON body only: never from the URL,
//! which ends up in logs and history, and never from a form, which another site could post.
//! The token is never written back. Logout clears the cookie and leaves the token valid: it
//! is an API token of the directory, which `connlog token` manages, not a login session.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

use super::auth::SESSION_TOKEN_COOKIE;
use super::users::me_body;
use super::{AppState, json_response, message_response};

/// The sign-in route.
pub const SIGN_IN_PATH: &str = "/api/v2/users/session-cookie";

/// The largest sign-in body read: a token is 33 bytes.
const SIGN_IN_BODY_LIMIT: usize = 4 << 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    session_token: String,
}

/// `POST /api/v2/users/session-cookie`.
pub async fn sign_in(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refusal) = same_origin(&headers) {
        return refusal;
    }
    if !is_json(&headers) {
        return message_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Request body must be JSON.",
            Some(
                "Send the token as {\"session_token\": \"…\"} with Content-Type: application/json.",
            ),
        );
    }
    let bytes: Bytes = match axum::body::to_bytes(body, SIGN_IN_BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return message_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body is too large or could not be read.",
                Some(&format!("the limit is {SIGN_IN_BODY_LIMIT} bytes")),
            );
        }
    };
    let request: SignIn = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        // serde's message quotes no value of a string field, so the token is not echoed.
        Err(e) => {
            return message_response(
                StatusCode::BAD_REQUEST,
                "Request body must be valid JSON.",
                Some(&format!("{e} (expected {{\"session_token\": \"…\"}})")),
            );
        }
    };
    let caller = match state.auth.authenticate_token(request.session_token.trim()) {
        Ok(caller) => caller,
        Err(e) => {
            return message_response(StatusCode::UNAUTHORIZED, &e.message, e.detail.as_deref());
        }
    };
    // A token that authenticates has Coder's `<id>-<secret>` shape, alphanumeric: a valid
    // cookie value as it is.
    let cookie = format!(
        "{SESSION_TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        request.session_token.trim()
    );
    with_cookie(
        json_response(StatusCode::OK, me_body(&state.auth.directory(), &caller)),
        &cookie,
    )
}

/// `POST /api/v2/users/logout`: as Coder's, it answers `Logged out!` and clears the cookie.
pub async fn logout(headers: HeaderMap) -> Response {
    if let Err(refusal) = same_origin(&headers) {
        return refusal;
    }
    let cookie = format!("{SESSION_TOKEN_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    with_cookie(
        message_response(StatusCode::OK, "Logged out!", None),
        &cookie,
    )
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    let value = HeaderValue::from_str(cookie).expect("a cookie of visible ASCII");
    response.headers_mut().insert(header::SET_COOKIE, value);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `application/json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Refuses a request a browser made for another site. Clients that send neither header
/// (curl, scripts) carry no browser cookie of ours to abuse, so they pass.
#[allow(clippy::result_large_err)]
fn same_origin(headers: &HeaderMap) -> Result<(), Response> {
    let refuse = |why: String| {
        Err(message_response(
            StatusCode::FORBIDDEN,
            "Cross-site request refused.",
            Some(&why),
        ))
    };
    let text = |name: header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("?"));
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && site != "same-origin"
    {
        return refuse(format!(
            "Sec-Fetch-Site is {site:?}: only the connection log page itself may sign in or out."
        ));
    }
    if let Some(origin) = text(header::ORIGIN) {
        let host = text(header::HOST).unwrap_or_default();
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if host.is_empty() || authority != Some(host) {
            return refuse(format!(
                "Origin {origin:?} is not this server ({host:?}): only the connection log page itself may sign in or out."
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_servers_own_origin_passes() {
        assert!(same_origin(&headers(&[])).is_ok());
        assert!(
            same_origin(&headers(&[
                ("host", "127.0.0.1:3000"),
                ("origin", "http://127.0.0.1:3000")
            ]))
            .is_ok()
        );
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(
            same_origin(&headers(&[
                ("host", "127.0.0.1:3000"),
                ("origin", "http://evil.example")
            ]))
            .is_err()
        );
        assert!(same_origin(&headers(&[("host", "127.0.0.1:3000"), ("origin", "null")])).is_err());
        assert!(same_origin(&headers(&[("origin", "http://127.0.0.1:3000")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-site")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(&headers(&[("content-type", "application/json")])));
        assert!(is_json(&headers(&[(
            "content-type",
            "Application/JSON; charset=utf-8"
        )])));
        assert!(!is_json(&headers(&[(
            "content-type",
            "application/x-www-form-urlencoded"
        )])));
        assert!(!is_json(&headers(&[("content-type", "text/plain")])));
        assert!(!is_json(&headers(&[])));
    }
}
