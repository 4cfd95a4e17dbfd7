//! The index: projects, users, groups, grants, tokens, the objects each project holds and the
//! audit log, behind the [`Index`] trait that the server, `admin` and `fsck` use.
//!
//! Each engine lives in its own folder and keeps its SQL there; [`sqlite`] is the embedded one,
//! [`postgres`] the one several servers share.
//! The trait speaks in the project's own types (names, numeric ids, [`ObjectId`], the row structs
//! of [`rows`]); times are Unix seconds (`i64`). An engine must pass the test suite in
//! `conformance.rs`, which pins what each method promises.
//!
//! The rules that keep one server's uploads, collections and caches consistent are methods of
//! the trait too, so that an engine shared by several servers can enforce them across all of
//! them: see [`coordination`].

pub(crate) mod coordination;
pub(crate) mod postgres;
mod rows;
mod shared_sql;
pub(crate) mod sqlite;
mod sqlx_error;

#[cfg(test)]
pub(crate) mod conformance;

pub(crate) use coordination::{Hold, Occupant};
pub(crate) use rows::{AuditEvent, Grantee, HeldObject, NewToken, ObjectRef, TokenRow};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::future::BoxFuture;
use lode_proto::api::{AuditEntry, GrantInfo, GroupInfo, ProjectInfo, UsageInfo, UserInfo};
use lode_proto::{HashKind, ObjectId, Role};

use crate::datadir::DataDir;

