//! Bulk object transfer: many objects in one streamed request (format in `lode_proto::transfer`).
//!
//! Authorization is the object routes': write role to upload, read role to fetch. Every object is
//! verified against its name by the store before it is kept, and a `.dir` manifest is accepted
//! only when the project holds every entry it lists, exactly as for single uploads.
//!
//! Small objects are staged in memory-sized batches and made durable with one filesystem flush
//! per batch rather than an fsync each; their index rows are written only after that flush, so a
//! crash leaves whole blobs and never a reference to a missing one.

use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::BytesMut;
use futures::stream::BoxStream;
use futures::StreamExt;
use lode_proto::transfer::{
    check_magic, Frame, PackFetchRequest, PackUploadQuery, PackUploadResponse, FRAME_HEADER_LEN,
    MAGIC, MAX_FETCH_OBJECTS, PACK_CONTENT_TYPE,
};
use lode_proto::{HashKind, ObjectId, Role};
use tokio::sync::mpsc;

use super::Caller;
use crate::app::SharedState;
use crate::db::{now, ObjectRef};
use crate::error::{ApiError, ApiResult};
use crate::manifest;
use crate::store::{BlobKey, SmallRead, Staged, StoreError};

/// Objects up to this size are held in memory and staged in batches; larger ones stream.
const SMALL: u64 = 1 << 20;
/// A batch is flushed to disk and the index at this many objects or bytes.
const BATCH_OBJECTS: usize = 4096;
const BATCH_BYTES: usize = 32 << 20;
/// Request body limit of the JSON fetch and gc calls (a keep-set of millions of ids is large).
pub const JSON_LIMIT: usize = 512 << 20;

pub fn router() -> Router<SharedState> {
    Router::new()
        .route(
            "/projects/{p}/packs",
            post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/projects/{p}/packs/fetch",
            post(fetch).layer(DefaultBodyLimit::max(JSON_LIMIT)),
        )
        .route(
            "/projects/{p}/gc",
            post(super::gc::collect).layer(DefaultBodyLimit::max(JSON_LIMIT)),
        )
}

type DataStream = BoxStream<'static, Result<Bytes, axum::Error>>;

/// Reads exact byte counts off a request body.
struct BodyReader {
    body: DataStream,
    buf: BytesMut,
    received: u64,
}

impl BodyReader {
    /// Fills the buffer to at least `n` bytes; false when the body ended first.
    async fn fill(&mut self, n: usize) -> Result<bool, StoreError> {
        while self.buf.len() < n {
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.received += chunk.len() as u64;
                    self.buf.extend_from_slice(&chunk);
                }
                Some(Err(e)) => return Err(StoreError::Body(std::io::Error::other(e))),
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    async fn exact(&mut self, n: usize) -> Result<Option<Bytes>, StoreError> {
        if !self.fill(n).await? {
            return Ok(None);
        }
        Ok(Some(self.buf.split_to(n).freeze()))
    }
}

fn truncated() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "incomplete_body",
        "pack ended before its end marker; the unfinished object was discarded",
    )
}

/// Objects received but not yet durable or indexed.
#[derive(Default)]
struct Batch {
    items: Vec<(BlobKey, Bytes)>,
    bytes: usize,
}

struct Upload {
    state: SharedState,
    project_id: i64,
    kind: HashKind,
    totals: PackUploadResponse,
}

