//! The shared state and the axum router with its tower-http layers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use lode_proto::Role;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::auth::{Auth, Principal};
use crate::config::ServerConfig;
use crate::db::Index;
use crate::error::{ApiError, ApiResult};
use crate::events::AuditSink;
use crate::held::HeldCache;
use crate::indexer::Indexer;
use crate::lookups::Lookups;
use crate::metrics::Metrics;
use crate::routes;
use crate::store::BlobStore;

const PROJECT_CACHE_TTL: Duration = Duration::from_secs(2);

pub(crate) struct AppState {
    pub db: Arc<dyn Index>,
    pub store: Arc<dyn BlobStore>,
    pub auth: Auth,
    pub metrics: Metrics,
    pub audit: AuditSink,
    pub indexer: Indexer,
    pub lookups: Lookups,
    pub held: HeldCache,
    pub config: ServerConfig,
    projects: Mutex<HashMap<String, (Instant, Option<i64>)>>,
}

pub(crate) type SharedState = Arc<AppState>;

impl AppState {
    pub(crate) fn new(
        db: Arc<dyn Index>,
        store: Arc<dyn BlobStore>,
        auth: Auth,
        audit: AuditSink,
        config: ServerConfig,
    ) -> AppState {
        AppState {
            indexer: Indexer::start(db.clone()),
            lookups: Lookups::start(db.clone()),
            held: HeldCache::default(),
            db,
            store,
            auth,
            metrics: Metrics::default(),
            audit,
            config,
            projects: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets cached names and roles after an administrative change.
    pub(crate) fn invalidate(&self) {
        self.auth.invalidate();
        if let Ok(mut p) = self.projects.lock() {
            p.clear();
        }
    }

    async fn project_id(&self, name: &str) -> ApiResult<Option<i64>> {
        if let Ok(cache) = self.projects.lock() {
            if let Some((at, id)) = cache.get(name) {
                if at.elapsed() < PROJECT_CACHE_TTL {
                    return Ok(*id);
                }
            }
        }
        let id = self.db.project_id(name).await?;
        if let Ok(mut cache) = self.projects.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(name.to_string(), (Instant::now(), id));
        }
        Ok(id)
    }

    /// The size of an object if the project holds it.
    pub(crate) async fn held_size(
        &self,
        project_id: i64,
        key: crate::store::BlobKey,
    ) -> ApiResult<Option<u64>> {
        let removals = self.db.removal_epoch().await?;
        if let Some(known) = self.held.get(removals, project_id, key.kind, &key.oid) {
            return Ok(known);
        }
        let epoch = self.held.epoch();
        let size = self.lookups.size(project_id, key.kind, key.oid).await?;
        self.held
            .remember(epoch, removals, project_id, key.kind, &key.oid, size);
        Ok(size)
    }

    /// Checks that `p` holds at least `needed` on project `name` and returns the project's id.
    ///
    /// A caller with no grant gets the same 404 whether or not the project exists, so tokens
    /// learn nothing about projects they cannot see. A caller that can see the project but lacks
    /// the role gets 403.
    pub(crate) async fn project_access(
        &self,
        p: &Principal,
        name: &str,
        needed: Role,
    ) -> ApiResult<i64> {
        lode_proto::validate_project_name(name)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let hidden = || ApiError::not_found(format!("project '{name}' not found"));
        let Some(id) = self.project_id(name).await? else {
            return Err(hidden());
        };
        match self.auth.role_on(p, id).await? {
            None => Err(hidden()),
            Some(r) if r < needed => Err(ApiError::forbidden(format!(
                "this token has {r} access to project '{name}'; {needed} is needed"
            ))),
            Some(_) => Ok(id),
        }
    }
}

/// Route label for metrics: the API's route groups, health endpoints, or object access.
fn route_label(path: &str) -> &'static str {
    if let Some(rest) = path.strip_prefix("/api/v1/") {
        let mut seg = rest.split('/');
        return match seg.next() {
            Some("whoami") => "api/whoami",
            Some("projects") => match (seg.next(), seg.next()) {
                (None, _) | (Some(_), None) => "api/projects",
                (Some(_), Some("objects")) => "api/objects/batch",
                (Some(_), Some("grants")) => "api/grants",
                (Some(_), Some("usage")) => "api/usage",
                (Some(_), Some("audit")) => "api/audit",
                (Some(_), Some("tokens")) => "api/tokens",
                _ => "api/other",
            },
            Some("users") => "api/users",
            Some("groups") => "api/groups",
            Some("tokens") => "api/tokens",
            Some("audit") => "api/audit",
            _ => "api/other",
        };
    }
    match path {
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/metrics" => "metrics",
        _ if path.contains("/files/md5/") => "object",
        _ => "object_legacy",
    }
}

async fn track(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let route = route_label(req.uri().path());
    let method = req.method().clone();
    let resp = next.run(req).await;
    state
        .metrics
        .request(route, method.as_str(), resp.status().as_u16());
    resp
}

pub(crate) fn router(state: SharedState) -> Router {
    let cfg = &state.config;
    let api = routes::api::router()
        .layer(
            ServiceBuilder::new()
                .layer(RequestBodyLimitLayer::new(cfg.api_body_limit))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    cfg.request_timeout,
                ))
                .layer(CompressionLayer::new()),
        )
        // Bulk transfers stream for as long as they take, like single objects: outside the
        // API's request timeout and JSON body limit.
        .merge(routes::packs::router())
        .fallback(routes::api::not_found);

    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .nest("/api/v1", api)
        .merge(routes::health::router())
        .fallback(routes::objects::handle)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(RequestBodyTimeoutLayer::new(cfg.body_timeout))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    // Spans carry method, path and request id only: never headers, where tokens live.
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let id = req
                                .headers()
                                .get("x-request-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-");
                            tracing::info_span!(
                                "request",
                                method = %req.method(),
                                path = %req.uri().path(),
                                request_id = %id,
                            )
                        })
                        .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG)),
                )
                .layer(PropagateRequestIdLayer::new(request_id)),
        )
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn labels() {
        assert_eq!(route_label("/p/files/md5/ab/cd"), "object");
        assert_eq!(route_label("/p/ab/cd"), "object_legacy");
        assert_eq!(
            route_label("/api/v1/projects/p/objects/batch"),
            "api/objects/batch"
        );
        assert_eq!(route_label("/api/v1/projects"), "api/projects");
        assert_eq!(route_label("/healthz"), "healthz");
    }
}
