//! What every index engine must do, as tests: each check takes a freshly migrated, empty index
//! and exercises one area of [`Index`] through the trait alone. An engine runs all of them with
//! [`index_conformance!`], given a function that opens such an index.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lode_proto::{HashKind, ObjectId, Role};

use super::{AuditEvent, Grantee, Index, IndexError, NewToken, ObjectRef, Occupant};

/// Defines one `#[tokio::test]` per check for an engine. `$open` is an async function returning
/// `(Arc<dyn Index>, T)`: a new, migrated, empty index and whatever must live as long as it; or
/// an `Option` of that, `None` when the engine is not available here (the check then passes
/// without running, and the opener says so).
macro_rules! index_conformance {
    ($open:path) => {
        $crate::db::conformance::index_conformance!(
            $open;
            projects,
            users,
            groups_and_grants,
            tokens,
            object_refs,
            object_refs_in_large_batches,
            gc_helpers,
            removals_change_the_epoch,
            audit,
            usage,
            blob_holds,
            gc_lease,
            occupy
        );
    };
    ($open:path; $($check:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                use $crate::db::conformance::Opened;
                let Some((index, _keep)) = $open().await.opened() else {
                    return;
                };
                $crate::db::conformance::$check(&*index).await;
            }
        )+
    };
}
pub(crate) use index_conformance;

/// What an engine's opener returns: an index, or maybe one.
pub(crate) trait Opened {
    type Keep;
    fn opened(self) -> Option<(Arc<dyn Index>, Self::Keep)>;
}

impl<T> Opened for (Arc<dyn Index>, T) {
    type Keep = T;
    fn opened(self) -> Option<(Arc<dyn Index>, T)> {
        Some(self)
    }
}

impl<T> Opened for Option<(Arc<dyn Index>, T)> {
    type Keep = T;
    fn opened(self) -> Option<(Arc<dyn Index>, T)> {
        self
    }
}

fn oid(i: u32) -> ObjectId {
    ObjectId::from_digest(
        lode_objio::hash::digest_of(HashKind::Md5, &i.to_le_bytes()),
        false,
    )
}

fn dir_oid(i: u32) -> ObjectId {
    ObjectId::from_digest(
        lode_objio::hash::digest_of(HashKind::Md5, &i.to_le_bytes()),
        true,
    )
}

fn obj(project_id: i64, oid: ObjectId, size: u64, created_at: i64) -> ObjectRef {
    ObjectRef {
        project_id,
        kind: HashKind::Md5,
        oid,
        size,
        created_at,
    }
}

fn is_not_found<T: std::fmt::Debug>(r: Result<T, IndexError>) -> bool {
    matches!(r, Err(IndexError::NotFound(_)))
}

fn is_conflict<T: std::fmt::Debug>(r: Result<T, IndexError>) -> bool {
    matches!(r, Err(IndexError::Conflict(_)))
}

pub(crate) async fn projects(ix: &dyn Index) {
    let a = ix.create_project("ab").await.unwrap();
    assert_eq!(a.name, "ab");
    assert!(a.created_at > 0);
    ix.create_project("a-c").await.unwrap();
    ix.create_project("a.b").await.unwrap();
    assert!(is_conflict(ix.create_project("ab").await));
    // Byte order, whatever the engine's collation: '-' < '.' < 'b'.
    let names: Vec<String> = ix
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["a-c", "a.b", "ab"]);

    let id = ix.project_id("ab").await.unwrap().expect("id of ab");
    assert_eq!(ix.require_project("ab").await.unwrap(), id);
    assert_eq!(ix.project_id("nope").await.unwrap(), None);
    assert!(is_not_found(ix.require_project("nope").await));

    ix.delete_project("ab").await.unwrap();
    assert!(is_not_found(ix.delete_project("ab").await));
    assert_eq!(ix.project_id("ab").await.unwrap(), None);
    // A new project of the same name never gets the old id.
    ix.create_project("ab").await.unwrap();
    assert_ne!(ix.require_project("ab").await.unwrap(), id);
}

