//! Native alerting: check results (through the monitor's observer hook) → alert conditions
//! → hysteresis (`for`, `keep_firing_for`) → Alertmanager API v2 and webhooks, with retries,
//! bounded queues and an [`AlertStore`] for what must survive a restart.
//!
//! Data flow: [`Alerting::check_applied`] evaluates the alerts of one check result and puts
//! them in the alerting task's inbox ([`inbox`]: the newest conditions per alert key, never
//! blocking the monitor); the task ([`engine`]) owns the [`lifecycle::Lifecycle`] and the
//! receivers' queues ([`delivery`]).

pub mod alertmanager;
mod chat_text;
pub mod delivery;
pub mod engine;
mod inbox;
pub mod ledger;
pub mod lifecycle;
pub mod pg_ledger;
pub mod rules;
pub mod sqlite;
#[cfg(test)]
mod tests;
pub mod transport;
pub mod webhook;

pub use engine::{Receiver, Runtime};
pub use ledger::{AlertRecord, AlertStore, MemoryAlertStore, StoreError};
pub use lifecycle::Clock;
pub use pg_ledger::PgAlertStore;
pub use rules::{AlertContent, AlertName, Condition};
pub use sqlite::SqliteAlertStore;

use crate::config::{AlertingConfig, WebhookConfig};
use crate::finding::{CheckKind, Severity};
use crate::metrics::Metrics;
use crate::monitor::{CheckUpdate, MonitorObserver};
use delivery::{QUEUE_CAPACITY, RetryPolicy};
use engine::Engine;
use inbox::Inbox;
use lifecycle::Timings;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;

/// What identifies an alert: one per alert name, domain, check and severity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlertKey {
    /// The alert.
    pub name: AlertName,
    /// The domain.
    pub domain: String,
    /// The check whose result raised it.
    pub check: CheckKind,
    /// Its severity (`MailDnsSpfLookupLimit` has two).
    pub severity: Severity,
}

/// Why alerting could not be set up (start-up or reload); the old settings stay.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A secret could not be read (the message names its file or variable, not its value).
    #[error("alerting: cannot read the secret in {source_name}: {reason}")]
    Secret {
        /// `file PATH` or `environment variable NAME`.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// A TLS file or the HTTP client could not be set up.
    #[error("alerting: TLS setup failed ({file}): {reason}")]
    Tls {
        /// The file involved.
        file: String,
        /// Why.
        reason: String,
    },
}

/// The URL links in alerts point at when `alerting.external_url` is not set: the listen
/// address, with the host name for a wildcard address (as Prometheus does).
pub fn default_external_url(listen: SocketAddr) -> String {
    let host = if listen.ip().is_unspecified() {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string())
    } else {
        match listen.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        }
    };
    format!("http://{host}:{}", listen.port())
}

/// Builds the timings and receivers of `config` (`None`: no `alerting:` section), reading
/// every secret and certificate now.
pub fn runtime(
    config: Option<&AlertingConfig>,
    default_external_url: &str,
) -> Result<Runtime, AlertError> {
    let disabled = AlertingConfig::disabled();
    let config = config.unwrap_or(&disabled);
    let external_url = config
        .external_url
        .clone()
        .unwrap_or_else(|| default_external_url.trim_end_matches('/').to_string());
    let mut alertmanagers = Vec::new();
    if !config.alertmanager_urls.is_empty() {
        let (client, auth) = transport::client(&config.alertmanager_client)?;
        for url in &config.alertmanager_urls {
            let target = alertmanager::AlertmanagerTarget::new(url, client.clone(), auth.clone());
            alertmanagers.push(Receiver {
                name: alertmanager_name(url),
                target: Arc::new(target),
            });
        }
    }
    let mut webhooks = Vec::new();
    for hook in &config.webhooks {
        webhooks.push(webhook_receiver(hook, &external_url)?);
    }
    Ok(Runtime {
        timings: Timings::new(config),
        resend_interval: config.resend_interval,
        external_url,
        alertmanagers,
        webhooks,
        retry: RetryPolicy::default(),
        queue_capacity: QUEUE_CAPACITY,
    })
}

/// `alertmanager/HOST:PORT`: the `receiver` label of an Alertmanager (no credentials, no path).
fn alertmanager_name(url: &str) -> String {
    let authority = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("alertmanager/{host}")
}

fn webhook_receiver(hook: &WebhookConfig, external_url: &str) -> Result<Receiver, AlertError> {
    let secret = hook
        .secret()
        .map(|s| transport::read_secret(&s))
        .transpose()?;
    let (client, _) = transport::client(&Default::default())?;
    let target = webhook::WebhookTarget {
        name: hook.name.clone(),
        format: hook.format,
        url: hook.url.clone(),
        secret,
        external_url: external_url.to_string(),
        language: hook.language,
        client,
    };
    Ok(Receiver {
        name: hook.name.clone(),
        target: Arc::new(target),
    })
}

/// The handle of the alerting task; observes the monitor.
pub struct Alerting {
    inbox: Arc<Inbox>,
    external_url: RwLock<Arc<str>>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Alerting {
    /// Starts the alerting task: restores the open incidents of `store` (for `domains`) and
    /// runs until `shutdown` fires.
    pub fn start(
        runtime: Runtime,
        clock: Clock,
        store: Arc<dyn AlertStore>,
        metrics: Arc<Metrics>,
        domains: BTreeSet<String>,
        shutdown: CancellationToken,
    ) -> Arc<Alerting> {
        for name in AlertName::ALL {
            metrics
                .alerts_firing
                .with_label_values(&[name.as_str()])
                .set(0);
        }
        let inbox = Arc::new(Inbox::new(
            metrics.alert_updates_queued.clone(),
            metrics.alert_updates_coalesced.clone(),
        ));
        let external_url: Arc<str> = runtime.external_url.as_str().into();
        let engine = Engine::new(runtime, clock, store, metrics, shutdown);
        let task = tokio::spawn(engine::run(engine, inbox.clone(), domains));
        Arc::new(Alerting {
            inbox,
            external_url: RwLock::new(external_url),
            task: std::sync::Mutex::new(Some(task)),
        })
    }

    /// Applies new settings (after a reload); `domains` are the watched ones now.
    pub fn reconfigure(&self, runtime: Runtime, domains: BTreeSet<String>) {
        *self.external_url.write().unwrap_or_else(|e| e.into_inner()) =
            runtime.external_url.as_str().into();
        self.inbox.reconfigure(runtime, domains);
    }

    /// Waits for the task to stop (after the shutdown token fired).
    pub async fn stopped(&self) {
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl MonitorObserver for Alerting {
    fn check_applied(&self, update: &CheckUpdate<'_>) {
        let external_url = self
            .external_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let conditions = rules::evaluate(update, &external_url);
        // Neither blocks nor grows with time: a task that is behind finds the newest
        // conditions per alert key (what `for` needs of the older ones included).
        self.inbox.update(conditions);
    }
}

impl Drop for Alerting {
    fn drop(&mut self) {
        self.inbox.close();
    }
}
