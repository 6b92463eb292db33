//! Database access: the two-backend connection type, the pool, migrations, and the query modules.
//!
//! `DbConn` is a diesel `MultiConnection` over SQLite and PostgreSQL; the backend is picked from
//! `DATABASE_URL` at run time. Query code is written once against `DbConn`; where the SQL must differ
//! it says so with an explicit `match conn { DbConn::Sqlite(c) => …, DbConn::Pg(c) => … }`.
//! The statements of the hot paths (a case read, created or acted on) run on the backend's own
//! connection through [`on_backend!`], which skips the multi-connection's rendering of the SQL.

pub mod api_clients;
pub mod audit;
pub mod backup;
pub mod cases;
pub mod checkpoint;
pub mod keys;
pub mod models;
pub mod reference;
pub mod schema;
pub mod sessions;
pub mod stats;
pub mod users;
pub mod webhooks;

use std::marker::PhantomData;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use diesel::backend::Backend as SqlBackend;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::r2d2::{self, ManageConnection};
use diesel::{Connection, ConnectionError, PgConnection, QueryResult, RunQueryDsl, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// Migrations for each backend; the two folders hold the same migration names (a test checks it).
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// See [`SQLITE_MIGRATIONS`].
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// PostgreSQL, the production database.
    Pg(PgConnection),
    /// SQLite, the embedded default.
    Sqlite(SqliteConnection),
}

/// Runs `$body`, a query written once, on the backend's own connection `$c` instead of through
/// [`DbConn`]. diesel's multi-connection renders the whole SQL text of every query it runs, and
/// walks it for cache safety, on every execution, even when the backend has the statement
/// prepared already (`SerializedQuery::walk_ast`); on the backend's own connection a statement of
/// a fixed shape is found in the cache by its type. For a 46-column case that rendering was about
/// a tenth of a `GET /cases/{id}` (docs/BENCHMARKS.md, change 23). The body is compiled once per
/// backend.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Pg($c) => $body,
            $crate::db::DbConn::Sqlite($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://path`, `file:path` or a plain path.
    Sqlite,
    /// `postgres://` or `postgresql://`.
    Postgres,
}

impl Backend {
    /// Picks the backend from a `DATABASE_URL`.
    pub fn from_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// Short name for logs and `/readyz`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Strips the `sqlite://` scheme that users write; SQLite itself wants a path or a `file:` URI.
fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://").unwrap_or(url)
}

/// The connection pool handed to every unit of work.
pub type DbPool = r2d2::Pool<ConnectionFactory>;
/// A connection checked out of [`DbPool`].
pub type PooledConn = r2d2::PooledConnection<ConnectionFactory>;

/// Opens connections for the pool and sets each SQLite connection up (WAL, busy timeout, foreign keys).
#[derive(Debug, Clone)]
pub struct ConnectionFactory {
    url: String,
    backend: Backend,
    busy_timeout_ms: u32,
    sqlite_max_pages: Option<u64>,
    sqlite_background_checkpoints: bool,
}

/// libpq settings that keep a dead or unreachable PostgreSQL from hanging a request: a bound on
/// opening a connection, and TCP keepalives so a connection whose server vanished without a word
/// is noticed (after about 10 + 3 × 5 s) instead of waiting for ever. Each is added only when the
/// URL does not set it already.
fn pg_url_with_timeouts(url: &str, connect_timeout_secs: u64) -> String {
    let mut url = url.to_owned();
    for (key, value) in [
        ("connect_timeout", connect_timeout_secs.max(1).to_string()),
        ("keepalives", "1".to_owned()),
        ("keepalives_idle", "10".to_owned()),
        ("keepalives_interval", "5".to_owned()),
        ("keepalives_count", "3".to_owned()),
    ] {
        let present = url
            .split_once('?')
            .is_some_and(|(_, query)| query.split('&').any(|pair| pair.split('=').next() == Some(key)));
        if !present {
            let sep = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{sep}{key}={value}");
        }
    }
    url
}

