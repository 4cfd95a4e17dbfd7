//! Listing blobs and unfinished uploads under the store's prefix (never outside it), aborting
//! those a crash left, and moving bad blobs aside to `PREFIX/quarantine/`.

use std::time::SystemTime;

use lode_proto::{HashKind, ObjectId};
use lode_s3::aws_sdk_s3::types::MultipartUpload;

use super::errors::failed;
use super::S3Store;
use crate::store::{ListedBlob, StoreError, StoreResult};

/// An unfinished multipart upload: its key and id.
pub(super) struct Pending {
    key: String,
    upload_id: String,
    started: Option<SystemTime>,
}

fn is_fan_out(segment: &str) -> bool {
    segment.len() == 2
        && segment
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl S3Store {
    /// Every object whose key starts with `start`, with its size.
    async fn objects(&self, start: &str) -> StoreResult<Vec<(String, u64)>> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&*self.bucket)
            .prefix(start)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failed(format!("listing {start}"), e))?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    let size = o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                    out.push((k.to_string(), size));
                }
            }
        }
        Ok(out)
    }

    /// The fan-out folders (`ab/`) right under `root`, for legacy objects, which share the
    /// prefix's top level with `files/` and `quarantine/`.
    async fn fan_outs(&self, root: &str) -> StoreResult<Vec<String>> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&*self.bucket)
            .prefix(root)
            .delimiter("/")
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failed(format!("listing {root}"), e))?;
            for p in page.common_prefixes() {
                let Some(p) = p.prefix() else { continue };
                let segment = p[root.len().min(p.len())..].trim_end_matches('/');
                if is_fan_out(segment) {
                    out.push(p.to_string());
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn list_kind(&self, kind: HashKind) -> StoreResult<Vec<ListedBlob>> {
        let root = self.kind_root(kind);
        let found = match kind {
            HashKind::Md5 => self.objects(&root).await?,
            HashKind::Md5Dos2unix => {
                let mut all = Vec::new();
                for folder in self.fan_outs(&root).await? {
                    all.extend(self.objects(&folder).await?);
                }
                all
            }
        };
        let mut out: Vec<ListedBlob> = found
            .into_iter()
            .map(|(key, size)| {
                let name = key[root.len().min(key.len())..].to_string();
                let oid = match name.split_once('/') {
                    Some((fan, rest)) => ObjectId::from_key_parts(fan, rest).ok(),
                    None => None,
                };
                ListedBlob {
                    kind,
                    name,
                    oid,
                    size,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Multipart uploads under the prefix that were never completed or aborted.
    pub(super) async fn pending_uploads(&self) -> StoreResult<Vec<Pending>> {
        let start = self.location.key_start();
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&*self.bucket)
                .prefix(&start)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
                .map_err(|e| failed("listing unfinished uploads".to_string(), e))?;
            out.extend(page.uploads().iter().filter_map(pending));
            if !page.is_truncated().unwrap_or(false) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() && id_marker.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Aborts the multipart uploads older than the grace period: no server is still sending
    /// them. How many.
    pub(super) async fn abort_abandoned(&self) -> StoreResult<usize> {
        let cutoff = SystemTime::now()
            .checked_sub(self.upload_grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut aborted = 0;
        for p in self.pending_uploads().await? {
            // An upload whose start is unknown is left to a later pass rather than guessed at.
            if p.started.is_none_or(|t| t > cutoff) {
                continue;
            }
            self.client
                .abort_multipart_upload()
                .bucket(&*self.bucket)
                .key(&p.key)
                .upload_id(&p.upload_id)
                .send()
                .await
                .map_err(|e| failed(format!("aborting the unfinished upload of {}", p.key), e))?;
            aborted += 1;
        }
        Ok(aborted)
    }

    /// Copies a blob to `PREFIX/quarantine/{kind}/{name}` and deletes it; false when it was not
    /// there.
    pub(super) async fn move_aside(&self, kind: HashKind, name: &str) -> StoreResult<bool> {
        if name
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(StoreError::io(
                format!("refusing to move '{name}'"),
                std::io::Error::other("not a blob name"),
            ));
        }
        let from = format!("{}{name}", self.kind_root(kind));
        let to = self
            .location
            .key(&format!("quarantine/{kind}/{}", name.replace('/', "")));
        let copied = self
            .client
            .copy_object()
            .bucket(&*self.bucket)
            .key(&to)
            .copy_source(format!("{}/{from}", self.bucket))
            .send()
            .await;
        match copied {
            Ok(_) => {}
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                return Ok(false)
            }
            Err(e) => return Err(failed(format!("moving {from} aside"), e)),
        }
        self.client
            .delete_object()
            .bucket(&*self.bucket)
            .key(&from)
            .send()
            .await
            .map_err(|e| failed(format!("moving {from} aside"), e))?;
        Ok(true)
    }
}

fn pending(u: &MultipartUpload) -> Option<Pending> {
    Some(Pending {
        key: u.key()?.to_string(),
        upload_id: u.upload_id()?.to_string(),
        started: u.initiated().and_then(|t| SystemTime::try_from(*t).ok()),
    })
}
