//! Small HTTP servers written in Python for the tests, standing in for third-party servers
//! (a plain DVC HTTP remote, a failing one); each prints its port on its first line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running script server, killed when dropped (also when a test fails first).
pub struct PyServer {
    child: Child,
    pub port: String,
}

impl PyServer {
    /// Runs `script` with `arg` as its argument and waits for the port it prints.
    pub fn start(script: &str, arg: &Path) -> PyServer {
        let mut child = Command::new("python3")
            .args(["-c", script])
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
