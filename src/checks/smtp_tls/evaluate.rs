//! The SMTP TLS judgement, a pure function of the dialogues, the domain's MTA-STS policy,
//! what the previous run remembered and the time: findings, the records shown, the
//! per-host series and the fingerprints the next run compares.

use super::{
    AddressProbe, CERT_NOT_AFTER, CertificateView, HostProbes, ProbeOutcome, STARTTLS,
    SmtpTlsObservation, TlsSession, Trust, utc,
};
use crate::checks::mta_sts::policy::mx_matches;
use crate::checks::mta_sts::{MtaStsObservation, PolicyOutcome, StsMode};
use crate::checks::{Evaluation, RecordObservation, SharedValues};
use crate::config::SmtpSettings;
use crate::finding::{Finding, FindingCode, Severity};
use std::collections::BTreeMap;

/// Inside this many seconds of its expiry a certificate is critical.
const CRITICAL_WINDOW: i64 = 7 * 86_400;

/// What a run remembers of each MX host (for `mx_tls_cert_changed`, and the host's series
/// while it does not answer).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmtpTlsMemory {
    /// By host.
    pub hosts: BTreeMap<String, HostMemory>,
}

/// The last conclusive view of one host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostMemory {
    /// SHA-256 of each certificate its addresses presented, sorted.
    pub fingerprints: Vec<String>,
    /// The earliest `notAfter` among them.
    pub not_after: Option<i64>,
    /// Whether every answering address completed STARTTLS.
    pub starttls: bool,
}

/// An MTA-STS policy senders apply (`testing` or `enforce`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Its mode.
    pub mode: StsMode,
    /// Its `mx:` patterns.
    pub patterns: Vec<String>,
}

impl Policy {
    /// The severity of a TLS failure under this policy (None: no policy).
    fn severity(policy: Option<&Policy>) -> Severity {
        match policy {
            Some(p) if p.mode == StsMode::Enforce => Severity::Critical,
            _ => Severity::Warning,
        }
    }
}

/// The policy of an MTA-STS observation, when senders apply one.
pub fn policy_of(observation: &MtaStsObservation) -> Option<Policy> {
    match &observation.result.as_ref().ok()?.policy {
        Some(PolicyOutcome::Policy(policy)) if policy.mode != StsMode::None => Some(Policy {
            mode: policy.mode,
            patterns: policy.mx.clone(),
        }),
        _ => None,
    }
}

/// Whether a certificate name (maybe `*.x`) and an `mx:` pattern (maybe `*.x`) can name
/// the same host.
fn name_matches_pattern(name: &str, pattern: &str) -> bool {
    name == pattern || mx_matches(pattern, name) || mx_matches(name, pattern)
}

fn label(probe: &AddressProbe) -> String {
    format!(
        "{} [{}]:{}",
        probe.host,
        probe.address.ip(),
        probe.address.port()
    )
}

fn record(probe: &AddressProbe) -> String {
    let what = match &probe.outcome {
        ProbeOutcome::Unreachable { step, reason } => format!("unreachable at {step} ({reason})"),
        ProbeOutcome::NoStartTls { reason } => format!("no STARTTLS ({reason})"),
        ProbeOutcome::HandshakeFailed { reason, .. } => format!("TLS handshake failed ({reason})"),
        ProbeOutcome::Tls(session) => match &session.certificate {
            Ok(cert) => format!(
                "{} {}; subject {}; names {}; issuer {}; not after {}; sha256 {}",
                session.version,
                session.cipher,
                cert.subject,
                cert.names.join(" "),
                cert.issuer,
                utc(cert.not_after),
                cert.sha256
            ),
            Err(error) => format!("{} {}; {error}", session.version, session.cipher),
        },
    };
    format!("{}: {what}", label(probe))
}

/// One distinct certificate of a host and the addresses that presented it.
struct Presented<'a> {
    cert: &'a CertificateView,
    session: &'a TlsSession,
    addresses: Vec<String>,
}

/// Everything judged about one host that answered.
struct HostJudgement<'a> {
    host: &'a str,
    policy: Option<&'a Policy>,
    settings: &'a SmtpSettings,
    now: i64,
    findings: Vec<Finding>,
}