impl Upload {
    /// Verifies, stores and indexes a batch. Objects before a bad one are kept; the bad one's
    /// error is returned after they are.
    async fn flush(&mut self, batch: &mut Batch) -> ApiResult<()> {
        if batch.items.is_empty() {
            return Ok(());
        }
        let items = std::mem::take(&mut batch.items);
        batch.bytes = 0;
        let state = self.state.clone();
        let blobs: Vec<_> = items.iter().map(|(key, _)| (key.kind, key.oid)).collect();
        let _guard = state.db.hold_for_upload(&blobs).await?;
        let store = self.state.store.clone();
        let (staged, failure) = tokio::task::spawn_blocking(move || {
            let mut staged: Vec<Staged> = Vec::with_capacity(items.len());
            for (key, data) in &items {
                match store.stage_small_blocking(*key, data) {
                    Ok(s) => staged.push(s),
                    Err(e) => return (staged, Some(e)),
                }
            }
            (staged, None)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
        let refs: Vec<ObjectRef> = staged
            .iter()
            .map(|s| ObjectRef {
                project_id: self.project_id,
                kind: s.key.kind,
                oid: s.key.oid,
                size: s.size,
                created_at: now(),
            })
            .collect();
        let store = self.state.store.clone();
        tokio::task::spawn_blocking(move || store.commit_many_blocking(staged))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
        self.index(refs).await?;
        match failure {
            Some(e) => {
                self.state.metrics.upload_failed(reason(&e));
                Err(e.into())
            }
            None => Ok(()),
        }
    }

    async fn index(&mut self, refs: Vec<ObjectRef>) -> ApiResult<()> {
        let n = refs.len() as u64;
        let bytes: u64 = refs.iter().map(|r| r.size).sum();
        let added = self.state.db.add_objects(&refs).await?;
        for r in &refs {
            self.state.held.held(r.project_id, r.kind, &r.oid, r.size);
        }
        self.totals.stored += added;
        self.totals.existing += n - added;
        self.totals.bytes += bytes;
        self.state
            .metrics
            .objects_stored
            .fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// The `.dir` rule of single uploads: every listed entry must already be held.
    async fn check_manifest(&self, oid: &ObjectId, digests: &[[u8; 16]]) -> ApiResult<()> {
        let missing = self
            .state
            .db
            .missing_digests(self.project_id, self.kind, digests)
            .await?;
        if missing.is_empty() {
            return Ok(());
        }
        self.state.metrics.upload_failed("manifest_entries_missing");
        self.state
            .metrics
            .manifests_refused
            .fetch_add(1, Ordering::Relaxed);
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "missing_entries",
            format!(
                "directory manifest {oid} lists {} object(s) the project does not hold (first: {}); upload them before the manifest",
                missing.len(),
                missing[0]
            ),
        ))
    }

    /// Streams one large object straight into the store.
    async fn large(&mut self, reader: &mut BodyReader, key: BlobKey, len: u64) -> ApiResult<()> {
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed();
        let state = self.state.clone();
        let _guard = state.db.hold_for_upload(&[(key.kind, key.oid)]).await?;
        let store = self.state.store.clone();
        let staging = tokio::spawn(async move { store.stage(key, stream).await });
        let mut left = len;
        let mut ended_early = false;
        while left > 0 {
            if reader.buf.is_empty() && !reader.fill(1).await? {
                ended_early = true;
                break;
            }
            let take = (reader.buf.len() as u64).min(left) as usize;
            let piece = reader.buf.split_to(take).freeze();
            left -= take as u64;
            if tx.send(Ok(piece)).await.is_err() {
                break;
            }
        }
        if ended_early {
            let _ = tx
                .send(Err(std::io::Error::other("pack ended inside an object")))
                .await;
        }
        drop(tx);
        let staged = staging
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if ended_early {
            return Err(truncated());
        }
        let staged = staged.inspect_err(|e| self.state.metrics.upload_failed(reason(e)))?;
        if key.oid.is_dir() {
            let store = self.state.store.clone();
            let (staged, digests) = tokio::task::spawn_blocking(move || {
                let d = store
                    .staged_reader(&staged)
                    .map_err(ApiError::from)
                    .and_then(|r| {
                        manifest::entry_digests(r).map_err(|e| invalid_manifest(&key.oid, e))
                    });
                (staged, d)
            })
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
            self.check_manifest(&key.oid, &digests?).await?;
            self.state.store.commit(staged).await?;
        } else {
            self.state.store.commit(staged).await?;
        }
        self.index(vec![ObjectRef {
            project_id: self.project_id,
            kind: key.kind,
            oid: key.oid,
            size: len,
            created_at: now(),
        }])
        .await
    }
}

fn invalid_manifest(oid: &ObjectId, e: manifest::ManifestError) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_manifest",
        format!("{oid}: {e}"),
    )
}

