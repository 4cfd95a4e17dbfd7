//! The HTTP client shared by both HTTP remotes (one connection pool, retries with exponential
//! backoff), and the plain DVC HTTP remote protocol for servers that are not `lode-server`:
//! existence by `HEAD`/`GET`, uploads by `POST` or `PUT` of the raw bytes, downloads by `GET`.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use lode_proto::{HashKind, ObjectId};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use super::landing::{self, Lander};
use super::progress::Progress;
use super::settings::{HttpSettings, SslVerify};
use super::{redact, Download, Fail, Failure, Outcome, RemoteError, Upload};
use crate::cache::Cache;

/// Attempts of a request before its failure counts.
const ATTEMPTS: u32 = 5;
/// Upload bodies are read from the cache in pieces of this size.
const UPLOAD_PIECE: usize = 1 << 20;

#[derive(Clone)]
pub struct Http {
    pub client: reqwest::Client,
    auth: Option<(HeaderName, HeaderValue)>,
    /// The remote's name, for messages.
    pub remote: String,
}

/// Text of an error and its causes, without any URL (callers add a redacted one).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    chain(&e)
}

/// Backoff before attempt `n` (1-based): 100 ms doubling, at most 3 s, with jitter so parallel
/// requests do not retry in lockstep.
fn backoff(n: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << n.min(5)).min(3000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    Duration::from_millis(base / 2 + nanos % (base / 2 + 1))
}

/// The server's explanation of a failed request: its JSON error message, else its status.
pub async fn explain(resp: Response) -> String {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<lode_proto::api::ErrorBody>(&text)
        .map(|b| b.error.message)
        .unwrap_or_else(|_| {
            text.chars()
                .take(200)
                .collect::<String>()
                .trim()
                .to_string()
        });
    if detail.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {detail}")
    }
}

/// Classifies a non-success answer about one object.
pub async fn status_fail(resp: Response, url: &str) -> Fail {
    let status = resp.status();
    let msg = explain(resp).await;
    match status {
        StatusCode::NOT_FOUND => Fail::Absent,
        StatusCode::UNAUTHORIZED => Fail::Fatal(format!(
            "{msg} ({}); check the remote's credentials or LODE_TOKEN",
            redact(url)
        )),
        StatusCode::FORBIDDEN => Fail::Fatal(format!(
            "{msg} ({}); the token's role is too low for this",
            redact(url)
        )),
        _ => Fail::Object(format!("{msg} ({})", redact(url))),
    }
}

impl Http {
    pub fn new(remote: &str, s: &HttpSettings) -> Result<Http, RemoteError> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(s.connect_timeout)
            .read_timeout(s.read_timeout)
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .user_agent(concat!("lode/", env!("CARGO_PKG_VERSION")));
        match &s.ssl {
            SslVerify::On => {}
            SslVerify::Off => b = b.tls_danger_accept_invalid_certs(true),
            SslVerify::Bundle(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    RemoteError::Config(format!(
                        "config file error: remote '{remote}': ssl_verify bundle '{path}': {e}"
                    ))
                })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    RemoteError::Config(format!(
                        "config file error: remote '{remote}': ssl_verify bundle '{path}': {}",
                        describe(e)
                    ))
                })?;
                // As Python's `load_verify_locations`, which DVC calls: a bundle must hold one.
                if certs.is_empty() {
                    return Err(RemoteError::Config(format!(
                        "config file error: remote '{remote}': ssl_verify bundle '{path}' holds no PEM certificate"
                    )));
                }
                b = b.tls_certs_merge(certs);
            }
        }
        let client = b.build().map_err(|e| {
            RemoteError::Fatal(format!(
                "remote '{remote}': cannot set up HTTP: {}",
                describe(e)
            ))
        })?;
        let auth = match &s.auth {
            None => None,
            Some((name, value)) => {
                let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    RemoteError::Config(format!(
                        "config file error: remote '{remote}': '{name}' is not a valid header name"
                    ))
                })?;
                let mut v = HeaderValue::from_str(value).map_err(|_| {
                    RemoteError::Config(format!(
                        "config file error: remote '{remote}': the credential is not a valid header value"
                    ))
                })?;
                v.set_sensitive(true);
                Some((n, v))
            }
        };
        Ok(Http {
            client,
            auth,
            remote: remote.to_string(),
        })
    }

    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let r = self.client.request(method, url);
        match &self.auth {
            Some((n, v)) => r.header(n.clone(), v.clone()),
            None => r,
        }
    }

    /// Sends a request built by `make`, retrying connection failures and 5xx answers with
    /// backoff. `make` is called again for each attempt, so bodies are rebuilt from their source.
    pub async fn send<F>(&self, url: &str, make: F) -> Result<Response, Fail>
    where
        F: Fn() -> Result<RequestBuilder, Fail>,
    {
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(backoff(attempt - 1)).await;
            }
            match make()?.send().await {
                Ok(r) if r.status().is_server_error() && attempt < ATTEMPTS => {
                    last = explain(r).await;
                }
                Ok(r) => return Ok(r),
                Err(e) if e.is_builder() => return Err(Fail::Fatal(describe(e))),
                Err(e) => {
                    last = describe(e);
                }
            }
        }
        Err(Fail::Fatal(format!(
            "could not reach {} after {ATTEMPTS} attempts: {last}",
            redact(url)
        )))
    }
}

