//! A zone's servers as a set: who they are (host names and addresses), what the parent
//! zone delegates to, and since when their SOA serials disagree.

use super::authoritative::AuthoritativeLookup;
use super::convert::name_string;
use super::{DnsError, RecordType, parent_of};
use hickory_proto::rr;
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// A zone whose serials were last seen apart longer ago than this starts over: the zone
/// was not checked for a while (removed, or its domains reconfigured).
const SERIAL_MEMORY: Duration = Duration::from_secs(3600);

/// One authoritative server address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Nameserver {
    /// Its NS host name, when discovered through NS records (`None` for configured servers).
    pub host: Option<String>,
    /// The address asked.
    pub addr: SocketAddr,
}

impl Nameserver {
    /// How the server is named in metric labels and findings: the IP, with the port when
    /// it is not 53.
    pub fn label(&self) -> String {
        server_label(self.addr)
    }
}

/// An address as a label: the IP, with the port when it is not 53 (`[IPv6]:PORT`).
pub fn server_label(addr: SocketAddr) -> String {
    if addr.port() == 53 {
        addr.ip().to_string()
    } else {
        addr.to_string()
    }
}

/// A zone and every address of its nameservers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneServers {
    /// The zone apex, normalised.
    pub zone: String,
    /// Every nameserver address, hosts sorted by name, A before AAAA.
    pub nameservers: Vec<Nameserver>,
}

/// What the parent zone says about a zone's delegation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delegation {
    /// The parent zone asked.
    pub parent: String,
    /// The parent server that answered.
    pub server: String,
    /// The NS host names it delegates to, sorted.
    pub ns: Vec<String>,
}

impl AuthoritativeLookup {
    /// The NS set the parent zone publishes for `zone` (its referral, asked of the parent's
    /// servers with recursion off). `Ok(None)` when the parent's servers cannot be found
    /// (`zone` is a TLD, or no parent has NS records).
    pub async fn parent_delegation(&self, zone: &str) -> Result<Option<Delegation>, DnsError> {
        let mut parent = parent_of(zone);
        let (parent, servers) = loop {
            let Some(candidate) = parent.filter(|p| !p.is_empty()) else {
                return Ok(None);
            };
            if let Some(servers) = self.nameservers_of(candidate).await? {
                break (candidate, servers);
            }
            parent = parent_of(candidate);
        };
        let mut last_error = None;
        for server in &servers {
            let response = self
                .pool
                .client()
                .query_message(server.addr, zone, RecordType::Ns, false)
                .await;
            match response {
                Ok(message) => {
                    let ns = delegated_ns(&message, zone);
                    if !ns.is_empty() {
                        return Ok(Some(Delegation {
                            parent: parent.to_owned(),
                            server: server.label(),
                            ns,
                        }));
                    }
                    last_error = Some(DnsError::NotAuthoritative {
                        server: server.addr.to_string(),
                        name: zone.to_owned(),
                    });
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| DnsError::NoServers {
            name: parent.to_owned(),
            reason: "the parent zone has no nameserver address".to_owned(),
        }))
    }
}

/// The NS host names for `zone` in a response: an answer (the parent also serves the
/// zone) or a referral (the authority section). Sorted, without duplicates.
fn delegated_ns(message: &hickory_proto::op::Message, zone: &str) -> Vec<String> {
    let mut ns: Vec<String> = message
        .answers
        .iter()
        .chain(message.authorities.iter())
        .filter(|record| name_string(&record.name) == zone)
        .filter_map(|record| match &record.data {
            rr::RData::NS(target) => Some(name_string(&target.0)),
            _ => None,
        })
        .collect();
    ns.sort();
    ns.dedup();
    ns
}

/// Since when each zone's servers have disagreed on the SOA serial. Shared by every domain
/// of a daemon (domains in one zone see the same servers); uses tokio's clock, so tests
/// run the grace period on a paused clock.
#[derive(Debug)]
pub struct SerialTracker {
    /// How long serials may stay apart before it is a finding (secondaries lag briefly
    /// after a NOTIFY).
    grace: Mutex<Duration>,
    /// Zone → (first seen apart, last seen apart).
    apart: Mutex<HashMap<String, (Instant, Instant)>>,
}

/// The default grace: ten minutes.
pub const DEFAULT_SERIAL_GRACE: Duration = Duration::from_secs(600);

impl Default for SerialTracker {
    fn default() -> SerialTracker {
        SerialTracker::new(DEFAULT_SERIAL_GRACE)
    }
}

impl SerialTracker {
    /// A tracker with `grace` before serials apart are reported.
    pub fn new(grace: Duration) -> SerialTracker {
        SerialTracker {
            grace: Mutex::new(grace),
            apart: Mutex::new(HashMap::new()),
        }
    }

    /// How long serials may stay apart before it is a finding.
    pub fn grace(&self) -> Duration {
        *self.grace.lock().expect("serial tracker poisoned")
    }

    /// Changes the grace (on reload); zones already apart keep their start time.
    pub fn set_grace(&self, grace: Duration) {
        *self.grace.lock().expect("serial tracker poisoned") = grace;
    }

    /// Records one observation of `zone`: `apart` when its servers gave different serials.
    /// Returns how long they have been apart (zero on the first sighting), `None` when
    /// they agree.
    pub fn observe(&self, zone: &str, apart: bool) -> Option<Duration> {
        let now = Instant::now();
        let mut zones = self.apart.lock().expect("serial tracker poisoned");
        zones.retain(|_, (_, last)| now.duration_since(*last) < SERIAL_MEMORY);
        if !apart {
            zones.remove(zone);
            return None;
        }
        let entry = zones.entry(zone.to_owned()).or_insert((now, now));
        entry.1 = now;
        Some(now.duration_since(entry.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn serials_apart_accumulate_until_they_agree() {
        let tracker = SerialTracker::default();
        assert_eq!(tracker.observe("a.example", false), None);
        assert_eq!(tracker.observe("a.example", true), Some(Duration::ZERO));
        tokio::time::advance(Duration::from_secs(300)).await;
        assert_eq!(
            tracker.observe("a.example", true),
            Some(Duration::from_secs(300))
        );
        // Another zone has its own clock.
        assert_eq!(tracker.observe("b.example", true), Some(Duration::ZERO));
        assert_eq!(tracker.observe("a.example", false), None);
        assert_eq!(tracker.observe("a.example", true), Some(Duration::ZERO));
        // A zone not seen for longer than the memory starts over.
        tokio::time::advance(SERIAL_MEMORY + Duration::from_secs(1)).await;
        assert_eq!(tracker.observe("a.example", true), Some(Duration::ZERO));
    }

    #[test]
    fn labels_omit_the_default_port() {
        assert_eq!(server_label("192.0.2.1:53".parse().unwrap()), "192.0.2.1");
        assert_eq!(
            server_label("127.0.0.2:5300".parse().unwrap()),
            "127.0.0.2:5300"
        );
        assert_eq!(
            server_label("[2001:db8::1]:53".parse().unwrap()),
            "2001:db8::1"
        );
    }
}
