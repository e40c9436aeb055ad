//! Builds each domain's [`DnsView`]: one shared recursive resolver (behind a coalescing
//! memo) per distinct upstream set, one shared direct client, a per-domain authoritative view.

use crate::config::{DomainConfig, ResolverSpec};
use crate::dns::authoritative::{AuthoritativeLookup, AuthoritativeServers};
use crate::dns::direct::{DirectClient, DirectOptions};
use crate::dns::hickory::{RecursiveResolver, ResolverOptions};
use crate::dns::shared::SharedLookups;
use crate::dns::{DnsError, DnsLookup, DnsView, QueryMetrics};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Shared DNS plumbing, kept across config reloads so resolvers and sockets are reused.
pub struct ViewFactory {
    direct: Arc<DirectClient>,
    metrics: QueryMetrics,
    resolver_options: ResolverOptions,
    shared_max_age: Mutex<Duration>,
    recursive: Mutex<HashMap<Vec<ResolverSpec>, Arc<dyn DnsLookup>>>,
}

impl ViewFactory {
    /// Opens the direct-query sockets.
    pub async fn new(metrics: QueryMetrics) -> std::io::Result<ViewFactory> {
        let direct = DirectClient::new(DirectOptions::default(), metrics.clone()).await?;
        Ok(ViewFactory {
            direct,
            metrics,
            resolver_options: ResolverOptions::default(),
            shared_max_age: Mutex::new(Duration::from_secs(60)),
            recursive: Mutex::new(HashMap::new()),
        })
    }

    /// Sets how long shared answers may be reused: half the shortest check interval, at
    /// most 150 s, so that a provider record is asked about once per round and never served
    /// to the next round. Drops resolvers built for the previous value.
    pub fn set_round_interval(&self, shortest_interval: Duration) {
        let max_age = (shortest_interval / 2).min(Duration::from_secs(150));
        let mut current = self.shared_max_age.lock().expect("lock poisoned");
        if *current != max_age {
            *current = max_age;
            self.recursive.lock().expect("lock poisoned").clear();
        }
    }

    /// The shared recursive view for a resolver list ("system" wins when mixed).
    pub fn recursive(&self, resolvers: &[ResolverSpec]) -> Result<Arc<dyn DnsLookup>, DnsError> {
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
        let max_age = *self.shared_max_age.lock().expect("lock poisoned");
        let shared: Arc<dyn DnsLookup> = Arc::new(SharedLookups::new(Arc::new(resolver), max_age));
        cache.insert(key, shared.clone());
        Ok(shared)
    }

    /// The view one domain's checks use.
    pub fn view(&self, domain: &DomainConfig) -> Result<DnsView, DnsError> {
        let recursive = self.recursive(&domain.resolvers)?;
        let zone: Arc<dyn DnsLookup> = if domain.authoritative {
            let servers = if domain.nameservers.is_empty() {
                AuthoritativeServers::Discover
            } else {
                AuthoritativeServers::Fixed(domain.nameservers.clone())
            };
            Arc::new(AuthoritativeLookup::new(
                self.direct.clone(),
                servers,
                recursive.clone(),
            ))
        } else {
            recursive.clone()
        };
        Ok(DnsView { zone, recursive })
    }
}
