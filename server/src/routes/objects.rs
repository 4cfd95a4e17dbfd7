//! DVC HTTP remote compatible object access: `GET|HEAD|PUT|POST` on object paths.
//!
//! Answers, chosen for what real `dvc` does with them:
//! - 400: the path is outside the grammar (checked before anything else).
//! - 401: no usable token. DVC counts any 4xx on its existence `GET` as "missing".
//! - 404: the project does not exist or the token has no grant on it, for every object alike,
//!   so a token cannot tell present from absent objects of a project it cannot see; also an
//!   object the (visible) project does not hold.
//! - 403: the token can see the project but its role is too low (a read token uploading).
//! - 409: a `.dir` manifest lists objects the project does not hold; nothing is stored.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use lode_proto::Role;
use serde_json::json;

use super::path::{self, ObjectPath};
use crate::app::SharedState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::ingest::Ingest;
use crate::store::{BlobKey, OpenBlob};

pub async fn handle(
    State(state): State<SharedState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle_inner(state, method, uri, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle_inner(
    state: SharedState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let parsed = path::parse(uri.path()).map_err(ApiError::bad_request)?;
    let needed = match method {
        Method::GET | Method::HEAD => Role::Read,
        Method::PUT | Method::POST => Role::Write,
        _ => {
            let mut r = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not supported on objects; use GET, HEAD, PUT or POST"),
            )
            .into_response();
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, PUT, POST"),
            );
            return Ok(r);
        }
    };
    let (project, key) = match parsed {
        ObjectPath::Probe => return Err(ApiError::not_found("not an object path")),
        ObjectPath::Object { project, key } => (project, key),
    };
    let principal = state.auth.authenticate(&headers).await?;
    let project_id = state.project_access(&principal, &project, needed).await?;
    if needed == Role::Write {
        upload(&state, &principal, &project, project_id, key, body).await
    } else {
        download(
            &state, &principal, &project, project_id, key, &method, &headers,
        )
        .await
    }
}

fn etag(key: BlobKey) -> String {
    format!("\"{}-{}\"", key.kind, key.oid)
}

/// Whether an `If-None-Match` / `If-Match` list names this entity tag (weak comparison).
fn etag_listed(list: &str, tag: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag)
}

enum RangeAnswer {
    Full,
    Part(u64, u64),
    Unsatisfiable,
}

/// A single `bytes=` range; several ranges or a malformed header get the whole object, which
/// HTTP allows and DVC accepts.
fn parse_range(value: &str, size: u64) -> RangeAnswer {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else {
            return RangeAnswer::Full;
        };
        if n == 0 || size == 0 {
            return RangeAnswer::Unsatisfiable;
        }
        return RangeAnswer::Part(size.saturating_sub(n), size - 1);
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeAnswer::Full;
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return RangeAnswer::Full,
        }
    };
    if start >= size {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Part(start, end.min(size - 1))
}

/// Objects at least this large are redirected under `--s3-redirect-downloads`; smaller ones are
/// cheaper to serve than a second round trip (and travel in packs anyway).
const REDIRECT_MIN: u64 = 1 << 20;
/// How long a redirect's URL stays valid: enough to start the download, short enough that a
/// URL seen by someone else is soon useless.
const REDIRECT_EXPIRY: std::time::Duration = std::time::Duration::from_secs(300);

/// A 307 to the blob store's own URL of the blob. The client repeats its GET there (with its
/// `Range`, without its credentials, which HTTP clients drop when the host changes).
async fn redirected(
    state: &SharedState,
    principal: &Principal,
    project: &str,
    key: BlobKey,
    url: &str,
) -> ApiResult<Response> {
    state
        .metrics
        .downloads_redirected
        .fetch_add(1, Ordering::Relaxed);
    state
        .audit
        .record(
            principal.actor(),
            "object.read",
            Some(project),
            Some(format!("{}:{}", key.kind, key.oid)),
            Some("redirected to the blob store".to_string()),
        )
        .await;
    Response::builder()
        .status(StatusCode::TEMPORARY_REDIRECT)
        .header(header::LOCATION, url)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))
}

