//! Liveness (`/healthz`), readiness (`/readyz`: the index answers and the blob store takes a
//! write) and Prometheus metrics (`/metrics`).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::SharedState;
use crate::error::ApiError;

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers and the blob folder takes a write.
async fn readyz(State(state): State<SharedState>) -> Response {
    if let Err(e) = state.db.ping().await {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("database: {e}"),
        )
        .into_response();
    }
    if let Err(e) = state.store.check_ready().await {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("blob store: {e}"),
        )
        .into_response();
    }
    Json(json!({"status": "ready"})).into_response()
}

async fn metrics(State(state): State<SharedState>) -> Response {
    let refs = state.db.count_object_refs().await.ok();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(refs),
    )
        .into_response()
}
