//! One ingest path for every upload: single objects, `.dir` manifests and packs. It stages the
//! body (the store checks it against its name), applies the manifest rule, commits, indexes the
//! project's reference, remembers it in the held-objects cache, counts the metrics and writes
//! the audit entry. Routes only read requests and shape answers.
//!
//! The project's reference is written only after the blob is durable, and under the blob's
//! upload lock, so garbage collection cannot delete a blob an upload is about to reference.

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use bytes::Bytes;
use lode_proto::transfer::PackUploadResponse;
use lode_proto::ObjectId;

use crate::app::SharedState;
use crate::auth::Principal;
use crate::db::{now, ObjectRef};
use crate::error::{ApiError, ApiResult};
use crate::manifest::{self, ManifestError};
use crate::store::{BlobKey, ByteStream, Staged, StoreError};

/// Uploads of one principal into one project.
pub struct Ingest<'a> {
    state: &'a SharedState,
    principal: &'a Principal,
    project: &'a str,
    project_id: i64,
}

/// What an upload stored.
#[derive(Debug, Clone, Copy)]
pub struct Stored {
    pub size: u64,
    /// Whether the project's reference is new (else the project already held the object).
    pub added: bool,
}

impl<'a> Ingest<'a> {
    pub fn new(
        state: &'a SharedState,
        principal: &'a Principal,
        project: &'a str,
        project_id: i64,
    ) -> Ingest<'a> {
        Ingest {
            state,
            principal,
            project,
            project_id,
        }
    }

    /// One object uploaded on its own (an object route), with its audit entry.
    pub async fn object(&self, key: BlobKey, body: ByteStream) -> ApiResult<Stored> {
        let stored = self.store(key, body).await?;
        self.audit(
            "object.write",
            format!("{}:{}", key.kind, key.oid),
            format!("{} bytes", stored.size),
        )
        .await;
        Ok(stored)
    }

    /// One object streamed in: staged, checked, committed and indexed.
    pub async fn store(&self, key: BlobKey, body: ByteStream) -> ApiResult<Stored> {
        let guard = self
            .state
            .db
            .hold_for_upload(&[(key.kind, key.oid)])
            .await?;
        let staged = self
            .state
            .store
            .stage(key, body)
            .await
            .map_err(|e| self.refused(Some(key), e))?;
        let size = staged.size();
        if key.oid.is_dir() {
            self.check_staged_manifest(&staged).await?;
        }
        self.state
            .store
            .commit(staged)
            .await
            .map_err(|e| self.refused(Some(key), e))?;
        let added = self.state.indexer.add(self.reference(key, size)).await?;
        self.state
            .held
            .held(self.project_id, key.kind, &key.oid, size);
        drop(guard);
        self.state
            .metrics
            .objects_stored
            .fetch_add(1, Ordering::Relaxed);
        Ok(Stored { size, added })
    }

    /// Small objects held in memory, made durable together and indexed at once, counted into
    /// `totals`. Objects before a refused one are kept; the refusal is returned after they
    /// are. `.dir` manifests among them must have passed [`Ingest::check_manifest_bytes`].
    pub async fn batch(
        &self,
        items: Vec<(BlobKey, Bytes)>,
        totals: &mut PackUploadResponse,
    ) -> ApiResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let blobs: Vec<_> = items.iter().map(|(key, _)| (key.kind, key.oid)).collect();
        let _guard = self.state.db.hold_for_upload(&blobs).await?;
        let (staged, failure) = self.state.store.stage_batch(items).await;
        let refs: Vec<ObjectRef> = staged
            .iter()
            .map(|s| self.reference(s.key(), s.size()))
            .collect();
        self.state.store.commit_many(staged).await?;
        let added = self.state.db.add_objects(&refs).await?;
        for r in &refs {
            self.state.held.held(r.project_id, r.kind, &r.oid, r.size);
        }
        let objects = refs.len() as u64;
        totals.stored += added;
        totals.existing += objects - added;
        totals.bytes += refs.iter().map(|r| r.size).sum::<u64>();
        self.state
            .metrics
            .objects_stored
            .fetch_add(objects, Ordering::Relaxed);
        match failure {
            Some(e) => Err(self.refused(None, e)),
            None => Ok(()),
        }
    }

    /// The manifest rule for a `.dir` held in memory.
    pub async fn check_manifest_bytes(&self, key: BlobKey, data: &[u8]) -> ApiResult<()> {
        let digests =
            manifest::entry_digests(data).map_err(|e| self.invalid_manifest(&key.oid, e))?;
        self.check_entries(key, &digests).await
    }

    async fn check_staged_manifest(&self, staged: &Staged) -> ApiResult<()> {
        let key = staged.key();
        let stream = self.state.store.read_staged(staged).await?;
        let digests = manifest::entry_digests_of(stream)
            .await
            .map_err(|e| self.invalid_manifest(&key.oid, e))?;
        self.check_entries(key, &digests).await
    }

    /// Refuses a `.dir` manifest unless the project holds every object it lists: DVC trusts a
    /// present `.dir` and skips its entries.
    async fn check_entries(&self, key: BlobKey, digests: &[[u8; 16]]) -> ApiResult<()> {
        let missing = self
            .state
            .db
            .missing_digests(self.project_id, key.kind, digests)
            .await?;
        if missing.is_empty() {
            return Ok(());
        }
        self.state.metrics.upload_failed("manifest_entries_missing");
        self.state
            .metrics
            .manifests_refused
            .fetch_add(1, Ordering::Relaxed);
        let first: Vec<String> = missing.iter().take(5).map(|o| o.to_string()).collect();
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "missing_entries",
            format!(
                "directory manifest {} lists {} object(s) project '{}' does not hold ({}{}); upload them before the manifest",
                key.oid,
                missing.len(),
                self.project,
                first.join(", "),
                if missing.len() > first.len() { ", ..." } else { "" }
            ),
        ))
    }

    fn invalid_manifest(&self, oid: &ObjectId, e: ManifestError) -> ApiError {
        self.state.metrics.upload_failed("invalid_manifest");
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_manifest",
            format!("{oid}: {e}"),
        )
    }

    /// Counts and logs a refused upload (of `key`, when one object was uploaded).
    fn refused(&self, key: Option<BlobKey>, e: StoreError) -> ApiError {
        self.state.metrics.upload_failed(e.reason());
        if !matches!(e, StoreError::Body(_)) {
            match key {
                Some(key) => tracing::warn!(%key, project = self.project, "upload refused: {e}"),
                None => tracing::warn!(project = self.project, "upload refused: {e}"),
            }
        }
        e.into()
    }

    fn reference(&self, key: BlobKey, size: u64) -> ObjectRef {
        ObjectRef {
            project_id: self.project_id,
            kind: key.kind,
            oid: key.oid,
            size,
            created_at: now(),
        }
    }

    /// Writes an audit entry of this principal on this project.
    pub async fn audit(&self, action: &str, target: String, detail: String) {
        self.state
            .audit
            .record(
                self.principal.actor(),
                action,
                Some(self.project),
                Some(target),
                Some(detail),
            )
            .await;
    }
}
