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
use crate::db::{now, ObjectRef};
use crate::error::{ApiError, ApiResult};
use crate::manifest;
use crate::store::{BlobKey, Staged, StoreError};

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
    // HEAD needs the size only; GET opens (and for small objects reads) the blob in one step.
    let (meta, blob) = if method == Method::HEAD {
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
    let size = meta.size;
    let tag = etag(key);
    let modified = httpdate::fmt_http_date(meta.modified);
    let mut base = Response::builder()
        .header(header::ETAG, &tag)
        .header(header::LAST_MODIFIED, &modified)
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
    let (status, start, len) = match header_str(header::RANGE).filter(|_| range_applies) {
        None => (StatusCode::OK, 0, size),
        Some(r) => match parse_range(r, size) {
            RangeAnswer::Full => (StatusCode::OK, 0, size),
            RangeAnswer::Part(a, b) => {
                base = base.header(header::CONTENT_RANGE, format!("bytes {a}-{b}/{size}"));
                (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
            }
            RangeAnswer::Unsatisfiable => {
                let mut r = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    format!("range outside the object's {size} bytes"),
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(r);
            }
        },
    };
    base = base
        .status(status)
        .header(header::CONTENT_LENGTH, len.to_string());
    if method == Method::HEAD {
        return base
            .body(Body::empty())
            .map_err(|e| ApiError::internal(e.to_string()));
    }
    let Some(blob) = blob else {
        return Err(absent());
    };
    // A small object goes out as one buffer (headers and body in one write); a large one
    // streams, counting bytes as they leave.
    let body = match blob.small_range(start, len) {
        Some(bytes) => {
            state
                .metrics
                .bytes_out
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            Body::from(bytes)
        }
        None => {
            let counter = state.clone();
            let stream = blob.range(start, len).await?.inspect(move |r| {
                if let Ok(b) = r {
                    counter
                        .metrics
                        .bytes_out
                        .fetch_add(b.len() as u64, Ordering::Relaxed);
                }
            });
            Body::from_stream(stream)
        }
    };
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

fn truncate_secs(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

fn failure_reason(e: &StoreError) -> &'static str {
    match e {
        StoreError::HashMismatch { .. } => "hash_mismatch",
        StoreError::TooLarge(..) => "too_large",
        StoreError::Body(_) => "incomplete_body",
        StoreError::NoSpace(_) => "no_space",
        StoreError::Io { .. } => "io",
    }
}

/// Refuses a `.dir` manifest unless the project holds every object it lists.
async fn check_manifest(
    state: &SharedState,
    project: &str,
    project_id: i64,
    key: BlobKey,
    staged: Staged,
) -> ApiResult<Staged> {
    let store = state.store.clone();
    let (staged, digests) = tokio::task::spawn_blocking(move || {
        let digests = store
            .staged_reader(&staged)
            .map_err(ApiError::from)
            .and_then(|r| {
                manifest::entry_digests(r).map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_manifest",
                        format!("{}: {e}", key.oid),
                    )
                })
            });
        (staged, digests)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let digests = digests.inspect_err(|_| state.metrics.upload_failed("invalid_manifest"))?;
    let missing = state
        .db
        .missing_digests(project_id, key.kind, &digests)
        .await?;
    if missing.is_empty() {
        return Ok(staged);
    }
    state.metrics.upload_failed("manifest_entries_missing");
    state
        .metrics
        .manifests_refused
        .fetch_add(1, Ordering::Relaxed);
    let first: Vec<String> = missing.iter().take(5).map(|o| o.to_string()).collect();
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "missing_entries",
        format!(
            "directory manifest {} lists {} object(s) project '{project}' does not hold ({}{}); upload them before the manifest",
            key.oid,
            missing.len(),
            first.join(", "),
            if missing.len() > first.len() { ", ..." } else { "" }
        ),
    ))
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
    let refused = |e: StoreError| -> ApiError {
        state.metrics.upload_failed(failure_reason(&e));
        if !matches!(e, StoreError::Body(_)) {
            tracing::warn!(%key, project, "upload refused: {e}");
        }
        e.into()
    };
    let guard = state.db.hold_for_upload(&[(key.kind, key.oid)]).await?;
    let size = if key.oid.is_dir() {
        let staged = state.store.stage(key, stream).await.map_err(refused)?;
        let size = staged.size;
        let staged = check_manifest(state, project, project_id, key, staged).await?;
        state.store.commit(staged).await.map_err(refused)?;
        size
    } else {
        state.store.put(key, stream).await.map_err(refused)?
    };

    let added = state
        .indexer
        .add(ObjectRef {
            project_id,
            kind: key.kind,
            oid: key.oid,
            size,
            created_at: now(),
        })
        .await?;
    state.held.held(project_id, key.kind, &key.oid, size);
    drop(guard);
    state.metrics.objects_stored.fetch_add(1, Ordering::Relaxed);
    state
        .audit
        .record(
            principal.actor(),
            "object.write",
            Some(project),
            Some(format!("{}:{}", key.kind, key.oid)),
            Some(format!("{size} bytes")),
        )
        .await;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"kind": key.kind, "oid": key.oid, "size": size})),
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
