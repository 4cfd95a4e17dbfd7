//! `lode-server admin ...`: administration directly on the data folder, no token needed. This is
//! how the first server admin token is made. Safe to run next to a running server (SQLite
//! serialises writers); a running server notices changes within a few seconds.

use std::sync::Arc;
use std::time::Duration;

use lode_proto::api::CreatedToken;
use lode_proto::{validate_project_name, Role};

use crate::auth::{Auth, AuthError, TokenScope};
use crate::backends::{open_backends, BackendError, Backends};
use crate::config::ServerConfig;
use crate::db::{now, AuditEvent, Grantee, Index, IndexError, Occupant};

pub const ACTOR: &str = "admin-cli";
pub const DEFAULT_ADMIN_USER: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Usage(String),
}

pub struct Admin {
    pub db: Arc<dyn Index>,
    backends: Backends,
}

/// Whom a new token is for.
pub enum TokenTarget {
    Project {
        name: String,
        role: Role,
    },
    User(String),
    /// A user token of a server admin user (created if missing).
    ServerAdmin(String),
}

impl Admin {
    pub async fn open(cfg: &ServerConfig) -> Result<Admin, AdminError> {
        let backends = open_backends(cfg, Occupant::Admin).await?;
        Ok(Admin {
            db: backends.index.clone(),
            backends,
        })
    }

    pub async fn audit(&self, action: &str, project: Option<&str>, target: Option<String>) {
        let e = AuditEvent {
            at: now(),
            actor: ACTOR.into(),
            action: action.into(),
            project: project.map(str::to_string),
            target,
            detail: None,
        };
        if let Err(err) = self.db.append_audit(&[e]).await {
            tracing::warn!("writing the audit log failed: {err}");
        }
    }

    pub fn check_name(kind: &str, name: &str) -> Result<(), AdminError> {
        validate_project_name(name).map_err(|e| AdminError::Usage(format!("{kind}: {e}")))
    }

    pub async fn create_token(
        &self,
        target: TokenTarget,
        expires_in: Option<Duration>,
        description: &str,
    ) -> Result<CreatedToken, AdminError> {
        let secret = self.backends.signing_secret()?;
        let auth = Auth::new(self.db.clone(), &secret);
        let (created, project) = match &target {
            TokenTarget::Project { name, role } => {
                let id = self.db.require_project(name).await?;
                let c = auth
                    .issue(
                        TokenScope::Project {
                            id,
                            name,
                            role: *role,
                        },
                        expires_in,
                        description,
                        ACTOR,
                    )
                    .await?;
                (c, Some(name.as_str()))
            }
            TokenTarget::User(name) => {
                let id = self.db.require_user(name).await?;
                let c = auth
                    .issue(
                        TokenScope::User { id, name },
                        expires_in,
                        description,
                        ACTOR,
                    )
                    .await?;
                (c, None)
            }
            TokenTarget::ServerAdmin(name) => {
                Self::check_name("user", name)?;
                let id = self.db.ensure_admin_user(name).await?;
                let c = auth
                    .issue(
                        TokenScope::User { id, name },
                        expires_in,
                        description,
                        ACTOR,
                    )
                    .await?;
                (c, None)
            }
        };
        self.audit("token.create", project, Some(created.info.id.clone()))
            .await;
        Ok(created)
    }

    pub async fn set_grant(
        &self,
        project: &str,
        who: Grantee<'_>,
        role: Role,
    ) -> Result<(), AdminError> {
        let id = self.db.require_project(project).await?;
        self.db.set_grant(id, who, role).await?;
        self.audit("grant.set", Some(project), Some(format!("{who:?}")))
            .await;
        Ok(())
    }

    pub async fn close(&self) {
        self.backends.close().await;
    }
}
