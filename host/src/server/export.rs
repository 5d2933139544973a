//! `GET /api/v2/connectionlog/export?q=&format=csv|ndjson`: every row matching `q` that the
//! caller may read, as a download: byte for byte what `connlog export --format csv|ndjson`
//! writes for the same user and `q`.

use std::io::{self, Write};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::sync::mpsc;

use super::api::{INTERNAL_ERROR, reader};
use super::{AppState, invalid_parameters, invalid_query, message_response};
use crate::export::{ExportError, RowFormat, export};
use crate::model::Validation;

/// Pages written ahead of the client: the export's thread waits (without the service's
/// lock) once they are queued.
const PAGES_AHEAD: usize = 2;

/// The formats the route writes, by their `format` value; the first is the default.
const FORMATS: [(&str, RowFormat, &str); 2] = [
    ("csv", RowFormat::Csv, "text/csv; charset=utf-8"),
    ("ndjson", RowFormat::Ndjson, "application/x-ndjson"),
];

type Outcome = Result<Result<(), Vec<Validation>>, ExportError>;

/// `GET /api/v2/connectionlog/export`: same authentication and filter as the list.
///
/// The rows are streamed as `connlog export` pages them ([`crate::export::export`]): the
/// service is locked for one page of 1,000 rows at a time, on a blocking thread that waits
/// for the client, without the lock, once two pages are queued. So ingest and queries go on
/// during a long download, and a row stored meanwhile is either written once (it sorts
/// below the rows already sent) or not at all, never twice. A `q` that is invalid is
/// Coder's 400 before anything is sent; a failure after the first bytes ends the
/// response without its final chunk, so the client sees a truncated download, not a
/// short file.
pub async fn export_rows(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (caller, params) = match reader(&state, &headers, query.as_deref()) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Some((extension, format, content_type)) = chosen_format(params.get("format")) else {
        let names: Vec<&str> = FORMATS.iter().map(|(name, ..)| *name).collect();
        return invalid_parameters(&[Validation::new(
            "format",
            format!(
                "Query param \"format\" must be one of: {}",
                names.join(", ")
            ),
        )]);
    };
    let q = params.get("q").unwrap_or_default().to_owned();

    let (pages, mut received) = mpsc::channel(PAGES_AHEAD);
    let service = state.service.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut format = format;
        export(
            &service,
            &caller.actor,
            &q,
            &mut format,
            &mut PageSender(pages),
        )
    });
    // Nothing is sent before the first page, so that an invalid q is still a 400.
    let Some(first) = received.recv().await else {
        return match task.await {
            Ok(Ok(Ok(()))) => download(extension, content_type, Body::empty()),
            outcome => failure_response(outcome),
        };
    };
    let rest = futures_util::stream::unfold(Some((received, task)), |state| async move {
        let (mut received, task) = state?;
        match received.recv().await {
            Some(page) => Some((Ok(page), Some((received, task)))),
            None => end_of_stream(task.await).map(|e| (Err(e), None)),
        }
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::iter([Ok::<_, io::Error>(first)]),
        rest,
    );
    download(extension, content_type, Body::from_stream(body))
}

/// `format`'s entry in [`FORMATS`]; absent or empty is the first (CSV).
fn chosen_format(asked: Option<&str>) -> Option<(&'static str, RowFormat, &'static str)> {
    match asked.filter(|f| !f.is_empty()) {
        None => Some(FORMATS[0]),
        Some(asked) => FORMATS.into_iter().find(|(name, ..)| *name == asked),
    }
}

/// A 200 whose body is a file to save: `connection-log-<UTC time>.<extension>`.
fn download(extension: &str, content_type: &'static str, body: Body) -> Response {
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .expect("a fixed format");
    let disposition = format!("attachment; filename=\"connection-log-{stamp}.{extension}\"");
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&disposition).expect("ASCII"),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(body)
        .expect("a valid response")
}

/// The response for an export that ended before writing anything, other than a success.
fn failure_response(outcome: Result<Outcome, tokio::task::JoinError>) -> Response {
    let detail = match outcome {
        Ok(Ok(Err(validations))) => return invalid_query(&validations),
        Ok(Ok(Ok(()))) => unreachable!("a success is a download"),
        Ok(Err(e)) => e.to_string(),
        Err(e) => format!("the export failed: {e}"),
    };
    tracing::error!("export failed: {detail}");
    message_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        INTERNAL_ERROR,
        Some(&detail),
    )
}

/// How a stream that already sent bytes ends: cleanly (`None`), or with an error that
/// makes the server cut the response short.
fn end_of_stream(outcome: Result<Outcome, tokio::task::JoinError>) -> Option<io::Error> {
    let error = match outcome {
        Ok(Ok(_)) => return None,
        Ok(Err(e)) => io::Error::other(e.to_string()),
        Err(e) => io::Error::other(format!("the export failed: {e}")),
    };
    tracing::error!("export cut short: {error}");
    Some(error)
}

/// The export's output: each page written becomes one chunk of the response body. A write
/// waits while [`PAGES_AHEAD`] pages are queued, and fails once the client is gone.
struct PageSender(mpsc::Sender<Bytes>);

impl Write for PageSender {
    fn write(&mut self, page: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(page))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(page.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