/// Runs `f` over `items` with at most `jobs` at once, stopping at the first fatal failure.
pub async fn for_each_limited<T, R, Fut, F>(
    items: Vec<T>,
    jobs: usize,
    f: F,
) -> Result<Vec<(T, Result<R, Fail>)>, String>
where
    T: Clone + Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R, Fail>>,
{
    let mut stream = futures::stream::iter(items.into_iter().map(|t| {
        let fut = f(t.clone());
        async move { (t, fut.await) }
    }))
    .buffer_unordered(jobs.max(1));
    let mut out = Vec::new();
    while let Some((t, r)) = stream.next().await {
        if let Err(Fail::Fatal(m)) = &r {
            return Err(m.clone());
        }
        out.push((t, r));
    }
    Ok(out)
}

/// A file of the cache as a request body, read in pieces (never whole in memory).
pub fn file_body(path: std::path::PathBuf) -> Result<reqwest::Body, Fail> {
    let file = std::fs::File::open(&path)
        .map_err(|e| Fail::Object(format!("cannot read {}: {e}", path.display())))?;
    let stream = futures::stream::try_unfold(file, |mut file| async move {
        let (file, piece) = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; UPLOAD_PIECE];
            let n = crate::hash::read_full(&mut file, &mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((file, buf))
        })
        .await
        .map_err(std::io::Error::other)??;
        if piece.is_empty() {
            Ok::<_, std::io::Error>(None)
        } else {
            Ok(Some((bytes::Bytes::from(piece), file)))
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
}

/// Streams a response body into the cache through a verifying [`Lander`].
/// Downloads one object with a plain GET, verifies it while it lands, and hands it to the
/// committer; answers its size.
pub async fn download_object(
    http: &Http,
    url: &str,
    cache: &Arc<Cache>,
    kind: HashKind,
    oid: ObjectId,
    committer: &landing::Committer,
    progress: &Progress,
) -> Result<u64, Fail> {
    let resp = http
        .send(url, || Ok(http.request(Method::GET, url)))
        .await?;
    if !resp.status().is_success() {
        return Err(status_fail(resp, url).await);
    }
    let staged = land_response(cache, kind, oid, resp, progress).await?;
    let size = staged.size;
    committer.add(staged).await?;
    progress.object_done(&oid, 0);
    Ok(size)
}

pub async fn land_response(
    cache: &Arc<Cache>,
    kind: HashKind,
    oid: ObjectId,
    resp: Response,
    progress: &Progress,
) -> Result<crate::cache::Staged, Fail> {
    let mut lander = Lander::start(cache.clone(), kind, oid)?;
    let mut body = resp.bytes_stream().map_err(describe);
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|m| Fail::Object(format!("download interrupted: {m}")))?;
        progress.bytes(piece.len() as u64);
        lander.push(piece).await?;
    }
    lander.finish().await
}

/// A server speaking DVC's HTTP remote protocol.
pub struct DvcHttp {
    http: Http,
    base: String,
    put: bool,
}

impl DvcHttp {
    pub fn new(http: Http, url: &str, put: bool) -> DvcHttp {
        DvcHttp {
            http,
            base: url.trim_end_matches('/').to_string(),
            put,
        }
    }

    fn url_of(&self, kind: HashKind, oid: &ObjectId) -> String {
        format!("{}/{}", self.base, oid.dvc_key(kind))
    }

