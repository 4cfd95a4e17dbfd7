//! DVC 2 legacy outputs (no `hash:` key, md5-dos2unix, objects at the cache root) built by hand:
//! lode reads them, checks them out byte for byte, leaves unchanged entries alone and migrates
//! changed ones the way DVC 3 does.

use lode_e2e::digest::md5_hex;
use lode_e2e::repo::Scratch;

/// DVC's legacy hash, written out independently: per 1 MiB chunk, CRLF→LF when the chunk's first
/// 512 bytes look like text.
fn dos2unix_hex(bytes: &[u8]) -> String {
    let mut converted = Vec::new();
    for chunk in bytes.chunks(1 << 20) {
        let head = &chunk[..chunk.len().min(512)];
        let binary = head.contains(&0)
            || head
                .iter()
                .filter(|b| !matches!(b, 0x20..=0x7e | b'\n' | b'\r' | b'\t' | 0x0c | 0x08))
                .count()
                * 10
                > head.len() * 3;
        if binary {
            converted.extend_from_slice(chunk);
        } else {
            let mut i = 0;
            while i < chunk.len() {
                if chunk[i] == b'\r' && chunk.get(i + 1) == Some(&b'\n') {
                    i += 1;
                    continue;
                }
                converted.push(chunk[i]);
                i += 1;
            }
        }
    }
    md5_hex(&converted)
}

fn repo() -> Scratch {
    let s = Scratch::git();
    s.lode(&["init"]).ok();
    s
}

/// Stores raw bytes as a legacy object named by `hex` (read-only, as DVC leaves it).
fn put_legacy(s: &Scratch, hex: &str, bytes: &[u8]) {
    let rel = format!(".dvc/cache/{}/{}", &hex[..2], &hex[2..]);
    s.write(&rel, bytes);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.join(&rel), std::fs::Permissions::from_mode(0o444)).expect("chmod");
}

const FILES: &[(&str, &[u8])] = &[
    ("crlf.txt", b"x\r\ny\r\n"),
    ("bin.dat", b"\x00\x01\r\n"),
    ("sub/\u{e9}.txt", b"caf\xc3\xa9\r\n"),
];

