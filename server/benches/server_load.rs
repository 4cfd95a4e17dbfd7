//! Load generator for lode-server: starts the release server on a temporary data folder and
//! measures small uploads, existence checks (DVC's GET, HEAD and the batch API), and a large
//! upload and download, reporting the server's peak memory.
//!
//!     cargo bench --workspace --bench server_load -- [--clients 64] [--small 40000]
//!         [--checks 100000] [--large-mib 1024] [--data-dir PARENT]
//!
//! With `LODE_DATABASE_URL=postgres://…` in the environment the server (and the `admin` that
//! makes its project) keeps the index in that PostgreSQL database, which must be empty.
//!
//! Against a server that is already running (bench/docker.sh: the same binary natively and in
//! a container), with a write token on its project `bench`; `--pid` adds the server's CPU and
//! memory, `--seed` makes each run's objects new:
//!
//!     ... -- --url http://127.0.0.1:8080 --token TOKEN [--pid PID] [--seed N]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use md5::Digest;

struct Opts {
    clients: usize,
    small: usize,
    small_size: usize,
    checks: usize,
    large_mib: usize,
    data_dir: Option<String>,
    url: Option<String>,
    token: Option<String>,
    pid: Option<u32>,
    seed: u64,
}

fn opts() -> Opts {
    let mut o = Opts {
        clients: 64,
        small: 40_000,
        small_size: 4096,
        checks: 100_000,
        large_mib: 1024,
        data_dir: None,
        url: None,
        token: None,
        pid: None,
        seed: 0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).and_then(|v| v.parse::<usize>().ok());
        let text = args.get(i + 1).cloned();
        let took_text = match args[i].as_str() {
            "--data-dir" => {
                o.data_dir = text;
                true
            }
            "--url" => {
                o.url = text;
                true
            }
            "--token" => {
                o.token = text;
                true
            }
            "--pid" => {
                o.pid = text.and_then(|v| v.parse().ok());
                true
            }
            "--seed" => {
                o.seed = text.and_then(|v| v.parse().ok()).unwrap_or(0);
                true
            }
            _ => false,
        };
        if took_text {
            i += 2;
            continue;
        }
        match (args[i].as_str(), val) {
            ("--clients", Some(v)) => o.clients = v,
            ("--small", Some(v)) => o.small = v,
            ("--small-size", Some(v)) => o.small_size = v,
            ("--checks", Some(v)) => o.checks = v,
            ("--large-mib", Some(v)) => o.large_mib = v,
            // `cargo bench` passes `--bench`; ignore anything unknown.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

fn md5_hex(d: &[u8]) -> String {
    hex::encode(md5::Md5::digest(d))
}

fn key(oid: &str) -> String {
    format!("files/md5/{}/{}", &oid[..2], &oid[2..])
}

/// Peak and current resident memory of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU seconds (user + system) the process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn fill(buf: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// The server under test, and what must live as long as it.
struct Target {
    base: String,
    token: String,
    pid: Option<u32>,
    child: Option<std::process::Child>,
    data: Option<tempfile::TempDir>,
}

/// Starts the release server on a temporary data folder with a project `bench`.
fn start_server(o: &Opts) -> Target {
    let server_bin = env!("CARGO_BIN_EXE_lode-server");
    let mut builder = tempfile::Builder::new();
    builder.prefix("lode-bench-");
    let data = match &o.data_dir {
        Some(parent) => builder.tempdir_in(parent),
        None => builder.tempdir(),
    }
    .expect("temp dir");
    let admin = |args: &[&str]| {
        let out = Command::new(server_bin)
            .arg("--data-dir")
            .arg(data.path())
            .arg("admin")
            .args(args)
            .output()
            .expect("admin");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string()
    };
    admin(&["project", "create", "bench"]);
    let token = admin(&["token", "create", "--project", "bench", "--role", "write"]);

    let mut child = Command::new(server_bin)
        .arg("--data-dir")
        .arg(data.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LODE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start server");
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address line");
    let base = line
        .trim()
        .strip_prefix("lode-server listening on ")
        .expect("address")
        .to_string();
    Target {
        base,
        token,
        pid: Some(pid),
        child: Some(child),
        data: Some(data),
    }
}

#[tokio::main]
async fn main() {
    let o = opts();
    let target = match (&o.url, &o.token) {
        (Some(base), Some(token)) => Target {
            base: base.trim_end_matches('/').to_string(),
            token: token.clone(),
            pid: o.pid,
            child: None,
            data: None,
        },
        _ => start_server(&o),
    };
    let (base, token) = (target.base.clone(), target.token.clone());
    let pid = target.pid.unwrap_or(0);
    let url = format!("{base}/bench");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.clients * 2)
        .build()
        .expect("client");
    println!(
        "lode-server load test: {} clients, loopback, server at {base}",
        o.clients
    );

    // Small uploads.
    let objects: Vec<(String, Bytes)> = (0..o.small)
        .map(|i| {
            let mut b = vec![0u8; o.small_size];
            fill(&mut b, (o.seed << 32) + i as u64 + 1);
            (md5_hex(&b), Bytes::from(b))
        })
        .collect();
    let failures = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_secs(pid);
    let t0 = Instant::now();
    futures::stream::iter(objects.iter().cloned())
        .for_each_concurrent(o.clients, |(oid, body)| {
            let (client, url, token, failures) = (&client, &url, &token, failures.clone());
            async move {
                let r = client
                    .post(format!("{url}/{}", key(&oid)))
                    .bearer_auth(token)
                    .body(body)
                    .send()
                    .await;
                if !matches!(r, Ok(ref r) if r.status().is_success()) {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await;
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "small uploads: {} x {} B in {dt:.2}s = {:.0} uploads/s ({} failed), server CPU {:.0} us/upload",
        o.small,
        o.small_size,
        o.small as f64 / dt,
        failures.load(Ordering::Relaxed),
        (cpu_secs(pid) - cpu0) * 1e6 / o.small as f64
    );

    // Existence checks as DVC makes them (GET), half present and half absent, then HEAD.
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let cpu0 = cpu_secs(pid);
        let t0 = Instant::now();
        let bad = Arc::new(AtomicU64::new(0));
        futures::stream::iter(0..o.checks)
            .for_each_concurrent(o.clients, |i| {
                let (client, url, token, bad, method) =
                    (&client, &url, &token, bad.clone(), method.clone());
                let oid = if i % 2 == 0 {
                    objects[i % objects.len()].0.clone()
                } else {
                    md5_hex(format!("absent {i}").as_bytes())
                };
                async move {
                    match client
                        .request(method, format!("{url}/{}", key(&oid)))
                        .bearer_auth(token)
                        .send()
                        .await
                    {
                        Ok(r) => {
                            let expect = if i % 2 == 0 { 200 } else { 404 };
                            if r.status().as_u16() != expect {
                                bad.fetch_add(1, Ordering::Relaxed);
                            }
                            let _ = r.bytes().await;
                        }
                        Err(_) => {
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
            .await;
        let dt = t0.elapsed().as_secs_f64();
        println!(
            "existence checks ({method}): {} in {dt:.2}s = {:.0} checks/s ({} wrong), server CPU {:.0} us/check",
            o.checks,
            o.checks as f64 / dt,
            bad.load(Ordering::Relaxed),
            (cpu_secs(pid) - cpu0) * 1e6 / o.checks as f64
        );
    }

    // Batch API: 1,000 ids per call.
    let ids: Vec<String> = (0..o.checks)
        .map(|i| {
            if i % 2 == 0 {
                objects[i % objects.len()].0.clone()
            } else {
                md5_hex(format!("absent {i}").as_bytes())
            }
        })
        .collect();
    let t0 = Instant::now();
    let batch_url = format!("{base}/api/v1/projects/bench/objects/batch");
    futures::stream::iter(ids.chunks(1000))
        .for_each_concurrent(8, |chunk| {
            let (client, token, batch_url) = (&client, &token, &batch_url);
            async move {
                let r = client
                    .post(batch_url)
                    .bearer_auth(token)
                    .json(&serde_json::json!({"kind": "md5", "oids": chunk}))
                    .send()
                    .await
                    .expect("batch");
                assert!(r.status().is_success());
                let _ = r.bytes().await;
            }
        })
        .await;
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "batch existence: {} ids in {dt:.2}s = {:.0} ids/s",
        o.checks,
        o.checks as f64 / dt
    );
    let (peak, rss) = memory_kib(pid);
    println!(
        "server memory after small objects: peak {} MiB, now {} MiB",
        peak / 1024,
        rss / 1024
    );

    if o.large_mib > 0 {
        let size = o.large_mib << 20;
        let mut big = vec![0u8; size];
        fill(&mut big, 0xB16 + o.seed);
        let oid = md5_hex(&big);
        let big = Bytes::from(big);
        let cpu0 = cpu_secs(pid);
        let t0 = Instant::now();
        // Sent in 5 MiB chunks without a length, as DVC does.
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..size)
            .step_by(5 << 20)
            .map(|a| Ok(big.slice(a..(a + (5 << 20)).min(size))))
            .collect();
        let r = client
            .post(format!("{url}/{}", key(&oid)))
            .bearer_auth(&token)
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .send()
            .await
            .expect("large upload");
        assert!(r.status().is_success(), "{:?}", r.text().await);
        let dt = t0.elapsed().as_secs_f64();
        println!(
            "large upload: {} MiB in {dt:.2}s = {:.0} MB/s, server CPU {:.2}s",
            o.large_mib,
            size as f64 / dt / 1e6,
            cpu_secs(pid) - cpu0
        );
        drop(big);
        let cpu0 = cpu_secs(pid);
        let t0 = Instant::now();
        let r = client
            .get(format!("{url}/{}", key(&oid)))
            .bearer_auth(&token)
            .send()
            .await
            .expect("large download");
        let mut n = 0usize;
        let mut stream = r.bytes_stream();
        while let Some(b) = stream.next().await {
            n += b.expect("download body").len();
        }
        assert_eq!(n, size);
        let dt = t0.elapsed().as_secs_f64();
        println!(
            "large download: {} MiB in {dt:.2}s = {:.0} MB/s, server CPU {:.2}s",
            o.large_mib,
            size as f64 / dt / 1e6,
            cpu_secs(pid) - cpu0
        );
    }
    let (peak, rss) = memory_kib(pid);
    println!(
        "server memory: peak {} MiB, now {} MiB",
        peak / 1024,
        rss / 1024
    );
    if let Some(mut child) = target.child {
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            let _ = child.wait();
        })
        .await;
    }
    drop(target.data);
}