fn reason(e: &StoreError) -> &'static str {
    match e {
        StoreError::HashMismatch { .. } => "hash_mismatch",
        StoreError::TooLarge(..) => "too_large",
        StoreError::Body(_) => "incomplete_body",
        StoreError::NoSpace(_) => "no_space",
        StoreError::Io { .. } => "io",
    }
}

async fn upload(
    State(state): State<SharedState>,
    Caller(principal): Caller,
    Path(project): Path<String>,
    Query(q): Query<PackUploadQuery>,
    body: Body,
) -> ApiResult<Json<PackUploadResponse>> {
    let project_id = state
        .project_access(&principal, &project, Role::Write)
        .await?;
    let mut reader = BodyReader {
        body: body.into_data_stream().boxed(),
        buf: BytesMut::new(),
        received: 0,
    };
    let mut up = Upload {
        state: state.clone(),
        project_id,
        kind: q.kind,
        totals: PackUploadResponse::default(),
    };
    let result = receive(&mut up, &mut reader).await;
    state
        .metrics
        .bytes_in
        .fetch_add(reader.received, Ordering::Relaxed);
    let t = &up.totals;
    if t.stored + t.existing > 0 {
        state
            .audit
            .record(
                principal.actor(),
                "pack.write",
                Some(&project),
                Some(format!(
                    "{} objects of kind {}",
                    t.stored + t.existing,
                    q.kind
                )),
                Some(format!(
                    "{} new, {} existing, {} bytes",
                    t.stored, t.existing, t.bytes
                )),
            )
            .await;
    }
    result?;
    Ok(Json(up.totals))
}

async fn receive(up: &mut Upload, reader: &mut BodyReader) -> ApiResult<()> {
    let magic = reader.exact(MAGIC.len()).await?.ok_or_else(truncated)?;
    let mut m = [0u8; 8];
    m.copy_from_slice(&magic);
    check_magic(&m).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let max = up.state.config.max_object_size;
    let mut batch = Batch::default();
    loop {
        let Some(h) = reader.exact(FRAME_HEADER_LEN).await? else {
            up.flush(&mut batch).await?;
            return Err(truncated());
        };
        let mut header = [0u8; FRAME_HEADER_LEN];
        header.copy_from_slice(&h);
        let frame = match Frame::decode(&header) {
            Ok(f) => f,
            Err(e) => {
                up.flush(&mut batch).await?;
                return Err(ApiError::bad_request(e.to_string()));
            }
        };
        let (oid, len) = match frame {
            Frame::End => break,
            Frame::Object { oid, len } => (oid, len),
        };
        let key = BlobKey { kind: up.kind, oid };
        if len > max {
            up.flush(&mut batch).await?;
            return Err(StoreError::TooLarge(key, max).into());
        }
        if len > SMALL {
            up.flush(&mut batch).await?;
            up.large(reader, key, len).await?;
            continue;
        }
        let Some(data) = reader.exact(len as usize).await? else {
            up.flush(&mut batch).await?;
            return Err(truncated());
        };
        if oid.is_dir() {
            // Entries earlier in this pack count, so they must be indexed before the check.
            up.flush(&mut batch).await?;
            let digests = manifest::entry_digests(&data[..]).map_err(|e| {
                up.state.metrics.upload_failed("invalid_manifest");
                invalid_manifest(&oid, e)
            })?;
            up.check_manifest(&oid, &digests).await?;
        }
        batch.bytes += data.len();
        batch.items.push((key, data));
        if batch.items.len() >= BATCH_OBJECTS || batch.bytes >= BATCH_BYTES {
            up.flush(&mut batch).await?;
        }
    }
    up.flush(&mut batch).await?;
    Ok(())
}

