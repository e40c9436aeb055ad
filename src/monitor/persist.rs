//! The monitor's memory in the state store: the persisted form of a check's state, the
//! baselines, and loading both when a domain starts being watched (start-up, reload).

use super::{CheckStatus, DomainStatus};
use crate::checks::RecordObservation;
use crate::finding::{CheckKind, Finding, FindingCode};
use crate::state::{
    EventKind, NewEvent, StateWriter, Store, Write, from_unix_seconds, unix_seconds,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::time::SystemTime;

/// A check's last known state as stored (`check_states.state_json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersistedCheck {
    /// Whether the last run was conclusive.
    pub success: bool,
    /// Whether drift was open.
    pub drift: bool,
    /// Open findings.
    pub findings: Vec<Finding>,
    /// Records of the last conclusive run.
    pub records: Vec<PersistedRecords>,
    /// Unix seconds of the last run.
    pub last_checked: Option<f64>,
}

/// One record set as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersistedRecords {
    /// The record label (`mx`, `spf`).
    pub record: String,
    /// Normalised values.
    pub values: Vec<String>,
    /// TTL seen.
    pub ttl: Option<u32>,
}

impl PersistedCheck {
    /// The stored form of `status`.
    pub fn from_status(status: &CheckStatus) -> PersistedCheck {
        PersistedCheck {
            success: status.success,
            drift: status.drift,
            findings: status.findings.clone(),
            records: status
                .records
                .iter()
                .map(|r| PersistedRecords {
                    record: r.record.to_owned(),
                    values: r.values.clone(),
                    ttl: r.ttl,
                })
                .collect(),
            last_checked: status.last_checked.map(unix_seconds),
        }
    }

    /// Back to the monitor's state (record sets with an unknown label are dropped).
    pub fn into_status(self) -> CheckStatus {
        CheckStatus {
            success: self.success,
            drift: self.drift,
            findings: self.findings,
            records: self
                .records
                .into_iter()
                .filter_map(|r| {
                    let record = record_label(&r.record)?;
                    Some(RecordObservation {
                        record,
                        values: r.values,
                        ttl: r.ttl,
                    })
                })
                .collect(),
            error: None,
            last_checked: self.last_checked.map(from_unix_seconds),
        }
    }

    /// The state after accepting the current records as the baseline: drift closed.
    pub fn accepted(mut self) -> PersistedCheck {
        self.findings.retain(|f| f.code != FindingCode::Drift);
        self.drift = false;
        self
    }
}

/// Record labels are check names today (`mx`, `spf`); the static label of a stored one.
fn record_label(name: &str) -> Option<&'static str> {
    CheckKind::ALL
        .into_iter()
        .map(CheckKind::as_str)
        .find(|label| *label == name)
}

/// Where the monitor persists baselines and reads back what it knew.
pub struct Persistence {
    /// For loading at start-up and reload (`None`: the store could not be opened).
    pub store: Option<Arc<Store>>,
    /// For baselines and their events.
    pub writer: StateWriter,
}

impl Persistence {
    /// What the store remembers of `domain` (empty when nothing, or unreadable: logged).
    pub fn load(&self, domain: &str) -> DomainStatus {
        let mut status = DomainStatus::default();
        let Some(store) = &self.store else {
            return status;
        };
        let stored = match store.load_domain(domain) {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(domain, %error, "cannot read the stored state; learning anew");
                return status;
            }
        };
        status.baseline = stored.baselines;
        for (check, json) in stored.checks {
            match serde_json::from_str::<PersistedCheck>(&json) {
                Ok(persisted) => {
                    status.checks.insert(check, persisted.into_status());
                }
                Err(error) => {
                    tracing::warn!(domain, check = %check, %error, "unreadable stored check state ignored");
                }
            }
        }
        status.last_checked = status.checks.values().filter_map(|c| c.last_checked).max();
        status
    }

    /// Persists a baseline and records the event.
    pub fn baseline(
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
