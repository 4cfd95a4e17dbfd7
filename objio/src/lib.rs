//! `lode-objio`: what `lode` and `lode-server` both need to store objects the same way: the
//! hashes that name them ([`hash`], DVC 3's MD5 and DVC 2's md5-dos2unix), writing large ones
//! around the page cache ([`direct`]), and the writeback and flush calls ([`flush`]).

pub mod direct;
pub mod flush;
pub mod hash;
