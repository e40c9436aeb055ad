//! The authoritative view of a domain: its nameservers (discovered through NS records or
//! configured) asked directly, recursion off, AA bit required.

use super::convert::name_string;
use super::direct::DirectClient;
use super::pool::ServerPool;
use super::sweep::Sweeper;
use super::zone::{Delegation, Nameserver, ZoneServers};
use super::{
    AnswerStatus, DnsError, DnsLookup, LookupResult, RData, RecordType, normalize_name, parent_of,
};
use futures::future::BoxFuture;
use hickory_proto::rr;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long a discovered server list is reused before NS records are asked again.
const DISCOVERY_MAX_AGE: Duration = Duration::from_secs(60);

/// How long a server that failed is asked after the others.
const FAILED_SERVER_MEMORY: Duration = Duration::from_secs(300);

/// Which servers are authoritative for a domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AuthoritativeServers {
    /// Find the zone's NS records (and their addresses) through the recursive resolvers.
    Discover,
    /// Ask these instead (hidden primaries, split horizon, tests).
    Fixed(Vec<SocketAddr>),
}

/// The servers of a domain's zone, one by one, for the nameservers check (the
/// [`DnsView::authority`](super::DnsView::authority) of an authoritative view).
pub trait ZoneAuthority: Send + Sync {
    /// The zone holding `name` and every one of its nameserver addresses.
    fn zone_servers<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<ZoneServers>, DnsError>>;

    /// The NS set the parent zone publishes for `zone`; `Ok(None)` when the servers are
    /// configured rather than discovered, or the parent cannot be found.
    fn parent_delegation<'a>(
        &'a self,
        zone: &'a str,
    ) -> BoxFuture<'a, Result<Option<Delegation>, DnsError>>;

    /// Asks one server directly (recursion off), through the shared per-server memo.
    fn ask_server<'a>(
        &'a self,
        server: SocketAddr,
        name: &'a str,
        rtype: RecordType,
    ) -> BoxFuture<'a, LookupResult>;

    /// The recursive resolvers whose answers are compared with the authoritative ones.
    fn resolvers(&self) -> &[SocketAddr];

    /// Asks a recursive resolver (recursion on), never memoised: the TTL it reports is the
    /// time left in its cache.
    fn ask_resolver<'a>(
        &'a self,
        resolver: SocketAddr,
        name: &'a str,
        rtype: RecordType,
    ) -> BoxFuture<'a, LookupResult>;
}

/// A [`DnsLookup`] answering from a domain's authoritative servers. It also knows every
/// server of the zone, for the nameservers check ([`ZoneAuthority`]).
pub struct AuthoritativeLookup {
    /// Asks each server, one memo per server shared by every domain.
    pub(super) pool: Arc<ServerPool>,
    /// Configured or discovered servers.
    servers: AuthoritativeServers,
    /// Finds NS records and nameserver addresses when discovering.
    pub(super) recursive: Arc<dyn DnsLookup>,
    /// Port discovered nameservers are asked on (53 except in tests).
    pub(super) port: u16,
    /// Discovered zones by the names they were discovered for (shared by every domain
    /// asking the same servers: one entry per zone name asked in the last minute).
    discovered: Mutex<DiscoveryCache>,
    /// Recursive resolvers whose answers are compared with the authoritative ones.
    resolvers: Vec<SocketAddr>,
    /// Servers that failed (timeout, error, no AA) and when: asked last for a while.
    failed: Mutex<HashMap<SocketAddr, Instant>>,
}

/// Discovered zones by name; expired entries are dropped by a [`Sweeper`], so an insert
/// costs O(1) amortised however many domains share the cache.
#[derive(Default)]
struct DiscoveryCache {
    entries: HashMap<String, Discovered>,
    /// When expired entries are next dropped.
    sweeper: Sweeper,
    /// Entries visited by sweeps so far (the tests bound the work per insert).
    #[cfg(test)]
    scanned: usize,
}

impl DiscoveryCache {
    /// Fewest entries a sweep waits for.
    const MIN_SWEEP: usize = 64;

    /// Remembers `zone` for `names` until `now` + [`DISCOVERY_MAX_AGE`].
    fn insert(&mut self, names: &[String], zone: &Arc<ZoneServers>, now: Instant) {
        let _visited =
            self.sweeper
                .before_insert(&mut self.entries, DiscoveryCache::MIN_SWEEP, |_, entry| {
                    entry.expires > now
                });
        #[cfg(test)]
        {
            self.scanned += _visited;
        }
        for name in names {
            let entry = Discovered {
                zone: zone.clone(),
                expires: now + DISCOVERY_MAX_AGE,
            };
            self.entries.insert(name.clone(), entry);
        }
    }

