//! `.dvcignore` as the `lode` binary applies it, compared with real DVC on identical trees.

use std::path::{Path, PathBuf};

use lode_e2e::dvc;
use lode_e2e::repo::{Run, Scratch};

/// Two repositories with the same files, one initialised by `dvc`, one by `lode`.
fn pair(dvc: &Path, files: &[(&str, &str)]) -> (Scratch, Scratch) {
    let d = Scratch::git();
    let l = Scratch::git();
    d.run(dvc, &["init", "-q"]).ok();
    l.lode(&["init", "-q"]).ok();
    for (rel, text) in files {
        d.write(rel, text);
        l.write(rel, text);
    }
    (d, l)
}

fn cache_files(s: &Scratch) -> Vec<(String, Vec<u8>)> {
    let cache = s.join(".dvc/cache");
    let mut out: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(&cache)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path()
                    .strip_prefix(&cache)
                    .expect("relative")
                    .to_string_lossy()
                    .into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    out.sort();
    out
}

fn normalised(r: &Run, root: &Path) -> (i32, String) {
    (
        r.code,
        r.stderr
            .trim_end()
            .replace(&root.display().to_string(), "<ROOT>"),
    )
}

const TREE: &[(&str, &str)] = &[
    (
        ".dvcignore",
        "# comment\n*.tmp\n  spaced.txt  \n!keep.tmp\nlogs/\n/data/rootonly\ndata/sub/*.bin\n",
    ),
    ("data/a.txt", "a\n"),
    ("data/x.tmp", "tmp\n"),
    ("data/keep.tmp", "keep\n"),
    ("data/spaced.txt", "spaced\n"),
    ("data/rootonly", "r\n"),
    ("data/logs/l.txt", "log\n"),
    ("data/logs2", "not a dir\n"),
    ("data/sub/s.bin", "bin\n"),
    ("data/sub/s.txt", "s\n"),
    ("data/sub/deep/x.log", "x\n"),
    ("data/sub/deep/important.log", "i\n"),
    (
        "data/other/.dvcignore",
        "*.log\n!important.log\n/anchored\n",
    ),
    ("data/other/x.log", "x\n"),
    ("data/other/important.log", "i\n"),
    ("data/other/anchored", "an\n"),
    ("data/other/more/anchored", "an2\n"),
    ("data/other/more/y.log", "y\n"),
    ("data/other/more/important.log", "i2\n"),
    ("data/other/more/z.tmp", "z\n"),
];

#[test]
fn directory_hash_skips_ignored_files_like_dvc() {
    let Some(dvc) = dvc::require() else { return };
    // A `.dvcignore` inside the added folder is an error for both tools, so the nested one is
    // exercised by adding a folder below the one that holds it.
    let (d, l) = pair(&dvc, TREE);
    d.run(&dvc, &["add", "-q", "data/other/more"]).ok();
    l.lode(&["add", "-q", "data/other/more"]).ok();
    assert_eq!(
        l.read_string("data/other/more.dvc"),
        d.read_string("data/other/more.dvc")
    );
    assert_eq!(cache_files(&l), cache_files(&d));
    let dr = d.run(&dvc, &["add", "data/other"]);
    let lr = l.lode(&["add", "data/other"]);
    assert_eq!(normalised(&lr, l.path()), normalised(&dr, d.path()));

    let (d, l) = pair(
        &dvc,
        &TREE
            .iter()
            .copied()
            .filter(|(p, _)| !p.starts_with("data/other"))
            .collect::<Vec<_>>(),
    );
    d.run(&dvc, &["add", "-q", "data"]).ok();
    l.lode(&["add", "-q", "data"]).ok();
    assert_eq!(l.read_string("data.dvc"), d.read_string("data.dvc"));
    assert_eq!(cache_files(&l), cache_files(&d));
}

#[test]
fn adding_an_ignored_path_fails_like_dvc() {
    let Some(dvc) = dvc::require() else { return };
    let (d, l) = pair(&dvc, TREE);
    for target in [
        "data/x.tmp",
        "data/logs",
        "data/logs/l.txt",
        "data/other/x.log",
    ] {
        let dr = d.run(&dvc, &["add", target]);
        let lr = l.lode(&["add", target]);
        assert_eq!(
            normalised(&lr, l.path()),
            normalised(&dr, d.path()),
            "add {target}"
        );
        assert_ne!(lr.code, 0);
        assert!(!l.join(&format!("{target}.dvc")).exists());
    }
    let lr = l.lode(&["add", "data/x.tmp"]);
    assert_eq!(
        lr.stderr.trim_end(),
        format!(
            "ERROR: Path '{}' is ignored by .dvcignore:2:*.tmp",
            l.join("data/x.tmp").display()
        )
    );
}

/// `.dvc` files in ignored folders or in nested repositories are invisible to gc, as to DVC.
#[test]
fn gc_ignores_dvc_files_hidden_by_dvcignore() {
    let Some(dvc) = dvc::require() else { return };
    let base = Scratch::git();
    base.run(&dvc, &["init", "-q"]).ok();
    for (dir, content) in [("visible", "v\n"), ("hidden", "h\n"), ("nested", "n\n")] {
        base.write(&format!("{dir}/f.txt"), content);
        base.run(&dvc, &["add", "-q", &format!("{dir}/f.txt")]).ok();
    }
    base.write(".dvcignore", "hidden/\n");
    std::fs::create_dir_all(base.join("nested/.dvc")).expect("nested repo");
    let copies: Vec<(PathBuf, Scratch)> = vec![
        (dvc.clone(), Scratch::new()),
        (lode_e2e::bins::lode(), Scratch::new()),
    ];
    let mut results = Vec::new();
    for (program, s) in &copies {
        for entry in walkdir::WalkDir::new(base.path()) {
            let entry = entry.expect("walk");
            let rel = entry.path().strip_prefix(base.path()).expect("rel");
            let dest = s.join(&rel.to_string_lossy());
            if entry.file_type().is_dir() {
                std::fs::create_dir_all(&dest).expect("mkdir");
            } else {
                std::fs::copy(entry.path(), &dest).expect("copy");
            }
        }
        let r = s.run(program, &["gc", "-w", "-f"]);
        assert_eq!(r.code, 0, "{program:?}: {}", r.stderr);
        results.push((r.stdout, cache_files(s)));
    }
    assert_eq!(results[1], results[0]);
    assert_eq!(
        results[1].0,
        "Removed 2 objects from repo cache.\nNo unused 'legacy' cache to remove.\n"
    );
}
