//! Asks every authoritative address and every configured resolver the domain's mail
//! questions. All questions go out at once; the direct client bounds the queries in flight
//! per server, and the per-server memo merges questions other checks and domains ask.

use super::{
    AuthorityView, NameserversObservation, Question, RecordSet, ResolverMemory, ResolverView,
    SerialTracker, ServerView,
};
use crate::config::Expectations;
use crate::dns::{
    DnsError, DnsView, LookupResult, Nameserver, RData, RecordType, ZoneAuthority, ZoneServers,
    normalize_name, server_label,
};
use futures::future::join_all;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// Observes the zone servers of `domain` when the view asks them authoritatively
/// (`result: None` otherwise). `serials` times how long they disagree on the serial;
/// `grace` is how long they may; `resolvers` is the last comparison with the resolvers
/// (they are asked again only when [`ResolverMemory::due`]).
pub async fn observe(
    domain: &str,
    view: &DnsView,
    expect: &Expectations,
    serials: &SerialTracker,
    grace: Duration,
    resolvers: Option<&ResolverMemory>,
) -> NameserversObservation {
    let domain = normalize_name(domain);
    let result = match &view.authority {
        None => None,
        Some(authority) => {
            let observed =
                observe_authority(&domain, authority.as_ref(), expect, serials, resolvers).await;
            Some(observed.map(|view| AuthorityView { grace, ..view }))
        }
    };
    NameserversObservation { domain, result }
}

/// The questions asked of every server for `domain` in `zone`.
pub(super) fn questions(domain: &str, zone: &str, expect: &Expectations) -> Vec<Question> {
    let question = |record: &str, name: String| Question {
        record: record.to_owned(),
        name,
    };
    let mut questions = vec![
        question("soa", zone.to_owned()),
        question("ns", zone.to_owned()),
        question("mx", domain.to_owned()),
        question("spf", domain.to_owned()),
        question("dmarc", format!("_dmarc.{domain}")),
    ];
    for selector in expect.dkim.iter().flat_map(|d| &d.selectors) {
        questions.push(question(
            &format!("dkim:{selector}"),
            format!("{selector}._domainkey.{domain}"),
        ));
    }
    questions
}

/// The record type asked for a record label.
fn rtype_of(record: &str) -> RecordType {
    match record {
        "soa" => RecordType::Soa,
        "ns" => RecordType::Ns,
        "mx" => RecordType::Mx,
        _ => RecordType::Txt,
    }
}

/// The records of an answer that belong to a record label, normalised and sorted: TXT
/// answers keep only the SPF, DMARC or DKIM records.
pub(super) fn record_set(record: &str, records: &[RData], ttl: u32) -> RecordSet {
    let mut values: Vec<String> = records
        .iter()
        .filter_map(|rdata| match rdata {
            RData::Mx {
                preference,
                exchange,
            } => Some(format!("{preference} {exchange}")),
            RData::Ns(host) => Some(host.clone()),
            RData::Soa { serial, .. } => Some(serial.to_string()),
            RData::Txt(text) => {
                let lower = text.trim_start().to_ascii_lowercase();
                let wanted = match record {
                    "spf" => lower == "v=spf1" || lower.starts_with("v=spf1 "),
                    "dmarc" => lower.starts_with("v=dmarc1"),
                    // DKIM records need not start with v=DKIM1; everything at the selector.
                    _ => true,
                };
                wanted.then(|| text.clone())
            }
            _ => None,
        })
        .collect();
    values.sort();
    values.dedup();
    RecordSet { values, ttl }
}

async fn observe_authority(
    domain: &str,
    authority: &dyn ZoneAuthority,
    expect: &Expectations,
    serials: &SerialTracker,
    last_compared: Option<&ResolverMemory>,
) -> Result<AuthorityView, DnsError> {
    let zone = authority.zone_servers(domain).await?;
    let questions = questions(domain, &zone.zone, expect);
    let delegation = async {
        match authority.parent_delegation(&zone.zone).await {
            Ok(found) => found.map(Ok),
            Err(error) => Some(Err(error.to_string())),
        }
    };
    let servers = join_all(
        zone.nameservers
            .iter()
            .map(|ns| ask_server(authority, ns, &questions)),
    );
    let (delegation, servers) = tokio::join!(delegation, servers);
    let serials_apart = {
        let mut serials: Vec<u32> = servers.iter().filter_map(|s| s.serial).collect();
        serials.sort_unstable();
        serials.dedup();
        serials.len() > 1
    };
    let serials_apart_for = serials.observe(&zone.zone, serials_apart);
    let answers_fingerprint = mail_answers_fingerprint(&servers);
    let now = Instant::now();
    let (resolvers, resolvers_asked_at) =
        if ResolverMemory::due(last_compared, answers_fingerprint, now) {
            let asked = ask_resolvers(authority, &zone, &questions, &servers).await;
            (asked, Some(now))
        } else {
            (Vec::new(), None)
        };
    Ok(AuthorityView {
        zone: zone.zone.clone(),
        servers,
        delegation,
        serials_apart_for,
        grace: Duration::ZERO,
        resolvers,
        resolvers_asked_at,
        answers_fingerprint,
    })
}

