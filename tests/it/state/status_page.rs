//! The status page in a real browser: headless Chromium loads `/` from a running daemon,
//! the domain rows are found in the rendered DOM, and screenshots (laptop and phone width)
//! are saved under `target/tmp/` as test artefacts. Skipped, saying why, only when
//! Chromium is absent and CI is not "true".

use super::{DECLARED_ZONE, config, learned_zone, start};
use crate::harness::dns_server;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn chromium() -> Option<PathBuf> {
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

/// Runs headless Chromium on `url`; returns the dumped DOM. Writes a screenshot.
async fn render(browser: &Path, url: &str, screenshot: &Path, size: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--window-size={size}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--dump-dom")
        .arg(url)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("chromium finishes within 90 s")
        .expect("chromium starts");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_the_status_page_with_every_domain() {
    let Some(browser) = chromium() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium is not installed, and CI=true requires this test to run");
        }
        eprintln!(
            "SKIPPED chromium_renders_the_status_page_with_every_domain: chromium not installed (apt-get install chromium)"
        );
        return;
    };
    let dns = dns_server(&[&learned_zone("mx-a"), DECLARED_ZONE]).await;
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(
        dir.path(),
        &config(dns.addr(), "300ms"),
        &dir.path().join("data"),
    )
    .await
    .unwrap();
    daemon.wait_ready().await;
    dns.set_zone(&learned_zone("mx-b")).unwrap();
    daemon.wait_drift(1.0).await;

    let artefacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page");
    std::fs::create_dir_all(&artefacts).unwrap();
    let url = format!("http://{}/", daemon.addr);
    for (name, size) in [("laptop", "1280,900"), ("phone", "390,844")] {
        let shot = artefacts.join(format!("status-{name}.png"));
        let _ = std::fs::remove_file(&shot);
        let dom = render(&browser, &url, &shot, size).await;
        std::fs::write(artefacts.join(format!("status-{name}.html")), &dom).unwrap();
        for domain in ["learned.example", "declared.example"] {
            assert!(
                dom.contains(&format!(
                    "<tr class=\"domain-row\" data-domain=\"{domain}\">"
                )),
                "no row for {domain} in the rendered DOM:\n{dom}"
            );
        }
        assert!(dom.contains(">DRIFT</span>"), "drift not shown:\n{dom}");
        assert!(
            dom.contains("id=\"incidents\""),
            "no open incidents:\n{dom}"
        );
        let png = std::fs::read(&shot).expect("screenshot written");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        assert!(
            png.len() > 5_000,
            "screenshot suspiciously small: {} bytes",
            png.len()
        );
        eprintln!("status page screenshot ({name}): {}", shot.display());
    }
    // The domain page renders too.
    let shot = artefacts.join("domain-learned.png");
    let dom = render(
        &browser,
        &format!("{url}domains/learned.example"),
        &shot,
        "1280,900",
    )
    .await;
    assert!(dom.contains("Timeline"), "{dom}");
    assert!(dom.contains("10 mx-b.learned.example"), "{dom}");
    daemon.stop().await;
}
