//! The real `maildrift` binary as a child process: started with JSON logs, its addresses
//! read from the start-up line, stopped by PID with SIGTERM.

use crate::harness::wait_until;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_maildrift");

/// An authoritative zone for the daemons these tests start.
pub const ZONE: &str = "$ORIGIN acme.example.\n@ 300 SOA ns1.acme.example. h.acme.example. 1 3600 600 86400 60\n@ 300 NS ns1.acme.example.\nns1 300 A 192.0.2.1\n@ 300 MX 10 mx.acme.example.\nmx 300 A 192.0.2.2\n@ 300 TXT \"v=spf1 mx -all\"\n";

/// A `maildrift run` child process.
pub struct Running {
    pub child: Child,
    /// Every address it serves on, from its start-up line.
    pub addresses: Vec<SocketAddr>,
    /// Its stderr, line by line, after the start-up line.
    pub lines: Receiver<String>,
}

impl Running {
    /// Spawns `command` (a `maildrift run …` with `--log.format json`) and waits up to 20 s
    /// for its start-up line.
    pub fn start(mut command: Command) -> Running {
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        while let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) {
            let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if json["fields"]["message"] == "maildrift started" {
                let addresses = json["fields"]["addresses"]
                    .as_str()
                    .unwrap_or_default()
                    .split(',')
                    .map(|a| a.parse().unwrap())
                    .collect();
                return Running {
                    child,
                    addresses,
                    lines,
                };
            }
            seen.push(line);
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("no start-up line within 20 s; stderr:\n{}", seen.join("\n"));
    }

    /// The first address.
    pub fn addr(&self) -> SocketAddr {
        self.addresses[0]
    }

    /// SIGTERM by PID; waits up to 15 s for the exit. Returns the exit code and the rest of
    /// stderr.
    pub async fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let code = terminate(&mut self.child).await;
        (code, self.lines.try_iter().collect())
    }
}

/// SIGTERM to `child` by PID; waits up to 15 s for its exit code (killed and a panic after).
pub async fn terminate(child: &mut Child) -> Option<i32> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = wait_until(Duration::from_secs(15), || {
        let done = matches!(child.try_wait(), Ok(Some(_)));
        async move { done }
    })
    .await;
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("process {} did not exit within 15 s of SIGTERM", child.id());
    }
    child.wait().unwrap().code()
}

/// `maildrift run` with JSON logs, a state directory in `dir`, and both the resolver and
/// the authoritative server at `dns`.
pub fn run_command(dir: &std::path::Path, config: &std::path::Path, dns: SocketAddr) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["run", "--log.format", "json", "--config"])
        .arg(config)
        .arg("--state-dir")
        .arg(dir.join("data"))
        .args([
            "--resolver",
            &dns.to_string(),
            "--nameserver",
            &dns.to_string(),
        ]);
    command
}

/// The revision the build must have stamped into `maildrift_build_info`: the variable when
/// the test runs with it, else the commit checked out, else "unknown".
pub fn expected_revision() -> String {
    if let Ok(revision) = std::env::var("MAILDRIFT_REVISION")
        && !revision.trim().is_empty()
    {
        return revision;
    }
    Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
