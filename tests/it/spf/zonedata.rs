//! The `zonedata` of an OpenSPF suite scenario, served faithfully: records through the
//! in-process hickory server (one root zone, so any name can be served, odd octets and TXT
//! records without strings included), and `TIMEOUT` markers through a raw UDP responder in
//! front of it that never answers those questions (hickory-server has no way to express
//! "no answer for this name").
//!
//! The conventions of the suite's drivers: an `SPF` entry is served as a type
//! 99 record and, unless the name lists `TXT` entries itself, as a TXT record too; `TXT:
//! NONE` lists TXT without adding a record; a name's `TIMEOUT` marker makes every question
//! about it time out except for the types listed before the marker.

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NULL, PTR, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use maildrift::dns::server::LocalDnsServer;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use yaml_serde::Value;

const TTL: u32 = 300;
/// Type code of the obsolete SPF record type (RFC 4408 §3.1.1).
const SPF_TYPE: u16 = 99;

/// What a scenario serves: records, and the questions that go unanswered.
#[derive(Debug, Default)]
pub struct ZoneData {
    /// Every record, under the root zone.
    pub records: Vec<Record>,
    /// Lower-case names with a `TIMEOUT` marker, and the types still answered.
    pub timeouts: HashMap<String, HashSet<RecordType>>,
}

/// A name from the suite: its labels taken as the octets they are.
pub fn name(text: &str) -> Name {
    let text = text.strip_suffix('.').unwrap_or(text);
    if text.is_empty() {
        return Name::root();
    }
    Name::from_labels(text.split('.').map(str::as_bytes))
        .unwrap_or_else(|e| panic!("suite name {text:?}: {e}"))
}

/// The text of a scalar (the suite writes numbers and strings alike).
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

/// TXT character-strings: a string, or a list of strings (possibly empty).
fn strings(value: &Value) -> Vec<Vec<u8>> {
    match value {
        Value::Sequence(items) => items.iter().map(|v| scalar(v).into_bytes()).collect(),
        other => vec![scalar(other).into_bytes()],
    }
}

/// A TXT record of `strings` (none at all is allowed).
fn txt(strings: &[Vec<u8>]) -> RData {
    RData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()))
}

/// TXT wire form of `strings` (each prefixed by its length), for the type 99 record.
fn txt_wire(strings: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for s in strings {
        wire.push(u8::try_from(s.len()).expect("TXT string of at most 255 octets"));
        wire.extend_from_slice(s);
    }
    wire
}

impl ZoneData {
    /// Reads a scenario's `zonedata` mapping.
    pub fn from_yaml(zonedata: &Value) -> ZoneData {
        let soa = SOA::new(
            name("ns.test"),
            name("hostmaster.test"),
            1,
            3600,
            600,
            86400,
            60,
        );
        let mut zone = ZoneData {
            records: vec![Record::from_rdata(Name::root(), TTL, RData::SOA(soa))],
            ..ZoneData::default()
        };
        let Value::Mapping(names) = zonedata else {
            panic!("zonedata is not a mapping: {zonedata:?}");
        };
        for (owner, entries) in names {
            let owner_text = scalar(owner);
            let owner = name(&owner_text);
            let Value::Sequence(entries) = entries else {
                panic!("entries of {owner_text} are not a list");
            };
            let lists_txt = entries.iter().any(|e| e.get("TXT").is_some());
            let mut listed: HashSet<RecordType> = HashSet::new();
            let mut copies = Vec::new();
            for entry in entries {
                if entry.as_str() == Some("TIMEOUT") {
                    zone.timeouts
                        .insert(owner_text.to_ascii_lowercase(), listed.clone());
                    continue;
                }
                let Value::Mapping(entry) = entry else {
                    panic!("odd entry of {owner_text}: {entry:?}");
                };
                for (rtype, value) in entry {
                    let rtype = scalar(rtype);
                    let (record_type, data) = match rtype.as_str() {
                        "A" => (RecordType::A, RData::A(A(scalar(value).parse().unwrap()))),
                        "AAAA" => (
                            RecordType::AAAA,
                            RData::AAAA(AAAA(scalar(value).parse().unwrap())),
                        ),
                        "PTR" => (RecordType::PTR, RData::PTR(PTR(name(&scalar(value))))),
                        "CNAME" => (RecordType::CNAME, RData::CNAME(CNAME(name(&scalar(value))))),
                        "MX" => {
                            let Value::Sequence(pair) = value else {
                                panic!("MX of {owner_text} is not [preference, host]");
                            };
                            let preference = scalar(&pair[0]).parse().unwrap();
                            let exchange = name(&scalar(&pair[1]));
                            (RecordType::MX, RData::MX(MX::new(preference, exchange)))
                        }
                        // Lists TXT (no copies of SPF entries) without a record: not
                        // "answered" for a later TIMEOUT marker.
                        "TXT" if value.as_str() == Some("NONE") => continue,
                        "TXT" => (RecordType::TXT, txt(&strings(value))),
                        "SPF" => {
                            let strings = strings(value);
                            if !lists_txt {
                                copies.push(txt(&strings));
                            }
                            // A record without strings has empty data (`NULL::with` wants some).
                            let mut null = NULL::new();
                            null.anything = txt_wire(&strings);
                            let rdata = RData::Unknown {
                                code: RecordType::Unknown(SPF_TYPE),
                                rdata: null,
                            };
                            (RecordType::Unknown(SPF_TYPE), rdata)
                        }
                        other => panic!("record type {other} of {owner_text} not supported"),
                    };
                    listed.insert(record_type);
                    zone.records
                        .push(Record::from_rdata(owner.clone(), TTL, data));
                }
            }
            // The TXT copies of SPF entries come after every listed entry (and marker).
            for data in copies {
                zone.records
                    .push(Record::from_rdata(owner.clone(), TTL, data));
            }
        }
        zone
    }

