//! Existence lookups of single objects, batched: checks that arrive while a query runs are
//! answered together by the next one, so a burst of DVC's one-object-per-request checks costs
//! a few queries instead of a round trip to SQLite's worker thread each.

use std::collections::HashMap;

use lode_proto::{HashKind, ObjectId};
use tokio::sync::{mpsc, oneshot};

use std::sync::Arc;

use crate::db::{Index, IndexError};

type Reply = oneshot::Sender<Result<Option<u64>, Arc<IndexError>>>;

struct Lookup {
    project_id: i64,
    kind: HashKind,
    oid: ObjectId,
    reply: Reply,
}

/// Lookups answered by one round of queries at most.
const BATCH: usize = 1024;

#[derive(Clone)]
pub(crate) struct Lookups {
    tx: mpsc::Sender<Lookup>,
}

impl Lookups {
    pub(crate) fn start(db: Arc<dyn Index>) -> Lookups {
        let (tx, rx) = mpsc::channel(4 * BATCH);
        tokio::spawn(answer(db, rx));
        Lookups { tx }
    }

    /// The object's size if the project holds it, as the index says now.
    pub(crate) async fn size(
        &self,
        project_id: i64,
        kind: HashKind,
        oid: ObjectId,
    ) -> Result<Option<u64>, IndexError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || IndexError::Stopped("index lookup");
        self.tx
            .send(Lookup {
                project_id,
                kind,
                oid,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(|source| IndexError::Batch {
                task: "index lookup",
                source,
            })
    }
}

async fn answer(db: Arc<dyn Index>, mut rx: mpsc::Receiver<Lookup>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(l) => batch.push(l),
                Err(_) => break,
            }
        }
        let mut groups: HashMap<(i64, HashKind), Vec<Lookup>> = HashMap::new();
        for l in batch.drain(..) {
            groups.entry((l.project_id, l.kind)).or_default().push(l);
        }
        for ((project_id, kind), lookups) in groups {
            let oids: Vec<ObjectId> = lookups.iter().map(|l| l.oid).collect();
            match db.object_sizes(project_id, kind, &oids).await {
                Ok(found) => {
                    for l in lookups {
                        let _ = l.reply.send(Ok(found.get(&l.oid).copied()));
                    }
                }
                Err(e) => {
                    let e = Arc::new(e);
                    for l in lookups {
                        let _ = l.reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sqlite::testing::temp_index;
    use crate::db::ObjectRef;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lookups_get_their_own_answers() {
        let (db, _dir) = temp_index().await;
        db.create_project("p").await.unwrap();
        let pid = db.require_project("p").await.unwrap();
        let oid = |i: u32| {
            ObjectId::from_digest(
                lode_objio::hash::digest_of(HashKind::Md5, &i.to_le_bytes()),
                false,
            )
        };
        let refs: Vec<ObjectRef> = (0..50u32)
            .map(|i| ObjectRef {
                project_id: pid,
                kind: HashKind::Md5,
                oid: oid(i),
                size: u64::from(i),
                created_at: 0,
            })
            .collect();
        db.add_objects(&refs).await.unwrap();
        let lookups = Lookups::start(db);
        let tasks: Vec<_> = (0..100u32)
            .map(|i| {
                let lookups = lookups.clone();
                tokio::spawn(async move {
                    let kind = if i % 7 == 0 {
                        HashKind::Md5Dos2unix
                    } else {
                        HashKind::Md5
                    };
                    (i, kind, lookups.size(pid, kind, oid(i)).await.unwrap())
                })
            })
            .collect();
        for t in tasks {
            let (i, kind, size) = t.await.unwrap();
            let expected = (i < 50 && kind == HashKind::Md5).then_some(u64::from(i));
            assert_eq!(size, expected, "object {i} ({kind})");
        }
        assert_eq!(
            lookups.size(pid + 1, HashKind::Md5, oid(1)).await.unwrap(),
            None
        );
    }
}
