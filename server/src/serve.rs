//! Running the server: open the data folder, bind, serve until SIGTERM/SIGINT, then let requests
//! in flight finish (uploads included) before flushing the audit log and exiting.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::app::{router, AppState};
use crate::auth::{load_or_create_secret, Auth};
use crate::config::ServerConfig;
use crate::datadir::DataDir;
use crate::db::{Db, DbError};
use crate::events::AuditSink;
use crate::store::{FsStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data folder {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

async fn shutdown_signal() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down: finishing requests in flight (signal again to stop at once)");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second signal: exiting without waiting");
        std::process::exit(130);
    });
}

pub async fn run(cfg: ServerConfig) -> Result<(), ServeError> {
    let dd_err = |source| ServeError::DataDir {
        path: cfg.data_dir.display().to_string(),
        source,
    };
    let data = DataDir::prepare(&cfg.data_dir).map_err(dd_err)?;
    let _lock = data.lock().map_err(dd_err)?;
    let secret = load_or_create_secret(&data.path).map_err(dd_err)?;
    let db = Db::open(&data.db_path(), cfg.db_max_connections).await?;
    let store = FsStore::open(&data.path, cfg.max_object_size)?;
    let cleaned = store.clean_tmp()?;
    if cleaned > 0 {
        tracing::info!("removed {cleaned} unfinished upload(s) left by an earlier run");
    }
    let auth = Auth::new(db.clone(), &secret);
    let audit = AuditSink::start(db.clone());
    let state = Arc::new(AppState::new(
        db.clone(),
        Arc::new(store),
        auth,
        audit.clone(),
        cfg.clone(),
    ));

    let flusher = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                if let Err(e) = state.auth.flush_last_used().await {
                    tracing::warn!("recording token use failed: {e}");
                }
            }
        })
    };

    let listener = TcpListener::bind(&cfg.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: cfg.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("lode-server listening on http://{addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(data = %data.path.display(), "listening on http://{addr}");

    axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(ServeError::Serve)?;

    flusher.abort();
    audit.flush().await;
    if let Err(e) = state.auth.flush_last_used().await {
        tracing::warn!("recording token use failed: {e}");
    }
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}
