//! What a check keeps across restarts: a small key-value store per check, for answers that
//! cost too much to ask again after every restart (the registration check asks a registry
//! once a day). The daemon backs it with its state database; without one (`maildrift
//! check`, no state directory) a check keeps only what it holds in memory.

use crate::finding::CheckKind;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// One stored value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cached {
    /// The value, as JSON text (each check reads its own).
    pub json: String,
    /// When it was stored (wall time: it must mean the same after a restart).
    pub stored_at: SystemTime,
}

/// A key-value store per check that survives restarts. Reads never wait on a disk and
/// writes never block: implementations keep the values in memory and persist behind.
pub trait CheckCache: Send + Sync {
    /// The value `check` stored under `key`, if any.
    fn get(&self, check: CheckKind, key: &str) -> Option<Cached>;
    /// Stores `value` under `key` for `check`, replacing what was there.
    fn put(&self, check: CheckKind, key: &str, value: Cached);
}

/// A [`CheckCache`] in memory only (tests, and the state store's copy it loads at start).
#[derive(Debug, Default)]
pub struct MemoryCache {
    /// (check, key) → value.
    values: Mutex<HashMap<(CheckKind, String), Cached>>,
}

impl MemoryCache {
    /// A cache holding `values`.
    pub fn with(values: impl IntoIterator<Item = (CheckKind, String, Cached)>) -> MemoryCache {
        let values = values
            .into_iter()
            .map(|(check, key, value)| ((check, key), value))
            .collect();
        MemoryCache {
            values: Mutex::new(values),
        }
    }

    /// Every value, for tests.
    pub fn len(&self) -> usize {
        self.values.lock().expect("cache lock poisoned").len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CheckCache for MemoryCache {
    fn get(&self, check: CheckKind, key: &str) -> Option<Cached> {
        let values = self.values.lock().expect("cache lock poisoned");
        values.get(&(check, key.to_owned())).cloned()
    }

    fn put(&self, check: CheckKind, key: &str, value: Cached) {
        let mut values = self.values.lock().expect("cache lock poisoned");
        values.insert((check, key.to_owned()), value);
    }
}
