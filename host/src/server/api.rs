//! The route handlers.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use connlog_vocabulary::gostr::strconv_quote;
use serde::Deserialize;

use super::auth::{Caller, Unauthorized};
use super::metrics::{Metrics, ServiceGauges};
use super::{AppState, invalid_parameters, invalid_query, json_response, message_response};
use crate::ingest::{INGEST_BATCH, ingest_ndjson};
use crate::model::{QueryError, QueryRequest, Setting, Uuid, Validation};
use crate::plugin::{PluginError, PluginSource, PluginSpec};
use crate::service::{RestoreSource, ServiceError, SharedConnLog, swap_plugin};

pub(super) const INTERNAL_ERROR: &str = "An internal server error occurred.";
const FORBIDDEN: &str = "Forbidden.";
const FORBIDDEN_DETAIL: &str = "You don't have permission to view this content. If you believe this is a mistake, please contact your administrator or try signing in with different credentials.";

type Shared = State<Arc<AppState>>;

fn unauthorized(e: Unauthorized) -> Response {
    message_response(StatusCode::UNAUTHORIZED, &e.message, e.detail.as_deref())
}

// A response is axum's error type; boxing it would only add noise.
#[allow(clippy::result_large_err)]
pub(super) fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Caller, Response> {
    state
        .auth
        .authenticate(headers, query)
        .map_err(unauthorized)
}

/// A read request's caller and its query string (read as Go's `url.Values`).
#[allow(clippy::result_large_err)]
pub(super) fn reader(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(Caller, QueryParams), Response> {
    let caller = authenticate(state, headers, query)?;
    Ok((caller, QueryParams::parse(query.unwrap_or(""))))
}

#[allow(clippy::result_large_err)]
fn authenticate_owner(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Caller, Response> {
    let caller = authenticate(state, headers, query)?;
    if caller.is_owner() {
        Ok(caller)
    } else {
        Err(message_response(
            StatusCode::FORBIDDEN,
            FORBIDDEN,
            Some(FORBIDDEN_DETAIL),
        ))
    }
}

/// Runs `f` on a blocking thread with the service locked.
pub(super) async fn with_service<T: Send + 'static>(
    service: &SharedConnLog,
    f: impl FnOnce(&mut crate::service::ConnLog) -> T + Send + 'static,
) -> Result<T, Response> {
    let service = service.clone();
    blocking(move || f(&mut crate::service::lock(&service))).await
}

/// Runs `f` on a blocking thread; a panic is a 500.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!("a service call panicked: {e}");
        message_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            INTERNAL_ERROR,
            Some(&format!("the service call failed: {e}")),
        )
    })
}

pub(super) fn service_error(e: &ServiceError) -> Response {
    message_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        INTERNAL_ERROR,
        Some(&e.to_string()),
    )
}

/// `GET /api/v2/connectionlog?q=&limit=&offset=`.
pub async fn connection_logs(
    State(state): Shared,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (caller, params) = match reader(&state, &headers, query.as_deref()) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let (limit, offset) = match params.pagination() {
        Ok(p) => p,
        Err(validations) => return invalid_parameters(&validations),
    };
    let request = QueryRequest {
        q: params.get("q").unwrap_or_default().to_owned(),
        limit,
        offset,
    };
    let app = state.clone();
    let outcome = with_service(&state.service, move |service| {
        let started = Instant::now();
        let answer = service.api_page(caller.actor, request);
        app.metrics.observe_query(started.elapsed());
        answer
    })
    .await;
    match outcome {
        Err(response) => response,
        Ok(Ok(Ok(body))) => json_response(StatusCode::OK, body),
        Ok(Ok(Err(QueryError::InvalidQuery(validations)))) => invalid_query(&validations),
        Ok(Ok(Err(QueryError::Storage(e)))) => message_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            INTERNAL_ERROR,
            Some(&format!("storage error: {e}")),
        ),
        Ok(Err(e)) => service_error(&e),
    }
}