impl HostJudgement<'_> {
    fn finding(&self, code: FindingCode, severity: Severity, message: String) -> Finding {
        Finding::new(code, severity, message).with("host", self.host)
    }

    fn with_policy(&self, finding: Finding) -> Finding {
        match self.policy {
            Some(p) => finding
                .with("mta_sts_mode", p.mode)
                .with("mta_sts_patterns", &p.patterns),
            None => finding,
        }
    }

    fn consequence(&self) -> &'static str {
        match self.policy.map(|p| p.mode) {
            Some(StsMode::Enforce) => "senders enforcing its MTA-STS policy do not deliver to it",
            Some(_) => "senders report it through TLS-RPT (MTA-STS testing mode)",
            None => "senders fall back to unauthenticated TLS or plain text",
        }
    }

    fn no_tls(&mut self, failures: &[(&AddressProbe, String, bool)]) {
        let severity = Policy::severity(self.policy);
        let (old, missing): (Vec<_>, Vec<_>) = failures.iter().partition(|(_, _, old)| *old);
        if !missing.is_empty() {
            let servers: Vec<String> = missing.iter().map(|(p, _, _)| label(p)).collect();
            let reasons: Vec<&str> = missing.iter().map(|(_, r, _)| r.as_str()).collect();
            let message = format!(
                "MX host {} gives no TLS session ({}): {}",
                self.host,
                reasons.join("; "),
                self.consequence()
            );
            let finding = self
                .finding(FindingCode::MxStarttlsMissing, severity, message)
                .with("server", &servers)
                .with("reasons", &reasons);
            let finding = self.with_policy(finding);
            self.findings.push(finding);
        }
        if !old.is_empty() {
            let servers: Vec<String> = old.iter().map(|(p, _, _)| label(p)).collect();
            let message = format!(
                "MX host {} speaks only TLS versions below 1.2, which current senders refuse",
                self.host
            );
            let finding = self
                .finding(FindingCode::MxTlsOldVersion, Severity::Warning, message)
                .with("server", &servers);
            self.findings.push(finding);
        }
    }

    fn expiry(&self, cert: &CertificateView) -> Option<(FindingCode, Severity, String)> {
        let left = cert.seconds_left(self.now);
        if left <= 0 {
            return Some((
                FindingCode::MxTlsCertExpired,
                Severity::Critical,
                format!(
                    "the certificate of MX host {} expired {} days ago ({})",
                    self.host,
                    (-left).div_euclid(86_400),
                    utc(cert.not_after)
                ),
            ));
        }
        let severity = if left < CRITICAL_WINDOW {
            Severity::Critical
        } else if left < self.settings.cert_warning.as_secs() as i64 {
            Severity::Warning
        } else {
            return None;
        };
        Some((
            FindingCode::MxTlsCertExpiring,
            severity,
            format!(
                "the certificate of MX host {} expires in {} days ({})",
                self.host,
                (left + 86_399).div_euclid(86_400),
                utc(cert.not_after)
            ),
        ))
    }

    fn name_problem(&self, presented: &Presented<'_>) -> Option<String> {
        let names = &presented.cert.names;
        match (&presented.session.verification.host_name, self.policy) {
            (Err(why), _) => Some(why.clone()),
            (Ok(()), Some(policy))
                if !names
                    .iter()
                    .any(|n| policy.patterns.iter().any(|p| name_matches_pattern(n, p))) =>
            {
                Some(format!(
                    "no name of the certificate ({}) matches an mx: pattern of the MTA-STS policy ({})",
                    names.join(", "),
                    policy.patterns.join(", ")
                ))
            }
            _ => None,
        }
    }

    fn certificate(&mut self, presented: &Presented<'_>) {
        let cert = presented.cert;
        let evidence = |f: Finding| {
            f.with("server", &presented.addresses)
                .with("not_after", utc(cert.not_after))
                .with("subject", &cert.subject)
                .with("issuer", &cert.issuer)
                .with("names", &cert.names)
                .with("sha256", &cert.sha256)
        };
        if let Some((code, severity, message)) = self.expiry(cert) {
            let finding = evidence(self.finding(code, severity, message))
                .with("expires_in_seconds", cert.seconds_left(self.now));
            self.findings.push(finding);
        }
        let severity = Policy::severity(self.policy);
        if let Trust::Untrusted(why) = &presented.session.verification.trust {
            let message = format!(
                "the certificate of MX host {} is not trusted: {why}; {}",
                self.host,
                self.consequence()
            );
            let finding =
                evidence(self.finding(FindingCode::MxTlsCertUntrusted, severity, message));
            let finding = self.with_policy(finding);
            self.findings.push(finding);
        }
        if let Some(why) = self.name_problem(presented) {
            let message = format!(
                "the certificate of MX host {} does not fit its name: {why}; {}",
                self.host,
                self.consequence()
            );
            let finding = evidence(self.finding(FindingCode::MxTlsNameMismatch, severity, message));
            let finding = self.with_policy(finding);
            self.findings.push(finding);
        }
    }
}

