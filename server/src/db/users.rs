use lode_proto::api::UserInfo;
use lode_proto::Role;

use super::{now, Db, DbError, DbResult};

impl Db {
    pub async fn create_user(&self, name: &str, admin: bool) -> DbResult<UserInfo> {
        let at = now();
        sqlx::query("INSERT INTO users (name, is_admin, created_at) VALUES (?, ?, ?)")
            .bind(name)
            .bind(admin)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::unique(e, format!("user '{name}'")))?;
        Ok(UserInfo {
            name: name.to_string(),
            server_admin: admin,
            created_at: at,
        })
    }

    /// Creates the user if missing and makes sure it is a server admin; returns its id.
    pub async fn ensure_admin_user(&self, name: &str) -> DbResult<i64> {
        sqlx::query(
            "INSERT INTO users (name, is_admin, created_at) VALUES (?, 1, ?)
             ON CONFLICT(name) DO UPDATE SET is_admin = 1",
        )
        .bind(name)
        .bind(now())
        .execute(&self.pool)
        .await?;
        self.require_user(name).await
    }

    pub async fn user_id(&self, name: &str) -> DbResult<Option<i64>> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn require_user(&self, name: &str) -> DbResult<i64> {
        self.user_id(name)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("user '{name}'")))
    }

    /// Name and admin flag of a user id.
    pub async fn user_by_id(&self, id: i64) -> DbResult<Option<(String, bool)>> {
        Ok(
            sqlx::query_as::<_, (String, bool)>("SELECT name, is_admin FROM users WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn list_users(&self) -> DbResult<Vec<UserInfo>> {
        let rows: Vec<(String, bool, i64)> =
            sqlx::query_as("SELECT name, is_admin, created_at FROM users ORDER BY name")
                .fetch_all(&self.pool)
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

    pub async fn delete_user(&self, name: &str) -> DbResult<()> {
        let done = sqlx::query("DELETE FROM users WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound(format!("user '{name}'")));
        }
        Ok(())
    }

    /// The highest role a user holds on a project, directly or through any of its groups.
    pub async fn user_role(&self, user_id: i64, project_id: i64) -> DbResult<Option<Role>> {
        let roles: Vec<String> = sqlx::query_scalar(
            "SELECT role FROM grants WHERE project_id = ?1 AND user_id = ?2
             UNION ALL
             SELECT g.role FROM grants g JOIN memberships m ON m.group_id = g.group_id
             WHERE g.project_id = ?1 AND m.user_id = ?2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(roles.iter().filter_map(|r| r.parse::<Role>().ok()).max())
    }

    /// Projects a user can see through grants (directly or via groups).
    pub async fn user_projects(&self, user_id: i64) -> DbResult<Vec<lode_proto::api::ProjectInfo>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT DISTINCT p.name, p.created_at FROM projects p JOIN grants g ON g.project_id = p.id
             LEFT JOIN memberships m ON m.group_id = g.group_id
             WHERE g.user_id = ?1 OR m.user_id = ?1 ORDER BY p.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, created_at)| lode_proto::api::ProjectInfo { name, created_at })
            .collect())
    }
}