/// `POST /api/v2/connectionlog/ingest`: NDJSON events; answers once they are durable.
pub async fn ingest(
    State(state): Shared,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let bytes = match owner_request_body(&state, &headers, query.as_deref(), body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // Stored a batch at a time, each committed with the other requests' batches waiting
    // then: a large request does not hold up the others, and many share one fsync.
    let queue = state.ingest.clone();
    let outcome = blocking(move || ingest_ndjson(&queue, Cursor::new(bytes), INGEST_BATCH)).await;
    Metrics::add(&state.metrics.ingest_requests, 1);
    match outcome {
        Err(response) => {
            Metrics::add(&state.metrics.ingest_failures, 1);
            response
        }
        Ok(Ok(answer)) => {
            Metrics::add(&state.metrics.events_ingested, answer.accepted);
            Metrics::add(&state.metrics.events_duplicate, answer.duplicates);
            Metrics::add(&state.metrics.events_rejected, answer.rejected.len() as u64);
            json_response(
                StatusCode::OK,
                serde_json::to_string(&answer).expect("plain data"),
            )
        }
        Ok(Err((partial, error))) => {
            Metrics::add(&state.metrics.ingest_failures, 1);
            tracing::error!(
                stored_before_failure = partial.accepted,
                "ingest failed: {error}"
            );
            message_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error ingesting connection events.",
                Some(&format!(
                    "{error}. No event of this request is acknowledged: send the whole request again (events already stored are recognised by their ID)."
                )),
            )
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwapRequest {
    /// An embedded plugin's name, or a file name in the server's plugin directory.
    plugin: String,
    /// The plugin's settings, `{"KEY": "VALUE", …}`; none when absent (the settings of the
    /// running plugin are not carried over).
    #[serde(default)]
    settings: std::collections::BTreeMap<String, String>,
}

/// `POST /api/v2/connectionlog/plugin` with `{"plugin":"…"}`: swaps the running plugin.
pub async fn swap(
    State(state): Shared,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let bytes = match owner_request_body(&state, &headers, query.as_deref(), body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let request: SwapRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return message_response(
                StatusCode::BAD_REQUEST,
                "Request body must be valid JSON.",
                Some(&format!(
                    "{e} (expected {{\"plugin\": \"reference\"}}, {{\"plugin\": \"privacy\", \"settings\": {{\"ip\": \"truncate\"}}}} or {{\"plugin\": \"<file name in the plugin directory>\"}})"
                )),
            );
        }
    };
    const NOT_SWAPPED: &str = "The plugin was not swapped; the running plugin keeps serving.";
    let source = match PluginSource::named_in(&request.plugin, state.plugin_dir.as_deref()) {
        Ok(source) => source,
        Err(reason) => {
            return message_response(StatusCode::BAD_REQUEST, NOT_SWAPPED, Some(&reason));
        }
    };
    let spec = PluginSpec {
        source,
        settings: request
            .settings
            .into_iter()
            .map(|(key, value)| Setting { key, value })
            .collect(),
    };
    let shared = state.service.clone();
    let outcome = tokio::task::spawn_blocking(move || swap_plugin(&shared, &spec)).await;
    match outcome {
        Ok(Ok(report)) => {
            let body = serde_json::json!({
                "previous": report.previous,
                "current": report.current,
                "events_replayed": report.events_replayed,
                "events_caught_up": report.events_caught_up,
                "elapsed_ms": report.elapsed.as_secs_f64() * 1e3,
            });
            json_response(StatusCode::OK, body.to_string())
        }
        Ok(Err(ServiceError::Plugin(
            e @ (PluginError::Unreadable { .. }
            | PluginError::NotAPlugin { .. }
            | PluginError::IncompatibleContract { .. }
            | PluginError::SettingsRefused { .. }),
        ))) => message_response(StatusCode::BAD_REQUEST, NOT_SWAPPED, Some(&e.to_string())),
        Ok(Err(e)) => message_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            NOT_SWAPPED,
            Some(&e.to_string()),
        ),
        Err(e) => message_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            NOT_SWAPPED,
            Some(&format!("the swap failed: {e}")),
        ),
    }
}

/// `GET /healthz`: as Coder's.
pub async fn healthz() -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from("OK"))
        .expect("a valid response")
}

/// `GET /metrics`.
pub async fn metrics(State(state): Shared) -> Response {
    let gauges = with_service(&state.service, |service| {
        let stats = service.stats().ok()?;
        Some(ServiceGauges {
            rows: stats.rows,
            plugin_memory_bytes: stats.memory_bytes,
            plugin_linear_memory_bytes: service.plugin_linear_memory_bytes().ok()?,
            counters: service.counters(),
            bring_up_events_replayed: service.last_restore().events_replayed,
            bring_up_from_snapshot: matches!(
                service.last_restore().source,
                RestoreSource::Snapshot { .. }
            ),
        })
    })
    .await
    .ok()
    .flatten();
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .body(Body::from({
            let mut text = state.metrics.render(gauges.as_ref());
            if let Some(follow) = &state.follow {
                text.push_str(&super::metrics::render_follow(follow));
            }
            text
        }))
        .expect("a valid response")
}

/// Coder's `httpapi.RouteNotFound`.
pub async fn route_not_found() -> Response {
    message_response(StatusCode::NOT_FOUND, "Route not found.", None)
}

