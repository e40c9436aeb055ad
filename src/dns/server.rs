//! An in-process authoritative DNS server (hickory-server) on loopback, for `maildrift demo`
//! and integration tests: zones from zone-file text, editable while it runs.
//!
//! The zones live in a hickory `Catalog` of in-memory zone handlers. Editing a zone builds
//! a new catalog and swaps it in whole, so a query sees either the old or the new zone,
//! never a half-edited one. Our own request handler in front of the catalog counts queries
//! and simulates failures.

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode};
use hickory_proto::rr::{LowerName, Name, Record, RecordSet, RrKey};
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{
    AxfrPolicy, Catalog, MessageResponseBuilder, ZoneHandler, ZoneType,
};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

/// How long an idle TCP client may keep a connection open.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Responses buffered per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 16;
/// Tries at finding a port free for both UDP and TCP.
const BIND_ATTEMPTS: usize = 10;

/// How the server behaves; tests switch it to simulate failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMode {
    /// Answer from the zones.
    Normal,
    /// Answer every query with SERVFAIL.
    ServFail,
    /// Read queries and never answer (timeouts).
    Silent,
}

impl ServerMode {
    /// Compact form for an atomic.
    fn to_u8(self) -> u8 {
        match self {
            ServerMode::Normal => 0,
            ServerMode::ServFail => 1,
            ServerMode::Silent => 2,
        }
    }

    /// Inverse of [`ServerMode::to_u8`].
    fn from_u8(value: u8) -> ServerMode {
        match value {
            1 => ServerMode::ServFail,
            2 => ServerMode::Silent,
            _ => ServerMode::Normal,
        }
    }
}

/// A running server; stops when dropped.
pub struct LocalDnsServer {
    /// Bound UDP and TCP address.
    addr: SocketAddr,
    /// State shared with the request handler.
    state: Arc<ServerState>,
    /// The hickory server; dropping it aborts its tasks.
    server: Server<LocalHandler>,
}

/// Zones, mode and counters, shared between the handle and the request handler.
struct ServerState {
    /// The catalog queries are answered from; replaced whole on every edit.
    catalog: RwLock<Arc<Catalog>>,
    /// The zone handlers by origin, from which a new catalog is built on edit. The lock
    /// also serialises edits.
    zones: Mutex<BTreeMap<LowerName, Arc<dyn ZoneHandler>>>,
    /// A [`ServerMode`] as u8.
    mode: AtomicU8,
    /// Queries received, in any mode.
    queries: AtomicU64,
    /// Queries received per name asked (normalised), for tests that count questions.
    by_name: Mutex<HashMap<String, u64>>,
    /// Zones whose queries are read and never answered (one zone timing out while the
    /// others answer).
    silent: RwLock<Vec<String>>,
}

/// Our request handler: counts, simulates failures, else asks the catalog.
struct LocalHandler(Arc<ServerState>);

#[async_trait::async_trait]
impl RequestHandler for LocalHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        self.0.queries.fetch_add(1, Ordering::Relaxed);
        let names: Vec<String> = request
            .queries
            .queries()
            .iter()
            .map(|q| super::normalize_name(&q.name().to_string()))
            .collect();
        {
            let mut by_name = self.0.by_name.lock().expect("counter lock poisoned");
            for name in &names {
                *by_name.entry(name.clone()).or_default() += 1;
            }
        }
        let silenced = {
            let silent = self.0.silent.read().expect("silent lock poisoned");
            names
                .iter()
                .any(|name| silent.iter().any(|zone| super::at_or_below(name, zone)))
        };
        if silenced {
            return unanswered(request);
        }
        match ServerMode::from_u8(self.0.mode.load(Ordering::Relaxed)) {
            ServerMode::Normal => {
                let catalog = self
                    .0
                    .catalog
                    .read()
                    .expect("catalog lock poisoned")
                    .clone();
                catalog
                    .handle_request::<R, T>(request, response_handle)
                    .await
            }
            ServerMode::ServFail => {
                let response = MessageResponseBuilder::new(&request.queries, None)
                    .error_msg(&request.metadata, ResponseCode::ServFail);
                match response_handle.send_response(response).await {
                    Ok(info) => info,
                    Err(error) => {
                        tracing::warn!(%error, "failed to send SERVFAIL");
                        unanswered(request)
                    }
                }
            }
            ServerMode::Silent => unanswered(request),
        }
    }
}

