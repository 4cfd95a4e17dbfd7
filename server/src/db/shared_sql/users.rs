//! Users, and the roles and projects their grants give them.

/// Defines the functions for the index type `$Index`.
macro_rules! users {
    ($Index:ty) => {
        mod shared {
            use lode_proto::api::{ProjectInfo, UserInfo};
            use lode_proto::Role;

            use crate::db::sqlx_error::unique;
            use crate::db::{now, Index, IndexError, IndexResult};
            type Ix = $Index;

            pub(in crate::db) async fn create_user(
                ix: &Ix,
                name: &str,
                admin: bool,
            ) -> IndexResult<UserInfo> {
                let at = now();
                sqlx::query("INSERT INTO users (name, is_admin, created_at) VALUES ($1, $2, $3)")
                    .bind(name)
                    .bind(admin)
                    .bind(at)
                    .execute(&ix.pool)
                    .await
                    .map_err(|e| unique(e, format!("user '{name}'")))?;
                Ok(UserInfo {
                    name: name.to_string(),
                    server_admin: admin,
                    created_at: at,
                })
            }

            /// Creates the user if missing and makes sure it is a server admin; returns its id.
            pub(in crate::db) async fn ensure_admin_user(ix: &Ix, name: &str) -> IndexResult<i64> {
                sqlx::query(
                    "INSERT INTO users (name, is_admin, created_at) VALUES ($1, TRUE, $2)
                         ON CONFLICT (name) DO UPDATE SET is_admin = TRUE",
                )
                .bind(name)
                .bind(now())
                .execute(&ix.pool)
                .await?;
                ix.require_user(name).await
            }

            pub(in crate::db) async fn user_id(ix: &Ix, name: &str) -> IndexResult<Option<i64>> {
                Ok(
                    sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&ix.pool)
                        .await?,
                )
            }

            pub(in crate::db) async fn list_users(ix: &Ix) -> IndexResult<Vec<UserInfo>> {
                let rows: Vec<(String, bool, i64)> =
                    sqlx::query_as("SELECT name, is_admin, created_at FROM users ORDER BY name")
                        .fetch_all(&ix.pool)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(name, server_admin, created_at)| UserInfo {
                        name,
                        server_admin,
                        created_at,
                    })
                    .collect())
            }

            pub(in crate::db) async fn delete_user(ix: &Ix, name: &str) -> IndexResult<()> {
                let done = sqlx::query("DELETE FROM users WHERE name = $1")
                    .bind(name)
                    .execute(&ix.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(IndexError::NotFound(format!("user '{name}'")));
                }
                Ok(())
            }

            /// The highest role a user holds on a project, directly or through any of its
            /// groups.
            pub(in crate::db) async fn user_role(
                ix: &Ix,
                user_id: i64,
                project_id: i64,
            ) -> IndexResult<Option<Role>> {
                let roles: Vec<String> = sqlx::query_scalar(
                    "SELECT role FROM grants WHERE project_id = $1 AND user_id = $2
                         UNION ALL
                         SELECT g.role FROM grants g JOIN memberships m ON m.group_id = g.group_id
                         WHERE g.project_id = $1 AND m.user_id = $2",
                )
                .bind(project_id)
                .bind(user_id)
                .fetch_all(&ix.pool)
                .await?;
                Ok(roles.iter().filter_map(|r| r.parse::<Role>().ok()).max())
            }

            /// Projects a user can see through grants (directly or via groups).
            pub(in crate::db) async fn user_projects(
                ix: &Ix,
                user_id: i64,
            ) -> IndexResult<Vec<ProjectInfo>> {
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT DISTINCT p.name, p.created_at FROM projects p
                         JOIN grants g ON g.project_id = p.id
                         LEFT JOIN memberships m ON m.group_id = g.group_id
                         WHERE g.user_id = $1 OR m.user_id = $1 ORDER BY p.name",
                )
                .bind(user_id)
                .fetch_all(&ix.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(name, created_at)| ProjectInfo { name, created_at })
                    .collect())
            }
        }

        pub(super) use shared::*;
    };
}

pub(crate) use users;