/// The body of a request only an owner may make, or the response refusing it.
///
/// A refused request's body is still read (and discarded, up to the body limit) before the
/// refusal is sent: answering while the client is still sending, then closing the connection
/// with its bytes unread, resets the connection, and the client sees "connection reset"
/// instead of its 401 or 403.
async fn owner_request_body(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Body,
) -> Result<axum::body::Bytes, Response> {
    if let Err(refusal) = authenticate_owner(state, headers, query) {
        discard_body(body, state.max_body_bytes).await;
        return Err(refusal);
    }
    read_body(body, state.max_body_bytes).await
}

/// Reads `body` to its end without keeping it, stopping after `limit` bytes or at the first
/// error: what is left unread then is the client's problem, as with any body over the limit.
async fn discard_body(mut body: Body, limit: usize) {
    use axum::body::HttpBody;
    let mut read = 0usize;
    while read <= limit {
        match std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |data| data.len()),
            Some(Err(_)) | None => return,
        }
    }
}

async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, Response> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        message_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body is too large or could not be read.",
            Some(&format!(
                "{e} (the limit is {limit} bytes: send fewer events per request, or raise --max-body-bytes)"
            )),
        )
    })
}

/// The query string, read as Go's `url.Values` (the first value of a key wins).
pub(super) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub(super) fn parse(query: &str) -> Self {
        Self(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Coder's `ParsePagination`: `after_id`, `limit`, `offset`, every error reported.
    pub(super) fn pagination(&self) -> Result<(u32, u32), Vec<Validation>> {
        let mut errors = Vec::new();
        if let Some(v) = self.get("after_id").filter(|v| !v.is_empty())
            && Uuid::parse_str(v).is_err()
        {
            errors.push(Validation::new(
                "after_id",
                "Query param \"after_id\" must be a valid uuid",
            ));
        }
        let mut int = |name: &str| -> u32 {
            match self.get(name).filter(|v| !v.is_empty()) {
                None => 0,
                Some(v) => match positive_int32(v) {
                    Ok(n) => n,
                    Err(e) => {
                        errors.push(Validation::new(
                            name,
                            format!(
                                "Query param {name:?} must be a valid 32-bit positive integer: {e}"
                            ),
                        ));
                        0
                    }
                },
            }
        };
        let limit = int("limit");
        let offset = int("offset");
        if errors.is_empty() {
            Ok((limit, offset))
        } else {
            Err(errors)
        }
    }
}

/// Go's `strconv.ParseInt(v, 10, 32)` then `value is negative`, with Go's error texts.
fn positive_int32(v: &str) -> Result<u32, String> {
    let syntax = || {
        format!(
            "strconv.ParseInt: parsing {}: invalid syntax",
            strconv_quote(v)
        )
    };
    let range = || {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            strconv_quote(v)
        )
    };
    let (negative, digits) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax());
    }
    let magnitude = digits.bytes().try_fold(0u64, |n, b| {
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    });
    let limit = if negative {
        1u64 << 31
    } else {
        (1u64 << 31) - 1
    };
    match magnitude {
        Some(m) if m <= limit => {
            if negative && m > 0 {
                Err("value is negative".to_owned())
            } else {
                Ok(m as u32)
            }
        }
        _ => Err(range()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_int32_as_go() {
        assert_eq!(positive_int32("0"), Ok(0));
        assert_eq!(positive_int32("+25"), Ok(25));
        assert_eq!(positive_int32("-0"), Ok(0));
        assert_eq!(positive_int32("2147483647"), Ok(2_147_483_647));
        assert_eq!(positive_int32("-1").unwrap_err(), "value is negative");
        assert_eq!(
            positive_int32("2147483648").unwrap_err(),
            "strconv.ParseInt: parsing \"2147483648\": value out of range"
        );
        assert_eq!(
            positive_int32("-2147483649").unwrap_err(),
            "strconv.ParseInt: parsing \"-2147483649\": value out of range"
        );
        assert_eq!(
            positive_int32("ten").unwrap_err(),
            "strconv.ParseInt: parsing \"ten\": invalid syntax"
        );
        assert_eq!(
            positive_int32(" 1").unwrap_err(),
            "strconv.ParseInt: parsing \" 1\": invalid syntax"
        );
    }

    #[test]
    fn pagination_errors_are_all_reported() {
        let p = QueryParams::parse("limit=-1&offset=x&q=type:ssh");
        let errors = p.pagination().unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].field, "limit");
        assert_eq!(errors[1].field, "offset");
        assert_eq!(
            QueryParams::parse("limit=&offset=").pagination(),
            Ok((0, 0))
        );
        assert_eq!(
            QueryParams::parse("limit=5&limit=x").pagination(),
            Ok((5, 0))
        );
    }
}
