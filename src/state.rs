//! The application state shared by all workers, and the one way handlers reach the database.

use std::sync::Arc;
use std::time::Instant;

use actix_web::web;

use crate::auth::cache::PrincipalCache;
use crate::auth::password::Hasher;
use crate::auth::sessions::SessionCache;
use crate::auth::token::TokenKeys;
use crate::config::Config;
use crate::db::{Backend, DbConn, DbHealth, DbPool};
use crate::error::{AppError, AppResult};
use crate::limits::{InFlight, RateLimiter};
use crate::metrics::Metrics;

/// Shared state: the pool, the signing keys, the password hasher, the API key cache, the
/// overload guards and metrics, the configuration.
pub struct AppState {
    /// The database pool.
    pub pool: DbPool,
    /// Which database.
    pub backend: Backend,
    /// Access-token keys.
    pub tokens: TokenKeys,
    /// Password hasher.
    pub hasher: Hasher,
    /// What this process remembers of session liveness.
    pub sessions: SessionCache,
    /// Recently verified API keys.
    pub api_keys: PrincipalCache,
    /// Per-client rate limit.
    pub limiter: RateLimiter,
    /// Bound on requests in flight.
    pub in_flight: InFlight,
    /// Request and background counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Settings.
    pub config: Arc<Config>,
    /// What this process has lately seen of the database's health.
    pub db_health: Arc<DbHealth>,
    /// On SQLite, the thread that checkpoints the write-ahead log (see `db::checkpoint`); it
    /// stops with the last copy of the state.
    pub checkpointer: Option<Arc<crate::db::checkpoint::Checkpointer>>,
}

/// A readable name for a unit of work: the function that wrote its closure
/// (`minsheng::routes::cases::create`). Never its data.
fn unit_name<F>() -> &'static str {
    let name = std::any::type_name::<F>();
    let mut trimmed = name;
    while let Some(rest) = trimmed.strip_suffix("::{{closure}}") {
        trimmed = rest;
    }
    trimmed
}

impl AppState {
    /// Runs one unit of work (take a connection, do the queries, give it back) on the blocking
    /// thread pool, inside the caller's tracing span so its log lines keep the request id. A unit
    /// slower than `MINSHENG_SLOW_QUERY_MS` (waiting for a connection included) is logged as a
    /// warning naming the code that ran it (never its SQL or data) and counted in `/metrics`.
    pub async fn db<T, F>(&self, work: F) -> AppResult<T>
    where
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        let (backend, health) = (self.backend, self.db_health.clone());
        let slow = self.config.slow_query;
        let metrics = self.metrics.clone();
        web::block(move || {
            let _entered = span.enter();
            let started = Instant::now();
            let mut conn = crate::db::checkout(&pool, backend, &health)?;
            let waited = started.elapsed();
            let result = work(&mut conn);
            let elapsed = started.elapsed();
            // PostgreSQL went away under this connection: drop it rather than hand it out again,
            // and test the others before use for a while.
            if backend == Backend::Postgres && matches!(result, Err(AppError::Unavailable { .. })) {
                crate::db::discard(&mut conn);
                health.failed();
            }
            if !slow.is_zero() && elapsed >= slow {
                metrics.slow_unit();
                let unit = unit_name::<F>();
                let (elapsed_ms, wait_ms) = (elapsed.as_millis(), waited.as_millis());
                tracing::warn!(
                    unit,
                    elapsed_ms,
                    wait_ms,
                    "slow unit of work {unit}: {elapsed_ms} ms, {wait_ms} ms of it waiting for a connection"
                );
            }
            result
        })
        .await
        .map_err(AppError::from)?
    }

    /// Runs CPU-heavy work (password hashing) on the blocking pool.
    pub async fn cpu<T, F>(&self, work: F) -> AppResult<T>
    where
        F: FnOnce() -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let span = tracing::Span::current();
        web::block(move || {
            let _entered = span.enter();
            work()
        })
        .await
        .map_err(AppError::from)?
    }
}
