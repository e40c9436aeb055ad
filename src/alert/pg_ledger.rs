//! [`PgAlertStore`]: alerting's open incidents and webhook announcements in the shared
//! PostgreSQL store of a fleet. Two replicas of one shard (an HA pair) fire the same alert
//! with different incident ids (the start differs by their timing) but the same label
//! fingerprint; a webhook notice is delivered by the replica that claims it first, a row
//! per (receiver, fingerprint) taken under an advisory lock on the fingerprint:
//! - firing: claimed when no replica holds it, or when its holder's claim is older than
//!   [`LEASE`] without a delivery (that replica died while sending);
//! - resolved: claimed by deleting the announced row, so the first replica to see the
//!   alert resolve announces it, and the next firing is announced anew.
//!
//! Alertmanager gets every replica's alerts and deduplicates them itself. At start a
//! replica restores only the incidents of the domains it watches: the store holds the
//! whole fleet's.

use super::AlertContent;
use super::ledger::{AlertRecord, AlertStore, StoreError};
use crate::state::{Store, unix_seconds};
use async_trait::async_trait;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a claim without a delivery holds before another replica may take it over.
pub const LEASE: Duration = Duration::from_secs(60);

/// [`AlertStore`] in the shared store.
pub struct PgAlertStore {
    store: Arc<Store>,
    domains: Vec<String>,
}

impl std::fmt::Debug for PgAlertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAlertStore").finish_non_exhaustive()
    }
}

/// The fingerprint part of an incident id (`{fingerprint}-{millis}`).
fn fingerprint_of(id: &str) -> &str {
    id.rsplit_once('-')
        .map_or(id, |(fingerprint, _)| fingerprint)
}

impl PgAlertStore {
    /// Alerting of the instance watching `domains`, in `store` (a PostgreSQL store).
    pub fn new(store: Arc<Store>, domains: &BTreeSet<String>) -> PgAlertStore {
        PgAlertStore {
            store,
            domains: domains.iter().cloned().collect(),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || match store.postgres() {
            Some(pg) => pg.with_client(f).map_err(|e| StoreError(e.to_string())),
            None => Err(StoreError("not a PostgreSQL store".into())),
        })
        .await
        .map_err(|e| StoreError(format!("database task failed: {e}")))?
    }
}

fn nanos(time: SystemTime) -> i64 {
    let nanos = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

fn lock(tx: &mut postgres::Transaction<'_>, fingerprint: &str) -> Result<(), postgres::Error> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('maildrift-alert:' || $1))",
        &[&fingerprint],
    )?;
    Ok(())
}

