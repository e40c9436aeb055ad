//! SMTP TLS check: each MX host's STARTTLS and certificate, as a sending server sees them.
//! At most `defaults.smtp.max_hosts` hosts per domain, in preference order; every address of
//! a host (IPv4 and IPv6) on `defaults.smtp.port`: banner, `EHLO`, `STARTTLS`, the TLS
//! handshake, `QUIT`, each step within `defaults.smtp.timeout`.
//!
//! Decisions:
//! - a host is asked once per round however many domains use it: the check owns a
//!   [`RoundMemo`] keyed by (host, address), reused for half the asking domain's interval;
//!   its series (`maildrift_mx_starttls{host}`, the certificate's expiry) are keyed by host;
//! - an address that does not answer is unknown, never drift (port 25 is blocked in many
//!   clouds): `mx_smtp_unreachable` (info); when no host answers at all, the check is
//!   inconclusive. `defaults.smtp.enabled: false` turns the dialogue off;
//! - documentation addresses (RFC 5737, RFC 3849) are never dialled: no server answers
//!   there, and examples, demos and test zones use them; the records say so;
//! - severities follow what a sender does: with an MTA-STS policy in `enforce` mode a
//!   missing STARTTLS, an untrusted certificate or a wrong name loses mail (critical);
//!   without, senders fall back to opportunistic TLS (warning);
//! - the expectations are fixed (STARTTLS and a valid certificate on every MX host), so the
//!   check is always [`Check::declared`] with nothing to compare as a set: a certificate
//!   renewal is the `info` event `mx_tls_cert_changed`, never drift against a learned
//!   certificate.

mod certificate;
mod dialogue;
mod evaluate;
#[cfg(test)]
mod tests;

pub use certificate::{CertificateView, Trust, Verification, hex, sha256, spki, unix_seconds, utc};
pub use dialogue::{DialogueSettings, probe};
pub use evaluate::{HostMemory, Policy, SmtpTlsMemory, evaluate, policy_of};

use super::mx::Mx;
use super::round_memo::RoundMemo;
use super::{Check, Context, Evaluation, Input, SharedFamily};
use crate::config::{DomainConfig, SmtpSettings};
use crate::finding::CheckKind;
use futures::future::BoxFuture;
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// `maildrift_mx_tls_cert_not_after_timestamp_seconds{host}`: once per MX host.
pub static CERT_NOT_AFTER: SharedFamily = SharedFamily {
    name: "maildrift_mx_tls_cert_not_after_timestamp_seconds",
    help: "Expiry (notAfter) of the certificate an MX host presents after STARTTLS, in unix seconds; the earliest when its addresses differ.",
    labels: &["host"],
};

/// `maildrift_mx_starttls{host}`: once per MX host.
pub static STARTTLS: SharedFamily = SharedFamily {
    name: "maildrift_mx_starttls",
    help: "1 when every answering address of the MX host offers STARTTLS and completes the TLS handshake.",
    labels: &["host"],
};

/// What one address answered.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// No SMTP dialogue (refused, silent, not accepting mail): unknown.
    Unreachable {
        /// The step that failed ("connect", "banner", "EHLO", ...).
        step: &'static str,
        /// What happened.
        reason: String,
    },
    /// The server answered but offers no STARTTLS (or refuses it).
    NoStartTls {
        /// What it answered.
        reason: String,
    },
    /// STARTTLS accepted, the TLS handshake failed.
    HandshakeFailed {
        /// The TLS error.
        reason: String,
        /// The server speaks only TLS versions below 1.2.
        old_version: bool,
    },
    /// A TLS session: what it negotiated and presented.
    Tls(Box<TlsSession>),
}

/// A completed TLS handshake.
#[derive(Clone, Debug, Serialize)]
pub struct TlsSession {
    /// "TLSv1.3", "TLSv1.2".
    pub version: String,
    /// The cipher suite.
    pub cipher: String,
    /// The presented chain, end entity first.
    #[serde(skip)]
    pub chain: Vec<CertificateDer<'static>>,
    /// The end-entity certificate, or why it does not parse.
    pub certificate: Result<CertificateView, String>,
    /// How it verifies.
    pub verification: Verification,
}

/// One address of one MX host, asked once per round.
#[derive(Clone, Debug, Serialize)]
pub struct AddressProbe {
    /// The MX host (the TLS server name).
    pub host: String,
    /// The address and port asked.
    pub address: SocketAddr,
    /// What it answered.
    pub outcome: ProbeOutcome,
}

/// The addresses of one MX host and what each answered.
#[derive(Clone, Debug)]
pub struct HostProbes {
    /// The MX host.
    pub host: String,
    /// One probe per address, shared with every domain using the host this round.
    pub addresses: Vec<Arc<AddressProbe>>,
    /// Documentation addresses of the host, not dialled.
    pub not_asked: Vec<IpAddr>,
    /// Why its addresses are unknown (their lookup failed).
    pub unknown: Option<String>,
}

/// What the check saw of a domain's MX hosts.
#[derive(Clone, Debug)]
pub struct SmtpTlsObservation {
    /// The domain, normalised.
    pub domain: String,
    /// False when `defaults.smtp.enabled` is off.
    pub enabled: bool,
    /// The hosts asked, in preference order; an error when the MX hosts are unknown.
    pub result: Result<Vec<HostProbes>, String>,
    /// MX hosts beyond `max_hosts`, not asked.
    pub skipped: Vec<String>,
}

