use lode_proto::api::{GrantInfo, GroupInfo};
use lode_proto::Role;

use super::{now, Db, DbError, DbResult};

/// Whom a grant is for.
#[derive(Debug, Clone, Copy)]
pub enum Grantee<'a> {
    Group(&'a str),
    User(&'a str),
}

impl Db {
    pub async fn create_group(&self, name: &str) -> DbResult<GroupInfo> {
        let at = now();
        sqlx::query("INSERT INTO groups (name, created_at) VALUES (?, ?)")
            .bind(name)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::unique(e, format!("group '{name}'")))?;
        Ok(GroupInfo {
            name: name.to_string(),
            members: Vec::new(),
            created_at: at,
        })
    }

    pub async fn require_group(&self, name: &str) -> DbResult<i64> {
        sqlx::query_scalar::<_, i64>("SELECT id FROM groups WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("group '{name}'")))
    }

    pub async fn delete_group(&self, name: &str) -> DbResult<()> {
        let done = sqlx::query("DELETE FROM groups WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound(format!("group '{name}'")));
        }
        Ok(())
    }

    pub async fn list_groups(&self) -> DbResult<Vec<GroupInfo>> {
        let groups: Vec<(i64, String, i64)> =
            sqlx::query_as("SELECT id, name, created_at FROM groups ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        let members: Vec<(i64, String)> = sqlx::query_as(
            "SELECT m.group_id, u.name FROM memberships m JOIN users u ON u.id = m.user_id
             ORDER BY u.name",
        )
        .fetch_all(&self.pool)
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

    pub async fn add_member(&self, group: &str, user: &str) -> DbResult<()> {
        let g = self.require_group(group).await?;
        let u = self.require_user(user).await?;
        sqlx::query(
            "INSERT INTO memberships (group_id, user_id, created_at) VALUES (?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(g)
        .bind(u)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn remove_member(&self, group: &str, user: &str) -> DbResult<()> {
        let g = self.require_group(group).await?;
        let u = self.require_user(user).await?;
        let done = sqlx::query("DELETE FROM memberships WHERE group_id = ? AND user_id = ?")
            .bind(g)
            .bind(u)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound(format!(
                "membership of '{user}' in '{group}'"
            )));
        }
        Ok(())
    }

    /// Gives (or changes) a role on a project.
    pub async fn set_grant(&self, project_id: i64, who: Grantee<'_>, role: Role) -> DbResult<()> {
        let at = now();
        match who {
            Grantee::Group(g) => {
                let gid = self.require_group(g).await?;
                sqlx::query(
                    "INSERT INTO grants (project_id, group_id, role, created_at) VALUES (?, ?, ?, ?)
                     ON CONFLICT(project_id, group_id) WHERE group_id IS NOT NULL
                     DO UPDATE SET role = excluded.role",
                )
                .bind(project_id)
                .bind(gid)
                .bind(role.as_str())
                .bind(at)
                .execute(&self.pool)
                .await?;
            }
            Grantee::User(u) => {
                let uid = self.require_user(u).await?;
                sqlx::query(
                    "INSERT INTO grants (project_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
                     ON CONFLICT(project_id, user_id) WHERE user_id IS NOT NULL
                     DO UPDATE SET role = excluded.role",
                )
                .bind(project_id)
                .bind(uid)
                .bind(role.as_str())
                .bind(at)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    pub async fn remove_grant(&self, project_id: i64, who: Grantee<'_>) -> DbResult<()> {
        let done = match who {
            Grantee::Group(g) => {
                let gid = self.require_group(g).await?;
                sqlx::query("DELETE FROM grants WHERE project_id = ? AND group_id = ?")
                    .bind(project_id)
                    .bind(gid)
                    .execute(&self.pool)
                    .await?
            }
            Grantee::User(u) => {
                let uid = self.require_user(u).await?;
                sqlx::query("DELETE FROM grants WHERE project_id = ? AND user_id = ?")
                    .bind(project_id)
                    .bind(uid)
                    .execute(&self.pool)
                    .await?
            }
        };
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound("grant".into()));
        }
        Ok(())
    }

    pub async fn list_grants(&self, project_id: i64) -> DbResult<Vec<GrantInfo>> {
        let rows: Vec<(String, Option<String>, Option<String>, String)> = sqlx::query_as(
            "SELECT p.name, gr.name, u.name, g.role FROM grants g
             JOIN projects p ON p.id = g.project_id
             LEFT JOIN groups gr ON gr.id = g.group_id
             LEFT JOIN users u ON u.id = g.user_id
             WHERE g.project_id = ? ORDER BY gr.name, u.name",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(project, group, user, role)| {
                Ok(GrantInfo {
                    project,
                    group,
                    user,
                    role: role.parse().map_err(DbError::Invalid)?,
                })
            })
            .collect()
    }
}
