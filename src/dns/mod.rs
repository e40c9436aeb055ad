//! The DNS seam: a small lookup trait returning owned, normalised answers, with
//! NXDOMAIN, NODATA, SERVFAIL/REFUSED and timeout kept distinct.
//!
//! Checks only ever see a [`DnsView`]: the [`DnsLookup`] trait for answers, the zone's
//! servers one by one ([`ZoneAuthority`]) and DNSSEC questions ([`SignedQuestions`]).
//! Production uses hickory (recursive resolvers and direct authoritative queries); unit
//! tests use `fake::FakeDns`.

pub mod authoritative;
mod convert;
pub mod direct;
#[cfg(any(test, feature = "testkit"))]
pub mod fake;
pub mod hickory;
pub mod metrics;
pub mod names;
pub mod pool;
pub mod rate;
pub mod server;
pub mod shared;
mod signed;
mod signed_zone;
pub(crate) mod sweep;
mod zone;

pub use authoritative::ZoneAuthority;
pub use metrics::QueryMetrics;
pub use signed::SignedQuestions;
pub use zone::{Delegation, Nameserver, ZoneServers, server_label};

use futures::future::BoxFuture;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// The record types maildrift asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Mail exchanger.
    Mx,
    /// Text (SPF, DMARC, DKIM, MTA-STS, TLS-RPT).
    Txt,
    /// Delegation.
    Ns,
    /// Start of authority.
    Soa,
    /// Alias.
    Cname,
    /// Reverse pointer (SPF `ptr`).
    Ptr,
    /// DNSSEC zone key.
    Dnskey,
    /// DNSSEC delegation signer (at the parent).
    Ds,
    /// DANE certificate association (`_25._tcp.<mx host>`), asked with the DO bit.
    Tlsa,
}

impl RecordType {
    /// Upper-case mnemonic, as in zone files.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Mx => "MX",
            RecordType::Txt => "TXT",
            RecordType::Ns => "NS",
            RecordType::Soa => "SOA",
            RecordType::Cname => "CNAME",
            RecordType::Ptr => "PTR",
            RecordType::Dnskey => "DNSKEY",
            RecordType::Ds => "DS",
            RecordType::Tlsa => "TLSA",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record's data, normalised: names are lower-case without the trailing dot
/// (the root is ""), TXT character-strings are joined with no separator (RFC 7208 §3.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RData {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A mail exchanger.
    Mx {
        /// Lower is preferred.
        preference: u16,
        /// Host name, normalised; "" for a null MX (RFC 7505).
        exchange: String,
    },
    /// A TXT record, its strings joined (invalid UTF-8 replaced).
    Txt(String),
    /// A nameserver host name.
    Ns(String),
    /// An alias target.
    Cname(String),
    /// A reverse-pointer target.
    Ptr(String),
    /// Start of authority (only the fields maildrift uses).
    Soa {
        /// Primary nameserver.
        mname: String,
        /// Zone serial.
        serial: u32,
        /// Negative-caching TTL.
        minimum: u32,
    },
}

impl fmt::Display for RData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RData::A(ip) => write!(f, "{ip}"),
            RData::Aaaa(ip) => write!(f, "{ip}"),
            RData::Mx {
                preference,
                exchange,
            } => write!(f, "{preference} {exchange}."),
            RData::Txt(text) => write!(f, "{text:?}"),
            RData::Ns(name) | RData::Cname(name) | RData::Ptr(name) => write!(f, "{name}."),
            RData::Soa {
                mname,
                serial,
                minimum,
            } => write!(f, "{mname}. serial={serial} minimum={minimum}"),
        }
    }
}

/// Whether the name had data of the asked type. All three are conclusive answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnswerStatus {
    /// NOERROR with at least one record of the asked type.
    Records,
    /// NOERROR, the name exists, no record of that type (NODATA).
    NoData,
    /// The name does not exist (NXDOMAIN).
    NxDomain,
}

