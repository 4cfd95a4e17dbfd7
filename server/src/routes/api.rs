//! The native JSON API under `/api/v1`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use lode_proto::api::{
    AuditEntry, BatchExistsRequest, BatchExistsResponse, CreateTokenRequest, CreateUserRequest,
    CreatedToken, GrantInfo, GrantRequest, GroupInfo, NameRequest, ProjectInfo, TokenInfo,
    UsageInfo, UserInfo, WhoAmI,
};
use lode_proto::{validate_project_name, Role};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::Caller;
use crate::app::SharedState;
use crate::auth::{Principal, Scope, TokenScope};
use crate::db::Grantee;
use crate::error::{ApiError, ApiResult};

/// Ids accepted in one batch existence call.
pub const MAX_BATCH: usize = 100_000;

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/projects", get(list_projects).post(create_project))
        .route("/projects/{p}", get(get_project).delete(delete_project))
        .route("/projects/{p}/objects/batch", post(batch_exists))
        .route("/projects/{p}/usage", get(usage))
        .route("/projects/{p}/audit", get(project_audit))
        .route("/projects/{p}/grants", get(list_grants).post(set_grant))
        .route("/projects/{p}/grants/{kind}/{name}", delete(remove_grant))
        .route("/projects/{p}/tokens", get(project_tokens))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{u}", delete(delete_user))
        .route("/groups", get(list_groups).post(create_group))
        .route("/groups/{g}", delete(delete_group))
        .route(
            "/groups/{g}/members/{u}",
            put(add_member).delete(remove_member),
        )
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
        .route("/audit", get(audit))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such API route")
}

fn parse_json<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON request body: {e}")))
}

fn valid_name(kind: &str, name: &str) -> ApiResult<()> {
    validate_project_name(name).map_err(|e| ApiError::bad_request(format!("{kind}: {e}")))
}

fn require_server_admin(p: &Principal) -> ApiResult<()> {
    if p.is_server_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("this needs a server admin token"))
    }
}

async fn whoami(Caller(p): Caller) -> Json<WhoAmI> {
    Json(p.whoami())
}

async fn list_projects(
    State(s): State<SharedState>,
    Caller(p): Caller,
) -> ApiResult<Json<Vec<ProjectInfo>>> {
    let all = s.db.list_projects().await?;
    let visible = match &p.scope {
        Scope::User { admin: true, .. } => all,
        Scope::User { id, .. } => s.db.user_projects(*id).await?,
        Scope::Project { name, .. } => all.into_iter().filter(|x| &x.name == name).collect(),
    };
    Ok(Json(visible))
}

async fn create_project(
    State(s): State<SharedState>,
    Caller(p): Caller,
    body: Bytes,
) -> ApiResult<Response> {
    require_server_admin(&p)?;
    let req: NameRequest = parse_json(&body)?;
    valid_name("project", &req.name)?;
    let info = s.db.create_project(&req.name).await?;
    s.invalidate();
    s.audit
        .record(p.actor(), "project.create", Some(&req.name), None, None)
        .await;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

async fn get_project(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ProjectInfo>> {
    s.project_access(&p, &name, Role::Read).await?;
    s.db.list_projects()
        .await?
        .into_iter()
        .find(|x| x.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("project '{name}' not found")))
}

async fn delete_project(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    valid_name("project", &name)?;
    require_server_admin(&p)?;
    s.db.delete_project(&name).await?;
    s.invalidate();
    s.audit
        .record(p.actor(), "project.delete", Some(&name), None, None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn batch_exists(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<BatchExistsResponse>> {
    let id = s.project_access(&p, &name, Role::Read).await?;
    let req: BatchExistsRequest = parse_json(&body)?;
    if req.oids.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "{} ids in one call; the limit is {MAX_BATCH}",
            req.oids.len()
        )));
    }
    let missing = s.db.missing_objects(id, req.kind, &req.oids).await?;
    Ok(Json(BatchExistsResponse { missing }))
}

