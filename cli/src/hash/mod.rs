//! Streaming MD5 of files (raw and dos2unix), `.dir` manifests, and the persistent hash cache.