/// A conclusive DNS answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Records, NODATA or NXDOMAIN.
    pub status: AnswerStatus,
    /// Records of the asked type at the end of any CNAME chain, in answer order.
    pub records: Vec<RData>,
    /// CNAME targets followed from the asked name, in order (empty when none).
    pub cname_chain: Vec<String>,
    /// Smallest TTL of the answer records, or the negative-caching TTL (SOA minimum) for
    /// NODATA/NXDOMAIN; 0 when unknown.
    pub ttl: u32,
    /// The server that answered, when known.
    pub server: Option<SocketAddr>,
    /// The AA bit of the response (always false through a recursive resolver). A referral
    /// (no answer, NS records in the authority section, no SOA) counts as not authoritative
    /// even with AA set: hickory-server 0.26 sets AA on referrals.
    pub authoritative: bool,
    /// Addresses the server added in the additional section (an MX answer's hosts), names
    /// normalised; empty through the resolver library.
    pub additional: Vec<(String, IpAddr)>,
    /// The whole response, when it was asked with the DO bit (an authoritative server's
    /// answer, RRSIGs included): the DNSSEC check validates it instead of asking again.
    pub signed: Option<Arc<hickory_proto::op::Message>>,
}

impl Answer {
    /// An answer with records (for fakes and tests).
    pub fn records(records: Vec<RData>, ttl: u32) -> Answer {
        let status = if records.is_empty() {
            AnswerStatus::NoData
        } else {
            AnswerStatus::Records
        };
        Answer {
            status,
            records,
            cname_chain: Vec::new(),
            ttl,
            server: None,
            authoritative: false,
            additional: Vec::new(),
            signed: None,
        }
    }

    /// A NODATA or NXDOMAIN answer (for fakes and tests).
    pub fn empty(status: AnswerStatus) -> Answer {
        Answer {
            status,
            records: Vec::new(),
            cname_chain: Vec::new(),
            ttl: 0,
            server: None,
            authoritative: false,
            additional: Vec::new(),
            signed: None,
        }
    }

    /// The addresses the additional section gives for `host`, when this is an
    /// authoritative answer and `host` is in the zone of `domain` (at or below it): data
    /// the server is authoritative for, the very addresses a resolver would fetch.
    pub fn in_zone_addresses(&self, domain: &str, host: &str) -> Option<Vec<IpAddr>> {
        if !self.authoritative || !at_or_below(host, domain) {
            return None;
        }
        let addresses: Vec<IpAddr> = self
            .additional
            .iter()
            .filter(|(name, _)| name == host)
            .map(|(_, ip)| *ip)
            .collect();
        (!addresses.is_empty()).then_some(addresses)
    }

    /// The TXT records of the answer, each trimmed, in answer order.
    pub fn texts(&self) -> Vec<String> {
        self.records
            .iter()
            .filter_map(|r| match r {
                RData::Txt(text) => Some(text.trim().to_owned()),
                _ => None,
            })
            .collect()
    }

    /// True for NODATA and NXDOMAIN: the "void lookup" of RFC 7208 §4.6.4.
    pub fn is_void(&self) -> bool {
        self.records.is_empty()
    }
}

