//! HTTP plumbing shared by the Alertmanager client and the webhooks: secrets read from files
//! or the environment (never logged: [`Secret`]'s `Debug` hides them), clients with TLS
//! options, authentication, and sorting responses into retryable and permanent failures.

use super::AlertError;
use crate::config::{HttpClientConfig, SecretSource};
use std::fmt;
use std::time::Duration;

/// A secret value. `Debug` and `Display` print `<secret>`, so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// Reads a secret; a file's trailing newline is dropped. The error names the file or
/// variable, never the content.
pub fn read_secret(source: &SecretSource) -> Result<Secret, AlertError> {
    match source {
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map(|text| Secret(text.trim_end_matches(['\r', '\n']).to_string()))
            .map_err(|e| AlertError::Secret {
                source_name: format!("file {}", path.display()),
                reason: e.to_string(),
            }),
        SecretSource::Env(var) => match std::env::var(var) {
            Ok(value) if !value.is_empty() => Ok(Secret(value)),
            Ok(_) => Err(AlertError::Secret {
                source_name: format!("environment variable {var}"),
                reason: "empty".into(),
            }),
            Err(e) => Err(AlertError::Secret {
                source_name: format!("environment variable {var}"),
                reason: e.to_string(),
            }),
        },
    }
}

/// How requests authenticate.
#[derive(Clone, Debug)]
pub enum Auth {
    /// No authentication.
    None,
    /// `Authorization: Basic`.
    Basic(String, Secret),
    /// `Authorization: Bearer`.
    Bearer(Secret),
}

impl Auth {
    /// Adds the credentials to a request.
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Basic(user, password) => request.basic_auth(user, Some(password.expose())),
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
        }
    }
}

/// A client and its credentials, built from the config (secrets and certificates read now,
/// so that a reload with a missing file fails and keeps the old settings).
pub fn client(config: &HttpClientConfig) -> Result<(reqwest::Client, Auth), AlertError> {
    let mut builder = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("maildrift/", env!("CARGO_PKG_VERSION")));
    let tls = &config.tls;
    if let Some(ca) = &tls.ca_file {
        let pem = read_file(ca)?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| AlertError::Tls {
            file: ca.display().to_string(),
            reason: e.to_string(),
        })? {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        let mut pem = read_file(cert)?;
        pem.push(b'\n');
        pem.extend(read_file(key)?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| AlertError::Tls {
            file: format!("{} / {}", cert.display(), key.display()),
            reason: e.to_string(),
        })?;
        builder = builder.identity(identity);
    }
    if tls.insecure_skip_verify {
        tracing::warn!(
            "alerting.alertmanager.tls_config.insecure_skip_verify is set: server certificates are not verified"
        );
        builder = builder.danger_accept_invalid_certs(true);
    }
    let client = builder.build().map_err(|e| AlertError::Tls {
        file: "client".into(),
        reason: e.to_string(),
    })?;
    let auth = match (&config.basic_auth, &config.bearer_token) {
        (Some(basic), _) => Auth::Basic(basic.username.clone(), read_secret(&basic.password)?),
        (None, Some(token)) => Auth::Bearer(read_secret(token)?),
        (None, None) => Auth::None,
    };
    Ok((client, auth))
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, AlertError> {
    std::fs::read(path).map_err(|e| AlertError::Tls {
        file: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Why a delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying: connection failure, timeout, 5xx, 429.
    #[error("{0}")]
    Retryable(String),
    /// Retrying will not help: 4xx, a receiver that rejects the payload.
    #[error("{0}")]
    Permanent(String),
}

/// Sends a request and sorts the outcome; returns the body of a 2xx answer. Error texts
/// never include the URL (webhook URLs carry tokens).
pub async fn send(request: reqwest::RequestBuilder) -> Result<String, DeliveryError> {
    let response = request.send().await.map_err(|e| {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        DeliveryError::Retryable(kind.to_string())
    })?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let snippet: String = body.chars().take(200).collect();
    if status.is_success() {
        Ok(body)
    } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Err(DeliveryError::Retryable(format!(
            "HTTP {status}: {snippet}"
        )))
    } else {
        Err(DeliveryError::Permanent(format!(
            "HTTP {status}: {snippet}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_never_printed() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "<secret> <secret>");
        let auth = Auth::Basic("maildrift".into(), secret);
        assert!(!format!("{auth:?}").contains("hunter2"));
    }

    #[test]
    fn secret_files_lose_their_newline_and_errors_name_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let secret = read_secret(&SecretSource::File(path.clone())).unwrap();
        assert_eq!(secret.expose(), "s3cret");
        let missing = dir.path().join("missing");
        let err = read_secret(&SecretSource::File(missing.clone())).unwrap_err();
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
        let err = read_secret(&SecretSource::Env("MAILDRIFT_TEST_UNSET_SECRET".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("MAILDRIFT_TEST_UNSET_SECRET"), "{err}");
    }
}