impl ConnectionFactory {
    /// A factory for `url`. PostgreSQL connections give up opening after the busy timeout
    /// (rounded up to whole seconds, libpq's unit).
    pub fn new(url: &str, busy_timeout_ms: u32) -> Self {
        let backend = Backend::from_url(url);
        let url = match backend {
            Backend::Postgres => pg_url_with_timeouts(url, u64::from(busy_timeout_ms).div_ceil(1000)),
            Backend::Sqlite => url.to_owned(),
        };
        ConnectionFactory {
            url,
            backend,
            busy_timeout_ms,
            sqlite_max_pages: None,
            sqlite_background_checkpoints: false,
        }
    }

    /// How long a connection waits for a lock (`busy_timeout`, milliseconds).
    pub fn busy_timeout_ms(&self) -> u32 {
        self.busy_timeout_ms
    }

    /// Caps a SQLite database at this many pages (`PRAGMA max_page_count`, set on every
    /// connection): writes that would grow the file further fail as "disk full".
    pub fn with_sqlite_max_pages(mut self, pages: Option<u64>) -> Self {
        self.sqlite_max_pages = pages;
        self
    }

    /// Leaves SQLite's write-ahead log to a [`checkpoint::Checkpointer`]: connections do not
    /// checkpoint in their commits (`PRAGMA wal_autocheckpoint = 0`). Only for a pool that has one
    /// running beside it, or the log grows without bound.
    pub fn with_background_checkpoints(mut self, on: bool) -> Self {
        self.sqlite_background_checkpoints = on;
        self
    }

    /// Opens one connection, configured for this service.
    pub fn open(&self) -> Result<DbConn, ConnectionError> {
        match self.backend {
            Backend::Postgres => Ok(DbConn::Pg(PgConnection::establish(&self.url)?)),
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(sqlite_path(&self.url))?;
                // One PRAGMA per statement: SQLite ignores all but the first in some drivers.
                for pragma in [
                    format!("PRAGMA busy_timeout = {}", self.busy_timeout_ms),
                    "PRAGMA journal_mode = WAL".to_owned(),
                    "PRAGMA synchronous = NORMAL".to_owned(),
                    "PRAGMA foreign_keys = ON".to_owned(),
                    // After a checkpoint lets the log start over, its file is cut back to 64 MiB.
                    "PRAGMA journal_size_limit = 67108864".to_owned(),
                ] {
                    conn.batch_execute(&pragma).map_err(ConnectionError::CouldntSetupConfiguration)?;
                }
                if self.sqlite_background_checkpoints {
                    conn.batch_execute("PRAGMA wal_autocheckpoint = 0")
                        .map_err(ConnectionError::CouldntSetupConfiguration)?;
                }
                if let Some(pages) = self.sqlite_max_pages {
                    conn.batch_execute(&format!("PRAGMA max_page_count = {pages}"))
                        .map_err(ConnectionError::CouldntSetupConfiguration)?;
                }
                Ok(DbConn::Sqlite(conn))
            }
        }
    }

    /// The backend this factory connects to.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl ManageConnection for ConnectionFactory {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        self.open().map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1").map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        <DbConn as TransactionManager<DbConn>>::is_broken_transaction_manager(conn)
    }
}

/// What a process has lately seen of its database's health. After a connection failed because
/// the server went away, the other pooled connections are suspect too (they were opened to the
/// same server): for [`DbHealth::SUSPECT_FOR`] after the last such failure, every checked-out
/// PostgreSQL connection is tested with `SELECT 1` first and dropped if it fails, so stale
/// connections are weeded out instead of failing requests. In good times nothing is tested.
#[derive(Debug, Default)]
pub struct DbHealth {
    /// Unix milliseconds until which connections are suspect (0: none).
    suspect_until_ms: std::sync::atomic::AtomicI64,
}

impl DbHealth {
    /// How long connections stay suspect after the last failure.
    pub const SUSPECT_FOR: Duration = Duration::from_secs(60);

