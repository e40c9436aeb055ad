//! One coalescing memo per authoritative server: every question asked of a server (by the
//! MX and SPF checks through [`AuthoritativeLookup`](super::authoritative::AuthoritativeLookup),
//! and by the nameservers check asking every server) goes through it, so a server is asked
//! each (name, type) at most once per round, whichever check and domain asks it.

use super::direct::DirectClient;
use super::shared::SharedLookups;
use super::sweep::Sweeper;
use super::{DnsLookup, LookupResult, RecordType};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Pool size below which memos holding nothing are kept.
const SWEEP_FROM: usize = 4096;

/// One server asked directly, recursion off.
struct DirectLookup {
    /// Sends the queries (and caps the queries in flight to each server).
    client: Arc<DirectClient>,
    /// The server.
    server: SocketAddr,
}

impl DnsLookup for DirectLookup {
    /// With the DO bit: the DNSSEC check reuses the very answer the other checks read.
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> BoxFuture<'a, LookupResult> {
        Box::pin(self.client.query_signed(self.server, name, rtype))
    }
}

/// Per-server memos over one [`DirectClient`]; shared by every domain.
pub struct ServerPool {
    /// Sends the queries.
    client: Arc<DirectClient>,
    /// Longest reuse of an answer (bounded by its TTL): within one round only.
    max_age: Mutex<Duration>,
    /// The memo of each server asked so far, and when those holding nothing are dropped.
    servers: Mutex<(HashMap<SocketAddr, Arc<SharedLookups>>, Sweeper)>,
}

impl ServerPool {
    /// A pool whose answers are reused for at most `max_age` (zero: only concurrent
    /// identical questions are merged).
    pub fn new(client: Arc<DirectClient>, max_age: Duration) -> ServerPool {
        ServerPool {
            client,
            max_age: Mutex::new(max_age),
            servers: Mutex::default(),
        }
    }

    /// The client the pool asks through (for questions that need the whole response).
    pub fn client(&self) -> &Arc<DirectClient> {
        &self.client
    }

    /// Changes how long answers are reused; forgets every remembered answer.
    pub fn set_max_age(&self, max_age: Duration) {
        let mut current = self.max_age.lock().expect("lock poisoned");
        if *current != max_age {
            *current = max_age;
            self.servers.lock().expect("lock poisoned").0.clear();
        }
    }

    /// Asks `server` (recursion off), or reuses its answer from this round.
    pub async fn ask(&self, server: SocketAddr, name: &str, rtype: RecordType) -> LookupResult {
        let memo = self.memo(server);
        memo.lookup(name, rtype).await
    }

    /// The memo of `server`, created on first use.
    fn memo(&self, server: SocketAddr) -> Arc<SharedLookups> {
        let max_age = *self.max_age.lock().expect("lock poisoned");
        let mut guard = self.servers.lock().expect("lock poisoned");
        let (servers, sweeper) = &mut *guard;
        if !servers.contains_key(&server) {
            sweeper.before_insert(servers, SWEEP_FROM, |_, memo| !memo.is_empty());
        }
        servers
            .entry(server)
            .or_insert_with(|| {
                let direct = DirectLookup {
                    client: self.client.clone(),
                    server,
                };
                Arc::new(SharedLookups::new(Arc::new(direct), max_age))
            })
            .clone()
    }
}
