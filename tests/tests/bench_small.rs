//! The benchmark's `--small` mode, run once with the debug binaries so the harness cannot rot.
//! (The full benchmark is run by hand with `bench/run`; it takes too long for CI.)

use std::path::PathBuf;
use std::process::Command;

use lode_e2e::bins;

const WORKLOADS: &[&str] = &["big", "many", "tiny"];
const OPERATIONS: &[&str] = &[
    "add",
    "status",
    "checkout",
    "push-local",
    "pull-local",
    "push-http",
    "status-cloud",
    "pull-http",
];

#[test]
fn small_benchmark_measures_every_operation_for_both_tools() {
    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = tempfile::Builder::new()
        .prefix("lode-bench-")
        .tempdir()
        .expect("temp dir");
    let out_file = work.path().join("RESULTS.md");
    let out = Command::new("python3")
        .arg(root.join("bench/bench.py"))
        .args(["--small", "--runs", "1", "--strict", "--no-build"])
        .arg("--workdir")
        .arg(work.path().join("work"))
        .arg("--out")
        .arg(&out_file)
        .arg("--lode")
        .arg(bins::lode())
        .arg("--lode-server")
        .arg(bins::lode_server())
        .arg("--dvc")
        .arg(&dvc)
        .output()
        .expect("run bench.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "benchmark failed:\n{stdout}\n{stderr}"
    );
    let report = std::fs::read_to_string(&out_file).expect("RESULTS.md written");
    for workload in WORKLOADS {
        for op in OPERATIONS {
            let row = report
                .lines()
                .find(|l| l.starts_with(&format!("| {workload} | {op} |")))
                .unwrap_or_else(|| panic!("no row for {workload} {op} in:\n{report}"));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            // | workload | op | lode s | lode rss | dvc s | dvc rss | ratio | slower by |
            for (i, name) in [(3, "lode seconds"), (5, "dvc seconds"), (7, "ratio")] {
                let v: f64 = cells[i]
                    .parse()
                    .unwrap_or_else(|_| panic!("{name} of {workload} {op} is not a number: {row}"));
                assert!(v > 0.0, "{name} of {workload} {op} must be positive: {row}");
            }
        }
    }
    for reference in [
        "md5sum big.bin",
        "cat big.bin",
        "cp -r many folder",
        "curl GET big.bin from lode-server |",
        "curl GET big.bin from lode-server into a file |",
        "curl PUT big.bin to lode-server |",
    ] {
        assert!(
            report.contains(reference),
            "reference '{reference}' missing:\n{report}"
        );
    }
    assert!(report.contains("- Versions: lode "), "{report}");
}