    /// The unexpired zone of exactly `name`.
    fn get(&self, name: &str, now: Instant) -> Option<Arc<ZoneServers>> {
        self.entries
            .get(name)
            .filter(|entry| entry.expires > now)
            .map(|entry| entry.zone.clone())
    }
}

/// A discovered zone and when it stops being reused.
#[derive(Clone)]
struct Discovered {
    /// The zone and its nameservers, in the order they are tried.
    zone: Arc<ZoneServers>,
    /// Reused until then.
    expires: Instant,
}

impl AuthoritativeLookup {
    /// `recursive` is used only to discover nameservers and their addresses.
    pub fn new(
        client: Arc<DirectClient>,
        servers: AuthoritativeServers,
        recursive: Arc<dyn DnsLookup>,
    ) -> AuthoritativeLookup {
        AuthoritativeLookup {
            pool: Arc::new(ServerPool::new(client, Duration::ZERO)),
            servers,
            recursive,
            port: 53,
            discovered: Mutex::default(),
            resolvers: Vec::new(),
            failed: Mutex::new(HashMap::new()),
        }
    }

    /// Asks through `pool` (shared with other domains) instead of a pool of its own.
    pub fn with_pool(mut self, pool: Arc<ServerPool>) -> AuthoritativeLookup {
        self.pool = pool;
        self
    }

    /// Compares the authoritative answers with these recursive resolvers' answers.
    pub fn with_resolvers(mut self, resolvers: Vec<SocketAddr>) -> AuthoritativeLookup {
        self.resolvers = resolvers;
        self
    }

    /// Asks discovered nameservers on `port` instead of 53 (for tests and demos).
    pub fn with_port(mut self, port: u16) -> AuthoritativeLookup {
        self.port = port;
        self
    }

    /// The servers asked for `name`, in the order they are tried.
    pub async fn servers_for(&self, name: &str) -> Result<Arc<Vec<SocketAddr>>, DnsError> {
        match &self.servers {
            AuthoritativeServers::Fixed(servers) => Ok(Arc::new(servers.clone())),
            AuthoritativeServers::Discover => {
                let zone = self.discover(&normalize_name(name)).await?;
                Ok(Arc::new(
                    zone.nameservers.iter().map(|ns| ns.addr).collect(),
                ))
            }
        }
    }

    /// The zone holding `name` and every one of its nameserver addresses. Discovered
    /// through NS records, or, for fixed servers, the closest name with an SOA record at
    /// those servers.
    pub async fn zone_servers(&self, name: &str) -> Result<Arc<ZoneServers>, DnsError> {
        let name = normalize_name(name);
        match &self.servers {
            AuthoritativeServers::Discover => self.discover(&name).await,
            AuthoritativeServers::Fixed(servers) => {
                if let Some(zone) = self.cached(&name) {
                    return Ok(zone);
                }
                let zone = Arc::new(ZoneServers {
                    zone: self.apex_at_fixed(&name).await?,
                    nameservers: servers
                        .iter()
                        .map(|&addr| Nameserver { host: None, addr })
                        .collect(),
                });
                self.remember(&[name], &zone);
                Ok(zone)
            }
        }
    }

    /// The closest enclosing name of `name` with an SOA record at the fixed servers.
    async fn apex_at_fixed(&self, name: &str) -> Result<String, DnsError> {
        let mut candidate = name.to_owned();
        loop {
            let answer = self.ask_all_at_once(&candidate, RecordType::Soa).await?;
            if answer.status == AnswerStatus::Records {
                return Ok(candidate);
            }
            match parent_of(&candidate) {
                Some(parent) => candidate = parent.to_owned(),
                None => {
                    return Err(DnsError::NoServers {
                        name: name.to_owned(),
                        reason: "the configured nameservers have no SOA record at the name \
                                 or any parent"
                            .to_owned(),
                    });
                }
            }
        }
    }

    /// Asks every server at once; the first authoritative answer wins (else the last error).
    async fn ask_all_at_once(&self, name: &str, rtype: RecordType) -> LookupResult {
        let servers = self.servers_for(name).await?;
        if servers.is_empty() {
            return Err(DnsError::NoServers {
                name: normalize_name(name),
                reason: "the configured nameserver list is empty".to_owned(),
            });
        }
        let asks = servers.iter().map(|&server| {
            Box::pin(async move {
                match self.pool.ask(server, name, rtype).await {
                    Ok(answer) if answer.authoritative => Ok(answer),
                    Ok(_) => Err(DnsError::NotAuthoritative {
                        server: server.to_string(),
                        name: normalize_name(name),
                    }),
                    Err(error) => Err(error),
                }
            })
        });
        match futures::future::select_ok(asks).await {
            Ok((answer, _still_asking)) => Ok(answer),
            Err(error) => Err(error),
        }
    }

