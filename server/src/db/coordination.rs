//! The rules that keep a server's uploads, collections and caches consistent, and which
//! [`Index`](super::Index) method enforces each.
//!
//! With the embedded engine one process owns the data folder, so each rule is kept in that
//! process's memory. An engine shared by several servers must enforce the same rule across all
//! of them, through the index they share; the method named is where it does so.
//!
//! 1. **One process on the data folder** ([`Index::occupy`](super::Index::occupy)). `serve`
//!    cleans unfinished uploads at start and keeps the rules below in memory, so no second
//!    server or `fsck` may work on the same data at once; `admin` only edits rows and may run
//!    beside a server. SQLite: an exclusive `flock` of `lock` in the data folder, released when
//!    the process ends. Shared engine: serving replicas share the claim and `fsck` takes it
//!    alone (for example a shared and an exclusive advisory lock on one key, on a connection
//!    kept for the process's life).
//! 2. **Collection does not delete what an upload is about to reference**
//!    ([`Index::hold_for_upload`](super::Index::hold_for_upload),
//!    [`Index::hold_for_delete`](super::Index::hold_for_delete),
//!    [`Index::gc_lease`](super::Index::gc_lease)). Blobs are shared by projects, so an upload of
//!    bytes already stored writes nothing and only adds its reference; a collection deleting the
//!    blob in between would leave an acknowledged object without bytes. An upload holds its
//!    blobs from staging until its references are indexed, a collection holds each blob it
//!    deletes while it checks that nothing references it, and collections run one at a time.
//!    SQLite: striped read-write locks and a mutex in memory ([`crate::blob_locks`]). Shared
//!    engine: a lease or advisory lock for the collection, and per-blob locks (or a grace period
//!    on recently referenced blobs) that every replica's uploads and deletes respect.
//! 3. **Cached "which project holds what" answers never outlive a removal**
//!    ([`Index::removal_epoch`](super::Index::removal_epoch)). Existence checks and downloads are
//!    answered from a memory in front of the index ([`crate::held`]); it is dropped whenever the
//!    epoch changes. SQLite: a counter in memory bumped by the engine's own removals (only the
//!    serving process removes references while it runs: `fsck` needs the folder, and a project
//!    deleted by `admin` next to it cannot be reached again since ids are never reused). Shared
//!    engine: a value every replica's removal changes in the same transaction, which each
//!    replica re-reads before trusting what it cached.

/// Something held until dropped: a lock, a lease or a claim.
pub(crate) struct Hold {
    _held: Box<dyn Send + Sync>,
}

impl Hold {
    pub(crate) fn new(inner: impl Send + Sync + 'static) -> Hold {
        Hold {
            _held: Box::new(inner),
        }
    }

    /// A hold on nothing, for an engine that needs none.
    pub(crate) fn nothing() -> Hold {
        Hold::new(())
    }
}

/// Who claims the deployment through [`Index::occupy`](super::Index::occupy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Occupant {
    /// A serving process.
    Server,
    /// `lode-server fsck`, which needs the deployment to itself.
    Fsck,
    /// `lode-server admin`, which works beside running servers.
    Admin,
}
