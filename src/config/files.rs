//! The files a valid config names (secret files, webhook URL files, CA and client
//! certificates): `maildrift validate` checks that each can be read and holds what it
//! should, as `promtool check config` does (`run` reads the secrets and certificates when it
//! builds the alerting, and a webhook's URL file at each delivery). Each problem is located
//! at the field that names the file. Contents are never quoted: they may be secrets.

use super::issues::Issues;
use super::{Config, SecretSource, WebhookUrl};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// What a named file must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holds {
    /// A password, token or signing secret: not empty.
    Secret,
    /// An `http(s)://` URL (a webhook URL with its token).
    Url,
    /// PEM certificates, at least one (a CA bundle or a client certificate).
    Certificates,
    /// One PEM private key.
    PrivateKey,
}

/// Records an issue for every named file that is missing, unreadable or malformed.
pub(crate) fn check(config: &Config, issues: &mut Issues<'_>) {
    for (field, path, holds) in named_files(config) {
        if let Err(message) = inspect(&path, holds) {
            issues.value(&field, message);
        }
    }
}

/// Every file the config names: (field, path, what it holds). `defaults.mta_sts.ca_file`
/// is left out: it is read while the config is parsed.
fn named_files(config: &Config) -> Vec<(String, std::path::PathBuf, Holds)> {
    let mut files = Vec::new();
    let Some(alerting) = &config.alerting else {
        return files;
    };
    let am = "alerting.alertmanager";
    let client = &alerting.alertmanager_client;
    if let Some(auth) = &client.basic_auth
        && let SecretSource::File(path) = &auth.password
    {
        files.push((
            format!("{am}.basic_auth.password_file"),
            path.clone(),
            Holds::Secret,
        ));
    }
    if let Some(SecretSource::File(path)) = &client.bearer_token {
        files.push((
            format!("{am}.bearer_token_file"),
            path.clone(),
            Holds::Secret,
        ));
    }
    let tls = [
        ("ca_file", &client.tls.ca_file, Holds::Certificates),
        ("cert_file", &client.tls.cert_file, Holds::Certificates),
        ("key_file", &client.tls.key_file, Holds::PrivateKey),
    ];
    for (key, path, holds) in tls {
        if let Some(path) = path {
            files.push((format!("{am}.tls_config.{key}"), path.clone(), holds));
        }
    }
    // A valid config keeps every webhook, so the index is the one in the file.
    for (i, hook) in alerting.webhooks.iter().enumerate() {
        if let WebhookUrl::File(path) = &hook.url {
            let field = format!("alerting.webhooks[{i}].url_file");
            files.push((field, path.clone(), Holds::Url));
        }
        if let Some(path) = &hook.secret_file {
            let field = format!("alerting.webhooks[{i}].secret_file");
            files.push((field, path.clone(), Holds::Secret));
        }
    }
    files
}

/// Reads `path` and checks that it holds `holds`; the error names the file.
fn inspect(path: &Path, holds: Holds) -> Result<(), String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    match holds {
        Holds::Secret => {
            if String::from_utf8_lossy(&bytes).trim().is_empty() {
                return Err(format!("{shown} is empty"));
            }
        }
        Holds::Url => {
            let text = String::from_utf8_lossy(&bytes);
            let text = text.trim();
            if !(text.starts_with("http://") || text.starts_with("https://")) {
                return Err(format!("{shown} does not hold an http(s) URL"));
            }
        }
        Holds::Certificates => {
            let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&bytes).collect();
            match certs {
                Ok(certs) if !certs.is_empty() => {}
                Ok(_) => return Err(format!("{shown} holds no PEM certificate")),
                Err(e) => return Err(format!("{shown}: {e}")),
            }
        }
        Holds::PrivateKey => {
            PrivateKeyDer::from_pem_slice(&bytes)
                .map_err(|e| format!("{shown} holds no usable PEM private key: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn missing_empty_and_malformed_files_are_named_at_their_field() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let url = dir.path().join("url");
        std::fs::write(&url, "https://hooks.example/T0K3N\n").unwrap();
        let missing = dir.path().join("missing");
        let text = format!(
            "domains: []\nalerting:\n  alertmanager:\n    url: http://am:9093\n    basic_auth:\n      username: u\n      password_file: {}\n    tls_config:\n      ca_file: {}\n  webhooks:\n    - {{ name: a, format: slack, url_file: {} }}\n    - name: b\n      format: dingtalk\n      url_file: {}\n      secret_file: {}\n",
            missing.display(),
            not_pem.display(),
            empty.display(),
            url.display(),
            empty.display(),
        );
        let file = dir.path().join("maildrift.yml");
        std::fs::write(&file, &text).unwrap();
        // Parsing alone does not look at the files.
        Config::parse(&text, Path::new("t.yml")).unwrap();
        let err = Config::load_checking_files(&file).unwrap_err().to_string();
        let lines: Vec<&str> = err.lines().collect();
        let f = file.display();
        assert_eq!(lines.len(), 4, "{err}");
        assert!(
            lines[0].starts_with(&format!(
                "{f}:7:22: alerting.alertmanager.basic_auth.password_file: cannot read {}:",
                missing.display()
            )),
            "{err}"
        );
        assert_eq!(
            lines[1],
            format!(
                "{f}:9:16: alerting.alertmanager.tls_config.ca_file: {} holds no PEM certificate",
                not_pem.display()
            )
        );
        assert_eq!(
            lines[2],
            format!(
                "{f}:11:43: alerting.webhooks[0].url_file: {} does not hold an http(s) URL",
                empty.display()
            )
        );
        assert_eq!(
            lines[3],
            format!(
                "{f}:15:20: alerting.webhooks[1].secret_file: {} is empty",
                empty.display()
            )
        );
        assert!(
            !err.contains("T0K3N"),
            "a URL file's content is never shown"
        );
    }
}
