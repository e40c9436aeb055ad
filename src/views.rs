//! Builds each domain's [`DnsView`]: one shared recursive resolver (behind a coalescing
//! memo) per distinct upstream set, one shared direct client, and one authoritative view
//! per distinct (servers, resolvers) pair, shared by the domains that ask the same servers.

use crate::config::{DomainConfig, ResolverSpec};
use crate::dns::authoritative::{AuthoritativeLookup, AuthoritativeServers};
use crate::dns::direct::{DirectClient, DirectOptions};
use crate::dns::hickory::{RecursiveResolver, ResolverOptions};
use crate::dns::pool::ServerPool;
use crate::dns::rate::{DnsLimits, RateLimited, RateLimiter};
use crate::dns::shared::SharedLookups;
use crate::dns::sweep::Sweeper;
use crate::dns::{DnsError, DnsLookup, DnsView, QueryMetrics, SignedQuestions};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
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
    /// The authoritative views in use, by what they ask. A view of its own per domain cost
    /// ~650 bytes of heap each (itself, its resolver list, its discovered zones): ~60 MiB
    /// at 100,000 domains that mostly share their servers.
    authorities: Mutex<Authorities>,
}

/// Authoritative views by (servers, resolvers compared, the recursive view they discover
/// through: its address). Held weakly: a view lives as long as a domain uses it.
#[derive(Default)]
struct Authorities {
    views: HashMap<(AuthoritativeServers, Vec<SocketAddr>, usize), Weak<AuthoritativeLookup>>,
    /// When the views no domain uses any more are dropped.
    sweeper: Sweeper,
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
            authorities: Mutex::default(),
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

    /// The authoritative view of `servers` compared with `resolvers`, shared with every
    /// domain that asks the same (its discovered zones, its memory of failed servers).
    fn authority(
        &self,
        servers: AuthoritativeServers,
        resolvers: Vec<SocketAddr>,
        recursive: &Arc<dyn DnsLookup>,
    ) -> Arc<AuthoritativeLookup> {
        let identity = Arc::as_ptr(recursive).cast::<()>() as usize;
        let key = (servers, resolvers, identity);
        let mut authorities = self.authorities.lock().expect("lock poisoned");
        if let Some(shared) = authorities.views.get(&key).and_then(Weak::upgrade) {
            return shared;
        }
        let Authorities { views, sweeper } = &mut *authorities;
        sweeper.before_insert(views, 64, |_, view| view.strong_count() > 0);
        let view = Arc::new(
            AuthoritativeLookup::new(self.direct.clone(), key.0.clone(), recursive.clone())
                .with_pool(self.pool.clone())
                .with_resolvers(key.1.clone()),
        );
        views.insert(key, Arc::downgrade(&view));
        view
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
            let resolvers = self.resolver_addrs(&domain.resolvers);
            let authority = self.authority(servers, resolvers, &recursive);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::rate::DnsLimits;

    fn domain(name: &str, nameserver: &str, resolver: &str) -> DomainConfig {
        let mut config = DomainConfig::new(name);
        config.nameservers = vec![nameserver.parse().unwrap()];
        config.resolvers = vec![ResolverSpec::Addr(resolver.parse().unwrap())];
        config
    }

    fn authority(view: &DnsView) -> *const () {
        Arc::as_ptr(view.authority.as_ref().unwrap()).cast::<()>()
    }

    #[tokio::test]
    async fn domains_asking_the_same_servers_share_one_authoritative_view() {
        let views = ViewFactory::new(QueryMetrics::unregistered(), DnsLimits::default())
            .await
            .unwrap();
        let ns = "127.0.0.1:5300";
        let resolver = "127.0.0.1:5301";
        let a = views.view(&domain("a.example", ns, resolver)).unwrap();
        let b = views.view(&domain("b.example", ns, resolver)).unwrap();
        let other_ns = views
            .view(&domain("c.example", "127.0.0.2:5300", resolver))
            .unwrap();
        let other_resolver = views
            .view(&domain("d.example", ns, "127.0.0.1:5302"))
            .unwrap();
        assert_eq!(authority(&a), authority(&b));
        assert_ne!(authority(&a), authority(&other_ns));
        assert_ne!(authority(&a), authority(&other_resolver));
        assert_ne!(authority(&other_ns), authority(&other_resolver));

        // Views no domain holds any more are dropped as others are added.
        for i in 0..1_000 {
            let server = format!("127.0.1.{}:{}", i % 250, 5300 + i / 250);
            drop(views.view(&domain("e.example", &server, resolver)).unwrap());
        }
        let held = views.authorities.lock().unwrap().views.len();
        assert!(held <= 2 * 4 + 64, "{held} views held");
        let again = views.view(&domain("a.example", ns, resolver)).unwrap();
        assert_eq!(authority(&again), authority(&a));
    }
}