    async fn exists(&self, kind: HashKind, oid: ObjectId) -> Result<bool, Fail> {
        let url = self.url_of(kind, &oid);
        let resp = self
            .http
            .send(&url, || Ok(self.http.request(Method::HEAD, &url)))
            .await?;
        let resp = if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
            self.http
                .send(&url, || Ok(self.http.request(Method::GET, &url)))
                .await?
        } else {
            resp
        };
        if resp.status().is_success() || resp.status().is_redirection() {
            return Ok(true);
        }
        match status_fail(resp, &url).await {
            Fail::Absent | Fail::Object(_) => Ok(false),
            fatal => Err(fatal),
        }
    }

    pub async fn missing(
        &self,
        kind: HashKind,
        oids: &[ObjectId],
        jobs: usize,
    ) -> Result<HashSet<ObjectId>, String> {
        let results = for_each_limited(oids.to_vec(), jobs * 2, |oid| async move {
            match self.exists(kind, oid).await {
                Ok(true) => Ok(1),
                Ok(false) => Ok(0),
                Err(e) => Err(e),
            }
        })
        .await?;
        Ok(results
            .into_iter()
            .filter(|(_, r)| !matches!(r, Ok(1)))
            .map(|(o, _)| o)
            .collect())
    }

    pub async fn put_object(
        http: &Http,
        url: &str,
        method: Method,
        path: std::path::PathBuf,
        size: u64,
    ) -> Result<u64, Fail> {
        let resp = http
            .send(url, || {
                Ok(http
                    .request(method.clone(), url)
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .header(reqwest::header::CONTENT_LENGTH, size)
                    .body(file_body(path.clone())?))
            })
            .await?;
        if resp.status().is_success() || resp.status().is_redirection() {
            return Ok(size);
        }
        match status_fail(resp, url).await {
            Fail::Absent => Err(Fail::Object(format!("404 Not Found ({})", redact(url)))),
            other => Err(other),
        }
    }

    pub async fn upload(
        &self,
        cache: &Arc<Cache>,
        kind: HashKind,
        items: Vec<Upload>,
        jobs: usize,
        progress: &Progress,
    ) -> Result<Outcome, String> {
        let method = if self.put { Method::PUT } else { Method::POST };
        let results = for_each_limited(items, jobs, |u| {
            let url = self.url_of(kind, &u.oid);
            let path = cache.object_path(&u.oid, kind);
            let method = method.clone();
            async move {
                let r = Self::put_object(&self.http, &url, method, path, u.size).await;
                if r.is_ok() {
                    progress.object_done(&u.oid, u.size);
                }
                r
            }
        })
        .await?;
        Ok(collect_outcome(
            results.into_iter().map(|(u, r)| (u.oid, r)),
        ))
    }

    pub async fn download(
        &self,
        cache: &Arc<Cache>,
        kind: HashKind,
        items: Vec<Download>,
        jobs: usize,
        progress: &Progress,
    ) -> Result<Outcome, String> {
        let committer = landing::Committer::new(cache.clone());
        let results = for_each_limited(items, jobs, |d| {
            let url = self.url_of(kind, &d.oid);
            let committer = committer.clone();
            async move {
                download_object(&self.http, &url, cache, kind, d.oid, &committer, progress).await
            }
        })
        .await;
        let committed = committer.finish().await;
        let results = results?;
        committed.map_err(|m| format!("cannot write to the cache: {m}"))?;
        Ok(collect_outcome(
            results.into_iter().map(|(d, r)| (d.oid, r)),
        ))
    }

    pub async fn read_small(&self, kind: HashKind, oid: ObjectId) -> Result<Option<Vec<u8>>, Fail> {
        let url = self.url_of(kind, &oid);
        read_verified(&self.http, &url, kind, oid).await
    }
}

/// GETs one object into memory and verifies it.
pub async fn read_verified(
    http: &Http,
    url: &str,
    kind: HashKind,
    oid: ObjectId,
) -> Result<Option<Vec<u8>>, Fail> {
    let resp = http
        .send(url, || Ok(http.request(Method::GET, url)))
        .await?;
    if !resp.status().is_success() {
        return match status_fail(resp, url).await {
            Fail::Absent => Ok(None),
            other => Err(other),
        };
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Fail::Object(format!("download interrupted: {}", describe(e))))?;
    super::verify_bytes(kind, &oid, &bytes).map_err(Fail::Object)?;
    Ok(Some(bytes.to_vec()))
}

/// Sorts per-object results into an [`Outcome`].
pub fn collect_outcome(results: impl Iterator<Item = (ObjectId, Result<u64, Fail>)>) -> Outcome {
    let mut o = Outcome::default();
    for (oid, r) in results {
        match r {
            Ok(n) => {
                o.done.push(oid);
                o.bytes += n;
            }
            Err(Fail::Absent) => o.absent.push(oid),
            Err(Fail::Object(message)) | Err(Fail::Fatal(message)) => {
                o.failed.push(Failure { oid, message })
            }
        }
    }
    o
}
