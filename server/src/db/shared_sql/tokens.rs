//! Access tokens: their rows and revocation. Recording their use differs by engine.

/// Defines the functions for the index type `$Index`; `$ties` orders tokens created in the
/// same second (the order they were inserted in).
macro_rules! tokens {
    ($Index:ty, ties = $ties:literal) => {
        mod shared {
            use crate::db::{now, IndexError, IndexResult, NewToken, TokenRow};
            type Ix = $Index;

            const SELECT: &str = "SELECT t.id, t.token_sha256, t.project_id, p.name, t.user_id,
                u.name, COALESCE(u.is_admin, FALSE), t.role, t.description, t.created_by,
                t.created_at, t.expires_at, t.revoked_at, t.last_used_at
                FROM tokens t LEFT JOIN projects p ON p.id = t.project_id
                LEFT JOIN users u ON u.id = t.user_id";

            type Raw = (
                String,
                String,
                Option<i64>,
                Option<String>,
                Option<i64>,
                Option<String>,
                bool,
                Option<String>,
                String,
                String,
                i64,
                Option<i64>,
                Option<i64>,
                Option<i64>,
            );

            fn from_raw(r: Raw) -> IndexResult<TokenRow> {
                Ok(TokenRow {
                    id: r.0,
                    token_sha256: r.1,
                    project_id: r.2,
                    project: r.3,
                    user_id: r.4,
                    user: r.5,
                    user_is_admin: r.6,
                    role: r
                        .7
                        .map(|s| s.parse())
                        .transpose()
                        .map_err(IndexError::Invalid)?,
                    description: r.8,
                    created_by: r.9,
                    created_at: r.10,
                    expires_at: r.11,
                    revoked_at: r.12,
                    last_used_at: r.13,
                })
            }

            pub(in crate::db) async fn insert_token(ix: &Ix, t: &NewToken<'_>) -> IndexResult<()> {
                sqlx::query(
                    "INSERT INTO tokens (id, token_sha256, project_id, user_id, role, description,
                         created_by, created_at, expires_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(t.id)
                .bind(t.token_sha256)
                .bind(t.project_id)
                .bind(t.user_id)
                .bind(t.role.map(|r| r.as_str()))
                .bind(t.description)
                .bind(t.created_by)
                .bind(t.created_at)
                .bind(t.expires_at)
                .execute(&ix.pool)
                .await?;
                Ok(())
            }

            pub(in crate::db) async fn token(ix: &Ix, id: &str) -> IndexResult<Option<TokenRow>> {
                let raw: Option<Raw> = sqlx::query_as(&format!("{SELECT} WHERE t.id = $1"))
                    .bind(id)
                    .fetch_optional(&ix.pool)
                    .await?;
                raw.map(from_raw).transpose()
            }

            /// Tokens filtered by project and/or user id; all tokens when both are `None`.
            pub(in crate::db) async fn list_tokens(
                ix: &Ix,
                project_id: Option<i64>,
                user_id: Option<i64>,
            ) -> IndexResult<Vec<TokenRow>> {
                let raws: Vec<Raw> = sqlx::query_as(&format!(
                    "{SELECT} WHERE (CAST($1 AS BIGINT) IS NULL OR t.project_id = $1)
                         AND (CAST($2 AS BIGINT) IS NULL OR t.user_id = $2)
                         ORDER BY t.created_at, {}",
                    $ties
                ))
                .bind(project_id)
                .bind(user_id)
                .fetch_all(&ix.pool)
                .await?;
                raws.into_iter().map(from_raw).collect()
            }

            /// Marks a token revoked; revoking twice keeps the first time.
            pub(in crate::db) async fn revoke_token(ix: &Ix, id: &str) -> IndexResult<()> {
                let done = sqlx::query(
                    "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
                )
                .bind(now())
                .bind(id)
                .execute(&ix.pool)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(IndexError::NotFound(format!("token '{id}'")));
                }
                Ok(())
            }
        }

        pub(super) use shared::*;
    };
}

pub(crate) use tokens;