    /// Records that a connection failed because the server went away.
    pub fn failed(&self) {
        let until = chrono::Utc::now().timestamp_millis() + Self::SUSPECT_FOR.as_millis() as i64;
        self.suspect_until_ms.store(until, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether checked-out connections should be tested.
    pub fn suspect(&self) -> bool {
        self.suspect_until_ms.load(std::sync::atomic::Ordering::Relaxed) > chrono::Utc::now().timestamp_millis()
    }
}

/// Takes a connection from the pool; while connections are suspect (see [`DbHealth`]), tests
/// each PostgreSQL connection and drops the dead ones until one answers.
pub fn checkout(pool: &DbPool, backend: Backend, health: &DbHealth) -> Result<PooledConn, r2d2::PoolError> {
    if backend != Backend::Postgres || !health.suspect() {
        return pool.get();
    }
    let mut conn = pool.get()?;
    for _ in 0..pool.max_size() {
        if conn.batch_execute("SELECT 1").is_ok() {
            break;
        }
        discard(&mut conn);
        drop(conn);
        conn = pool.get()?;
    }
    Ok(conn)
}

/// Marks a connection as unusable so the pool drops it when it is given back instead of handing
/// it out again. Used when the server went away under it (libpq never reconnects by itself): a
/// stale connection must not fail every request after PostgreSQL has come back.
pub fn discard(conn: &mut DbConn) {
    <DbConn as TransactionManager<DbConn>>::transaction_manager_status_mut(conn).set_in_error();
}

/// Builds the pool. Connections are opened lazily (`min_idle` 1) so start-up stays fast.
pub fn build_pool(url: &str, max_size: u32, busy_timeout_ms: u32, connect_timeout: Duration) -> Result<DbPool, String> {
    build_pool_with(ConnectionFactory::new(url, busy_timeout_ms), max_size, 1, connect_timeout)
}

/// Builds the pool over a configured factory, keeping `min_idle` connections open beside those in
/// use (the service 1; one-shot commands 0, see `Config::pool_min_idle`).
pub fn build_pool_with(
    factory: ConnectionFactory,
    max_size: u32,
    min_idle: u32,
    connect_timeout: Duration,
) -> Result<DbPool, String> {
    r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(min_idle))
        .connection_timeout(connect_timeout)
        .test_on_check_out(false)
        .build(factory)
        .map_err(|e| format!("cannot open the database: {e}"))
}

/// Applies every pending migration of the connection's backend.
pub fn run_migrations(conn: &mut DbConn) -> Result<usize, String> {
    let applied = match conn {
        DbConn::Pg(c) => {
            // Several processes may start at once against one PostgreSQL: migrate one at a time.
            c.batch_execute("SELECT pg_advisory_lock(7370326117)").map_err(|e| format!("migration lock: {e}"))?;
            let result = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len());
            c.batch_execute("SELECT pg_advisory_unlock(7370326117)").map_err(|e| format!("migration unlock: {e}"))?;
            result
        }
        // One immediate transaction for all of them (each migration a savepoint): it waits for the
        // write lock up front, where a deferred one would fail at its first write with "database
        // is locked" if anything committed since it began, and a failed batch leaves nothing half
        // applied.
        DbConn::Sqlite(c) => c
            .immediate_transaction(|c| {
                c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()).map_err(Migrate::Failed)
            })
            .map_err(|e| match e {
                Migrate::Failed(e) => e,
                Migrate::Db(e) => e.into(),
            }),
    };
    applied.map_err(|e| format!("migration failed: {e}"))
}

/// Why a migration batch stopped: a migration failed, or the transaction around the batch did.
enum Migrate {
    Failed(Box<dyn std::error::Error + Send + Sync>),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for Migrate {
    fn from(e: diesel::result::Error) -> Self {
        Migrate::Db(e)
    }
}

/// A statement diesel will not prepare — an `UPDATE`, an upsert, a multi-row insert — run as a
/// prepared one, cached per connection. diesel declines these because their text can vary with
/// their values; the ones wrapped here have a few fixed shapes (fixed columns; a bounded number of
/// rows), so each shape is compiled once per connection instead of once per request: on
/// PostgreSQL about 0.3 ms of the server's CPU per create, on SQLite the compiling of some thirty
/// statements (docs/BENCHMARKS.md, changes 18 and 20). `K` says how the cache finds it.
#[derive(Debug, Clone, Copy)]
pub struct Prepared<Q, K = ByText> {
    query: Q,
    key: PhantomData<K>,
}

/// How the connection's statement cache finds a [`Prepared`] statement.
pub trait CacheKey {
    /// Whether [`CacheKey::Id`] identifies the statement (else its SQL text does).
    const BY_TYPE: bool;
    /// The type that identifies the statement.
    type Id: 'static;
}

/// By its SQL text, rendered on every execution: for a statement whose text varies with its
/// values (the number of rows of a multi-row upsert).
#[derive(Debug, Clone, Copy)]
pub enum ByText {}

impl CacheKey for ByText {
    const BY_TYPE: bool = false;
    type Id = ();
}

/// By the type `T`, declared for the purpose where the statement is built (`enum Key {}`): for a
/// statement whose text is the same every time it runs under `T` (fixed columns, one row). Its
/// SQL is then not even rendered again; only its values are bound (docs/BENCHMARKS.md,
/// change 24).
#[derive(Debug, Clone, Copy)]
pub struct ByType<T>(PhantomData<T>);

impl<T: 'static> CacheKey for ByType<T> {
    const BY_TYPE: bool = true;
    type Id = T;
}

