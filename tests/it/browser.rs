//! Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
//! commands on descriptor 3, answers on 4, each JSON message ended by a NUL byte), so a
//! test can load a page, type into it, submit forms and read the DOM — no WebDriver, no
//! network port. The browser runs on a fresh profile and is stopped by its process id.

use serde_json::{Value, json};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

/// Chromium, if installed (Debian's `chromium`).
pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| {
            std::env::var_os("PATH")
                .map(|paths| {
                    std::env::split_paths(&paths)
                        .map(|d| d.join(name))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .find(|path| path.is_file())
}

/// Whether a browser test can run: Chromium is installed, or (outside CI) the test says it
/// is skipped.
pub fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium is not installed, and CI=true requires {test} to run");
        }
        eprintln!("SKIPPED {test}: chromium not installed (apt-get install chromium)");
    }
    found
}

/// How every test starts Chromium: headless, no sandbox (containers), nothing fetched
/// from the network behind the test's back, no first-run dialogs.
pub const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
];

/// One answer may take this long at most.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A headless Chromium with one page.
pub struct Browser {
    child: Child,
    commands: pipe::Sender,
    answers: BufReader<pipe::Receiver>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

fn pipe_pair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let result = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(result, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    /// Starts Chromium (window `width,height`) and opens a blank page.
    pub async fn start(chromium: &Path, window: &str) -> Browser {
        use std::os::fd::AsRawFd;
        let profile = tempfile::tempdir().unwrap();
        let (command_read, command_write) = pipe_pair();
        let (answer_read, answer_write) = pipe_pair();
        let (child_in, child_out) = (command_read.as_raw_fd(), answer_write.as_raw_fd());
        let mut command = Command::new(chromium);
        command
            .args(FLAGS)
            .arg("--remote-debugging-pipe")
            .arg(format!("--window-size={window}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec. The
        // descriptors are first copied above 10 so that placing them on 3 and 4 cannot
        // overwrite one with the other.
        unsafe {
            command.pre_exec(move || {
                let input = libc::fcntl(child_in, libc::F_DUPFD, 10);
                let output = libc::fcntl(child_out, libc::F_DUPFD, 10);
                if input < 0 || output < 0 || libc::dup2(input, 3) < 0 || libc::dup2(output, 4) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("chromium starts");
        drop((command_read, answer_write));
        let mut browser = Browser {
            child,
            commands: pipe::Sender::from_owned_fd(command_write).unwrap(),
            answers: BufReader::new(pipe::Receiver::from_owned_fd(answer_read).unwrap()),
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = browser
            .call("Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let attached = browser
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        browser.call("Page.enable", json!({})).await;
        browser
    }

    /// Sends one command (to the page once attached) and returns its result.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        let exchange = async {
            self.commands.write_all(&bytes).await.unwrap();
            loop {
                let mut raw = Vec::new();
                let read = self.answers.read_until(0, &mut raw).await.unwrap();
                assert!(read > 0, "chromium closed the pipe");
                raw.pop();
                let answer: Value = serde_json::from_slice(&raw).unwrap();
                if answer["id"] == id {
                    return answer;
                }
            }
        };
        let answer = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| panic!("no answer to {method} within {CALL_TIMEOUT:?}"));
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// Evaluates `expression` in the page; its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Polls `condition` (a JavaScript expression) until it is `true` or `within` passes.
    pub async fn wait_for(&mut self, condition: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.eval(condition).await == json!(true) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Loads `url` and waits until the document is complete.
    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        let loaded = self
            .wait_for(
                &format!(
                    "location.href === {} && document.readyState === 'complete'",
                    json!(url)
                ),
                Duration::from_secs(60),
            )
            .await;
        assert!(loaded, "{url} did not load");
    }

    /// Runs `action` (JavaScript that navigates: a click, a form submit) and waits until
    /// the location satisfies `arrived` (a JavaScript expression) and the page is complete.
    pub async fn navigate_by(&mut self, action: &str, arrived: &str) {
        self.eval(action).await;
        let done = self
            .wait_for(
                &format!("({arrived}) && document.readyState === 'complete'"),
                Duration::from_secs(60),
            )
            .await;
        assert!(done, "after {action}: not ({arrived})");
    }

    /// Saves a PNG of the page.
    pub async fn screenshot(&mut self, path: &Path) {
        use base64::Engine;
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        std::fs::write(path, png).unwrap();
    }

    /// Closes the browser and waits for its process; kills it by its id if it lingers.
    pub async fn close(mut self) {
        self.session.clear();
        self.next_id += 1;
        let message = format!(
            "{}\0",
            json!({ "id": self.next_id, "method": "Browser.close" })
        );
        let _ = self.commands.write_all(message.as_bytes()).await;
        let waited = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
        if waited.is_err() {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}
