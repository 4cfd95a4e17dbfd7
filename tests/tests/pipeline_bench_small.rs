//! The benchmark's pipeline workload in `--small` mode, run once with the debug binaries so
//! that its harness (a `dvc.yaml` of many stages reproduced by DVC) keeps working.

use lode_e2e::bench;

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
    let report = bench::run_small(&dvc, &["--workloads", "pipeline"]);
    for op in OPERATIONS {
        let cells = bench::row(&report, "pipeline", op);
        bench::assert_positive(&cells, &[(3, "lode seconds"), (5, "dvc seconds")]);
    }
    assert!(!report.contains("| pipeline | add |"), "{report}");
}
