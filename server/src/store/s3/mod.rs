//! Blobs in an S3 bucket, under a prefix of their own, with lode-proto's key layout:
//! `PREFIX/files/md5/ab/cdef…` and, for DVC 2 legacy objects, `PREFIX/ab/cdef…`, so the prefix
//! is also a valid DVC S3 remote. Nothing outside the prefix is ever listed, read or deleted.
//!
//! Nothing appears under a final key before it is verified: a body that fits in one part is
//! kept in memory and sent with one PUT on commit; a larger one streams into a multipart upload
//! to its final key, completed on commit (only a [`Staged`] upload is committed) and aborted
//! when the upload is dropped. A crash leaves multipart uploads behind; they are listed and
//! aborted after a grace period (see [`Upkeep`]).

mod errors;
mod listing;
mod read;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use lode_proto::HashKind;
use lode_s3::aws_sdk_s3::presigning::PresigningConfig;
use lode_s3::{Client, S3Location, S3Settings};

use super::{
    BatchOutcome, BlobKey, BlobMeta, BlobSink, BlobStore, ByteStream, ListedBlob, OpenBlob,
    Received, SmallReads, Staged, StoreError, StoreResult, Upkeep,
};
use errors::failed;
use upload::Upload;

/// Parts of a multipart upload. S3 wants at least 5 MiB in every part but the last; bodies up
/// to this size are sent with one PUT.
const PART_SIZE: usize = 8 << 20;
/// Parts of one upload sent at once: with the part being filled, memory per upload stays
/// under `(PARTS_IN_FLIGHT + 1) * PART_SIZE` whatever the object size.
const PARTS_IN_FLIGHT: usize = 2;
/// Requests at once for the small objects of a batch or a bulk read.
const SMALL_REQUESTS: usize = 16;
/// `/readyz` must answer within a few seconds when the store is gone.
const READY_TIMEOUT: Duration = Duration::from_secs(3);
/// Key written by the readiness probe (not in the key layout, so never listed as a blob).
const READY_PROBE: &str = ".lode-ready";

/// Where an object goes: the client and its full key.
#[derive(Clone)]
pub(super) struct Target {
    client: Client,
    bucket: Arc<str>,
    key: String,
}

pub struct S3Store {
    client: Client,
    location: S3Location,
    bucket: Arc<str>,
    endpoint: String,
    max_size: u64,
    /// Multipart uploads older than this are taken for a crash's and aborted.
    upload_grace: Duration,
}

impl S3Store {
    /// Connects and checks that the bucket answers to these credentials, so a wrong endpoint,
    /// credentials or bucket is reported at start with the bucket's and the endpoint's names.
    pub async fn open(
        location: S3Location,
        settings: &S3Settings,
        max_size: u64,
        upload_grace: Duration,
    ) -> StoreResult<S3Store> {
        let client = lode_s3::client(settings).await;
        let store = S3Store {
            bucket: Arc::from(location.bucket.as_str()),
            client,
            location,
            endpoint: settings.describe_endpoint(),
            max_size,
            upload_grace,
        };
        store
            .client
            .head_bucket()
            .bucket(&*store.bucket)
            .send()
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "bucket '{}' at {}: {}",
                    store.bucket,
                    store.endpoint,
                    errors::why(&e)
                ))
            })?;
        Ok(store)
    }

    /// Where the store is, for the log.
    pub fn describe(&self) -> String {
        format!("{} at {}", self.location, self.endpoint)
    }

    /// The full key of a blob.
    fn key_of(&self, key: BlobKey) -> String {
        self.location.key(&key.oid.dvc_key(key.kind))
    }

    fn target(&self, key: BlobKey) -> Target {
        Target {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: self.key_of(key),
        }
    }

    /// Where a kind's blobs start (`PREFIX/files/md5/` or `PREFIX/`).
    fn kind_root(&self, kind: HashKind) -> String {
        match kind.dvc_prefix() {
            "" => self.location.key_start(),
            p => self.location.key(&format!("{p}/")),
        }
    }

    async fn put(&self, key: BlobKey, data: Bytes) -> StoreResult<()> {
        let target = self.target(key);
        self.client
            .put_object()
            .bucket(&*self.bucket)
            .key(&target.key)
            .body(data.into())
            .send()
            .await
            .map_err(|e| failed(format!("storing {key}"), e))?;
        Ok(())
    }

    async fn commit_one(&self, staged: Staged) -> StoreResult<()> {
        let (key, _, upload) = staged.into_received().into_handle::<Upload>()?;
        match upload {
            Upload::Whole(data) => self.put(key, data).await,
            Upload::Multipart(parts) => parts.complete().await,
        }
    }

    async fn check(&self) -> StoreResult<()> {
        let probe = self.location.key(READY_PROBE);
        let put = self
            .client
            .put_object()
            .bucket(&*self.bucket)
            .key(probe)
            .body(Bytes::new().into())
            .send();
        match tokio::time::timeout(READY_TIMEOUT, put).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(failed(format!("writing to {}", self.describe()), e)),
            Err(_) => Err(StoreError::Unavailable(format!(
                "{} did not answer within {}s",
                self.describe(),
                READY_TIMEOUT.as_secs()
            ))),
        }
    }
}

