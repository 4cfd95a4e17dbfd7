//! The audit trail written in the background, so pushes and pulls do not wait on it.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::db::{now, AuditEvent, Index};

enum Msg {
    Event(AuditEvent),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub(crate) struct AuditSink {
    tx: mpsc::Sender<Msg>,
}

/// Events batched per transaction.
const BATCH: usize = 2048;
/// How long the writer waits for more events before writing a batch.
const LINGER: std::time::Duration = std::time::Duration::from_millis(50);

impl AuditSink {
    /// Starts the writer task.
    pub(crate) fn start(db: Arc<dyn Index>) -> AuditSink {
        let (tx, mut rx) = mpsc::channel::<Msg>(16 * 1024);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(first) = rx.recv().await {
                // Linger briefly so a busy server writes events in batches, not one
                // transaction per download; a flush request cuts the wait short.
                let deadline = tokio::time::Instant::now() + LINGER;
                let mut waiting = Vec::new();
                let mut next = Some(first);
                while let Some(msg) = next.take() {
                    match msg {
                        Msg::Event(e) => batch.push(e),
                        Msg::Flush(done) => {
                            waiting.push(done);
                            break;
                        }
                    }
                    if batch.len() >= BATCH {
                        break;
                    }
                    next = tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .ok()
                        .flatten();
                }
                if let Err(e) = db.append_audit(&batch).await {
                    tracing::error!("writing {} audit events failed: {e}", batch.len());
                }
                batch.clear();
                for w in waiting {
                    let _ = w.send(());
                }
            }
        });
        AuditSink { tx }
    }

    pub(crate) async fn record(
        &self,
        actor: String,
        action: &str,
        project: Option<&str>,
        target: Option<String>,
        detail: Option<String>,
    ) {
        let event = AuditEvent {
            at: now(),
            actor,
            action: action.to_string(),
            project: project.map(str::to_string),
            target,
            detail,
        };
        if self.tx.send(Msg::Event(event)).await.is_err() {
            tracing::error!("audit writer has stopped; event dropped");
        }
    }

    /// Waits until everything recorded so far is in the database.
    pub(crate) async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
