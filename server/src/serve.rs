//! Running the server: open the data folder, bind, serve until SIGTERM/SIGINT, then let requests
//! in flight finish (uploads included) before flushing the audit log and exiting.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::app::{router, AppState};
use crate::auth::Auth;
use crate::backends::{open_backends, BackendError};
use crate::config::{BlobStoreConfig, ConfigError, ServerConfig};
use crate::db::Occupant;
use crate::events::AuditSink;
use crate::store::StoreError;
use crate::tls::{Incoming, ServerTls, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// How often a server looks for multipart uploads left unfinished past the grace period.
const UNFINISHED_CHECK: Duration = Duration::from_secs(3600);

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
    // Checked before the data folder is touched: a bad certificate changes nothing there.
    let tls = match cfg.tls_files()? {
        Some(files) => Some(Arc::new(ServerTls::load(files)?)),
        None => None,
    };
    let backends = open_backends(&cfg, Occupant::Server).await?;
    let secret = backends.signing_secret().await?;
    let db = backends.index.clone();
    let store = backends.store.clone();
    let cleaned = backends.upkeep.clean_unfinished().await?;
    if cleaned > 0 {
        tracing::info!("removed {cleaned} unfinished upload(s) left by an earlier run");
    }
    let auth = Auth::new(db.clone(), &secret);
    let audit = AuditSink::start(db.clone());
    let state = Arc::new(AppState::new(
        db.clone(),
        store,
        auth,
        audit.clone(),
        cfg.clone(),
    ));

    // Uploads a crashed replica left are found by whichever replica looks next; the filesystem
    // store's are only cleaned at start, when no upload can be in flight.
    let tidier = matches!(cfg.blob_store, BlobStoreConfig::S3 { .. }).then(|| {
        let upkeep = backends.upkeep.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UNFINISHED_CHECK);
            tick.tick().await;
            loop {
                tick.tick().await;
                match upkeep.clean_unfinished().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        "aborted {n} upload(s) left unfinished past the grace period"
                    ),
                    Err(e) => tracing::warn!("cleaning up unfinished uploads failed: {e}"),
                }
            }
        })
    });

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
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("lode-server listening on {scheme}://{addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(data = %backends.describe(), "listening on {scheme}://{addr}");
    if let Some(t) = &tls {
        t.reload_on_sighup();
    }

    axum::serve(
        Incoming::new(listener, tls.as_deref()),
        router(state.clone()),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(ServeError::Serve)?;

    flusher.abort();
    if let Some(t) = tidier {
        t.abort();
    }
    audit.flush().await;
    if let Err(e) = state.auth.flush_last_used().await {
        tracing::warn!("recording token use failed: {e}");
    }
    backends.close().await;
    tracing::info!("stopped");
    Ok(())
}
