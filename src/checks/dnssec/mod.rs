//! DNSSEC check: whether the domain's mail records (MX, the apex TXT that holds SPF, the
//! `_dmarc` TXT) validate. Answers are asked with the DO bit, then checked here with
//! hickory's DNSSEC primitives: every record set carries an RRSIG made by a key of the
//! zone's DNSKEY set, valid now, and that set is signed by one of its own secure-entry-point
//! keys; through a recursive resolver also that the parent's DS matches such a key.
//!
//! Decisions:
//! - servers (the view's [`SignedQuestions`]): the configured `nameservers` (asked without
//!   recursion) when set, else the
//!   recursive resolvers with CD set (they fetch, we validate). Asking the zone's own
//!   servers cannot show the parent's DS, so the chain of trust above the zone is then not
//!   checked (the evidence says so); through a resolver it is checked one level up (DS at
//!   the parent), not to the root;
//! - `dnssec_unsigned` is `info` for a zone without DNSKEY (most zones), `warning` for a
//!   signed zone whose parent publishes no DS (validators treat it as unsigned);
//! - `dnssec_bogus` (critical): a record set without RRSIG in a signed zone, a signature that
//!   does not verify, is expired or not yet valid, made by a key not in the DNSKEY set, a
//!   DNSKEY set not self-signed, or DS records that match no key;
//! - `dnssec_signature_expiring` (warning): a valid signature expiring within
//!   `defaults.dnssec.expiry_warning` (zones whose re-signing stopped).

mod validate;

pub use validate::{SignedSet, Verdict, ZoneKeys, judge};

use super::{Check, Context, Evaluation, Input, RecordObservation};
use crate::dns::{DnsError, SignedQuestions, normalize_name};
use crate::finding::{CheckKind, Finding, FindingCode, Severity};
use futures::future::BoxFuture;
use hickory_proto::rr::{Name, RecordType};
use std::time::{Duration, SystemTime};

/// The DNSSEC check.
#[derive(Debug, Default)]
pub struct Dnssec;

impl Check for Dnssec {
    const KIND: CheckKind = CheckKind::Dnssec;
    type Observation = DnssecObservation;
    type Memory = ();

    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, DnssecObservation> {
        Box::pin(async move {
            match &ctx.dns.signed {
                Some(signed) => observe(ctx.domain(), signed).await,
                None => DnssecObservation {
                    domain: ctx.domain().to_owned(),
                    recursive: false,
                    result: Err(DnsError::NoServers {
                        name: ctx.domain().to_owned(),
                        reason: "no server to ask DNSSEC questions".to_owned(),
                    }),
                },
            }
        })
    }

    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &DnssecObservation,
        _input: Input<'_, ()>,
    ) -> Evaluation<()> {
        let window = ctx.config.analysis.dnssec.expiry_warning;
        evaluate(ctx.domain(), observation, window, ctx.now())
    }
}

/// What was asked and seen.
#[derive(Clone, Debug)]
pub struct DnssecObservation {
    /// The domain, normalised.
    pub domain: String,
    /// Whether the servers were recursive resolvers.
    pub recursive: bool,
    /// The signed sets and zone keys, or the first question without an answer.
    pub result: Result<(Vec<SignedSet>, ZoneKeys), DnsError>,
}

/// Asks for the mail record sets, the zone's DNSKEY set and (through a resolver) its DS.
pub async fn observe(domain: &str, signed: &SignedQuestions) -> DnssecObservation {
    let domain = normalize_name(domain);
    let result = observe_inner(&domain, signed).await;
    DnssecObservation {
        domain,
        recursive: signed.recursive(),
        result,
    }
}

/// Asks one DO-bit question of the domain's DNSSEC servers.
async fn ask(
    signed: &SignedQuestions,
    name: &Name,
    rtype: RecordType,
) -> Result<std::sync::Arc<hickory_proto::op::Message>, DnsError> {
    let Some(ours) = ours(rtype) else {
        return Err(DnsError::InvalidName {
            name: name.to_ascii(),
            reason: format!("{rtype} is not a type the DNSSEC check asks"),
        });
    };
    signed.ask(&name.to_ascii(), ours).await
}

/// The crate's name for the record types this check asks for.
fn ours(rtype: RecordType) -> Option<crate::dns::RecordType> {
    use crate::dns::RecordType as Ours;
    match rtype {
        RecordType::MX => Some(Ours::Mx),
        RecordType::TXT => Some(Ours::Txt),
        RecordType::DNSKEY => Some(Ours::Dnskey),
        RecordType::DS => Some(Ours::Ds),
        RecordType::TLSA => Some(Ours::Tlsa),
        _ => None,
    }
}

async fn observe_inner(
    domain: &str,
    servers: &SignedQuestions,
) -> Result<(Vec<SignedSet>, ZoneKeys), DnsError> {
    let parse = |text: &str| {
        Name::from_ascii(format!("{text}.")).map_err(|e| DnsError::InvalidName {
            name: text.to_owned(),
            reason: e.to_string(),
        })
    };
    let apex = parse(domain)?;
    let dmarc = parse(&format!("_dmarc.{domain}"))?;
    let questions = [
        (apex.clone(), RecordType::MX),
        (apex.clone(), RecordType::TXT),
        (dmarc, RecordType::TXT),
    ];
    let answers = futures::future::join_all(
        questions
            .iter()
            .map(|(name, rtype)| ask(servers, name, *rtype)),
    )
    .await;
    let mut sets = Vec::new();
    for ((name, rtype), answer) in questions.iter().zip(answers) {
        sets.extend(SignedSet::from_answer(name, *rtype, &*answer?));
    }
    let keys = zone_keys(servers, &sets, &apex).await?;
    Ok((sets, keys))
}