#[async_trait]
impl AlertStore for PgAlertStore {
    async fn open_incidents(&self) -> Result<Vec<AlertRecord>, StoreError> {
        let domains = self.domains.clone();
        let rows = self
            .run(move |client| {
                client.query(
                    "SELECT id, labels_json, annotations_json, generator_url, starts_at_ns
                     FROM alert_incidents WHERE domain = ANY($1) ORDER BY id",
                    &[&domains],
                )
            })
            .await?;
        let mut incidents = Vec::new();
        for row in rows {
            let id: String = row.get(0);
            let labels: String = row.get(1);
            let annotations: String = row.get(2);
            let starts_at: i64 = row.get(4);
            match (
                serde_json::from_str(&labels),
                serde_json::from_str(&annotations),
            ) {
                (Ok(labels), Ok(annotations)) => incidents.push(AlertRecord {
                    id,
                    content: AlertContent {
                        labels,
                        annotations,
                        generator_url: row.get(3),
                        facts: None,
                    },
                    starts_at: UNIX_EPOCH
                        + Duration::from_nanos(u64::try_from(starts_at).unwrap_or(0)),
                }),
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(incident = %id, %error, "unreadable stored alert incident ignored");
                }
            }
        }
        Ok(incidents)
    }

    async fn incident_opened(&self, incident: &AlertRecord) -> Result<(), StoreError> {
        let labels = serde_json::to_string(&incident.content.labels)
            .map_err(|e| StoreError(format!("labels of {}: {e}", incident.id)))?;
        let annotations = serde_json::to_string(&incident.content.annotations)
            .map_err(|e| StoreError(format!("annotations of {}: {e}", incident.id)))?;
        let id = incident.id.clone();
        let domain = incident
            .content
            .labels
            .get("domain")
            .cloned()
            .unwrap_or_default();
        let generator_url = incident.content.generator_url.clone();
        let starts_at = nanos(incident.starts_at);
        self.run(move |client| {
            client.execute(
                "INSERT INTO alert_incidents
                     (id, fingerprint, domain, labels_json, annotations_json, generator_url,
                      starts_at_ns)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (id) DO UPDATE
                 SET labels_json = excluded.labels_json,
                     annotations_json = excluded.annotations_json,
                     generator_url = excluded.generator_url,
                     starts_at_ns = excluded.starts_at_ns",
                &[
                    &id,
                    &fingerprint_of(&id),
                    &domain,
                    &labels,
                    &annotations,
                    &generator_url,
                    &starts_at,
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn incident_resolved(&self, id: &str, _ended_at: SystemTime) -> Result<(), StoreError> {
        // The announcements stay until a replica claims the resolved notice (below).
        let id = id.to_string();
        self.run(move |client| {
            client.execute("DELETE FROM alert_incidents WHERE id = $1", &[&id])?;
            Ok(())
        })
        .await
    }

    async fn announced(&self, receiver: &str, id: &str) -> Result<bool, StoreError> {
        let (receiver, fingerprint) = (receiver.to_string(), fingerprint_of(id).to_string());
        self.run(move |client| {
            Ok(client
                .query_opt(
                    "SELECT 1 FROM alert_announcements
                     WHERE receiver = $1 AND fingerprint = $2 AND announced_at IS NOT NULL",
                    &[&receiver, &fingerprint],
                )?
                .is_some())
        })
        .await
    }

    async fn record_announced(&self, receiver: &str, id: &str) -> Result<(), StoreError> {
        let (receiver, id) = (receiver.to_string(), id.to_string());
        let at = unix_seconds(SystemTime::now());
        self.run(move |client| {
            let fingerprint = fingerprint_of(&id);
            // Only while the incident is open: a late announcement must not resurrect it.
            client.execute(
                "INSERT INTO alert_announcements
                     (receiver, fingerprint, incident_id, announced_at, claimed_at)
                 SELECT $1, $2, $3, $4, $4
                 WHERE EXISTS (SELECT 1 FROM alert_incidents WHERE id = $3)
                 ON CONFLICT (receiver, fingerprint) DO UPDATE
                 SET announced_at = excluded.announced_at
                 WHERE alert_announcements.incident_id = excluded.incident_id",
                &[&receiver, &fingerprint, &id, &at],
            )?;
            Ok(())
        })
        .await
    }

    async fn claim(&self, receiver: &str, id: &str, firing: bool) -> Result<bool, StoreError> {
        let (receiver, id) = (receiver.to_string(), id.to_string());
        let now = unix_seconds(SystemTime::now());
        self.run(move |client| {
            let fingerprint = fingerprint_of(&id).to_string();
            let mut tx = client.transaction()?;
            lock(&mut tx, &fingerprint)?;
            let claimed = if firing {
                let held = tx.query_opt(
                    "SELECT incident_id, announced_at IS NOT NULL, claimed_at
                     FROM alert_announcements WHERE receiver = $1 AND fingerprint = $2",
                    &[&receiver, &fingerprint],
                )?;
                let take = match held {
                    None => true,
                    Some(row) => {
                        let (holder, delivered, at): (String, bool, f64) =
                            (row.get(0), row.get(1), row.get(2));
                        holder == id || (!delivered && now - at > LEASE.as_secs_f64())
                    }
                };
                if take {
                    tx.execute(
                        "INSERT INTO alert_announcements
                             (receiver, fingerprint, incident_id, announced_at, claimed_at)
                         VALUES ($1, $2, $3, NULL, $4)
                         ON CONFLICT (receiver, fingerprint) DO UPDATE
                         SET incident_id = excluded.incident_id, claimed_at = excluded.claimed_at
                         WHERE alert_announcements.incident_id <> excluded.incident_id",
                        &[&receiver, &fingerprint, &id, &now],
                    )?;
                }
                take
            } else {
                tx.execute(
                    "DELETE FROM alert_announcements
                     WHERE receiver = $1 AND fingerprint = $2 AND announced_at IS NOT NULL",
                    &[&receiver, &fingerprint],
                )? > 0
            };
            tx.commit()?;
            Ok(claimed)
        })
        .await
    }
}