impl BlobStore for S3Store {
    fn max_object_size(&self) -> u64 {
        self.max_size
    }

    fn receive(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<Box<dyn BlobSink>>> {
        // A manifest is read back before its commit, which a multipart upload cannot do, so
        // it stays in memory however large it is.
        let whole = key.oid.is_dir();
        let sink = upload::Sink::new(key, self.target(key), whole);
        async move { Ok(Box::new(sink) as Box<dyn BlobSink>) }.boxed()
    }

    fn receive_bytes(&self, key: BlobKey, data: Bytes) -> BoxFuture<'_, StoreResult<Received>> {
        let size = data.len() as u64;
        async move { Ok(Received::new(key, size, Upload::Whole(data))) }.boxed()
    }

    fn receive_batch(&self, items: Vec<(BlobKey, Bytes)>) -> BoxFuture<'_, BatchOutcome<Received>> {
        let received = items
            .into_iter()
            .map(|(key, data)| Received::new(key, data.len() as u64, Upload::Whole(data)))
            .collect();
        async move { (received, None) }.boxed()
    }

    fn read_staged(&self, staged: &Staged) -> BoxFuture<'_, StoreResult<ByteStream>> {
        let data = staged.received().handle::<Upload>().map(|u| match u {
            Upload::Whole(data) => Some(data.clone()),
            Upload::Multipart(_) => None,
        });
        let key = staged.key();
        async move {
            match data? {
                Some(data) => Ok(futures::stream::once(async move { Ok(data) }).boxed()),
                None => Err(StoreError::io(
                    format!("reading {key} before its commit"),
                    std::io::Error::other("a multipart upload cannot be read back"),
                )),
            }
        }
        .boxed()
    }

    fn commit(&self, staged: Staged) -> BoxFuture<'_, StoreResult<()>> {
        self.commit_one(staged).boxed()
    }

    fn commit_many(&self, staged: Vec<Staged>) -> BoxFuture<'_, StoreResult<()>> {
        async move {
            let mut puts = futures::stream::iter(staged)
                .map(|s| self.commit_one(s))
                .buffer_unordered(SMALL_REQUESTS);
            let mut first = None;
            while let Some(r) = puts.next().await {
                if let Err(e) = r {
                    first.get_or_insert(e);
                }
            }
            first.map_or(Ok(()), Err)
        }
        .boxed()
    }

    fn stat(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<Option<BlobMeta>>> {
        self.head(key).boxed()
    }

    fn open(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<Option<OpenBlob>>> {
        read::open(self.target(key), key).boxed()
    }

    fn read_small(&self, keys: Vec<BlobKey>, limit: u64) -> BoxFuture<'_, StoreResult<SmallReads>> {
        async move {
            let reads = futures::stream::iter(keys)
                .map(|key| read::small(self.target(key), key, limit))
                .buffered(SMALL_REQUESTS)
                .collect()
                .await;
            Ok(reads)
        }
        .boxed()
    }

    fn delete(&self, key: BlobKey) -> BoxFuture<'_, StoreResult<bool>> {
        async move {
            if self.head(key).await?.is_none() {
                return Ok(false);
            }
            let target = self.target(key);
            self.client
                .delete_object()
                .bucket(&*self.bucket)
                .key(&target.key)
                .send()
                .await
                .map_err(|e| failed(format!("deleting {key}"), e))?;
            Ok(true)
        }
        .boxed()
    }

    fn check_ready(&self) -> BoxFuture<'_, StoreResult<()>> {
        self.check().boxed()
    }

    fn presigned_get(
        &self,
        key: BlobKey,
        expires: Duration,
    ) -> BoxFuture<'_, StoreResult<Option<String>>> {
        async move {
            let config = PresigningConfig::expires_in(expires).map_err(|e| {
                StoreError::io(format!("presigning {key}"), std::io::Error::other(e))
            })?;
            let target = self.target(key);
            let signed = self
                .client
                .get_object()
                .bucket(&*self.bucket)
                .key(&target.key)
                .presigned(config)
                .await
                .map_err(|e| failed(format!("presigning {key}"), e))?;
            Ok(Some(signed.uri().to_string()))
        }
        .boxed()
    }

    fn list(&self, kind: HashKind) -> BoxFuture<'_, StoreResult<Vec<ListedBlob>>> {
        self.list_kind(kind).boxed()
    }
}

impl Upkeep for S3Store {
    fn unfinished(&self) -> BoxFuture<'_, StoreResult<usize>> {
        async move { Ok(self.pending_uploads().await?.len()) }.boxed()
    }

    fn clean_unfinished(&self) -> BoxFuture<'_, StoreResult<usize>> {
        self.abort_abandoned().boxed()
    }

    fn quarantine(&self, kind: HashKind, name: &str) -> BoxFuture<'_, StoreResult<bool>> {
        let name = name.to_string();
        async move { self.move_aside(kind, &name).await }.boxed()
    }
}
