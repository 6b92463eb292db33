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
    /// `MINSHENG_JWT_PREVIOUS_SECRETS`: comma-separated former secrets whose tokens are still
    /// accepted during a key rotation (default none).
    pub jwt_previous_secrets: Vec<String>,
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
    /// `MINSHENG_RESPONSE_WINDOW_HOURS`: how soon after its first assignment a case must be
    /// acknowledged to count as responded to (default 24). Applies to acknowledgements from the
    /// time it is set.
    pub response_window: Duration,
    /// `MINSHENG_EXPORT_BATCH`: rows a CSV export reads per database round trip (default 1000);
    /// bounds the memory an export holds.
    pub export_batch: i64,
    /// `MINSHENG_MAX_IMPORT_BYTES`: the largest bulk-import upload (default 64 MiB).
    pub max_import_bytes: usize,
    /// `MINSHENG_WEBHOOK_POLL_MS`: how often the dispatcher looks for due deliveries (default 1000).
    pub webhook_poll: Duration,
    /// `MINSHENG_WEBHOOK_TIMEOUT_SECS`: how long one delivery may take (default 10).
    pub webhook_timeout: Duration,
    /// `MINSHENG_WEBHOOK_RETRY_BASE_MS`: the first retry delay, doubled after each failure up to
    /// an hour, with ±50 % jitter (default 5000).
    pub webhook_retry_base: Duration,
    /// `MINSHENG_OVERDUE_SCAN_SECS`: how often cases that passed their deadline are announced
    /// (`case.overdue`, default 60).
    pub overdue_scan: Duration,
    /// `MINSHENG_REFRESH_TOKEN_TTL_SECS`: how long a session (and its refresh tokens) lasts (default 30 days).
    pub refresh_token_ttl: Duration,
    /// `MINSHENG_SESSION_CHECK_SECS`: how long a process trusts its last look at a session (default 5;
    /// 0 checks the database on every request). Bounds how late a revocation by another process bites.
    pub session_check_ttl: Duration,
    /// `MINSHENG_LOGIN_MAX_FAILURES`: failed logins of one account before it is locked (default 5).
    pub login_max_failures: i32,
    /// `MINSHENG_LOGIN_MAX_FAILURES_PER_ADDRESS`: failed logins from one address before it is locked (default 50).
    pub login_max_failures_per_address: i32,
    /// `MINSHENG_LOGIN_LOCKOUT_SECS`: the failure-counting window and the lock's length (default 900).
    pub login_lockout: Duration,
    /// `MINSHENG_TRUST_FORWARDED_FOR`: take the client address from `X-Forwarded-For`/`Forwarded`
    /// (only behind a proxy that sets them; default false).
    pub trust_forwarded_for: bool,
    /// `MINSHENG_API_KEY_CACHE_SECS`: how long a process remembers a verified API key (default 5;
    /// 0 turns the cache off). A revoked key keeps working in other processes for up to this long.
    pub api_key_cache_ttl: Duration,
    /// `MINSHENG_SQLITE_MAX_PAGES`: cap on a SQLite database's size in pages (4 KiB each; default
    /// none). Past it writes are refused whole with `503 storage_full`, as on a full disk, so a
    /// county server's disk never fills up under the database.
    pub sqlite_max_pages: Option<u64>,
    /// `MINSHENG_RATE_LIMIT_PER_SEC`: requests a second one client may sustain (default 50; `0`
    /// turns rate limiting off). A client is the signed-in user or API client when the request
    /// carries credentials this process can check without the database, else its address. Per
    /// process: with N processes the effective limit is up to N times this.
    pub rate_limit_per_sec: f64,
    /// `MINSHENG_RATE_LIMIT_BURST`: requests a client may send at once after being idle (default 200).
    pub rate_limit_burst: u32,
    /// `MINSHENG_MAX_INFLIGHT`: requests a process answers at once; beyond it `503 overloaded`
    /// with `Retry-After` (default 512).
    pub max_inflight: usize,
    /// `MINSHENG_MAX_CONNECTIONS`: open connections per worker thread; beyond it new connections
    /// wait in the listen backlog (default 4096).
    pub max_connections: usize,
    /// `MINSHENG_BACKLOG`: the listen backlog (default 1024).
    pub backlog: u32,
    /// `MINSHENG_CLIENT_REQUEST_TIMEOUT_MS`: how long a client has to send a request's head
    /// before it is answered 408 and the connection closed (default 5000).
    pub client_request_timeout: Duration,
    /// `MINSHENG_CLIENT_DISCONNECT_TIMEOUT_MS`: how long a connection may take to shut down after
    /// its last answer (default 1000).
    pub client_disconnect_timeout: Duration,
    /// `MINSHENG_KEEP_ALIVE_SECS`: how long an idle keep-alive connection stays open (default 5;
    /// `0` closes a connection after each answer).
    pub keep_alive: Duration,
    /// `MINSHENG_BODY_TIMEOUT_SECS`: how long a client may take to send a JSON body or an Open311
    /// form once its head is in, and the longest pause allowed in an import upload (default 30);
    /// a slower body is refused with 408 `body_timeout`.
    pub body_timeout: Duration,
    /// `MINSHENG_CORS_ORIGINS`: comma-separated origins (`https://portal.example.gov.cn`) whose
    /// browser pages may call the API; unset (the default) leaves CORS off.
    pub cors_origins: Vec<String>,
    /// `MINSHENG_METRICS_TOKEN`: when set, `GET /metrics` requires `Authorization: Bearer <token>`
    /// (default unset: open, for a scraper on a private network).
    pub metrics_token: Option<String>,
    /// `MINSHENG_SLOW_QUERY_MS`: a unit of work (one database transaction) slower than this is
    /// logged as a warning (default 500; `0` turns the warning off).
    pub slow_query: Duration,
    /// `MINSHENG_SQLITE_CHECKPOINT_MS`: on SQLite, how often a background thread copies the
    /// write-ahead log into the database file (a passive checkpoint), so that no request's commit
    /// does it (default 100; `0` leaves checkpoints to SQLite, inside whichever commit crosses
    /// 1,000 log pages).
    pub sqlite_checkpoint: Duration,
    /// Idle database connections the pool keeps open (1, not from the environment). The one-shot
    /// commands set 0: a connection the pool opens in the background to stay at its minimum
    /// could be half-way through its TLS handshake when the command exits, and OpenSSL's exit
    /// handlers then crash the process (seen: `create-admin` ending in SIGSEGV instead of 1).
    pub pool_min_idle: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "minsheng.db".to_owned(),
            listen: "127.0.0.1:8080".to_owned(),
            jwt_secret: None,
            jwt_previous_secrets: Vec::new(),
            access_token_ttl: Duration::from_secs(900),
            pool_size: 10,
            db_timeout: Duration::from_millis(5000),
            max_body_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(30),
            workers: None,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            response_window: Duration::from_secs(24 * 3600),
            export_batch: 1000,
            max_import_bytes: 64 * 1024 * 1024,
            webhook_poll: Duration::from_millis(1000),
            webhook_timeout: Duration::from_secs(10),
            webhook_retry_base: Duration::from_millis(5000),
            overdue_scan: Duration::from_secs(60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            session_check_ttl: Duration::from_secs(5),
            login_max_failures: 5,
            login_max_failures_per_address: 50,
            login_lockout: Duration::from_secs(900),
            trust_forwarded_for: false,
            api_key_cache_ttl: Duration::from_secs(5),
            sqlite_max_pages: None,
            rate_limit_per_sec: 50.0,
            rate_limit_burst: 200,
            max_inflight: 512,
            max_connections: 4096,
            backlog: 1024,
            client_request_timeout: Duration::from_millis(5000),
            client_disconnect_timeout: Duration::from_millis(1000),
            keep_alive: Duration::from_secs(5),
            body_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            metrics_token: None,
            slow_query: Duration::from_millis(500),
            sqlite_checkpoint: Duration::from_millis(100),
            pool_min_idle: 1,
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
            jwt_previous_secrets: var("MINSHENG_JWT_PREVIOUS_SECRETS")
                .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
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
            max_import_bytes: num("MINSHENG_MAX_IMPORT_BYTES", var("MINSHENG_MAX_IMPORT_BYTES"), d.max_import_bytes)?,
            webhook_poll: Duration::from_millis(
                num("MINSHENG_WEBHOOK_POLL_MS", var("MINSHENG_WEBHOOK_POLL_MS"), 1000u64)?.max(10),
            ),
            webhook_timeout: Duration::from_secs(num(
                "MINSHENG_WEBHOOK_TIMEOUT_SECS",
                var("MINSHENG_WEBHOOK_TIMEOUT_SECS"),
                10u64,
            )?),
            webhook_retry_base: Duration::from_millis(num(
                "MINSHENG_WEBHOOK_RETRY_BASE_MS",
                var("MINSHENG_WEBHOOK_RETRY_BASE_MS"),
                5000u64,
            )?),
            overdue_scan: Duration::from_secs(num(
                "MINSHENG_OVERDUE_SCAN_SECS",
                var("MINSHENG_OVERDUE_SCAN_SECS"),
                60u64,
            )?),
            export_batch: num("MINSHENG_EXPORT_BATCH", var("MINSHENG_EXPORT_BATCH"), d.export_batch)?.clamp(1, 100_000),
            response_window: Duration::from_secs(
                3600 * num("MINSHENG_RESPONSE_WINDOW_HOURS", var("MINSHENG_RESPONSE_WINDOW_HOURS"), 24u64)?,
            ),
            refresh_token_ttl: Duration::from_secs(num(
                "MINSHENG_REFRESH_TOKEN_TTL_SECS",
                var("MINSHENG_REFRESH_TOKEN_TTL_SECS"),
                d.refresh_token_ttl.as_secs(),
            )?),
            session_check_ttl: Duration::from_secs(num(
                "MINSHENG_SESSION_CHECK_SECS",
                var("MINSHENG_SESSION_CHECK_SECS"),
                d.session_check_ttl.as_secs(),
            )?),
            login_max_failures: num(
                "MINSHENG_LOGIN_MAX_FAILURES",
                var("MINSHENG_LOGIN_MAX_FAILURES"),
                d.login_max_failures,
            )?
            .max(1),
            login_max_failures_per_address: num(
                "MINSHENG_LOGIN_MAX_FAILURES_PER_ADDRESS",
                var("MINSHENG_LOGIN_MAX_FAILURES_PER_ADDRESS"),
                d.login_max_failures_per_address,
            )?
            .max(1),
            login_lockout: Duration::from_secs(num(
                "MINSHENG_LOGIN_LOCKOUT_SECS",
                var("MINSHENG_LOGIN_LOCKOUT_SECS"),
                d.login_lockout.as_secs(),
            )?),
            trust_forwarded_for: matches!(var("MINSHENG_TRUST_FORWARDED_FOR").as_deref(), Some("1" | "true" | "yes")),
            api_key_cache_ttl: Duration::from_secs(num(
                "MINSHENG_API_KEY_CACHE_SECS",
                var("MINSHENG_API_KEY_CACHE_SECS"),
                d.api_key_cache_ttl.as_secs(),
            )?),
            sqlite_max_pages: match var("MINSHENG_SQLITE_MAX_PAGES") {
                None => None,
                Some(v) => Some(num("MINSHENG_SQLITE_MAX_PAGES", Some(v), 0u64)?.max(1)),
            },
            rate_limit_per_sec: {
                let rate: f64 =
                    num("MINSHENG_RATE_LIMIT_PER_SEC", var("MINSHENG_RATE_LIMIT_PER_SEC"), d.rate_limit_per_sec)?;
                if !rate.is_finite() || rate < 0.0 {
                    return Err(format!("MINSHENG_RATE_LIMIT_PER_SEC must be 0 or more, got {rate}"));
                }
                rate
            },
            rate_limit_burst: num("MINSHENG_RATE_LIMIT_BURST", var("MINSHENG_RATE_LIMIT_BURST"), d.rate_limit_burst)?
                .max(1),
            max_inflight: num("MINSHENG_MAX_INFLIGHT", var("MINSHENG_MAX_INFLIGHT"), d.max_inflight)?.max(1),
            max_connections: num("MINSHENG_MAX_CONNECTIONS", var("MINSHENG_MAX_CONNECTIONS"), d.max_connections)?
                .max(1),
            backlog: num("MINSHENG_BACKLOG", var("MINSHENG_BACKLOG"), d.backlog)?.max(1),
            client_request_timeout: Duration::from_millis(num(
                "MINSHENG_CLIENT_REQUEST_TIMEOUT_MS",
                var("MINSHENG_CLIENT_REQUEST_TIMEOUT_MS"),
                5000u64,
            )?),
            client_disconnect_timeout: Duration::from_millis(num(
                "MINSHENG_CLIENT_DISCONNECT_TIMEOUT_MS",
                var("MINSHENG_CLIENT_DISCONNECT_TIMEOUT_MS"),
                1000u64,
            )?),
            keep_alive: Duration::from_secs(num("MINSHENG_KEEP_ALIVE_SECS", var("MINSHENG_KEEP_ALIVE_SECS"), 5u64)?),
            body_timeout: Duration::from_secs(
                num("MINSHENG_BODY_TIMEOUT_SECS", var("MINSHENG_BODY_TIMEOUT_SECS"), 30u64)?.max(1),
            ),
            cors_origins: var("MINSHENG_CORS_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().trim_end_matches('/'))
                        .filter(|o| !o.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            metrics_token: var("MINSHENG_METRICS_TOKEN"),
            slow_query: Duration::from_millis(num("MINSHENG_SLOW_QUERY_MS", var("MINSHENG_SLOW_QUERY_MS"), 500u64)?),
            sqlite_checkpoint: Duration::from_millis(num(
                "MINSHENG_SQLITE_CHECKPOINT_MS",
                var("MINSHENG_SQLITE_CHECKPOINT_MS"),
                100u64,
            )?),
            pool_min_idle: 1,
        })
    }
}
