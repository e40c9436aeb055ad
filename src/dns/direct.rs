//! Direct queries to one chosen server (authoritative servers, or a resolver asked
//! without the resolver library): UDP with retry over TCP on truncation.
//!
//! Built on hickory-proto's `Message` encoding rather than hickory-net's client: the
//! client wants one connection object (and task) per server, while we ask thousands of
//! different servers. Here a few UDP sockets are shared by every query: each socket has
//! one receive task that matches responses to waiting queries by ID, source address and
//! question, and hands them over through a `oneshot` channel.

use super::convert::{
    decode_message, follow_chain, negative_ttl, parse_name, status_of, to_hickory_type,
};
use super::metrics::{rcode_name, result_label};
use super::rate::RateLimiter;
use super::{Answer, AnswerStatus, DnsError, LookupResult, QueryMetrics, RecordType};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{self, Name};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{Semaphore, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

/// EDNS0 UDP payload size we advertise (the DNS Flag Day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;
/// UDP sockets per address family: enough to spread the receive work over a few cores,
/// few enough to stay cheap.
const SOCKETS_PER_FAMILY: usize = 4;
/// Largest DNS message (TCP length prefix is 16 bits; UDP responses are at most this too).
const MAX_MESSAGE: usize = 65535;

/// Timeouts and retries for direct queries.
#[derive(Clone, Debug)]
pub struct DirectOptions {
    /// Per attempt.
    pub timeout: Duration,
    /// UDP attempts before giving up with a timeout.
    pub attempts: u32,
    /// Queries in flight to one server at most; more wait their turn. Protects the servers
    /// asked (often a customer's own nameservers) and avoids the drops, and so the timeouts,
    /// of a burst larger than a server's receive buffer.
    pub max_in_flight_per_server: usize,
    /// Every query of the daemon, direct or through the resolver library, takes a slot here
    /// first (`--dns.max-qps`); `None`: no global limit.
    pub rate: Option<Arc<RateLimiter>>,
    /// Queries per second to one server at most (`--dns.max-qps-per-server`); `None`: no
    /// limit beyond the in-flight bound.
    pub rate_per_server: Option<u32>,
}

impl Default for DirectOptions {
    fn default() -> Self {
        DirectOptions {
            timeout: Duration::from_secs(2),
            attempts: 2,
            max_in_flight_per_server: 64,
            rate: None,
            rate_per_server: None,
        }
    }
}

/// What one server may take: queries in flight, and queries per second.
struct ServerLimits {
    /// Queries in flight at most.
    in_flight: Arc<Semaphore>,
    /// Queries per second at most.
    rate: Option<Arc<RateLimiter>>,
}

/// Header and EDNS flags of one question.
#[derive(Clone, Copy, Debug, Default)]
struct Flags {
    /// RD: ask a resolver to recurse.
    recursion_desired: bool,
    /// EDNS DO: return RRSIGs (DNSSEC).
    dnssec_ok: bool,
    /// CD: a validating resolver returns the data even when it does not validate, so the
    /// DNSSEC check can say "bogus" instead of seeing a SERVFAIL.
    checking_disabled: bool,
}

/// Sends single queries to chosen servers; one instance is shared by every domain.
pub struct DirectClient {
    /// Timeouts and retries.
    options: DirectOptions,
    /// Where every query is counted.
    metrics: QueryMetrics,
    /// Sockets for IPv4 servers.
    v4: Vec<Arc<UdpSlot>>,
    /// Sockets for IPv6 servers; empty when the host has no IPv6.
    v6: Vec<Arc<UdpSlot>>,
    /// Round-robin position over the sockets.
    next: AtomicUsize,
    /// One in-flight bound per server asked.
    per_server: Mutex<HashMap<SocketAddr, ServerLimits>>,
    /// Stops the receive tasks when the client is dropped.
    _stop: DropGuard,
}

/// One shared UDP socket and the queries waiting for a response on it.
struct UdpSlot {
    /// The socket, bound to an ephemeral port.
    socket: UdpSocket,
    /// Waiting queries by message ID.
    pending: Mutex<HashMap<u16, Waiter>>,
    /// Tells apart successive waiters that reuse an ID.
    sequence: AtomicU64,
}

/// A query waiting for its response.
struct Waiter {
    /// Unique per registration, so a stale guard never removes a newer waiter.
    sequence: u64,
    /// The server asked: responses from elsewhere are ignored.
    server: SocketAddr,
    /// The question asked: responses to another question are ignored.
    question: (Name, rr::RecordType),
    /// Where the matching response goes.
    reply: oneshot::Sender<Message>,
}

/// Removes a waiter when its query finishes, times out or is cancelled.
struct WaiterGuard<'a> {
    /// The socket the waiter is registered on.
    slot: &'a UdpSlot,
    /// Its message ID.
    id: u16,
    /// Its registration.
    sequence: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        let mut pending = self.slot.pending.lock().expect("pending map poisoned");
        if pending.get(&self.id).map(|w| w.sequence) == Some(self.sequence) {
            pending.remove(&self.id);
        }
    }
}