impl SmtpTlsObservation {
    /// The TLS sessions seen of `host` (for DANE), by address.
    pub fn sessions(&self, host: &str) -> Vec<(&AddressProbe, &TlsSession)> {
        let Ok(hosts) = &self.result else {
            return Vec::new();
        };
        hosts
            .iter()
            .filter(|h| h.host == host)
            .flat_map(|h| &h.addresses)
            .filter_map(|p| match &p.outcome {
                ProbeOutcome::Tls(session) => Some((p.as_ref(), session.as_ref())),
                _ => None,
            })
            .collect()
    }

    /// The probes of `host` (for DANE), when it was asked.
    pub fn host(&self, host: &str) -> Option<&HostProbes> {
        self.result.as_ref().ok()?.iter().find(|h| h.host == host)
    }
}

/// The SMTP TLS check. It keeps, across rounds, the dialogues of this round by (host,
/// address), shared by every domain.
#[derive(Debug, Default)]
pub struct SmtpTls {
    /// This round's dialogues.
    probes: RoundMemo<(String, SocketAddr), AddressProbe>,
}

impl SmtpTls {
    /// How many SMTP dialogues were started so far (one per host address per round).
    pub fn dialogues(&self) -> u64 {
        self.probes.started()
    }
}

/// Longest reuse of a dialogue, however long the asking domain's interval: the domains of a
/// round are checked within minutes of each other (jitter is 5 % of the interval).
pub const MAX_ROUND_AGE: Duration = Duration::from_secs(600);

/// How long one dialogue's result serves the domains of a round: half the asking domain's
/// interval (so never its next run), at most [`MAX_ROUND_AGE`].
pub fn round_max_age(config: &DomainConfig) -> Duration {
    (config.interval / 2).min(MAX_ROUND_AGE)
}

impl Check for SmtpTls {
    const KIND: CheckKind = CheckKind::SmtpTls;
    type Observation = SmtpTlsObservation;
    type Memory = SmtpTlsMemory;
    const NEEDS: &'static [CheckKind] = &[CheckKind::Mx, CheckKind::MtaSts];
    const SHARED_FAMILIES: &'static [&'static SharedFamily] = &[&CERT_NOT_AFTER, &STARTTLS];

    fn declared(&self, _config: &DomainConfig) -> bool {
        true
    }

    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, SmtpTlsObservation> {
        Box::pin(async move {
            let settings = &ctx.config.analysis.smtp;
            let mut observation = SmtpTlsObservation {
                domain: ctx.domain().to_owned(),
                enabled: settings.enabled,
                result: Ok(Vec::new()),
                skipped: Vec::new(),
            };
            if !settings.enabled {
                return observation;
            }
            let Some(mx) = ctx.observed::<Mx>().await else {
                observation.result = Err("the MX observation is missing".to_owned());
                return observation;
            };
            let set = match &mx.result {
                Ok(set) => set,
                Err(error) => {
                    observation.result = Err(format!("MX hosts unknown: {error}"));
                    return observation;
                }
            };
            let max_age = round_max_age(ctx.config);
            let asked = set.hosts.iter().take(settings.max_hosts);
            let hosts = asked.map(|host| async move {
                let (not_asked, dialled): (Vec<IpAddr>, Vec<IpAddr>) =
                    host.addresses.iter().partition(|ip| documentation(**ip));
                let probes = dialled.into_iter().map(|ip| {
                    let address = SocketAddr::new(ip, settings.port);
                    let key = (host.name.clone(), address);
                    let name = host.name.clone();
                    self.probes.get(key, max_age, move || {
                        probe(name, address, dialogue_settings(settings))
                    })
                });
                HostProbes {
                    host: host.name.clone(),
                    addresses: futures::future::join_all(probes).await,
                    not_asked,
                    unknown: host.error.clone(),
                }
            });
            observation.result = Ok(futures::future::join_all(hosts).await);
            observation.skipped = set
                .hosts
                .iter()
                .skip(settings.max_hosts)
                .map(|h| h.name.clone())
                .collect();
            observation
        })
    }

    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &SmtpTlsObservation,
        input: Input<'_, SmtpTlsMemory>,
    ) -> Evaluation<SmtpTlsMemory> {
        let mta_sts = ctx.observation::<super::mta_sts::MtaSts>();
        let policy = mta_sts.as_deref().and_then(policy_of);
        let now = unix_seconds(ctx.now());
        evaluate(
            observation,
            &ctx.config.analysis.smtp,
            policy,
            input.memory,
            now,
        )
    }
}

/// Whether `ip` is reserved for documentation (RFC 5737: 192.0.2.0/24, 198.51.100.0/24,
/// 203.0.113.0/24; RFC 3849: 2001:db8::/32): no SMTP server can answer there.
pub fn documentation(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => matches!(
            v4.octets(),
            [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _]
        ),
        IpAddr::V6(v6) => v6.segments()[..2] == [0x2001, 0x0db8],
    }
}

fn dialogue_settings(settings: &SmtpSettings) -> DialogueSettings {
    DialogueSettings {
        timeout: settings.timeout,
        helo_name: settings.helo_name.clone(),
        ca_file: settings.ca_file.clone(),
    }
}
