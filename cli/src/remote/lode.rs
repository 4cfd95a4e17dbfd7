//! `lode-server` through its native API: existence of thousands of objects per call, small
//! objects in packs (`lode_proto::transfer`), large ones as parallel streamed single-object
//! `PUT`/`GET` on the DVC-compatible object paths.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use lode_proto::api::{BatchExistsRequest, BatchExistsResponse, WhoAmI};
use lode_proto::transfer::{
    check_magic, Frame, GcRequest, GcResponse, PackFetchRequest, FRAME_HEADER_LEN, MAGIC,
    MAX_FETCH_OBJECTS, PACK_CONTENT_TYPE,
};
use lode_proto::{HashKind, ObjectId};
use reqwest::{Method, StatusCode};

use super::http::{
    collect_outcome, describe, download_object, for_each_limited, read_verified, status_fail,
    DvcHttp, Http,
};
use super::landing::{self, Committer, Lander};
use super::progress::Progress;
use super::{redact, Download, Fail, Failure, Outcome, RemoteError, Upload};
use crate::cache::Cache;

/// Objects at most this large travel in packs; larger ones go alone, in parallel.
const PACK_OBJECT_MAX: u64 = 1 << 20;
const PACK_MAX_OBJECTS: usize = 4000;
const _: () = assert!(PACK_MAX_OBJECTS <= MAX_FETCH_OBJECTS);
const PACK_MAX_BYTES: u64 = 8 << 20;
/// Ids per existence call.
const BATCH_IDS: usize = 10_000;
/// Pack frames up to this size are verified in memory; larger ones stream to a temp file.
const IN_MEMORY_FRAME: u64 = 4 << 20;
/// Small objects verified and staged per blocking step.
const STAGE_GROUP: usize = 256;
const FETCH_ATTEMPTS: u32 = 5;

pub struct LodeServer {
    http: Http,
    /// The project's remote URL, `{server}/{project}`.
    url: String,
    /// `{server}/api/v1/projects/{project}`.
    api: String,
}

impl LodeServer {
    /// Asks the server behind `url` whether it is `lode-server` (its `whoami` answers in the
    /// native API's JSON, even to a request without a valid token).
    pub async fn detect(http: &Http, url: &str) -> Result<Option<LodeServer>, RemoteError> {
        let url = url.trim_end_matches('/');
        let Some((server, project)) = url.rsplit_once('/') else {
            return Ok(None);
        };
        if project.is_empty() || server.ends_with('/') || !server.contains("://") {
            return Ok(None);
        }
        let probe = format!("{server}/api/v1/whoami");
        let resp = match http
            .send(&probe, || Ok(http.request(Method::GET, &probe)))
            .await
        {
            Ok(r) => r,
            Err(Fail::Fatal(m)) | Err(Fail::Object(m)) => {
                return Err(RemoteError::Fatal(format!("remote '{}': {m}", http.remote)))
            }
            Err(Fail::Absent) => return Ok(None),
        };
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        let is_lode = match status {
            StatusCode::OK => serde_json::from_slice::<WhoAmI>(&body).is_ok(),
            StatusCode::UNAUTHORIZED => serde_json::from_slice::<lode_proto::api::ErrorBody>(&body)
                .is_ok_and(|b| b.error.code == "unauthorized"),
            _ => false,
        };
        Ok(is_lode.then(|| LodeServer {
            http: http.clone(),
            url: url.to_string(),
            api: format!("{server}/api/v1/projects/{project}"),
        }))
    }

