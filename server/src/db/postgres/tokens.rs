//! Access tokens: their rows, revocation and last use.

use super::PgIndex;
use crate::db::IndexResult;

/// Records when tokens were last used, in one statement.
pub(super) async fn touch_tokens(ix: &PgIndex, used: &[(String, i64)]) -> IndexResult<()> {
    if used.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = used.iter().map(|(id, _)| id.as_str()).collect();
    let ats: Vec<i64> = used.iter().map(|(_, at)| *at).collect();
    sqlx::query(
        "UPDATE tokens t SET last_used_at = GREATEST(COALESCE(t.last_used_at, 0), u.at)
             FROM (SELECT id, MAX(at) AS at FROM UNNEST($1::TEXT[], $2::BIGINT[]) AS x(id, at)
                   GROUP BY id) u
             WHERE t.id = u.id",
    )
    .bind(ids)
    .bind(ats)
    .execute(&ix.pool)
    .await?;
    Ok(())
}

crate::db::shared_sql::tokens!(crate::db::postgres::PgIndex, ties = "t.seq");
