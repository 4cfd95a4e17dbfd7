//! Transfer progress: a bar (objects, bytes, rate, ETA) when stderr is a terminal, nothing
//! otherwise; per-object lines with `-v`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lode_proto::ObjectId;

use crate::printer::Printer;

pub struct Progress {
    bar: Option<ProgressBar>,
    out: Printer,
    verb: &'static str,
    objects: AtomicU64,
    total_objects: AtomicU64,
}

impl Progress {
    /// `verb` names what happens to each object (`pushed`, `fetched`).
    pub fn new(verb: &'static str, out: Printer) -> Progress {
        let bar = (!out.is_quiet() && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            b.set_style(style);
            b
        });
        Progress {
            bar,
            out,
            verb,
            objects: AtomicU64::new(0),
            total_objects: AtomicU64::new(0),
        }
    }

    /// More work is known: objects, and bytes when known.
    pub fn add_work(&self, objects: u64, bytes: u64) {
        self.total_objects.fetch_add(objects, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc_length(bytes);
            self.redraw(b);
        }
    }

    /// Bytes moved (counted as they go, for the rate).
    pub fn bytes(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// An object finished; `bytes` not yet counted through [`Progress::bytes`].
    pub fn object_done(&self, oid: &ObjectId, bytes: u64) {
        self.objects.fetch_add(1, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc(bytes);
            self.redraw(b);
        }
        if self.out.is_verbose() {
            let line = format!("{} {oid}", self.verb);
            match &self.bar {
                Some(b) => b.println(line),
                None => self.out.detail(line),
            }
        }
    }

    /// Bytes of objects whose size was unknown until they arrived.
    pub fn grow(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc_length(bytes);
        }
    }

    fn redraw(&self, b: &ProgressBar) {
        b.set_message(format!(
            "{}/{} files",
            self.objects.load(Ordering::Relaxed),
            self.total_objects.load(Ordering::Relaxed)
        ));
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
