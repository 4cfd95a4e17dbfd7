//! Counters exposed at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, String, u16), u64>>,
    upload_failures: Mutex<BTreeMap<&'static str, u64>>,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub objects_stored: AtomicU64,
    pub objects_served: AtomicU64,
    pub downloads_redirected: AtomicU64,
    pub manifests_refused: AtomicU64,
}

impl Metrics {
    pub fn request(&self, route: &'static str, method: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route, method.to_string(), status)).or_default() += 1;
        }
    }

    pub fn upload_failed(&self, reason: &'static str) {
        if let Ok(mut m) = self.upload_failures.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }

    /// Renders every metric; `object_refs` is read from the index at scrape time.
    pub fn render(&self, object_refs: Option<u64>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP lode_http_requests_total HTTP requests by route, method and status."
        );
        let _ = writeln!(out, "# TYPE lode_http_requests_total counter");
        if let Ok(m) = self.requests.lock() {
            for ((route, method, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "lode_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let counters = [
            (
                "lode_bytes_received_total",
                "Object bytes received in uploads.",
                &self.bytes_in,
            ),
            (
                "lode_bytes_sent_total",
                "Object bytes sent in downloads.",
                &self.bytes_out,
            ),
            (
                "lode_objects_stored_total",
                "Uploads stored and recorded for a project.",
                &self.objects_stored,
            ),
            (
                "lode_objects_served_total",
                "Object downloads started.",
                &self.objects_served,
            ),
            (
                "lode_downloads_redirected_total",
                "Object downloads answered with a redirect to the blob store.",
                &self.downloads_redirected,
            ),
            (
                "lode_manifests_refused_total",
                "Directory manifests refused because entries were missing.",
                &self.manifests_refused,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP lode_upload_failures_total Uploads that were not stored, by reason."
        );
        let _ = writeln!(out, "# TYPE lode_upload_failures_total counter");
        if let Ok(m) = self.upload_failures.lock() {
            for (reason, n) in m.iter() {
                let _ = writeln!(out, "lode_upload_failures_total{{reason=\"{reason}\"}} {n}");
            }
        }
        if let Some(n) = object_refs {
            let _ = writeln!(
                out,
                "# HELP lode_project_objects Objects held across all projects."
            );
            let _ = writeln!(out, "# TYPE lode_project_objects gauge");
            let _ = writeln!(out, "lode_project_objects {n}");
        }
        out
    }
}
