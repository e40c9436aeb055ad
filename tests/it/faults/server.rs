//! A fault-injecting DNS server on loopback: a raw UDP and TCP loop on one port (both on
//! 127.0.0.1:0) that answers from a small record table, except for the names given a
//! [`Fault`]: silence, an error code, truncation, a TCP connection cut mid-message,
//! NXDOMAIN/NODATA, flapping answers, spoofed answers (wrong ID, question or source port),
//! slow answers, malformed packets, answers without the AA bit.
//!
//! Answers larger than the query's EDNS payload (512 without EDNS) are truncated over UDP,
//! as a real server does, and given whole over TCP. The server stops when dropped.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, MX, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// Longest CNAME chain the server follows when building an answer (a loop stops here).
const MAX_CHAIN: usize = 16;
/// How long a TCP connection of a silent name is held open before it is closed.
const SILENT_TCP_HOLD: Duration = Duration::from_secs(10);
/// How long after a spoofed answer the genuine one follows.
const GENUINE_AFTER_SPOOF: Duration = Duration::from_millis(30);

/// How the server misbehaves for one name (every record type at it, unless stated).
#[derive(Clone, Debug)]
pub enum Fault {
    /// Reads the query and never answers (UDP and TCP).
    Silent,
    /// Answers with this response code and no records (SERVFAIL, REFUSED, NOTIMP, FORMERR).
    Rcode(ResponseCode),
    /// Over UDP: TC set and no records, whatever the size; the full answer only over TCP.
    TruncatedUdp,
    /// Over UDP: TC set; over TCP: the length prefix and half the message, then a close.
    TcpCutMidMessage,
    /// NXDOMAIN (with the SOA) for every type.
    NxDomain,
    /// NOERROR without records (with the SOA) for every type.
    NoData,
    /// Answers of `rtype` alternate between `a` and `b` on each query.
    Flapping {
        rtype: RecordType,
        a: Vec<RData>,
        b: Vec<RData>,
    },
    /// Over UDP: a forged answer (records replaced by an attacker's) first, then the
    /// genuine one. Over TCP: the genuine one.
    Spoof(Spoof),
    /// Like [`Fault::Spoof`] but the genuine answer never comes.
    SpoofOnly(Spoof),
    /// Every answer held back this long.
    Slow(Duration),
    /// Over UDP: bytes that do not decode as DNS (they start with the query's ID); then
    /// the genuine answer when `then_genuine`. Over TCP: the malformed bytes.
    Malformed { then_genuine: bool },
    /// The genuine answer without the AA bit.
    NoAa,
}

/// How a forged answer gives itself away.
#[derive(Clone, Copy, Debug)]
pub enum Spoof {
    /// A message ID other than the query's.
    Id,
    /// A question other than the one asked (same ID, same port).
    Question,
    /// Sent from another port of the server's address (same ID, same question).
    SourcePort,
}

/// What the attacker's forged answers hold.
pub const EVIL_MX: &str = "evil.attacker.test.";
/// The attacker's SPF record.
pub const EVIL_SPF: &str = "v=spf1 +all";

/// Shared between the server's tasks and the test.
struct Table {
    /// Records by lower-case owner name (no trailing dot), in insertion order.
    records: HashMap<String, Vec<Record>>,
    /// Zone apexes (lower-case, no trailing dot) and their SOA record.
    zones: Vec<(String, Record)>,
    /// Faults by lower-case name.
    faults: HashMap<String, Fault>,
    /// Queries received per lower-case name (UDP and TCP).
    queries: HashMap<String, u64>,
    /// Forged answers sent.
    spoofed: u64,
}