    /// One unretried identification request, for hints.
    pub async fn probe(http: &Http, url: &str) -> bool {
        let url = url.trim_end_matches('/');
        let Some((server, _)) = url.rsplit_once('/') else {
            return false;
        };
        let Ok(resp) = http
            .request(Method::GET, &format!("{server}/api/v1/whoami"))
            .send()
            .await
        else {
            return false;
        };
        resp.status() == StatusCode::UNAUTHORIZED
            && resp
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<lode_proto::api::ErrorBody>(&b).ok())
                .is_some_and(|b| b.error.code == "unauthorized")
    }

    fn object_url(&self, kind: HashKind, oid: &ObjectId) -> String {
        format!("{}/{}", self.url, oid.dvc_key(kind))
    }

    async fn post_json<T: serde::Serialize>(
        &self,
        url: &str,
        body: &T,
    ) -> Result<reqwest::Response, Fail> {
        let json = Bytes::from(serde_json::to_vec(body).map_err(|e| Fail::Fatal(e.to_string()))?);
        let resp = self
            .http
            .send(url, || {
                Ok(self
                    .http
                    .request(Method::POST, url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(json.clone()))
            })
            .await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(match status_fail(resp, url).await {
                Fail::Absent => Fail::Fatal(format!(
                    "project not found at {} (or the token has no access to it)",
                    redact(&self.url)
                )),
                Fail::Object(m) => Fail::Fatal(m),
                f => f,
            })
        }
    }

    pub async fn missing(
        &self,
        kind: HashKind,
        oids: &[ObjectId],
        jobs: usize,
    ) -> Result<HashSet<ObjectId>, String> {
        let url = format!("{}/objects/batch", self.api);
        let chunks: Vec<Vec<ObjectId>> = oids.chunks(BATCH_IDS).map(|c| c.to_vec()).collect();
        let mut missing = HashSet::new();
        let mut stream = futures::stream::iter(chunks.into_iter().map(|chunk| {
            let url = url.clone();
            async move {
                let resp = self
                    .post_json(&url, &BatchExistsRequest { kind, oids: chunk })
                    .await?;
                resp.json::<BatchExistsResponse>()
                    .await
                    .map_err(|e| Fail::Fatal(format!("unexpected batch answer: {}", describe(e))))
            }
        }))
        .buffer_unordered(jobs.clamp(1, 4));
        while let Some(r) = stream.next().await {
            match r {
                Ok(b) => missing.extend(b.missing),
                Err(Fail::Fatal(m)) | Err(Fail::Object(m)) => return Err(m),
                Err(Fail::Absent) => return Err("batch existence call not found".into()),
            }
        }
        Ok(missing)
    }

    pub async fn upload(
        &self,
        cache: &Arc<Cache>,
        kind: HashKind,
        items: Vec<Upload>,
        jobs: usize,
        progress: &Progress,
    ) -> Result<Outcome, String> {
        let (small, large): (Vec<Upload>, Vec<Upload>) =
            items.into_iter().partition(|u| u.size <= PACK_OBJECT_MAX);
        let packs = split_packs(&small, jobs, |u| u.size);
        let mut out = Outcome::default();
        let pack_results = for_each_limited(packs, jobs.clamp(1, 8), |pack| {
            self.send_pack(cache, kind, pack, progress)
        })
        .await?;
        for (pack, r) in pack_results {
            match r {
                Ok(bytes) => {
                    out.done.extend(pack.iter().map(|u| u.oid));
                    out.bytes += bytes;
                }
                Err(Fail::Object(m)) | Err(Fail::Fatal(m)) => {
                    out.failed.extend(pack.iter().map(|u| Failure {
                        oid: u.oid,
                        message: m.clone(),
                    }))
                }
                Err(Fail::Absent) => {}
            }
        }
        let singles = for_each_limited(large, jobs, |u| {
            let url = self.object_url(kind, &u.oid);
            let path = cache.object_path(&u.oid, kind);
            async move {
                let r = DvcHttp::put_object(&self.http, &url, Method::PUT, path, u.size).await;
                if r.is_ok() {
                    progress.object_done(&u.oid, u.size);
                }
                r
            }
        })
        .await?;
        out.merge(collect_outcome(
            singles.into_iter().map(|(u, r)| (u.oid, r)),
        ));
        Ok(out)
    }

    async fn send_pack(
        &self,
        cache: &Arc<Cache>,
        kind: HashKind,
        pack: Vec<Upload>,
        progress: &Progress,
    ) -> Result<u64, Fail> {
        let c = cache.clone();
        let list = pack.clone();
        let body = tokio::task::spawn_blocking(move || build_pack(&c, kind, &list))
            .await
            .map_err(|e| Fail::Fatal(e.to_string()))??;
        let url = format!("{}/packs?kind={}", self.api, kind.as_str());
        let resp = self
            .http
            .send(&url, || {
                Ok(self
                    .http
                    .request(Method::POST, &url)
                    .header(reqwest::header::CONTENT_TYPE, PACK_CONTENT_TYPE)
                    .body(body.clone()))
            })
            .await?;
        if !resp.status().is_success() {
            return Err(match status_fail(resp, &url).await {
                Fail::Absent => Fail::Fatal(format!(
                    "project not found at {} (or the token has no access to it)",
                    redact(&self.url)
                )),
                f => f,
            });
        }
        let bytes: u64 = pack.iter().map(|u| u.size).sum();
        for u in &pack {
            progress.object_done(&u.oid, u.size);
        }
        Ok(bytes)
    }

    pub async fn download(
        &self,
        cache: &Arc<Cache>,
        kind: HashKind,
        items: Vec<Download>,
        jobs: usize,
        progress: &Progress,
    ) -> Result<Outcome, String> {
        let oids: Vec<ObjectId> = items.iter().map(|d| d.oid).collect();
        let absent = self.missing(kind, &oids, jobs).await?;
        let mut out = Outcome::default();
        let (present, gone): (Vec<Download>, Vec<Download>) =
            items.into_iter().partition(|d| !absent.contains(&d.oid));
        out.absent.extend(gone.iter().map(|d| d.oid));
        let (large, small): (Vec<Download>, Vec<Download>) = present
            .into_iter()
            .partition(|d| d.size.is_some_and(|s| s > PACK_OBJECT_MAX));
        let committer = Committer::new(cache.clone());
        let packs = split_packs(&small, jobs, |d| d.size.unwrap_or(4096));
        let pack_results = for_each_limited(packs, jobs.clamp(1, 4), |pack| {
            let committer = committer.clone();
            async move {
                self.fetch_pack(cache, kind, pack, &committer, progress)
                    .await
            }
        })
        .await;
        let singles = match &pack_results {
            Ok(_) => {
                for_each_limited(large, jobs, |d| {
                    let url = self.object_url(kind, &d.oid);
                    let committer = committer.clone();
                    async move {
                        download_object(&self.http, &url, cache, kind, d.oid, &committer, progress)
                            .await
                    }
                })
                .await
            }
            Err(e) => Err(e.clone()),
        };
        let committed = committer.finish().await;
        for (pack, r) in pack_results? {
            match r {
                Ok(o) => out.merge(o),
                Err(Fail::Object(message)) | Err(Fail::Fatal(message)) => {
                    out.failed.extend(pack.iter().map(|d| Failure {
                        oid: d.oid,
                        message: message.clone(),
                    }))
                }
                Err(Fail::Absent) => out.absent.extend(pack.iter().map(|d| d.oid)),
            }
        }
        out.merge(collect_outcome(
            singles?.into_iter().map(|(d, r)| (d.oid, r)),
        ));
        committed.map_err(|m| format!("cannot write to the cache: {m}"))?;
        Ok(out)
    }

    /// Fetches one pack, landing each object as its frame arrives; a broken stream is resumed
    /// with the objects that did not arrive yet.
    async fn fetch_pack(
        &self,
        cache: &Arc<Cache>,
        kind: HashKind,
        pack: Vec<Download>,
        committer: &Committer,
        progress: &Progress,
    ) -> Result<Outcome, Fail> {
        let url = format!("{}/packs/fetch", self.api);
        let mut remaining: Vec<ObjectId> = pack.iter().map(|d| d.oid).collect();
        let mut out = Outcome::default();
        let mut last = String::new();
        for attempt in 1..=FETCH_ATTEMPTS {
            if remaining.is_empty() {
                break;
            }
            if attempt > 1 {
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt.min(5))).await;
            }
            let resp = self
                .post_json(
                    &url,
                    &PackFetchRequest {
                        kind,
                        oids: remaining.clone(),
                    },
                )
                .await?;
            let mut reader = PackReader {
                body: resp.bytes_stream().map_err(describe).boxed(),
                buf: BytesMut::new(),
            };
            match read_pack(&mut reader, cache, kind, &remaining, committer, progress).await {
                Ok(o) => {
                    let finished: HashSet<ObjectId> = o
                        .done
                        .iter()
                        .chain(o.failed.iter().map(|f| &f.oid))
                        .copied()
                        .collect();
                    remaining.retain(|x| !finished.contains(x));
                    out.merge(o);
                }
                Err((o, PackFail::Stream(m))) => {
                    let finished: HashSet<ObjectId> = o
                        .done
                        .iter()
                        .chain(o.failed.iter().map(|f| &f.oid))
                        .copied()
                        .collect();
                    remaining.retain(|x| !finished.contains(x));
                    out.merge(o);
                    last = m;
                }
                Err((o, PackFail::Fatal(m))) => {
                    out.merge(o);
                    return Err(Fail::Fatal(m));
                }
            }
        }
        out.failed.extend(remaining.into_iter().map(|oid| Failure {
            oid,
            message: format!("download interrupted: {last}"),
        }));
        Ok(out)
    }

    pub async fn read_small(&self, kind: HashKind, oid: ObjectId) -> Result<Option<Vec<u8>>, Fail> {
        read_verified(&self.http, &self.object_url(kind, &oid), kind, oid).await
    }

    pub async fn gc(&self, req: &GcRequest) -> Result<GcResponse, String> {
        let url = format!("{}/gc", self.api);
        let resp = match self.post_json(&url, req).await {
            Ok(r) => r,
            Err(Fail::Fatal(m)) | Err(Fail::Object(m)) => return Err(m),
            Err(Fail::Absent) => return Err("gc route not found".into()),
        };
        resp.json::<GcResponse>()
            .await
            .map_err(|e| format!("unexpected gc answer: {}", describe(e)))
    }
}

