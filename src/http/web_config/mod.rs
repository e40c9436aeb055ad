//! `--web.config.file`: TLS and basic authentication for the HTTP server, in the Prometheus
//! exporter-toolkit file format (`tls_server_config`, `basic_auth_users`).
//!
//! The file and every file it names are fingerprinted; [`WebConfig::refresh`] (run on a short
//! poll by [`WebConfig::watch`]) rebuilds the settings when any of them changed. A broken new
//! file is logged and the previous settings stay in force; a broken file at start-up is an
//! error naming the file and the field.

mod auth;
mod listener;

pub(crate) use auth::require_auth;
pub(crate) use listener::serve;

use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often [`WebConfig::watch`] looks for changes.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Why a web config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file itself cannot be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The web config file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A field is missing, unknown or has a bad value (or names a file that is unusable).
    #[error("{file}: {field}: {message}")]
    Invalid {
        /// The web config file.
        file: PathBuf,
        /// Dotted path of the field, e.g. `tls_server_config.cert_file`.
        field: String,
        /// What is wrong, quoting the bad value.
        message: String,
    },
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    #[serde(default)]
    client_auth_type: Option<ClientAuthType>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    min_version: Option<TlsVersion>,
    #[serde(default)]
    max_version: Option<TlsVersion>,
}

/// Client certificate policy (exporter-toolkit names; the unverified Go modes
/// `RequestClientCert` and `RequireAnyClientCert` are not offered).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub(crate) enum ClientAuthType {
    /// No client certificate is asked for.
    NoClientCert,
    /// A client certificate is optional, but verified against `client_ca_file` when sent.
    VerifyClientCertIfGiven,
    /// A client certificate signed by `client_ca_file` is required.
    RequireAndVerifyClientCert,
}

/// TLS protocol versions by their exporter-toolkit names.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TlsVersion {
    /// TLS 1.0 (accepted for compatibility; rustls speaks 1.2 and 1.3 only).
    #[serde(rename = "TLS10")]
    Tls10,
    /// TLS 1.1 (accepted for compatibility; rustls speaks 1.2 and 1.3 only).
    #[serde(rename = "TLS11")]
    Tls11,
    /// TLS 1.2.
    #[serde(rename = "TLS12")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "TLS13")]
    Tls13,
}

/// The settings in force: built from one consistent read of the files.
#[derive(Default)]
pub struct WebSettings {
    /// Serve HTTPS with this configuration (`None`: plain HTTP).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// User name → bcrypt hash; empty means no authentication.
    pub users: BTreeMap<String, String>,
}

/// A web config file and the settings last read from it successfully.
pub struct WebConfig {
    path: PathBuf,
    current: RwLock<Arc<WebSettings>>,
    /// Fingerprint of the file contents last looked at (good or bad).
    seen: Mutex<Vec<u8>>,
    auth: auth::Verifier,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl WebConfig {
    /// Reads and validates `path` and every file it names.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let snapshot = Snapshot::read(path)?;
        let settings = snapshot.build(path)?;
        Ok(WebConfig {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(settings)),
            seen: Mutex::new(snapshot.fingerprint),
            auth: auth::Verifier::default(),
        })
    }

    /// The file this came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The settings in force.
    pub fn current(&self) -> Arc<WebSettings> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// How many bcrypt verifications ran (cache misses), for tests and debugging.
    pub fn bcrypt_verifications(&self) -> u64 {
        self.auth.runs()
    }

    /// Re-reads the files; applies them when their contents changed and they are valid.
    /// Returns `Ok(true)` when new settings were applied, `Ok(false)` when nothing changed,
    /// and the error (already logged, old settings kept) when the changed files are invalid.
    pub fn refresh(&self) -> Result<bool, WebConfigError> {
        let file = self.path.display();
        let outcome = Snapshot::read(&self.path).and_then(|snapshot| {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == snapshot.fingerprint {
                return Ok(None);
            }
            *seen = snapshot.fingerprint.clone();
            drop(seen);
            snapshot.build(&self.path).map(Some)
        });
        match outcome {
            Ok(None) => Ok(false),
            Ok(Some(settings)) => {
                tracing::info!(
                    file = %file,
                    tls = settings.tls.is_some(),
                    users = settings.users.len(),
                    "web config reloaded"
                );
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(settings);
                Ok(true)
            }
            Err(error) => {
                // A read error is retried (and logged) on every poll until it goes away;
                // a bad but unchanged file is logged once.
                let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                if matches!(error, WebConfigError::Read { .. }) {
                    seen.clear();
                }
                tracing::error!(%error, "web config not reloaded; keeping the previous settings");
                Err(error)
            }
        }
    }

    /// Polls for changes every `every` until `shutdown` fires.
    pub async fn watch(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {
                    let this = self.clone();
                    // File reads and PEM parsing off the async workers.
                    let _ = tokio::task::spawn_blocking(move || this.refresh()).await;
                }
            }
        }
    }
}

/// The raw file plus the bytes of every file it names, read once.
struct Snapshot {
    raw: RawWebConfig,
    cert: Vec<u8>,
    key: Vec<u8>,
    ca: Option<Vec<u8>>,
    fingerprint: Vec<u8>,
}

fn invalid(path: &Path, field: &str, message: impl Into<String>) -> WebConfigError {
    WebConfigError::Invalid {
        file: path.to_owned(),
        field: field.to_owned(),
        message: message.into(),
    }
}

