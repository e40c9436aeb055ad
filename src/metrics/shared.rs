//! Series of objects shared by many domains (a zone's SOA serial per nameserver, an MX
//! host's certificate, a (blocklist zone, address) pair's listing): each object is exported
//! once, with the latest values any of its domains saw, and leaves when no watched domain
//! uses it any more. A domain may use several objects of one family (its MX hosts).

use super::domains::{header, sample};
use crate::checks::{Labels, SharedFamily, SharedValues};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// One object of one family: the domains using it and its samples.
#[derive(Debug, Default)]
struct ObjectRow {
    /// Watched domains whose last conclusive check used this object.
    domains: DomainSet,
    /// (label values, value), as last seen.
    samples: Vec<(Labels, f64)>,
}

/// The domains using one object. Most objects (a company's own zone, its own MX hosts) have
/// one; a provider's have thousands. The names are shared with [`Objects::used`].
#[derive(Debug, Default)]
enum DomainSet {
    #[default]
    Empty,
    One(Arc<str>),
    Many(HashSet<Arc<str>>),
}

impl DomainSet {
    fn insert(&mut self, domain: &Arc<str>) {
        match self {
            DomainSet::Empty => *self = DomainSet::One(domain.clone()),
            DomainSet::One(one) if one == domain => {}
            DomainSet::One(one) => {
                *self = DomainSet::Many(HashSet::from([one.clone(), domain.clone()]));
            }
            DomainSet::Many(many) => {
                many.insert(domain.clone());
            }
        }
    }

    fn remove(&mut self, domain: &str) {
        match self {
            DomainSet::One(one) if &**one == domain => *self = DomainSet::Empty,
            DomainSet::Many(many) => {
                many.remove(domain);
                if many.is_empty() {
                    *self = DomainSet::Empty;
                }
            }
            _ => {}
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, DomainSet::Empty)
    }
}

/// Every shared object of the watched domains.
#[derive(Debug, Default)]
pub struct SharedTable {
    inner: RwLock<Objects>,
}

