//! Accepting the current records as the new learned baseline: in the running daemon
//! ([`Monitor::accept`], behind `POST /api/v1/domains/{domain}/accept`) and, when the daemon
//! is down, straight in the store ([`accept_stored`], for `maildrift baseline accept`).

use super::persist::baseline_event;
use super::timeline::asked;
use super::{CheckStatus, CheckUpdate, Monitor, export_check};
use crate::checks::baseline_values;
use crate::finding::{CheckKind, FindingCode};
use crate::state::{EventKind, NewEvent, StateError, Store, Write};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::SystemTime;

/// One baseline replaced by an accept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct AcceptedBaseline {
    /// Which check.
    pub check: CheckKind,
    /// The baseline before (`None` when none was stored).
    pub previous: Option<Vec<String>>,
    /// The new baseline: the records of the last conclusive run.
    pub baseline: Vec<String>,
    /// Whether open drift was closed by it.
    pub cleared_drift: bool,
}

/// Why nothing was accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AcceptError {
    /// The domain is not watched (daemon) or has nothing stored (store).
    #[error("domain {0:?} is not watched by this instance")]
    UnknownDomain(String),
    /// The check is compared with the config, not with a learned baseline.
    #[error(
        "{domain}: {check} has a declared expectation in the config; edit `expect` (or the provider) instead"
    )]
    Declared {
        /// Domain name.
        domain: String,
        /// The check.
        check: CheckKind,
    },
    /// No conclusive observation to accept yet.
    #[error("{domain}: {check} has no conclusive observation yet; nothing to accept")]
    NotObserved {
        /// Domain name.
        domain: String,
        /// The check.
        check: CheckKind,
    },
    /// No check of the domain uses a learned baseline.
    #[error("{0}: no check of this domain is compared with a learned baseline")]
    NothingLearned(String),
    /// The store failed.
    #[error(transparent)]
    State(#[from] StateError),
}

impl Monitor {
    /// Makes the current records of `only` (or of every check without a declared
    /// expectation) the new baseline, closes their drift, persists and records it.
    pub(crate) fn accept(
        &self,
        name: &str,
        only: Option<CheckKind>,
        at: SystemTime,
    ) -> Result<Vec<AcceptedBaseline>, AcceptError> {
        let domain = self
            .domain(name)
            .ok_or_else(|| AcceptError::UnknownDomain(name.to_owned()))?;
        let config = &domain.config;
        let mut status = domain.status.lock().expect("lock poisoned");
        let checks: Vec<CheckKind> = match only {
            Some(check) if self.checks.declared(check, config) => {
                return Err(AcceptError::Declared {
                    domain: name.to_owned(),
                    check,
                });
            }
            Some(check) => vec![check],
            None => status
                .checks
                .keys()
                .copied()
                .filter(|c| !self.checks.declared(*c, config))
                .collect(),
        };
        let mut accepted = Vec::new();
        for check in checks {
            let Some(current) = status
                .checks
                .get(&check)
                .filter(|c| c.success || !c.records.is_empty())
                .cloned()
            else {
                if only.is_some() {
                    return Err(AcceptError::NotObserved {
                        domain: name.to_owned(),
                        check,
                    });
                }
                continue;
            };
            let values = baseline_values(&current.records);
            let previous = status
                .baseline
                .insert(check, values.clone().into())
                .map(|previous| previous.to_vec());
            let next = current.clone().accepted();
            if let Some(persistence) = &self.persistence {
                persistence.baseline(
                    name,
                    check,
                    &values,
                    at,
                    EventKind::BaselineAccepted,
                    Some(asked(config)),
                );
            }
            let update = CheckUpdate {
                domain: config,
                check,
                previous: Some(&current),
                next: &next,
                at,
            };
            for observer in &self.observers {
                observer.check_applied(&update);
            }
            export_check(&domain.series, check, &next);
            tracing::info!(domain = name, check = %check, baseline = ?values, cleared_drift = current.drift, "baseline accepted");
            accepted.push(AcceptedBaseline {
                check,
                previous,
                baseline: values,
                cleared_drift: current.drift,
            });
            status.checks.insert(check, next);
        }
        if accepted.is_empty() {
            return Err(AcceptError::NothingLearned(name.to_owned()));
        }
        Ok(accepted)
    }
}

/// The same as [`Monitor::accept`] on the store alone (the daemon is stopped): the records
/// of the last conclusive run it stored become the baseline; the drift it stored is closed
/// (a `resolved` event) so the next start neither reports nor re-announces it.
pub(crate) fn accept_stored(
    store: &Store,
    name: &str,
    only: Option<CheckKind>,
    at: SystemTime,
) -> Result<Vec<AcceptedBaseline>, AcceptError> {
    let stored = store.load_domain(name)?;
    if stored.baselines.is_empty() && stored.checks.is_empty() {
        return Err(AcceptError::UnknownDomain(name.to_owned()));
    }
    let checks: Vec<CheckKind> = match only {
        Some(check) if !stored.baselines.contains_key(&check) => {
            return Err(AcceptError::NotObserved {
                domain: name.to_owned(),
                check,
            });
        }
        Some(check) => vec![check],
        None => stored.baselines.keys().copied().collect(),
    };
    let mut writes = Vec::new();
    let mut accepted = Vec::new();
    for check in checks {
        let Some(state) = stored
            .checks
            .get(&check)
            .and_then(|json| serde_json::from_str::<CheckStatus>(json).ok())
        else {
            continue;
        };
        let status = &state;
        if !status.success && status.records.is_empty() {
            continue;
        }
        let values = baseline_values(&status.records);
        let previous = stored.baselines.get(&check).cloned();
        let server = Some("maildrift baseline accept (daemon stopped)".to_owned());
        writes.push(Write::Baseline {
            domain: name.to_owned(),
            check,
            values: values.clone(),
            at,
            accepted: true,
        });
        writes.push(Write::Event(baseline_event(
            name,
            check,
            &values,
            at,
            EventKind::BaselineAccepted,
            server.clone(),
            previous.as_deref(),
        )));
        if let Some(drift) = state.findings.iter().find(|f| f.code == FindingCode::Drift) {
            writes.push(Write::Event(NewEvent {
                at,
                domain: name.to_owned(),
                check,
                kind: EventKind::Resolved,
                code: Some(drift.code.as_str().to_owned()),
                severity: Some(drift.severity),
                message: format!("resolved: {}", drift.message),
                from: drift.evidence.get("to").cloned(),
                to: Some(json!(values)),
                server,
            }));
        }
        let cleared_drift = state.drift;
        let state_json = serde_json::to_string(&state.accepted()).unwrap_or_default();
        writes.push(Write::CheckState {
            domain: name.to_owned(),
            check,
            state_json,
            at,
        });
        accepted.push(AcceptedBaseline {
            check,
            previous,
            baseline: values,
            cleared_drift,
        });
    }
    if accepted.is_empty() {
        return Err(AcceptError::NothingLearned(name.to_owned()));
    }
    store.write(&writes)?;
    Ok(accepted)
}
