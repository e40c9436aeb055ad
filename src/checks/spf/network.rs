//! The networks an SPF expansion reaches: ip4/ip6 terms and the addresses `a`/`mx` found,
//! masked to their prefix so that equal ranges compare equal.

use super::SpfNetwork;
use super::record::{Mechanism, Qualifier};
use std::net::IpAddr;

/// The network of an `ip4`/`ip6` directive; `None` for other mechanisms.
pub(super) fn static_network(
    mechanism: Option<&Mechanism>,
    qualifier: Qualifier,
    domain: &str,
    term: &str,
) -> Option<SpfNetwork> {
    let network = match mechanism? {
        Mechanism::Ip4(addr, len) => masked(IpAddr::V4(*addr), len.unwrap_or(32)),
        Mechanism::Ip6(addr, len) => masked(IpAddr::V6(*addr), len.unwrap_or(128)),
        _ => return None,
    };
    Some(SpfNetwork {
        network,
        qualifier: qualifier.as_char(),
        domain: domain.to_owned(),
        term: term.to_owned(),
    })
}

/// `addr/len` with the host bits cleared.
pub(super) fn masked(addr: IpAddr, len: u8) -> String {
    match addr {
        IpAddr::V4(ip) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            format!("{}/{len}", std::net::Ipv4Addr::from(u32::from(ip) & mask))
        }
        IpAddr::V6(ip) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            format!("{}/{len}", std::net::Ipv6Addr::from(u128::from(ip) & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn masking() {
        assert_eq!(masked("192.0.2.77".parse().unwrap(), 24), "192.0.2.0/24");
        assert_eq!(masked("192.0.2.77".parse().unwrap(), 0), "0.0.0.0/0");
        assert_eq!(masked("192.0.2.77".parse().unwrap(), 32), "192.0.2.77/32");
        assert_eq!(masked("2001:db8::1".parse().unwrap(), 32), "2001:db8::/32");
    }
}
