//! Basic authentication against `basic_auth_users`: bcrypt runs on the blocking pool, a few at
//! a time, and successful verifications are remembered for [`CACHE_TTL`] so a scraper does not
//! pay for a bcrypt on every scrape.

use super::{WebConfig, WebSettings};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Paths served without authentication: liveness and readiness, so that Kubernetes probes
/// and load balancers (which cannot send credentials) keep working.
pub(crate) const OPEN_PATHS: &[&str] = &["/-/healthy", "/healthz", "/-/ready", "/readyz"];

/// How long a successful verification of (user, stored hash, password) is remembered.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(300);

/// At most this many remembered verifications.
const CACHE_ENTRIES: usize = 1024;

/// At most this many bcrypt verifications run at once.
const CONCURRENT_BCRYPT: usize = 2;

/// Verifies passwords and remembers the good ones.
pub(super) struct Verifier {
    cache: Mutex<HashMap<[u8; 32], Instant>>,
    permits: Arc<Semaphore>,
    runs: AtomicU64,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            cache: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(CONCURRENT_BCRYPT)),
            runs: AtomicU64::new(0),
        }
    }
}

/// Compared against when the user is unknown, so unknown users cost the same as bad passwords.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| bcrypt::hash("maildrift-decoy", bcrypt::DEFAULT_COST).unwrap_or_default())
}

fn cache_key(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash, password] {
        digest.update(&(part.len() as u64).to_le_bytes());
        digest.update(part.as_bytes());
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.finish().as_ref());
    key
}

impl Verifier {
    pub(super) fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Whether `user`/`password` match `settings.users`.
    pub(super) async fn verify(&self, settings: &WebSettings, user: &str, password: &str) -> bool {
        let (hash, known) = match settings.users.get(user) {
            Some(hash) => (hash.clone(), true),
            None => (decoy_hash().to_owned(), false),
        };
        let key = cache_key(user, &hash, password);
        let now = Instant::now();
        if known {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.get(&key).is_some_and(|until| *until > now) {
                return true;
            }
        }
        let Ok(_permit) = self.permits.clone().acquire_owned().await else {
            return false;
        };
        self.runs.fetch_add(1, Ordering::Relaxed);
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        if !(matched && known) {
            return false;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_ENTRIES {
            cache.retain(|_, until| *until > now);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(key, now + CACHE_TTL);
        true
    }
}

/// `user:password` from an `Authorization: Basic ...` header.
fn credentials(request: &Request) -> Option<(String, String)> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            r#"Basic realm="maildrift", charset="UTF-8""#,
        )],
        "Unauthorized\n",
    )
        .into_response()
}

/// Axum middleware: requires basic auth on every path but [`OPEN_PATHS`] when users are
/// configured.
pub(crate) async fn require_auth(
    State(web): State<Arc<WebConfig>>,
    request: Request,
    next: Next,
) -> Response {
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let settings = web.current();
    if settings.users.is_empty() {
        return next.run(request).await;
    }
    let Some((user, password)) = credentials(&request) else {
        return unauthorized();
    };
    if web.auth.verify(&settings, &user, &password).await {
        next.run(request).await
    } else {
        tracing::debug!(%user, path = %request.uri().path(), "basic auth failed");
        unauthorized()
    }
}
