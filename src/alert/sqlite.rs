//! [`SqliteAlertStore`]: alerting's open incidents and webhook announcements in the state
//! database, so that a restart re-sends open incidents to Alertmanager (it deduplicates)
//! and webhooks do not announce again what they already announced.
//!
//! Ordering guarantee: every call is one SQLite transaction on the alert store's own
//! connection (WAL, `synchronous=FULL`), run on a blocking thread, and returns `Ok` only
//! after its COMMIT, so what it wrote survives a crash from then on. Calls are serialized
//! by that connection's lock, so calls one task makes one after the other are applied in
//! that order. The alerting engine awaits `incident_opened` before it queues any delivery,
//! and a delivery worker calls `record_announced` only after the receiver accepted the
//! message: a crash between the two re-announces that one message after the restart
//! (at least once), it never loses one. `record_announced` of an incident that is no
//! longer open writes nothing, so a late announcement cannot resurrect it. These writes
//! bypass the state writer's queue (which drops writes when full): they are few, and they
//! never run on a check's path.

use super::AlertContent;
use super::ledger::{AlertRecord, AlertStore, StoreError};
use crate::state::{StateError, Store, unix_seconds};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// [`AlertStore`] backed by the state database.
pub struct SqliteAlertStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteAlertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteAlertStore").finish_non_exhaustive()
    }
}

impl SqliteAlertStore {
    /// Opens a dedicated connection to `store`'s database (already migrated by
    /// [`Store::open`]).
    pub fn open(store: &Store) -> Result<SqliteAlertStore, StateError> {
        Ok(SqliteAlertStore {
            conn: Arc::new(Mutex::new(store.connect()?)),
        })
    }

    /// Runs `f` on the connection on a blocking thread (a busy or slow disk never holds
    /// up the runtime).
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError(format!("database task failed: {e}")))?
        .map_err(|e| StoreError(e.to_string()))
    }
}

fn nanos(time: SystemTime) -> i64 {
    let nanos = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

/// One stored incident; `None` (logged) when its JSON cannot be read.
fn incident_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<AlertRecord>> {
    let id: String = row.get(0)?;
    let labels: String = row.get(1)?;
    let annotations: String = row.get(2)?;
    let starts_at: i64 = row.get(4)?;
    let (labels, annotations) = match (
        serde_json::from_str(&labels),
        serde_json::from_str(&annotations),
    ) {
        (Ok(labels), Ok(annotations)) => (labels, annotations),
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(incident = %id, %error, "unreadable stored alert incident ignored");
            return Ok(None);
        }
    };
    Ok(Some(AlertRecord {
        id,
        content: AlertContent {
            labels,
            annotations,
            generator_url: row.get(3)?,
            facts: None,
        },
        starts_at: UNIX_EPOCH + Duration::from_nanos(u64::try_from(starts_at).unwrap_or(0)),
    }))
}