impl<Q> Prepared<Q> {
    /// The statement, found in the cache by its text.
    pub fn new(query: Q) -> Self {
        Prepared { query, key: PhantomData }
    }

    /// The statement, whose text is fixed, found in the cache by the type `T` (see [`ByType`]).
    pub fn by_type<T>(query: Q) -> Prepared<Q, ByType<T>> {
        Prepared { query, key: PhantomData }
    }
}

impl<Q: QueryFragment<DB>, K, DB: SqlBackend> QueryFragment<DB> for Prepared<Q, K> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q, K: CacheKey> QueryId for Prepared<Q, K> {
    type QueryId = K::Id;
    const HAS_STATIC_QUERY_ID: bool = K::BY_TYPE;
}

impl<Q: Query, K> Query for Prepared<Q, K> {
    type SqlType = Q::SqlType;
}

impl<Q, K, C> RunQueryDsl<C> for Prepared<Q, K> {}

impl<Q, K> Prepared<Q, K> {
    /// Runs the statement, which has a `RETURNING` clause of one column of type `U`, and gives the
    /// number of rows it returned (wrote). Loaded rather than executed: diesel hands an executed
    /// statement to its cache by reference, and a reference asks the statement itself whether it
    /// may be cached.
    pub fn run<'q, U, C>(self, conn: &mut C) -> QueryResult<usize>
    where
        Self: diesel::query_dsl::LoadQuery<'q, C, U>,
    {
        Ok(self.load::<U>(conn)?.len())
    }

    /// [`Prepared::run`] on whichever database the connection is.
    pub fn run_on<'q, U>(self, conn: &mut DbConn) -> QueryResult<usize>
    where
        Self: diesel::query_dsl::LoadQuery<'q, PgConnection, U> + diesel::query_dsl::LoadQuery<'q, SqliteConnection, U>,
    {
        on_backend!(conn, |c| self.run(c))
    }
}

/// Runs `work` in a write transaction: `BEGIN IMMEDIATE` on SQLite (so a transaction that reads and
/// then writes waits for the write lock up front instead of failing with SQLITE_BUSY half-way), a
/// plain `BEGIN` on PostgreSQL. Commits on `Ok`, rolls back on `Err`. Nested in another write
/// transaction it is a savepoint.
pub fn write_tx<T, E>(conn: &mut DbConn, work: impl FnOnce(&mut DbConn) -> Result<T, E>) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    // Inside an outer write transaction (an idempotent request records its answer in the same
    // transaction as its work), this one becomes a savepoint of it.
    let nested =
        <DbConn as TransactionManager<DbConn>>::transaction_manager_status_mut(conn).transaction_depth()?.is_some();
    // SQLite has one writer at a time. Writers of this process queue here and are woken the
    // moment the lock is free, instead of in SQLite's busy handler, which sleeps 1, 2, 5, … up
    // to 100 ms between retries and made eight concurrent writers 10× slower than one.
    let _turn = match conn {
        DbConn::Sqlite(_) if !nested => Some(WRITE_GATE.enter()),
        _ => None,
    };
    match conn {
        _ if nested => <DbConn as TransactionManager<DbConn>>::begin_transaction(conn)?,
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
        DbConn::Pg(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    // Kept-sum deltas wait for the end of the outermost transaction (`stats::add_at_commit`); a
    // savepoint rolled back drops its own.
    let _held = (!nested).then(stats::hold_until_commit);
    let mark = stats::held_mark();
    let done = work(conn).and_then(|value| {
        if !nested {
            stats::write_held(conn)?;
        }
        Ok(value)
    });
    match done {
        Ok(value) => {
            <DbConn as TransactionManager<DbConn>>::commit_transaction(conn)?;
            Ok(value)
        }
        // A failed rollback leaves the connection marked broken (the pool then drops it); the
        // error worth answering is the one that made the work fail. SQLite, for one, may already
        // have rolled back by itself after SQLITE_FULL, so its ROLLBACK fails.
        Err(err) => {
            stats::forget_since(mark);
            if let Err(rollback) = <DbConn as TransactionManager<DbConn>>::rollback_transaction(conn) {
                tracing::warn!(error = %rollback, "rollback after a failed unit of work failed");
                discard(conn);
            }
            Err(err)
        }
    }
}

/// Runs `work` in the caller's write transaction if there is one, else in a new one
/// ([`write_tx`]). Unlike a nested `write_tx` it takes no savepoint, which costs two round trips
/// on PostgreSQL: for work whose failure always fails the caller's whole transaction (a claim of
/// an Idempotency-Key and the create or action it guards). A caller that recovers from the
/// work's error and goes on in the same transaction must use `write_tx`.
pub fn join_tx<T, E>(conn: &mut DbConn, work: impl FnOnce(&mut DbConn) -> Result<T, E>) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    let nested =
        <DbConn as TransactionManager<DbConn>>::transaction_manager_status_mut(conn).transaction_depth()?.is_some();
    if nested {
        work(conn)
    } else {
        write_tx(conn, work)
    }
}

