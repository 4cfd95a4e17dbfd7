//! Reading blobs: small ones whole, larger ones streamed from the response body as it arrives,
//! with a ranged GET when only part of one is asked for.

use std::io;
use std::time::SystemTime;

use futures::{StreamExt, TryStreamExt};
use lode_s3::aws_sdk_s3::operation::get_object::GetObjectOutput;
use lode_s3::aws_sdk_s3::primitives::{ByteStream as S3Body, DateTime};

use super::errors::failed;
use super::{S3Store, Target};
use crate::store::verify::PIECE;
use crate::store::{BlobKey, BlobMeta, BlobReader, ByteStream, OpenBlob, SmallRead, StoreResult};

fn modified(t: Option<&DateTime>) -> SystemTime {
    t.and_then(|t| SystemTime::try_from(*t).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn meta_of(got: &GetObjectOutput) -> BlobMeta {
    BlobMeta {
        size: got
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0),
        modified: modified(got.last_modified()),
    }
}

/// A response body as a stream of bytes.
fn body_stream(body: S3Body) -> ByteStream {
    futures::stream::unfold(body, |mut body| async move {
        let next = body.next().await?;
        Some((next.map_err(io::Error::other), body))
    })
    .boxed()
}

/// GETs a blob (a range of it when `range` is given); `None` when it does not exist.
async fn get(
    target: &Target,
    key: BlobKey,
    range: Option<(u64, u64)>,
) -> StoreResult<Option<GetObjectOutput>> {
    let mut req = target
        .client
        .get_object()
        .bucket(&*target.bucket)
        .key(&target.key);
    if let Some((offset, len)) = range {
        req = req.range(format!("bytes={offset}-{}", offset + len - 1));
    }
    match req.send().await {
        Ok(got) => Ok(Some(got)),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
        Err(e) => Err(failed(format!("reading {key}"), e)),
    }
}

pub(super) async fn open(target: Target, key: BlobKey) -> StoreResult<Option<OpenBlob>> {
    let Some(got) = get(&target, key, None).await? else {
        return Ok(None);
    };
    let meta = meta_of(&got);
    if meta.size <= PIECE as u64 {
        let bytes = collect(got.body, key).await?;
        return Ok(Some(OpenBlob::whole(meta, bytes)));
    }
    let reader = Reader {
        target,
        key,
        size: meta.size,
        body: got.body,
    };
    Ok(Some(OpenBlob::reader(meta, Box::new(reader))))
}

async fn collect(body: S3Body, key: BlobKey) -> StoreResult<bytes::Bytes> {
    body.collect()
        .await
        .map(|b| b.into_bytes())
        .map_err(|e| crate::store::StoreError::io(format!("reading {key}"), io::Error::other(e)))
}

/// A large blob whose whole body is already on its way.
struct Reader {
    target: Target,
    key: BlobKey,
    size: u64,
    body: S3Body,
}

impl BlobReader for Reader {
    fn range(self: Box<Self>, offset: u64, len: u64) -> StoreResult<ByteStream> {
        if offset == 0 && len == self.size {
            return Ok(body_stream(self.body));
        }
        if len == 0 {
            return Ok(futures::stream::empty().boxed());
        }
        let Reader { target, key, .. } = *self;
        let ranged = async move {
            match get(&target, key, Some((offset, len))).await {
                Ok(Some(got)) => Ok(body_stream(got.body)),
                Ok(None) => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{key} was deleted while being read"),
                )),
                Err(e) => Err(io::Error::other(e.to_string())),
            }
        };
        Ok(futures::stream::once(ranged).try_flatten().boxed())
    }
}

/// A blob's bytes when at most `limit` long, else its size.
pub(super) async fn small(
    target: Target,
    key: BlobKey,
    limit: u64,
) -> StoreResult<Option<SmallRead>> {
    let Some(got) = get(&target, key, None).await? else {
        return Ok(None);
    };
    let size = meta_of(&got).size;
    if size > limit {
        return Ok(Some(SmallRead::TooLarge(size)));
    }
    collect(got.body, key)
        .await
        .map(|b| Some(SmallRead::Bytes(b)))
}

impl S3Store {
    pub(super) async fn head(&self, key: BlobKey) -> StoreResult<Option<BlobMeta>> {
        let target = self.target(key);
        let got = self
            .client
            .head_object()
            .bucket(&*self.bucket)
            .key(&target.key)
            .send()
            .await;
        match got {
            Ok(h) => Ok(Some(BlobMeta {
                size: h
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
                modified: modified(h.last_modified()),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(failed(format!("looking up {key}"), e)),
        }
    }
}
