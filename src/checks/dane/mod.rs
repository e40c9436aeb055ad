//! DANE check (RFC 7672): the TLSA records at `_25._tcp.<mx host>` of each MX host the
//! `smtp_tls` check asks, accepted only when DNSSEC-validated (the DNSSEC check's
//! validation, [`crate::checks::dnssec::judge`]), matched with the chain each address of the
//! host presented.
//!
//! Decisions:
//! - a host without TLSA records does not use DANE: nothing to report;
//! - `dane_tlsa_unsigned` (warning): TLSA records that do not validate as secure (unsigned
//!   zone, or no DS at the parent) are ignored by senders; `dane_tlsa_bogus` (critical):
//!   signatures that do not validate make validating senders defer the mail;
//! - `dane_tlsa_mismatch` (critical): a secure TLSA set that matches no certificate an
//!   address presents (or an address without TLS): DANE senders defer every message;
//! - `dane_rollover_unsafe` (warning): the end-entity certificate expires within
//!   `defaults.smtp.cert_warning` and every usable record names it (DANE-EE), so nothing
//!   covers its successor: publish the next key's TLSA before the switch;
//! - the TLSA records are the check's record values (a changed TLSA set is drift against the
//!   learned baseline); a host's TLSA answer is asked once per round, shared by every domain;
//! - a host at or below the domain's own zone when the DNSSEC check saw that zone unsigned
//!   (no DNSKEY, no signature) is not asked: nothing below an unsigned zone validates, so
//!   senders never use its TLSA records (RFC 7672 §2.2) and DANE does not apply to it. Most
//!   company zones are unsigned with their MX hosts in them: two questions fewer per domain.
//!   Such a host's TLSA records are therefore not reported as `dane_tlsa_unsigned`; hosts in
//!   other zones (a provider's) are asked as before, once per round.

#[cfg(test)]
mod tests;
mod tlsa;

pub use tlsa::{DANE_EE, DANE_TA, Matched, TlsaRecord, match_chain};

use super::dnssec::{self, Dnssec, SignedSet, Verdict, ZoneKeys};
use super::mx::Mx;
use super::round_memo::RoundMemo;
use super::smtp_tls::{ProbeOutcome, SmtpTls, SmtpTlsObservation, round_max_age, unix_seconds};
use super::{Check, Context, Evaluation, Input, RecordObservation};
use crate::dns::{DnsError, SignedQuestions};
use crate::finding::{CheckKind, Finding, FindingCode, Severity};
use futures::future::BoxFuture;
use hickory_proto::rr::{Name, RData, RecordType};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The TLSA set of one host and what validates it.
#[derive(Clone, Debug)]
pub struct TlsaSet {
    /// The records, sorted.
    pub records: Vec<TlsaRecord>,
    /// Their TTL.
    pub ttl: u32,
    /// The signed set (for the DNSSEC judgement).
    pub set: SignedSet,
    /// The keys of the zone that signed it.
    pub keys: ZoneKeys,
}

/// A host's TLSA answer: `None` when it has no TLSA records.
pub type TlsaLookup = Result<Option<TlsaSet>, DnsError>;

/// One MX host and its TLSA answer.
#[derive(Clone, Debug)]
pub struct HostTlsa {
    /// The MX host.
    pub host: String,
    /// Its TLSA answer, shared by every domain using the host this round (`Ok(None)`, not
    /// asked, when the host is in an unsigned zone).
    pub lookup: Arc<TlsaLookup>,
    /// The unsigned zone the host is in, when that is why it was not asked.
    pub unsigned_zone: Option<String>,
}

/// What the DANE check saw.
#[derive(Clone, Debug)]
pub struct DaneObservation {
    /// The domain, normalised.
    pub domain: String,
    /// The hosts asked, or why none could be.
    pub result: Result<Vec<HostTlsa>, String>,
}

/// (TLSA owner name, servers asked, whether they recurse).
type LookupKey = (String, Vec<SocketAddr>, bool);

/// The DANE check. It keeps this round's TLSA answers, shared by every domain.
#[derive(Debug, Default)]
pub struct Dane {
    lookups: RoundMemo<LookupKey, TlsaLookup>,
}

/// The TLSA owner name of an MX host.
pub fn tlsa_name(host: &str) -> String {
    format!("_25._tcp.{host}")
}