    /// Finds the NS set of the zone holding `name`: at the name, else one label up at a
    /// time, never at a TLD. Results are remembered for every name walked.
    async fn discover(&self, name: &str) -> Result<Arc<ZoneServers>, DnsError> {
        let mut walked = Vec::new();
        let mut candidate = name;
        loop {
            if let Some(zone) = self.cached(candidate) {
                self.remember(&walked, &zone);
                return Ok(zone);
            }
            // Never ask a TLD (or the root): its servers are not the domain's.
            if !candidate.contains('.') {
                return Err(DnsError::NoServers {
                    name: name.to_owned(),
                    reason: "no NS records at the name or any parent below the TLD".to_owned(),
                });
            }
            walked.push(candidate.to_owned());
            if let Some(nameservers) = self.nameservers_of(candidate).await? {
                let zone = Arc::new(ZoneServers {
                    zone: candidate.to_owned(),
                    nameservers,
                });
                self.remember(&walked, &zone);
                return Ok(zone);
            }
            candidate = parent_of(candidate).unwrap_or("");
        }
    }

    /// The nameservers of `zone` through the recursive resolvers: `None` when it has no NS
    /// records; an error when none of them has an address.
    pub(super) async fn nameservers_of(
        &self,
        zone: &str,
    ) -> Result<Option<Vec<Nameserver>>, DnsError> {
        let answer = self.recursive.lookup(zone, RecordType::Ns).await?;
        let hosts: Vec<String> = answer
            .records
            .iter()
            .filter_map(|record| match record {
                RData::Ns(host) => Some(host.clone()),
                _ => None,
            })
            .collect();
        if answer.status != AnswerStatus::Records || hosts.is_empty() {
            return Ok(None);
        }
        self.addresses(zone, hosts).await.map(Some)
    }

    /// The addresses of the NS hosts: hosts sorted by name, A then AAAA for each.
    async fn addresses(
        &self,
        zone: &str,
        mut hosts: Vec<String>,
    ) -> Result<Vec<Nameserver>, DnsError> {
        hosts.sort();
        hosts.dedup();
        let mut servers: Vec<Nameserver> = Vec::new();
        for host in &hosts {
            for rtype in [RecordType::A, RecordType::Aaaa] {
                match self.recursive.lookup(host, rtype).await {
                    Ok(answer) => {
                        for record in answer.records {
                            let ip = match record {
                                RData::A(ip) => IpAddr::V4(ip),
                                RData::Aaaa(ip) => IpAddr::V6(ip),
                                _ => continue,
                            };
                            let addr = SocketAddr::new(ip, self.port);
                            if !servers.iter().any(|s| s.addr == addr) {
                                servers.push(Nameserver {
                                    host: Some(host.clone()),
                                    addr,
                                });
                            }
                        }
                    }
                    Err(error) => {
                        tracing::debug!(zone, host = %host, %error, "nameserver address lookup failed");
                    }
                }
            }
        }
        if servers.is_empty() {
            return Err(DnsError::NoServers {
                name: zone.to_owned(),
                reason: format!("no address found for nameservers {}", hosts.join(", ")),
            });
        }
        Ok(servers)
    }

    /// An unexpired discovered zone for exactly `name`.
    fn cached(&self, name: &str) -> Option<Arc<ZoneServers>> {
        let discovered = self.discovered.lock().expect("discovery cache poisoned");
        discovered.get(name, Instant::now())
    }

    /// Remembers `zone` for the `names` walked.
    fn remember(&self, names: &[String], zone: &Arc<ZoneServers>) {
        let mut discovered = self.discovered.lock().expect("discovery cache poisoned");
        discovered.insert(names, zone, Instant::now());
    }

    /// Asks each server in turn until one gives a conclusive authoritative answer. Servers
    /// that failed recently are asked last, so a dead nameserver does not cost every
    /// question a timeout.
    async fn ask(&self, name: &str, rtype: RecordType) -> LookupResult {
        let mut servers = self.servers_for(name).await?.to_vec();
        {
            let now = Instant::now();
            let mut failed = self.failed.lock().expect("lock poisoned");
            failed.retain(|_, at| now.duration_since(*at) < FAILED_SERVER_MEMORY);
            // A stable sort keeps the configured order among equals.
            servers.sort_by_key(|server| failed.contains_key(server));
        }
        let mut last_error = None;
        for server in servers {
            let error = match self.pool.ask(server, name, rtype).await {
                Ok(answer) if answer.authoritative => {
                    self.failed.lock().expect("lock poisoned").remove(&server);
                    return Ok(answer);
                }
                Ok(_) => DnsError::NotAuthoritative {
                    server: server.to_string(),
                    name: normalize_name(name),
                },
                Err(error @ DnsError::InvalidName { .. }) => return Err(error),
                Err(error) => error,
            };
            self.failed
                .lock()
                .expect("lock poisoned")
                .insert(server, Instant::now());
            last_error = Some(error);
        }
        Err(last_error.unwrap_or_else(|| DnsError::NoServers {
            name: normalize_name(name),
            reason: "the configured nameserver list is empty".to_owned(),
        }))
    }
}

