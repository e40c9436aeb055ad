//! The HTTP surface (SPEC.md "HTTP endpoints"): metrics, health, reload, JSON API, status page.

mod api;
mod domains;
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
use crate::monitor::Monitor;
use crate::state::StateService;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::future::BoxFuture;
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

    /// The domains a read of the store in `scope` is limited to: this instance's when the
    /// scope is the shard and the store is shared by a fleet; `None` (every domain in the
    /// store) for the fleet, and with SQLite, which holds only this instance's domains.
    pub(crate) fn store_domains(&self, scope: api::Scope) -> Option<Vec<String>> {
        let shared = self.state.store.as_ref().is_some_and(|s| s.is_shared());
        (scope == api::Scope::Shard && shared).then(|| {
            self.monitor
                .domains()
                .iter()
                .map(|d| d.config.name.clone())
                .collect()
        })
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
        .route("/api/v1/domains", get(domains::list))
        .route("/api/v1/domains/{domain}", get(domains::one))
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
