//! The state-backed API: `GET /api/v1/events` (the timeline, paginated), the recent events
//! and open incidents of `GET /api/v1/domains/{domain}`, and
//! `POST /api/v1/domains/{domain}/accept`.

use super::AppState;
use crate::finding::CheckKind;
use crate::monitor::AcceptError;
use crate::state::{EventQuery, Incident, StoredEvent};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Events per page unless `limit` says otherwise, and the most one page may hold.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Query parameters of `GET /api/v1/events`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventParams {
    domain: Option<String>,
    check: Option<String>,
    since: Option<String>,
    before: Option<i64>,
    limit: Option<usize>,
    /// `shard` (default): this instance's domains; `fleet`: every domain in the store
    /// shared by the fleet (the same with SQLite, which holds only this instance's).
    scope: Option<String>,
}

/// What a read covers (`?scope=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Scope {
    /// This instance's domains (the default).
    #[default]
    Shard,
    /// Every domain of the fleet, read from the store the fleet shares (with SQLite, which
    /// holds only this instance's domains, the same domains read from the store).
    Fleet,
}

impl Scope {
    /// Parses `scope` (absent or empty: `shard`); the error names the allowed values.
    pub(crate) fn parse(scope: Option<&str>) -> Result<Scope, String> {
        match scope {
            None | Some("" | "shard") => Ok(Scope::Shard),
            Some("fleet") => Ok(Scope::Fleet),
            Some(other) => Err(format!("scope {other:?} is neither shard nor fleet")),
        }
    }

    /// `?scope=fleet` for links that keep the fleet scope, nothing for the default.
    pub(crate) fn query(self) -> &'static str {
        match self {
            Scope::Shard => "",
            Scope::Fleet => "?scope=fleet",
        }
    }
}

pub(crate) fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

pub(crate) fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "error": "the state store is not available (see the daemon's log and maildrift_state_write_failures_total)" })),
    )
        .into_response()
}

/// `since`: unix seconds, or a duration back from now (`24h`, `7d`).
pub(crate) fn parse_since(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Ok(UNIX_EPOCH + Duration::from_secs_f64(seconds));
    }
    let ago = crate::config::parse_duration(text).map_err(|_| {
        format!("since {text:?} is neither unix seconds nor a duration such as 24h")
    })?;
    Ok(now.checked_sub(ago).unwrap_or(UNIX_EPOCH))
}

/// Builds the store query from the URL parameters.
fn query(params: &EventParams) -> Result<EventQuery, String> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(format!("limit {limit} must be between 1 and {MAX_LIMIT}"));
    }
    Scope::parse(params.scope.as_deref())?;
    Ok(EventQuery {
        domain: params.domain.as_deref().map(crate::dns::names::lookup_name),
        check: params
            .check
            .as_deref()
            .map(str::parse::<CheckKind>)
            .transpose()?,
        since: params
            .since
            .as_deref()
            .map(|s| parse_since(s, SystemTime::now()))
            .transpose()?,
        before: params.before,
        limit,
        domains: None,
    })
}

/// The link to the page after `events` (`None` on the last page).
fn next_link(params: &EventParams, query: &EventQuery, events: &[StoredEvent]) -> Option<String> {
    let last = events.last().filter(|_| events.len() == query.limit)?;
    let mut link = format!("/api/v1/events?limit={}&before={}", query.limit, last.id);
    if let Some(domain) = &query.domain {
        link.push_str(&format!("&domain={domain}"));
    }
    if let Some(check) = query.check {
        link.push_str(&format!("&check={check}"));
    }
    if let Some(since) = &params.since {
        link.push_str(&format!("&since={since}"));
    }
    if let Some(scope) = &params.scope {
        link.push_str(&format!("&scope={scope}"));
    }
    Some(link)
}

pub(crate) async fn events(
    State(state): State<Arc<AppState>>,
    params: Result<Query<EventParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(e) => return bad_request(e.body_text()),
    };
    let query = match query(&params) {
        Ok(query) => query,
        Err(message) => return bad_request(message),
    };
    let mut read = query.clone();
    read.domains = state.store_domains(Scope::parse(params.scope.as_deref()).unwrap_or_default());
    match state.state.read(move |store| store.events(&read)).await {
        None => unavailable(),
        Some(Err(error)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": error.to_string() })),
        )
            .into_response(),
        Some(Ok(events)) => {
            let next = next_link(&params, &query, &events);
            Json(json!({ "events": events, "next": next })).into_response()
        }
    }
}

/// Recent events and open incidents of one domain (empty without a store).
pub(crate) async fn domain_history(
    state: &AppState,
    domain: &str,
    limit: usize,
) -> (Vec<StoredEvent>, Vec<Incident>) {
    let query = EventQuery {
        domain: Some(domain.to_owned()),
        limit,
        ..EventQuery::default()
    };
    let name = domain.to_owned();
    let read = state
        .state
        .read(move |store| Ok((store.events(&query)?, store.incidents(Some(&name))?)))
        .await;
    match read {
        Some(Ok(found)) => found,
        Some(Err(error)) => {
            tracing::warn!(domain, %error, "cannot read the domain's history");
            Default::default()
        }
        None => Default::default(),
    }
}

/// Query parameters of the accept endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptParams {
    check: Option<String>,
}

pub(crate) async fn accept(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    params: Result<Query<AcceptParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(e) => return bad_request(e.body_text()),
    };
    let check = match params
        .check
        .as_deref()
        .map(str::parse::<CheckKind>)
        .transpose()
    {
        Ok(check) => check,
        Err(message) => return bad_request(message),
    };
    let name = crate::dns::names::lookup_name(&name);
    match state.monitor.accept(&name, check, SystemTime::now()) {
        Ok(accepted) => {
            let persisted = state.state.flush().await;
            Json(json!({ "domain": name, "accepted": accepted, "persisted": persisted }))
                .into_response()
        }
        Err(error) => {
            let status = match error {
                AcceptError::UnknownDomain(_) => StatusCode::NOT_FOUND,
                AcceptError::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::CONFLICT,
            };
            (status, Json(json!({ "error": error.to_string() }))).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_and_limits() {
        let now = UNIX_EPOCH + Duration::from_secs(100_000);
        assert_eq!(
            parse_since("1700", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1700)
        );
        assert_eq!(
            parse_since("1h", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(96_400)
        );
        assert!(
            parse_since("yesterday", now)
                .unwrap_err()
                .contains("\"yesterday\"")
        );
        let params = EventParams {
            limit: Some(0),
            ..EventParams::default()
        };
        assert!(query(&params).unwrap_err().contains("limit 0"));
        let params = EventParams {
            check: Some("mxx".into()),
            ..EventParams::default()
        };
        assert!(query(&params).unwrap_err().contains("\"mxx\""));
        assert_eq!(Scope::parse(None), Ok(Scope::Shard));
        assert_eq!(Scope::parse(Some("shard")), Ok(Scope::Shard));
        assert_eq!(Scope::parse(Some("fleet")), Ok(Scope::Fleet));
        let error = Scope::parse(Some("<world>")).unwrap_err();
        assert!(
            error.contains("\"<world>\"") && error.contains("shard nor fleet"),
            "{error}"
        );
    }
}