/// Splits objects into packs: bounded in count and bytes, and at least `jobs` packs when there
/// are enough objects, so packs travel in parallel.
fn split_packs<T: Clone>(items: &[T], jobs: usize, size: impl Fn(&T) -> u64) -> Vec<Vec<T>> {
    if items.is_empty() {
        return Vec::new();
    }
    let per = items
        .len()
        .div_ceil(jobs.max(1))
        .clamp(64, PACK_MAX_OBJECTS);
    let mut packs = Vec::new();
    let mut cur: Vec<T> = Vec::new();
    let mut bytes = 0u64;
    for it in items {
        let s = size(it);
        if !cur.is_empty() && (cur.len() >= per || bytes + s > PACK_MAX_BYTES) {
            packs.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += s;
        cur.push(it.clone());
    }
    if !cur.is_empty() {
        packs.push(cur);
    }
    packs
}

/// Reads a pack's objects from the cache into one request body (packs are bounded in size).
fn build_pack(cache: &Cache, kind: HashKind, items: &[Upload]) -> Result<Bytes, Fail> {
    let total: u64 = items.iter().map(|u| u.size + FRAME_HEADER_LEN as u64).sum();
    let mut buf = Vec::with_capacity(total as usize + 64);
    buf.extend_from_slice(MAGIC);
    for u in items {
        let path = cache.object_path(&u.oid, kind);
        let data = std::fs::read(&path)
            .map_err(|e| Fail::Object(format!("cannot read {}: {e}", path.display())))?;
        buf.extend_from_slice(
            &Frame::Object {
                oid: u.oid,
                len: data.len() as u64,
            }
            .encode(),
        );
        buf.extend_from_slice(&data);
    }
    buf.extend_from_slice(&Frame::End.encode());
    Ok(Bytes::from(buf))
}

struct PackReader {
    body: futures::stream::BoxStream<'static, Result<Bytes, String>>,
    buf: BytesMut,
}

enum PackFail {
    /// The stream broke; what arrived whole is kept and the rest can be asked for again.
    Stream(String),
    Fatal(String),
}

impl PackReader {
    async fn fill(&mut self, n: usize) -> Result<(), PackFail> {
        while self.buf.len() < n {
            match self.body.next().await {
                Some(Ok(b)) => self.buf.extend_from_slice(&b),
                Some(Err(m)) => return Err(PackFail::Stream(m)),
                None => return Err(PackFail::Stream("pack ended early".into())),
            }
        }
        Ok(())
    }
}

async fn stage_group(
    cache: &Arc<Cache>,
    kind: HashKind,
    group: Vec<(ObjectId, Bytes)>,
    committer: &Committer,
    out: &mut Outcome,
    progress: &Progress,
) -> Result<(), PackFail> {
    if group.is_empty() {
        return Ok(());
    }
    let c = cache.clone();
    let results = tokio::task::spawn_blocking(move || {
        group
            .into_iter()
            .map(|(oid, b)| (oid, b.len() as u64, landing::stage_bytes(&c, kind, oid, &b)))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| PackFail::Fatal(e.to_string()))?;
    let mut staged = Vec::new();
    for (oid, len, r) in results {
        match r {
            Ok(s) => {
                staged.push(s);
                out.done.push(oid);
                out.bytes += len;
                progress.object_done(&oid, 0);
            }
            Err(Fail::Fatal(m)) => return Err(PackFail::Fatal(m)),
            Err(Fail::Object(message)) => out.failed.push(Failure { oid, message }),
            Err(Fail::Absent) => out.absent.push(oid),
        }
    }
    committer.add_many(staged).await.map_err(|f| match f {
        Fail::Fatal(m) | Fail::Object(m) => PackFail::Fatal(m),
        Fail::Absent => PackFail::Fatal("cache write failed".into()),
    })
}

async fn read_pack(
    r: &mut PackReader,
    cache: &Arc<Cache>,
    kind: HashKind,
    expected: &[ObjectId],
    committer: &Committer,
    progress: &Progress,
) -> Result<Outcome, (Outcome, PackFail)> {
    let mut out = Outcome::default();
    let mut group: Vec<(ObjectId, Bytes)> = Vec::new();
    let result: Result<(), PackFail> = async {
        r.fill(MAGIC.len()).await?;
        let mut m = [0u8; 8];
        m.copy_from_slice(&r.buf.split_to(8));
        check_magic(&m).map_err(|e| PackFail::Fatal(e.to_string()))?;
        for want in expected {
            r.fill(FRAME_HEADER_LEN).await?;
            let mut h = [0u8; FRAME_HEADER_LEN];
            h.copy_from_slice(&r.buf.split_to(FRAME_HEADER_LEN));
            let (oid, len) = match Frame::decode(&h) {
                Ok(Frame::Object { oid, len }) => (oid, len),
                Ok(Frame::End) => return Err(PackFail::Stream("pack ended early".into())),
                Err(e) => return Err(PackFail::Fatal(e.to_string())),
            };
            if oid != *want {
                return Err(PackFail::Fatal(format!(
                    "the server sent {oid} where {want} was expected"
                )));
            }
            progress.grow(len);
            if len <= IN_MEMORY_FRAME {
                r.fill(len as usize).await?;
                let data = r.buf.split_to(len as usize).freeze();
                progress.bytes(len);
                group.push((oid, data));
                if group.len() >= STAGE_GROUP {
                    stage_group(
                        cache,
                        kind,
                        std::mem::take(&mut group),
                        committer,
                        &mut out,
                        progress,
                    )
                    .await?;
                }
                continue;
            }
            let mut lander = Lander::start(cache.clone(), kind, oid).map_err(|f| match f {
                Fail::Fatal(m) | Fail::Object(m) => PackFail::Fatal(m),
                Fail::Absent => PackFail::Fatal("cache".into()),
            })?;
            let mut left = len;
            while left > 0 {
                if r.buf.is_empty() {
                    r.fill(1).await?;
                }
                let take = (r.buf.len() as u64).min(left) as usize;
                let piece = r.buf.split_to(take).freeze();
                left -= take as u64;
                progress.bytes(take as u64);
                let _ = lander.push(piece).await;
            }
            match lander.finish().await {
                Ok(staged) => {
                    committer.add(staged).await.map_err(|f| match f {
                        Fail::Fatal(m) | Fail::Object(m) => PackFail::Fatal(m),
                        Fail::Absent => PackFail::Fatal("cache".into()),
                    })?;
                    out.done.push(oid);
                    out.bytes += len;
                    progress.object_done(&oid, 0);
                }
                Err(Fail::Fatal(m)) => return Err(PackFail::Fatal(m)),
                Err(Fail::Object(message)) => out.failed.push(Failure { oid, message }),
                Err(Fail::Absent) => out.absent.push(oid),
            }
        }
        r.fill(FRAME_HEADER_LEN).await?;
        Ok(())
    }
    .await;
    let staged = stage_group(
        cache,
        kind,
        std::mem::take(&mut group),
        committer,
        &mut out,
        progress,
    )
    .await;
    match (result, staged) {
        (Ok(()), Ok(())) => Ok(out),
        (Err(e), _) | (Ok(()), Err(e)) => Err((out, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_split_by_count_and_bytes() {
        let items: Vec<u64> = vec![100; 10_000];
        let packs = split_packs(&items, 8, |s| *s);
        assert_eq!(packs.len(), 8);
        assert_eq!(packs.iter().map(Vec::len).sum::<usize>(), 10_000);
        let big: Vec<u64> = vec![1 << 20; 20];
        let packs = split_packs(&big, 1, |s| *s);
        assert!(packs
            .iter()
            .all(|p| p.iter().sum::<u64>() <= PACK_MAX_BYTES));
        assert!(split_packs::<u64>(&[], 4, |s| *s).is_empty());
        let few: Vec<u64> = vec![1; 10];
        assert_eq!(split_packs(&few, 8, |s| *s).len(), 1);
    }
}
