//! DNSSEC questions (the DO bit) through the seam: where one domain's go and how. The
//! normalised [`DnsLookup`](super::DnsLookup) answers drop RRSIG, DNSKEY and DS records, so
//! the DNSSEC check gets whole responses from here instead.

use super::direct::DirectClient;
use super::pool::ServerPool;
use super::{DnsError, RecordType};
use hickory_proto::op::Message;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where one domain's DNSSEC questions go: its configured nameservers (recursion off), else
/// its resolvers (RD and CD set: the resolver recurses but leaves validation to the check,
/// so bogus data comes back instead of a SERVFAIL). Asked through the shared direct client:
/// UDP with the DO bit, TCP when truncated, counted like every other query.
pub struct SignedQuestions {
    /// Sends the queries.
    client: Arc<DirectClient>,
    /// For a zone's own servers: the per-server memos the other checks' questions went
    /// through (asked with the DO bit), so the same answer is read, not asked again.
    pool: Option<Arc<ServerPool>>,
    /// Servers to try, in order.
    servers: Vec<SocketAddr>,
    /// True for recursive resolvers (the parent's DS can then be asked too).
    recursive: bool,
}

impl std::fmt::Debug for SignedQuestions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedQuestions")
            .field("servers", &self.servers)
            .field("recursive", &self.recursive)
            .finish_non_exhaustive()
    }
}

impl SignedQuestions {
    /// Questions to `servers`, through `client`.
    pub fn new(client: Arc<DirectClient>, servers: Vec<SocketAddr>, recursive: bool) -> Self {
        SignedQuestions {
            client,
            pool: None,
            servers,
            recursive,
        }
    }

    /// Questions to a zone's own `servers` (recursion off) through `pool`, the memos the
    /// zone view asks through: a question another check already asked is not asked again.
    pub fn through_pool(pool: Arc<ServerPool>, servers: Vec<SocketAddr>) -> Self {
        SignedQuestions {
            client: pool.client().clone(),
            pool: Some(pool),
            servers,
            recursive: false,
        }
    }

    /// The servers asked, in order (a memo of shared answers keys on them).
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// Whether the servers are recursive resolvers.
    pub fn recursive(&self) -> bool {
        self.recursive
    }

    /// The whole response to `name`/`rtype` with the DO bit, from the first server that
    /// answers (NXDOMAIN is an answer); the last error when none does.
    pub async fn ask(&self, name: &str, rtype: RecordType) -> Result<Arc<Message>, DnsError> {
        let mut last = DnsError::NoServers {
            name: name.to_owned(),
            reason: "no resolver or nameserver configured".to_owned(),
        };
        for server in &self.servers {
            let asked = match &self.pool {
                Some(pool) => pool.ask(*server, name, rtype).await.and_then(|answer| {
                    answer.signed.ok_or_else(|| DnsError::Transport {
                        server: server.to_string(),
                        name: name.to_owned(),
                        reason: "the answer was not asked with the DO bit".to_owned(),
                    })
                }),
                None => self
                    .client
                    .query_dnssec(*server, name, rtype, self.recursive)
                    .await
                    .map(Arc::new),
            };
            match asked {
                Ok(message) => return Ok(message),
                Err(error) => last = error,
            }
        }
        Err(last)
    }
}
