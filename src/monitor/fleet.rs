//! The whole fleet, for the `?scope=fleet` views: the [`Roster`] (every domain of this
//! instance's configuration, every shard's: the shards of a fleet share one config and
//! `--shard` picks their part) joined with what the shared store holds, each domain's
//! stored check states. A domain the store holds but the roster does not list (removed
//! from the config, or watched by an instance with another config) is listed too, without
//! a [`Member`]; a listed domain nobody has stored a state for yet is pending.

use super::{CheckStatus, DomainStatus};
use crate::config::DomainConfig;
use crate::finding::CheckKind;
use crate::state::{CheckSummary, StoredStates};
use std::collections::BTreeMap;

/// What the fleet views need of a configured domain (not its whole config: the roster
/// lists every shard's domains, so it stays small).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Member {
    /// Its labels, for the search and the table.
    pub labels: BTreeMap<String, String>,
    /// The checks it skips, shown as skipped rather than pending.
    pub skip: Vec<CheckKind>,
}

/// Every configured domain of the fleet, by name.
#[derive(Clone, Debug, Default)]
pub(crate) struct Roster(BTreeMap<String, Member>);

impl Roster {
    /// The roster of `domains` (the whole config, before sharding).
    pub(crate) fn new(domains: &[DomainConfig]) -> Roster {
        Roster(
            domains
                .iter()
                .map(|d| {
                    let member = Member {
                        labels: d.labels.clone(),
                        skip: d.skip.clone(),
                    };
                    (d.name.clone(), member)
                })
                .collect(),
        )
    }

    /// The configured domain called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Member> {
        self.0.get(name)
    }
}

/// One domain of the fleet with its stored state.
#[derive(Debug)]
pub(crate) struct FleetDomain<'r> {
    /// Its name.
    pub name: String,
    /// Its labels and skipped checks (`None`: not in this instance's configuration).
    pub member: Option<&'r Member>,
    /// Its stored check states (empty: pending).
    pub status: DomainStatus,
}

/// One domain of the fleet summed up for the overview.
#[derive(Debug)]
pub(crate) struct FleetRow<'r> {
    /// Its name.
    pub name: String,
    /// Its labels and skipped checks (`None`: not in this instance's configuration).
    pub member: Option<&'r Member>,
    /// Per check, its stored state summed up.
    pub checks: BTreeMap<CheckKind, CheckSummary>,
    /// When its newest state was stored (unix seconds).
    pub stored_at: Option<f64>,
}

/// Every domain of `roster` and of `stored`, by name, each with its stored states.
pub(crate) fn statuses(roster: &Roster, mut stored: StoredStates) -> Vec<FleetDomain<'_>> {
    let mut domains: Vec<FleetDomain<'_>> = roster
        .0
        .iter()
        .map(|(name, member)| FleetDomain {
            name: name.clone(),
            member: Some(member),
            status: stored
                .remove(name)
                .map(|checks| stored_status(name, checks))
                .unwrap_or_default(),
        })
        .collect();
    domains.extend(stored.into_iter().map(|(name, checks)| FleetDomain {
        status: stored_status(&name, checks),
        name,
        member: None,
    }));
    domains.sort_by(|a, b| a.name.cmp(&b.name));
    domains
}

/// Every domain of `roster` and of `summaries`, by name, each with its checks summed up
/// (summaries of checks this build does not know are left out).
pub(crate) fn rows(roster: &Roster, summaries: Vec<CheckSummary>) -> Vec<FleetRow<'_>> {
    let mut by_domain: BTreeMap<String, FleetRow<'_>> = roster
        .0
        .iter()
        .map(|(name, member)| {
            let row = FleetRow {
                name: name.clone(),
                member: Some(member),
                checks: BTreeMap::new(),
                stored_at: None,
            };
            (name.clone(), row)
        })
        .collect();
    for summary in summaries {
        let Ok(check) = summary.check.parse::<CheckKind>() else {
            continue;
        };
        let row = by_domain
            .entry(summary.domain.clone())
            .or_insert_with(|| FleetRow {
                name: summary.domain.clone(),
                member: None,
                checks: BTreeMap::new(),
                stored_at: None,
            });
        row.stored_at = Some(
            row.stored_at
                .map_or(summary.stored_at, |t| t.max(summary.stored_at)),
        );
        row.checks.insert(check, summary);
    }
    by_domain.into_values().collect()
}

