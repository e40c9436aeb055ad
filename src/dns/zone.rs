//! A zone's servers as a set: who they are (host names and addresses) and what the parent
//! zone delegates to.

use serde::Serialize;
use std::net::SocketAddr;

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

#[cfg(test)]
mod tests {
    use super::*;

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