/// Waits for this process's turn to write to SQLite (see [`write_tx`]) and holds it until the
/// returned value is dropped: no write transaction of the process starts meanwhile. For the
/// checkpoint thread's log restarts.
pub(crate) fn hold_sqlite_writes() -> impl Drop {
    WRITE_GATE.enter()
}

/// The queue of this process's SQLite write transactions (see [`write_tx`]).
static WRITE_GATE: WriteGate = WriteGate { busy: Mutex::new(false), freed: Condvar::new() };

/// Lets one SQLite write transaction of the process run at a time. A writer that waited
/// [`WriteGate::PATIENCE`] goes ahead anyway and leaves the rest to SQLite's `busy_timeout`, so
/// the gate can slow nothing down by more than that (and can never deadlock). Other processes on
/// the same file are still ordered by SQLite's own lock.
struct WriteGate {
    busy: Mutex<bool>,
    freed: Condvar,
}

/// A writer's turn; the next one is let in when it is dropped.
struct Turn(bool);

impl WriteGate {
    const PATIENCE: Duration = Duration::from_secs(5);

    fn enter(&'static self) -> Turn {
        let Ok(mut busy) = self.busy.lock() else { return Turn(false) };
        let deadline = std::time::Instant::now() + Self::PATIENCE;
        while *busy {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Turn(false);
            }
            busy = match self.freed.wait_timeout(busy, left) {
                Ok((guard, _)) => guard,
                Err(_) => return Turn(false),
            };
        }
        *busy = true;
        Turn(true)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.0 {
            if let Ok(mut busy) = WRITE_GATE.busy.lock() {
                *busy = false;
            }
            WRITE_GATE.freed.notify_one();
        }
    }
}

/// Refreshes the query planner's statistics after a bulk change (`seed-demo`, `rebuild-stats`):
/// `ANALYZE` on SQLite — without it SQLite's planner guesses, and counted the overdue cases of a
/// million-case province through the status index (50k rows, 36 ms) instead of the partial index
/// of open deadlines (2.8k rows, < 1 ms) — and `VACUUM (ANALYZE)` on PostgreSQL, which also sets
/// the visibility map so that the overdue count is an index-only scan. Outside any transaction.
pub fn refresh_planner_statistics(conn: &mut DbConn) -> diesel::QueryResult<()> {
    match conn {
        DbConn::Pg(c) => c.batch_execute("VACUUM (ANALYZE)"),
        DbConn::Sqlite(c) => c.batch_execute("ANALYZE"),
    }
}

/// `cases.status IN ('received', 'assigned')` — an open case — as literal SQL. The partial index
/// on open cases' deadlines (`cases_open_due_path`) is only used when the planner sees these
/// values themselves: with bind parameters SQLite, and PostgreSQL's generic plans, cannot prove
/// the index's predicate and scan every case instead.
pub fn case_is_open() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql::<diesel::sql_types::Bool>("cases.status IN ('received', 'assigned')")
}