impl UdpSlot {
    /// Registers a waiter under a random free ID.
    fn register(
        &self,
        server: SocketAddr,
        question: (Name, rr::RecordType),
    ) -> Result<(WaiterGuard<'_>, oneshot::Receiver<Message>), ()> {
        let mut pending = self.pending.lock().expect("pending map poisoned");
        let id = free_id(&pending).ok_or(())?;
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let (reply, receiver) = oneshot::channel();
        let waiter = Waiter {
            sequence,
            server,
            question,
            reply,
        };
        pending.insert(id, waiter);
        let guard = WaiterGuard {
            slot: self,
            id,
            sequence,
        };
        Ok((guard, receiver))
    }

    /// Reads responses until stopped, handing each to its waiter.
    async fn receive(self: Arc<Self>, stop: CancellationToken) {
        let mut buffer = vec![0u8; MAX_MESSAGE];
        loop {
            let (len, source) = tokio::select! {
                received = self.socket.recv_from(&mut buffer) => match received {
                    Ok(received) => received,
                    Err(error) => {
                        // ICMP errors surface here on some platforms; keep reading.
                        tracing::debug!(%error, "udp receive error");
                        continue;
                    }
                },
                () = stop.cancelled() => return,
            };
            let Ok(message) = decode_message(&buffer[..len]) else {
                tracing::debug!(%source, "undecodable DNS response ignored");
                continue;
            };
            let mut pending = self.pending.lock().expect("pending map poisoned");
            let id = message.metadata.id;
            let matches = pending.get(&id).is_some_and(|waiter| {
                waiter.server == source && answers(&message, &waiter.question)
            });
            if matches {
                let waiter = pending.remove(&id).expect("checked above");
                drop(pending);
                // The query may have given up meanwhile; nothing to do then.
                let _ = waiter.reply.send(message);
            } else {
                tracing::debug!(%source, id, "unexpected DNS response ignored");
            }
        }
    }
}

/// A random ID not in use: a few random tries, then a scan from a random start.
fn free_id(pending: &HashMap<u16, Waiter>) -> Option<u16> {
    if pending.len() > usize::from(u16::MAX) {
        return None;
    }
    for _ in 0..8 {
        let id: u16 = rand::random();
        if !pending.contains_key(&id) {
            return Some(id);
        }
    }
    let start: u16 = rand::random();
    (0..=u16::MAX)
        .map(|offset| start.wrapping_add(offset))
        .find(|id| !pending.contains_key(id))
}

/// Whether `message` is a response to `question`.
fn answers(message: &Message, question: &(Name, rr::RecordType)) -> bool {
    message.metadata.message_type == MessageType::Response
        && message.queries.len() == 1
        && message.queries[0].name() == &question.0
        && message.queries[0].query_type() == question.1
}

