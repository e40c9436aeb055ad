//! Unit tests: file validation (file and field named) and the verification cache.

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn error_of(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "web.yml", text);
    WebConfig::load(&path).unwrap_err().to_string()
}

#[test]
fn empty_file_means_open_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "web.yml", "");
    let web = WebConfig::load(&path).unwrap();
    assert!(web.current().tls.is_none());
    assert!(web.current().users.is_empty());
}

#[test]
fn errors_name_the_file_and_field() {
    let e = error_of("basic_auth_users:\n  alice: secret\n");
    assert!(e.contains("web.yml: basic_auth_users.alice:"), "{e}");
    assert!(e.contains("\"secret\" is not a bcrypt hash"), "{e}");

    let e = error_of(
        "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n  cipher_suites: []\n",
    );
    assert!(e.contains("tls_server_config"), "{e}");
    assert!(e.contains("cipher_suites"), "{e}");

    let e = error_of("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n");
    assert!(
        e.contains("tls_server_config.cert_file: cannot read"),
        "{e}"
    );
    assert!(e.contains("c.pem"), "{e}");

    let e = error_of("tls_srv_config: {}\n");
    assert!(e.contains("tls_srv_config"), "{e}");

    let e = error_of(
        "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n  client_auth_type: RequestClientCert\n",
    );
    assert!(e.contains("tls_server_config.client_auth_type"), "{e}");
    assert!(e.contains("RequestClientCert"), "{e}");
}

fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (
        write(dir, "cert.pem", &cert.pem()),
        write(dir, "key.pem", &key.serialize_pem()),
    )
}

#[test]
fn tls_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    certificate(dir.path());
    let path = write(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  min_version: TLS13\n",
    );
    let web = WebConfig::load(&path).unwrap();
    assert!(web.current().tls.is_some());

    let bad = |text: &str| {
        let path = write(dir.path(), "bad.yml", text);
        WebConfig::load(&path).unwrap_err().to_string()
    };
    let e = bad(
        "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireAndVerifyClientCert\n",
    );
    assert!(e.contains("client_ca_file: is required"), "{e}");
    let e = bad("tls_server_config:\n  cert_file: cert.pem\n  key_file: cert.pem\n");
    assert!(e.contains("tls_server_config.key_file"), "{e}");
    let e = bad(
        "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  min_version: TLS13\n  max_version: TLS12\n",
    );
    assert!(e.contains("tls_server_config.min_version"), "{e}");
}

#[test]
fn broken_change_keeps_the_old_settings() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("pw", 4).unwrap();
    let path = write(
        dir.path(),
        "web.yml",
        &format!("basic_auth_users:\n  alice: '{hash}'\n"),
    );
    let web = WebConfig::load(&path).unwrap();
    assert!(!web.refresh().unwrap(), "unchanged file applied again");
    write(dir.path(), "web.yml", "basic_auth_users:\n  alice: nope\n");
    assert!(web.refresh().is_err());
    assert!(web.current().users.contains_key("alice"));
    write(
        dir.path(),
        "web.yml",
        &format!("basic_auth_users:\n  bob: '{hash}'\n"),
    );
    assert!(web.refresh().unwrap());
    assert!(web.current().users.contains_key("bob"));
    assert!(!web.current().users.contains_key("alice"));
}

#[tokio::test]
async fn good_passwords_are_cached_bad_ones_never() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("right", 4).unwrap();
    let path = write(
        dir.path(),
        "web.yml",
        &format!("basic_auth_users:\n  alice: '{hash}'\n"),
    );
    let web = WebConfig::load(&path).unwrap();
    let settings = web.current();
    assert!(web.auth.verify(&settings, "alice", "right").await);
    assert!(web.auth.verify(&settings, "alice", "right").await);
    assert_eq!(web.bcrypt_verifications(), 1);
    assert!(!web.auth.verify(&settings, "alice", "wrong").await);
    assert!(!web.auth.verify(&settings, "alice", "wrong").await);
    assert_eq!(web.bcrypt_verifications(), 3);
    assert!(!web.auth.verify(&settings, "mallory", "right").await);
    assert_eq!(
        web.bcrypt_verifications(),
        4,
        "unknown users cost a bcrypt too"
    );
}
