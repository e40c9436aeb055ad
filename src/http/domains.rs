//! `GET /api/v1/domains` and `GET /api/v1/domains/{domain}`: this instance's domains from
//! its monitor (`scope=shard`, the default), or with `scope=fleet` every domain of the
//! fleet with the state its shard stored in the shared store ([`fleet`]).

use super::AppState;
use super::api::{Scope, bad_request, domain_history, unavailable};
use crate::config::DomainConfig;
use crate::finding::CheckKind;
use crate::monitor::{DomainStatus, fleet};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Query parameters of both endpoints (others are ignored, as before `scope` existed).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DomainParams {
    /// `shard` (default) or `fleet`.
    scope: Option<String>,
}

/// What one entry of the API shows of a domain.
struct Shown<'a> {
    name: &'a str,
    status: &'a DomainStatus,
    labels: Option<&'a BTreeMap<String, String>>,
    skip: &'a [CheckKind],
    /// The domain's config, when this instance watches it (expectations, interval).
    config: Option<&'a DomainConfig>,
}

fn unix(time: Option<std::time::SystemTime>) -> Option<f64> {
    time.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

fn domain_json(shown: &Shown<'_>, detail: bool) -> serde_json::Value {
    let status = shown.status;
    let checks: serde_json::Map<String, serde_json::Value> = status
        .checks
        .iter()
        .map(|(check, s)| {
            let mut entry = json!({
                "success": s.success,
                "drift": s.drift,
                "findings": s.findings,
                "last_checked": unix(s.last_checked),
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
        "domain": shown.name,
        "checks": checks,
        "last_checked": unix(status.last_checked),
        "labels": shown.labels.cloned().unwrap_or_default(),
    });
    if shown.labels.is_none() {
        value["configured"] = json!(false);
    }
    let unicode = crate::dns::names::to_unicode(shown.name);
    if unicode != shown.name {
        value["unicode"] = json!(unicode);
    }
    if !shown.skip.is_empty() {
        value["skipped"] = json!(shown.skip);
    }
    if let (true, Some(config)) = (detail, shown.config) {
        let expect = &config.expect;
        value["expect"] = json!({
            "mx": expect.mx.as_ref().map(|m| &m.hosts),
            "spf": expect.spf.as_ref().map(|s| json!({"includes": s.includes, "all": s.all})),
        });
        value["interval_seconds"] = json!(config.interval.as_secs_f64());
        value["authoritative"] = json!(config.authoritative);
    }
    value
}

fn failed(error: impl std::fmt::Display) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": error.to_string() })),
    )
        .into_response()
}

/// The `scope` of a request's query, or what is wrong with the query (for a 400).
fn scope_of(
    params: Result<Query<DomainParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Scope, String> {
    params
        .map_err(|e| e.body_text())
        .and_then(|Query(p)| Scope::parse(p.scope.as_deref()))
}

/// `GET /api/v1/domains[?scope=fleet]`.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    params: Result<Query<DomainParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let scope = match scope_of(params) {
        Ok(scope) => scope,
        Err(message) => return bad_request(message),
    };
    if scope == Scope::Shard {
        let domains: Vec<serde_json::Value> = state
            .monitor
            .domains()
            .iter()
            .map(|d| {
                let status = d.status();
                let shown = Shown {
                    name: &d.config.name,
                    status: &status,
                    labels: Some(&d.config.labels),
                    skip: &d.config.skip,
                    config: Some(&d.config),
                };
                domain_json(&shown, false)
            })
            .collect();
        return Json(json!({ "domains": domains })).into_response();
    }
    let roster = state.monitor.roster();
    match state.state.read(|store| store.all_check_states()).await {
        None => unavailable(),
        Some(Err(error)) => failed(error),
        Some(Ok(stored)) => {
            let domains: Vec<serde_json::Value> = fleet::statuses(&roster, stored)
                .iter()
                .map(|d| {
                    let shown = Shown {
                        name: &d.name,
                        status: &d.status,
                        labels: d.member.map(|m| &m.labels),
                        skip: d.member.map_or(&[], |m| &m.skip),
                        config: None,
                    };
                    domain_json(&shown, false)
                })
                .collect();
            Json(json!({ "domains": domains })).into_response()
        }
    }
}

/// `GET /api/v1/domains/{domain}[?scope=fleet]`: with the fleet scope, any domain of the
/// fleet (its expectations and interval only when this instance watches it).
pub(crate) async fn one(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    params: Result<Query<DomainParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let scope = match scope_of(params) {
        Ok(scope) => scope,
        Err(message) => return bad_request(message),
    };
    let name = crate::dns::names::lookup_name(&name);
    let local = state.monitor.domain(&name);
    let mut value = match (scope, &local) {
        (Scope::Shard, None) => {
            return (
                StatusCode::NOT_FOUND,
                Json(
                    json!({ "error": format!("domain {name:?} is not watched by this instance") }),
                ),
            )
                .into_response();
        }
        (Scope::Shard, Some(domain)) => {
            let status = domain.status();
            let shown = Shown {
                name: &name,
                status: &status,
                labels: Some(&domain.config.labels),
                skip: &domain.config.skip,
                config: Some(&domain.config),
            };
            domain_json(&shown, true)
        }
        (Scope::Fleet, _) => {
            let roster = state.monitor.roster();
            let member = roster.get(&name);
            let key = name.clone();
            let stored = match state.state.read(move |store| store.load_domain(&key)).await {
                None => return unavailable(),
                Some(Err(error)) => return failed(error),
                Some(Ok(stored)) => stored,
            };
            if member.is_none() && stored.checks.is_empty() && stored.baselines.is_empty() {
                return (
                    StatusCode::NOT_FOUND,
                    Json(json!({ "error": format!("domain {name:?} is neither in the configuration nor in the shared store") })),
                )
                    .into_response();
            }
            let mut status = fleet::stored_status(&name, stored.checks);
            status.baseline = stored
                .baselines
                .into_iter()
                .map(|(check, values)| (check, values.into()))
                .collect();
            let shown = Shown {
                name: &name,
                status: &status,
                labels: member.map(|m| &m.labels),
                skip: member.map_or(&[], |m| &m.skip),
                config: local.as_ref().map(|d| &d.config),
            };
            domain_json(&shown, true)
        }
    };
    let (events, incidents) = domain_history(&state, &name, 50).await;
    value["events"] = json!(events);
    value["incidents"] = json!(incidents);
    Json(value).into_response()
}