/// What one answering host contributes.
struct HostOutcome {
    memory: HostMemory,
    findings: Vec<Finding>,
}

fn judge_host(
    host: &HostProbes,
    answered: &[&AddressProbe],
    settings: &SmtpSettings,
    policy: Option<&Policy>,
    now: i64,
) -> HostOutcome {
    let mut judgement = HostJudgement {
        host: &host.host,
        policy,
        settings,
        now,
        findings: Vec::new(),
    };
    let silent: Vec<String> = host
        .addresses
        .iter()
        .filter(|p| matches!(p.outcome, ProbeOutcome::Unreachable { .. }))
        .map(|p| record(p))
        .collect();
    if !silent.is_empty() {
        let message = format!(
            "{} of {} addresses of MX host {} did not answer SMTP: unknown, not judged",
            silent.len(),
            host.addresses.len(),
            host.host
        );
        let finding = judgement
            .finding(FindingCode::MxSmtpUnreachable, Severity::Info, message)
            .with("unanswered", &silent);
        judgement.findings.push(finding);
    }
    let mut failures = Vec::new();
    let mut presented: Vec<Presented<'_>> = Vec::new();
    for probe in answered {
        match &probe.outcome {
            ProbeOutcome::NoStartTls { reason } => failures.push((*probe, reason.clone(), false)),
            ProbeOutcome::HandshakeFailed {
                reason,
                old_version,
            } => failures.push((
                *probe,
                format!("TLS handshake failed: {reason}"),
                *old_version,
            )),
            ProbeOutcome::Tls(session) => match &session.certificate {
                Ok(cert) => match presented.iter_mut().find(|p| p.cert.sha256 == cert.sha256) {
                    Some(known) => known.addresses.push(label(probe)),
                    None => presented.push(Presented {
                        cert,
                        session,
                        addresses: vec![label(probe)],
                    }),
                },
                Err(error) => failures.push((*probe, error.clone(), false)),
            },
            ProbeOutcome::Unreachable { .. } => {}
        }
    }
    judgement.no_tls(&failures);
    for cert in &presented {
        judgement.certificate(cert);
    }
    let mut fingerprints: Vec<String> = presented.iter().map(|p| p.cert.sha256.clone()).collect();
    fingerprints.sort();
    HostOutcome {
        memory: HostMemory {
            fingerprints,
            not_after: presented.iter().map(|p| p.cert.not_after).min(),
            starttls: failures.is_empty(),
        },
        findings: judgement.findings,
    }
}

fn changed(host: &str, before: &HostMemory, now: &HostMemory) -> Option<Finding> {
    if before.fingerprints.is_empty()
        || now.fingerprints.is_empty()
        || before.fingerprints == now.fingerprints
    {
        return None;
    }
    let expiry = now.not_after.map(utc).unwrap_or_default();
    Some(
        Finding::new(
            FindingCode::MxTlsCertChanged,
            Severity::Info,
            format!("MX host {host} presents a new certificate (not after {expiry})"),
        )
        .with("host", host)
        .with("from", &before.fingerprints)
        .with("to", &now.fingerprints),
    )
}

/// The host's series. A host without a certificate still names the family (with no
/// sample), so that its earlier expiry leaves the table.
fn shared(host: &str, memory: &HostMemory) -> Vec<SharedValues> {
    let labels = || vec![host.to_owned().into()];
    vec![
        SharedValues {
            family: &STARTTLS,
            object: host.to_owned(),
            samples: vec![(labels(), f64::from(u8::from(memory.starttls)))],
        },
        SharedValues {
            family: &CERT_NOT_AFTER,
            object: host.to_owned(),
            samples: memory
                .not_after
                .map(|t| (labels(), t as f64))
                .into_iter()
                .collect(),
        },
    ]
}

