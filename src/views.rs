//! Builds each domain's [`DnsView`]: one shared recursive resolver (behind a coalescing
//! memo) per distinct upstream set, one shared direct client, a per-domain authoritative view.

use crate::config::{DomainConfig, ResolverSpec};
use crate::dns::authoritative::{AuthoritativeLookup, AuthoritativeServers};
use crate::dns::direct::{DirectClient, DirectOptions};
use crate::dns::hickory::{RecursiveResolver, ResolverOptions};
use crate::dns::pool::ServerPool;
use crate::dns::rate::{DnsLimits, RateLimited, RateLimiter};
use crate::dns::shared::SharedLookups;
use crate::dns::{DnsError, DnsLookup, DnsView, QueryMetrics, SignedQuestions};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Shared DNS plumbing, kept across config reloads so resolvers and sockets are reused.
pub(crate) struct ViewFactory {
    direct: Arc<DirectClient>,
    /// One memo per authoritative server, shared by every domain.
    pool: Arc<ServerPool>,
    /// Where the recursive resolvers count their queries.
    metrics: QueryMetrics,
    /// The daemon's query budget (`--dns.max-qps`), shared with the direct client.
    rate: Option<Arc<RateLimiter>>,
    resolver_options: ResolverOptions,
    shared_max_age: Mutex<Duration>,
    recursive: Mutex<HashMap<Vec<ResolverSpec>, Arc<dyn DnsLookup>>>,
}

impl ViewFactory {
    /// Opens the direct-query sockets; every query of the daemon keeps to `limits`.
    pub(crate) async fn new(
        metrics: QueryMetrics,
        limits: DnsLimits,
    ) -> std::io::Result<ViewFactory> {
        let rate = limits
            .max_qps
            .map(|qps| Arc::new(RateLimiter::per_second(qps)));
        let options = DirectOptions {
            rate: rate.clone(),
            rate_per_server: limits.max_qps_per_server,
            ..DirectOptions::default()
        };
        let direct = DirectClient::new(options, metrics.clone()).await?;
        let max_age = Duration::from_secs(60);
        Ok(ViewFactory {
            pool: Arc::new(ServerPool::new(direct.clone(), max_age)),
            direct,
            rate,
            metrics,
            resolver_options: ResolverOptions::default(),
            shared_max_age: Mutex::new(max_age),
            recursive: Mutex::new(HashMap::new()),
        })
    }

    /// Sets how long shared answers may be reused: half the shortest check interval, at
    /// most 150 s, so that a provider record is asked about once per round and never served
    /// to the next round. Drops resolvers built for the previous value.
    pub(crate) fn set_round_interval(&self, shortest_interval: Duration) {
        let max_age = (shortest_interval / 2).min(Duration::from_secs(150));
        self.pool.set_max_age(max_age);
        let mut current = self.shared_max_age.lock().expect("lock poisoned");
        if *current != max_age {
            *current = max_age;
            self.recursive.lock().expect("lock poisoned").clear();
        }
    }

    /// The resolver addresses compared with the authoritative answers ("system": the
    /// servers in /etc/resolv.conf).
    fn resolver_addrs(&self, resolvers: &[ResolverSpec]) -> Vec<SocketAddr> {
        let mut addrs = Vec::new();
        for spec in resolvers {
            match spec {
                ResolverSpec::Addr(addr) => addrs.push(*addr),
                ResolverSpec::System => {
                    addrs.extend_from_slice(crate::dns::hickory::system_resolver_addrs());
                }
            }
        }
        addrs.sort();
        addrs.dedup();
        addrs
    }

    /// The shared recursive view for a resolver list ("system" wins when mixed).
    pub(crate) fn recursive(
        &self,
        resolvers: &[ResolverSpec],
    ) -> Result<Arc<dyn DnsLookup>, DnsError> {
        let mut key = resolvers.to_vec();
        key.sort();
        key.dedup();
        let mut cache = self.recursive.lock().expect("lock poisoned");
        if let Some(found) = cache.get(&key) {
            return Ok(found.clone());
        }
        let addrs: Vec<SocketAddr> = key
            .iter()
            .filter_map(|spec| match spec {
                ResolverSpec::Addr(addr) => Some(*addr),
                ResolverSpec::System => None,
            })
            .collect();
        let resolver = if addrs.is_empty() || key.contains(&ResolverSpec::System) {
            if !addrs.is_empty() {
                tracing::warn!(
                    ?addrs,
                    "resolver list mixes \"system\" with addresses; using the system resolver"
                );
            }
            RecursiveResolver::system(&self.resolver_options, self.metrics.clone())?
        } else {
            RecursiveResolver::with_servers(&addrs, &self.resolver_options, self.metrics.clone())
        };
        let resolver: Arc<dyn DnsLookup> = match &self.rate {
            Some(rate) => Arc::new(RateLimited::new(Arc::new(resolver), rate.clone())),
            None => Arc::new(resolver),
        };
        let max_age = *self.shared_max_age.lock().expect("lock poisoned");
        let shared: Arc<dyn DnsLookup> = Arc::new(SharedLookups::new(resolver, max_age));
        cache.insert(key, shared.clone());
        Ok(shared)
    }

    /// The view one domain's checks use.
    pub(crate) fn view(&self, domain: &DomainConfig) -> Result<DnsView, DnsError> {
        let recursive = self.recursive(&domain.resolvers)?;
        let view = if domain.authoritative {
            let servers = if domain.nameservers.is_empty() {
                AuthoritativeServers::Discover
            } else {
                AuthoritativeServers::Fixed(domain.nameservers.clone())
            };
            let authority = Arc::new(
                AuthoritativeLookup::new(self.direct.clone(), servers, recursive.clone())
                    .with_pool(self.pool.clone())
                    .with_resolvers(self.resolver_addrs(&domain.resolvers)),
            );
            DnsView::new(authority.clone(), recursive).with_authority(authority)
        } else {
            DnsView::new(recursive.clone(), recursive)
        };
        Ok(view.with_signed(self.signed(domain)))
    }

    /// Where the domain's DNSSEC questions go: its configured nameservers (recursion off),
    /// else its resolvers (the system's when "system" is among them).
    fn signed(&self, domain: &DomainConfig) -> SignedQuestions {
        if !domain.nameservers.is_empty() {
            return SignedQuestions::through_pool(self.pool.clone(), domain.nameservers.clone());
        }
        let mut servers: Vec<SocketAddr> = domain
            .resolvers
            .iter()
            .filter_map(|r| match r {
                ResolverSpec::Addr(addr) => Some(*addr),
                ResolverSpec::System => None,
            })
            .collect();
        if servers.is_empty() || domain.resolvers.contains(&ResolverSpec::System) {
            servers = crate::dns::hickory::system_resolver_addrs().to_vec();
        }
        SignedQuestions::new(self.direct.clone(), servers, true)
    }
}