/// What we report to hickory for a request we did not answer.
fn unanswered(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

/// Parses zone-file text (with `$ORIGIN` and an SOA record) into a zone handler.
fn parse_zone(zone_text: &str) -> Result<(LowerName, Arc<dyn ZoneHandler>), String> {
    // DNSKEY and RRSIG lines of a pre-signed zone are added after hickory's parser.
    let presigned = super::signed_zone::split(zone_text)?;
    let (origin, records) = Parser::new(&presigned.text, None, None)
        .parse()
        .map_err(|e| format!("invalid zone file: {e}"))?;
    let lower = LowerName::new(&origin);
    // No NSEC/NSEC3 proofs are generated.
    let mut handler: InMemoryZoneHandler = InMemoryZoneHandler::new(
        origin.clone(),
        records,
        ZoneType::Primary,
        AxfrPolicy::Deny,
        None,
    )
    .map_err(|e| format!("invalid zone {origin}: {e}"))?;
    super::signed_zone::insert(&mut handler, presigned.records)
        .map_err(|e| format!("invalid zone {origin}: {e}"))?;
    Ok((lower, Arc::new(handler)))
}

/// A zone handler for `records` (which must hold the origin's SOA record). Unlike zone-file
/// text, records can carry names whose labels hold any octets (`foo:bar/baz`, spaces) and
/// TXT records with no character-string at all.
fn records_zone(
    origin: Name,
    records: Vec<Record>,
) -> Result<(LowerName, Arc<dyn ZoneHandler>), String> {
    let mut sets: BTreeMap<RrKey, RecordSet> = BTreeMap::new();
    for record in records {
        let key = RrKey::new(LowerName::new(&record.name), record.record_type());
        sets.entry(key)
            .or_insert_with(|| RecordSet::new(record.name.clone(), record.record_type(), 0))
            .insert(record, 0);
    }
    let handler: InMemoryZoneHandler = InMemoryZoneHandler::new(
        origin.clone(),
        sets,
        ZoneType::Primary,
        AxfrPolicy::Deny,
        None,
    )
    .map_err(|e| format!("invalid zone {origin}: {e}"))?;
    Ok((LowerName::new(&origin), Arc::new(handler)))
}

/// A catalog serving `zones`.
fn build_catalog(zones: &BTreeMap<LowerName, Arc<dyn ZoneHandler>>) -> Catalog {
    let mut catalog = Catalog::new();
    for (origin, handler) in zones {
        catalog.upsert(origin.clone(), vec![handler.clone()]);
    }
    catalog
}

/// Binds UDP on `addr`, then TCP on the same port. With port 0, retries when TCP's port is
/// taken.
async fn bind_pair(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    if addr.port() != 0 {
        let udp = super::bind_udp(addr)?;
        let tcp = TcpListener::bind(addr).await?;
        return Ok((udp, tcp));
    }
    let ip = addr.ip();
    let mut last_error = None;
    for _ in 0..BIND_ATTEMPTS {
        let udp = super::bind_udp(SocketAddr::new(ip, 0))?;
        let addr = udp.local_addr()?;
        match TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    let error = last_error.expect("at least one attempt");
    Err(io::Error::new(
        error.kind(),
        format!("no port free for both UDP and TCP on {ip} after {BIND_ATTEMPTS} tries: {error}"),
    ))
}

impl LocalDnsServer {
    /// Binds UDP and TCP on `ip` port 0 and serves the zones (each a zone-file text with
    /// `$ORIGIN` and an SOA record).
    pub async fn start(ip: IpAddr, zones: &[&str]) -> std::io::Result<LocalDnsServer> {
        LocalDnsServer::start_on(SocketAddr::new(ip, 0), zones).await
    }

    /// Like [`LocalDnsServer::start`] on a chosen address: several servers on one port at
    /// different loopback addresses (127.0.0.1, 127.0.0.2, ...) look like a zone's
    /// nameservers on port 53 to a client told to use that port.
    pub async fn start_on(addr: SocketAddr, zones: &[&str]) -> std::io::Result<LocalDnsServer> {
        let mut handlers = BTreeMap::new();
        for (index, zone_text) in zones.iter().enumerate() {
            let (origin, handler) = parse_zone(zone_text).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("zone #{}: {e}", index + 1),
                )
            })?;
            handlers.insert(origin, handler);
        }
        LocalDnsServer::serve(addr, handlers).await
    }

    /// Like [`LocalDnsServer::start`] with zones given as records (origin and records, the
    /// origin's SOA included): for names with any octets and TXT records without strings.
    pub async fn start_with_records(
        ip: IpAddr,
        zones: Vec<(Name, Vec<Record>)>,
    ) -> std::io::Result<LocalDnsServer> {
        let mut handlers = BTreeMap::new();
        for (origin, records) in zones {
            let (origin, handler) = records_zone(origin, records)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            handlers.insert(origin, handler);
        }
        LocalDnsServer::serve(SocketAddr::new(ip, 0), handlers).await
    }

    /// Binds `addr` and serves `handlers`.
    async fn serve(
        addr: SocketAddr,
        handlers: BTreeMap<LowerName, Arc<dyn ZoneHandler>>,
    ) -> std::io::Result<LocalDnsServer> {
        let state = Arc::new(ServerState {
            catalog: RwLock::new(Arc::new(build_catalog(&handlers))),
            zones: Mutex::new(handlers),
            mode: AtomicU8::new(ServerMode::Normal.to_u8()),
            queries: AtomicU64::new(0),
            by_name: Mutex::new(HashMap::new()),
            silent: RwLock::new(Vec::new()),
        });
        let (udp, tcp) = bind_pair(addr).await?;
        let addr = udp.local_addr()?;
        let mut server = Server::new(LocalHandler(state.clone()));
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        tracing::debug!(%addr, "local DNS server started");
        Ok(LocalDnsServer {
            addr,
            state,
            server,
        })
    }

    /// The bound address (same port for UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces (or adds) the zone given by the text's `$ORIGIN`.
    pub fn set_zone(&self, zone_text: &str) -> Result<(), String> {
        let (origin, handler) = parse_zone(zone_text)?;
        let mut zones = self.state.zones.lock().expect("zones lock poisoned");
        zones.insert(origin, handler);
        let catalog = Arc::new(build_catalog(&zones));
        *self.state.catalog.write().expect("catalog lock poisoned") = catalog;
        Ok(())
    }

    /// Stops serving the zone `origin` (queries for it are then REFUSED).
    pub fn remove_zone(&self, origin: &str) -> Result<(), String> {
        let name =
            Name::from_utf8(origin).map_err(|e| format!("invalid zone name {origin:?}: {e}"))?;
        let mut zones = self.state.zones.lock().expect("zones lock poisoned");
        if zones.remove(&LowerName::new(&name)).is_none() {
            return Err(format!("no zone {origin:?} on this server"));
        }
        let catalog = Arc::new(build_catalog(&zones));
        *self.state.catalog.write().expect("catalog lock poisoned") = catalog;
        Ok(())
    }

    /// Switches failure simulation.
    pub fn set_mode(&self, mode: ServerMode) {
        self.state.mode.store(mode.to_u8(), Ordering::Relaxed);
    }

    /// Queries received so far.
    pub fn query_count(&self) -> u64 {
        self.state.queries.load(Ordering::Relaxed)
    }

    /// Queries received so far for `name` (any type).
    pub fn queries_for(&self, name: &str) -> u64 {
        let by_name = self.state.by_name.lock().expect("counter lock poisoned");
        by_name
            .get(&super::normalize_name(name))
            .copied()
            .unwrap_or(0)
    }

    /// Makes queries for `zone` and the names under it go unanswered (`false`: answered
    /// again), while the other zones answer.
    pub fn set_zone_silent(&self, zone: &str, silent: bool) {
        let zone = super::normalize_name(zone);
        let mut zones = self.state.silent.write().expect("silent lock poisoned");
        zones.retain(|z| *z != zone);
        if silent {
            zones.push(zone);
        }
    }

    /// Stops accepting queries and waits for the server tasks to finish.
    pub async fn shutdown(mut self) -> io::Result<()> {
        self.server
            .shutdown_gracefully()
            .await
            .map_err(|e| io::Error::other(format!("DNS server on {}: {e}", self.addr)))
    }
}

impl Drop for LocalDnsServer {
    fn drop(&mut self) {
        // The server's task set aborts its tasks when dropped; cancelling first lets
        // connection handlers see the shutdown too.
        self.server.shutdown_token().cancel();
    }
}
