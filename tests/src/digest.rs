//! Digests computed independently of lode, to check what it stores and names.

/// Hex MD5 of bytes (the md-5 crate, not lode's hashing code).
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}