async fn fetch(
    State(state): State<SharedState>,
    Caller(principal): Caller,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let project_id = state
        .project_access(&principal, &project, Role::Read)
        .await?;
    let req: PackFetchRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON request body: {e}")))?;
    if req.oids.len() > MAX_FETCH_OBJECTS {
        return Err(ApiError::bad_request(format!(
            "{} objects in one fetch; the limit is {MAX_FETCH_OBJECTS}",
            req.oids.len()
        )));
    }
    let missing = state
        .db
        .missing_objects(project_id, req.kind, &req.oids)
        .await?;
    if let Some(first) = missing.first() {
        return Err(ApiError::not_found(format!(
            "project '{project}' does not hold {first} ({} of the requested objects are missing)",
            missing.len()
        )));
    }
    state
        .audit
        .record(
            principal.actor(),
            "pack.read",
            Some(&project),
            Some(format!("{} objects of kind {}", req.oids.len(), req.kind)),
            None,
        )
        .await;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::spawn(produce(state.clone(), req.kind, req.oids, tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, PACK_CONTENT_TYPE)
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(e.to_string()))
        .map(IntoResponse::into_response)
}

/// Objects read per blocking step when writing a fetch answer.
const READ_GROUP: usize = 256;
/// Pieces of the answer are sent once they reach this size.
const SEND_AT: usize = 256 * 1024;

/// Writes the pack answer. A failure part-way ends the stream with an error, which the client
/// sees as a truncated pack and discards the unfinished object.
async fn produce(
    state: SharedState,
    kind: HashKind,
    oids: Vec<ObjectId>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut out = BytesMut::with_capacity(SEND_AT * 2);
    out.extend_from_slice(MAGIC);
    let mut sent: u64 = 0;
    for group in oids.chunks(READ_GROUP) {
        let store = state.store.clone();
        let keys: Vec<BlobKey> = group
            .iter()
            .map(|oid| BlobKey { kind, oid: *oid })
            .collect();
        let read = tokio::task::spawn_blocking(move || {
            keys.iter()
                .map(|k| (*k, store.read_small_blocking(*k, SMALL)))
                .collect::<Vec<_>>()
        })
        .await;
        let Ok(read) = read else {
            let _ = tx
                .send(Err(std::io::Error::other("read task failed")))
                .await;
            return;
        };
        for (key, r) in read {
            let fail = |msg: String| std::io::Error::other(msg);
            match r {
                Ok(Some(SmallRead::Bytes(b))) => {
                    out.extend_from_slice(
                        &Frame::Object {
                            oid: key.oid,
                            len: b.len() as u64,
                        }
                        .encode(),
                    );
                    out.extend_from_slice(&b);
                }
                Ok(Some(SmallRead::TooLarge(size))) => {
                    out.extend_from_slice(
                        &Frame::Object {
                            oid: key.oid,
                            len: size,
                        }
                        .encode(),
                    );
                    sent += out.len() as u64;
                    if tx.send(Ok(out.split().freeze())).await.is_err() {
                        return;
                    }
                    let opened = match state.store.open(key).await {
                        Ok(Some(blob)) => blob.range(0, size).await,
                        Ok(None) => {
                            let _ = tx.send(Err(fail(format!("{key} vanished")))).await;
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(fail(e.to_string()))).await;
                            return;
                        }
                    };
                    let mut stream = match opened {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = tx.send(Err(fail(e.to_string()))).await;
                            return;
                        }
                    };
                    let mut got = 0u64;
                    while let Some(piece) = stream.next().await {
                        match piece {
                            Ok(p) => {
                                got += p.len() as u64;
                                sent += p.len() as u64;
                                if tx.send(Ok(p)).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                let _ = tx.send(Err(e)).await;
                                return;
                            }
                        }
                    }
                    if got != size {
                        let _ = tx.send(Err(fail(format!("{key} changed size")))).await;
                        return;
                    }
                }
                Ok(None) => {
                    tracing::error!(%key, "indexed object has no blob; run `lode-server fsck`");
                    let _ = tx.send(Err(fail(format!("{key} has no blob")))).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(fail(e.to_string()))).await;
                    return;
                }
            }
            if out.len() >= SEND_AT {
                sent += out.len() as u64;
                if tx.send(Ok(out.split().freeze())).await.is_err() {
                    return;
                }
            }
        }
        state
            .metrics
            .objects_served
            .fetch_add(group.len() as u64, Ordering::Relaxed);
    }
    out.extend_from_slice(&Frame::End.encode());
    sent += out.len() as u64;
    let _ = tx.send(Ok(out.freeze())).await;
    state.metrics.bytes_out.fetch_add(sent, Ordering::Relaxed);
}
