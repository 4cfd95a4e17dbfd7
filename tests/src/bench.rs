//! Running the benchmark harness (`bench/bench.py`) in its `--small` mode with the debug
//! binaries, and reading its report.

use std::path::PathBuf;
use std::process::Command;

use crate::bins;

/// Runs `bench.py --small --runs 1 --strict` with `extra` arguments and the given `dvc`, in a
/// temporary folder; returns the report (`RESULTS.md`). Panics when the harness fails.
pub fn run_small(dvc: &std::path::Path, extra: &[&str]) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = tempfile::Builder::new()
        .prefix("lode-bench-")
        .tempdir()
        .expect("temp dir");
    let out_file = work.path().join("RESULTS.md");
    let out = Command::new("python3")
        .arg(root.join("bench/bench.py"))
        .args(["--small", "--runs", "1", "--strict", "--no-build"])
        .args(extra)
        .arg("--workdir")
        .arg(work.path().join("work"))
        .arg("--out")
        .arg(&out_file)
        .arg("--lode")
        .arg(bins::lode())
        .arg("--lode-server")
        .arg(bins::lode_server())
        .arg("--dvc")
        .arg(dvc)
        .output()
        .expect("run bench.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "benchmark failed:\n{stdout}\n{stderr}"
    );
    std::fs::read_to_string(&out_file).expect("RESULTS.md written")
}

/// The report row of `workload` and `op`, split into trimmed cells:
/// `| workload | op | lode s | lode rss | dvc s | dvc rss | ratio | slower by |`.
pub fn row(report: &str, workload: &str, op: &str) -> Vec<String> {
    let line = report
        .lines()
        .find(|l| l.starts_with(&format!("| {workload} | {op} |")))
        .unwrap_or_else(|| panic!("no row for {workload} {op} in:\n{report}"));
    line.split('|').map(|c| c.trim().to_string()).collect()
}

/// Checks that the named cells of a row hold positive numbers.
pub fn assert_positive(cells: &[String], which: &[(usize, &str)]) {
    for (i, name) in which {
        let v: f64 = cells[*i]
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {cells:?}"));
        assert!(v > 0.0, "{name} must be positive: {cells:?}");
    }
}
