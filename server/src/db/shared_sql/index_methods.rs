//! The [`Index`](crate::db::Index) methods that every engine answers by calling its function of
//! the same name, whether that function is shared or the engine's own.

/// Expands, inside an engine's `impl Index`, to those methods; they call into the engine's
/// `projects`, `users`, `groups`, `tokens`, `objects` and `audit` modules.
macro_rules! shared_index_methods {
    () => {
        fn create_project<'a>(
            &'a self,
            name: &'a str,
        ) -> $crate::db::IndexFuture<'a, lode_proto::api::ProjectInfo> {
            Box::pin(projects::create_project(self, name))
        }

        fn project_id<'a>(&'a self, name: &'a str) -> $crate::db::IndexFuture<'a, Option<i64>> {
            Box::pin(projects::project_id(self, name))
        }

        fn list_projects(&self) -> $crate::db::IndexFuture<'_, Vec<lode_proto::api::ProjectInfo>> {
            Box::pin(projects::list_projects(self))
        }

        fn usage<'a>(
            &'a self,
            project_id: i64,
            name: &'a str,
        ) -> $crate::db::IndexFuture<'a, lode_proto::api::UsageInfo> {
            Box::pin(projects::usage(self, project_id, name))
        }

        fn create_user<'a>(
            &'a self,
            name: &'a str,
            server_admin: bool,
        ) -> $crate::db::IndexFuture<'a, lode_proto::api::UserInfo> {
            Box::pin(users::create_user(self, name, server_admin))
        }

        fn ensure_admin_user<'a>(&'a self, name: &'a str) -> $crate::db::IndexFuture<'a, i64> {
            Box::pin(users::ensure_admin_user(self, name))
        }

        fn user_id<'a>(&'a self, name: &'a str) -> $crate::db::IndexFuture<'a, Option<i64>> {
            Box::pin(users::user_id(self, name))
        }

        fn list_users(&self) -> $crate::db::IndexFuture<'_, Vec<lode_proto::api::UserInfo>> {
            Box::pin(users::list_users(self))
        }

        fn delete_user<'a>(&'a self, name: &'a str) -> $crate::db::IndexFuture<'a, ()> {
            Box::pin(users::delete_user(self, name))
        }

        fn user_role(
            &self,
            user_id: i64,
            project_id: i64,
        ) -> $crate::db::IndexFuture<'_, Option<lode_proto::Role>> {
            Box::pin(users::user_role(self, user_id, project_id))
        }

        fn user_projects(
            &self,
            user_id: i64,
        ) -> $crate::db::IndexFuture<'_, Vec<lode_proto::api::ProjectInfo>> {
            Box::pin(users::user_projects(self, user_id))
        }

        fn create_group<'a>(
            &'a self,
            name: &'a str,
        ) -> $crate::db::IndexFuture<'a, lode_proto::api::GroupInfo> {
            Box::pin(groups::create_group(self, name))
        }

        fn delete_group<'a>(&'a self, name: &'a str) -> $crate::db::IndexFuture<'a, ()> {
            Box::pin(groups::delete_group(self, name))
        }

        fn list_groups(&self) -> $crate::db::IndexFuture<'_, Vec<lode_proto::api::GroupInfo>> {
            Box::pin(groups::list_groups(self))
        }

        fn add_member<'a>(
            &'a self,
            group: &'a str,
            user: &'a str,
        ) -> $crate::db::IndexFuture<'a, ()> {
            Box::pin(groups::add_member(self, group, user))
        }

        fn remove_member<'a>(
            &'a self,
            group: &'a str,
            user: &'a str,
        ) -> $crate::db::IndexFuture<'a, ()> {
            Box::pin(groups::remove_member(self, group, user))
        }

        fn set_grant<'a>(
            &'a self,
            project_id: i64,
            who: $crate::db::Grantee<'a>,
            role: lode_proto::Role,
        ) -> $crate::db::IndexFuture<'a, ()> {
            Box::pin(groups::set_grant(self, project_id, who, role))
        }

        fn remove_grant<'a>(
            &'a self,
            project_id: i64,
            who: $crate::db::Grantee<'a>,
        ) -> $crate::db::IndexFuture<'a, ()> {
            Box::pin(groups::remove_grant(self, project_id, who))
        }

        fn list_grants(
            &self,
            project_id: i64,
        ) -> $crate::db::IndexFuture<'_, Vec<lode_proto::api::GrantInfo>> {
            Box::pin(groups::list_grants(self, project_id))
        }

        fn insert_token<'a>(
            &'a self,
            token: &'a $crate::db::NewToken<'a>,
        ) -> $crate::db::IndexFuture<'a, ()> {
            Box::pin(tokens::insert_token(self, token))
        }

        fn token<'a>(
            &'a self,
            id: &'a str,
        ) -> $crate::db::IndexFuture<'a, Option<$crate::db::TokenRow>> {
            Box::pin(tokens::token(self, id))
        }

        fn list_tokens(
            &self,
            project_id: Option<i64>,
            user_id: Option<i64>,
        ) -> $crate::db::IndexFuture<'_, Vec<$crate::db::TokenRow>> {
            Box::pin(tokens::list_tokens(self, project_id, user_id))
        }

        fn revoke_token<'a>(&'a self, id: &'a str) -> $crate::db::IndexFuture<'a, ()> {
            Box::pin(tokens::revoke_token(self, id))
        }

        fn touch_tokens<'a>(
            &'a self,
            used: &'a [(String, i64)],
        ) -> $crate::db::IndexFuture<'a, ()> {
            Box::pin(tokens::touch_tokens(self, used))
        }

        fn object_sizes<'a>(
            &'a self,
            project_id: i64,
            kind: lode_proto::HashKind,
            oids: &'a [lode_proto::ObjectId],
        ) -> $crate::db::IndexFuture<'a, std::collections::HashMap<lode_proto::ObjectId, u64>> {
            Box::pin(objects::object_sizes(self, project_id, kind, oids))
        }

        fn add_objects_each<'a>(
            &'a self,
            refs: &'a [$crate::db::ObjectRef],
        ) -> $crate::db::IndexFuture<'a, Vec<bool>> {
            Box::pin(objects::add_objects_each(self, refs))
        }

        fn missing_objects<'a>(
            &'a self,
            project_id: i64,
            kind: lode_proto::HashKind,
            oids: &'a [lode_proto::ObjectId],
        ) -> $crate::db::IndexFuture<'a, Vec<lode_proto::ObjectId>> {
            Box::pin(objects::missing_objects(self, project_id, kind, oids))
        }

        fn all_referenced(
            &self,
        ) -> $crate::db::IndexFuture<'_, Vec<(lode_proto::HashKind, String, u64)>> {
            Box::pin(objects::all_referenced(self))
        }

        fn all_manifests(
            &self,
        ) -> $crate::db::IndexFuture<
            '_,
            Vec<(i64, String, lode_proto::HashKind, lode_proto::ObjectId)>,
        > {
            Box::pin(objects::all_manifests(self))
        }

        fn projects_holding<'a>(
            &'a self,
            kind: lode_proto::HashKind,
            oid: &'a str,
        ) -> $crate::db::IndexFuture<'a, Vec<String>> {
            Box::pin(objects::projects_holding(self, kind, oid))
        }

        fn count_object_refs(&self) -> $crate::db::IndexFuture<'_, u64> {
            Box::pin(objects::count_object_refs(self))
        }

        fn project_objects(
            &self,
            project_id: i64,
        ) -> $crate::db::IndexFuture<'_, Vec<$crate::db::HeldObject>> {
            Box::pin(objects::project_objects(self, project_id))
        }

        fn referenced_elsewhere<'a>(
            &'a self,
            except: i64,
            kind: lode_proto::HashKind,
            oids: &'a [lode_proto::ObjectId],
        ) -> $crate::db::IndexFuture<'a, std::collections::HashSet<lode_proto::ObjectId>> {
            Box::pin(objects::referenced_elsewhere(self, except, kind, oids))
        }

        fn is_referenced<'a>(
            &'a self,
            kind: lode_proto::HashKind,
            oid: &'a lode_proto::ObjectId,
        ) -> $crate::db::IndexFuture<'a, bool> {
            Box::pin(objects::is_referenced(self, kind, oid))
        }

        fn append_audit<'a>(
            &'a self,
            events: &'a [$crate::db::AuditEvent],
        ) -> $crate::db::IndexFuture<'a, ()> {
            Box::pin(audit::append_audit(self, events))
        }

        fn list_audit<'a>(
            &'a self,
            project: Option<&'a str>,
            before: Option<i64>,
            limit: u32,
        ) -> $crate::db::IndexFuture<'a, Vec<lode_proto::api::AuditEntry>> {
            Box::pin(audit::list_audit(self, project, before, limit))
        }
    };
}

pub(crate) use shared_index_methods;
