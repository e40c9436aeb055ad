//! DNSSEC questions (the DO bit) through the seam: where one domain's go and how. The
//! normalised [`DnsLookup`](super::DnsLookup) answers drop RRSIG, DNSKEY and DS records, so
//! the DNSSEC check gets whole responses from here instead.

use super::direct::DirectClient;
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
            servers,
            recursive,
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
    pub async fn ask(&self, name: &str, rtype: RecordType) -> Result<Message, DnsError> {
        let mut last = DnsError::NoServers {
            name: name.to_owned(),
            reason: "no resolver or nameserver configured".to_owned(),
        };
        for server in &self.servers {
            match self
                .client
                .query_dnssec(*server, name, rtype, self.recursive)
                .await
            {
                Ok(message) => return Ok(message),
                Err(error) => last = error,
            }
        }
        Err(last)
    }
}
