//! Small HTTP servers written in Python for the tests, standing in for third-party servers
//! (a plain DVC HTTP remote, a failing one). A script defines `class H(Base)`; `Base` reads
//! request bodies (chunked or not) and answers with a length, and the helper serves `H` on a
//! free loopback port.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const PRELUDE: &str = r#"
import http.server, os, sys
class Base(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        data = b""
        while True:
            n = int(self.rfile.readline().strip(), 16)
            data += self.rfile.read(n)
            self.rfile.readline()
            if n == 0:
                return data
    def answer(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
"#;

const SERVE: &str = r#"
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// A running script server, killed when dropped (also when a test fails first).
pub struct PyServer {
    child: Child,
    pub port: String,
}

impl PyServer {
    /// Serves the handler `H` defined by `script`, which finds `arg` in `sys.argv[1]`, and
    /// waits for the port.
    pub fn start(script: &str, arg: &Path) -> PyServer {
        let program = format!("{PRELUDE}{script}{SERVE}");
        let mut child = Command::new("python3")
            .args(["-c", &program])
            .arg(arg)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        PyServer {
            child,
            port: line.trim().to_string(),
        }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
