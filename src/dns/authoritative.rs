//! The authoritative view of a domain: its nameservers (discovered through NS records or
//! configured) asked directly, recursion off, AA bit required.

use super::direct::DirectClient;
use super::{DnsLookup, LookupResult, RecordType};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;

/// Which servers are authoritative for a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthoritativeServers {
    /// Find the zone's NS records (and their addresses) through the recursive resolvers.
    Discover,
    /// Ask these instead (hidden primaries, split horizon, tests).
    Fixed(Vec<SocketAddr>),
}

/// A [`DnsLookup`] answering from a domain's authoritative servers.
pub struct AuthoritativeLookup {}

impl AuthoritativeLookup {
    /// `recursive` is used only to discover nameservers and their addresses.
    pub fn new(
        client: Arc<DirectClient>,
        servers: AuthoritativeServers,
        recursive: Arc<dyn DnsLookup>,
    ) -> AuthoritativeLookup {
        let _ = (client, servers, recursive);
        todo!()
    }
}

impl DnsLookup for AuthoritativeLookup {
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> BoxFuture<'a, LookupResult> {
        let _ = (name, rtype);
        todo!()
    }
}
