//! The alerting task: applies conditions to the [`Lifecycle`], fires and resolves on time,
//! re-sends firing alerts to Alertmanager, hands notices to the receivers' queues, and keeps
//! the [`AlertStore`] and `maildrift_alerts_firing` up to date. It never waits on a receiver.

use super::AlertKey;
use super::alertmanager::PostableAlert;
use super::delivery::{self, Deliver, Notice, NoticeStatus, Payload, ReceiverHandle, RetryPolicy};
use super::inbox::{Inbox, Taken};
use super::ledger::{AlertRecord, AlertStore};
use super::lifecycle::{Clock, FiringAlert, Lifecycle, Timings, Transition};
use crate::metrics::Metrics;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A named receiver target.
#[derive(Clone)]
pub struct Receiver {
    /// The `receiver` label.
    pub name: String,
    /// How to reach it.
    pub target: Arc<dyn Deliver>,
}

/// Everything the config decides: timings and receivers (secrets already read).
#[derive(Clone)]
pub struct Runtime {
    /// `for` and `keep_firing_for` per alert.
    pub timings: Timings,
    /// Firing alerts are re-sent to Alertmanager this often.
    pub resend_interval: Duration,
    /// The daemon's URL, for links.
    pub external_url: String,
    /// Every Alertmanager.
    pub alertmanagers: Vec<Receiver>,
    /// Every webhook.
    pub webhooks: Vec<Receiver>,
    /// Backoff of failed deliveries.
    pub retry: RetryPolicy,
    /// Queue length per receiver.
    pub queue_capacity: usize,
}

pub(crate) struct Engine {
    lifecycle: Lifecycle,
    runtime: Runtime,
    clock: Clock,
    alertmanagers: Vec<ReceiverHandle>,
    webhooks: Vec<ReceiverHandle>,
    /// Per firing alert: its incident id and the webhooks told it fires.
    incidents: BTreeMap<AlertKey, (String, BTreeSet<String>)>,
    store: Arc<dyn AlertStore>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    next_resend: Instant,
}

