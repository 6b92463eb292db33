//! Minsheng: county case tracking for citizen complaints and practical livelihood projects.
//!
//! Layout: `routes` (thin HTTP handlers and the route table) → `service` (units of work, one
//! transaction each) → `domain` (the lifecycle, access rules, validation; no HTTP, no SQL) and
//! `db` (the two-backend connection, schema, queries). `error` is the only place that knows HTTP
//! status codes. `main.rs` is the CLI.

pub mod auth;
pub mod background;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod routes;
pub mod seed;
pub mod service;
pub mod state;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use base64::Engine;
use rand::RngCore;

use auth::cache::PrincipalCache;
use auth::password::Hasher;
use auth::sessions::SessionCache;
use auth::token::TokenKeys;
use config::Config;
use state::AppState;

/// How many verified API keys a process remembers at most.
const API_KEY_CACHE_CAPACITY: usize = 4096;

/// Opens the pool, applies migrations and loads the signing key: everything `serve` needs.
pub fn init_state(config: Config) -> Result<AppState, String> {
    let backend = db::Backend::from_url(&config.database_url);
    let busy_ms = u32::try_from(config.db_timeout.as_millis()).unwrap_or(u32::MAX);
    let background_checkpoints = backend == db::Backend::Sqlite && !config.sqlite_checkpoint.is_zero();
    let factory = db::ConnectionFactory::new(&config.database_url, busy_ms)
        .with_sqlite_max_pages(config.sqlite_max_pages)
        .with_background_checkpoints(background_checkpoints);
    let pool = db::build_pool_with(factory.clone(), config.pool_size, config.pool_min_idle, config.db_timeout)?;
    let mut conn = pool.get().map_err(|e| format!("cannot connect to the database: {e}"))?;
    let applied = db::run_migrations(&mut conn)?;
    if applied > 0 {
        tracing::info!(applied, backend = backend.name(), "migrations applied");
    }
    // Only after the migrations: the checkpoint thread's first `PRAGMA optimize` writes the
    // planner's statistics, and a write committed while a migration's (deferred) transaction is
    // open fails that migration at once with "database is locked".
    let checkpointer = if background_checkpoints {
        Some(Arc::new(db::checkpoint::start(&factory, config.sqlite_checkpoint)?))
    } else {
        None
    };
    // The signing secret: from the environment, or generated once and kept in the database (the
    // stored kid is informational; tokens carry a digest of the secret as their key id).
    let secret = match &config.jwt_secret {
        Some(secret) => secret.clone(),
        None => {
            db::keys::signing_key(&mut conn, || {
                let mut bytes = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut bytes);
                base64::engine::general_purpose::STANDARD.encode(bytes)
            })
            .map_err(|e| format!("cannot load the signing key: {e}"))?
            .1
        }
    };
    let previous: Vec<Vec<u8>> = config.jwt_previous_secrets.iter().map(|s| s.as_bytes().to_vec()).collect();
    drop(conn);
    let ttl = i64::try_from(config.access_token_ttl.as_secs()).unwrap_or(900);
    Ok(AppState {
        pool,
        backend,
        tokens: TokenKeys::new(secret.as_bytes(), &previous, ttl),
        hasher: Hasher::new(config.argon2_memory_kib, config.argon2_iterations)?,
        sessions: SessionCache::new(config.session_check_ttl),
        api_keys: PrincipalCache::new(config.api_key_cache_ttl, API_KEY_CACHE_CAPACITY),
        limiter: limits::RateLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst),
        in_flight: limits::InFlight::new(config.max_inflight),
        metrics: Arc::new(metrics::Metrics::default()),
        config: Arc::new(config),
        db_health: Arc::default(),
        checkpointer,
    })
}

