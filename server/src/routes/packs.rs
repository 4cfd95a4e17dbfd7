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
use crate::error::{ApiError, ApiResult};
use crate::ingest::Ingest;
use crate::store::{BlobKey, SmallRead, StoreError};

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

struct Upload<'a> {
    ingest: Ingest<'a>,
    kind: HashKind,
    totals: PackUploadResponse,
}

impl Upload<'_> {
    /// Stores and indexes a batch (see [`Ingest::batch`]).
    async fn flush(&mut self, batch: &mut Batch) -> ApiResult<()> {
        let items = std::mem::take(&mut batch.items);
        batch.bytes = 0;
        self.ingest.batch(items, &mut self.totals).await
    }

    /// Streams one large object straight into the store.
    async fn large(&mut self, reader: &mut BodyReader, key: BlobKey, len: u64) -> ApiResult<()> {
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed();
        // The object's bytes go to the store as they come off the request; a pack that ends or
        // fails inside the object ends the object's body with an error, so nothing is kept.
        let feed = async move {
            let mut left = len;
            while left > 0 {
                let filled = match reader.buf.is_empty() {
                    true => reader.fill(1).await,
                    false => Ok(true),
                };
                let failed = match filled {
                    Ok(true) => None,
                    Ok(false) => Some(truncated()),
                    Err(e) => Some(e.into()),
                };
                if let Some(e) = failed {
                    let ended = std::io::Error::other("pack ended inside an object");
                    let _ = tx.send(Err(ended)).await;
                    return Err(e);
                }
                let take = (reader.buf.len() as u64).min(left) as usize;
                let piece = reader.buf.split_to(take).freeze();
                left -= take as u64;
                if tx.send(Ok(piece)).await.is_err() {
                    break;
                }
            }
            Ok(())
        };
        let (fed, stored) = futures::join!(feed, self.ingest.store(key, stream));
        fed?;
        let stored = stored?;
        self.totals.stored += u64::from(stored.added);
        self.totals.existing += u64::from(!stored.added);
        self.totals.bytes += stored.size;
        Ok(())
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
        ingest: Ingest::new(&state, &principal, &project, project_id),
        kind: q.kind,
        totals: PackUploadResponse::default(),
    };
    let result = receive(&mut up, &mut reader, state.config.max_object_size).await;
    state
        .metrics
        .bytes_in
        .fetch_add(reader.received, Ordering::Relaxed);
    let t = &up.totals;
    if t.stored + t.existing > 0 {
        up.ingest
            .audit(
                "pack.write",
                format!("{} objects of kind {}", t.stored + t.existing, q.kind),
                format!(
                    "{} new, {} existing, {} bytes",
                    t.stored, t.existing, t.bytes
                ),
            )
            .await;
    }
    result?;
    Ok(Json(up.totals))
}

async fn receive(up: &mut Upload<'_>, reader: &mut BodyReader, max: u64) -> ApiResult<()> {
    let magic = reader.exact(MAGIC.len()).await?.ok_or_else(truncated)?;
    let mut m = [0u8; 8];
    m.copy_from_slice(&magic);
    check_magic(&m).map_err(|e| ApiError::bad_request(e.to_string()))?;
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
            up.ingest.check_manifest_bytes(key, &data).await?;
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
    let mut answer = Answer {
        tx,
        out: BytesMut::with_capacity(SEND_AT * 2),
        sent: 0,
    };
    match answer.write(&state, kind, &oids).await {
        Ok(()) => {
            state
                .metrics
                .bytes_out
                .fetch_add(answer.sent, Ordering::Relaxed);
        }
        Err(Stop::Failed(e)) => {
            let _ = answer.tx.send(Err(e)).await;
        }
        Err(Stop::Gone) => {}
    }
}

/// A pack answer being written: frames gathered into pieces, sent once they are large enough.
struct Answer {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    out: BytesMut,
    /// Bytes handed to the connection.
    sent: u64,
}

/// Why an answer ends early.
enum Stop {
    /// The client went away.
    Gone,
    /// A failure, passed on as the stream's error.
    Failed(std::io::Error),
}

fn failed(msg: impl ToString) -> Stop {
    Stop::Failed(std::io::Error::other(msg.to_string()))
}

impl Answer {
    async fn write(
        &mut self,
        state: &SharedState,
        kind: HashKind,
        oids: &[ObjectId],
    ) -> Result<(), Stop> {
        self.out.extend_from_slice(MAGIC);
        for group in oids.chunks(READ_GROUP) {
            let keys: Vec<BlobKey> = group
                .iter()
                .map(|oid| BlobKey { kind, oid: *oid })
                .collect();
            let read = state
                .store
                .read_small(keys.clone(), SMALL)
                .await
                .map_err(failed)?;
            for (key, r) in keys.into_iter().zip(read) {
                match r.map_err(failed)? {
                    Some(SmallRead::Bytes(b)) => {
                        self.frame(key, b.len() as u64);
                        self.out.extend_from_slice(&b);
                    }
                    Some(SmallRead::TooLarge(size)) => self.large(state, key, size).await?,
                    None => {
                        tracing::error!(%key, "indexed object has no blob; run `lode-server fsck`");
                        return Err(failed(format!("{key} has no blob")));
                    }
                }
                if self.out.len() >= SEND_AT {
                    self.flush().await?;
                }
            }
            state
                .metrics
                .objects_served
                .fetch_add(group.len() as u64, Ordering::Relaxed);
        }
        self.out.extend_from_slice(&Frame::End.encode());
        // The client has the whole pack once this is sent; it may hang up right after.
        let _ = self.flush().await;
        Ok(())
    }

    fn frame(&mut self, key: BlobKey, len: u64) {
        self.out
            .extend_from_slice(&Frame::Object { oid: key.oid, len }.encode());
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        let piece = self.out.split().freeze();
        self.send(piece).await
    }

    async fn send(&mut self, piece: Bytes) -> Result<(), Stop> {
        self.sent += piece.len() as u64;
        self.tx.send(Ok(piece)).await.map_err(|_| Stop::Gone)
    }

    /// A large object, streamed from the store after its frame header.
    async fn large(&mut self, state: &SharedState, key: BlobKey, size: u64) -> Result<(), Stop> {
        self.frame(key, size);
        self.flush().await?;
        let blob = match state.store.open(key).await.map_err(failed)? {
            Some(blob) => blob,
            None => return Err(failed(format!("{key} vanished"))),
        };
        let mut stream = blob.range(0, size).map_err(failed)?;
        let mut got = 0u64;
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(Stop::Failed)?;
            got += piece.len() as u64;
            self.send(piece).await?;
        }
        if got != size {
            return Err(failed(format!("{key} changed size")));
        }
        Ok(())
    }
}
