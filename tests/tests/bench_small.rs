//! The benchmark's `--small` mode, run once with the debug binaries so the harness cannot rot.
//! (The full benchmark is run by hand with `bench/run`; it takes too long for CI.)

use lode_e2e::bench;

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
    "get-http",
    "import-http",
    "list-http",
];

#[test]
fn small_benchmark_measures_every_operation_for_both_tools() {
    let Some(dvc) = lode_e2e::dvc::require() else {
        return;
    };
    let report = bench::run_small(&dvc, &[]);
    for workload in WORKLOADS {
        for op in OPERATIONS {
            let cells = bench::row(&report, workload, op);
            bench::assert_positive(
                &cells,
                &[(3, "lode seconds"), (5, "dvc seconds"), (7, "ratio")],
            );
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