/// The whole application: state, middleware and routes. Used by `serve` and by the tests.
///
/// Middleware, outermost first: the request context (id, span, log line, metrics), the security
/// headers, CORS, then the overload guard (rate limit, in-flight bound) — so that refusals too carry
/// the request id, the security headers and CORS headers, and are counted.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .configure(routes::configure)
        .wrap(from_fn(middleware::guard))
        .wrap(from_fn(middleware::cors))
        .wrap(
            DefaultHeaders::new()
                .add(("X-Content-Type-Options", "nosniff"))
                .add(("X-Frame-Options", "DENY"))
                .add(("Referrer-Policy", "no-referrer"))
                .add(("Cache-Control", "no-store")),
        )
        .wrap(from_fn(middleware::request_context))
}

/// Runs the HTTP server until SIGINT/SIGTERM, then shuts down in order: stop accepting, let
/// in-flight requests finish within the grace period, let the webhook dispatcher finish the
/// delivery it is making and stop, close the database pool.
pub async fn serve(config: Config) -> Result<(), String> {
    let listen = config.listen.clone();
    let workers = config.workers;
    let grace = config.shutdown_grace;
    let state = web::block(move || init_state(config)).await.map_err(|e| e.to_string())??;
    let backend = state.backend.name();
    let state = web::Data::new(state);
    let background = background::start(state.clone());
    let (server, addrs) = bind(state.clone(), &listen, workers.unwrap_or(0), grace.as_secs(), true)
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    // The bound address, not the configured one: with port 0 the system picks it.
    let bound = addrs.first().map_or_else(|| listen.clone(), ToString::to_string);
    tracing::info!(listen = %bound, backend, "minsheng listening on {bound}");
    let served = server.await.map_err(|e| e.to_string());
    tracing::info!("http server stopped; stopping background work");
    background.stop(grace).await;
    // The workers' copies of the state go as their threads end; the last copy closes the pool.
    let state = state.into_inner();
    for _ in 0..100 {
        if Arc::strong_count(&state) == 1 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if Arc::strong_count(&state) == 1 {
        drop(state);
        tracing::info!("database pool closed; minsheng stopped");
    } else {
        tracing::warn!("database pool still in use at exit; minsheng stopped");
    }
    served
}

/// Builds the HTTP server on `listen` with the connection limits and client time-outs of the
/// configuration (`MINSHENG_MAX_CONNECTIONS`, `MINSHENG_BACKLOG`, `MINSHENG_KEEP_ALIVE_SECS`,
/// `MINSHENG_CLIENT_REQUEST_TIMEOUT_MS`, `MINSHENG_CLIENT_DISCONNECT_TIMEOUT_MS`) and returns it
/// running, with the addresses it listens on. `workers` 0 means one per core; `signals` false leaves
/// SIGINT/SIGTERM alone (tests). Used by `serve` and by the tests.
pub fn bind(
    state: web::Data<AppState>,
    listen: &str,
    workers: usize,
    shutdown_grace_secs: u64,
    signals: bool,
) -> std::io::Result<(actix_web::dev::Server, Vec<std::net::SocketAddr>)> {
    let config = state.config.clone();
    let keep_alive = if config.keep_alive.is_zero() {
        actix_web::http::KeepAlive::Disabled
    } else {
        actix_web::http::KeepAlive::Timeout(config.keep_alive)
    };
    let mut server = HttpServer::new(move || app(state.clone()))
        .shutdown_timeout(shutdown_grace_secs)
        .max_connections(config.max_connections)
        .backlog(config.backlog)
        .keep_alive(keep_alive)
        .client_request_timeout(config.client_request_timeout)
        .client_disconnect_timeout(config.client_disconnect_timeout);
    if workers > 0 {
        server = server.workers(workers);
    }
    if !signals {
        server = server.disable_signals();
    }
    let server = server.bind(listen)?;
    let addrs = server.addrs();
    Ok((server.run(), addrs))
}

/// Sets up logging: JSON lines, or human-readable text when stderr is a terminal; `RUST_LOG`
/// filters (default `info`).
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init();
    }
}