/// Asks the TLSA set of `host` and, when there is one, the keys that sign it.
pub async fn lookup(servers: &SignedQuestions, host: &str) -> TlsaLookup {
    let owner = tlsa_name(host);
    let parse = |text: &str| {
        Name::from_ascii(format!("{text}.")).map_err(|e| DnsError::InvalidName {
            name: text.to_owned(),
            reason: e.to_string(),
        })
    };
    let name = parse(&owner)?;
    let Some(set) = dnssec::signed_set(servers, &name, RecordType::TLSA).await? else {
        return Ok(None);
    };
    let keys = dnssec::zone_keys(servers, std::slice::from_ref(&set), &parse(host)?).await?;
    let mut records: Vec<TlsaRecord> = set
        .records
        .iter()
        .filter_map(|r| match &r.data {
            RData::TLSA(tlsa) => Some(TlsaRecord {
                usage: tlsa.cert_usage.into(),
                selector: tlsa.selector.into(),
                matching: tlsa.matching.into(),
                data: tlsa.cert_data.clone(),
            }),
            _ => None,
        })
        .collect();
    records.sort();
    let ttl = set.records.iter().map(|r| r.ttl).min().unwrap_or(0);
    Ok(Some(TlsaSet {
        records,
        ttl,
        set,
        keys,
    }))
}

impl Check for Dane {
    const KIND: CheckKind = CheckKind::Dane;
    type Observation = DaneObservation;
    type Memory = ();
    const NEEDS: &'static [CheckKind] = &[CheckKind::Mx, CheckKind::SmtpTls];

    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, DaneObservation> {
        Box::pin(async move {
            let domain = ctx.domain().to_owned();
            let result = self.observe_hosts(ctx).await;
            DaneObservation { domain, result }
        })
    }

    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &DaneObservation,
        _input: Input<'_, ()>,
    ) -> Evaluation<()> {
        let Some(smtp) = ctx.observation::<SmtpTls>() else {
            return Evaluation::inconclusive("the SMTP TLS observation is missing");
        };
        let now = unix_seconds(ctx.now());
        evaluate(
            observation,
            &smtp,
            ctx.config.analysis.smtp.cert_warning,
            now,
        )
    }
}

impl Dane {
    async fn observe_hosts(&self, ctx: &Context<'_>) -> Result<Vec<HostTlsa>, String> {
        let mx = ctx
            .observed::<Mx>()
            .await
            .ok_or("the MX observation is missing")?;
        let set = mx
            .result
            .as_ref()
            .map_err(|e| format!("MX hosts unknown: {e}"))?;
        let servers = ctx
            .dns
            .signed
            .clone()
            .ok_or("no server to ask DNSSEC questions")?;
        let max_age = round_max_age(ctx.config);
        // Not in NEEDS: without the DNSSEC observation (skipped, timed out) every host is
        // asked.
        let unsigned = ctx
            .observed::<Dnssec>()
            .await
            .and_then(|o| dnssec::unsigned_zone(&o));
        let hosts = set
            .hosts
            .iter()
            .take(ctx.config.analysis.smtp.max_hosts)
            .map(|host| {
                let unsigned_zone = unsigned
                    .as_ref()
                    .filter(|zone| crate::dns::at_or_below(&host.name, zone))
                    .cloned();
                let servers = servers.clone();
                let key = (
                    tlsa_name(&host.name),
                    servers.servers().to_vec(),
                    servers.recursive(),
                );
                let name = host.name.clone();
                async move {
                    let lookup = match unsigned_zone {
                        Some(_) => Arc::new(Ok(None)),
                        None => {
                            self.lookups
                                .get(key, max_age, move || async move {
                                    lookup(&servers, &name).await
                                })
                                .await
                        }
                    };
                    HostTlsa {
                        host: host.name.clone(),
                        lookup,
                        unsigned_zone,
                    }
                }
            });
        Ok(futures::future::join_all(hosts).await)
    }
}

fn finding(code: FindingCode, severity: Severity, host: &str, message: String) -> Finding {
    Finding::new(code, severity, message)
        .with("host", host)
        .with("tlsa_name", tlsa_name(host))
}