/// A running fault server.
pub struct FaultDns {
    addr: SocketAddr,
    table: Arc<Mutex<Table>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FaultDns {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Lower-case, without the trailing dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn fqdn(name: &str) -> Name {
    let name = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    Name::from_ascii(&name).unwrap_or_else(|e| panic!("bad test name {name}: {e}"))
}

/// An MX record's data.
pub fn mx(preference: u16, host: &str) -> RData {
    RData::MX(MX::new(preference, fqdn(host)))
}

/// A TXT record of one string.
pub fn txt(text: &str) -> RData {
    RData::TXT(TXT::new(vec![text.to_owned()]))
}

/// A TXT record of the given byte strings (any bytes, any number of strings, none too).
pub fn txt_bytes(strings: &[&[u8]]) -> RData {
    RData::TXT(TXT::from_bytes(strings.to_vec()))
}

/// An A record's data.
pub fn a(ip: [u8; 4]) -> RData {
    RData::A(A::new(ip[0], ip[1], ip[2], ip[3]))
}

/// A CNAME record's data.
pub fn cname(target: &str) -> RData {
    RData::CNAME(CNAME(fqdn(target)))
}

impl FaultDns {
    /// Starts the server for the given zone apexes (each gets an SOA and an NS record).
    pub async fn start(zones: &[&str]) -> FaultDns {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        // TCP on the same port (free for TCP too on a fresh loopback port in practice; the
        // tests would fail loudly otherwise).
        let tcp = TcpListener::bind(addr).await.unwrap();
        // Forged answers "from another port" leave from here.
        let spoofer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut table = Table {
            records: HashMap::new(),
            zones: Vec::new(),
            faults: HashMap::new(),
            queries: HashMap::new(),
            spoofed: 0,
        };
        for zone in zones {
            let soa = Record::from_rdata(
                fqdn(zone),
                60,
                RData::SOA(SOA::new(
                    fqdn(&format!("ns1.{zone}")),
                    fqdn(&format!("hostmaster.{zone}")),
                    1,
                    3600,
                    600,
                    86400,
                    60,
                )),
            );
            table.zones.push((key(zone), soa.clone()));
            let ns =
                Record::from_rdata(fqdn(zone), 60, RData::NS(NS(fqdn(&format!("ns1.{zone}")))));
            table
                .records
                .entry(key(zone))
                .or_default()
                .extend([soa, ns]);
        }
        let table = Arc::new(Mutex::new(table));
        let udp = Arc::new(udp);
        let spoofer = Arc::new(spoofer);
        let udp_task = tokio::spawn(serve_udp(udp, spoofer, table.clone()));
        let tcp_task = tokio::spawn(serve_tcp(tcp, table.clone()));
        FaultDns {
            addr,
            table,
            tasks: vec![udp_task, tcp_task],
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a record; the owner name is kept as written (its case is what answers carry).
    pub fn add(&self, owner: &str, data: RData) {
        let record = Record::from_rdata(fqdn(owner), 120, data);
        let mut table = self.table.lock().unwrap();
        table.records.entry(key(owner)).or_default().push(record);
    }

    /// Replaces the records of `rtype` at `owner`.
    pub fn set(&self, owner: &str, rtype: RecordType, data: Vec<RData>) {
        let mut table = self.table.lock().unwrap();
        let records = table.records.entry(key(owner)).or_default();
        records.retain(|r| r.record_type() != rtype);
        records.extend(
            data.into_iter()
                .map(|d| Record::from_rdata(fqdn(owner), 120, d)),
        );
    }

    /// Gives `name` a fault (replacing any other).
    pub fn fault(&self, name: &str, fault: Fault) {
        self.table.lock().unwrap().faults.insert(key(name), fault);
    }

    /// Makes `name` healthy again.
    pub fn heal(&self, name: &str) {
        self.table.lock().unwrap().faults.remove(&key(name));
    }

    /// Queries received for `name`.
    pub fn queries(&self, name: &str) -> u64 {
        let table = self.table.lock().unwrap();
        table.queries.get(&key(name)).copied().unwrap_or(0)
    }

    /// Forged answers sent so far.
    pub fn spoofed(&self) -> u64 {
        self.table.lock().unwrap().spoofed
    }
}

/// What to send for one query, in order.
enum Step {
    /// A message on the connection or to the client's address.
    Send(Vec<u8>),
    /// (UDP) a message from the spoofer socket.
    SendFromOtherPort(Vec<u8>),
    /// Wait before the next step.
    Wait(Duration),
    /// (TCP) the length of the message and its first half, then close.
    Cut(Vec<u8>),
    /// Send nothing more (TCP: hold the connection, then close).
    Hang,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

async fn serve_udp(socket: Arc<UdpSocket>, spoofer: Arc<UdpSocket>, table: Arc<Mutex<Table>>) {
    let mut buffer = vec![0u8; 65535];
    loop {
        let Ok((len, client)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        let Ok(request) = Message::from_vec(&buffer[..len]) else {
            continue;
        };
        let steps = plan(&table, &request, Transport::Udp);
        let (socket, spoofer) = (socket.clone(), spoofer.clone());
        tokio::spawn(async move {
            for step in steps {
                match step {
                    Step::Send(bytes) => {
                        let _ = socket.send_to(&bytes, client).await;
                    }
                    Step::SendFromOtherPort(bytes) => {
                        let _ = spoofer.send_to(&bytes, client).await;
                    }
                    Step::Wait(delay) => tokio::time::sleep(delay).await,
                    Step::Cut(_) | Step::Hang => return,
                }
            }
        });
    }
}

async fn serve_tcp(listener: TcpListener, table: Arc<Mutex<Table>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve_connection(stream, table.clone()));
    }
}

/// One TCP connection: one query (the clients under test ask one per connection).
async fn serve_connection(mut stream: TcpStream, table: Arc<Mutex<Table>>) {
    let Ok(len) = stream.read_u16().await else {
        return;
    };
    let mut request = vec![0u8; usize::from(len)];
    if stream.read_exact(&mut request).await.is_err() {
        return;
    }
    let Ok(request) = Message::from_vec(&request) else {
        return;
    };
    for step in plan(&table, &request, Transport::Tcp) {
        match step {
            Step::Send(bytes) | Step::SendFromOtherPort(bytes) => {
                let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                if stream.write_all(&framed).await.is_err() {
                    return;
                }
            }
            Step::Wait(delay) => tokio::time::sleep(delay).await,
            Step::Cut(bytes) => {
                let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes[..bytes.len() / 2]);
                let _ = stream.write_all(&framed).await;
                let _ = stream.shutdown().await;
                return;
            }
            Step::Hang => {
                let _ = tokio::time::timeout(SILENT_TCP_HOLD, stream.read_u8()).await;
                return;
            }
        }
    }
}

/// The steps answering `request` over `transport`.
fn plan(table: &Mutex<Table>, request: &Message, transport: Transport) -> Vec<Step> {
    let Some(query) = request.queries.first() else {
        return vec![Step::Hang];
    };
    let name = key(&query.name().to_ascii());
    let rtype = query.query_type();
    let mut table = table.lock().unwrap();
    *table.queries.entry(name.clone()).or_default() += 1;
    let fault = table.faults.get(&name).cloned();
    let udp_limit = match &request.edns {
        Some(edns) => usize::from(edns.max_payload().max(512)),
        None => 512,
    };
    let encode = |message: &Message| -> Vec<u8> {
        let bytes = message.to_vec().unwrap();
        if transport == Transport::Udp && bytes.len() > udp_limit {
            message.truncate().to_vec().unwrap()
        } else {
            bytes
        }
    };
    let genuine = |table: &Table| answer(table, request, &name, rtype);
    match fault {
        None => vec![Step::Send(encode(&genuine(&table)))],
        Some(Fault::Silent) => vec![Step::Hang],
        Some(Fault::Rcode(code)) => {
            let mut message = reply_to(request);
            message.metadata.response_code = code;
            vec![Step::Send(encode(&message))]
        }
        Some(Fault::TruncatedUdp) if transport == Transport::Udp => {
            vec![Step::Send(genuine(&table).truncate().to_vec().unwrap())]
        }
        Some(Fault::TruncatedUdp) => vec![Step::Send(encode(&genuine(&table)))],
        Some(Fault::TcpCutMidMessage) if transport == Transport::Udp => {
            vec![Step::Send(genuine(&table).truncate().to_vec().unwrap())]
        }
        Some(Fault::TcpCutMidMessage) => vec![Step::Cut(genuine(&table).to_vec().unwrap())],
        Some(Fault::NxDomain) | Some(Fault::NoData) => {
            let mut message = reply_to(request);
            if matches!(fault, Some(Fault::NxDomain)) {
                message.metadata.response_code = ResponseCode::NXDomain;
            }
            if let Some(soa) = soa_for(&table, &name) {
                message.add_authority(soa);
            }
            vec![Step::Send(encode(&message))]
        }
        Some(Fault::Flapping {
            rtype: flapping,
            a,
            b,
        }) if flapping == rtype => {
            let count = table.queries[&name];
            let data = if count % 2 == 1 { a } else { b };
            let mut message = reply_to(request);
            for d in data {
                message.add_answer(Record::from_rdata(query.name().clone(), 60, d));
            }
            vec![Step::Send(encode(&message))]
        }
        Some(Fault::Flapping { .. }) => vec![Step::Send(encode(&genuine(&table)))],
        Some(Fault::Spoof(spoof) | Fault::SpoofOnly(spoof)) if transport == Transport::Udp => {
            table.spoofed += 1;
            let mut forged = reply_to(request);
            let evil = match rtype {
                RecordType::MX => Some(mx(10, EVIL_MX)),
                RecordType::TXT => Some(txt(EVIL_SPF)),
                RecordType::A => Some(a([203, 0, 113, 66])),
                _ => None,
            };
            if let Some(evil) = evil {
                forged.add_answer(Record::from_rdata(query.name().clone(), 60, evil));
            }
            let forged_step = match spoof {
                Spoof::Id => {
                    forged.metadata.id = request.metadata.id.wrapping_add(1);
                    Step::Send(encode(&forged))
                }
                Spoof::Question => {
                    let mut other = query.clone();
                    other.set_name(fqdn("evil.attacker.test"));
                    forged.queries = vec![other];
                    Step::Send(encode(&forged))
                }
                Spoof::SourcePort => Step::SendFromOtherPort(encode(&forged)),
            };
            let mut steps = vec![forged_step];
            if matches!(fault, Some(Fault::Spoof(_))) {
                steps.push(Step::Wait(GENUINE_AFTER_SPOOF));
                steps.push(Step::Send(encode(&genuine(&table))));
            }
            steps
        }
        Some(Fault::Spoof(_) | Fault::SpoofOnly(_)) => {
            vec![Step::Send(encode(&genuine(&table)))]
        }
        Some(Fault::Slow(delay)) => {
            vec![Step::Wait(delay), Step::Send(encode(&genuine(&table)))]
        }
        Some(Fault::Malformed { then_genuine }) => {
            // The query's ID, then a header claiming 5 answers that are not there.
            let id = request.metadata.id.to_be_bytes();
            let garbage = vec![id[0], id[1], 0x84, 0x00, 0, 1, 0, 5, 0, 0, 0, 0, 0xc0, 0xff];
            let mut steps = vec![Step::Send(garbage)];
            if then_genuine && transport == Transport::Udp {
                steps.push(Step::Wait(GENUINE_AFTER_SPOOF));
                steps.push(Step::Send(encode(&genuine(&table))));
            }
            steps
        }
        Some(Fault::NoAa) => {
            let mut message = genuine(&table);
            message.metadata.authoritative = false;
            vec![Step::Send(encode(&message))]
        }
    }
}

/// An empty response to `request`: same ID and question, AA and RA set.
fn reply_to(request: &Message) -> Message {
    let mut message = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    message.metadata.authoritative = true;
    message.metadata.recursion_desired = request.metadata.recursion_desired;
    message.metadata.recursion_available = true;
    message.add_queries(request.queries.iter().cloned());
    if let Some(edns) = &request.edns {
        let mut ours = edns.clone();
        ours.set_max_payload(4096);
        message.set_edns(ours);
    }
    message
}

/// The SOA of the zone holding `name`.
fn soa_for(table: &Table, name: &str) -> Option<Record> {
    table
        .zones
        .iter()
        .filter(|(apex, _)| name == apex || name.ends_with(&format!(".{apex}")))
        .max_by_key(|(apex, _)| apex.len())
        .map(|(_, soa)| soa.clone())
}

/// The genuine answer from the table: records, or a CNAME chain (at most [`MAX_CHAIN`]
/// links) and its target's records; NODATA or NXDOMAIN with the SOA; REFUSED outside the
/// zones.
fn answer(table: &Table, request: &Message, name: &str, rtype: RecordType) -> Message {
    let mut message = reply_to(request);
    let Some(soa) = soa_for(table, name) else {
        message.metadata.response_code = ResponseCode::Refused;
        message.metadata.authoritative = false;
        return message;
    };
    let mut current = name.to_owned();
    for _ in 0..MAX_CHAIN {
        let records = table.records.get(&current);
        let matching: Vec<&Record> = records
            .into_iter()
            .flatten()
            .filter(|r| r.record_type() == rtype)
            .collect();
        if !matching.is_empty() {
            message.add_answers(matching.into_iter().cloned());
            return message;
        }
        let alias = records.into_iter().flatten().find_map(|r| match &r.data {
            RData::CNAME(target) => Some((r.clone(), key(&target.0.to_ascii()))),
            _ => None,
        });
        match alias {
            Some((record, target)) => {
                message.add_answer(record);
                current = target;
            }
            None if message.answers.is_empty() => {
                if !table.records.contains_key(&current) {
                    message.metadata.response_code = ResponseCode::NXDomain;
                }
                message.add_authority(soa);
                return message;
            }
            None => return message,
        }
    }
    message
}