    /// Whether a question goes unanswered.
    fn times_out(&self, qname: &str, qtype: RecordType) -> bool {
        self.timeouts
            .get(qname)
            .is_some_and(|answered| !answered.contains(&qtype))
    }
}

/// A scenario's server: hickory serving the records, behind a responder that drops the
/// `TIMEOUT` questions. Stops when dropped.
pub struct ScenarioServer {
    /// Where clients ask (the responder).
    pub addr: SocketAddr,
    _dns: LocalDnsServer,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for ScenarioServer {
    fn drop(&mut self) {
        self._task.abort();
    }
}

/// The lower-case text of a question name, labels as octets.
fn question_name(name: &Name) -> String {
    let labels: Vec<String> = name
        .iter()
        .map(|label| String::from_utf8_lossy(label).to_ascii_lowercase())
        .collect();
    labels.join(".")
}

impl ScenarioServer {
    /// Serves `zone` on loopback.
    pub async fn start(zone: ZoneData) -> ScenarioServer {
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let dns = LocalDnsServer::start_with_records(
            localhost,
            vec![(Name::root(), zone.records.clone())],
        )
        .await
        .expect("scenario zone is served");
        let upstream = dns.addr();
        let socket = Arc::new(UdpSocket::bind((localhost, 0)).await.unwrap());
        let addr = socket.local_addr().unwrap();
        let zone = Arc::new(zone);
        let task = tokio::spawn(async move {
            let mut buffer = vec![0u8; 65535];
            loop {
                let Ok((len, client)) = socket.recv_from(&mut buffer).await else {
                    continue;
                };
                let query = buffer[..len].to_vec();
                let Ok(message) = Message::from_vec(&query) else {
                    continue;
                };
                let silent = message
                    .queries
                    .first()
                    .is_some_and(|q| zone.times_out(&question_name(q.name()), q.query_type()));
                if silent {
                    continue;
                }
                let socket = socket.clone();
                tokio::spawn(async move {
                    let relay = UdpSocket::bind((localhost, 0)).await.unwrap();
                    relay.send_to(&query, upstream).await.unwrap();
                    let mut response = vec![0u8; 65535];
                    let wait = relay.recv_from(&mut response);
                    if let Ok(Ok((len, _))) =
                        tokio::time::timeout(Duration::from_secs(5), wait).await
                    {
                        let _ = socket.send_to(&response[..len], client).await;
                    }
                });
            }
        });
        ScenarioServer {
            addr,
            _dns: dns,
            _task: task,
        }
    }
}
