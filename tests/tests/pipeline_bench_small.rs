//! The benchmark's pipeline workload in `--small` mode, run once with the debug binaries so
//! that its harness (a `dvc.yaml` of many stages reproduced by DVC) keeps working.

use std::path::PathBuf;
use std::process::Command;

use lode_e2e::bins;

const OPERATIONS: &[&str] = &[
    "status",
    "checkout",
    "push-local",
    "pull-local",
    "push-http",
    "status-cloud",
    "pull-http",
];

#[test]
fn small_pipeline_benchmark_measures_both_tools() {
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
        .args([
            "--small",
            "--workloads",
            "pipeline",
            "--runs",
            "1",
            "--strict",
            "--no-build",
        ])
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
    for op in OPERATIONS {
        let row = report
            .lines()
            .find(|l| l.starts_with(&format!("| pipeline | {op} |")))
            .unwrap_or_else(|| panic!("no row for pipeline {op} in:\n{report}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        for (i, name) in [(3, "lode seconds"), (5, "dvc seconds")] {
            let v: f64 = cells[i]
                .parse()
                .unwrap_or_else(|_| panic!("{name} of pipeline {op} is not a number: {row}"));
            assert!(v > 0.0, "{name} of pipeline {op} must be positive: {row}");
        }
    }
    assert!(!report.contains("| pipeline | add |"), "{report}");
}
