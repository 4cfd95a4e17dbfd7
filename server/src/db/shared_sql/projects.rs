//! Projects and their usage; deleting one differs by engine.

/// Defines the functions for the index type `$Index`.
macro_rules! projects {
    ($Index:ty) => {
        mod shared {
            use lode_proto::api::{ProjectInfo, UsageInfo};

            use crate::db::sqlx_error::unique;
            use crate::db::{now, IndexResult};
            type Ix = $Index;

            pub(in crate::db) async fn create_project(
                ix: &Ix,
                name: &str,
            ) -> IndexResult<ProjectInfo> {
                let at = now();
                sqlx::query("INSERT INTO projects (name, created_at) VALUES ($1, $2)")
                    .bind(name)
                    .bind(at)
                    .execute(&ix.pool)
                    .await
                    .map_err(|e| unique(e, format!("project '{name}'")))?;
                Ok(ProjectInfo {
                    name: name.to_string(),
                    created_at: at,
                })
            }

            pub(in crate::db) async fn project_id(ix: &Ix, name: &str) -> IndexResult<Option<i64>> {
                Ok(
                    sqlx::query_scalar::<_, i64>("SELECT id FROM projects WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&ix.pool)
                        .await?,
                )
            }

            pub(in crate::db) async fn list_projects(ix: &Ix) -> IndexResult<Vec<ProjectInfo>> {
                let rows: Vec<(String, i64)> =
                    sqlx::query_as("SELECT name, created_at FROM projects ORDER BY name")
                        .fetch_all(&ix.pool)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(name, created_at)| ProjectInfo { name, created_at })
                    .collect())
            }

            pub(in crate::db) async fn usage(
                ix: &Ix,
                project_id: i64,
                name: &str,
            ) -> IndexResult<UsageInfo> {
                let (objects, bytes): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT COUNT(*), CAST(SUM(size) AS BIGINT) FROM project_objects
                         WHERE project_id = $1",
                )
                .bind(project_id)
                .fetch_one(&ix.pool)
                .await?;
                Ok(UsageInfo {
                    project: name.to_string(),
                    objects: objects.max(0) as u64,
                    bytes: bytes.unwrap_or(0).max(0) as u64,
                })
            }
        }

        pub(super) use shared::*;
    };
}

pub(crate) use projects;
