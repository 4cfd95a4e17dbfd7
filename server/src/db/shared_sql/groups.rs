//! Groups, their members, and grants of roles on projects.

/// Defines the functions for the index type `$Index`.
macro_rules! groups {
    ($Index:ty) => {
        mod shared {
            use lode_proto::api::{GrantInfo, GroupInfo};
            use lode_proto::Role;

            use crate::db::sqlx_error::unique;
            use crate::db::{now, Grantee, Index, IndexError, IndexResult};
            type Ix = $Index;

            pub(in crate::db) async fn create_group(ix: &Ix, name: &str) -> IndexResult<GroupInfo> {
                let at = now();
                sqlx::query("INSERT INTO groups (name, created_at) VALUES ($1, $2)")
                    .bind(name)
                    .bind(at)
                    .execute(&ix.pool)
                    .await
                    .map_err(|e| unique(e, format!("group '{name}'")))?;
                Ok(GroupInfo {
                    name: name.to_string(),
                    members: Vec::new(),
                    created_at: at,
                })
            }

            async fn require_group(ix: &Ix, name: &str) -> IndexResult<i64> {
                sqlx::query_scalar::<_, i64>("SELECT id FROM groups WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&ix.pool)
                    .await?
                    .ok_or_else(|| IndexError::NotFound(format!("group '{name}'")))
            }

            pub(in crate::db) async fn delete_group(ix: &Ix, name: &str) -> IndexResult<()> {
                let done = sqlx::query("DELETE FROM groups WHERE name = $1")
                    .bind(name)
                    .execute(&ix.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(IndexError::NotFound(format!("group '{name}'")));
                }
                Ok(())
            }

            pub(in crate::db) async fn list_groups(ix: &Ix) -> IndexResult<Vec<GroupInfo>> {
                let groups: Vec<(i64, String, i64)> =
                    sqlx::query_as("SELECT id, name, created_at FROM groups ORDER BY name")
                        .fetch_all(&ix.pool)
                        .await?;
                let members: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT m.group_id, u.name FROM memberships m JOIN users u ON u.id = m.user_id
                         ORDER BY u.name",
                )
                .fetch_all(&ix.pool)
                .await?;
                Ok(groups
                    .into_iter()
                    .map(|(id, name, created_at)| GroupInfo {
                        name,
                        members: members
                            .iter()
                            .filter(|(g, _)| *g == id)
                            .map(|(_, u)| u.clone())
                            .collect(),
                        created_at,
                    })
                    .collect())
            }

            pub(in crate::db) async fn add_member(
                ix: &Ix,
                group: &str,
                user: &str,
            ) -> IndexResult<()> {
                let g = require_group(ix, group).await?;
                let u = ix.require_user(user).await?;
                sqlx::query(
                    "INSERT INTO memberships (group_id, user_id, created_at) VALUES ($1, $2, $3)
                         ON CONFLICT DO NOTHING",
                )
                .bind(g)
                .bind(u)
                .bind(now())
                .execute(&ix.pool)
                .await?;
                Ok(())
            }

            pub(in crate::db) async fn remove_member(
                ix: &Ix,
                group: &str,
                user: &str,
            ) -> IndexResult<()> {
                let g = require_group(ix, group).await?;
                let u = ix.require_user(user).await?;
                let done =
                    sqlx::query("DELETE FROM memberships WHERE group_id = $1 AND user_id = $2")
                        .bind(g)
                        .bind(u)
                        .execute(&ix.pool)
                        .await?;
                if done.rows_affected() == 0 {
                    return Err(IndexError::NotFound(format!(
                        "membership of '{user}' in '{group}'"
                    )));
                }
                Ok(())
            }

            /// The grants column that names the grantee, and the grantee's id.
            async fn grantee(ix: &Ix, who: Grantee<'_>) -> IndexResult<(&'static str, i64)> {
                Ok(match who {
                    Grantee::Group(g) => ("group_id", require_group(ix, g).await?),
                    Grantee::User(u) => ("user_id", ix.require_user(u).await?),
                })
            }

            /// Gives (or changes) a role on a project.
            pub(in crate::db) async fn set_grant(
                ix: &Ix,
                project_id: i64,
                who: Grantee<'_>,
                role: Role,
            ) -> IndexResult<()> {
                let (column, id) = grantee(ix, who).await?;
                sqlx::query(&format!(
                    "INSERT INTO grants (project_id, {column}, role, created_at)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (project_id, {column}) WHERE {column} IS NOT NULL
                         DO UPDATE SET role = excluded.role"
                ))
                .bind(project_id)
                .bind(id)
                .bind(role.as_str())
                .bind(now())
                .execute(&ix.pool)
                .await?;
                Ok(())
            }

            pub(in crate::db) async fn remove_grant(
                ix: &Ix,
                project_id: i64,
                who: Grantee<'_>,
            ) -> IndexResult<()> {
                let (column, id) = grantee(ix, who).await?;
                let done = sqlx::query(&format!(
                    "DELETE FROM grants WHERE project_id = $1 AND {column} = $2"
                ))
                .bind(project_id)
                .bind(id)
                .execute(&ix.pool)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(IndexError::NotFound("grant".into()));
                }
                Ok(())
            }

            pub(in crate::db) async fn list_grants(
                ix: &Ix,
                project_id: i64,
            ) -> IndexResult<Vec<GrantInfo>> {
                let rows: Vec<(String, Option<String>, Option<String>, String)> = sqlx::query_as(
                    "SELECT p.name, gr.name, u.name, g.role FROM grants g
                         JOIN projects p ON p.id = g.project_id
                         LEFT JOIN groups gr ON gr.id = g.group_id
                         LEFT JOIN users u ON u.id = g.user_id
                         WHERE g.project_id = $1 ORDER BY gr.name NULLS FIRST, u.name",
                )
                .bind(project_id)
                .fetch_all(&ix.pool)
                .await?;
                rows.into_iter()
                    .map(|(project, group, user, role)| {
                        Ok(GrantInfo {
                            project,
                            group,
                            user,
                            role: role.parse().map_err(IndexError::Invalid)?,
                        })
                    })
                    .collect()
            }
        }

        pub(super) use shared::*;
    };
}

pub(crate) use groups;
