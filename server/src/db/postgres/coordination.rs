//! The coordination rules of [`crate::db::coordination`] kept in the database, so that every
//! server sharing it obeys them together:
//!
//! - the deployment claim is a session advisory lock on a connection kept for the claim's life:
//!   shared by serving processes, exclusive for `fsck`;
//! - blob holds and the collection's lease are rows with an expiry. Each process renews the rows
//!   it holds while it lives, so the rows of a process that died expire by themselves, and a
//!   dropped hold deletes its rows;
//! - an upload and a delete of the same blob each insert their row first and look for the
//!   other's second, in separate statements, so of two that race at least one sees the other:
//!   the upload withdraws and waits, the delete waits for uploads already holding the blob;
//! - the removal epoch is a row every removal updates in its own transaction;
//! - the token-signing secret is a row the first server to start inserts.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lode_proto::{HashKind, ObjectId};
use rand::RngCore;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, PgPool, Postgres, Transaction};

use super::PgIndex;
use crate::db::{now, Hold, IndexError, IndexResult, Occupant};

/// How long a hold or lease lives without being renewed.
const LEASE_SECS: i64 = 60;
/// How often a process renews what it holds.
pub(super) const RENEW_EVERY: Duration = Duration::from_secs(15);
/// The advisory lock key of the deployment claim.
const CLAIM_KEY: i64 = 0x6c6f_6465_0001;
/// How long a claim waits for one being released (a connection closing) before giving up.
const CLAIM_WAIT: Duration = Duration::from_secs(3);
/// Longest pause between two looks at a hold or lease that is taken.
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// Ids of the hold rows and tokens of the leases this process holds, renewed until dropped.
#[derive(Default)]
pub(super) struct Live {
    holds: HashSet<i64>,
    leases: HashSet<String>,
}

pub(super) type LiveSet = Arc<Mutex<Live>>;

/// Extends the expiry of everything this process holds.
pub(super) async fn renew(pool: &PgPool, live: &LiveSet) -> IndexResult<()> {
    let (holds, leases): (Vec<i64>, Vec<String>) = match live.lock() {
        Ok(l) => (
            l.holds.iter().copied().collect(),
            l.leases.iter().cloned().collect(),
        ),
        Err(_) => return Ok(()),
    };
    let until = now() + LEASE_SECS;
    if !holds.is_empty() {
        sqlx::query("UPDATE blob_holds SET expires_at = $1 WHERE id = ANY($2)")
            .bind(until)
            .bind(holds)
            .execute(pool)
            .await?;
    }
    if !leases.is_empty() {
        sqlx::query("UPDATE leases SET expires_at = $1 WHERE holder = ANY($2)")
            .bind(until)
            .bind(leases)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Rows of `blob_holds`, deleted when dropped.
struct HeldRows {
    pool: PgPool,
    live: LiveSet,
    ids: Vec<i64>,
}

impl HeldRows {
    fn new(ix: &PgIndex, ids: Vec<i64>) -> HeldRows {
        if let Ok(mut l) = ix.live.lock() {
            l.holds.extend(&ids);
        }
        HeldRows {
            pool: ix.pool.clone(),
            live: ix.live.clone(),
            ids,
        }
    }

    /// Deletes the rows now, rather than soon after the drop.
    async fn release(mut self) -> IndexResult<()> {
        let ids = std::mem::take(&mut self.ids);
        self.forget(&ids);
        delete_holds(&self.pool, ids).await
    }

    fn forget(&self, ids: &[i64]) {
        if let Ok(mut l) = self.live.lock() {
            for id in ids {
                l.holds.remove(id);
            }
        }
    }
}

async fn delete_holds(pool: &PgPool, ids: Vec<i64>) -> IndexResult<()> {
    sqlx::query("DELETE FROM blob_holds WHERE id = ANY($1)")
        .bind(ids)
        .execute(pool)
        .await?;
    Ok(())
}

impl Drop for HeldRows {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut self.ids);
        if ids.is_empty() {
            return;
        }
        self.forget(&ids);
        // Outside a runtime (the process is ending) the rows expire instead.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let pool = self.pool.clone();
            rt.spawn(async move {
                if let Err(e) = delete_holds(&pool, ids).await {
                    tracing::warn!("releasing blob holds (they expire by themselves): {e}");
                }
            });
        }
    }
}

