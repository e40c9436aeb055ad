//! A generated fleet of customer domains on one mail provider, for the benchmarks and the
//! tests that need thousands of domains: the zones for the in-process DNS server and the
//! config watching them. Each domain is a zone apex, as in real life. A `varied` fleet has
//! labels (`team`) and a share of problems: an MX host off the expectation (drift), DMARC
//! missing, DMARC `p=none`.

use std::fmt::Write;

/// A fleet of `domains` domains.
#[derive(Clone, Copy, Debug)]
pub struct Fleet {
    /// How many customer domains.
    pub domains: usize,
    /// With labels and problems (else every domain is clean and unlabelled).
    pub varied: bool,
}

/// The teams a varied fleet's domains belong to (label `team`), by index modulo 3.
pub const TEAMS: [&str; 3] = ["mail", "web", "ops"];

impl Fleet {
    /// The name of domain `i`.
    pub fn name(i: usize) -> String {
        format!("d{i}.customers.bench")
    }

    /// Whether domain `i` of a varied fleet has an MX host off the expectation (drift).
    pub fn drifts(&self, i: usize) -> bool {
        self.varied && i % 10 == 3
    }

    /// Whether domain `i` of a varied fleet publishes no DMARC record.
    pub fn lacks_dmarc(&self, i: usize) -> bool {
        self.varied && i % 7 == 5
    }

    /// Whether domain `i` of a varied fleet publishes DMARC `p=none`.
    pub fn dmarc_none(&self, i: usize) -> bool {
        self.varied && !self.lacks_dmarc(i) && i % 11 == 4
    }

    /// The provider's zone, then one zone per domain.
    pub fn zones(&self) -> Vec<String> {
        let mut zones = vec![String::from(
            "$ORIGIN provider.bench.\n$TTL 3600\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n\
             mx1 A 192.0.2.11\nmx2 A 192.0.2.12\nmx9 A 192.0.2.19\n\
             spf TXT \"v=spf1 include:spf2.provider.bench ip4:192.0.2.0/24 -all\"\n\
             spf2 TXT \"v=spf1 ip4:198.51.100.0/24 -all\"\n",
        )];
        for i in 0..self.domains {
            let mx = if self.drifts(i) { "mx9" } else { "mx2" };
            let mut zone = format!(
                "$ORIGIN {}.\n$TTL 300\n@ SOA ns1.provider.bench. hostmaster 1 3600 600 86400 300\n\
                 @ NS ns1.provider.bench.\n@ MX 10 mx1.provider.bench.\n@ MX 20 {mx}.provider.bench.\n\
                 @ TXT \"v=spf1 include:spf.provider.bench -all\"\n",
                Fleet::name(i)
            );
            if self.dmarc_none(i) {
                zone.push_str("_dmarc TXT \"v=DMARC1; p=none\"\n");
            } else if !self.lacks_dmarc(i) {
                zone.push_str("_dmarc TXT \"v=DMARC1; p=reject\"\n");
            }
            zones.push(zone);
        }
        zones
    }

    /// The config: `defaults` (YAML lines under `defaults:`, indented two spaces), then every
    /// domain with its expectation (and label).
    pub fn config(&self, defaults: &str) -> String {
        let mut text = format!("defaults:\n{defaults}domains:\n");
        for i in 0..self.domains {
            let _ = writeln!(text, "  - name: {}", Fleet::name(i));
            let _ = writeln!(
                text,
                "    expect: {{ mx: [mx1.provider.bench, mx2.provider.bench], spf: {{ includes: [spf.provider.bench], all: \"-all\" }} }}"
            );
            if self.varied {
                let _ = writeln!(text, "    labels: {{ team: {} }}", TEAMS[i % 3]);
            }
        }
        text
    }
}
