//! Writing large objects into the cache around the page cache: the writer shared with the
//! server (see `lode_objio::direct`).

pub use lode_objio::direct::{AlignedBuf, ObjectWriter};