/// Asks one record set with the DO bit: the set and its RRSIGs, `None` when the name has
/// no such records (NODATA, NXDOMAIN). For checks validating records outside the domain's
/// zone (the TLSA records of its MX hosts).
pub async fn signed_set(
    servers: &SignedQuestions,
    name: &Name,
    rtype: RecordType,
) -> Result<Option<SignedSet>, DnsError> {
    let answer = ask(servers, name, rtype).await?;
    Ok(SignedSet::from_answer(name, rtype, &answer))
}

/// The DNSKEY set (and, through a resolver, the parent's DS set) of the zone that signed
/// `sets`; of `unsigned` when nothing is signed.
pub async fn zone_keys(
    servers: &SignedQuestions,
    sets: &[SignedSet],
    unsigned: &Name,
) -> Result<ZoneKeys, DnsError> {
    let zone = sets
        .iter()
        .find_map(|s| s.rrsigs.first().map(|r| r.input().signer_name.clone()))
        .unwrap_or_else(|| unsigned.clone());
    let dnskey = ask(servers, &zone, RecordType::DNSKEY).await?;
    let ds = if servers.recursive() {
        Some(ask(servers, &zone, RecordType::DS).await?)
    } else {
        None
    };
    Ok(ZoneKeys::from_answers(&zone, &dnskey, ds.as_deref()))
}

/// The zone the observation shows unsigned (no DNSKEY and no signature), if it does: no
/// chain of trust passes through an unsigned zone, so every name at or below it is insecure
/// whatever it publishes (RFC 4035 §4.3). `None` when the observation failed or shows keys.
pub fn unsigned_zone(observation: &DnssecObservation) -> Option<String> {
    let (sets, keys) = observation.result.as_ref().ok()?;
    let signed = sets.iter().any(|s| !s.rrsigs.is_empty());
    (keys.keys.is_empty() && !signed).then(|| normalize_name(&keys.zone.to_ascii()))
}

/// "example.com", or "the zone example.com of mail.example.com".
fn zone_of(zone: &str, domain: &str) -> String {
    if zone == domain {
        domain.to_owned()
    } else {
        format!("the zone {zone} of {domain}")
    }
}

/// Turns an observation into findings; `now` and `window` decide validity and expiry.
pub fn evaluate(
    domain: &str,
    observation: &DnssecObservation,
    window: Duration,
    now: SystemTime,
) -> Evaluation<()> {
    let (sets, keys) = match &observation.result {
        Ok(found) => found,
        Err(error) => return Evaluation::inconclusive(error),
    };
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let verdict = validate::judge(sets, keys, now, window.as_secs());
    let mut findings = Vec::new();
    let zone = keys.zone.to_ascii();
    let zone = zone.trim_end_matches('.');
    let chain = if observation.recursive {
        "DS at the parent checked"
    } else {
        "asked the zone's own servers: the DS at the parent is not checked"
    };
    let value = match &verdict {
        validate::Verdict::Unsigned => {
            findings.push(
                Finding::new(
                    FindingCode::DnssecUnsigned,
                    Severity::Info,
                    format!(
                        "{} is not signed (no DNSKEY): its mail records cannot be validated",
                        zone_of(zone, domain)
                    ),
                )
                .with("zone", zone),
            );
            "unsigned".to_owned()
        }
        validate::Verdict::Island => {
            findings.push(
                Finding::new(
                    FindingCode::DnssecUnsigned,
                    Severity::Warning,
                    format!("{} is signed, but its parent publishes no DS record: validators treat it as unsigned", zone_of(zone, domain)),
                )
                .with("zone", zone),
            );
            "signed, no DS at the parent".to_owned()
        }
        validate::Verdict::Bogus(problems) => {
            for problem in problems {
                findings.push(
                    Finding::new(
                        FindingCode::DnssecBogus,
                        Severity::Critical,
                        format!("DNSSEC of {domain} is bogus: {problem}; validating resolvers answer SERVFAIL"),
                    )
                    .with("zone", zone)
                    .with("chain", chain),
                );
            }
            "bogus".to_owned()
        }
        validate::Verdict::Secure { expiring } => {
            for (set, expires_in) in expiring {
                let days = expires_in / 86400;
                let hours = expires_in % 86400 / 3600;
                findings.push(
                    Finding::new(
                        FindingCode::DnssecSignatureExpiring,
                        Severity::Warning,
                        format!("the signature of {set} expires in {days} d {hours} h: the zone must be re-signed before then"),
                    )
                    .with("rrset", set)
                    .with("expires_in_seconds", expires_in),
                );
            }
            format!("signed by {zone}, valid ({chain})")
        }
    };
    Evaluation::conclusive(
        vec![RecordObservation::new("dnssec", vec![value], None)],
        findings,
    )
}
