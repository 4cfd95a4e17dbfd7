//! `POST /api/v1/projects/{p}/gc`: drops the project's references to objects outside the
//! client's keep-set, then deletes blobs that no project references any more.
//!
//! Objects pushed within the grace period are kept whatever the keep-set says: a client may be
//! pushing them right now from a commit the collecting client has not seen.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use lode_proto::transfer::{GcRequest, GcResponse, KindedOids};
use lode_proto::{HashKind, ObjectId, Role};

use super::Caller;
use crate::app::SharedState;
use crate::db::now;
use crate::error::{ApiError, ApiResult};
use crate::store::BlobKey;

/// Grace period when the request names none.
pub const DEFAULT_GRACE_SECONDS: u64 = 3600;

pub async fn collect(
    State(state): State<SharedState>,
    Caller(principal): Caller,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult<Json<GcResponse>> {
    let project_id = state
        .project_access(&principal, &project, Role::Admin)
        .await?;
    let req: GcRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON request body: {e}")))?;
    let keep: HashSet<(HashKind, ObjectId)> = req
        .keep
        .iter()
        .flat_map(|k| k.oids.iter().map(move |o| (k.kind, *o)))
        .collect();
    let grace = req.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    let cutoff = now().saturating_sub(i64::try_from(grace).unwrap_or(i64::MAX));

    let mut resp = GcResponse {
        dry_run: req.dry_run,
        ..GcResponse::default()
    };
    let mut drop_refs: Vec<(HashKind, ObjectId)> = Vec::new();
    for obj in state.db.project_objects(project_id).await? {
        if keep.contains(&(obj.kind, obj.oid)) {
            continue;
        }
        if obj.created_at > cutoff {
            resp.kept_recent += 1;
            continue;
        }
        resp.removed_bytes += obj.size;
        drop_refs.push((obj.kind, obj.oid));
    }
    let mut by_kind: HashMap<HashKind, Vec<ObjectId>> = HashMap::new();
    for (kind, oid) in &drop_refs {
        by_kind.entry(*kind).or_default().push(*oid);
    }

    if req.dry_run {
        for (kind, oids) in &by_kind {
            let elsewhere = state
                .db
                .referenced_elsewhere(project_id, *kind, oids)
                .await?;
            resp.blobs_deleted += oids.iter().filter(|o| !elsewhere.contains(o)).count() as u64;
        }
    } else {
        let _collection = state.db.gc_lease().await?;
        state.db.remove_refs(project_id, &drop_refs).await?;
        for (kind, oid) in &drop_refs {
            let key = BlobKey {
                kind: *kind,
                oid: *oid,
            };
            // Under the key's exclusive lock no upload is between finding this blob and
            // indexing its reference, so "unreferenced" stays true until the blob is gone.
            let _guard = state.db.hold_for_delete(*kind, *oid).await?;
            if state.db.is_referenced(*kind, oid).await? {
                continue;
            }
            if state.store.delete(key).await? {
                resp.blobs_deleted += 1;
            }
        }
        state
            .audit
            .record(
                principal.actor(),
                "project.gc",
                Some(&project),
                None,
                Some(format!(
                    "{} references removed, {} blobs deleted, {} recent kept",
                    drop_refs.len(),
                    resp.blobs_deleted,
                    resp.kept_recent
                )),
            )
            .await;
    }
    let mut kinds: Vec<HashKind> = by_kind.keys().copied().collect();
    kinds.sort();
    resp.removed = kinds
        .into_iter()
        .map(|kind| KindedOids {
            kind,
            oids: by_kind.remove(&kind).unwrap_or_default(),
        })
        .collect();
    Ok(Json(resp))
}