impl DirectClient {
    /// A client with its own sockets.
    pub async fn new(
        options: DirectOptions,
        metrics: QueryMetrics,
    ) -> std::io::Result<Arc<DirectClient>> {
        let stop = CancellationToken::new();
        let v4 = bind_slots(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)), &stop).await?;
        let v6 = match bind_slots(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)), &stop).await {
            Ok(slots) => slots,
            Err(error) => {
                tracing::warn!(%error, "no IPv6 socket: IPv6 nameservers cannot be asked");
                Vec::new()
            }
        };
        Ok(Arc::new(DirectClient {
            options,
            metrics,
            v4,
            v6,
            next: AtomicUsize::new(0),
            per_server: Mutex::new(HashMap::new()),
            _stop: stop.drop_guard(),
        }))
    }

    /// Asks `server` one question; `recursion_desired` false for authoritative servers.
    ///
    /// Counted once in the query metrics, labelled by the final outcome (retries and a
    /// TCP retry after truncation are part of the same query).
    pub async fn query(
        &self,
        server: SocketAddr,
        name: &str,
        rtype: RecordType,
        recursion_desired: bool,
    ) -> LookupResult {
        self.query_message(server, name, rtype, recursion_desired)
            .await
            .and_then(|message| interpret(&message, server, name, rtype))
    }

    /// Asks an authoritative `server` one question with the DO bit (recursion off): the
    /// normalised answer, carrying the whole response in [`Answer::signed`] so that the
    /// DNSSEC check reads its RRSIGs without asking again.
    pub async fn query_signed(
        &self,
        server: SocketAddr,
        name: &str,
        rtype: RecordType,
    ) -> LookupResult {
        let message = self.query_dnssec(server, name, rtype, false).await?;
        let mut answer = interpret(&message, server, name, rtype)?;
        answer.signed = Some(Arc::new(message));
        Ok(answer)
    }

    /// Asks `server` one question and returns the whole response (for the sections
    /// [`DirectClient::query`] does not read, such as a referral's authority records).
    /// Only NOERROR and NXDOMAIN responses are returned; other codes are errors.
    pub async fn query_message(
        &self,
        server: SocketAddr,
        name: &str,
        rtype: RecordType,
        recursion_desired: bool,
    ) -> Result<Message, DnsError> {
        let flags = Flags {
            recursion_desired,
            ..Flags::default()
        };
        self.message_with(server, name, rtype, flags).await
    }

    /// Asks for `name`/`rtype` with the DO bit, returning the whole response with its RRSIG,
    /// DNSKEY and DS records. `recursive` (asking a resolver) also sets RD and CD, so that a
    /// validating resolver hands bogus data back for the DNSSEC check to judge.
    pub async fn query_dnssec(
        &self,
        server: SocketAddr,
        name: &str,
        rtype: RecordType,
        recursive: bool,
    ) -> Result<Message, DnsError> {
        let flags = Flags {
            recursion_desired: recursive,
            dnssec_ok: true,
            checking_disabled: recursive,
        };
        self.message_with(server, name, rtype, flags).await
    }

    /// One counted question with the given flags; NOERROR and NXDOMAIN are answers.
    async fn message_with(
        &self,
        server: SocketAddr,
        name: &str,
        rtype: RecordType,
        flags: Flags,
    ) -> Result<Message, DnsError> {
        let qname = parse_name(name)?;
        let (in_flight, rate) = self.limits_for(server);
        // The semaphore is never closed, so acquiring only waits.
        let _turn = in_flight.acquire().await;
        let started = Instant::now();
        let result = self
            .exchange(server, &qname, rtype, flags, rate.as_deref())
            .await
            .and_then(|message| match message.metadata.response_code {
                ResponseCode::NoError | ResponseCode::NXDomain => Ok(message),
                rcode => Err(DnsError::Rcode {
                    server: server.to_string(),
                    name: name.to_owned(),
                    rtype,
                    rcode: rcode_name(rcode),
                }),
            });
        let label = match &result {
            Ok(message) if message.metadata.response_code == ResponseCode::NXDomain => "nxdomain",
            Ok(_) => "noerror",
            Err(error) => result_label(&Err(error.clone())),
        };
        self.metrics.observe(label, started.elapsed());
        result
    }

    /// The in-flight bound and rate limit of `server`, created on first use.
    fn limits_for(&self, server: SocketAddr) -> (Arc<Semaphore>, Option<Arc<RateLimiter>>) {
        let mut limits = self.per_server.lock().expect("lock poisoned");
        let limits = limits.entry(server).or_insert_with(|| ServerLimits {
            in_flight: Arc::new(Semaphore::new(self.options.max_in_flight_per_server.max(1))),
            rate: self
                .options
                .rate_per_server
                .map(|qps| Arc::new(RateLimiter::per_second(qps))),
        });
        (limits.in_flight.clone(), limits.rate.clone())
    }

    /// Waits for a slot of the server's and the daemon's rates (every packet sent, a retry
    /// or a TCP retry included, takes one).
    async fn pace(&self, per_server: Option<&RateLimiter>) {
        if let Some(rate) = per_server {
            rate.acquire().await;
        }
        if let Some(rate) = &self.options.rate {
            rate.acquire().await;
        }
    }

    /// Sends the question over UDP (retrying), then over TCP if the answer was truncated.
    async fn exchange(
        &self,
        server: SocketAddr,
        qname: &Name,
        rtype: RecordType,
        flags: Flags,
        rate: Option<&RateLimiter>,
    ) -> Result<Message, DnsError> {
        let question = (qname.clone(), to_hickory_type(rtype));
        let slots = if server.is_ipv4() { &self.v4 } else { &self.v6 };
        if slots.is_empty() {
            return Err(transport(
                server,
                qname,
                "no socket for this address family",
            ));
        }
        for _ in 0..self.options.attempts.max(1) {
            let slot = &slots[self.next.fetch_add(1, Ordering::Relaxed) % slots.len()];
            let (guard, receiver) = slot
                .register(server, question.clone())
                .map_err(|()| transport(server, qname, "65536 queries in flight on one socket"))?;
            let request = encode_query(guard.id, &question, flags)
                .map_err(|e| transport(server, qname, &e))?;
            self.pace(rate).await;
            slot.socket
                .send_to(&request, server)
                .await
                .map_err(|e| transport(server, qname, &format!("udp send: {e}")))?;
            match tokio::time::timeout(self.options.timeout, receiver).await {
                Ok(Ok(message)) if message.metadata.truncation => {
                    drop(guard);
                    self.pace(rate).await;
                    return self.tcp_exchange(server, &question, rtype, flags).await;
                }
                Ok(Ok(message)) => return Ok(message),
                Ok(Err(_)) => return Err(transport(server, qname, "client shut down")),
                Err(_elapsed) => continue,
            }
        }
        Err(timeout(server, qname, rtype))
    }

    /// One query over a fresh TCP connection, all within one timeout.
    async fn tcp_exchange(
        &self,
        server: SocketAddr,
        question: &(Name, rr::RecordType),
        rtype: RecordType,
        flags: Flags,
    ) -> Result<Message, DnsError> {
        let qname = &question.0;
        let id: u16 = rand::random();
        let request =
            encode_query(id, question, flags).map_err(|e| transport(server, qname, &e))?;
        let exchange = async {
            let mut stream = TcpStream::connect(server).await?;
            let len = u16::try_from(request.len()).map_err(io::Error::other)?;
            let mut framed = Vec::with_capacity(request.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&request);
            stream.write_all(&framed).await?;
            let len = stream.read_u16().await?;
            let mut response = vec![0u8; usize::from(len)];
            stream.read_exact(&mut response).await?;
            Ok::<_, io::Error>(response)
        };
        let response = match tokio::time::timeout(self.options.timeout, exchange).await {
            Err(_elapsed) => return Err(timeout(server, qname, rtype)),
            Ok(Err(e)) => return Err(transport(server, qname, &format!("tcp: {e}"))),
            Ok(Ok(response)) => response,
        };
        let message = decode_message(&response)
            .map_err(|e| transport(server, qname, &format!("undecodable tcp response: {e}")))?;
        if message.metadata.id != id || !answers(&message, question) {
            return Err(transport(
                server,
                qname,
                "tcp response does not match the question",
            ));
        }
        Ok(message)
    }
}