/// Judges the TLSA sets against the chains of `smtp` at `now` (unix seconds); `window` is
/// how long before its expiry a certificate is about to be replaced.
pub fn evaluate(
    observation: &DaneObservation,
    smtp: &SmtpTlsObservation,
    window: Duration,
    now: i64,
) -> Evaluation<()> {
    let hosts = match &observation.result {
        Ok(hosts) => hosts,
        Err(error) => return Evaluation::inconclusive(error),
    };
    let mut values = Vec::new();
    let mut findings = Vec::new();
    let mut ttl: Option<u32> = None;
    for host in hosts {
        let set = match host.lookup.as_ref() {
            Err(error) => return Evaluation::inconclusive(error),
            Ok(None) => continue,
            Ok(Some(set)) => set,
        };
        ttl = Some(ttl.map_or(set.ttl, |t| t.min(set.ttl)));
        values.extend(set.records.iter().map(|r| format!("{} {r}", host.host)));
        let shown: Vec<String> = set.records.iter().map(ToString::to_string).collect();
        let verdict = dnssec::judge(std::slice::from_ref(&set.set), &set.keys, now as u64, 0);
        match &verdict {
            Verdict::Unsigned | Verdict::Island => {
                let why = if verdict == Verdict::Unsigned {
                    "its zone is not signed"
                } else {
                    "its zone is signed but the parent publishes no DS"
                };
                findings.push(
                    finding(
                        FindingCode::DaneTlsaUnsigned,
                        Severity::Warning,
                        &host.host,
                        format!("the TLSA records of MX host {} are not DNSSEC-validated ({why}): senders ignore them", host.host),
                    )
                    .with("tlsa", &shown),
                );
            }
            Verdict::Bogus(problems) => findings.push(
                finding(
                    FindingCode::DaneTlsaBogus,
                    Severity::Critical,
                    &host.host,
                    format!("the TLSA records of MX host {} do not validate ({}): validating senders defer mail to it", host.host, problems.join("; ")),
                )
                .with("tlsa", &shown),
            ),
            Verdict::Secure { .. } => {
                findings.extend(match_host(&host.host, set, smtp, window, now));
            }
        }
    }
    values.sort();
    let records = vec![RecordObservation::new("dane", values, ttl)];
    Evaluation::conclusive(records, findings)
}

/// The findings of one host with a secure TLSA set.
fn match_host(
    host: &str,
    set: &TlsaSet,
    smtp: &SmtpTlsObservation,
    window: Duration,
    now: i64,
) -> Vec<Finding> {
    let shown: Vec<String> = set.records.iter().map(ToString::to_string).collect();
    let Some(probes) = smtp.host(host) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut rollover = Vec::new();
    for probe in &probes.addresses {
        let server = format!("{} [{}]:{}", host, probe.address.ip(), probe.address.port());
        let session = match &probe.outcome {
            ProbeOutcome::Unreachable { .. } => continue,
            ProbeOutcome::NoStartTls { reason } | ProbeOutcome::HandshakeFailed { reason, .. } => {
                out.push(
                    finding(
                        FindingCode::DaneTlsaMismatch,
                        Severity::Critical,
                        host,
                        format!("MX host {host} publishes TLSA records but gives no TLS session ({reason}): DANE senders defer every message"),
                    )
                    .with("server", &server)
                    .with("tlsa", &shown),
                );
                continue;
            }
            ProbeOutcome::Tls(session) => session,
        };
        let current = session
            .chain
            .first()
            .and_then(TlsaRecord::dane_ee_311)
            .map(|r| r.to_string());
        match match_chain(&set.records, &session.chain, host, now) {
            Err(why) => out.push(
                finding(
                    FindingCode::DaneTlsaMismatch,
                    Severity::Critical,
                    host,
                    format!("the TLSA records of MX host {host} match no certificate it presents ({why}): DANE senders defer every message"),
                )
                .with("server", &server)
                .with("tlsa", &shown)
                .with("presented_3_1_1", &current),
            ),
            Ok(Matched::TrustAnchor) => {}
            Ok(Matched::EndEntity) => {
                let Ok(cert) = &session.certificate else {
                    continue;
                };
                let leaf = &session.chain[0];
                let spare = set
                    .records
                    .iter()
                    .any(|r| r.usable() && !r.associates(leaf));
                let left = cert.not_after - now;
                if !spare && left < window.as_secs() as i64 {
                    rollover.push((server, (left + 86_399).div_euclid(86_400), current));
                }
            }
        }
    }
    if let Some((_, days, current)) = rollover.first() {
        let servers: Vec<&String> = rollover.iter().map(|(s, _, _)| s).collect();
        out.push(
            finding(
                FindingCode::DaneRolloverUnsafe,
                Severity::Warning,
                host,
                format!("the certificate of MX host {host} expires in {days} days and its TLSA records name only the current one: publish the TLSA record of the next key before the switch, or DANE senders defer mail after it (unless the new certificate keeps the key of a 3 1 x record)"),
            )
            .with("server", &servers)
            .with("tlsa", &shown)
            .with("presented_3_1_1", current),
        );
    }
    out
}