#[async_trait]
impl AlertStore for SqliteAlertStore {
    async fn open_incidents(&self) -> Result<Vec<AlertRecord>, StoreError> {
        self.run(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, labels_json, annotations_json, generator_url, starts_at_ns
                 FROM alert_incidents ORDER BY id",
            )?;
            let rows = statement.query_map([], incident_row)?;
            let mut incidents = Vec::new();
            for row in rows {
                incidents.extend(row?);
            }
            Ok(incidents)
        })
        .await
    }

    async fn incident_opened(&self, incident: &AlertRecord) -> Result<(), StoreError> {
        let labels = serde_json::to_string(&incident.content.labels)
            .map_err(|e| StoreError(format!("labels of {}: {e}", incident.id)))?;
        let annotations = serde_json::to_string(&incident.content.annotations)
            .map_err(|e| StoreError(format!("annotations of {}: {e}", incident.id)))?;
        let id = incident.id.clone();
        let generator_url = incident.content.generator_url.clone();
        let starts_at = nanos(incident.starts_at);
        self.run(move |conn| {
            // Autocommit: one statement, durable when it returns.
            conn.prepare_cached(
                "INSERT INTO alert_incidents
                     (id, labels_json, annotations_json, generator_url, starts_at_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE
                 SET labels_json = excluded.labels_json,
                     annotations_json = excluded.annotations_json,
                     generator_url = excluded.generator_url,
                     starts_at_ns = excluded.starts_at_ns",
            )?
            .execute(params![id, labels, annotations, generator_url, starts_at])?;
            Ok(())
        })
        .await
    }

    async fn incident_resolved(&self, id: &str, _ended_at: SystemTime) -> Result<(), StoreError> {
        let id = id.to_string();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached("DELETE FROM alert_announcements WHERE incident_id = ?1")?
                .execute([&id])?;
            tx.prepare_cached("DELETE FROM alert_incidents WHERE id = ?1")?
                .execute([&id])?;
            tx.commit()
        })
        .await
    }

    async fn announced(&self, receiver: &str, id: &str) -> Result<bool, StoreError> {
        let (receiver, id) = (receiver.to_string(), id.to_string());
        self.run(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT 1 FROM alert_announcements WHERE receiver = ?1 AND incident_id = ?2",
                )?
                .query_row([&receiver, &id], |_| Ok(()))
                .optional()?
                .is_some())
        })
        .await
    }

    async fn record_announced(&self, receiver: &str, id: &str) -> Result<(), StoreError> {
        let (receiver, id) = (receiver.to_string(), id.to_string());
        let at = unix_seconds(SystemTime::now());
        self.run(move |conn| {
            // Only while the incident is open: a late announcement must not resurrect it.
            conn.prepare_cached(
                "INSERT INTO alert_announcements (receiver, incident_id, announced_at)
                 SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM alert_incidents WHERE id = ?2)
                 ON CONFLICT (receiver, incident_id) DO NOTHING",
            )?
            .execute(params![receiver, id, at])?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::lifecycle::FiringAlert;
    use crate::alert::{AlertKey, AlertName};
    use crate::finding::{CheckKind, Severity};
    use std::collections::BTreeMap;

    fn alert(domain: &str, starts_at: SystemTime) -> FiringAlert {
        let labels = BTreeMap::from([
            ("alertname".to_string(), "MailDnsMxDrift".to_string()),
            ("domain".to_string(), domain.to_string()),
            ("check".to_string(), "mx".to_string()),
            ("severity".to_string(), "critical".to_string()),
        ]);
        FiringAlert {
            key: AlertKey {
                name: AlertName::MailDnsMxDrift,
                domain: domain.to_string(),
                check: CheckKind::Mx,
                severity: Severity::Critical,
            },
            content: AlertContent {
                labels,
                annotations: BTreeMap::from([(
                    "summary".to_string(),
                    format!("MX of {domain} changed"),
                )]),
                generator_url: format!("http://m.test/api/v1/domains/{domain}"),
                facts: None,
            },
            starts_at,
        }
    }

    fn open(dir: &std::path::Path) -> SqliteAlertStore {
        SqliteAlertStore::open(&Store::open(dir).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn incidents_and_announcements_survive_a_restart_until_resolved() {
        let dir = tempfile::tempdir().unwrap();
        // Sub-millisecond precision, to see that the start time round-trips exactly.
        let starts = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let a = AlertRecord::of(&alert("a.example", starts));
        let b = AlertRecord::of(&alert("b.example", starts + Duration::from_secs(5)));
        {
            let store = open(dir.path());
            assert!(store.open_incidents().await.unwrap().is_empty());
            store.incident_opened(&a).await.unwrap();
            store.incident_opened(&b).await.unwrap();
            store.record_announced("oncall", &a.id).await.unwrap();
            // Twice is once.
            store.record_announced("oncall", &a.id).await.unwrap();
            // An unknown incident is not recorded.
            store.record_announced("oncall", "nope-1").await.unwrap();
            assert!(!store.announced("oncall", "nope-1").await.unwrap());
        }

        // Restart: a new Store and connection on the same directory.
        let store = open(dir.path());
        let mut expected = vec![a.clone(), b.clone()];
        expected.sort_by(|x, y| x.id.cmp(&y.id));
        assert_eq!(store.open_incidents().await.unwrap(), expected);
        assert!(store.announced("oncall", &a.id).await.unwrap());
        assert!(!store.announced("oncall", &b.id).await.unwrap());
        assert!(!store.announced("other", &a.id).await.unwrap());
        let restored = store.open_incidents().await.unwrap();
        let restored_b = restored.iter().find(|i| i.id == b.id).unwrap();
        assert_eq!(
            restored_b.to_alert(),
            Some(alert("b.example", starts + Duration::from_secs(5)))
        );

        // Changed content under the same id replaces it and keeps the announcement.
        let mut changed = a.clone();
        changed
            .content
            .annotations
            .insert("description".into(), "now worse".into());
        store.incident_opened(&changed).await.unwrap();
        assert!(store.announced("oncall", &a.id).await.unwrap());

        store
            .incident_resolved(&a.id, SystemTime::now())
            .await
            .unwrap();
        // A late announcement of a resolved incident is not kept.
        store.record_announced("oncall", &a.id).await.unwrap();
        drop(store);
        let store = open(dir.path());
        assert_eq!(store.open_incidents().await.unwrap(), vec![b.clone()]);
        assert!(!store.announced("oncall", &a.id).await.unwrap());
    }

    #[tokio::test]
    async fn unreadable_rows_are_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .with_conn(|conn| {
                conn.execute(
                    "INSERT INTO alert_incidents VALUES ('x-1', 'not json', '{}', '', 0)",
                    [],
                )
            })
            .unwrap();
        let alerts = SqliteAlertStore::open(&store).unwrap();
        let good = AlertRecord::of(&alert("a.example", UNIX_EPOCH + Duration::from_secs(9)));
        alerts.incident_opened(&good).await.unwrap();
        assert_eq!(alerts.open_incidents().await.unwrap(), vec![good]);
    }
}