impl Engine {
    pub(crate) fn new(
        runtime: Runtime,
        clock: Clock,
        store: Arc<dyn AlertStore>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Engine {
        let mut engine = Engine {
            lifecycle: Lifecycle::default(),
            runtime: runtime.clone(),
            clock,
            alertmanagers: Vec::new(),
            webhooks: Vec::new(),
            incidents: BTreeMap::new(),
            store,
            metrics,
            shutdown,
            next_resend: Instant::now(),
        };
        engine.reconfigure(runtime);
        engine
    }

    fn reconfigure(&mut self, runtime: Runtime) {
        let spawn = |receiver: &Receiver| {
            delivery::spawn(
                receiver.name.clone(),
                receiver.target.clone(),
                runtime.retry,
                runtime.queue_capacity,
                self.metrics.notifications.clone(),
                self.store.clone(),
                self.shutdown.child_token(),
            )
        };
        // Dropping the old handles lets their workers drain and stop.
        self.alertmanagers = runtime.alertmanagers.iter().map(spawn).collect();
        self.webhooks = runtime.webhooks.iter().map(spawn).collect();
        self.runtime = runtime;
        // New Alertmanagers learn about firing alerts at once.
        self.next_resend = Instant::now();
    }

    /// Re-opens the incidents open at the last stop: Alertmanager gets them again (it
    /// deduplicates); webhooks only get those they never announced.
    pub(crate) async fn restore(&mut self, domains: &BTreeSet<String>) {
        let incidents = match self.store.open_incidents().await {
            Ok(incidents) => incidents,
            Err(error) => {
                tracing::warn!(%error, "cannot read open incidents; starting without them");
                return;
            }
        };
        for incident in incidents {
            let Some(alert) = incident.to_alert() else {
                tracing::warn!(incident = %incident.id, "stored incident names no known alert; closing it");
                self.close(&incident.id, self.clock.wall(Instant::now()))
                    .await;
                continue;
            };
            let mut told = BTreeSet::new();
            for hook in &self.webhooks {
                match self.store.announced(hook.name(), &incident.id).await {
                    Ok(true) => {
                        told.insert(hook.name().to_string());
                    }
                    Ok(false) => {
                        hook.enqueue(notice(NoticeStatus::Firing, &alert, None, &incident.id));
                        told.insert(hook.name().to_string());
                    }
                    Err(error) => tracing::warn!(%error, "cannot read announcements"),
                }
            }
            tracing::info!(alert = %alert.key.name, domain = %alert.key.domain, "open incident restored");
            self.incidents
                .insert(alert.key.clone(), (incident.id.clone(), told));
            self.lifecycle.restore(alert);
        }
        let now = Instant::now();
        let gone = self.lifecycle.retain_domains(domains, now, &self.clock);
        self.dispatch(gone).await;
        self.publish_counts();
    }

    /// Applies what the inbox held: new settings, the watched domains (alerts of others
    /// resolve), then each key's conditions at the instants they were seen.
    pub(crate) async fn handle(&mut self, taken: Taken) {
        let now = Instant::now();
        let mut transitions = Vec::new();
        if let Some(runtime) = taken.runtime {
            self.reconfigure(*runtime);
            transitions.extend(self.lifecycle.tick(now, &self.clock, &self.runtime.timings));
        }
        if let Some(domains) = taken.domains {
            transitions.extend(self.lifecycle.retain_domains(&domains, now, &self.clock));
        }
        let timings = &self.runtime.timings;
        for (key, coalesced) in taken.updates {
            for (seen, condition) in coalesced.replay() {
                transitions.extend(self.lifecycle.observe(
                    key.clone(),
                    condition,
                    seen,
                    &self.clock,
                    timings,
                ));
            }
        }
        self.dispatch(transitions).await;
    }

    /// When [`Engine::tick`] should run next.
    pub(crate) fn deadline(&self) -> Instant {
        let due = self.lifecycle.next_deadline(&self.runtime.timings);
        due.map_or(self.next_resend, |due| due.min(self.next_resend))
    }

    /// Fires and resolves what is due; re-sends firing alerts when the interval is up.
    pub(crate) async fn tick(&mut self) {
        let now = Instant::now();
        let transitions = self.lifecycle.tick(now, &self.clock, &self.runtime.timings);
        self.dispatch(transitions).await;
        if now >= self.next_resend {
            self.next_resend = now + self.runtime.resend_interval;
            let firing = self.lifecycle.firing();
            if !firing.is_empty() {
                let ends_at = self.firing_ends_at(now);
                let batch: Vec<PostableAlert> = firing
                    .iter()
                    .map(|a| PostableAlert::new(a, ends_at))
                    .collect();
                for am in &self.alertmanagers {
                    am.enqueue(Payload::Alerts(batch.clone()));
                }
            }
        }
    }

    /// `endsAt` of a firing alert sent now: 4 × the resend interval ahead, as Prometheus.
    fn firing_ends_at(&self, now: Instant) -> std::time::SystemTime {
        self.clock.wall(now) + self.runtime.resend_interval * 4
    }

    async fn dispatch(&mut self, transitions: Vec<Transition>) {
        if transitions.is_empty() {
            return;
        }
        for transition in transitions {
            match transition {
                Transition::Fired(alert) => self.fired(alert).await,
                Transition::Resolved(alert, ends_at) => self.resolved(alert, ends_at).await,
            }
        }
        self.publish_counts();
    }

    async fn fired(&mut self, alert: FiringAlert) {
        let incident = AlertRecord::of(&alert);
        tracing::warn!(alert = %alert.key.name, domain = %alert.key.domain, check = %alert.key.check, severity = %alert.key.severity, "alert firing");
        if let Err(error) = self.store.incident_opened(&incident).await {
            tracing::warn!(%error, "cannot record the incident");
        }
        let ends_at = self.firing_ends_at(Instant::now());
        for am in &self.alertmanagers {
            am.enqueue(Payload::Alerts(vec![PostableAlert::new(&alert, ends_at)]));
        }
        let mut told = BTreeSet::new();
        for hook in &self.webhooks {
            hook.enqueue(notice(NoticeStatus::Firing, &alert, None, &incident.id));
            told.insert(hook.name().to_string());
        }
        self.incidents
            .insert(alert.key.clone(), (incident.id, told));
    }

    async fn resolved(&mut self, alert: FiringAlert, ends_at: std::time::SystemTime) {
        tracing::info!(alert = %alert.key.name, domain = %alert.key.domain, check = %alert.key.check, "alert resolved");
        for am in &self.alertmanagers {
            am.enqueue(Payload::Alerts(vec![PostableAlert::new(&alert, ends_at)]));
        }
        let (id, told) = self
            .incidents
            .remove(&alert.key)
            .unwrap_or_else(|| (AlertRecord::of(&alert).id, BTreeSet::new()));
        for hook in self.webhooks.iter().filter(|h| told.contains(h.name())) {
            hook.enqueue(notice(NoticeStatus::Resolved, &alert, Some(ends_at), &id));
        }
        self.close(&id, ends_at).await;
    }

    async fn close(&self, id: &str, ends_at: std::time::SystemTime) {
        if let Err(error) = self.store.incident_resolved(id, ends_at).await {
            tracing::warn!(%error, "cannot record the resolution");
        }
    }

    fn publish_counts(&self) {
        for (name, count) in self.lifecycle.firing_counts() {
            self.metrics
                .alerts_firing
                .with_label_values(&[name.as_str()])
                .set(count as i64);
        }
    }
}

fn notice(
    status: NoticeStatus,
    alert: &FiringAlert,
    ends_at: Option<std::time::SystemTime>,
    incident: &str,
) -> Payload {
    Payload::Notice(Notice {
        status,
        alert: alert.clone(),
        ends_at,
        incident: incident.to_string(),
    })
}

/// Runs the task until `shutdown` fires or the [`Alerting`](super::Alerting) handle is
/// dropped. What the inbox holds is applied before anything falls due, so an alert never
/// fires on time while the answer that clears it waits in the inbox.
pub(crate) async fn run(mut engine: Engine, inbox: Arc<Inbox>, domains: BTreeSet<String>) {
    engine.restore(&domains).await;
    let shutdown = engine.shutdown.clone();
    while !shutdown.is_cancelled() {
        let Some(taken) = inbox.take() else { return };
        if !taken.is_empty() {
            engine.handle(taken).await;
            continue;
        }
        let deadline = engine.deadline();
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = inbox.changed() => {}
            _ = tokio::time::sleep_until(deadline) => engine.tick().await,
        }
    }
}
