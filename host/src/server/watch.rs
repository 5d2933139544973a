//! `GET /api/v2/connectionlog/watch?q=…`: the live feed. Rows are streamed as journal
//! events create or complete them, filtered and authorized as the list is.
//!
//! A **position** is the journal `seq` of the event that created or completed a row; a row
//! may come twice (created, then completed), each time as it is when sent. Two formats:
//!
//! - **Server-Sent Events** (the default, `text/event-stream`): `retry: 2000`, then
//!   `id: <start>` (so that an `EventSource` resumes from the start even before its first
//!   row), then per row `id: <position>\nevent: connection_log\ndata: <row JSON>\n\n`; when
//!   events were read but none matched, `id: <position>\n\n`, which moves the client's
//!   `Last-Event-ID` without dispatching anything; `: keep-alive` every heartbeat.
//! - **NDJSON** (`Accept: application/x-ndjson` or `?format=ndjson`, which wins over
//!   `Accept`): `{"position":N}` first, then `{"position":N,"connection_log":{…}}` per row,
//!   and `{"position":N}` for progress and as the heartbeat.
//!
//! **Resuming**: from the `Last-Event-ID` header, else `?after=N`, else the current head
//! (only rows changed from now on). The header wins because a browser's `EventSource`
//! reconnects to the URL it was given, `?after` included, with the header saying how far
//! it got. The client asks for what comes after its position, so a reconnect neither skips
//! nor repeats a message. A position past the head was not given by this store: 400.
//!
//! **Pull-based**: the next events are read (on a blocking thread, under the service's
//! lock, at most [`MAX_EVENTS`] at a time) only when the server has written the previous
//! chunk to the connection, so a slow client costs no memory and never slows ingest. A
//! client may start behind and catch up; once its lag (head − position) is more than
//! `--watch-max-lag` above the smallest lag it had on this connection, it gets
//! `event: disconnect` with `{"reason":"lag","position":N}` (NDJSON:
//! `{"disconnect":"lag","position":N}`) and the stream ends; it resumes from N. The same
//! message with `"shutdown"` ends every stream when the server stops, and with `"error"`
//! when a read fails (the client reconnects and gets the failure's status).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use tokio::sync::watch;

use super::api::{QueryParams, reader, service_error, with_service};
use super::metrics::Metrics;
use super::{AppState, invalid_parameters, invalid_query, message_response};
use crate::model::{Actor, QueryError, Validation};
use crate::service::{FeedChunk, ServiceError};

/// Journal events read per chunk: bounds how long one read holds the service.
pub const MAX_EVENTS: usize = 1000;

/// `serve --watch-heartbeat`'s default.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// `serve --watch-max-lag`'s default, in events.
pub const DEFAULT_MAX_LAG: u64 = 100_000;

/// The live feed's settings, and the signal that ends every stream when the server stops.
#[derive(Clone)]
pub struct WatchSettings {
    /// How long a caught-up stream stays silent before a keep-alive.
    pub heartbeat: Duration,
    /// How many events further behind than its best a client may fall before it is
    /// disconnected.
    pub max_lag: u64,
    /// Becomes `true` when the server stops.
    pub stopping: watch::Receiver<bool>,
}

/// The stream's formats, in the order of [`super::metrics::WATCH_FORMATS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Sse,
    Ndjson,
}

/// Why a stream ended, in the order of [`super::metrics::WATCH_END_REASONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Lag,
    ClientGone,
    Shutdown,
    Error,
}

impl End {
    /// The `reason` sent to the client (and the metric's label).
    pub fn reason(self) -> &'static str {
        super::metrics::WATCH_END_REASONS[self as usize]
    }
}

