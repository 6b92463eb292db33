//! The application state shared by all workers, and the one way handlers reach the database.

use std::sync::Arc;

use actix_web::web;

use crate::auth::api_key::ApiKeyCache;
use crate::auth::password::Hasher;
use crate::auth::sessions::SessionCache;
use crate::auth::token::TokenKeys;
use crate::config::Config;
use crate::db::{Backend, DbConn, DbHealth, DbPool};
use crate::error::{AppError, AppResult};

/// Shared state: the pool, the signing keys, the password hasher, the API key cache, the
/// configuration.
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
    pub api_keys: ApiKeyCache,
    /// Settings.
    pub config: Arc<Config>,
    /// What this process has lately seen of the database's health.
    pub db_health: Arc<DbHealth>,
}

impl AppState {
    /// Runs one unit of work (take a connection, do the queries, give it back) on the blocking
    /// thread pool, inside the caller's tracing span so its log lines keep the request id.
    pub async fn db<T, F>(&self, work: F) -> AppResult<T>
    where
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        let (backend, health) = (self.backend, self.db_health.clone());
        web::block(move || {
            let _entered = span.enter();
            let mut conn = crate::db::checkout(&pool, backend, &health)?;
            let result = work(&mut conn);
            // PostgreSQL went away under this connection: drop it rather than hand it out again,
            // and test the others before use for a while.
            if backend == Backend::Postgres && matches!(result, Err(AppError::Unavailable { .. })) {
                crate::db::discard(&mut conn);
                health.failed();
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