impl Snapshot {
    fn read(path: &Path) -> Result<Snapshot, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            file: path.to_owned(),
            source,
        })?;
        let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
        digest.update(text.as_bytes());
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            let deserializer = yaml_serde::Deserializer::from_str(&text);
            serde_path_to_error::deserialize(deserializer).map_err(|e| {
                let field = e.path().to_string();
                let field = if field == "." {
                    "(top level)".into()
                } else {
                    field
                };
                invalid(path, &field, e.into_inner().to_string())
            })?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut read = |field: &str, file: &Path| -> Result<Vec<u8>, WebConfigError> {
            let file = base.join(file);
            let bytes = std::fs::read(&file).map_err(|e| {
                invalid(path, field, format!("cannot read {}: {e}", file.display()))
            })?;
            digest.update(&(bytes.len() as u64).to_le_bytes());
            digest.update(&bytes);
            Ok(bytes)
        };
        let (cert, key, ca) = match &raw.tls_server_config {
            Some(tls) => (
                read("tls_server_config.cert_file", &tls.cert_file)?,
                read("tls_server_config.key_file", &tls.key_file)?,
                match &tls.client_ca_file {
                    Some(ca) => Some(read("tls_server_config.client_ca_file", ca)?),
                    None => None,
                },
            ),
            None => (Vec::new(), Vec::new(), None),
        };
        Ok(Snapshot {
            raw,
            cert,
            key,
            ca,
            fingerprint: digest.finish().as_ref().to_vec(),
        })
    }

    fn build(&self, path: &Path) -> Result<WebSettings, WebConfigError> {
        let mut users = BTreeMap::new();
        for (user, hash) in self.raw.basic_auth_users.iter().flatten() {
            let field = format!("basic_auth_users.{user}");
            if user.is_empty() || user.contains(':') {
                return Err(invalid(
                    path,
                    &field,
                    format!("{user:?} is not a usable user name (empty or contains ':')"),
                ));
            }
            hash.parse::<bcrypt::HashParts>().map_err(|e| {
                invalid(path, &field, format!("{hash:?} is not a bcrypt hash ({e}); create one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"))
            })?;
            users.insert(user.clone(), hash.clone());
        }
        let tls = match &self.raw.tls_server_config {
            Some(raw) => Some(Arc::new(self.tls(path, raw)?)),
            None => None,
        };
        Ok(WebSettings { tls, users })
    }

    fn tls(&self, path: &Path, raw: &RawTls) -> Result<rustls::ServerConfig, WebConfigError> {
        let field = |name: &str| format!("tls_server_config.{name}");
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<_, _>>()
            .map_err(|e| {
                invalid(
                    path,
                    &field("cert_file"),
                    format!("{}: not PEM certificates: {e}", raw.cert_file.display()),
                )
            })?;
        if certs.is_empty() {
            return Err(invalid(
                path,
                &field("cert_file"),
                format!("{}: no certificate in the file", raw.cert_file.display()),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(|e| {
            invalid(
                path,
                &field("key_file"),
                format!("{}: no usable private key: {e}", raw.key_file.display()),
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let auth_type = raw
            .client_auth_type
            .unwrap_or(if raw.client_ca_file.is_some() {
                ClientAuthType::RequireAndVerifyClientCert
            } else {
                ClientAuthType::NoClientCert
            });
        let verifier = match (auth_type, &self.ca) {
            (ClientAuthType::NoClientCert, None) => WebPkiClientVerifier::no_client_auth(),
            (ClientAuthType::NoClientCert, Some(_)) => {
                return Err(invalid(
                    path,
                    &field("client_ca_file"),
                    "is set but client_auth_type is NoClientCert: use RequireAndVerifyClientCert or VerifyClientCertIfGiven",
                ));
            }
            (_, None) => {
                return Err(invalid(
                    path,
                    &field("client_ca_file"),
                    format!("is required with client_auth_type {auth_type:?}"),
                ));
            }
            (_, Some(ca)) => {
                let ca_name = raw
                    .client_ca_file
                    .as_deref()
                    .unwrap_or(Path::new(""))
                    .display();
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca) {
                    let cert = cert.map_err(|e| {
                        invalid(
                            path,
                            &field("client_ca_file"),
                            format!("{ca_name}: not PEM certificates: {e}"),
                        )
                    })?;
                    roots.add(cert).map_err(|e| {
                        invalid(path, &field("client_ca_file"), format!("{ca_name}: {e}"))
                    })?;
                }
                if roots.is_empty() {
                    return Err(invalid(
                        path,
                        &field("client_ca_file"),
                        format!("{ca_name}: no certificate in the file"),
                    ));
                }
                let builder =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let builder = if auth_type == ClientAuthType::VerifyClientCertIfGiven {
                    builder.allow_unauthenticated()
                } else {
                    builder
                };
                builder.build().map_err(|e| {
                    invalid(path, &field("client_ca_file"), format!("{ca_name}: {e}"))
                })?
            }
        };
        let min = raw.min_version.unwrap_or(TlsVersion::Tls12);
        let max = raw.max_version.unwrap_or(TlsVersion::Tls13);
        if min > max {
            return Err(invalid(
                path,
                &field("min_version"),
                format!("{min:?} is above max_version {max:?}"),
            ));
        }
        let mut versions = Vec::new();
        if min <= TlsVersion::Tls12 && max >= TlsVersion::Tls12 {
            versions.push(&rustls::version::TLS12);
        }
        if max >= TlsVersion::Tls13 {
            versions.push(&rustls::version::TLS13);
        }
        if versions.is_empty() {
            return Err(invalid(
                path,
                &field("max_version"),
                format!("{max:?}: TLS 1.2 is the oldest version offered"),
            ));
        }
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| invalid(path, &field("min_version"), e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| {
                invalid(
                    path,
                    &field("key_file"),
                    format!(
                        "{} does not fit {}: {e}",
                        raw.key_file.display(),
                        raw.cert_file.display()
                    ),
                )
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

#[cfg(test)]
mod tests;