/// `GET /api/v2/connectionlog/watch`.
pub async fn watch(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (caller, params) = match reader(&state, &headers, query.as_deref()) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Options { format, resume } = match Options::of(&params, &headers) {
        Ok(options) => options,
        Err(validations) => return invalid_parameters(&validations),
    };
    let q = params.get("q").unwrap_or_default().to_owned();

    // Checks q and reads the head in one go, so no event falls between the two.
    let (actor, checked_q) = (caller.actor.clone(), q.clone());
    let checked = with_service(&state.service, move |service| {
        let head = service.head();
        let now = *head.borrow();
        service
            .feed(&actor, &checked_q, 0, 0)
            .map(|r| r.map(|_| (head, now)))
    })
    .await;
    let (head, now) = match checked {
        Err(response) => return response,
        Ok(Ok(Ok(head))) => head,
        Ok(Ok(Err(QueryError::InvalidQuery(validations)))) => return invalid_query(&validations),
        Ok(Ok(Err(QueryError::Storage(e)))) => {
            return service_error(&ServiceError::Storage(e));
        }
        Ok(Err(ServiceError::Unsupported(why))) => {
            return message_response(
                StatusCode::NOT_IMPLEMENTED,
                "The live connection log is not available with the running plugin.",
                Some(&why),
            );
        }
        Ok(Err(e)) => return service_error(&e),
    };
    let start = match resume {
        None => now,
        Some(Resume { position, .. }) if position <= now => position,
        Some(Resume { field, position }) => {
            return invalid_parameters(&[Validation::new(
                field,
                format!(
                    "{field} {position} is past the newest event ({now}): it was not given by this server's store"
                ),
            )]);
        }
    };

    let watcher = Watcher::new(state.clone(), caller.actor, q, format, start, head);
    let body = futures_util::stream::unfold(watcher, |mut watcher| async move {
        let chunk = watcher.next_chunk().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), watcher))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, format.content_type())
        .header(header::CACHE_CONTROL, "no-cache")
        // Proxies such as nginx would otherwise hold the stream back.
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(body))
        .expect("a valid response")
}

/// What a request asks for besides its filter.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    format: Format,
    resume: Option<Resume>,
}

/// Where a client resumes, and the parameter that said so.
#[derive(Debug, PartialEq, Eq)]
struct Resume {
    field: &'static str,
    position: i64,
}

impl Options {
    /// Every bad value is reported, by its parameter's name.
    fn of(params: &QueryParams, headers: &HeaderMap) -> Result<Self, Vec<Validation>> {
        let mut errors = Vec::new();
        let format = match params.get("format").filter(|f| !f.is_empty()) {
            Some("sse") => Format::Sse,
            Some("ndjson") => Format::Ndjson,
            Some(_) => {
                errors.push(Validation::new(
                    "format",
                    "Query param \"format\" must be one of: sse, ndjson",
                ));
                Format::Sse
            }
            None if accepts_ndjson(headers) => Format::Ndjson,
            None => Format::Sse,
        };
        let mut resume = |field: &'static str, value: &str| match value.trim().parse::<i64>() {
            Ok(position) if position >= 0 => Some(Resume { field, position }),
            _ => {
                errors.push(Validation::new(
                    field,
                    format!(
                        "{field} must be a position: a whole number, 0 or more (got {value:?})"
                    ),
                ));
                None
            }
        };
        let last_event_id = match headers.get("last-event-id").map(|v| v.to_str()) {
            None => None,
            Some(Ok(v)) if v.trim().is_empty() => None,
            Some(Ok(v)) => resume("Last-Event-ID", v),
            Some(Err(_)) => resume("Last-Event-ID", "<not text>"),
        };
        let after = params
            .get("after")
            .filter(|v| !v.is_empty())
            .and_then(|v| resume("after", v));
        if errors.is_empty() {
            Ok(Self {
                format,
                resume: last_event_id.or(after),
            })
        } else {
            Err(errors)
        }
    }
}

fn accepts_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| media.split(';').next().unwrap_or("").trim() == "application/x-ndjson")
}

/// One client's stream: where it is, and what it has been sent.
struct Watcher {
    state: Arc<AppState>,
    actor: Actor,
    q: String,
    format: Format,
    /// Every event up to here has been sent (or did not concern this client).
    position: i64,
    head: watch::Receiver<i64>,
    stopping: watch::Receiver<bool>,
    /// The smallest lag (head − position) this connection has had.
    best_lag: i64,
    started: bool,
    /// Why the stream ended itself; a stream dropped without one lost its client.
    ended: Option<End>,
}

