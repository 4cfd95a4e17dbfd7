//! Name rules for projects and groups, shared so the CLI can reject a bad name before a request.

/// First path segments the server uses for itself; no project may take them.
pub const RESERVED_NAMES: &[&str] = &["api", "healthz", "readyz", "metrics", "ui"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid name '{0}': use 1-64 characters of a-z, 0-9, '-', '_' and '.', starting with a letter or digit")]
    Invalid(String),
    #[error("name '{0}' is reserved")]
    Reserved(String),
}

/// Projects and groups: lowercase ASCII letters, digits, `-`, `_`, `.`; 1 to 64 characters,
/// starting with a letter or digit (so never `.` or `..`), and not a reserved word.
pub fn validate_project_name(name: &str) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_lowercase() | bytes[0].is_ascii_digit()
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if !ok {
        return Err(NameError::Invalid(name.to_string()));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(NameError::Reserved(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        for good in ["ml", "team-a.data_v2", "0day"] {
            assert!(validate_project_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "%2e",
            "Upper",
            "a/b",
            "-x",
            "api",
            "metrics",
            &"a".repeat(65),
        ] {
            assert!(validate_project_name(bad).is_err(), "{bad}");
        }
    }
}
