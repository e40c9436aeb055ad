//! `smtp_tls` against a real Postfix from Debian (package `postfix`): its `master` started
//! by the test in the foreground from a temporary configuration directory, listening on a
//! loopback port with a certificate from a test CA, and stopped by PID. Never the system
//! service. Needs root (Postfix's queue directories belong to the `postfix` user).

use super::{check, codes, customer_zone, provider_zone, report};
use crate::harness::{dns_server, terminate, tool_installed, wait_until};
use crate::tls_servers::TestCa;
use maildrift::finding::CheckKind;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const MASTER: &str = "/usr/lib/postfix/sbin/master";

/// A Postfix master running in the foreground; stopped by PID (SIGTERM, which it passes to
/// its process group) when dropped.
struct Postfix {
    child: Child,
}

impl Drop for Postfix {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn chown_to_postfix(path: &Path) {
    let status = Command::new("chown")
        .args(["postfix", &path.display().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "chown postfix {}", path.display());
}

/// Writes main.cf and master.cf under `dir` and starts `master -d -s` (foreground, logging
/// to stdout) with smtpd on 127.0.0.1:`port`.
fn start(dir: &Path, port: u16, cert: &Path, key: &Path) -> Postfix {
    let (etc, spool, data) = (dir.join("etc"), dir.join("spool"), dir.join("data"));
    for sub in ["pid", "public", "private"] {
        std::fs::create_dir_all(spool.join(sub)).unwrap();
    }
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    for owned in [spool.join("public"), spool.join("private"), data.clone()] {
        chown_to_postfix(&owned);
    }
    let main = format!(
        "compatibility_level = 3.6\nqueue_directory = {spool}\ndata_directory = {data}\n\
         myhostname = mx1.provider.example\nmydestination =\nalias_maps =\nalias_database =\n\
         inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmaillog_file = /dev/stdout\n\
         smtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\n\
         smtpd_tls_security_level = may\nsmtpd_client_connection_count_limit = 0\n",
        spool = spool.display(),
        data = data.display(),
        cert = cert.display(),
        key = key.display()
    );
    std::fs::write(etc.join("main.cf"), main).unwrap();
    let master_cf = format!(
        "127.0.0.1:{port} inet n - n - - smtpd\n\
         postlog unix-dgram n - n - 1 postlogd\n\
         tlsmgr unix - - n 1000? 1 tlsmgr\n\
         anvil unix - - n - 1 anvil\n\
         proxymap unix - - n - - proxymap\n"
    );
    std::fs::write(etc.join("master.cf"), master_cf).unwrap();
    let child = Command::new(MASTER)
        .args(["-c", &etc.display().to_string(), "-d", "-s"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("master.log")).unwrap())
        .stderr(Stdio::null())
        // Its own process group: on SIGTERM the master stops its children with it.
        .process_group(0)
        .spawn()
        .expect("postfix master starts");
    Postfix { child }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_postfix_offers_starttls_with_its_certificate() {
    if !tool_installed(MASTER, "apt-get install postfix", "postfix test") {
        return;
    }
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        assert!(
            !ci,
            "the Postfix test needs root in CI (queue directories owned by postfix)"
        );
        eprintln!("SKIPPED a_real_postfix_offers_starttls_with_its_certificate: needs root");
        return;
    }
    let ca = TestCa::new("maildrift test CA");
    let leaf = ca.leaf(&["mx1.provider.example"], 60);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &leaf.chain_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let postfix = start(dir.path(), port, &cert, &key);
    let listening = wait_until(Duration::from_secs(20), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    let log = || std::fs::read_to_string(dir.path().join("master.log")).unwrap_or_default();
    assert!(listening, "postfix listening on {port}:\n{}", log());

    let dns = dns_server(&[&provider_zone(""), &customer_zone("shop.example", "")]).await;
    let yaml = format!(
        "defaults:\n  timeout: 10s\n  resolvers: [\"{dns}\"]\n  nameservers: [\"{dns}\"]\n  smtp: {{ port: {port}, timeout: 5s, ca_file: \"{ca}\" }}\ndomains:\n  - name: shop.example\n",
        dns = dns.addr(),
        ca = ca_file.display()
    );
    let reports = check(&yaml).await;
    let smtp = report(&reports[0], CheckKind::SmtpTls);
    assert!(smtp.success, "{:?}\n{}", smtp.error, log());
    assert_eq!(codes(smtp), Vec::<String>::new(), "{:?}", smtp.findings);
    let record = &smtp.records[0].values[0];
    assert!(
        record.starts_with(&format!("mx1.provider.example [127.0.0.1]:{port}: TLSv1."))
            && record.contains("issuer CN=maildrift test CA"),
        "{record}"
    );
    let starttls = smtp
        .shared
        .iter()
        .find(|s| s.family.name == "maildrift_mx_starttls" && !s.object.is_empty())
        .expect("the host's STARTTLS series");
    assert_eq!(starttls.samples[0].1, 1.0);
    drop(postfix);
    assert!(
        log().contains("[127.0.0.1] ehlo=1 starttls=1"),
        "Postfix saw EHLO and STARTTLS:\n{}",
        log()
    );
}
