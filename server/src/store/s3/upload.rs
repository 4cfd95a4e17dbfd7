//! Receiving a body: in memory up to one part, else as a multipart upload to the final key,
//! started when the first part is full, with a bounded number of parts in flight. The upload is
//! completed only by a commit and aborted when dropped before, so a refused or broken body
//! never becomes visible.

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::FutureExt;
use lode_s3::aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::task::JoinSet;

use super::errors::failed;
use super::{Target, PARTS_IN_FLIGHT, PART_SIZE};
use crate::store::{BlobKey, BlobSink, Piece, Received, StoreError, StoreResult};

/// What the S3 store received for one key (the handle inside [`Received`]).
pub(super) enum Upload {
    /// Sent with one PUT on commit.
    Whole(Bytes),
    /// Every part sent; completed on commit.
    Multipart(Parts),
}

/// A multipart upload and the parts sent so far; aborted on drop unless completed.
pub(super) struct Parts {
    target: Target,
    upload_id: String,
    parts: Vec<CompletedPart>,
    completed: bool,
}

impl Parts {
    async fn start(target: Target, key: BlobKey) -> StoreResult<Parts> {
        let created = target
            .client
            .create_multipart_upload()
            .bucket(&*target.bucket)
            .key(&target.key)
            .send()
            .await
            .map_err(|e| failed(format!("starting the upload of {key}"), e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        if upload_id.is_empty() {
            return Err(StoreError::io(
                format!("starting the upload of {key}"),
                std::io::Error::other("the store returned no upload id"),
            ));
        }
        Ok(Parts {
            target,
            upload_id,
            parts: Vec::new(),
            completed: false,
        })
    }

    /// Makes the object visible under its key, in one step.
    pub(super) async fn complete(mut self) -> StoreResult<()> {
        self.parts.sort_by_key(|p| p.part_number());
        let t = &self.target;
        t.client
            .complete_multipart_upload()
            .bucket(&*t.bucket)
            .key(&t.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.parts)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| failed(format!("completing the upload of {}", t.key), e))?;
        self.completed = true;
        Ok(())
    }
}

impl Drop for Parts {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        // Not awaited: the caller is done with the upload either way, and one the abort misses
        // (the store gone, the process killed) is aborted by the clean-up of unfinished ones.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let t = self.target.clone();
            let upload_id = std::mem::take(&mut self.upload_id);
            rt.spawn(async move {
                let aborted = t
                    .client
                    .abort_multipart_upload()
                    .bucket(&*t.bucket)
                    .key(&t.key)
                    .upload_id(upload_id)
                    .send()
                    .await;
                if let Err(e) = aborted {
                    tracing::warn!(key = t.key, "aborting an unfinished upload failed: {e}");
                }
            });
        }
    }
}

/// Sends one part; what the completion needs of it.
async fn send_part(
    target: Target,
    upload_id: String,
    number: i32,
    data: Bytes,
) -> StoreResult<CompletedPart> {
    let sent = target
        .client
        .upload_part()
        .bucket(&*target.bucket)
        .key(&target.key)
        .upload_id(upload_id)
        .part_number(number)
        .body(data.into())
        .send()
        .await
        .map_err(|e| failed(format!("sending part {number} of {}", target.key), e))?;
    Ok(CompletedPart::builder()
        .set_e_tag(sent.e_tag().map(str::to_string))
        .part_number(number)
        .build())
}

pub(super) struct Sink {
    key: BlobKey,
    target: Target,
    /// Keep the whole body in memory (manifests, read back before their commit).
    whole: bool,
    /// The part being filled.
    buffer: BytesMut,
    size: u64,
    parts: Option<Parts>,
    next_part: i32,
    in_flight: JoinSet<StoreResult<CompletedPart>>,
    failure: Option<StoreError>,
}

impl Sink {
    pub(super) fn new(key: BlobKey, target: Target, whole: bool) -> Sink {
        Sink {
            key,
            target,
            whole,
            buffer: BytesMut::new(),
            size: 0,
            parts: None,
            next_part: 1,
            in_flight: JoinSet::new(),
            failure: None,
        }
    }

    /// Sends the buffer as the next part, once fewer than the limit are in flight.
    async fn send_buffer(&mut self) -> StoreResult<()> {
        if self.parts.is_none() {
            self.parts = Some(Parts::start(self.target.clone(), self.key).await?);
        }
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.collect_one().await?;
        }
        let Some(parts) = &self.parts else {
            return Ok(());
        };
        let data = std::mem::take(&mut self.buffer).freeze();
        let number = self.next_part;
        self.next_part += 1;
        self.in_flight.spawn(send_part(
            self.target.clone(),
            parts.upload_id.clone(),
            number,
            data,
        ));
        Ok(())
    }

    async fn collect_one(&mut self) -> StoreResult<()> {
        let Some(done) = self.in_flight.join_next().await else {
            return Ok(());
        };
        let part = done.map_err(StoreError::join)??;
        if let Some(parts) = &mut self.parts {
            parts.parts.push(part);
        }
        Ok(())
    }

    async fn take(&mut self, piece: Piece) -> StoreResult<()> {
        for frame in piece.iter() {
            self.size += frame.len() as u64;
            self.buffer.extend_from_slice(frame);
        }
        if !self.whole && self.buffer.len() >= PART_SIZE {
            self.send_buffer().await?;
        }
        Ok(())
    }

    async fn end(mut self: Box<Self>) -> StoreResult<Received> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        if self.parts.is_none() {
            let data = std::mem::take(&mut self.buffer).freeze();
            return Ok(Received::new(self.key, self.size, Upload::Whole(data)));
        }
        if !self.buffer.is_empty() {
            self.send_buffer().await?;
        }
        while !self.in_flight.is_empty() {
            self.collect_one().await?;
        }
        let parts = self.parts.take().ok_or_else(|| {
            StoreError::io(
                format!("uploading {}", self.key),
                std::io::Error::other("the multipart upload was lost"),
            )
        })?;
        Ok(Received::new(self.key, self.size, Upload::Multipart(parts)))
    }
}

impl BlobSink for Sink {
    fn write(&mut self, piece: Piece) -> BoxFuture<'_, StoreResult<()>> {
        async move {
            if self.failure.is_some() {
                return Err(StoreError::io(
                    format!("uploading {}", self.key),
                    std::io::Error::other("the upload already failed"),
                ));
            }
            match self.take(piece).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    let told = StoreError::io(
                        format!("uploading {}", self.key),
                        std::io::Error::other(e.to_string()),
                    );
                    self.failure = Some(e);
                    Err(told)
                }
            }
        }
        .boxed()
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, StoreResult<Received>> {
        self.end().boxed()
    }
}
