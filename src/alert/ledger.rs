//! What alerting must remember across restarts: the open incidents (re-sent to Alertmanager,
//! which deduplicates) and which webhook already announced which incident (webhooks do not
//! announce it again). [`MemoryAlertStore`] keeps it in memory; the state store backs the
//! same trait with its database.

use super::AlertKey;
use super::lifecycle::FiringAlert;
use super::rules::{AlertContent, AlertName};
use crate::finding::{CheckKind, Severity};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An alert that fires (an open incident).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRecord {
    /// Stable id of this firing episode: the label fingerprint and the start time.
    pub id: String,
    /// Labels, annotations and link, as last sent.
    pub content: AlertContent,
    /// When it started firing.
    pub starts_at: SystemTime,
}

impl AlertRecord {
    /// The incident of a firing alert.
    pub fn of(alert: &FiringAlert) -> AlertRecord {
        AlertRecord {
            id: incident_id(&alert.content, alert.starts_at),
            content: alert.content.clone(),
            starts_at: alert.starts_at,
        }
    }

    /// The firing alert this incident was, when its labels still name a known alert.
    pub fn to_alert(&self) -> Option<FiringAlert> {
        let labels = &self.content.labels;
        let name = AlertName::parse(labels.get("alertname")?).ok()?;
        let check = labels.get("check")?;
        let check: CheckKind = check.parse().ok()?;
        let severity = labels.get("severity")?;
        let severity = *Severity::ALL.iter().find(|s| s.as_str() == severity)?;
        Some(FiringAlert {
            key: AlertKey {
                name,
                domain: labels.get("domain")?.clone(),
                check,
                severity,
            },
            content: self.content.clone(),
            starts_at: self.starts_at,
        })
    }
}

/// `{fingerprint}-{start in unix milliseconds}`.
pub fn incident_id(content: &AlertContent, starts_at: SystemTime) -> String {
    let millis = starts_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    format!("{}-{millis}", fingerprint(&content.labels))
}

/// 16 hex digits: FNV-1a over the sorted label pairs (the same label set, the same value).
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, value) in labels {
        for byte in name
            .bytes()
            .chain([0xff])
            .chain(value.bytes())
            .chain([0xff])
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// A failure of the backing store; alerting logs it and goes on (delivery never waits for
/// a store that is down).
#[derive(Debug, thiserror::Error)]
#[error("alert state store: {0}")]
pub struct StoreError(pub String);

/// Persistence of alerting state. Called from the alerting task and the delivery workers,
/// never from the checks.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// The incidents open at the last stop.
    async fn open_incidents(&self) -> Result<Vec<AlertRecord>, StoreError>;
    /// An alert started firing (or its content changed: same id, replace).
    async fn incident_opened(&self, incident: &AlertRecord) -> Result<(), StoreError>;
    /// An alert stopped firing; its announcements may be forgotten.
    async fn incident_resolved(&self, id: &str, ended_at: SystemTime) -> Result<(), StoreError>;
    /// Whether `receiver` delivered the firing announcement of incident `id`.
    async fn announced(&self, receiver: &str, id: &str) -> Result<bool, StoreError>;
    /// `receiver` delivered the firing announcement of incident `id`.
    async fn record_announced(&self, receiver: &str, id: &str) -> Result<(), StoreError>;
    /// Whether this instance delivers the firing (`firing`) or resolved notice of incident
    /// `id` to `receiver`. Always, except in a shared store, where of two replicas of one
    /// shard only the one that claims it first does.
    async fn claim(&self, _receiver: &str, _id: &str, _firing: bool) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// [`AlertStore`] in memory (no state directory): survives reloads, not restarts.
#[derive(Debug, Default)]
pub struct MemoryAlertStore {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    open: BTreeMap<String, AlertRecord>,
    announced: BTreeSet<(String, String)>,
}

impl MemoryAlertStore {
    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl AlertStore for MemoryAlertStore {
    async fn open_incidents(&self) -> Result<Vec<AlertRecord>, StoreError> {
        Ok(self.state().open.values().cloned().collect())
    }

    async fn incident_opened(&self, incident: &AlertRecord) -> Result<(), StoreError> {
        self.state()
            .open
            .insert(incident.id.clone(), incident.clone());
        Ok(())
    }

    async fn incident_resolved(&self, id: &str, _ended_at: SystemTime) -> Result<(), StoreError> {
        let mut state = self.state();
        state.open.remove(id);
        state.announced.retain(|(_, incident)| incident != id);
        Ok(())
    }

    async fn announced(&self, receiver: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .announced
            .contains(&(receiver.to_string(), id.to_string())))
    }

    async fn record_announced(&self, receiver: &str, id: &str) -> Result<(), StoreError> {
        // An announcement that lands after the resolution must not resurrect the incident.
        let mut state = self.state();
        if state.open.contains_key(id) {
            state
                .announced
                .insert((receiver.to_string(), id.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(domain: &str) -> FiringAlert {
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
                annotations: BTreeMap::new(),
                generator_url: String::new(),
                facts: None,
            },
            starts_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    #[tokio::test]
    async fn open_incidents_and_announcements_until_resolved() {
        let store = MemoryAlertStore::default();
        let a = AlertRecord::of(&alert("a.example"));
        let b = AlertRecord::of(&alert("b.example"));
        assert_ne!(a.id, b.id);
        assert!(a.id.ends_with("-1700000000000"), "{}", a.id);
        store.incident_opened(&a).await.unwrap();
        store.incident_opened(&b).await.unwrap();
        store.record_announced("oncall", &a.id).await.unwrap();
        assert!(store.announced("oncall", &a.id).await.unwrap());
        assert!(!store.announced("oncall", &b.id).await.unwrap());
        assert!(!store.announced("other", &a.id).await.unwrap());
        assert_eq!(
            store.open_incidents().await.unwrap(),
            [a.clone(), b.clone()]
        );
        store
            .incident_resolved(&a.id, SystemTime::now())
            .await
            .unwrap();
        assert_eq!(store.open_incidents().await.unwrap(), vec![b.clone()]);
        assert!(!store.announced("oncall", &a.id).await.unwrap());
        // Late announcement of a resolved incident is not kept.
        store.record_announced("oncall", &a.id).await.unwrap();
        assert!(!store.announced("oncall", &a.id).await.unwrap());
        assert_eq!(b.to_alert(), Some(alert("b.example")));
    }

    #[test]
    fn fingerprint_depends_on_every_label() {
        let mut labels = alert("a.example").content.labels;
        let first = fingerprint(&labels);
        assert_eq!(first.len(), 16);
        labels.insert("team".into(), "mail".into());
        assert_ne!(fingerprint(&labels), first);
    }
}
