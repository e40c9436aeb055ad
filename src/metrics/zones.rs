//! Zone-level series: `maildrift_nameserver_soa_serial{zone,nameserver}`. Several watched
//! domains can sit in one zone; each (zone, nameserver) pair is exported once, with the
//! latest serial any of them saw, and leaves when no watched domain is in the zone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::sync::RwLock;

/// One zone: the domains in it and each server's serial.
#[derive(Debug, Default)]
struct ZoneRow {
    /// Watched domains whose last conclusive check found them in this zone.
    domains: BTreeSet<String>,
    /// SOA serial by nameserver label (servers that answered last time).
    serials: BTreeMap<String, u32>,
}

/// Every zone of the watched domains.
#[derive(Debug, Default)]
pub struct ZoneTable {
    inner: RwLock<Zones>,
}

#[derive(Debug, Default)]
struct Zones {
    /// By zone name, sorted for stable output.
    rows: BTreeMap<String, ZoneRow>,
    /// The zone each domain was last seen in, so an update touches two rows, not all.
    zone_of: HashMap<String, String>,
}

impl Zones {
    /// Takes `domain` out of its zone, dropping the zone when no domain is left in it.
    fn leave(&mut self, domain: &str) {
        let Some(zone) = self.zone_of.remove(domain) else {
            return;
        };
        if let Some(row) = self.rows.get_mut(&zone) {
            row.domains.remove(domain);
            if row.domains.is_empty() {
                self.rows.remove(&zone);
            }
        }
    }
}

impl ZoneTable {
    /// Records the serials `domain` just saw in `zone`. The zone's serials are replaced:
    /// a server that did not answer has no serial to export.
    pub fn set(&self, zone: &str, domain: &str, serials: &[(String, u32)]) {
        let mut zones = self.inner.write().expect("lock poisoned");
        if zones.zone_of.get(domain).is_some_and(|z| z != zone) {
            zones.leave(domain);
        }
        zones.zone_of.insert(domain.to_owned(), zone.to_owned());
        let row = zones.rows.entry(zone.to_owned()).or_default();
        row.domains.insert(domain.to_owned());
        row.serials = serials.iter().cloned().collect();
    }

    /// Forgets `domain`; zones left without a domain lose their series.
    pub fn remove_domain(&self, domain: &str) {
        self.inner.write().expect("lock poisoned").leave(domain);
    }

    /// Appends the family in the text exposition format.
    pub fn render(&self, out: &mut String) {
        let zones = self.inner.read().expect("lock poisoned");
        let name = "maildrift_nameserver_soa_serial";
        let _ = writeln!(
            out,
            "# HELP {name} SOA serial of the zone at each authoritative server."
        );
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (zone, row) in &zones.rows {
            for (nameserver, serial) in &row.serials {
                let _ = writeln!(
                    out,
                    "{name}{{nameserver=\"{}\",zone=\"{}\"}} {serial}",
                    super::domains::escaped(nameserver),
                    super::domains::escaped(zone)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(table: &ZoneTable) -> String {
        let mut text = String::new();
        table.render(&mut text);
        text
    }

    #[test]
    fn a_zone_shared_by_domains_is_exported_once() {
        let table = ZoneTable::default();
        let serials = vec![
            ("127.0.0.1:53".to_owned(), 7),
            ("127.0.0.2:53".to_owned(), 6),
        ];
        table.set("example.com", "a.example.com", &serials);
        table.set("example.com", "example.com", &serials);
        let text = rendered(&table);
        let line =
            "maildrift_nameserver_soa_serial{nameserver=\"127.0.0.1:53\",zone=\"example.com\"} 7\n";
        assert_eq!(text.matches(line).count(), 1, "{text}");
        assert_eq!(text.matches("# TYPE").count(), 1);

        // The zone stays while one domain is in it.
        table.remove_domain("a.example.com");
        assert!(rendered(&table).contains(line));
        // A domain moving to another zone leaves the old one.
        table.set(
            "other.example",
            "example.com",
            &[("192.0.2.1".to_owned(), 1)],
        );
        let text = rendered(&table);
        assert!(!text.contains("zone=\"example.com\""), "{text}");
        assert!(text.contains("{nameserver=\"192.0.2.1\",zone=\"other.example\"} 1\n"));
        table.remove_domain("example.com");
        assert!(!rendered(&table).contains("other.example"));
    }
}
