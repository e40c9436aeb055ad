//! The monitor's memory in the state store: each check's last known state (stored as its
//! [`CheckStatus`] JSON), the baselines, and loading both when a domain starts being
//! watched (start-up, reload).

use super::DomainStatus;
use crate::checks::{Cached, CheckCache, MemoryCache};
use crate::finding::CheckKind;
use crate::state::{EventKind, NewEvent, StateWriter, Store, Write};
use serde_json::json;
use std::sync::Arc;
use std::time::SystemTime;

/// Where the monitor persists baselines and reads back what it knew.
pub(crate) struct Persistence {
    /// For loading at start-up and reload (`None`: the store could not be opened).
    pub store: Option<Arc<Store>>,
    /// For baselines and their events.
    pub writer: StateWriter,
}

impl Persistence {
    /// What the store remembers of `domain` (empty when nothing, or unreadable: logged).
    pub(crate) fn load(&self, domain: &str) -> DomainStatus {
        let Some(store) = &self.store else {
            return DomainStatus::default();
        };
        let stored = match store.load_domain(domain) {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(domain, %error, "cannot read the stored state; learning anew");
                return DomainStatus::default();
            }
        };
        let mut status = super::fleet::stored_status(domain, stored.checks);
        status.baseline = stored
            .baselines
            .into_iter()
            .map(|(check, values)| (check, values.into()))
            .collect();
        for check in status.checks.values_mut() {
            // The error text of a stored inconclusive run is stale after a restart.
            check.error = None;
        }
        status
    }

    /// Persists a baseline and records the event.
    pub(crate) fn baseline(
        &self,
        domain: &str,
        check: CheckKind,
        values: &[String],
        at: SystemTime,
        how: EventKind,
        server: Option<String>,
    ) {
        self.writer.send(Write::Baseline {
            domain: domain.to_owned(),
            check,
            values: values.to_vec(),
            at,
            accepted: how == EventKind::BaselineAccepted,
        });
        self.writer.send(Write::Event(baseline_event(
            domain, check, values, at, how, server, None,
        )));
    }
}

/// What checks keep across restarts ([`CheckCache`]), backed by the state database: loaded
/// whole when the daemon starts (a few rows: one per registrable domain), each new value
/// written through the writer's queue, so a check never waits on the disk.
pub(crate) struct StoredCheckCache {
    /// Every value, as loaded and as stored since.
    memory: MemoryCache,
    /// Where new values go.
    writer: StateWriter,
}

impl StoredCheckCache {
    /// The values `store` holds (none without a store, or when unreadable: logged).
    pub(crate) fn load(store: Option<&Store>, writer: StateWriter) -> StoredCheckCache {
        let rows = match store.map(Store::load_check_cache) {
            Some(Ok(rows)) => rows,
            Some(Err(error)) => {
                tracing::error!(%error, "cannot read what the checks kept; asking anew");
                Vec::new()
            }
            None => Vec::new(),
        };
        let values = rows.into_iter().map(|row| {
            let value = Cached {
                json: row.value_json,
                stored_at: row.stored_at,
            };
            (row.check, row.key, value)
        });
        StoredCheckCache {
            memory: MemoryCache::with(values),
            writer,
        }
    }
}

impl CheckCache for StoredCheckCache {
    fn get(&self, check: CheckKind, key: &str) -> Option<Cached> {
        self.memory.get(check, key)
    }

    fn put(&self, check: CheckKind, key: &str, value: Cached) {
        self.writer.send(Write::CheckCache {
            check,
            key: key.to_owned(),
            value_json: value.json.clone(),
            at: value.stored_at,
        });
        self.memory.put(check, key, value);
    }
}

/// The event of a learned or accepted baseline.
pub(crate) fn baseline_event(
    domain: &str,
    check: CheckKind,
    values: &[String],
    at: SystemTime,
    how: EventKind,
    server: Option<String>,
    previous: Option<&[String]>,
) -> NewEvent {
    let verb = if how == EventKind::BaselineAccepted {
        "accepted"
    } else {
        "learned"
    };
    NewEvent {
        at,
        domain: domain.to_owned(),
        check,
        kind: how,
        code: None,
        severity: None,
        message: format!(
            "{} baseline {verb}: [{}]",
            check.as_str().to_ascii_uppercase(),
            values.join(", ")
        ),
        from: previous.map(|p| json!(p)),
        to: Some(json!(values)),
        server,
    }
}