impl AuthoritativeLookup {
    /// The NS set the parent zone publishes for `zone` (its referral, asked of the parent's
    /// servers with recursion off). `Ok(None)` for configured servers, or when the parent's
    /// servers cannot be found (`zone` is a TLD, or no parent has NS records).
    async fn delegation(&self, zone: &str) -> Result<Option<Delegation>, DnsError> {
        if self.servers != AuthoritativeServers::Discover {
            return Ok(None);
        }
        let mut parent = parent_of(zone);
        let (parent, servers) = loop {
            let Some(candidate) = parent.filter(|p| !p.is_empty()) else {
                return Ok(None);
            };
            if let Some(servers) = self.nameservers_of(candidate).await? {
                break (candidate, servers);
            }
            parent = parent_of(candidate);
        };
        let mut last_error = None;
        for server in &servers {
            let response = self
                .pool
                .client()
                .query_message(server.addr, zone, RecordType::Ns, false)
                .await;
            match response {
                Ok(message) => {
                    let ns = delegated_ns(&message, zone);
                    if !ns.is_empty() {
                        return Ok(Some(Delegation {
                            parent: parent.to_owned(),
                            server: server.label(),
                            ns,
                        }));
                    }
                    last_error = Some(DnsError::NotAuthoritative {
                        server: server.addr.to_string(),
                        name: zone.to_owned(),
                    });
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| DnsError::NoServers {
            name: parent.to_owned(),
            reason: "the parent zone has no nameserver address".to_owned(),
        }))
    }
}

/// The NS host names for `zone` in a response: an answer (the parent also serves the
/// zone) or a referral (the authority section). Sorted, without duplicates.
fn delegated_ns(message: &hickory_proto::op::Message, zone: &str) -> Vec<String> {
    let mut ns: Vec<String> = message
        .answers
        .iter()
        .chain(message.authorities.iter())
        .filter(|record| name_string(&record.name) == zone)
        .filter_map(|record| match &record.data {
            rr::RData::NS(target) => Some(name_string(&target.0)),
            _ => None,
        })
        .collect();
    ns.sort();
    ns.dedup();
    ns
}

impl DnsLookup for AuthoritativeLookup {
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> BoxFuture<'a, LookupResult> {
        Box::pin(self.ask(name, rtype))
    }
}

impl ZoneAuthority for AuthoritativeLookup {
    fn zone_servers<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<ZoneServers>, DnsError>> {
        Box::pin(AuthoritativeLookup::zone_servers(self, name))
    }

    fn parent_delegation<'a>(
        &'a self,
        zone: &'a str,
    ) -> BoxFuture<'a, Result<Option<Delegation>, DnsError>> {
        Box::pin(self.delegation(zone))
    }

    fn ask_server<'a>(
        &'a self,
        server: SocketAddr,
        name: &'a str,
        rtype: RecordType,
    ) -> BoxFuture<'a, LookupResult> {
        Box::pin(self.pool.ask(server, name, rtype))
    }

    fn resolvers(&self) -> &[SocketAddr] {
        &self.resolvers
    }

    fn ask_resolver<'a>(
        &'a self,
        resolver: SocketAddr,
        name: &'a str,
        rtype: RecordType,
    ) -> BoxFuture<'a, LookupResult> {
        Box::pin(self.pool.client().query(resolver, name, rtype, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_discovery_cache_sweeps_in_amortised_constant_time_and_stays_bounded() {
        let zone = Arc::new(ZoneServers {
            zone: "example".to_owned(),
            nameservers: Vec::new(),
        });
        let mut cache = DiscoveryCache::default();
        // 100 new names a second for 5 minutes: ~6,000 are unexpired at any time.
        let inserts = 30_000;
        let mut largest = 0;
        for i in 0..inserts {
            tokio::time::advance(Duration::from_millis(10)).await;
            let now = Instant::now();
            cache.insert(&[format!("d{i}.example")], &zone, now);
            largest = largest.max(cache.entries.len());
            assert!(cache.get(&format!("d{i}.example"), now).is_some());
        }
        let live = 6_000;
        assert!(largest <= 2 * live + DiscoveryCache::MIN_SWEEP, "{largest}");
        assert!(
            cache.scanned <= 3 * inserts,
            "{} entries scanned",
            cache.scanned
        );
        // An entry is served for its minute, not after.
        let now = Instant::now();
        assert!(cache.get("d29999.example", now).is_some());
        assert!(cache.get("d0.example", now).is_none());
        tokio::time::advance(DISCOVERY_MAX_AGE).await;
        assert!(cache.get("d29999.example", Instant::now()).is_none());
    }
}