/// Binds one socket group on `addr` and starts its receive tasks.
async fn bind_slots(addr: SocketAddr, stop: &CancellationToken) -> io::Result<Vec<Arc<UdpSlot>>> {
    let mut slots = Vec::with_capacity(SOCKETS_PER_FAMILY);
    for _ in 0..SOCKETS_PER_FAMILY {
        let slot = Arc::new(UdpSlot {
            socket: super::bind_udp(addr)?,
            pending: Mutex::new(HashMap::new()),
            sequence: AtomicU64::new(0),
        });
        tokio::spawn(slot.clone().receive(stop.clone()));
        slots.push(slot);
    }
    Ok(slots)
}

/// The wire form of a query: RD as asked, EDNS0 with our payload size.
fn encode_query(
    id: u16,
    question: &(Name, rr::RecordType),
    flags: Flags,
) -> Result<Vec<u8>, String> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = flags.recursion_desired;
    message.metadata.checking_disabled = flags.checking_disabled;
    message.add_query(Query::query(question.0.clone(), question.1));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    edns.set_dnssec_ok(flags.dnssec_ok);
    message.set_edns(edns);
    message
        .to_vec()
        .map_err(|e| format!("cannot encode query: {e}"))
}

/// Reads a response: NOERROR/NXDOMAIN are answers, any other code an error.
fn interpret(message: &Message, server: SocketAddr, name: &str, rtype: RecordType) -> LookupResult {
    let rcode = message.metadata.response_code;
    if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
        return Err(DnsError::Rcode {
            server: server.to_string(),
            name: name.to_owned(),
            rtype,
            rcode: rcode_name(rcode),
        });
    }
    let chained = follow_chain(name, rtype, message.answers.iter());
    let status = status_of(&chained.records, rcode == ResponseCode::NXDomain);
    let ttl = match status {
        AnswerStatus::Records => chained.ttl.unwrap_or(0),
        AnswerStatus::NoData | AnswerStatus::NxDomain => negative_ttl(message.authorities.iter()),
    };
    Ok(Answer {
        status,
        records: chained.records,
        cname_chain: chained.cname_chain,
        ttl,
        server: Some(server),
        authoritative: message.metadata.authoritative && !is_referral(message),
        additional: message
            .additionals
            .iter()
            .filter_map(|record| {
                let ip = match &record.data {
                    rr::RData::A(a) => IpAddr::V4(a.0),
                    rr::RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
                    _ => return None,
                };
                Some((super::convert::name_string(&record.name), ip))
            })
            .collect(),
        signed: None,
    })
}

/// A delegation to other servers: no answer, NS records and no SOA in the authority
/// section. Never authoritative, whatever the AA bit says (hickory-server 0.26 sets it).
fn is_referral(message: &Message) -> bool {
    message.answers.is_empty()
        && message
            .authorities
            .iter()
            .any(|r| r.record_type() == rr::RecordType::NS)
        && !message
            .authorities
            .iter()
            .any(|r| r.record_type() == rr::RecordType::SOA)
}

/// A transport error quoting the server and name.
fn transport(server: SocketAddr, qname: &Name, reason: &str) -> DnsError {
    DnsError::Transport {
        server: server.to_string(),
        name: super::convert::name_string(qname),
        reason: reason.to_owned(),
    }
}

/// A timeout quoting the server and question.
fn timeout(server: SocketAddr, qname: &Name, rtype: RecordType) -> DnsError {
    DnsError::Timeout {
        server: server.to_string(),
        name: super::convert::name_string(qname),
        rtype,
    }
}
