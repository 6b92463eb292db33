//! Configuration from the environment. Every variable is optional: a first run needs none.

use std::time::Duration;

/// The service's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: a `postgres://` URL, or a SQLite path (default `./minsheng.db`).
    pub database_url: String,
    /// `MINSHENG_LISTEN`: address to bind (default `127.0.0.1:8080`).
    pub listen: String,
    /// `MINSHENG_JWT_SECRET`: HMAC key for access tokens; unset → generated once and kept in the database.
    pub jwt_secret: Option<String>,
    /// `MINSHENG_ACCESS_TOKEN_TTL_SECS`: access-token lifetime (default 900).
    pub access_token_ttl: Duration,
    /// `MINSHENG_DB_POOL_SIZE`: connections in the pool (default 10).
    pub pool_size: u32,
    /// `MINSHENG_DB_TIMEOUT_MS`: how long a request waits for a connection, and SQLite's busy timeout (default 5000).
    pub db_timeout: Duration,
    /// `MINSHENG_MAX_BODY_BYTES`: largest accepted JSON body (default 65536).
    pub max_body_bytes: usize,
    /// `MINSHENG_SHUTDOWN_GRACE_SECS`: how long in-flight requests may finish after SIGTERM (default 30).
    pub shutdown_grace: Duration,
    /// `MINSHENG_WORKERS`: HTTP worker threads (default: one per core).
    pub workers: Option<usize>,
    /// `MINSHENG_ARGON2_MEMORY_KIB` / `MINSHENG_ARGON2_ITERATIONS`: password hashing cost
    /// (default 19456 KiB, 2 iterations: OWASP's argon2id baseline).
    pub argon2_memory_kib: u32,
    /// See `argon2_memory_kib`.
    pub argon2_iterations: u32,
    /// `MINSHENG_API_KEY_CACHE_SECS`: how long a process remembers a verified API key (default 5;
    /// 0 turns the cache off). A revoked key keeps working in other processes for up to this long.
    pub api_key_cache_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "minsheng.db".to_owned(),
            listen: "127.0.0.1:8080".to_owned(),
            jwt_secret: None,
            access_token_ttl: Duration::from_secs(900),
            pool_size: 10,
            db_timeout: Duration::from_millis(5000),
            max_body_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(30),
            workers: None,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            api_key_cache_ttl: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Reads the environment; a malformed number is an error naming the variable.
    pub fn from_env() -> Result<Config, String> {
        let d = Config::default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        fn num<T: std::str::FromStr>(name: &str, value: Option<String>, default: T) -> Result<T, String> {
            match value {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| format!("{name} must be a number, got {v:?}")),
            }
        }
        Ok(Config {
            database_url: var("DATABASE_URL").unwrap_or(d.database_url),
            listen: var("MINSHENG_LISTEN").unwrap_or(d.listen),
            jwt_secret: var("MINSHENG_JWT_SECRET"),
            access_token_ttl: Duration::from_secs(num(
                "MINSHENG_ACCESS_TOKEN_TTL_SECS",
                var("MINSHENG_ACCESS_TOKEN_TTL_SECS"),
                d.access_token_ttl.as_secs(),
            )?),
            pool_size: num("MINSHENG_DB_POOL_SIZE", var("MINSHENG_DB_POOL_SIZE"), d.pool_size)?.max(1),
            db_timeout: Duration::from_millis(num(
                "MINSHENG_DB_TIMEOUT_MS",
                var("MINSHENG_DB_TIMEOUT_MS"),
                d.db_timeout.as_millis() as u64,
            )?),
            max_body_bytes: num("MINSHENG_MAX_BODY_BYTES", var("MINSHENG_MAX_BODY_BYTES"), d.max_body_bytes)?,
            shutdown_grace: Duration::from_secs(num(
                "MINSHENG_SHUTDOWN_GRACE_SECS",
                var("MINSHENG_SHUTDOWN_GRACE_SECS"),
                d.shutdown_grace.as_secs(),
            )?),
            workers: match var("MINSHENG_WORKERS") {
                None => None,
                Some(v) => Some(num("MINSHENG_WORKERS", Some(v), 1usize)?.max(1)),
            },
            argon2_memory_kib: num(
                "MINSHENG_ARGON2_MEMORY_KIB",
                var("MINSHENG_ARGON2_MEMORY_KIB"),
                d.argon2_memory_kib,
            )?,
            argon2_iterations: num(
                "MINSHENG_ARGON2_ITERATIONS",
                var("MINSHENG_ARGON2_ITERATIONS"),
                d.argon2_iterations,
            )?,
            api_key_cache_ttl: Duration::from_secs(num(
                "MINSHENG_API_KEY_CACHE_SECS",
                var("MINSHENG_API_KEY_CACHE_SECS"),
                d.api_key_cache_ttl.as_secs(),
            )?),
        })
    }
}
