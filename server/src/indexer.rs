//! Group commit of object references: concurrent uploads hand their reference to one task that
//! writes whatever has queued up in a single transaction, so many small uploads share one commit.

use tokio::sync::{mpsc, oneshot};

use crate::db::{Db, DbError, ObjectRef};

type Reply = oneshot::Sender<Result<bool, String>>;

#[derive(Clone)]
pub struct Indexer {
    tx: mpsc::Sender<(ObjectRef, Reply)>,
}

/// References written per transaction at most.
const BATCH: usize = 512;

impl Indexer {
    pub fn start(db: Db) -> Indexer {
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
                        let msg = e.to_string();
                        for reply in replies.drain(..) {
                            let _ = reply.send(Err(msg.clone()));
                        }
                    }
                }
                refs.clear();
            }
        });
        Indexer { tx }
    }

    /// Records the reference durably; true when the project did not hold the object before.
    pub async fn add(&self, r: ObjectRef) -> Result<bool, DbError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((r, reply))
            .await
            .map_err(|_| DbError::Writer("stopped".into()))?;
        answer
            .await
            .map_err(|_| DbError::Writer("stopped".into()))?
            .map_err(DbError::Writer)
    }
}
