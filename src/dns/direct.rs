//! Direct queries to one chosen server (authoritative servers, or a resolver asked
//! without the resolver library): UDP with retry over TCP on truncation.

use super::{LookupResult, QueryMetrics, RecordType};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Timeouts and retries for direct queries.
#[derive(Clone, Debug)]
pub struct DirectOptions {
    /// Per attempt.
    pub timeout: Duration,
    /// UDP attempts before giving up with a timeout.
    pub attempts: u32,
}

impl Default for DirectOptions {
    fn default() -> Self {
        DirectOptions {
            timeout: Duration::from_secs(2),
            attempts: 2,
        }
    }
}

/// Sends single queries to chosen servers; one instance is shared by every domain.
pub struct DirectClient {}

impl DirectClient {
    /// A client with its own sockets.
    pub async fn new(
        options: DirectOptions,
        metrics: QueryMetrics,
    ) -> std::io::Result<Arc<DirectClient>> {
        let _ = (options, metrics);
        todo!()
    }

    /// Asks `server` one question; `recursion_desired` false for authoritative servers.
    pub async fn query(
        &self,
        server: SocketAddr,
        name: &str,
        rtype: RecordType,
        recursion_desired: bool,
    ) -> LookupResult {
        let _ = (server, name, rtype, recursion_desired);
        todo!()
    }
}