/// A legacy directory `legacy/` and file `data.csv` as DVC 2 would have written them.
fn legacy_repo() -> Scratch {
    let s = repo();
    s.write("data.csv", b"a,b\r\n1,2\r\n");
    put_legacy(&s, "e5ebd4c02cefbe7955977c67ada242b7", b"a,b\r\n1,2\r\n");
    s.write(
        "data.csv.dvc",
        "# written by DVC 2\nouts:\n- path: data.csv  # the data\n  md5: e5ebd4c02cefbe7955977c67ada242b7\n  size: 10\n",
    );
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut size = 0;
    for (rel, bytes) in FILES {
        s.write(&format!("legacy/{rel}"), bytes);
        let hex = dos2unix_hex(bytes);
        put_legacy(&s, &hex, bytes);
        entries.push((rel.to_string(), hex));
        size += bytes.len();
    }
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let json = entries
        .iter()
        .map(|(rel, hex)| {
            let rel = rel.replace('\u{e9}', "\\u00e9");
            format!("{{\"md5\": \"{hex}\", \"relpath\": \"{rel}\"}}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let json = format!("[{json}]");
    let dir_hex = md5_hex(json.as_bytes());
    put_legacy(&s, &format!("{dir_hex}.dir"), json.as_bytes());
    s.write(
        "legacy.dvc",
        format!(
            "outs:\n- md5: {dir_hex}.dir\n  size: {size}\n  nfiles: {}\n  path: legacy\n",
            FILES.len()
        ),
    );
    s
}

#[test]
fn legacy_outputs_are_clean_and_restored_byte_for_byte() {
    let s = legacy_repo();
    assert_eq!(
        s.lode(&["status"]).ok().stdout,
        "Data and pipelines are up to date.\n"
    );
    std::fs::remove_file(s.join("data.csv")).expect("rm");
    std::fs::remove_dir_all(s.join("legacy")).expect("rm");
    let run = s.lode(&["checkout"]).ok();
    assert_eq!(run.stdout, "A       data.csv\nA       legacy/\n");
    assert_eq!(s.read("data.csv"), b"a,b\r\n1,2\r\n");
    for (rel, bytes) in FILES {
        assert_eq!(s.read(&format!("legacy/{rel}")), *bytes, "{rel}");
    }
    assert_eq!(
        s.lode(&["status"]).ok().stdout,
        "Data and pipelines are up to date.\n"
    );
}

#[test]
fn line_ending_changes_are_invisible_to_legacy_hashes() {
    let s = legacy_repo();
    // The dos2unix hash of LF text equals that of the CRLF original, as it does for DVC.
    s.write("data.csv", b"a,b\n1,2\n");
    assert_eq!(
        s.lode(&["status"]).ok().stdout,
        "Data and pipelines are up to date.\n"
    );
    s.write("data.csv", b"a,b\n1,3\n");
    assert_eq!(
        s.lode(&["status"]).ok().stdout,
        "data.csv.dvc:\n\tchanged outs:\n\t\tmodified:           data.csv\n"
    );
}

#[test]
fn unchanged_legacy_entries_are_left_as_written() {
    let s = legacy_repo();
    let before = s.read_string("data.csv.dvc");
    // Even with its object gone from the cache: re-adding stores it again, in the legacy layout.
    let obj = s.join(".dvc/cache/e5/ebd4c02cefbe7955977c67ada242b7");
    std::fs::remove_file(&obj).expect("rm object");
    s.lode(&["add", "data.csv"]).ok();
    assert_eq!(s.read_string("data.csv.dvc"), before);
    assert_eq!(
        std::fs::read(&obj).expect("legacy object"),
        b"a,b\r\n1,2\r\n"
    );
    let legacy_dvc = s.read_string("legacy.dvc");
    s.lode(&["add", "legacy"]).ok();
    s.lode(&["commit"]).ok();
    assert_eq!(s.read_string("legacy.dvc"), legacy_dvc);
    assert!(!s.join(".dvc/cache/files").exists());
}

#[test]
fn changed_legacy_entries_are_migrated_in_place() {
    let s = legacy_repo();
    s.write("data.csv", b"a,b\r\n9,9\r\n");
    s.lode(&["add", "data.csv"]).ok();
    let hex = md5_hex(b"a,b\r\n9,9\r\n");
    assert_eq!(
        s.read_string("data.csv.dvc"),
        format!("# written by DVC 2\nouts:\n- path: data.csv  # the data\n  md5: {hex}\n  size: 10\n  hash: md5\n")
    );
    s.write("legacy/new.txt", b"n\r\n");
    let run = s.lode(&["commit", "-f"]).ok();
    assert_eq!(run.stdout, "");
    let text = s.read_string("legacy.dvc");
    assert!(
        text.ends_with("  nfiles: 4\n  path: legacy\n  hash: md5\n"),
        "{text}"
    );
    assert_eq!(
        s.lode(&["status"]).ok().stdout,
        "Data and pipelines are up to date.\n"
    );
    // The migrated directory checks out from the DVC 3 layout.
    std::fs::remove_dir_all(s.join("legacy")).expect("rm");
    s.lode(&["checkout"]).ok();
    assert_eq!(s.read("legacy/new.txt"), b"n\r\n");
    assert_eq!(s.read("legacy/crlf.txt"), b"x\r\ny\r\n");
}

#[test]
fn legacy_hash_converts_each_mebibyte_on_its_own() {
    let s = repo();
    // Text whose CRLF straddles the 1 MiB boundary, then a binary-looking second chunk with CRLF.
    let mut bytes = vec![b'a'; (1 << 20) - 1];
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(&[0u8; 600]);
    bytes.extend_from_slice(b"z\r\n");
    let hex = dos2unix_hex(&bytes);
    s.write("big.txt", &bytes);
    put_legacy(&s, &hex, &bytes);
    s.write(
        "big.txt.dvc",
        format!(
            "outs:\n- md5: {hex}\n  size: {}\n  path: big.txt\n",
            bytes.len()
        ),
    );
    assert_eq!(
        s.lode(&["status"]).ok().stdout,
        "Data and pipelines are up to date.\n"
    );
    std::fs::remove_file(s.join("big.txt")).expect("rm");
    s.lode(&["checkout"]).ok();
    assert_eq!(s.read("big.txt"), bytes);
}