async fn download(
    state: &SharedState,
    principal: &Principal,
    project: &str,
    project_id: i64,
    key: BlobKey,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let absent = || ApiError::not_found(format!("project '{project}' does not hold {}", key.oid));
    if state.held_size(project_id, key).await?.is_none() {
        return Err(absent());
    }
    // HEAD needs the size only; GET opens (and for small objects reads) the blob in one step,
    // unless it may be answered with a redirect.
    let redirect = state.config.s3_redirect_downloads;
    let (meta, blob) = if method == Method::HEAD || redirect {
        (state.store.stat(key).await?, None)
    } else {
        match state.store.open(key).await? {
            Some(b) => (Some(b.meta), Some(b)),
            None => (None, None),
        }
    };
    let Some(meta) = meta else {
        // The index says the project holds it but the blob is gone: answer "missing" so clients
        // upload it again, which repairs the store.
        tracing::error!(%key, "indexed object has no blob; run `lode-server fsck`");
        return Err(absent());
    };
    let tag = etag(key);
    let base = Response::builder()
        .header(header::ETAG, &tag)
        .header(
            header::LAST_MODIFIED,
            httpdate::fmt_http_date(meta.modified),
        )
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream");
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(im) = header_str(header::IF_MATCH) {
        if !etag_listed(im, &tag) {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "If-Match does not match this object",
            ));
        }
    }
    let not_modified = match header_str(header::IF_NONE_MATCH) {
        Some(inm) => etag_listed(inm, &tag),
        None => header_str(header::IF_MODIFIED_SINCE)
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .is_some_and(|since| truncate_secs(meta.modified) <= since),
    };
    if not_modified {
        return base
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(|e| ApiError::internal(e.to_string()));
    }
    let range_applies = header_str(header::IF_RANGE).is_none_or(|ir| ir.trim() == tag);
    let range = header_str(header::RANGE).filter(|_| range_applies);
    let Some((base, part)) = answer_range(base, range, meta.size) else {
        return Ok(unsatisfiable(meta.size));
    };
    if method == Method::HEAD {
        return base
            .body(Body::empty())
            .map_err(|e| ApiError::internal(e.to_string()));
    }
    if redirect && meta.size >= REDIRECT_MIN {
        if let Some(url) = state.store.presigned_get(key, REDIRECT_EXPIRY).await? {
            return redirected(state, principal, project, key, &url).await;
        }
    }
    let blob = match blob {
        Some(b) => b,
        None => state.store.open(key).await?.ok_or_else(absent)?,
    };
    let Part { status, start, len } = part;
    let body = body_of(state, blob, start, len)?;
    state.metrics.objects_served.fetch_add(1, Ordering::Relaxed);
    state
        .audit
        .record(
            principal.actor(),
            "object.read",
            Some(project),
            Some(format!("{}:{}", key.kind, key.oid)),
            (status == StatusCode::PARTIAL_CONTENT).then(|| format!("bytes {start}+{len}")),
        )
        .await;
    base.body(body)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The status, `Content-Range` and `Content-Length` of an answer to an optional `Range` of an
/// object of `size` bytes, and the part to send; `None` when the range is outside the object.
fn answer_range(
    base: axum::http::response::Builder,
    range: Option<&str>,
    size: u64,
) -> Option<(axum::http::response::Builder, Part)> {
    let (base, status, start, len) = match range.map(|r| parse_range(r, size)) {
        None | Some(RangeAnswer::Full) => (base, StatusCode::OK, 0, size),
        Some(RangeAnswer::Part(a, b)) => (
            base.header(header::CONTENT_RANGE, format!("bytes {a}-{b}/{size}")),
            StatusCode::PARTIAL_CONTENT,
            a,
            b - a + 1,
        ),
        Some(RangeAnswer::Unsatisfiable) => return None,
    };
    let base = base
        .status(status)
        .header(header::CONTENT_LENGTH, len.to_string());
    Some((base, Part { status, start, len }))
}

/// The answer to a range outside an object of `size` bytes.
fn unsatisfiable(size: u64) -> Response {
    let mut r = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range_not_satisfiable",
        format!("range outside the object's {size} bytes"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        r.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    r
}

/// What part of an object an answer sends.
struct Part {
    status: StatusCode,
    start: u64,
    len: u64,
}

/// The bytes to send: a small object as one buffer (headers and body in one write), a large
/// one as a stream, counting bytes as they leave.
fn body_of(state: &SharedState, blob: OpenBlob, start: u64, len: u64) -> ApiResult<Body> {
    if let Some(bytes) = blob.small_range(start, len) {
        state
            .metrics
            .bytes_out
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        return Ok(Body::from(bytes));
    }
    let counter = state.clone();
    let stream = blob.range(start, len)?.inspect(move |r| {
        if let Ok(b) = r {
            counter
                .metrics
                .bytes_out
                .fetch_add(b.len() as u64, Ordering::Relaxed);
        }
    });
    Ok(Body::from_stream(stream))
}

fn truncate_secs(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

async fn upload(
    state: &SharedState,
    principal: &Principal,
    project: &str,
    project_id: i64,
    key: BlobKey,
    body: Body,
) -> ApiResult<Response> {
    let counter = state.clone();
    let stream = body
        .into_data_stream()
        .map(move |r| match r {
            Ok(b) => {
                counter
                    .metrics
                    .bytes_in
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
                Ok(b)
            }
            Err(e) => Err(std::io::Error::other(e)),
        })
        .boxed();
    let stored = Ingest::new(state, principal, project, project_id)
        .object(key, stream)
        .await?;
    let status = if stored.added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"kind": key.kind, "oid": key.oid, "size": stored.size})),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert!(matches!(
            parse_range("bytes=0-9", 100),
            RangeAnswer::Part(0, 9)
        ));
        assert!(matches!(
            parse_range("bytes=90-", 100),
            RangeAnswer::Part(90, 99)
        ));
        assert!(matches!(
            parse_range("bytes=-10", 100),
            RangeAnswer::Part(90, 99)
        ));
        assert!(matches!(
            parse_range("bytes=0-1000", 100),
            RangeAnswer::Part(0, 99)
        ));
        assert!(matches!(
            parse_range("bytes=100-", 100),
            RangeAnswer::Unsatisfiable
        ));
        assert!(matches!(
            parse_range("bytes=0-1,5-6", 100),
            RangeAnswer::Full
        ));
        assert!(matches!(parse_range("items=0-1", 100), RangeAnswer::Full));
        assert!(matches!(parse_range("bytes=5-1", 100), RangeAnswer::Full));
    }

    #[test]
    fn etags() {
        assert!(etag_listed("\"a\", W/\"b\"", "\"b\""));
        assert!(etag_listed("*", "\"x\""));
        assert!(!etag_listed("\"a\"", "\"b\""));
    }
}