/// What any engine's failure is reported as.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The engine itself failed (connection lost, disk full, constraint the caller cannot fix).
    #[error("database error: {0}")]
    Engine(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The engine could not be reached at all; `what` names it (never with a password).
    #[error("cannot reach {what}: {source}")]
    Unreachable {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// [`Index::occupy`] could not claim the deployment (another process holds it).
    #[error("{what}: {source}")]
    Occupied {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A batching task in front of the index failed; every caller of the batch gets this.
    #[error("{task}: {source}")]
    Batch {
        task: &'static str,
        #[source]
        source: Arc<IndexError>,
    },
    #[error("{0} has stopped")]
    Stopped(&'static str),
}

impl IndexError {
    /// Whether the engine cannot be reached for now, so that the same request may succeed later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            IndexError::Unreachable { .. } => true,
            IndexError::Engine(e) => e
                .downcast_ref::<sqlx::Error>()
                .is_some_and(sqlx_error::unavailable),
            IndexError::Batch { source, .. } => source.is_unavailable(),
            _ => false,
        }
    }
}

pub(crate) type IndexResult<T> = Result<T, IndexError>;

/// The future every index method returns.
pub(crate) type IndexFuture<'a, T> = BoxFuture<'a, IndexResult<T>>;

/// Now, as the index stores times: Unix seconds.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The index, as every engine provides it. Cheap to share behind an `Arc`.
///
/// Lists "sorted by name" compare names byte by byte, whatever the engine's collation.
///
/// Methods that write many rows (`add_objects_each`, `append_audit`, `touch_tokens`) are called
/// by batching tasks with whole batches; an engine should write each batch in as few round trips
/// as it can (one statement or one transaction), since uploads wait on them.
pub(crate) trait Index: Send + Sync + 'static {
    // --- Life cycle ---

    /// Brings the schema up to date; safe to call when it already is.
    fn migrate(&self) -> IndexFuture<'_, ()>;
    /// Claims the deployment for `who` until the hold is dropped (the data-folder lock; see
    /// [`coordination`]).
    fn occupy(&self, who: Occupant) -> IndexFuture<'_, Hold>;
    /// A cheap query proving the index answers.
    fn ping(&self) -> IndexFuture<'_, ()>;
    /// Waits for open connections to finish and closes them.
    fn close(&self) -> BoxFuture<'_, ()>;
    /// Writes a consistent copy of the whole index, as of one moment and without stopping
    /// writers, as the index of the data folder `dest`, which has none yet (`lode-server backup`).
    fn backup_into<'a>(&'a self, dest: &'a DataDir) -> IndexFuture<'a, ()>;

    // --- Projects ---

    /// `Conflict` when the name is taken.
    fn create_project<'a>(&'a self, name: &'a str) -> IndexFuture<'a, ProjectInfo>;
    fn project_id<'a>(&'a self, name: &'a str) -> IndexFuture<'a, Option<i64>>;
    /// Sorted by name.
    fn list_projects(&self) -> IndexFuture<'_, Vec<ProjectInfo>>;
    /// Deletes the project with its grants, tokens and object references (blobs stay until a
    /// collection finds them unreferenced); `NotFound` when there is none. A deleted project's
    /// id is never given to a later project.
    fn delete_project<'a>(&'a self, name: &'a str) -> IndexFuture<'a, ()>;
    /// Objects and bytes the project holds; `name` is only echoed back.
    fn usage<'a>(&'a self, project_id: i64, name: &'a str) -> IndexFuture<'a, UsageInfo>;

    /// The project's id, or `NotFound`.
    fn require_project<'a>(&'a self, name: &'a str) -> IndexFuture<'a, i64> {
        Box::pin(async move {
            self.project_id(name)
                .await?
                .ok_or_else(|| IndexError::NotFound(format!("project '{name}'")))
        })
    }

    // --- Users ---

    /// `Conflict` when the name is taken.
    fn create_user<'a>(&'a self, name: &'a str, server_admin: bool) -> IndexFuture<'a, UserInfo>;
    /// Creates the user if missing and makes it a server admin; returns its id.
    fn ensure_admin_user<'a>(&'a self, name: &'a str) -> IndexFuture<'a, i64>;
    fn user_id<'a>(&'a self, name: &'a str) -> IndexFuture<'a, Option<i64>>;
    /// Sorted by name.
    fn list_users(&self) -> IndexFuture<'_, Vec<UserInfo>>;
    /// Deletes the user with its memberships, grants and tokens; `NotFound` when there is none.
    fn delete_user<'a>(&'a self, name: &'a str) -> IndexFuture<'a, ()>;
    /// The highest role a user holds on a project, directly or through any of its groups.
    fn user_role(&self, user_id: i64, project_id: i64) -> IndexFuture<'_, Option<Role>>;
    /// Projects a user has a grant on (directly or through groups), sorted by name.
    fn user_projects(&self, user_id: i64) -> IndexFuture<'_, Vec<ProjectInfo>>;

    /// The user's id, or `NotFound`.
    fn require_user<'a>(&'a self, name: &'a str) -> IndexFuture<'a, i64> {
        Box::pin(async move {
            self.user_id(name)
                .await?
                .ok_or_else(|| IndexError::NotFound(format!("user '{name}'")))
        })
    }

    // --- Groups and grants ---

    /// `Conflict` when the name is taken.
    fn create_group<'a>(&'a self, name: &'a str) -> IndexFuture<'a, GroupInfo>;
    /// `NotFound` when there is none.
    fn delete_group<'a>(&'a self, name: &'a str) -> IndexFuture<'a, ()>;
    /// Sorted by name, members sorted by name.
    fn list_groups(&self) -> IndexFuture<'_, Vec<GroupInfo>>;
    /// Adding a member twice is not an error; `NotFound` names a missing group or user.
    fn add_member<'a>(&'a self, group: &'a str, user: &'a str) -> IndexFuture<'a, ()>;
    /// `NotFound` when the group, the user or the membership is missing.
    fn remove_member<'a>(&'a self, group: &'a str, user: &'a str) -> IndexFuture<'a, ()>;
    /// Gives a role on a project, replacing the grantee's earlier role there.
    fn set_grant<'a>(
        &'a self,
        project_id: i64,
        who: Grantee<'a>,
        role: Role,
    ) -> IndexFuture<'a, ()>;
    /// `NotFound` when the grantee or the grant is missing.
    fn remove_grant<'a>(&'a self, project_id: i64, who: Grantee<'a>) -> IndexFuture<'a, ()>;
    /// User grants first (sorted by user), then group grants (sorted by group).
    fn list_grants(&self, project_id: i64) -> IndexFuture<'_, Vec<GrantInfo>>;

    // --- Tokens ---

    fn insert_token<'a>(&'a self, token: &'a NewToken<'a>) -> IndexFuture<'a, ()>;
    fn token<'a>(&'a self, id: &'a str) -> IndexFuture<'a, Option<TokenRow>>;
    /// Tokens filtered by project and/or user id (all when both are `None`), in creation order.
    fn list_tokens(
        &self,
        project_id: Option<i64>,
        user_id: Option<i64>,
    ) -> IndexFuture<'_, Vec<TokenRow>>;
    /// Marks a token revoked; revoking twice keeps the first time. `NotFound` when unknown.
    fn revoke_token<'a>(&'a self, id: &'a str) -> IndexFuture<'a, ()>;
    /// Records when tokens were last used; a time earlier than the one recorded is ignored.
    fn touch_tokens<'a>(&'a self, used: &'a [(String, i64)]) -> IndexFuture<'a, ()>;

    // --- Object references ---

    /// Sizes of the objects among `oids` that the project holds; the others are left out.
    fn object_sizes<'a>(
        &'a self,
        project_id: i64,
        kind: HashKind,
        oids: &'a [ObjectId],
    ) -> IndexFuture<'a, HashMap<ObjectId, u64>>;
    /// Records references, keeping rows that already exist as they are; says for each whether
    /// it was new (of equal references in one batch, the first is the new one).
    fn add_objects_each<'a>(&'a self, refs: &'a [ObjectRef]) -> IndexFuture<'a, Vec<bool>>;
    /// The subset of `oids` the project does not hold, in the given order.
    fn missing_objects<'a>(
        &'a self,
        project_id: i64,
        kind: HashKind,
        oids: &'a [ObjectId],
    ) -> IndexFuture<'a, Vec<ObjectId>>;
    /// Every (kind, oid, size) referenced by any project, once each; ids are as stored, so a
    /// damaged row shows as an id that does not parse.
    fn all_referenced(&self) -> IndexFuture<'_, Vec<(HashKind, String, u64)>>;
    /// Drops every project's reference to an object; returns how many there were.
    fn forget_object<'a>(&'a self, kind: HashKind, oid: &'a str) -> IndexFuture<'a, u64>;
    /// Every `.dir` manifest any project holds: (project id, project name, kind, oid).
    fn all_manifests(&self) -> IndexFuture<'_, Vec<(i64, String, HashKind, ObjectId)>>;
    /// Drops one project's reference to an object.
    fn forget_project_object<'a>(
        &'a self,
        project_id: i64,
        kind: HashKind,
        oid: &'a ObjectId,
    ) -> IndexFuture<'a, ()>;
    /// Names of the projects that reference an object, sorted.
    fn projects_holding<'a>(&'a self, kind: HashKind, oid: &'a str)
        -> IndexFuture<'a, Vec<String>>;
    /// References across all projects (a blob shared by two projects counts twice).
    fn count_object_refs(&self) -> IndexFuture<'_, u64>;

    /// Records references; returns how many were new.
    fn add_objects<'a>(&'a self, refs: &'a [ObjectRef]) -> IndexFuture<'a, u64> {
        Box::pin(async move {
            let added = self.add_objects_each(refs).await?;
            Ok(added.into_iter().filter(|new| *new).count() as u64)
        })
    }

    /// [`Index::missing_objects`] over raw digests of non-directory objects, as a `.dir`
    /// manifest lists them.
    fn missing_digests<'a>(
        &'a self,
        project_id: i64,
        kind: HashKind,
        digests: &'a [[u8; 16]],
    ) -> IndexFuture<'a, Vec<ObjectId>> {
        Box::pin(async move {
            let oids: Vec<ObjectId> = digests
                .iter()
                .map(|d| ObjectId::from_digest(*d, false))
                .collect();
            self.missing_objects(project_id, kind, &oids).await
        })
    }

    // --- Garbage collection ---

    /// Every object the project references; rows whose kind or id do not parse are left out.
    fn project_objects(&self, project_id: i64) -> IndexFuture<'_, Vec<HeldObject>>;
    /// Drops the project's references to these objects at once; returns how many there were.
    fn remove_refs<'a>(
        &'a self,
        project_id: i64,
        refs: &'a [(HashKind, ObjectId)],
    ) -> IndexFuture<'a, u64>;
    /// The subset of `oids` that some project other than `except` references.
    fn referenced_elsewhere<'a>(
        &'a self,
        except: i64,
        kind: HashKind,
        oids: &'a [ObjectId],
    ) -> IndexFuture<'a, HashSet<ObjectId>>;
    /// Whether any project references the object.
    fn is_referenced<'a>(&'a self, kind: HashKind, oid: &'a ObjectId) -> IndexFuture<'a, bool>;

    // --- Audit log ---

    /// Appends events in the given order, all or none.
    fn append_audit<'a>(&'a self, events: &'a [AuditEvent]) -> IndexFuture<'a, ()>;
    /// Newest first, at most `limit` (clamped to 1..=10,000); `before` pages backwards by id.
    fn list_audit<'a>(
        &'a self,
        project: Option<&'a str>,
        before: Option<i64>,
        limit: u32,
    ) -> IndexFuture<'a, Vec<AuditEntry>>;

    // --- Coordination (see [`coordination`]) ---

    /// One garbage collection at a time: held for a whole collection.
    fn gc_lease(&self) -> IndexFuture<'_, Hold>;
    /// Held by an upload from finding or writing its blobs until their references are indexed;
    /// keeps [`Index::hold_for_delete`] of the same blobs waiting.
    fn hold_for_upload<'a>(&'a self, blobs: &'a [(HashKind, ObjectId)]) -> IndexFuture<'a, Hold>;
    /// Held by a collection while it checks that a blob is unreferenced and deletes it.
    fn hold_for_delete(&self, kind: HashKind, oid: ObjectId) -> IndexFuture<'_, Hold>;
    /// A number that changes whenever references are removed (collection, project deletion,
    /// `fsck`), so answers cached from the index before it changed are dropped.
    fn removal_epoch(&self) -> IndexFuture<'_, u64>;
}
