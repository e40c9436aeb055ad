//! The HTTP surface (SPEC.md "HTTP endpoints"): metrics, health, reload, JSON API, status page.

mod api;
mod export;
pub(crate) mod exposition;
mod guard;
pub(crate) mod incidents;
mod listeners;
mod status_page;
pub(crate) mod times;
pub(crate) mod web_config;

pub(crate) use listeners::Listeners;

use crate::i18n::Language;
use crate::metrics::Metrics;
use crate::monitor::{Monitor, WatchedDomain};
use crate::state::StateService;
use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::future::BoxFuture;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Applies a new configuration (`POST /-/reload`, SIGHUP): the daemon implements it.
pub(crate) trait Reload: Send + Sync {
    /// Re-reads the config; the old one keeps running when the new one is invalid. The
    /// number of domains watched, or every error.
    fn reload(&self) -> BoxFuture<'_, Result<usize, String>>;
}

/// Shared by the HTTP handlers and the daemon's tasks.
pub(crate) struct AppState {
    /// Every metric.
    pub metrics: Arc<Metrics>,
    /// Watched domains and their state.
    pub monitor: Arc<Monitor>,
    /// True once the first pass over all domains finished.
    pub ready: AtomicBool,
    /// The state store (baselines, incidents, timeline).
    pub state: Arc<StateService>,
    /// Applies a new configuration.
    pub reloader: Arc<dyn Reload>,
}

impl AppState {
    /// Re-reads the config file; the old config keeps running when the new one is invalid.
    pub(crate) async fn reload(&self) -> Result<usize, String> {
        self.reloader.reload().await
    }
}

/// The default of `--web.telemetry-path`.
pub(crate) const DEFAULT_TELEMETRY_PATH: &str = "/metrics";

/// Where the metrics are served (`--web.telemetry-path`), for the status page's link.
#[derive(Clone, Debug)]
pub(crate) struct TelemetryPath(pub(crate) String);

/// The status pages' language when `--web.language` sets it (`None`: the browser's
/// `Accept-Language` decides).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageLanguage(pub(crate) Option<Language>);

/// Every route of the daemon, the metrics at `telemetry_path` (`/metrics` by default), the
/// status pages in `language` (`None`: as each browser prefers).
pub(crate) fn router(
    state: Arc<AppState>,
    telemetry_path: &str,
    language: Option<Language>,
) -> Router {
    let notes = Router::new()
        .route("/api/v1/incidents/{id}/notes", post(incidents::post_note))
        .route("/domains/{domain}/notes", post(status_page::add_note_form))
        .layer(DefaultBodyLimit::max(incidents::MAX_NOTE_BODY));
    Router::new()
        .route("/", get(status_page::index))
        .route(telemetry_path, get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/healthz", get(healthy))
        .route("/-/ready", get(ready))
        .route("/readyz", get(ready))
        .route("/-/reload", post(reload))
        .route("/api/v1/domains", get(domains))
        .route("/api/v1/domains/{domain}", get(domain))
        .route("/api/v1/domains/{domain}/accept", post(api::accept))
        .route("/api/v1/events", get(api::events))
        .route("/domains/{domain}", get(status_page::domain_page))
        .route("/api/v1/incidents/{id}", get(incidents::get_incident))
        .route(
            "/api/v1/domains/{domain}/timeline.md",
            get(incidents::timeline_markdown),
        )
        .route(
            "/api/v1/domains/{domain}/timeline.csv",
            get(incidents::timeline_csv),
        )
        .merge(notes)
        .layer(axum::middleware::from_fn(guard::guard))
        .layer(axum::Extension(TelemetryPath(telemetry_path.to_owned())))
        .layer(axum::Extension(PageLanguage(language)))
        .with_state(state)
}

/// The exposition, in the format the scraper prefers (text 0.0.4 unless it asks for
/// OpenMetrics).
/// Streamed a chunk at a time (each rendered when the connection takes it), so a scrape of
/// 100,000 domains never holds the whole text, and OpenMetrics is rewritten per chunk.
async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let format = exposition::negotiate(&headers);
    let chunks = state.metrics.exposition();
    let chunks: Box<dyn Iterator<Item = String> + Send> = match format {
        exposition::Format::Text => Box::new(chunks),
        exposition::Format::OpenMetrics => Box::new(
            chunks
                .map(|chunk| exposition::to_openmetrics_lines(&chunk))
                .chain(std::iter::once(exposition::OPENMETRICS_EOF.to_owned())),
        ),
    };
    let body = axum::body::Body::from_stream(futures::stream::iter(
        chunks.map(|chunk| Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(chunk))),
    ));
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

/// Liveness: the process serves HTTP. Never depends on DNS or receivers.
async fn healthy() -> &'static str {
    "OK\n"
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "Ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: the first check round has not finished\n",
        )
            .into_response()
    }
}

async fn reload(State(state): State<Arc<AppState>>) -> Response {
    match state.reload().await {
        Ok(domains) => (
            StatusCode::OK,
            format!("configuration reloaded: {domains} domains\n"),
        )
            .into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reload failed, previous configuration kept:\n{error}\n"),
        )
            .into_response(),
    }
}

fn domain_json(domain: &WatchedDomain, detail: bool) -> serde_json::Value {
    let status = domain.status();
    let checks: serde_json::Map<String, serde_json::Value> = status
        .checks
        .iter()
        .map(|(check, s)| {
            let mut entry = json!({
                "success": s.success,
                "drift": s.drift,
                "findings": s.findings,
                "last_checked": s.last_checked.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs_f64()),
            });
            if let Some(error) = &s.error {
                entry["error"] = json!(error);
            }
            if detail {
                entry["records"] = json!(s.records);
                if let Some(baseline) = status.baseline.get(check) {
                    entry["baseline"] = json!(baseline);
                }
            }
            (check.as_str().to_owned(), entry)
        })
        .collect();
    let mut value = json!({
        "domain": domain.config.name,
        "checks": checks,
        "last_checked": status.last_checked.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs_f64()),
        "labels": domain.config.labels,
    });
    let unicode = crate::dns::names::to_unicode(&domain.config.name);
    if unicode != domain.config.name {
        value["unicode"] = json!(unicode);
    }
    if !domain.config.skip.is_empty() {
        value["skipped"] = json!(domain.config.skip);
    }
    if detail {
        let expect = &domain.config.expect;
        value["expect"] = json!({
            "mx": expect.mx.as_ref().map(|m| &m.hosts),
            "spf": expect.spf.as_ref().map(|s| json!({"includes": s.includes, "all": s.all})),
        });
        value["interval_seconds"] = json!(domain.config.interval.as_secs_f64());
        value["authoritative"] = json!(domain.config.authoritative);
    }
    value
}

async fn domains(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let domains: Vec<serde_json::Value> = state
        .monitor
        .domains()
        .iter()
        .map(|d| domain_json(d, false))
        .collect();
    Json(json!({ "domains": domains }))
}

async fn domain(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    let name = crate::dns::names::lookup_name(&name);
    match state.monitor.domain(&name) {
        Some(domain) => {
            let mut value = domain_json(&domain, true);
            let (events, incidents) = api::domain_history(&state, &name, 50).await;
            value["events"] = json!(events);
            value["incidents"] = json!(incidents);
            Json(value).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("domain {name:?} is not watched by this instance") })),
        )
            .into_response(),
    }
}
