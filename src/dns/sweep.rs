//! Dropping the dead entries of a map that is shared by many domains: a sweep when the map
//! has doubled since the last one costs O(1) amortised per insert, where a sweep on every
//! insert (or on every insert past a fixed size) is quadratic over a round of 100,000
//! domains.

use std::collections::HashMap;
use std::hash::Hash;

/// When a map is next swept: once it holds twice what the last sweep kept, and at least
/// `min` entries.
#[derive(Debug, Default)]
pub(crate) struct Sweeper {
    at: usize,
}

impl Sweeper {
    /// Before an insert into `map`: keeps only the entries `keep` accepts when a sweep is
    /// due. Returns how many entries the sweep visited (0: none was due).
    pub(crate) fn before_insert<K: Eq + Hash, V>(
        &mut self,
        map: &mut HashMap<K, V>,
        min: usize,
        keep: impl FnMut(&K, &mut V) -> bool,
    ) -> usize {
        if map.len() < self.at.max(min) {
            return 0;
        }
        let visited = map.len();
        map.retain(keep);
        self.at = 2 * map.len();
        visited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_of_dying_entries_stays_bounded_for_constant_work_per_insert() {
        // Each entry lives for the next 100 inserts.
        let mut map: HashMap<u32, u32> = HashMap::new();
        let mut sweeper = Sweeper::default();
        let (mut visited, mut largest) = (0, 0);
        for i in 0..100_000u32 {
            visited += sweeper.before_insert(&mut map, 16, |_, born| i - *born < 100);
            map.insert(i, i);
            largest = largest.max(map.len());
        }
        assert!(largest <= 2 * 100 + 16, "{largest}");
        assert!(visited <= 3 * 100_000, "{visited}");
    }
}