/// Why a lookup gave no conclusive answer. Never evidence of drift.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// No response within the timeout, after retries.
    #[error("timeout asking {server} for {name} {rtype}")]
    Timeout {
        /// Server asked ("resolver" when the resolver library chose).
        server: String,
        /// Name asked.
        name: String,
        /// Type asked.
        rtype: RecordType,
    },
    /// SERVFAIL, REFUSED, NOTIMP, FORMERR and friends.
    #[error("{server} answered {rcode} for {name} {rtype}")]
    Rcode {
        /// Server asked.
        server: String,
        /// Name asked.
        name: String,
        /// Type asked.
        rtype: RecordType,
        /// Upper-case response code, e.g. "SERVFAIL".
        rcode: String,
    },
    /// An authoritative server answered without the AA bit (lame delegation).
    #[error("{server} is not authoritative for {name} (no AA bit)")]
    NotAuthoritative {
        /// Server asked.
        server: String,
        /// Name asked.
        name: String,
    },
    /// No server to ask (e.g. NS discovery found none).
    #[error("no nameserver to ask for {name}: {reason}")]
    NoServers {
        /// Name asked.
        name: String,
        /// Why there were none.
        reason: String,
    },
    /// The name is not a valid DNS name.
    #[error("invalid DNS name {name:?}: {reason}")]
    InvalidName {
        /// Name as given.
        name: String,
        /// Parser message.
        reason: String,
    },
    /// Transport or protocol failure (socket error, malformed response, ...).
    #[error("DNS error asking {server} for {name}: {reason}")]
    Transport {
        /// Server asked.
        server: String,
        /// Name asked.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

/// The result of one lookup.
pub type LookupResult = Result<Answer, DnsError>;

/// Asks one question. Implementations are cheap to share (`Arc<dyn DnsLookup>`).
pub trait DnsLookup: Send + Sync {
    /// Looks `name` (normalised, no trailing dot) up for `rtype`.
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> BoxFuture<'a, LookupResult>;
}

/// Every way a check sees DNS, with the servers explicit.
#[derive(Clone)]
pub struct DnsView {
    /// The domain's own records (MX, TXT at the apex, `_dmarc`, DKIM selectors): the
    /// authoritative servers asked directly when `authoritative: true`, else the resolvers.
    pub zone: Arc<dyn DnsLookup>,
    /// Everything else (SPF includes, MX host addresses): recursive resolvers, shared
    /// between domains so that common provider records are asked once per round.
    pub recursive: Arc<dyn DnsLookup>,
    /// The zone's servers one by one, when the domain is asked authoritatively (`None`
    /// when it is watched through resolvers only).
    pub authority: Option<Arc<dyn ZoneAuthority>>,
    /// Where DNSSEC questions go (`None`: nowhere to ask them).
    pub signed: Option<Arc<SignedQuestions>>,
}

impl DnsView {
    /// A view through these lookups, without zone servers or DNSSEC questions.
    pub fn new(zone: Arc<dyn DnsLookup>, recursive: Arc<dyn DnsLookup>) -> DnsView {
        DnsView {
            zone,
            recursive,
            authority: None,
            signed: None,
        }
    }

    /// With the zone's servers asked one by one.
    pub fn with_authority(mut self, authority: Arc<dyn ZoneAuthority>) -> DnsView {
        self.authority = Some(authority);
        self
    }

    /// With DNSSEC questions going to `signed`.
    pub fn with_signed(mut self, signed: SignedQuestions) -> DnsView {
        self.signed = Some(Arc::new(signed));
        self
    }
}

/// Receive buffer asked for on UDP sockets (the kernel caps it at `net.core.rmem_max`):
/// replies to many queries in flight arrive in bursts, and a dropped reply costs a timeout.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// Binds a UDP socket with a large receive buffer (best effort).
pub(crate) fn bind_udp(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if let Err(error) = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER) {
        tracing::debug!(%error, "cannot enlarge the UDP receive buffer");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// Normalises a domain name: trims, lower-cases, drops one trailing dot.
pub fn normalize_name(name: &str) -> String {
    let name = name.trim();
    let name = name.strip_suffix('.').unwrap_or(name);
    name.to_ascii_lowercase()
}

/// Whether `name` is `zone` or a name below it (both normalised: lower case, no trailing
/// dot).
pub fn at_or_below(name: &str, zone: &str) -> bool {
    name == zone
        || name
            .strip_suffix(zone)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// The name one label up (`a.example.com` → `example.com`); `None` for a single label.
pub fn parent_of(name: &str) -> Option<&str> {
    name.split_once('.').map(|(_, parent)| parent)
}

/// Parses a server address: `IP` (port 53) or `IP:PORT`; IPv6 with a port as `[IP]:PORT`.
pub fn parse_server_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    let unbracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    if let Some(ip) = unbracketed.and_then(|t| t.parse::<Ipv6Addr>().ok()) {
        return Ok(SocketAddr::new(IpAddr::V6(ip), 53));
    }
    Err(format!(
        "{text:?} is not an address: expected IP or IP:PORT (IPv6 with a port as [IP]:PORT)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_or_below_goes_by_whole_labels() {
        assert!(at_or_below("example.com", "example.com"));
        assert!(at_or_below("mx1.mail.example.com", "example.com"));
        assert!(!at_or_below("badexample.com", "example.com"));
        assert!(!at_or_below("example.com", "mail.example.com"));
    }

    #[test]
    fn server_addresses() {
        assert_eq!(
            parse_server_addr("127.0.0.1").unwrap().to_string(),
            "127.0.0.1:53"
        );
        assert_eq!(parse_server_addr("127.0.0.1:5300").unwrap().port(), 5300);
        assert_eq!(parse_server_addr("::1").unwrap().to_string(), "[::1]:53");
        assert_eq!(parse_server_addr("[::1]:5353").unwrap().port(), 5353);
        assert_eq!(parse_server_addr("[::1]").unwrap().port(), 53);
        let err = parse_server_addr("dns.example:53").unwrap_err();
        assert!(err.contains("\"dns.example:53\""), "{err}");
    }

    #[test]
    fn names() {
        assert_eq!(normalize_name(" MX1.Example.COM. "), "mx1.example.com");
        assert_eq!(normalize_name("."), "");
    }
}

#[cfg(test)]
mod live_tests;