impl Watcher {
    fn new(
        state: Arc<AppState>,
        actor: Actor,
        q: String,
        format: Format,
        position: i64,
        head: watch::Receiver<i64>,
    ) -> Self {
        state.metrics.watch.opened(format);
        let stopping = state.watch.stopping.clone();
        let best_lag = *head.borrow() - position;
        Self {
            state,
            actor,
            q,
            format,
            position,
            head,
            stopping,
            best_lag,
            started: false,
            ended: None,
        }
    }

    /// The next bytes to send, once the client has taken the previous ones; `None` ends.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.ended.is_some() {
            return None;
        }
        if !self.started {
            self.started = true;
            return Some(self.format.preamble(self.position));
        }
        let max_lag = i64::try_from(self.state.watch.max_lag).unwrap_or(i64::MAX);
        loop {
            if *self.stopping.borrow() {
                return Some(self.end(End::Shutdown));
            }
            let head = *self.head.borrow_and_update();
            let lag = head - self.position;
            if lag > 0 {
                if lag > self.best_lag.saturating_add(max_lag) {
                    return Some(self.end(End::Lag));
                }
                return Some(match self.read().await {
                    Ok(chunk) => self.send(chunk),
                    Err(e) => {
                        tracing::error!(position = self.position, "the live feed failed: {e}");
                        self.end(End::Error)
                    }
                });
            }
            self.best_lag = 0;
            let heartbeat = self.state.watch.heartbeat;
            tokio::select! {
                changed = self.head.changed() => if changed.is_err() {
                    // The service is gone: the server is stopping.
                    return Some(self.end(End::Shutdown));
                },
                _ = self.stopping.changed() => {}
                () = tokio::time::sleep(heartbeat) => {
                    return Some(self.format.heartbeat(self.position));
                }
            }
        }
    }

    /// Up to [`MAX_EVENTS`] events after the client's position.
    async fn read(&self) -> Result<FeedChunk, String> {
        let (actor, q, after) = (self.actor.clone(), self.q.clone(), self.position);
        match with_service(&self.state.service, move |service| {
            service.feed(&actor, &q, after, MAX_EVENTS)
        })
        .await
        {
            Ok(Ok(Ok(chunk))) => Ok(chunk),
            Ok(Ok(Err(QueryError::InvalidQuery(v)))) => Err(format!(
                "the running plugin refuses the filter: {}",
                v.iter()
                    .map(|v| format!("{}: {}", v.field, v.detail))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            Ok(Ok(Err(QueryError::Storage(e)))) => Err(format!("storage error: {e}")),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the read panicked".into()),
        }
    }

    /// A chunk's messages, then its progress when it read past its last message.
    fn send(&mut self, chunk: FeedChunk) -> Bytes {
        let mut out = String::new();
        for message in &chunk.messages {
            self.format
                .row(&mut out, message.position, &message.row_json);
        }
        Metrics::add(
            &self.state.metrics.watch.messages_sent[self.format as usize],
            chunk.messages.len() as u64,
        );
        let last_sent = chunk.messages.last().map_or(self.position, |m| m.position);
        self.position = self.position.max(chunk.scanned_to);
        if self.position > last_sent {
            self.format.progress(&mut out, self.position);
        }
        self.best_lag = self.best_lag.min(*self.head.borrow() - self.position);
        Bytes::from(out)
    }

    /// The final message: why the stream ends, and where to resume.
    fn end(&mut self, why: End) -> Bytes {
        self.ended = Some(why);
        self.format.disconnect(why, self.position)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let metrics = &self.state.metrics.watch;
        metrics.closed(self.format, self.ended.unwrap_or(End::ClientGone));
    }
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Sse => "text/event-stream",
            Format::Ndjson => "application/x-ndjson",
        }
    }

    /// What starts a stream: the start position, and for SSE the reconnection delay.
    fn preamble(self, position: i64) -> Bytes {
        Bytes::from(match self {
            Format::Sse => format!("retry: 2000\n\nid: {position}\n\n"),
            Format::Ndjson => format!("{{\"position\":{position}}}\n"),
        })
    }

    fn row(self, out: &mut String, position: i64, row_json: &str) {
        use std::fmt::Write as _;
        let _ = match self {
            Format::Sse => write!(
                out,
                "id: {position}\nevent: connection_log\ndata: {row_json}\n\n"
            ),
            Format::Ndjson => writeln!(
                out,
                "{{\"position\":{position},\"connection_log\":{row_json}}}"
            ),
        };
    }

    /// Moves the client's position without a row.
    fn progress(self, out: &mut String, position: i64) {
        use std::fmt::Write as _;
        let _ = match self {
            Format::Sse => write!(out, "id: {position}\n\n"),
            Format::Ndjson => writeln!(out, "{{\"position\":{position}}}"),
        };
    }

    fn heartbeat(self, position: i64) -> Bytes {
        match self {
            Format::Sse => Bytes::from_static(b": keep-alive\n\n"),
            Format::Ndjson => Bytes::from(format!("{{\"position\":{position}}}\n")),
        }
    }

    fn disconnect(self, why: End, position: i64) -> Bytes {
        let reason = why.reason();
        Bytes::from(match self {
            Format::Sse => format!(
                "event: disconnect\ndata: {{\"reason\":\"{reason}\",\"position\":{position}}}\n\n"
            ),
            Format::Ndjson => {
                format!("{{\"disconnect\":\"{reason}\",\"position\":{position}}}\n")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::metrics::{WATCH_END_REASONS, WATCH_FORMATS};

    #[test]
    fn labels_follow_the_enums() {
        assert_eq!(WATCH_FORMATS[Format::Sse as usize], "sse");
        assert_eq!(WATCH_FORMATS[Format::Ndjson as usize], "ndjson");
        assert_eq!(End::Lag.reason(), "lag");
        assert_eq!(End::ClientGone.reason(), "client_gone");
        assert_eq!(End::Shutdown.reason(), "shutdown");
        assert_eq!(End::Error.reason(), "error");
        assert_eq!(WATCH_END_REASONS.len(), 4);
    }

    fn options(query: &str, headers: &[(&str, &str)]) -> Result<Options, Vec<Validation>> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        Options::of(&QueryParams::parse(query), &map)
    }

    fn ok(format: Format, resume: Option<(&'static str, i64)>) -> Result<Options, Vec<Validation>> {
        let resume = resume.map(|(field, position)| Resume { field, position });
        Ok(Options { format, resume })
    }

    #[test]
    fn last_event_id_wins_over_after_and_format_over_accept() {
        assert_eq!(options("", &[]), ok(Format::Sse, None));
        assert_eq!(
            options("after=5", &[("last-event-id", "9")]),
            ok(Format::Sse, Some(("Last-Event-ID", 9)))
        );
        assert_eq!(options("after=5", &[]), ok(Format::Sse, Some(("after", 5))));
        assert_eq!(
            options("", &[("accept", "text/plain, application/x-ndjson;q=0.9")]),
            ok(Format::Ndjson, None)
        );
        assert_eq!(
            options("format=sse", &[("accept", "application/x-ndjson")]),
            ok(Format::Sse, None)
        );
        let errors = options("after=-1&format=xml", &[("last-event-id", "x")]).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["format", "Last-Event-ID", "after"]);
    }

    #[test]
    fn message_shapes() {
        let mut out = String::new();
        Format::Sse.row(&mut out, 7, "{}");
        Format::Sse.progress(&mut out, 9);
        assert_eq!(out, "id: 7\nevent: connection_log\ndata: {}\n\nid: 9\n\n");
        let mut out = String::new();
        Format::Ndjson.row(&mut out, 7, "{}");
        Format::Ndjson.progress(&mut out, 9);
        assert_eq!(
            out,
            "{\"position\":7,\"connection_log\":{}}\n{\"position\":9}\n"
        );
        assert_eq!(
            Format::Sse.disconnect(End::Lag, 3),
            "event: disconnect\ndata: {\"reason\":\"lag\",\"position\":3}\n\n"
        );
        assert_eq!(
            Format::Ndjson.disconnect(End::Shutdown, 3),
            "{\"disconnect\":\"shutdown\",\"position\":3}\n"
        );
    }
}
