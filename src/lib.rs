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

use auth::api_key::ApiKeyCache;
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
    let factory =
        db::ConnectionFactory::new(&config.database_url, busy_ms).with_sqlite_max_pages(config.sqlite_max_pages);
    let pool = db::build_pool_with(factory, config.pool_size, config.db_timeout)?;
    let mut conn = pool.get().map_err(|e| format!("cannot connect to the database: {e}"))?;
    let applied = db::run_migrations(&mut conn)?;
    if applied > 0 {
        tracing::info!(applied, backend = backend.name(), "migrations applied");
    }
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
        api_keys: ApiKeyCache::new(config.api_key_cache_ttl, API_KEY_CACHE_CAPACITY),
        config: Arc::new(config),
        db_health: Arc::default(),
    })
}

/// The whole application: state, middleware and routes. Used by `serve` and by the tests.
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
    let for_server = state.clone();
    let mut server = HttpServer::new(move || app(for_server.clone())).shutdown_timeout(grace.as_secs());
    if let Some(n) = workers {
        server = server.workers(n);
    }
    let server = server.bind(&listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    // The bound address, not the configured one: with port 0 the system picks it.
    let bound = server.addrs().first().map_or_else(|| listen.clone(), ToString::to_string);
    tracing::info!(listen = %bound, backend, "minsheng listening on {bound}");
    let served = server.run().await.map_err(|e| e.to_string());
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
