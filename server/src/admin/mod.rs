//! `lode-server admin ...`: administration directly on the deployment, no token needed. This is
//! how the first server admin token is made. Safe to run next to a running server (the index
//! serialises writers); a running server notices changes within a few seconds.

mod args;

pub use args::AdminCmd;

use std::sync::Arc;

use lode_proto::api::CreatedToken;
use lode_proto::validate_project_name;

use crate::auth::{Auth, AuthError, TokenScope};
use crate::backends::{open_backends, BackendError, Backends};
use crate::config::{parse_duration, ConfigError, ServerConfig};
use crate::db::{now, AuditEvent, Index, IndexError, Occupant};
use args::{GrantCmd, GroupCmd, ProjectCmd, TokenCmd, UserCmd};

/// How administration appears in the audit log.
const ACTOR: &str = "admin-cli";
/// The user `token create --server-admin` makes a token for when no `--user` is given.
const DEFAULT_ADMIN_USER: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("writing the result: {0}")]
    Output(#[from] serde_json::Error),
    #[error("{0}")]
    Usage(String),
}

/// Runs one `lode-server admin` command; results go to stdout.
pub async fn run(cfg: &ServerConfig, cmd: AdminCmd) -> Result<(), AdminError> {
    let backends = open_backends(cfg, Occupant::Admin).await?;
    let admin = Admin {
        db: backends.index.clone(),
        backends,
    };
    let result = admin.dispatch(cmd).await;
    admin.backends.close().await;
    result
}

struct Admin {
    db: Arc<dyn Index>,
    backends: Backends,
}

/// Whom a new token is for.
enum TokenTarget {
    Project {
        name: String,
        role: lode_proto::Role,
    },
    User(String),
    /// A user token of a server admin user (created if missing).
    ServerAdmin(String),
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), AdminError> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn check_name(kind: &str, name: &str) -> Result<(), AdminError> {
    validate_project_name(name).map_err(|e| AdminError::Usage(format!("{kind}: {e}")))
}

impl Admin {
    async fn dispatch(&self, cmd: AdminCmd) -> Result<(), AdminError> {
        match cmd {
            AdminCmd::Project(c) => self.project(c).await,
            AdminCmd::User(c) => self.user(c).await,
            AdminCmd::Group(c) => self.group(c).await,
            AdminCmd::Grant(c) => self.grant(c).await,
            AdminCmd::Token(c) => self.token(c).await,
            AdminCmd::Usage { project } => {
                let id = self.db.require_project(&project).await?;
                print_json(&self.db.usage(id, &project).await?)
            }
            AdminCmd::Audit { project, limit } => {
                print_json(&self.db.list_audit(project.as_deref(), None, limit).await?)
            }
        }
    }