/// Pauses between looks at something another holder has, a little longer each time.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(Duration::from_millis(5))
    }

    async fn pause(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(MAX_PAUSE);
    }
}

fn columns(blobs: &[(HashKind, ObjectId)]) -> (Vec<&'static str>, Vec<String>) {
    blobs
        .iter()
        .map(|(k, o)| (k.as_str(), o.to_string()))
        .unzip()
}

async fn insert_holds(
    ix: &PgIndex,
    blobs: &[(HashKind, ObjectId)],
    purpose: &str,
) -> IndexResult<HeldRows> {
    let (kinds, oids) = columns(blobs);
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO blob_holds (kind, oid, purpose, holder, expires_at)
             SELECT k, o, $3, $4, $5 FROM UNNEST($1::TEXT[], $2::TEXT[]) AS b(k, o)
             RETURNING id",
    )
    .bind(kinds)
    .bind(oids)
    .bind(purpose)
    .bind(&ix.holder)
    .bind(now() + LEASE_SECS)
    .fetch_all(&ix.pool)
    .await?;
    Ok(HeldRows::new(ix, ids))
}

/// Whether a live hold for `purpose` exists on any of `blobs`.
async fn held_for(
    ix: &PgIndex,
    blobs: &[(HashKind, ObjectId)],
    purpose: &str,
) -> IndexResult<bool> {
    let (kinds, oids) = columns(blobs);
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM blob_holds h
             JOIN UNNEST($1::TEXT[], $2::TEXT[]) AS b(k, o) ON h.kind = b.k AND h.oid = b.o
             WHERE h.purpose = $3 AND h.expires_at > $4)",
    )
    .bind(kinds)
    .bind(oids)
    .bind(purpose)
    .bind(now())
    .fetch_one(&ix.pool)
    .await?)
}

pub(super) async fn hold_for_upload(
    ix: &PgIndex,
    blobs: &[(HashKind, ObjectId)],
) -> IndexResult<Hold> {
    if blobs.is_empty() {
        return Ok(Hold::nothing());
    }
    let mut backoff = Backoff::new();
    loop {
        let held = insert_holds(ix, blobs, "upload").await?;
        if !held_for(ix, blobs, "delete").await? {
            return Ok(Hold::new(held));
        }
        // A collection is deleting one of these blobs: step aside until it is done.
        held.release().await?;
        backoff.pause().await;
    }
}

pub(super) async fn hold_for_delete(
    ix: &PgIndex,
    kind: HashKind,
    oid: ObjectId,
) -> IndexResult<Hold> {
    let blob = [(kind, oid)];
    // From here on new uploads of the blob wait; those already holding it are waited for.
    let held = insert_holds(ix, &blob, "delete").await?;
    let mut backoff = Backoff::new();
    while held_for(ix, &blob, "upload").await? {
        backoff.pause().await;
    }
    Ok(Hold::new(held))
}

/// A named lease, given up when dropped.
struct HeldLease {
    pool: PgPool,
    live: LiveSet,
    name: &'static str,
    token: String,
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        if let Ok(mut l) = self.live.lock() {
            l.leases.remove(&self.token);
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (pool, name, token) = (self.pool.clone(), self.name, self.token.clone());
            rt.spawn(async move {
                let done = sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                    .bind(name)
                    .bind(token)
                    .execute(&pool)
                    .await;
                if let Err(e) = done {
                    tracing::warn!("giving up the {name} lease (it expires by itself): {e}");
                }
            });
        }
    }
}

/// Waits until the lease `name` is free or expired, then takes it.
pub(super) async fn lease(ix: &PgIndex, name: &'static str) -> IndexResult<Hold> {
    let token = format!("{}/{}", ix.holder, uuid::Uuid::new_v4().simple());
    let mut backoff = Backoff::new();
    loop {
        let t = now();
        let taken: Option<String> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                     expires_at = excluded.expires_at
                 WHERE leases.expires_at <= $4
                 RETURNING holder",
        )
        .bind(name)
        .bind(&token)
        .bind(t + LEASE_SECS)
        .bind(t)
        .fetch_optional(&ix.pool)
        .await?;
        if taken.is_some() {
            if let Ok(mut l) = ix.live.lock() {
                l.leases.insert(token.clone());
            }
            return Ok(Hold::new(HeldLease {
                pool: ix.pool.clone(),
                live: ix.live.clone(),
                name,
                token,
            }));
        }
        backoff.pause().await;
    }
}

