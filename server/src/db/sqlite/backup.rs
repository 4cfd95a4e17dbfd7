//! The online backup: `VACUUM INTO` writes a compact copy of the database as of one read
//! transaction, while the server goes on writing through the log.

use super::SqliteIndex;
use crate::datadir::DataDir;
use crate::db::{IndexError, IndexResult};

pub(super) async fn backup_into(ix: &SqliteIndex, dest: &DataDir) -> IndexResult<()> {
    let path = dest.db_path();
    let target = path.to_str().ok_or_else(|| {
        IndexError::Invalid(format!("backup path {} is not UTF-8", path.display()))
    })?;
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&ix.pool)
        .await?;
    // VACUUM INTO leaves the new file in the page cache.
    let file = std::fs::File::open(&path).map_err(|e| IndexError::Engine(Box::new(e)))?;
    file.sync_all()
        .map_err(|e| IndexError::Engine(Box::new(e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use lode_proto::{HashKind, ObjectId};

    use super::super::testing::temp_index;
    use super::super::SqliteIndex;
    use crate::datadir::DataDir;
    use crate::db::{Index, ObjectRef};

    #[tokio::test]
    async fn the_copy_holds_what_was_committed_before_it_began() {
        let (ix, _dir) = temp_index().await;
        ix.create_project("ml").await.unwrap();
        let pid = ix.require_project("ml").await.unwrap();
        let oid = ObjectId::from_digest(lode_objio::hash::digest_of(HashKind::Md5, b"x"), false);
        ix.add_objects(&[ObjectRef {
            project_id: pid,
            kind: HashKind::Md5,
            oid,
            size: 1,
            created_at: 1,
        }])
        .await
        .unwrap();

        let dest_dir = tempfile::tempdir().unwrap();
        let dest = DataDir::prepare(dest_dir.path()).unwrap();
        ix.backup_into(&dest).await.unwrap();
        // Written after the copy: not in it.
        ix.create_project("later").await.unwrap();

        let copy = SqliteIndex::connect(&dest, 1).await.unwrap();
        copy.migrate().await.unwrap();
        let names: Vec<String> = copy
            .list_projects()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["ml"]);
        assert_eq!(
            copy.all_referenced().await.unwrap(),
            vec![(HashKind::Md5, oid.to_string(), 1)]
        );
        // A second backup into the same folder is refused by SQLite rather than mixed in.
        assert!(ix.backup_into(&dest).await.is_err());
        copy.close().await;
    }
}