pub(crate) async fn users(ix: &dyn Index) {
    let u = ix.create_user("bob", false).await.unwrap();
    assert_eq!((u.name.as_str(), u.server_admin), ("bob", false));
    assert!(is_conflict(ix.create_user("bob", true).await));
    ix.create_user("a-dm", true).await.unwrap();
    let listed: Vec<(String, bool)> = ix
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.name, u.server_admin))
        .collect();
    assert_eq!(
        listed,
        [("a-dm".to_string(), true), ("bob".to_string(), false)]
    );

    // Makes an existing user an admin, keeping its id; creates a missing one.
    let bob = ix.require_user("bob").await.unwrap();
    assert_eq!(ix.ensure_admin_user("bob").await.unwrap(), bob);
    let root = ix.ensure_admin_user("root").await.unwrap();
    assert_eq!(ix.user_id("root").await.unwrap(), Some(root));
    assert!(ix
        .list_users()
        .await
        .unwrap()
        .iter()
        .all(|u| u.server_admin));

    ix.delete_user("bob").await.unwrap();
    assert!(is_not_found(ix.delete_user("bob").await));
    assert_eq!(ix.user_id("bob").await.unwrap(), None);
    assert!(is_not_found(ix.require_user("bob").await));
}

pub(crate) async fn groups_and_grants(ix: &dyn Index) {
    let p = ix.create_project("p").await.unwrap();
    let pid = ix.require_project(&p.name).await.unwrap();
    let other = ix.create_project("other").await.unwrap();
    let other_id = ix.require_project(&other.name).await.unwrap();
    let ann = ix.create_user("ann", false).await.unwrap();
    let ann_id = ix.require_user(&ann.name).await.unwrap();
    ix.create_user("zed", false).await.unwrap();
    let zed_id = ix.require_user("zed").await.unwrap();

    let g = ix.create_group("team").await.unwrap();
    assert!(g.members.is_empty());
    assert!(is_conflict(ix.create_group("team").await));
    ix.create_group("a-team").await.unwrap();
    ix.add_member("team", "zed").await.unwrap();
    ix.add_member("team", "ann").await.unwrap();
    // Twice is fine.
    ix.add_member("team", "ann").await.unwrap();
    assert!(is_not_found(ix.add_member("team", "nobody").await));
    assert!(is_not_found(ix.add_member("nogroup", "ann").await));
    let groups = ix.list_groups().await.unwrap();
    let summary: Vec<(&str, Vec<&str>)> = groups
        .iter()
        .map(|g| {
            (
                g.name.as_str(),
                g.members.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(summary, [("a-team", vec![]), ("team", vec!["ann", "zed"])]);

    // Roles: none, direct, through a group, the highest of both.
    assert_eq!(ix.user_role(ann_id, pid).await.unwrap(), None);
    ix.set_grant(pid, Grantee::User("ann"), Role::Read)
        .await
        .unwrap();
    assert_eq!(ix.user_role(ann_id, pid).await.unwrap(), Some(Role::Read));
    ix.set_grant(pid, Grantee::Group("team"), Role::Write)
        .await
        .unwrap();
    assert_eq!(ix.user_role(ann_id, pid).await.unwrap(), Some(Role::Write));
    assert_eq!(ix.user_role(zed_id, pid).await.unwrap(), Some(Role::Write));
    assert_eq!(ix.user_role(ann_id, other_id).await.unwrap(), None);
    // Setting again replaces the role.
    ix.set_grant(pid, Grantee::User("ann"), Role::Admin)
        .await
        .unwrap();
    assert_eq!(ix.user_role(ann_id, pid).await.unwrap(), Some(Role::Admin));
    ix.set_grant(pid, Grantee::Group("a-team"), Role::Read)
        .await
        .unwrap();
    assert!(is_not_found(
        ix.set_grant(pid, Grantee::User("nobody"), Role::Read).await
    ));

    // User grants first, then group grants, each by name.
    let grants: Vec<(Option<String>, Option<String>, Role)> = ix
        .list_grants(pid)
        .await
        .unwrap()
        .into_iter()
        .map(|g| {
            assert_eq!(g.project, "p");
            (g.group, g.user, g.role)
        })
        .collect();
    assert_eq!(
        grants,
        [
            (None, Some("ann".to_string()), Role::Admin),
            (Some("a-team".to_string()), None, Role::Read),
            (Some("team".to_string()), None, Role::Write),
        ]
    );

    // Projects seen through grants, once each, by name.
    ix.set_grant(other_id, Grantee::Group("team"), Role::Read)
        .await
        .unwrap();
    let seen = |list: Vec<lode_proto::api::ProjectInfo>| -> Vec<String> {
        list.into_iter().map(|p| p.name).collect()
    };
    assert_eq!(
        seen(ix.user_projects(ann_id).await.unwrap()),
        ["other", "p"]
    );

    ix.remove_grant(pid, Grantee::User("ann")).await.unwrap();
    assert!(is_not_found(
        ix.remove_grant(pid, Grantee::User("ann")).await
    ));
    assert_eq!(ix.user_role(ann_id, pid).await.unwrap(), Some(Role::Write));
    ix.remove_member("team", "ann").await.unwrap();
    assert!(is_not_found(ix.remove_member("team", "ann").await));
    assert_eq!(ix.user_role(ann_id, pid).await.unwrap(), None);
    assert!(ix.user_projects(ann_id).await.unwrap().is_empty());

    // Deleting a group takes its grants with it.
    ix.delete_group("team").await.unwrap();
    assert!(is_not_found(ix.delete_group("team").await));
    assert_eq!(ix.user_role(zed_id, pid).await.unwrap(), None);
    assert_eq!(ix.list_grants(pid).await.unwrap().len(), 1);
    assert!(is_not_found(
        ix.remove_grant(pid, Grantee::Group("team")).await
    ));
}

pub(crate) async fn tokens(ix: &dyn Index) {
    ix.create_project("p").await.unwrap();
    let pid = ix.require_project("p").await.unwrap();
    let admin = ix.ensure_admin_user("root").await.unwrap();
    let new = |id: &'static str, project_id, user_id, role, at| NewToken {
        id,
        token_sha256: "aa",
        project_id,
        user_id,
        role,
        description: "d",
        created_by: "test",
        created_at: at,
        expires_at: None,
    };
    // Same creation second: listed in the order they were made.
    ix.insert_token(&new("t2", Some(pid), None, Some(Role::Write), 100))
        .await
        .unwrap();
    ix.insert_token(&new("t1", Some(pid), None, Some(Role::Read), 100))
        .await
        .unwrap();
    ix.insert_token(&new("t0", None, Some(admin), None, 50))
        .await
        .unwrap();
    ix.insert_token(&NewToken {
        expires_at: Some(1_000),
        ..new("t3", Some(pid), None, Some(Role::Admin), 200)
    })
    .await
    .unwrap();

    let t = ix.token("t2").await.unwrap().expect("t2");
    assert_eq!(t.project.as_deref(), Some("p"));
    assert_eq!(t.project_id, Some(pid));
    assert_eq!(t.role, Some(Role::Write));
    assert_eq!((t.user_id, t.user_is_admin), (None, false));
    assert_eq!((t.description.as_str(), t.created_at), ("d", 100));
    assert_eq!(
        (t.revoked_at, t.last_used_at, t.expires_at),
        (None, None, None)
    );
    let u = ix.token("t0").await.unwrap().expect("t0");
    assert_eq!(u.user.as_deref(), Some("root"));
    assert!(u.user_is_admin);
    assert_eq!(u.role, None);
    assert_eq!(
        ix.token("t3").await.unwrap().and_then(|t| t.expires_at),
        Some(1_000)
    );
    assert!(ix.token("nope").await.unwrap().is_none());

    let ids = |rows: Vec<super::TokenRow>| rows.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(
        ids(ix.list_tokens(None, None).await.unwrap()),
        ["t0", "t2", "t1", "t3"]
    );
    assert_eq!(
        ids(ix.list_tokens(Some(pid), None).await.unwrap()),
        ["t2", "t1", "t3"]
    );
    assert_eq!(
        ids(ix.list_tokens(None, Some(admin)).await.unwrap()),
        ["t0"]
    );
    assert!(ix
        .list_tokens(Some(pid), Some(admin))
        .await
        .unwrap()
        .is_empty());

    ix.revoke_token("t1").await.unwrap();
    let first = ix.token("t1").await.unwrap().and_then(|t| t.revoked_at);
    assert!(first.is_some());
    ix.revoke_token("t1").await.unwrap();
    assert_eq!(
        ix.token("t1").await.unwrap().and_then(|t| t.revoked_at),
        first
    );
    assert!(is_not_found(ix.revoke_token("nope").await));

    // Last use: recorded, never moved backwards, unknown ids ignored.
    ix.touch_tokens(&[("t2".into(), 500), ("nope".into(), 9)])
        .await
        .unwrap();
    ix.touch_tokens(&[("t2".into(), 400)]).await.unwrap();
    assert_eq!(
        ix.token("t2").await.unwrap().and_then(|t| t.last_used_at),
        Some(500)
    );
    ix.touch_tokens(&[]).await.unwrap();

    // A project's tokens go with it.
    ix.delete_project("p").await.unwrap();
    assert!(ix.token("t2").await.unwrap().is_none());
    assert_eq!(ids(ix.list_tokens(None, None).await.unwrap()), ["t0"]);
}

pub(crate) async fn object_refs(ix: &dyn Index) {
    ix.create_project("a").await.unwrap();
    ix.create_project("b").await.unwrap();
    let a = ix.require_project("a").await.unwrap();
    let b = ix.require_project("b").await.unwrap();
    assert!(ix.add_objects_each(&[]).await.unwrap().is_empty());

    // New or not, per reference; the first of two equal ones in a batch is the new one.
    let added = ix
        .add_objects_each(&[
            obj(a, oid(1), 10, 5),
            obj(a, oid(2), 20, 5),
            obj(a, oid(1), 10, 5),
            obj(b, oid(1), 10, 5),
        ])
        .await
        .unwrap();
    assert_eq!(added, [true, true, false, true]);
    // An existing row is kept as it is.
    assert_eq!(ix.add_objects(&[obj(a, oid(1), 99, 6)]).await.unwrap(), 0);
    let dos2unix = ObjectRef {
        kind: HashKind::Md5Dos2unix,
        ..obj(a, oid(3), 30, 5)
    };
    assert_eq!(
        ix.add_objects(&[dos2unix, obj(a, dir_oid(4), 40, 5)])
            .await
            .unwrap(),
        2
    );

    let sizes = ix
        .object_sizes(a, HashKind::Md5, &[oid(1), oid(2), oid(3), oid(9)])
        .await
        .unwrap();
    assert_eq!(sizes.len(), 2);
    assert_eq!((sizes[&oid(1)], sizes[&oid(2)]), (10, 20));
    let sizes = ix
        .object_sizes(a, HashKind::Md5Dos2unix, &[oid(3)])
        .await
        .unwrap();
    assert_eq!(sizes.get(&oid(3)), Some(&30));

    assert_eq!(
        ix.missing_objects(a, HashKind::Md5, &[oid(9), oid(1), oid(3), oid(8)])
            .await
            .unwrap(),
        [oid(9), oid(3), oid(8)]
    );
    assert_eq!(
        ix.missing_objects(b, HashKind::Md5, &[oid(1), oid(2)])
            .await
            .unwrap(),
        [oid(2)]
    );
    assert_eq!(
        ix.missing_digests(a, HashKind::Md5, &[*oid(2).digest(), *oid(7).digest()])
            .await
            .unwrap(),
        [oid(7)]
    );

    let mut all = ix.all_referenced().await.unwrap();
    all.sort();
    let mut expected = vec![
        (HashKind::Md5, oid(1).to_string(), 10),
        (HashKind::Md5, oid(2).to_string(), 20),
        (HashKind::Md5Dos2unix, oid(3).to_string(), 30),
        (HashKind::Md5, dir_oid(4).to_string(), 40),
    ];
    expected.sort();
    assert_eq!(all, expected);
    assert_eq!(
        ix.all_manifests().await.unwrap(),
        [(a, "a".to_string(), HashKind::Md5, dir_oid(4))]
    );
    assert_eq!(
        ix.projects_holding(HashKind::Md5, &oid(1).to_string())
            .await
            .unwrap(),
        ["a", "b"]
    );
    assert_eq!(ix.count_object_refs().await.unwrap(), 5);

    assert_eq!(
        ix.forget_object(HashKind::Md5, &oid(1).to_string())
            .await
            .unwrap(),
        2
    );
    assert!(ix
        .projects_holding(HashKind::Md5, &oid(1).to_string())
        .await
        .unwrap()
        .is_empty());
    ix.forget_project_object(a, HashKind::Md5, &dir_oid(4))
        .await
        .unwrap();
    assert!(ix.all_manifests().await.unwrap().is_empty());
    assert_eq!(ix.count_object_refs().await.unwrap(), 2);

    // A project's references go with it.
    ix.delete_project("a").await.unwrap();
    assert_eq!(ix.count_object_refs().await.unwrap(), 0);
}

pub(crate) async fn object_refs_in_large_batches(ix: &dyn Index) {
    ix.create_project("p").await.unwrap();
    let p = ix.require_project("p").await.unwrap();
    let first: Vec<ObjectRef> = (0..1500).map(|i| obj(p, oid(i), u64::from(i), 1)).collect();
    assert_eq!(ix.add_objects(&first).await.unwrap(), 1500);
    // Half old, half new, across statement boundaries.
    let second: Vec<ObjectRef> = (750..2250)
        .map(|i| obj(p, oid(i), u64::from(i), 1))
        .collect();
    let added = ix.add_objects_each(&second).await.unwrap();
    assert_eq!(added.len(), 1500);
    assert!(added[..750].iter().all(|new| !new));
    assert!(added[750..].iter().all(|new| *new));

    let asked: Vec<ObjectId> = (2000..3200).map(oid).collect();
    let missing = ix.missing_objects(p, HashKind::Md5, &asked).await.unwrap();
    assert_eq!(missing, (2250..3200).map(oid).collect::<Vec<_>>());
    let sizes = ix.object_sizes(p, HashKind::Md5, &asked).await.unwrap();
    assert_eq!(sizes.len(), 250);
    assert_eq!(sizes[&oid(2100)], 2100);
    assert_eq!(ix.count_object_refs().await.unwrap(), 2250);
}

pub(crate) async fn gc_helpers(ix: &dyn Index) {
    ix.create_project("a").await.unwrap();
    ix.create_project("b").await.unwrap();
    let a = ix.require_project("a").await.unwrap();
    let b = ix.require_project("b").await.unwrap();
    ix.add_objects(&[
        obj(a, oid(1), 1, 100),
        obj(a, oid(2), 2, 200),
        obj(a, dir_oid(3), 3, 300),
        obj(b, oid(2), 2, 50),
    ])
    .await
    .unwrap();

    let mut held: Vec<(ObjectId, u64, i64)> = ix
        .project_objects(a)
        .await
        .unwrap()
        .into_iter()
        .map(|h| {
            assert_eq!(h.kind, HashKind::Md5);
            (h.oid, h.size, h.created_at)
        })
        .collect();
    held.sort_by_key(|h| h.1);
    assert_eq!(
        held,
        [(oid(1), 1, 100), (oid(2), 2, 200), (dir_oid(3), 3, 300)]
    );

    let all = [oid(1), oid(2), dir_oid(3)];
    assert_eq!(
        ix.referenced_elsewhere(a, HashKind::Md5, &all)
            .await
            .unwrap(),
        HashSet::from([oid(2)])
    );
    assert!(ix
        .referenced_elsewhere(a, HashKind::Md5Dos2unix, &all)
        .await
        .unwrap()
        .is_empty());

    let removed = ix
        .remove_refs(
            a,
            &[
                (HashKind::Md5, oid(1)),
                (HashKind::Md5, oid(2)),
                (HashKind::Md5, oid(9)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(removed, 2);
    assert!(!ix.is_referenced(HashKind::Md5, &oid(1)).await.unwrap());
    assert!(ix.is_referenced(HashKind::Md5, &oid(2)).await.unwrap());
    assert!(!ix
        .is_referenced(HashKind::Md5Dos2unix, &oid(2))
        .await
        .unwrap());
    assert!(ix.is_referenced(HashKind::Md5, &dir_oid(3)).await.unwrap());
    assert_eq!(ix.project_objects(a).await.unwrap().len(), 1);
}

pub(crate) async fn removals_change_the_epoch(ix: &dyn Index) {
    ix.create_project("p").await.unwrap();
    let p = ix.require_project("p").await.unwrap();
    ix.add_objects(&[
        obj(p, oid(1), 1, 1),
        obj(p, oid(2), 2, 1),
        obj(p, oid(3), 3, 1),
    ])
    .await
    .unwrap();
    let mut seen = vec![ix.removal_epoch().await.unwrap()];
    // Adding and reading change nothing.
    ix.add_objects(&[obj(p, oid(4), 4, 1)]).await.unwrap();
    ix.project_objects(p).await.unwrap();
    assert_eq!(ix.removal_epoch().await.unwrap(), seen[0]);

    ix.remove_refs(p, &[(HashKind::Md5, oid(1))]).await.unwrap();
    seen.push(ix.removal_epoch().await.unwrap());
    ix.forget_object(HashKind::Md5, &oid(2).to_string())
        .await
        .unwrap();
    seen.push(ix.removal_epoch().await.unwrap());
    ix.forget_project_object(p, HashKind::Md5, &oid(3))
        .await
        .unwrap();
    seen.push(ix.removal_epoch().await.unwrap());
    ix.delete_project("p").await.unwrap();
    seen.push(ix.removal_epoch().await.unwrap());
    for pair in seen.windows(2) {
        assert_ne!(pair[0], pair[1], "epochs {seen:?}");
    }
}

pub(crate) async fn audit(ix: &dyn Index) {
    ix.append_audit(&[]).await.unwrap();
    let event = |i: i64, project: Option<&str>| AuditEvent {
        at: 1000 + i,
        actor: format!("actor{i}"),
        action: "object.write".into(),
        project: project.map(str::to_string),
        target: Some(format!("t{i}")),
        detail: (i % 2 == 0).then(|| "even".to_string()),
    };
    let events: Vec<AuditEvent> = (0..450)
        .map(|i| event(i, Some(if i % 3 == 0 { "p" } else { "q" })))
        .chain([event(450, None)])
        .collect();
    ix.append_audit(&events).await.unwrap();

    let newest = ix.list_audit(None, None, 3).await.unwrap();
    let actors: Vec<&str> = newest.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(actors, ["actor450", "actor449", "actor448"]);
    assert_eq!(newest[0].project, None);
    assert_eq!(newest[2].at, 1448);
    assert_eq!(newest[2].detail.as_deref(), Some("even"));
    assert_eq!(newest[1].detail, None);
    assert_eq!(newest[1].target.as_deref(), Some("t449"));
    assert!(newest[0].id > newest[1].id && newest[1].id > newest[2].id);

    // Paging backwards by id through one project's entries.
    let page = ix.list_audit(Some("p"), None, 100).await.unwrap();
    assert_eq!(page.len(), 100);
    assert!(page.iter().all(|e| e.project.as_deref() == Some("p")));
    assert_eq!(page[0].actor, "actor447");
    let rest = ix
        .list_audit(Some("p"), Some(page[99].id), 10_000)
        .await
        .unwrap();
    assert_eq!(rest.len(), 50);
    assert_eq!(rest[49].actor, "actor0");
    assert_eq!(ix.list_audit(None, None, 0).await.unwrap().len(), 1);
    assert_eq!(
        ix.list_audit(None, None, u32::MAX).await.unwrap().len(),
        451
    );
}

pub(crate) async fn usage(ix: &dyn Index) {
    ix.create_project("p").await.unwrap();
    ix.create_project("q").await.unwrap();
    let p = ix.require_project("p").await.unwrap();
    let q = ix.require_project("q").await.unwrap();
    let empty = ix.usage(p, "p").await.unwrap();
    assert_eq!(
        (empty.project.as_str(), empty.objects, empty.bytes),
        ("p", 0, 0)
    );
    ix.add_objects(&[
        obj(p, oid(1), 5, 1),
        obj(p, oid(2), 6_000_000_000, 1),
        obj(q, oid(1), 5, 1),
    ])
    .await
    .unwrap();
    let u = ix.usage(p, "p").await.unwrap();
    assert_eq!((u.objects, u.bytes), (2, 6_000_000_005));
    let u = ix.usage(q, "q").await.unwrap();
    assert_eq!((u.objects, u.bytes), (1, 5));
}

/// How long a hold that must wait is given to show that it does.
const STILL_WAITING: Duration = Duration::from_millis(200);

pub(crate) async fn blob_holds(ix: &dyn Index) {
    let blob = (HashKind::Md5, oid(1));
    let upload = ix
        .hold_for_upload(&[blob, (HashKind::Md5, oid(2))])
        .await
        .unwrap();
    // Uploads of one blob share it.
    let other_upload = ix.hold_for_upload(&[blob]).await.unwrap();
    // The same blob's delete waits for both uploads.
    assert!(
        tokio::time::timeout(STILL_WAITING, ix.hold_for_delete(blob.0, blob.1))
            .await
            .is_err(),
        "a delete went ahead during an upload of the same blob"
    );
    drop(upload);
    assert!(
        tokio::time::timeout(STILL_WAITING, ix.hold_for_delete(blob.0, blob.1))
            .await
            .is_err(),
        "a delete went ahead during an upload of the same blob"
    );
    drop(other_upload);
    let delete = ix.hold_for_delete(blob.0, blob.1).await.unwrap();
    // And an upload of it waits for the delete.
    assert!(
        tokio::time::timeout(STILL_WAITING, ix.hold_for_upload(&[blob]))
            .await
            .is_err(),
        "an upload went ahead during a delete of the same blob"
    );
    drop(delete);
    ix.hold_for_upload(&[blob]).await.unwrap();
}

pub(crate) async fn gc_lease(ix: &dyn Index) {
    let lease = ix.gc_lease().await.unwrap();
    assert!(
        tokio::time::timeout(STILL_WAITING, ix.gc_lease())
            .await
            .is_err(),
        "two collections at once"
    );
    drop(lease);
    ix.gc_lease().await.unwrap();
}

pub(crate) async fn occupy(ix: &dyn Index) {
    let server = ix.occupy(Occupant::Server).await.unwrap();
    assert!(matches!(
        ix.occupy(Occupant::Fsck).await,
        Err(IndexError::Occupied { .. })
    ));
    // Administration works beside a server.
    ix.occupy(Occupant::Admin).await.unwrap();
    drop(server);
    let fsck = ix.occupy(Occupant::Fsck).await.unwrap();
    assert!(matches!(
        ix.occupy(Occupant::Server).await,
        Err(IndexError::Occupied { .. })
    ));
    drop(fsck);
    ix.occupy(Occupant::Server).await.unwrap();
}