async fn usage(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<UsageInfo>> {
    let id = s.project_access(&p, &name, Role::Read).await?;
    Ok(Json(s.db.usage(id, &name).await?))
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

async fn project_audit(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Path(name): Path<String>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    s.project_access(&p, &name, Role::Admin).await?;
    s.audit.flush().await;
    Ok(Json(
        s.db.list_audit(Some(&name), q.before, q.limit.unwrap_or(100))
            .await?,
    ))
}

async fn audit(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    require_server_admin(&p)?;
    s.audit.flush().await;
    Ok(Json(
        s.db.list_audit(None, q.before, q.limit.unwrap_or(100))
            .await?,
    ))
}

async fn list_grants(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<GrantInfo>>> {
    let id = s.project_access(&p, &name, Role::Admin).await?;
    Ok(Json(s.db.list_grants(id).await?))
}

fn grantee<'a>(group: &'a Option<String>, user: &'a Option<String>) -> ApiResult<Grantee<'a>> {
    match (group, user) {
        (Some(g), None) => Ok(Grantee::Group(g)),
        (None, Some(u)) => Ok(Grantee::User(u)),
        _ => Err(ApiError::bad_request(
            "give exactly one of 'group' and 'user'",
        )),
    }
}

async fn set_grant(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<GrantInfo>> {
    let id = s.project_access(&p, &name, Role::Admin).await?;
    let req: GrantRequest = parse_json(&body)?;
    let who = grantee(&req.group, &req.user)?;
    s.db.set_grant(id, who, req.role).await?;
    s.invalidate();
    s.audit
        .record(
            p.actor(),
            "grant.set",
            Some(&name),
            Some(format!("{who:?}")),
            Some(req.role.to_string()),
        )
        .await;
    Ok(Json(GrantInfo {
        project: name,
        group: req.group,
        user: req.user,
        role: req.role,
    }))
}

async fn remove_grant(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Path((name, kind, who)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let id = s.project_access(&p, &name, Role::Admin).await?;
    let grantee = match kind.as_str() {
        "group" => Grantee::Group(&who),
        "user" => Grantee::User(&who),
        _ => {
            return Err(ApiError::bad_request(
                "expected .../grants/group/NAME or .../grants/user/NAME",
            ))
        }
    };
    s.db.remove_grant(id, grantee).await?;
    s.invalidate();
    s.audit
        .record(
            p.actor(),
            "grant.remove",
            Some(&name),
            Some(format!("{grantee:?}")),
            None,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn project_tokens(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    let id = s.project_access(&p, &name, Role::Admin).await?;
    let rows = s.db.list_tokens(Some(id), None).await?;
    Ok(Json(rows.iter().map(|r| r.info()).collect()))
}

async fn list_users(
    State(s): State<SharedState>,
    Caller(p): Caller,
) -> ApiResult<Json<Vec<UserInfo>>> {
    require_server_admin(&p)?;
    Ok(Json(s.db.list_users().await?))
}

async fn create_user(
    State(s): State<SharedState>,
    Caller(p): Caller,
    body: Bytes,
) -> ApiResult<Response> {
    require_server_admin(&p)?;
    let req: CreateUserRequest = parse_json(&body)?;
    valid_name("user", &req.name)?;
    let info = s.db.create_user(&req.name, req.server_admin).await?;
    s.audit
        .record(
            p.actor(),
            "user.create",
            None,
            Some(req.name.clone()),
            req.server_admin.then(|| "server admin".to_string()),
        )
        .await;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

async fn delete_user(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    require_server_admin(&p)?;
    s.db.delete_user(&name).await?;
    s.invalidate();
    s.audit
        .record(p.actor(), "user.delete", None, Some(name), None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_groups(
    State(s): State<SharedState>,
    Caller(p): Caller,
) -> ApiResult<Json<Vec<GroupInfo>>> {
    require_server_admin(&p)?;
    Ok(Json(s.db.list_groups().await?))
}

async fn create_group(
    State(s): State<SharedState>,
    Caller(p): Caller,
    body: Bytes,
) -> ApiResult<Response> {
    require_server_admin(&p)?;
    let req: NameRequest = parse_json(&body)?;
    valid_name("group", &req.name)?;
    let info = s.db.create_group(&req.name).await?;
    s.audit
        .record(
            p.actor(),
            "group.create",
            None,
            Some(req.name.clone()),
            None,
        )
        .await;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

async fn delete_group(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    require_server_admin(&p)?;
    s.db.delete_group(&name).await?;
    s.invalidate();
    s.audit
        .record(p.actor(), "group.delete", None, Some(name), None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_member(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Path((group, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_server_admin(&p)?;
    s.db.add_member(&group, &user).await?;
    s.invalidate();
    s.audit
        .record(p.actor(), "group.add_member", None, Some(group), Some(user))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Path((group, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_server_admin(&p)?;
    s.db.remove_member(&group, &user).await?;
    s.invalidate();
    s.audit
        .record(
            p.actor(),
            "group.remove_member",
            None,
            Some(group),
            Some(user),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tokens(
    State(s): State<SharedState>,
    Caller(p): Caller,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    let rows = match &p.scope {
        Scope::User { admin: true, .. } => s.db.list_tokens(None, None).await?,
        Scope::User { id, .. } => s.db.list_tokens(None, Some(*id)).await?,
        Scope::Project {
            id,
            role: Role::Admin,
            ..
        } => s.db.list_tokens(Some(*id), None).await?,
        Scope::Project { .. } => {
            return Err(ApiError::forbidden(
                "listing tokens needs a user token or a project admin token",
            ))
        }
    };
    Ok(Json(rows.iter().map(|r| r.info()).collect()))
}

async fn create_token(
    State(s): State<SharedState>,
    Caller(p): Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let req: CreateTokenRequest = parse_json(&body)?;
    let expires = req.expires_in_secs.map(Duration::from_secs);
    let description = req.description.clone().unwrap_or_default();
    let actor = p.actor();
    let created: CreatedToken = match (&req.project, &req.user) {
        (Some(project), None) => {
            let role = req
                .role
                .ok_or_else(|| ApiError::bad_request("a project token needs a 'role'"))?;
            let id = s.project_access(&p, project, Role::Admin).await?;
            let c = s
                .auth
                .issue(
                    TokenScope::Project {
                        id,
                        name: project,
                        role,
                    },
                    expires,
                    &description,
                    &actor,
                )
                .await?;
            s.audit
                .record(
                    actor.clone(),
                    "token.create",
                    Some(project),
                    Some(c.info.id.clone()),
                    Some(role.to_string()),
                )
                .await;
            c
        }
        (None, Some(user)) => {
            let own = matches!(&p.scope, Scope::User { name, .. } if name == user);
            if !(own || p.is_server_admin()) {
                return Err(ApiError::forbidden(
                    "a user token can only be made by that user or a server admin",
                ));
            }
            if req.role.is_some() {
                return Err(ApiError::bad_request(
                    "a user token carries the user's own grants; leave out 'role'",
                ));
            }
            let uid = s.db.require_user(user).await?;
            let c = s
                .auth
                .issue(
                    TokenScope::User {
                        id: uid,
                        name: user,
                    },
                    expires,
                    &description,
                    &actor,
                )
                .await?;
            s.audit
                .record(
                    actor.clone(),
                    "token.create",
                    None,
                    Some(c.info.id.clone()),
                    Some(format!("user:{user}")),
                )
                .await;
            c
        }
        _ => {
            return Err(ApiError::bad_request(
                "give either 'project' and 'role' (a project token) or 'user' (a user token)",
            ))
        }
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn revoke_token(
    State(s): State<SharedState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let hidden = || ApiError::not_found(format!("token '{id}' not found"));
    let row = s.db.token(&id).await?.ok_or_else(hidden)?;
    let allowed = p.is_server_admin()
        || p.token_id == row.id
        || (row.user_id.is_some() && row.user_id == p.user_id())
        || match row.project_id {
            Some(pid) => s.auth.role_on(&p, pid).await? == Some(Role::Admin),
            None => false,
        };
    if !allowed {
        return Err(hidden());
    }
    s.db.revoke_token(&id).await?;
    s.invalidate();
    s.audit
        .record(
            p.actor(),
            "token.revoke",
            row.project.as_deref(),
            Some(id),
            None,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
