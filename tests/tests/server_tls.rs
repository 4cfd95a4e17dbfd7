//! Built-in HTTPS: the configured certificate is served, a renewed one is picked up on SIGHUP
//! (a broken one is not), bad certificate settings stop the server before it touches the data
//! folder, and `lode` checks certificates as DVC's `ssl_verify` says.

use lode_e2e::remote_repo::{RemoteRepo, Tool};
use lode_e2e::repo::Scratch;
use lode_e2e::server::Server;
use lode_e2e::tls::{ServerCert, TestCa};
use lode_e2e::uploads::eventually;

fn https_server(cert: &ServerCert) -> Server {
    let s = Server::start_with_env(&[
        ("LODE_TLS_CERT", cert.cert.to_str().unwrap()),
        ("LODE_TLS_KEY", cert.key.to_str().unwrap()),
    ]);
    assert!(s.url().starts_with("https://127.0.0.1:"), "{}", s.url());
    s
}

/// The certificate a new connection to `url` is shown, checked against `ca`.
fn presented(url: &str, ca_bundle: &std::path::Path) -> Vec<u8> {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_bundle).unwrap()).unwrap();
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .tls_info(true)
        .build()
        .unwrap();
    let r = client
        .get(format!("{url}/readyz"))
        .send()
        .expect("HTTPS request");
    assert_eq!(r.status(), 200);
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .expect("peer certificate")
        .to_vec()
}

#[test]
fn a_renewed_certificate_is_served_after_sighup_and_a_broken_one_is_not() {
    let dir = Scratch::new();
    let ca = TestCa::new("renewal");
    let bundle = dir.join("ca.pem");
    ca.write_bundle(&bundle);
    let first = ca.issue(dir.path(), "server");
    let s = https_server(&first);
    assert_eq!(presented(s.url(), &bundle), first.der);

    // Renewal writes new files over the old ones; the server is told with SIGHUP.
    let renewed = ca.issue(dir.path(), "server");
    assert_ne!(renewed.der, first.der);
    s.signal("HUP");
    eventually("the renewed certificate is served", || {
        presented(s.url(), &bundle) == renewed.der
    });

    std::fs::write(&renewed.cert, "half-written").unwrap();
    s.signal("HUP");
    eventually("the broken renewal is reported", || {
        s.log().contains("keeping the current certificate")
    });
    assert_eq!(presented(s.url(), &bundle), renewed.der);
}

/// Runs `serve` with the given TLS files on a data folder that does not exist yet.
fn serve_with(dir: &Scratch, cert: &str, key: Option<&str>) -> lode_e2e::repo::Run {
    let data = dir.join("data");
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--tls-cert", cert];
    if let Some(k) = key {
        args.extend(["--tls-key", k]);
    }
    let r = Server::cli_on(&data, &args);
    assert!(!data.exists(), "the data folder was created: {r:?}");
    r
}

fn one_line_naming(r: &lode_e2e::repo::Run, what: &[&str]) {
    assert_ne!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line: {:?}", r.stderr);
    for w in what {
        assert!(lines[0].contains(w), "{:?} does not mention {w}", lines[0]);
    }
}

#[test]
fn bad_certificate_settings_stop_the_server_before_the_data_folder_is_touched() {
    let dir = Scratch::new();
    let ca = TestCa::new("bad");
    let a = ca.issue(dir.path(), "a");
    let b = ca.issue(dir.path(), "b");
    let (a_cert, a_key) = (a.cert.to_str().unwrap(), a.key.to_str().unwrap());
    let b_key = b.key.to_str().unwrap();
    let missing = dir.join("missing.crt");

    one_line_naming(
        &serve_with(&dir, missing.to_str().unwrap(), Some(a_key)),
        &["missing.crt", "cannot read"],
    );
    one_line_naming(
        &serve_with(&dir, a_cert, Some(b_key)),
        &["b.key", "does not match", "a.crt"],
    );
    one_line_naming(
        &serve_with(&dir, a_key, Some(a_key)),
        &["a.key", "no PEM certificate"],
    );
    one_line_naming(
        &serve_with(&dir, a_cert, Some(a_cert)),
        &["a.crt", "TLS key"],
    );
    one_line_naming(&serve_with(&dir, a_cert, None), &["--tls-key"]);
}

#[test]
fn lode_checks_certificates_as_dvcs_ssl_verify_says() {
    let dir = Scratch::new();
    let ca = TestCa::new("clients");
    let bundle = dir.join("ca.pem");
    ca.write_bundle(&bundle);
    let other_bundle = dir.join("other-ca.pem");
    TestCa::new("someone else").write_bundle(&other_bundle);
    let s = https_server(&ca.issue(dir.path(), "server"));
    let token = s.project_with_token("ml", "write");
    let repo = RemoteRepo::new(Tool::Lode, &s.project_url("ml"), &token);
    let push = |file: &str| {
        repo.repo.write(file, format!("contents of {file}"));
        repo.run(&["add", "-q", file]).ok();
        repo.run(&["push", "-q"])
    };

    // Unknown issuer: refused, and nothing is sent.
    let r = push("a.txt");
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.to_lowercase().contains("certificate"), "{r:?}");
    let usage = s.admin(&["usage", "ml"]).stdout;
    assert!(usage.contains("\"objects\": 0"), "{usage}");

    // Another CA's bundle does not vouch for this server either.
    repo.remote_option("ssl_verify", other_bundle.to_str().unwrap());
    assert_ne!(repo.run(&["push", "-q"]).code, 0);

    // The right bundle, added to the system's CAs as DVC does.
    repo.remote_option("ssl_verify", bundle.to_str().unwrap());
    repo.run(&["push", "-q"]).ok();

    // A relative path is taken from where the command runs, as Python's ssl does.
    std::fs::copy(&bundle, repo.repo.join("ca-here.pem")).unwrap();
    repo.remote_option("ssl_verify", "ca-here.pem");
    push("b.txt").ok();

    // `false` in any case turns checking off.
    repo.remote_option("ssl_verify", "FALSE");
    push("c.txt").ok();

    // A bundle that is not there: an error naming it, not a silent fallback.
    repo.remote_option("ssl_verify", "/nonexistent/ca.pem");
    let r = push("d.txt");
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("/nonexistent/ca.pem"), "{r:?}");

    // A file without certificates is refused too (DVC's ssl module fails on it).
    repo.remote_option("ssl_verify", repo.repo.join("a.txt").to_str().unwrap());
    let r = repo.run(&["push", "-q"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("a.txt"), "{r:?}");

    let usage = s.admin(&["usage", "ml"]).stdout;
    assert!(usage.contains("\"objects\": 3"), "{usage}");
}
