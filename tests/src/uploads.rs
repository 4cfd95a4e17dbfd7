//! Upload traffic for tests that stop, back up or restart a server while it takes uploads:
//! reproducible object bytes, workers that upload until told to stop and remember what the
//! server acknowledged, and the check that every acknowledged object is served intact.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

use crate::digest::md5_hex;
use crate::server::object_path;

/// `n` bytes that differ for every seed (xorshift).
pub fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// Polls `cond` until it holds, failing the test after `limit`.
pub fn eventually_within(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Polls `cond` until it holds, failing the test after 20 s.
pub fn eventually(what: &str, cond: impl FnMut() -> bool) {
    eventually_within(Duration::from_secs(20), what, cond)
}

/// An object as uploaded: its id and size.
pub type Acked = (String, usize);

/// Workers uploading new objects one after another until stopped.
pub struct Uploads {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
    workers: Vec<JoinHandle<()>>,
}

impl Uploads {
    /// `workers` threads POST objects of `size(i)` bytes to the project URL with the token; a
    /// worker stops at its first failed upload.
    pub fn start(project_url: &str, token: &str, workers: u64, size: fn(u64) -> usize) -> Uploads {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let workers = (0..workers)
            .map(|w| {
                let (stop, acked) = (stop.clone(), acked.clone());
                let (url, token) = (project_url.to_string(), token.to_string());
                std::thread::spawn(move || {
                    let client = Client::new();
                    for i in 0u64.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let data = pseudo_random(size(i), (w << 32) + i + 1);
                        let oid = md5_hex(&data);
                        let len = data.len();
                        let r = client
                            .post(format!("{url}/{}", object_path(&oid)))
                            .bearer_auth(&token)
                            .body(data)
                            .send();
                        match r {
                            Ok(r) if r.status().is_success() => {
                                acked.lock().expect("acked").push((oid, len));
                            }
                            _ => break,
                        }
                    }
                })
            })
            .collect();
        Uploads {
            stop,
            acked,
            workers,
        }
    }

    /// What the server has acknowledged so far.
    pub fn acknowledged(&self) -> Vec<Acked> {
        self.acked.lock().expect("acked").clone()
    }

    /// Stops the workers after their current upload; returns everything acknowledged.
    pub fn stop(self) -> Vec<Acked> {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.join().expect("upload worker");
        }
        let acked = self.acked.lock().expect("acked");
        acked.clone()
    }
}

/// Fails unless every object is served by the project, byte for byte.
pub fn assert_served(client: &Client, project_url: &str, token: &str, objects: &[Acked]) {
    for (oid, size) in objects {
        let r = client
            .get(format!("{project_url}/{}", object_path(oid)))
            .bearer_auth(token)
            .send()
            .unwrap_or_else(|e| panic!("GET {oid}: {e}"));
        assert_eq!(r.status(), 200, "acknowledged object {oid} is not served");
        let body = r.bytes().expect("body");
        assert_eq!(body.len(), *size, "object {oid} has the wrong size");
        assert_eq!(&md5_hex(&body), oid, "object {oid} is corrupt");
    }
}
