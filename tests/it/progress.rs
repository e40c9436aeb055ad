//! `maildrift check` shows its progress (domains done / total, rate, ETA) on stderr only when
//! stderr is a terminal: a pseudo-terminal the test opens, against a pipe.

use crate::binary::BIN;
use crate::harness::dns_server;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

fn zone(name: &str) -> String {
    format!(
        "$ORIGIN {name}.\n@ 300 SOA ns1.{name}. h.{name}. 1 3600 600 86400 60\n@ 300 NS ns1.{name}.\nns1 300 A 192.0.2.1\n@ 300 MX 10 mx.{name}.\nmx 300 A 192.0.2.2\n@ 300 TXT \"v=spf1 mx -all\"\n"
    )
}

/// A pseudo-terminal: (controller, terminal end).
fn pty() -> (std::fs::File, OwnedFd) {
    let (mut controller, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two new descriptors into the two valid out-pointers; the other
    // arguments may be null.
    let result = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(result, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created by openpty and are owned here alone.
    unsafe {
        (
            std::fs::File::from_raw_fd(controller),
            OwnedFd::from_raw_fd(terminal),
        )
    }
}

#[tokio::test]
async fn check_draws_progress_only_when_stderr_is_a_terminal() {
    let names = ["one.example", "two.example", "three.example"];
    let zones: Vec<String> = names.iter().map(|n| zone(n)).collect();
    let zone_refs: Vec<&str> = zones.iter().map(String::as_str).collect();
    let dns = dns_server(&zone_refs).await;
    let server = dns.addr().to_string();
    let check = move || {
        let mut command = Command::new(BIN);
        command
            .args(["check", "--resolver", &server, "--nameserver", &server])
            .args(names)
            .stdout(Stdio::piped());
        command
    };

    // stderr is a pipe: nothing but the report on stdout.
    let mut piped = check();
    let output = tokio::task::spawn_blocking(move || piped.stderr(Stdio::piped()).output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty(), "no progress on a pipe: {stderr:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("three.example"));

    // stderr is a terminal: the bar is drawn there.
    let mut command = check();
    let drawn = tokio::task::spawn_blocking(move || {
        let (mut controller, terminal) = pty();
        command.stderr(Stdio::from(terminal));
        let child = command.spawn().unwrap();
        // The parent's copy of the terminal end went into `command`: drop it so the
        // controller reads end-of-file (EIO) once the child exits.
        drop(command);
        let output = child.wait_with_output().unwrap();
        let mut drawn = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = controller.read(&mut buf) {
            if n == 0 {
                break;
            }
            drawn.extend_from_slice(&buf[..n]);
        }
        (output, String::from_utf8_lossy(&drawn).into_owned())
    })
    .await
    .unwrap();
    let (output, drawn) = drawn;
    assert!(String::from_utf8_lossy(&output.stdout).contains("three.example"));
    assert!(
        drawn.contains("checking") && drawn.contains("/3 domains"),
        "progress on the terminal: {drawn:?}"
    );
}