/// Judges `observation`: `policy` is the domain's MTA-STS policy when senders apply one,
/// `previous` the last run's memory, `now` unix seconds.
pub fn evaluate(
    observation: &SmtpTlsObservation,
    settings: &SmtpSettings,
    policy: Option<Policy>,
    previous: Option<&SmtpTlsMemory>,
    now: i64,
) -> Evaluation<SmtpTlsMemory> {
    // Every run names both families, so that hosts the domain no longer uses (or every host,
    // when it has none or the dialogue is off) leave its series.
    let mut series = vec![
        SharedValues::none(&STARTTLS),
        SharedValues::none(&CERT_NOT_AFTER),
    ];
    if !observation.enabled {
        let values = vec!["not asked (defaults.smtp.enabled: false)".to_owned()];
        let records = vec![RecordObservation::new("smtp_tls", values, None)];
        let mut evaluation = Evaluation::conclusive(records, Vec::new());
        evaluation.shared = series;
        return evaluation;
    }
    let hosts = match &observation.result {
        Ok(hosts) => hosts,
        Err(error) => return Evaluation::inconclusive(error),
    };
    let mut values = Vec::new();
    let mut findings = Vec::new();
    let mut memory = SmtpTlsMemory::default();
    let mut unanswered = Vec::new();
    let mut silent_hosts = Vec::new();
    let mut answering_hosts = 0;
    for host in hosts {
        values.extend(host.addresses.iter().map(|p| record(p)));
        values.extend(host.not_asked.iter().map(|ip| {
            format!(
                "{} [{ip}]: not asked (a documentation address: no server answers there)",
                host.host
            )
        }));
        let answered: Vec<&AddressProbe> = host
            .addresses
            .iter()
            .map(AsRef::as_ref)
            .filter(|p| !matches!(p.outcome, ProbeOutcome::Unreachable { .. }))
            .collect();
        let before = previous.and_then(|m| m.hosts.get(&host.host));
        if let Some(error) = &host.unknown {
            values.push(format!("{}: addresses unknown ({error})", host.host));
        }
        if answered.is_empty() {
            unanswered.extend(host.addresses.iter().map(|p| record(p)));
            if let Some(error) = &host.unknown {
                unanswered.push(format!("{}: {error}", host.host));
            }
            // A host with documentation addresses only was not asked: nothing to report.
            if !host.addresses.is_empty() || host.unknown.is_some() {
                silent_hosts.push(host.host.as_str());
            }
            // The last known series stay while the host does not answer.
            if let Some(before) = before {
                memory.hosts.insert(host.host.clone(), before.clone());
                series.extend(shared(&host.host, before));
            }
            continue;
        }
        answering_hosts += 1;
        let outcome = judge_host(host, &answered, settings, policy.as_ref(), now);
        findings.extend(outcome.findings);
        if let Some(finding) = before.and_then(|b| changed(&host.host, b, &outcome.memory)) {
            findings.push(finding);
        }
        series.extend(shared(&host.host, &outcome.memory));
        memory.hosts.insert(host.host.clone(), outcome.memory);
    }
    if answering_hosts == 0 && !unanswered.is_empty() {
        return Evaluation::inconclusive(format!(
            "no MX host of {} answered SMTP on port {} (mx_smtp_unreachable: unknown, not judged): {}",
            observation.domain,
            settings.port,
            unanswered.join("; ")
        ));
    }
    for host in silent_hosts {
        findings.push(
            Finding::new(
                FindingCode::MxSmtpUnreachable,
                Severity::Info,
                format!(
                    "MX host {host} did not answer SMTP on port {}: unknown, not judged",
                    settings.port
                ),
            )
            .with("host", host),
        );
    }
    values.extend(
        observation
            .skipped
            .iter()
            .map(|h| format!("{h}: not asked (beyond defaults.smtp.max_hosts)")),
    );
    values.sort();
    let records = vec![RecordObservation::new("smtp_tls", values, None)];
    let mut evaluation = Evaluation::conclusive(records, findings).with_memory(Some(memory));
    evaluation.shared = series;
    evaluation
}
