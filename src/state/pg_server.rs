//! A throwaway PostgreSQL server for the tests (testkit only): `initdb` into a temporary
//! directory (password authentication, a random password), `postgres` on a free loopback
//! port with its socket in that directory, ready once a connection succeeds, stopped by
//! PID (SIGINT: fast shutdown) when dropped. Debian's `postgresql` package provides the
//! binaries (`/usr/lib/postgresql/<version>/bin`, or `MAILDRIFT_PG_BIN`).
//!
//! PostgreSQL refuses to run as root: when the tests run as root (containers, CI), the
//! server runs as `nobody` (`setpriv --reuid --regid --clear-groups`), with the temporary
//! directory handed over to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running test server.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    password: String,
    child: Option<Child>,
}

/// Where the server binaries are: `MAILDRIFT_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` that has `initdb`.
pub fn binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MAILDRIFT_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// The server binaries, or `None` with a note on stderr when they are missing and this is
/// not CI; with `CI=true` a missing server fails the test instead of skipping it.
pub fn binaries_or_skip(test: &str) -> Option<PathBuf> {
    match binaries() {
        Some(bin) => Some(bin),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: PostgreSQL is not installed (Debian package `postgresql`), and CI=true")
        }
        None => {
            eprintln!("{test}: skipped: PostgreSQL is not installed (Debian package `postgresql`)");
            None
        }
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program` as the server's user: itself, or `nobody` when we are root.
fn as_server_user(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn hand_over(path: &Path) {
    if running_as_root() {
        let status = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(path)
            .status()
            .expect("chown runs");
        assert!(status.success(), "chown {} failed", path.display());
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl PgServer {
    /// Initializes a cluster and starts it; waits (at most 30 s) until it answers.
    pub fn start(bin: &Path) -> PgServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let password = format!("pw-{:016x}", rand::random::<u64>());
        std::fs::write(dir.path().join("pwfile"), &password).unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::create_dir(dir.path().join("socket")).unwrap();
        // The server's user must reach the directory.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        hand_over(dir.path());
        let output = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-U", "maildrift", "-A", "scram-sha-256", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync", "--no-instructions"])
            .arg(format!("--pwfile={}", dir.path().join("pwfile").display()))
            .output()
            .expect("initdb runs");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut server = PgServer {
            dir,
            bin: bin.to_path_buf(),
            port: free_port(),
            password,
            child: None,
        };
        server.start_again();
        server
    }

    /// Starts the server (again) on the same directory and port; waits until it answers.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let child = as_server_user(&self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-k")
            .arg(self.dir.path().join("socket"))
            .args(["-p", &self.port.to_string()])
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if super::postgres::off_runtime(|| self.client_for("postgres").is_ok()) {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("postgres exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready in 30 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server by PID (SIGINT, fast shutdown: everything committed stays) and
    /// waits for it to exit (at most 30 s, then SIGKILL).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = i32::try_from(child.id()).expect("pid fits");
        // SAFETY: signalling our own child by its PID.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The loopback address it listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The password of the `maildrift` user.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `postgres://maildrift@127.0.0.1:PORT/DATABASE` (no password).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://maildrift@127.0.0.1:{}/{database}", self.port)
    }

    /// A file holding the password (for `state.password_file`).
    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("pwfile")
    }

    /// A new, empty database; returns its name.
    pub fn create_database(&self, name: &str) -> String {
        self.execute("postgres", &format!("CREATE DATABASE \"{name}\""));
        name.to_string()
    }

    /// Runs `sql` (one or more statements) in `database`; also from async tests.
    pub fn execute(&self, database: &str, sql: &str) {
        super::postgres::off_runtime(|| {
            let mut client = self.client_for(database).expect("connect");
            client.batch_execute(sql).expect("statements run");
        });
    }

    /// The first column of the one row `sql` returns, in `database`; also from async tests.
    pub fn query_i64(&self, database: &str, sql: &str) -> i64 {
        super::postgres::off_runtime(|| {
            let mut client = self.client_for(database).expect("connect");
            client.query_one(sql, &[]).expect("query runs").get(0)
        })
    }

    /// A client connected to `database`. The blocking client must not be used on a thread
    /// that runs async tasks: there, use [`PgServer::execute`] and [`PgServer::query_i64`].
    pub fn client_for(&self, database: &str) -> Result<postgres::Client, postgres::Error> {
        let mut config: postgres::Config = self.url(database).parse().expect("valid url");
        config.password(&self.password);
        config.connect_timeout(Duration::from_secs(2));
        config.connect(postgres::NoTls)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}
