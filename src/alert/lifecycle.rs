//! The alert state machine: inactive → pending → firing (after `for`) → resolved (when the
//! condition clears, after `keep_firing_for`). Pure: time is passed in, so tests drive it
//! with tokio's paused clock.

use super::AlertKey;
use super::rules::{AlertContent, AlertName, Condition};
use crate::config::AlertingConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// `MailDnsCheckFailing` waits at least this long before it fires: a DNS outage of a few
/// minutes is common and not actionable.
pub const CHECK_FAILING_FOR: Duration = Duration::from_secs(15 * 60);

/// How long each alert waits before firing and keeps firing after clearing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timings {
    per_alert: BTreeMap<AlertName, (Duration, Duration)>,
}

impl Timings {
    /// From the config: the global `for`/`keep_firing_for`, `MailDnsCheckFailing`'s own longer
    /// default, then the per-alert overrides.
    pub fn new(config: &AlertingConfig) -> Timings {
        let per_alert = AlertName::ALL
            .iter()
            .map(|&name| {
                let default_for = if name == AlertName::MailDnsCheckFailing {
                    config.for_duration.max(CHECK_FAILING_FOR)
                } else {
                    config.for_duration
                };
                let set = config.alerts.get(&name).copied().unwrap_or_default();
                let for_duration = set.for_duration.unwrap_or(default_for);
                let keep = set.keep_firing_for.unwrap_or(config.keep_firing_for);
                (name, (for_duration, keep))
            })
            .collect();
        Timings { per_alert }
    }

    /// How long `name`'s condition must hold before it fires.
    pub fn for_duration(&self, name: AlertName) -> Duration {
        self.per_alert.get(&name).map_or(Duration::ZERO, |t| t.0)
    }

    /// How long `name` keeps firing after its condition cleared.
    pub fn keep_firing_for(&self, name: AlertName) -> Duration {
        self.per_alert.get(&name).map_or(Duration::ZERO, |t| t.1)
    }
}

/// Maps the monotonic clock to wall time, so that paused-clock tests get exact timestamps.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    instant: Instant,
    wall: SystemTime,
}

impl Clock {
    /// `wall` is the wall time at `instant`.
    pub fn new(instant: Instant, wall: SystemTime) -> Clock {
        Clock { instant, wall }
    }

    /// The clock of now.
    pub fn now() -> Clock {
        Clock::new(Instant::now(), SystemTime::now())
    }

    /// The wall time at `at`.
    pub fn wall(&self, at: Instant) -> SystemTime {
        self.wall + at.saturating_duration_since(self.instant)
    }
}

/// A firing alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiringAlert {
    /// Its identity.
    pub key: AlertKey,
    /// What it says (updated by every run that confirms it).
    pub content: AlertContent,
    /// When it started firing.
    pub starts_at: SystemTime,
}

/// A change that receivers are told about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The alert started firing.
    Fired(FiringAlert),
    /// The alert stopped firing at the given time.
    Resolved(FiringAlert, SystemTime),
}

#[derive(Clone, Debug)]
enum Phase {
    /// The condition holds since `since`; `confirmed` is false while the latest answer
    /// was inconclusive (then it never fires).
    Pending { since: Instant, confirmed: bool },
    /// Firing since `starts_at`; `cleared` is when its condition was last seen to clear.
    Firing {
        starts_at: SystemTime,
        cleared: Option<Instant>,
    },
}

#[derive(Clone, Debug)]
struct Tracked {
    content: AlertContent,
    phase: Phase,
}

/// Every pending and firing alert.
#[derive(Debug, Default)]
pub struct Lifecycle {
    alerts: BTreeMap<AlertKey, Tracked>,
}

impl Lifecycle {
    /// Applies one condition seen at `now`.
    pub fn observe(
        &mut self,
        key: AlertKey,
        condition: Condition,
        now: Instant,
        clock: &Clock,
        timings: &Timings,
    ) -> Option<Transition> {
        match condition {
            Condition::Active(content) => {
                let tracked = self.alerts.entry(key.clone()).or_insert(Tracked {
                    content: content.clone(),
                    phase: Phase::Pending {
                        since: now,
                        confirmed: true,
                    },
                });
                tracked.content = content;
                match &mut tracked.phase {
                    Phase::Pending { confirmed, .. } => *confirmed = true,
                    Phase::Firing { cleared, .. } => *cleared = None,
                }
                self.advance(&key, now, clock, timings)
            }
            Condition::Inactive => {
                let tracked = self.alerts.get_mut(&key)?;
                match &mut tracked.phase {
                    Phase::Pending { .. } => {
                        self.alerts.remove(&key);
                        None
                    }
                    Phase::Firing { cleared, .. } => {
                        cleared.get_or_insert(now);
                        self.advance(&key, now, clock, timings)
                    }
                }
            }
            Condition::Unknown => {
                if let Some(Tracked {
                    phase: Phase::Pending { confirmed, .. },
                    ..
                }) = self.alerts.get_mut(&key)
                {
                    *confirmed = false;
                }
                None
            }
        }
    }

