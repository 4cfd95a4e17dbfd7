use lode_proto::api::{ProjectInfo, UsageInfo};

use super::{now, Db, DbError, DbResult};

impl Db {
    pub async fn create_project(&self, name: &str) -> DbResult<ProjectInfo> {
        let at = now();
        sqlx::query("INSERT INTO projects (name, created_at) VALUES (?, ?)")
            .bind(name)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::unique(e, format!("project '{name}'")))?;
        Ok(ProjectInfo {
            name: name.to_string(),
            created_at: at,
        })
    }

    pub async fn project_id(&self, name: &str) -> DbResult<Option<i64>> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT id FROM projects WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn require_project(&self, name: &str) -> DbResult<i64> {
        self.project_id(name)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("project '{name}'")))
    }

    pub async fn list_projects(&self) -> DbResult<Vec<ProjectInfo>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, created_at FROM projects ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(name, created_at)| ProjectInfo { name, created_at })
            .collect())
    }

    /// Deletes the project with its grants, tokens and object references. Blobs stay on disk
    /// until a garbage collection finds them unreferenced.
    pub async fn delete_project(&self, name: &str) -> DbResult<()> {
        let done = sqlx::query("DELETE FROM projects WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound(format!("project '{name}'")));
        }
        Ok(())
    }

    pub async fn usage(&self, project_id: i64, name: &str) -> DbResult<UsageInfo> {
        let (objects, bytes): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), SUM(size) FROM project_objects WHERE project_id = ?")
                .bind(project_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(UsageInfo {
            project: name.to_string(),
            objects: objects.max(0) as u64,
            bytes: bytes.unwrap_or(0).max(0) as u64,
        })
    }
}