/// A domain's stored check states (the monitor's JSON) as its status; an unreadable one is
/// logged and left out. The last check time is the newest state's.
pub(crate) fn stored_status(domain: &str, checks: BTreeMap<CheckKind, String>) -> DomainStatus {
    let mut status = DomainStatus::default();
    for (check, json) in checks {
        match serde_json::from_str::<CheckStatus>(&json) {
            Ok(stored) => {
                status.checks.insert(check, stored);
            }
            Err(error) => {
                tracing::warn!(domain, check = %check, %error, "unreadable stored check state ignored");
            }
        }
    }
    status.last_checked = status.checks.values().filter_map(|c| c.last_checked).max();
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Finding, FindingCode, Severity};

    fn config(name: &str, team: &str) -> DomainConfig {
        let mut config = DomainConfig::new(name);
        config.labels.insert("team".into(), team.into());
        config.skip = vec![CheckKind::Dnssec];
        config
    }

    fn state(drift: bool, at: u64) -> String {
        let status = CheckStatus {
            success: true,
            drift,
            findings: vec![Finding::new(FindingCode::Drift, Severity::Critical, "x")].into(),
            records: Box::default(),
            error: None,
            last_checked: Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(at)),
        };
        serde_json::to_string(&status).unwrap()
    }

    #[test]
    fn the_fleet_is_the_roster_and_the_store() {
        let roster = Roster::new(&[config("a.example", "mail"), config("b.example", "web")]);
        let mut stored = StoredStates::new();
        stored
            .entry("b.example".into())
            .or_default()
            .insert(CheckKind::Mx, state(true, 100));
        stored
            .entry("b.example".into())
            .or_default()
            .insert(CheckKind::Spf, "not json".into());
        stored
            .entry("gone.example".into())
            .or_default()
            .insert(CheckKind::Mx, state(false, 90));
        let fleet = statuses(&roster, stored);
        let names: Vec<&str> = fleet.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a.example", "b.example", "gone.example"]);
        // Configured, nothing stored yet: pending.
        assert!(fleet[0].status.checks.is_empty());
        assert_eq!(fleet[0].member.unwrap().labels["team"], "mail");
        // The unreadable state is left out, the readable one kept with its time.
        let b = &fleet[1].status;
        assert_eq!(
            b.checks.keys().copied().collect::<Vec<_>>(),
            [CheckKind::Mx]
        );
        assert!(b.checks[&CheckKind::Mx].drift);
        assert_eq!(
            b.last_checked,
            Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(100))
        );
        assert_eq!(fleet[1].member.unwrap().skip, [CheckKind::Dnssec]);
        // In the store only: listed, without a member.
        assert!(fleet[2].member.is_none());
        assert!(!fleet[2].status.checks[&CheckKind::Mx].drift);
    }

    /// The store sums up the monitor's own JSON: the field names it reads in SQL are the
    /// ones `CheckStatus` writes.
    #[test]
    fn the_store_sums_up_the_json_the_monitor_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::state::Store::open(dir.path()).unwrap();
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(100);
        let status = |success, drift, findings: Vec<Finding>| CheckStatus {
            success,
            drift,
            findings: findings.into(),
            records: Box::default(),
            error: None,
            last_checked: Some(at),
        };
        let written = [
            (
                CheckKind::Mx,
                status(
                    true,
                    true,
                    vec![Finding::new(FindingCode::Drift, Severity::Critical, "x")],
                ),
            ),
            (
                CheckKind::Spf,
                status(
                    true,
                    false,
                    vec![Finding::new(
                        FindingCode::SpfLookupLimitNear,
                        Severity::Warning,
                        "x",
                    )],
                ),
            ),
            (CheckKind::Dmarc, status(false, false, Vec::new())),
        ];
        let writes: Vec<crate::state::Write> = written
            .iter()
            .map(|(check, status)| crate::state::Write::CheckState {
                domain: "a.example".into(),
                check: *check,
                state_json: serde_json::to_string(status).unwrap(),
                at,
            })
            .collect();
        store.write(&writes).unwrap();
        let mut summaries = store.check_summaries().unwrap();
        summaries.sort_by(|a, b| a.check.cmp(&b.check));
        let summed: Vec<(&str, bool, bool, bool, bool, f64)> = summaries
            .iter()
            .map(|s| {
                (
                    s.check.as_str(),
                    s.success,
                    s.drift,
                    s.critical,
                    s.warning,
                    s.stored_at,
                )
            })
            .collect();
        assert_eq!(
            summed,
            [
                ("dmarc", false, false, false, false, 100.0),
                ("mx", true, true, true, false, 100.0),
                ("spf", true, false, false, true, 100.0),
            ]
        );
    }

    #[test]
    fn rows_sum_up_each_domains_checks() {
        let roster = Roster::new(&[config("a.example", "mail")]);
        let summary = |domain: &str, check: &str, at: f64| CheckSummary {
            domain: domain.into(),
            check: check.into(),
            success: true,
            drift: false,
            critical: false,
            warning: false,
            stored_at: at,
        };
        let rows = rows(
            &roster,
            vec![
                summary("b.example", "mx", 10.0),
                summary("b.example", "spf", 30.0),
                summary("b.example", "no_such_check", 50.0),
            ],
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].name.as_str(), rows[0].stored_at),
            ("a.example", None)
        );
        assert!(rows[0].member.is_some() && rows[0].checks.is_empty());
        assert_eq!(rows[1].name, "b.example");
        assert!(rows[1].member.is_none());
        assert_eq!(
            rows[1].checks.keys().copied().collect::<Vec<_>>(),
            [CheckKind::Mx, CheckKind::Spf]
        );
        assert_eq!(rows[1].stored_at, Some(30.0));
    }
}