    async fn audit(&self, action: &str, project: Option<&str>, target: Option<String>) {
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

    async fn project(&self, cmd: ProjectCmd) -> Result<(), AdminError> {
        match cmd {
            ProjectCmd::Create { name } => {
                check_name("project", &name)?;
                self.db.create_project(&name).await?;
                self.audit("project.create", Some(&name), None).await;
                println!("{name}");
            }
            ProjectCmd::List => print_json(&self.db.list_projects().await?)?,
            ProjectCmd::Delete { name } => {
                self.db.delete_project(&name).await?;
                self.audit("project.delete", Some(&name), None).await;
            }
        }
        Ok(())
    }

    async fn user(&self, cmd: UserCmd) -> Result<(), AdminError> {
        match cmd {
            UserCmd::Create { name, server_admin } => {
                check_name("user", &name)?;
                self.db.create_user(&name, server_admin).await?;
                self.audit("user.create", None, Some(name.clone())).await;
                println!("{name}");
            }
            UserCmd::List => print_json(&self.db.list_users().await?)?,
            UserCmd::Delete { name } => {
                self.db.delete_user(&name).await?;
                self.audit("user.delete", None, Some(name)).await;
            }
        }
        Ok(())
    }

    async fn group(&self, cmd: GroupCmd) -> Result<(), AdminError> {
        match cmd {
            GroupCmd::Create { name } => {
                check_name("group", &name)?;
                self.db.create_group(&name).await?;
                self.audit("group.create", None, Some(name.clone())).await;
                println!("{name}");
            }
            GroupCmd::List => print_json(&self.db.list_groups().await?)?,
            GroupCmd::Delete { name } => {
                self.db.delete_group(&name).await?;
                self.audit("group.delete", None, Some(name)).await;
            }
            GroupCmd::AddMember { group, user } => {
                self.db.add_member(&group, &user).await?;
                self.audit("group.add_member", None, Some(format!("{group}:{user}")))
                    .await;
            }
            GroupCmd::RemoveMember { group, user } => {
                self.db.remove_member(&group, &user).await?;
                self.audit("group.remove_member", None, Some(format!("{group}:{user}")))
                    .await;
            }
        }
        Ok(())
    }

    async fn grant(&self, cmd: GrantCmd) -> Result<(), AdminError> {
        match cmd {
            GrantCmd::Set { project, who, role } => {
                let id = self.db.require_project(&project).await?;
                self.db.set_grant(id, who.get(), role).await?;
                self.audit(
                    "grant.set",
                    Some(&project),
                    Some(format!("{:?}", who.get())),
                )
                .await;
            }
            GrantCmd::Remove { project, who } => {
                let id = self.db.require_project(&project).await?;
                self.db.remove_grant(id, who.get()).await?;
                self.audit(
                    "grant.remove",
                    Some(&project),
                    Some(format!("{:?}", who.get())),
                )
                .await;
            }
            GrantCmd::List { project } => {
                let id = self.db.require_project(&project).await?;
                print_json(&self.db.list_grants(id).await?)?;
            }
        }
        Ok(())
    }

    async fn token(&self, cmd: TokenCmd) -> Result<(), AdminError> {
        match cmd {
            TokenCmd::Create {
                project,
                role,
                user,
                server_admin,
                expires_in,
                description,
            } => {
                let expires = expires_in.as_deref().map(parse_duration).transpose()?;
                let target = match (project, role, user, server_admin) {
                    (Some(name), Some(role), None, false) => TokenTarget::Project { name, role },
                    (None, None, user, true) => {
                        TokenTarget::ServerAdmin(user.unwrap_or_else(|| DEFAULT_ADMIN_USER.into()))
                    }
                    (None, None, Some(user), false) => TokenTarget::User(user),
                    _ => {
                        return Err(AdminError::Usage(
                            "use --project NAME --role ROLE, --user NAME, or --server-admin [--user NAME]"
                                .into(),
                        ))
                    }
                };
                let created = self.create_token(target, expires, &description).await?;
                eprintln!(
                    "created token {} ({}); it is shown once, store it safely",
                    created.info.id,
                    match (&created.info.project, &created.info.user) {
                        (Some(p), _) => format!(
                            "project {p}, role {}",
                            created.info.role.map(|r| r.to_string()).unwrap_or_default()
                        ),
                        (None, Some(u)) => format!("user {u}"),
                        _ => String::new(),
                    }
                );
                println!("{}", created.token);
            }
            TokenCmd::List { project } => {
                let pid = match project {
                    Some(p) => Some(self.db.require_project(&p).await?),
                    None => None,
                };
                let rows = self.db.list_tokens(pid, None).await?;
                print_json(&rows.iter().map(|r| r.info()).collect::<Vec<_>>())?;
            }
            TokenCmd::Revoke { id } => {
                let row = self.db.token(&id).await?;
                self.db.revoke_token(&id).await?;
                self.audit(
                    "token.revoke",
                    row.as_ref().and_then(|r| r.project.as_deref()),
                    Some(id),
                )
                .await;
            }
        }
        Ok(())
    }

    async fn create_token(
        &self,
        target: TokenTarget,
        expires_in: Option<std::time::Duration>,
        description: &str,
    ) -> Result<CreatedToken, AdminError> {
        let secret = self.backends.signing_secret().await?;
        let auth = Auth::new(self.db.clone(), &secret);
        let (scope, project) = match &target {
            TokenTarget::Project { name, role } => {
                let id = self.db.require_project(name).await?;
                let scope = TokenScope::Project {
                    id,
                    name,
                    role: *role,
                };
                (scope, Some(name.as_str()))
            }
            TokenTarget::User(name) => {
                let id = self.db.require_user(name).await?;
                (TokenScope::User { id, name }, None)
            }
            TokenTarget::ServerAdmin(name) => {
                check_name("user", name)?;
                let id = self.db.ensure_admin_user(name).await?;
                (TokenScope::User { id, name }, None)
            }
        };
        let created = auth.issue(scope, expires_in, description, ACTOR).await?;
        self.audit("token.create", project, Some(created.info.id.clone()))
            .await;
        Ok(created)
    }
}
