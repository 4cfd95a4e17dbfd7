//! The rows the index reads and writes, as every engine hands them over.

use lode_proto::api::TokenInfo;
use lode_proto::{HashKind, ObjectId, Role};

/// One object a project holds.
#[derive(Debug, Clone)]
pub(crate) struct ObjectRef {
    pub project_id: i64,
    pub kind: HashKind,
    pub oid: ObjectId,
    pub size: u64,
    pub created_at: i64,
}

/// One reference of a project, as garbage collection sees it.
#[derive(Debug, Clone)]
pub(crate) struct HeldObject {
    pub kind: HashKind,
    pub oid: ObjectId,
    pub size: u64,
    pub created_at: i64,
}

/// Whom a grant is for.
#[derive(Debug, Clone, Copy)]
pub enum Grantee<'a> {
    Group(&'a str),
    User(&'a str),
}

/// A token's row joined with the names it refers to.
#[derive(Debug, Clone)]
pub(crate) struct TokenRow {
    pub id: String,
    pub token_sha256: String,
    pub project_id: Option<i64>,
    pub project: Option<String>,
    pub user_id: Option<i64>,
    pub user: Option<String>,
    pub user_is_admin: bool,
    pub role: Option<Role>,
    pub description: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl TokenRow {
    pub(crate) fn info(&self) -> TokenInfo {
        TokenInfo {
            id: self.id.clone(),
            project: self.project.clone(),
            user: self.user.clone(),
            role: self.role,
            description: self.description.clone(),
            created_by: self.created_by.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
        }
    }
}

/// What to insert for a new token; the token string itself is never stored.
pub(crate) struct NewToken<'a> {
    pub id: &'a str,
    pub token_sha256: &'a str,
    pub project_id: Option<i64>,
    pub user_id: Option<i64>,
    pub role: Option<Role>,
    pub description: &'a str,
    pub created_by: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// One line of the audit log.
#[derive(Debug, Clone)]
pub(crate) struct AuditEvent {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub project: Option<String>,
    pub target: Option<String>,
    pub detail: Option<String>,
}
