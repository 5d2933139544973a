//! Coder's REST API over HTTP (`connlog serve`): axum on tokio, one shared service.
//!
//! | route | auth | answer |
//! |---|---|---|
//! | `GET /api/v2/connectionlog?q=&limit=&offset=` | any user's token | Coder's `ConnectionLogResponse`, 400 with `validations`, 401 |
//! | `GET /api/v2/connectionlog/export?q=&format=csv\|ndjson` | any user's token | every row the list would page through, streamed as a download: what `connlog export --format csv\|ndjson` writes; 400 for `format` or `q`, 401 |
//! | `GET /api/v2/connectionlog/watch?q=&after=&format=sse\|ndjson` | any user's token | the live feed (`watch`): rows as events create or complete them, as Server-Sent Events or NDJSON, resumable from `Last-Event-ID` or `after`; 400, 401, 501 when the plugin has no feed |
//! | `POST /api/v2/connectionlog/ingest` | an owner's token | `{"accepted":N,"rejected":[{"line":L,"error":"…"}]}` once durable; 500 when nothing is acknowledged |
//! | `POST /api/v2/connectionlog/plugin` | an owner's token | hot swap to an embedded plugin (`{"plugin":"privacy","settings":{"ip":"hmac",…}}`) or a file of `--plugin-dir`: the swap report, or an error and the old plugin keeps serving |
//! | `GET /api/v2/users/me`, `GET /api/v2/users?q=&limit=&offset=`, `GET /api/v2/organizations` | any user's token | Coder's `User`, `{"users":[…],"count":N}`, `[Organization]`, scoped by role (`users.rs`) |
//! | `POST /api/v2/users/session-cookie`, `POST /api/v2/users/logout` | a token in a same-origin JSON body | sign the page in and out: the `coder_session_token` cookie (`session.rs`) |
//! | `GET /`, `GET /connectionlog`, `/connectionlog/assets/…` | none (the page signs in itself) | the Connection Log page (`page.rs`) |
//! | `GET /healthz` | none | `OK` |
//! | `GET /metrics` | none | Prometheus text |
//!
//! Every plugin call runs on a blocking thread (`spawn_blocking`) under the service's
//! mutex, so a slow or faulty guest never stalls the async runtime. JSON bodies end with a
//! newline, as Go's `json.Encoder` writes them.

mod api;
pub mod auth;
mod export;
pub mod metrics;
mod page;
mod session;
mod users;
pub mod watch;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::responses::message_body;
use crate::service::{IngestQueue, SharedConnLog};

pub use auth::Authenticator;
pub use metrics::Metrics;

/// The largest ingest or swap request body accepted, by default.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;

/// What every request handler shares.
pub struct AppState {
    pub service: SharedConnLog,
    /// Every ingest into `service` goes through it (group commit).
    pub ingest: Arc<IngestQueue>,
    pub auth: Arc<Authenticator>,
    pub metrics: Metrics,
    pub max_body_bytes: usize,
    /// Where the swap endpoint may load plugin files from (`serve --plugin-dir`).
    pub plugin_dir: Option<std::path::PathBuf>,
    /// The followed log's progress, with `serve --follow`.
    pub follow: Option<Arc<crate::follow::FollowStats>>,
    /// The live feed's settings (`serve --watch-*`) and the server's stop signal.
    pub watch: watch::WatchSettings,
}

/// The API's routes over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v2/connectionlog", get(api::connection_logs))
        .route("/api/v2/connectionlog/export", get(export::export_rows))
        .route("/api/v2/connectionlog/watch", get(watch::watch))
        .route("/api/v2/connectionlog/ingest", post(api::ingest))
        .route("/api/v2/connectionlog/plugin", post(api::swap))
        .route("/api/v2/users/me", get(users::me))
        .route("/api/v2/users", get(users::list))
        .route("/api/v2/organizations", get(users::organizations))
        .route(session::SIGN_IN_PATH, post(session::sign_in))
        .route("/api/v2/users/logout", post(session::logout))
        .merge(page::routes())
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .fallback(api::route_not_found)
        .with_state(state)
}

/// A JSON response, with a trailing newline as Go's encoder writes.
pub(crate) fn json_response(status: StatusCode, mut body: String) -> Response {
    body.push('\n');
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Body::from(body))
        .expect("a valid response")
}

/// Coder's 400 `Query parameters have invalid values.`, with a validation per parameter.
pub(crate) fn invalid_parameters(validations: &[crate::model::Validation]) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        crate::responses::validation_body(
            crate::responses::INVALID_PARAMETERS_MESSAGE,
            validations,
        ),
    )
}

/// Coder's 400 `Invalid connection search query.`, with the filter's validations.
pub(crate) fn invalid_query(validations: &[crate::model::Validation]) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        crate::responses::validation_body(crate::responses::INVALID_QUERY_MESSAGE, validations),
    )
}

/// Coder's `{"message":…,"detail":…}` with a status.
pub(crate) fn message_response(
    status: StatusCode,
    message: &str,
    detail: Option<&str>,
) -> Response {
    json_response(status, message_body(message, detail))
}
