//! Group commit of object references: concurrent uploads hand their reference to one task that
//! writes whatever has queued up in a single transaction, so many small uploads share one commit.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::db::{Index, IndexError, ObjectRef};

type Reply = oneshot::Sender<Result<bool, Arc<IndexError>>>;

#[derive(Clone)]
pub(crate) struct Indexer {
    tx: mpsc::Sender<(ObjectRef, Reply)>,
}

/// References written per transaction at most.
const BATCH: usize = 512;

impl Indexer {
    pub(crate) fn start(db: Arc<dyn Index>) -> Indexer {
        let (tx, mut rx) = mpsc::channel::<(ObjectRef, Reply)>(4 * BATCH);
        tokio::spawn(async move {
            let mut refs = Vec::with_capacity(BATCH);
            let mut replies = Vec::with_capacity(BATCH);
            while let Some((r, reply)) = rx.recv().await {
                refs.push(r);
                replies.push(reply);
                while refs.len() < BATCH {
                    match rx.try_recv() {
                        Ok((r, reply)) => {
                            refs.push(r);
                            replies.push(reply);
                        }
                        Err(_) => break,
                    }
                }
                match db.add_objects_each(&refs).await {
                    Ok(added) => {
                        for (reply, new) in replies.drain(..).zip(added) {
                            let _ = reply.send(Ok(new));
                        }
                    }
                    Err(e) => {
                        let e = Arc::new(e);
                        for reply in replies.drain(..) {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
                refs.clear();
            }
        });
        Indexer { tx }
    }

    /// Records the reference durably; true when the project did not hold the object before.
    pub(crate) async fn add(&self, r: ObjectRef) -> Result<bool, IndexError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || IndexError::Stopped("index writer");
        self.tx.send((r, reply)).await.map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(|source| IndexError::Batch {
                task: "index writer",
                source,
            })
    }
}
