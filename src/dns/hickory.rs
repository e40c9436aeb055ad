//! Recursive lookups through hickory-resolver: the system configuration or given servers.

use super::{DnsError, DnsLookup, LookupResult, QueryMetrics, RecordType};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::time::Duration;

/// Timeouts for recursive lookups.
#[derive(Clone, Debug)]
pub struct ResolverOptions {
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts per server.
    pub attempts: usize,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions {
            timeout: Duration::from_secs(3),
            attempts: 2,
        }
    }
}

/// One hickory resolver; build one per distinct upstream set and share it.
pub struct RecursiveResolver {}

impl RecursiveResolver {
    /// From the system configuration (/etc/resolv.conf).
    pub fn system(
        options: &ResolverOptions,
        metrics: QueryMetrics,
    ) -> Result<RecursiveResolver, DnsError> {
        let _ = (options, metrics);
        todo!()
    }

    /// Asking the given recursive resolvers.
    pub fn with_servers(
        servers: &[SocketAddr],
        options: &ResolverOptions,
        metrics: QueryMetrics,
    ) -> RecursiveResolver {
        let _ = (servers, options, metrics);
        todo!()
    }
}

impl DnsLookup for RecursiveResolver {
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> BoxFuture<'a, LookupResult> {
        let _ = (name, rtype);
        todo!()
    }
}
