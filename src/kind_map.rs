//! [`KindMap`]: a map keyed by [`CheckKind`] that costs what it holds. Every watched domain
//! keeps three (its checks' states, learned baselines, memories): as `BTreeMap`s, whose
//! nodes hold eleven entries whatever the count, they were ~3 KiB of a domain's ~17 KiB at
//! 20,000 domains; as one exactly sized vector sorted by check, a third of that.

use crate::finding::CheckKind;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// A map from check to `V`, iterated in check order (as `BTreeMap` would).
#[derive(Clone, Debug, PartialEq)]
pub struct KindMap<V> {
    entries: Vec<(CheckKind, V)>,
}

impl<V> Default for KindMap<V> {
    fn default() -> Self {
        KindMap {
            entries: Vec::new(),
        }
    }
}

impl<V> KindMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        KindMap::default()
    }

    fn position(&self, kind: CheckKind) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&kind, |(k, _)| *k)
    }

    /// The value of `kind`.
    pub fn get(&self, kind: &CheckKind) -> Option<&V> {
        let at = self.position(*kind).ok()?;
        Some(&self.entries[at].1)
    }

    /// The value of `kind`, to change in place.
    pub fn get_mut(&mut self, kind: &CheckKind) -> Option<&mut V> {
        let at = self.position(*kind).ok()?;
        Some(&mut self.entries[at].1)
    }

    /// Whether `kind` has a value.
    pub fn contains_key(&self, kind: &CheckKind) -> bool {
        self.position(*kind).is_ok()
    }

    /// Sets the value of `kind`; returns the one it replaces. A new key grows the vector by
    /// exactly one (keys are added once, on a domain's first run; later runs replace).
    pub fn insert(&mut self, kind: CheckKind, value: V) -> Option<V> {
        match self.position(kind) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.reserve_exact(1);
                self.entries.insert(at, (kind, value));
                None
            }
        }
    }

    /// Removes the value of `kind`.
    pub fn remove(&mut self, kind: &CheckKind) -> Option<V> {
        let at = self.position(*kind).ok()?;
        Some(self.entries.remove(at).1)
    }

    /// Keeps the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&CheckKind, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
        self.entries.shrink_to_fit();
    }

    /// (check, value) in check order.
    pub fn iter(&self) -> impl Iterator<Item = (&CheckKind, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The checks, in order.
    pub fn keys(&self) -> impl Iterator<Item = &CheckKind> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values, in check order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The values, in check order, to change in place.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// How many checks have a value.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no check has a value.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<V> FromIterator<(CheckKind, V)> for KindMap<V> {
    fn from_iter<I: IntoIterator<Item = (CheckKind, V)>>(iter: I) -> Self {
        let mut entries: Vec<(CheckKind, V)> = iter.into_iter().collect();
        // The last value of a key wins, as with repeated inserts.
        entries.reverse();
        entries.sort_by_key(|(k, _)| *k);
        entries.dedup_by_key(|(k, _)| *k);
        entries.shrink_to_fit();
        KindMap { entries }
    }
}

impl<V> Extend<(CheckKind, V)> for KindMap<V> {
    fn extend<I: IntoIterator<Item = (CheckKind, V)>>(&mut self, iter: I) {
        for (kind, value) in iter {
            self.insert(kind, value);
        }
    }
}

impl<V> IntoIterator for KindMap<V> {
    type Item = (CheckKind, V);
    type IntoIter = std::vec::IntoIter<(CheckKind, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, V> IntoIterator for &'a KindMap<V> {
    type Item = (&'a CheckKind, &'a V);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (CheckKind, V)>,
        fn(&'a (CheckKind, V)) -> (&'a CheckKind, &'a V),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<V> std::ops::Index<&CheckKind> for KindMap<V> {
    type Output = V;
    /// The value of a check that has one (panics otherwise, as `BTreeMap` does).
    fn index(&self, kind: &CheckKind) -> &V {
        self.get(kind)
            .unwrap_or_else(|| panic!("no entry for the {kind} check"))
    }
}

impl<V: Serialize> Serialize for KindMap<V> {
    /// As a map, exactly as the `BTreeMap` it replaces.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn behaves_as_the_btree_map_it_replaces() {
        let mut ours = KindMap::new();
        let mut btree = BTreeMap::new();
        // Every check in a scrambled order, some twice.
        let order = [7, 2, 11, 0, 5, 12, 2, 9, 1, 4, 7, 3, 10, 6, 8];
        for (n, i) in order.into_iter().enumerate() {
            let kind = CheckKind::ALL[i];
            assert_eq!(ours.insert(kind, n), btree.insert(kind, n), "{kind}");
        }
        let pairs = |m: &KindMap<usize>| m.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>();
        assert_eq!(pairs(&ours), btree.clone().into_iter().collect::<Vec<_>>());
        assert_eq!(ours.len(), CheckKind::ALL.len());
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&btree).unwrap()
        );
        assert_eq!(
            ours.remove(&CheckKind::Dkim),
            btree.remove(&CheckKind::Dkim)
        );
        assert!(!ours.contains_key(&CheckKind::Dkim));
        ours.retain(|k, _| *k != CheckKind::Mx);
        btree.retain(|k, _| *k != CheckKind::Mx);
        assert_eq!(pairs(&ours), btree.clone().into_iter().collect::<Vec<_>>());
        let collected: KindMap<usize> =
            [(CheckKind::Spf, 1), (CheckKind::Mx, 2), (CheckKind::Spf, 3)]
                .into_iter()
                .collect();
        assert_eq!(
            pairs(&collected),
            vec![(CheckKind::Mx, 2), (CheckKind::Spf, 3)]
        );
    }

    #[test]
    fn holds_no_spare_capacity() {
        let mut map = KindMap::new();
        for kind in CheckKind::ALL {
            map.insert(kind, 0u8);
            assert_eq!(map.entries.capacity(), map.len());
        }
    }
}