/// Asks one server every question; the first failure makes it lame.
async fn ask_server(
    authority: &dyn ZoneAuthority,
    nameserver: &Nameserver,
    questions: &[Question],
) -> ServerView {
    let results = join_all(
        questions
            .iter()
            .map(|q| authority.ask_server(nameserver.addr, &q.name, rtype_of(&q.record))),
    )
    .await;
    let mut view = ServerView {
        nameserver: nameserver.clone(),
        lame: None,
        serial: None,
        answers: BTreeMap::new(),
    };
    for (question, result) in questions.iter().zip(results) {
        match result {
            Ok(answer) if answer.authoritative => {
                if question.record == "soa" {
                    view.serial = answer.records.iter().find_map(|r| match r {
                        RData::Soa { serial, .. } => Some(*serial),
                        _ => None,
                    });
                }
                let set = record_set(&question.record, &answer.records, answer.ttl);
                view.answers.insert(question.record.clone(), set);
            }
            Ok(_) => {
                view.lame = Some(format!(
                    "answered {} {} without the AA bit (not authoritative)",
                    question.name,
                    rtype_of(&question.record)
                ));
                break;
            }
            Err(error) => {
                view.lame = Some(lame_reason(&error));
                break;
            }
        }
    }
    if view.lame.is_some() {
        view.answers.clear();
        view.serial = None;
    }
    view
}

/// A short reason for a lame server.
fn lame_reason(error: &DnsError) -> String {
    match error {
        DnsError::Timeout { name, rtype, .. } => format!("timeout asking {name} {rtype}"),
        DnsError::Rcode {
            name, rtype, rcode, ..
        } => format!("{rcode} for {name} {rtype}"),
        other => other.to_string(),
    }
}

/// The authoritative answer per record: the first answering server's (servers in the
/// order they are tried, as the other checks see it).
pub(super) fn reference(servers: &[ServerView]) -> Option<&BTreeMap<String, RecordSet>> {
    servers
        .iter()
        .find(|s| s.lame.is_none())
        .map(|s| &s.answers)
}

/// A fingerprint of the authoritative answers to the mail questions (what the resolvers are
/// compared with); 0 when no server answered.
fn mail_answers_fingerprint(servers: &[ServerView]) -> u64 {
    let Some(answers) = reference(servers) else {
        return 0;
    };
    let values: Vec<String> = answers
        .iter()
        .filter(|(record, _)| record.as_str() != "soa" && record.as_str() != "ns")
        .flat_map(|(record, set)| set.values.iter().map(move |v| format!("{record}: {v}")))
        .collect();
    crate::checks::fingerprint(&values)
}

/// Asks every resolver the mail questions (not SOA/NS) and compares with the reference.
async fn ask_resolvers(
    authority: &dyn ZoneAuthority,
    zone: &ZoneServers,
    questions: &[Question],
    servers: &[ServerView],
) -> Vec<ResolverView> {
    let Some(reference) = reference(servers) else {
        return Vec::new();
    };
    let mail: Vec<&Question> = questions
        .iter()
        .filter(|q| q.record != "soa" && q.record != "ns")
        .collect();
    // A resolver that is one of the zone's own servers serves the authoritative answer:
    // asking it tells nothing.
    let resolvers = authority
        .resolvers()
        .iter()
        .filter(|r| !zone.nameservers.iter().any(|ns| ns.addr == **r));
    let asks = resolvers.flat_map(|&resolver| {
        mail.iter()
            .map(move |&question| ask_resolver(authority, resolver, question))
    });
    let answers = join_all(asks).await;
    tracing::debug!(zone = %zone.zone, resolvers = authority.resolvers().len(), "resolver view asked");
    answers
        .into_iter()
        .map(|(resolver, question, result)| {
            let answer = match result {
                Ok(answer) => Ok(record_set(&question.record, &answer.records, answer.ttl)),
                Err(error) => Err(error.to_string()),
            };
            let current = match (&answer, reference.get(&question.record)) {
                (Ok(seen), Some(authoritative)) => seen.values == authoritative.values,
                _ => false,
            };
            ResolverView {
                resolver: server_label(resolver),
                record: question.record.clone(),
                answer,
                current,
            }
        })
        .collect()
}

async fn ask_resolver<'q>(
    authority: &dyn ZoneAuthority,
    resolver: SocketAddr,
    question: &'q Question,
) -> (SocketAddr, &'q Question, LookupResult) {
    let result = authority
        .ask_resolver(resolver, &question.name, rtype_of(&question.record))
        .await;
    (resolver, question, result)
}
