//! The authoritative view of a domain: its nameservers (discovered through NS records or
//! configured) asked directly, recursion off, AA bit required.

use super::direct::DirectClient;
use super::{AnswerStatus, DnsError, DnsLookup, LookupResult, RData, RecordType, normalize_name};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long a discovered server list is reused before NS records are asked again.
const DISCOVERY_MAX_AGE: Duration = Duration::from_secs(60);

/// Which servers are authoritative for a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthoritativeServers {
    /// Find the zone's NS records (and their addresses) through the recursive resolvers.
    Discover,
    /// Ask these instead (hidden primaries, split horizon, tests).
    Fixed(Vec<SocketAddr>),
}

/// A [`DnsLookup`] answering from a domain's authoritative servers.
pub struct AuthoritativeLookup {
    /// Sends the queries.
    client: Arc<DirectClient>,
    /// Configured or discovered servers.
    servers: AuthoritativeServers,
    /// Finds NS records and nameserver addresses when discovering.
    recursive: Arc<dyn DnsLookup>,
    /// Port discovered nameservers are asked on (53 except in tests).
    port: u16,
    /// Discovered server lists by the names they were discovered for.
    discovered: Mutex<HashMap<String, Discovered>>,
}

/// A discovered server list and when it stops being reused.
#[derive(Clone)]
struct Discovered {
    /// The zone's nameserver addresses, in the order they are tried.
    servers: Arc<Vec<SocketAddr>>,
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
            client,
            servers,
            recursive,
            port: 53,
            discovered: Mutex::new(HashMap::new()),
        }
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
            AuthoritativeServers::Discover => self.discover(&normalize_name(name)).await,
        }
    }

    /// Finds the NS set of the zone holding `name`: at the name, else one label up at a
    /// time, never at a TLD. Results are remembered for every name walked.
    async fn discover(&self, name: &str) -> Result<Arc<Vec<SocketAddr>>, DnsError> {
        let mut walked = Vec::new();
        let mut candidate = name;
        loop {
            if let Some(servers) = self.cached(candidate) {
                self.remember(&walked, &servers);
                return Ok(servers);
            }
            // Never ask a TLD (or the root): its servers are not the domain's.
            if !candidate.contains('.') {
                return Err(DnsError::NoServers {
                    name: name.to_owned(),
                    reason: "no NS records at the name or any parent below the TLD".to_owned(),
                });
            }
            walked.push(candidate.to_owned());
            let answer = self.recursive.lookup(candidate, RecordType::Ns).await?;
            let hosts: Vec<String> = answer
                .records
                .iter()
                .filter_map(|record| match record {
                    RData::Ns(host) => Some(host.clone()),
                    _ => None,
                })
                .collect();
            if answer.status == AnswerStatus::Records && !hosts.is_empty() {
                let servers = Arc::new(self.addresses(candidate, hosts).await?);
                self.remember(&walked, &servers);
                return Ok(servers);
            }
            candidate = candidate.split_once('.').map_or("", |(_, parent)| parent);
        }
    }

    /// The addresses of the NS hosts: hosts sorted by name, A then AAAA for each.
    async fn addresses(
        &self,
        zone: &str,
        mut hosts: Vec<String>,
    ) -> Result<Vec<SocketAddr>, DnsError> {
        hosts.sort();
        hosts.dedup();
        let mut servers = Vec::new();
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
                            let server = SocketAddr::new(ip, self.port);
                            if !servers.contains(&server) {
                                servers.push(server);
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

    /// An unexpired discovered list for exactly `name`.
    fn cached(&self, name: &str) -> Option<Arc<Vec<SocketAddr>>> {
        let discovered = self.discovered.lock().expect("discovery cache poisoned");
        discovered
            .get(name)
            .filter(|entry| entry.expires > Instant::now())
            .map(|entry| entry.servers.clone())
    }

    /// Remembers `servers` for the `names` walked; drops expired entries.
    fn remember(&self, names: &[String], servers: &Arc<Vec<SocketAddr>>) {
        let now = Instant::now();
        let mut discovered = self.discovered.lock().expect("discovery cache poisoned");
        discovered.retain(|_, entry| entry.expires > now);
        for name in names {
            let entry = Discovered {
                servers: servers.clone(),
                expires: now + DISCOVERY_MAX_AGE,
            };
            discovered.insert(name.clone(), entry);
        }
    }

    /// Asks each server in turn until one gives a conclusive authoritative answer.
    async fn ask(&self, name: &str, rtype: RecordType) -> LookupResult {
        let servers = self.servers_for(name).await?;
        let mut last_error = None;
        for &server in servers.iter() {
            match self.client.query(server, name, rtype, false).await {
                Ok(answer) if answer.authoritative => return Ok(answer),
                Ok(_) => {
                    last_error = Some(DnsError::NotAuthoritative {
                        server: server.to_string(),
                        name: normalize_name(name),
                    })
                }
                Err(error @ DnsError::InvalidName { .. }) => return Err(error),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| DnsError::NoServers {
            name: normalize_name(name),
            reason: "the configured nameserver list is empty".to_owned(),
        }))
    }
}

impl DnsLookup for AuthoritativeLookup {
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> BoxFuture<'a, LookupResult> {
        Box::pin(self.ask(name, rtype))
    }
}