/// Claims the deployment: a shared advisory lock for a server, an exclusive one for `fsck`, on a
/// connection of its own that the claim keeps open (closing it releases the lock).
pub(super) async fn occupy(ix: &PgIndex, who: Occupant) -> IndexResult<Hold> {
    let sql = match who {
        Occupant::Admin => return Ok(Hold::nothing()),
        Occupant::Server => "SELECT pg_try_advisory_lock_shared($1)",
        Occupant::Fsck => "SELECT pg_try_advisory_lock($1)",
    };
    let mut conn = PgConnection::connect_with(&ix.options)
        .await
        .map_err(|e| ix.connect_error(e))?;
    let deadline = tokio::time::Instant::now() + CLAIM_WAIT;
    let mut backoff = Backoff::new();
    loop {
        let got: bool = sqlx::query_scalar(sql)
            .bind(CLAIM_KEY)
            .fetch_one(&mut conn)
            .await?;
        if got {
            return Ok(Hold::new(Mutex::new(conn)));
        }
        // A claim just dropped is released when the server notices its connection closed.
        if tokio::time::Instant::now() >= deadline {
            let by = match who {
                Occupant::Server => "lode-server fsck",
                _ => "another lode-server process (serve or fsck)",
            };
            return Err(IndexError::Occupied {
                what: ix.describe(),
                source: std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!("in use by {by}"),
                ),
            });
        }
        backoff.pause().await;
    }
}

/// Moves the removal epoch inside the transaction that removes references.
pub(super) async fn bump_epoch(tx: &mut Transaction<'_, Postgres>) -> IndexResult<()> {
    sqlx::query("UPDATE removal_epoch SET value = value + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Reads of the removal epoch, shared by the callers that wait for one: every request asks for
/// the epoch, and one query at a time answers all who arrived before it was sent.
#[derive(Default)]
pub(super) struct EpochReads {
    /// The number the next read will take.
    next: AtomicU64,
    /// The latest read: its number and what it found.
    last: tokio::sync::Mutex<Option<(u64, EpochRead)>>,
}

/// What one read of the epoch found, shared by the callers it answers.
type EpochRead = Result<u64, Arc<IndexError>>;

/// The epoch as read by a query sent after the caller arrived, so that a removal committed
/// before the call is always seen.
pub(super) async fn removal_epoch(ix: &PgIndex) -> IndexResult<u64> {
    let arrival = ix.epoch.next.load(Ordering::Acquire);
    let mut last = ix.epoch.last.lock().await;
    let shared = |r: &EpochRead| {
        r.clone().map_err(|source| IndexError::Batch {
            task: "reading the removal epoch",
            source,
        })
    };
    if let Some((n, r)) = &*last {
        // Read number n was sent after this caller arrived.
        if *n >= arrival {
            return shared(r);
        }
    }
    let n = ix.epoch.next.fetch_add(1, Ordering::AcqRel);
    let read = sqlx::query_scalar::<_, i64>("SELECT value FROM removal_epoch WHERE id = 1")
        .fetch_one(&ix.pool)
        .await
        .map(|v| v.max(0) as u64)
        .map_err(|e| Arc::new(IndexError::from(e)));
    let answer = shared(&read);
    *last = Some((n, read));
    answer
}

/// The secret tokens are signed with: the one stored, or a new one stored now by whichever
/// server asks first.
pub(super) async fn signing_secret(ix: &PgIndex) -> IndexResult<Vec<u8>> {
    let mut fresh = vec![0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    sqlx::query("INSERT INTO signing_secret (id, secret) VALUES (1, $1) ON CONFLICT DO NOTHING")
        .bind(fresh)
        .execute(&ix.pool)
        .await?;
    Ok(
        sqlx::query_scalar("SELECT secret FROM signing_secret WHERE id = 1")
            .fetch_one(&ix.pool)
            .await?,
    )
}