    /// Fires a pending alert whose `for` elapsed, resolves a cleared one whose
    /// `keep_firing_for` elapsed.
    fn advance(
        &mut self,
        key: &AlertKey,
        now: Instant,
        clock: &Clock,
        timings: &Timings,
    ) -> Option<Transition> {
        let tracked = self.alerts.get_mut(key)?;
        match tracked.phase {
            Phase::Pending { since, confirmed }
                if confirmed && now >= since + timings.for_duration(key.name) =>
            {
                let starts_at = clock.wall(now);
                tracked.phase = Phase::Firing {
                    starts_at,
                    cleared: None,
                };
                Some(Transition::Fired(FiringAlert {
                    key: key.clone(),
                    content: tracked.content.clone(),
                    starts_at,
                }))
            }
            Phase::Firing {
                starts_at,
                cleared: Some(cleared),
            } if now >= cleared + timings.keep_firing_for(key.name) => {
                let tracked = self.alerts.remove(key)?;
                Some(Transition::Resolved(
                    FiringAlert {
                        key: key.clone(),
                        content: tracked.content,
                        starts_at,
                    },
                    clock.wall(now),
                ))
            }
            _ => None,
        }
    }

    /// Every transition due at `now`.
    pub fn tick(&mut self, now: Instant, clock: &Clock, timings: &Timings) -> Vec<Transition> {
        let keys: Vec<AlertKey> = self.alerts.keys().cloned().collect();
        keys.into_iter()
            .filter_map(|key| self.advance(&key, now, clock, timings))
            .collect()
    }

    /// When the next transition may fall due without new input.
    pub fn next_deadline(&self, timings: &Timings) -> Option<Instant> {
        self.alerts
            .iter()
            .filter_map(|(key, tracked)| match tracked.phase {
                Phase::Pending {
                    since,
                    confirmed: true,
                } => Some(since + timings.for_duration(key.name)),
                Phase::Firing {
                    cleared: Some(cleared),
                    ..
                } => Some(cleared + timings.keep_firing_for(key.name)),
                _ => None,
            })
            .min()
    }

    /// Every firing alert, in key order.
    pub fn firing(&self) -> Vec<FiringAlert> {
        self.alerts
            .iter()
            .filter_map(|(key, tracked)| match tracked.phase {
                Phase::Firing { starts_at, .. } => Some(FiringAlert {
                    key: key.clone(),
                    content: tracked.content.clone(),
                    starts_at,
                }),
                Phase::Pending { .. } => None,
            })
            .collect()
    }

    /// Puts back an alert that was firing before a restart.
    pub fn restore(&mut self, alert: FiringAlert) {
        self.alerts.insert(
            alert.key,
            Tracked {
                content: alert.content,
                phase: Phase::Firing {
                    starts_at: alert.starts_at,
                    cleared: None,
                },
            },
        );
    }

    /// Drops the alerts of domains no longer watched: pending ones silently, firing ones
    /// resolved now.
    pub fn retain_domains(
        &mut self,
        domains: &BTreeSet<String>,
        now: Instant,
        clock: &Clock,
    ) -> Vec<Transition> {
        let gone: Vec<AlertKey> = self
            .alerts
            .keys()
            .filter(|k| !domains.contains(&k.domain))
            .cloned()
            .collect();
        gone.into_iter()
            .filter_map(|key| {
                let tracked = self.alerts.remove(&key)?;
                match tracked.phase {
                    Phase::Firing { starts_at, .. } => Some(Transition::Resolved(
                        FiringAlert {
                            key,
                            content: tracked.content,
                            starts_at,
                        },
                        clock.wall(now),
                    )),
                    Phase::Pending { .. } => None,
                }
            })
            .collect()
    }

    /// How many alerts fire, per alert name.
    pub fn firing_counts(&self) -> BTreeMap<AlertName, usize> {
        let mut counts: BTreeMap<AlertName, usize> =
            AlertName::ALL.iter().map(|&n| (n, 0)).collect();
        for (key, tracked) in &self.alerts {
            if matches!(tracked.phase, Phase::Firing { .. }) {
                *counts.entry(key.name).or_default() += 1;
            }
        }
        counts
    }
}