/// (family name, object) — sorted for stable output.
type ObjectKey = (&'static str, String);

/// The objects one domain uses: per family (sorted), its objects (sorted).
type Used = Vec<(&'static str, Vec<String>)>;

#[derive(Debug, Default)]
struct Objects {
    rows: BTreeMap<ObjectKey, ObjectRow>,
    /// The objects each domain uses, by family (a zone; or many (zone, address) pairs), so
    /// an update touches only the rows it changes. The key is the domain's one shared name.
    used: HashMap<Arc<str>, Used>,
}

impl Objects {
    /// Takes `domain` out of `object` of `family`, dropping the object when no domain is
    /// left in it.
    fn leave(&mut self, domain: &str, family: &'static str, object: &str) {
        let key = (family, object.to_owned());
        if let Some(row) = self.rows.get_mut(&key) {
            row.domains.remove(domain);
            if row.domains.is_empty() {
                self.rows.remove(&key);
            }
        }
    }
}

impl SharedTable {
    /// Records what `domain` just saw of each object in `values`: the objects' samples are
    /// replaced, and for each of `families` (the families of the check that ran) the
    /// domain leaves every object it used before and no longer uses.
    pub fn set(&self, domain: &str, families: &[&'static SharedFamily], values: &[SharedValues]) {
        let mut objects = self.inner.write().expect("lock poisoned");
        let (name, mut used) = match objects.used.remove_entry(domain) {
            Some(entry) => entry,
            None => (Arc::from(domain), Vec::new()),
        };
        let mut names: Vec<&'static str> = families.iter().map(|f| f.name).collect();
        names.extend(values.iter().map(|v| v.family.name));
        names.sort_unstable();
        names.dedup();
        for family in names {
            // An empty object stands for "none of this family" (`SharedValues::none`).
            let mut now: Vec<String> = values
                .iter()
                .filter(|v| v.family.name == family && !v.object.is_empty())
                .map(|v| v.object.clone())
                .collect();
            now.sort_unstable();
            now.dedup();
            now.shrink_to_fit();
            let before = match used.iter().position(|(f, _)| *f == family) {
                Some(at) => used.swap_remove(at).1,
                None => Vec::new(),
            };
            for gone in before.iter().filter(|o| now.binary_search(o).is_err()) {
                objects.leave(domain, family, gone);
            }
            if !now.is_empty() {
                used.push((family, now));
            }
        }
        for value in values.iter().filter(|v| !v.object.is_empty()) {
            let row = objects
                .rows
                .entry((value.family.name, value.object.clone()))
                .or_default();
            row.domains.insert(&name);
            row.samples.clone_from(&value.samples);
        }
        if !used.is_empty() {
            used.sort_unstable_by_key(|(family, _)| *family);
            used.shrink_to_fit();
            objects.used.insert(name, used);
        }
    }

    /// Forgets `domain`; objects left without a domain lose their series.
    pub fn remove_domain(&self, domain: &str) {
        let mut objects = self.inner.write().expect("lock poisoned");
        let used = objects.used.remove(domain).unwrap_or_default();
        for (family, list) in used {
            for object in list {
                objects.leave(domain, family, &object);
            }
        }
    }

    /// Appends `families` in the text exposition format.
    pub fn render(&self, out: &mut String, families: &[&'static SharedFamily]) {
        let objects = self.inner.read().expect("lock poisoned");
        for family in families {
            header(out, family.name, family.help);
            let start = (family.name, String::new());
            for ((name, _), row) in objects.rows.range(start..) {
                if *name != family.name {
                    break;
                }
                for (labels, value) in &row.samples {
                    let named = family
                        .labels
                        .iter()
                        .copied()
                        .zip(labels.iter().map(AsRef::as_ref));
                    sample(out, family.name, named, *value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::nameservers::SOA_SERIAL;

    fn rendered(table: &SharedTable) -> String {
        let mut text = String::new();
        table.render(&mut text, &[&SOA_SERIAL]);
        text
    }

    fn serials(zone: &str, serials: &[(&str, u32)]) -> Vec<SharedValues> {
        vec![SharedValues {
            family: &SOA_SERIAL,
            object: zone.to_owned(),
            samples: serials
                .iter()
                .map(|(ns, serial)| {
                    let labels = vec![(*ns).to_owned().into(), zone.to_owned().into()];
                    (labels, f64::from(*serial))
                })
                .collect(),
        }]
    }

    #[test]
    fn a_zone_shared_by_domains_is_exported_once() {
        let table = SharedTable::default();
        let both = serials("example.com", &[("127.0.0.1:53", 7), ("127.0.0.2:53", 6)]);
        table.set("a.example.com", &[&SOA_SERIAL], &both);
        table.set("example.com", &[&SOA_SERIAL], &both);
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
            "example.com",
            &[&SOA_SERIAL],
            &serials("other.example", &[("192.0.2.1", 1)]),
        );
        let text = rendered(&table);
        assert!(!text.contains("zone=\"example.com\""), "{text}");
        assert!(text.contains("{nameserver=\"192.0.2.1\",zone=\"other.example\"} 1\n"));
        table.remove_domain("example.com");
        assert!(!rendered(&table).contains("other.example"));
    }

    #[test]
    fn a_domain_uses_several_hosts_of_one_family() {
        use crate::checks::smtp_tls::STARTTLS;
        let hosts = |hosts: &[&str]| -> Vec<SharedValues> {
            hosts
                .iter()
                .map(|h| SharedValues {
                    family: &STARTTLS,
                    object: (*h).to_owned(),
                    samples: vec![(vec![(*h).to_owned().into()], 1.0)],
                })
                .collect()
        };
        let rendered = |table: &SharedTable| {
            let mut text = String::new();
            table.render(&mut text, &[&STARTTLS]);
            text
        };
        let table = SharedTable::default();
        table.set(
            "a.example",
            &[&STARTTLS],
            &hosts(&["mx1.p.example", "mx2.p.example"]),
        );
        table.set("b.example", &[&STARTTLS], &hosts(&["mx2.p.example"]));
        let text = rendered(&table);
        assert!(
            text.contains("maildrift_mx_starttls{host=\"mx1.p.example\"} 1\n"),
            "{text}"
        );
        assert_eq!(text.matches("host=\"mx2.p.example\"").count(), 1, "{text}");
        // a.example moves from mx1 to mx3: mx1 leaves, mx2 stays (b.example uses it too).
        table.set(
            "a.example",
            &[&STARTTLS],
            &hosts(&["mx2.p.example", "mx3.p.example"]),
        );
        let text = rendered(&table);
        assert!(!text.contains("mx1.p.example"), "{text}");
        assert!(text.contains("mx3.p.example") && text.contains("mx2.p.example"));
        table.remove_domain("a.example");
        let text = rendered(&table);
        assert!(
            !text.contains("mx3.p.example") && text.contains("mx2.p.example"),
            "{text}"
        );
        // b.example's MX hosts are gone: it reports none, and mx2 leaves with it.
        table.set("c.example", &[&STARTTLS], &hosts(&["mx4.p.example"]));
        table.set("b.example", &[&STARTTLS], &[SharedValues::none(&STARTTLS)]);
        let text = rendered(&table);
        assert!(!text.contains("mx2.p.example") && text.contains("mx4.p.example"));
        table.remove_domain("c.example");
        table.remove_domain("b.example");
        assert!(!rendered(&table).contains("host="));
    }
}
