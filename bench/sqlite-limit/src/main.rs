//! `sqlite-limit`: the limit beside the API on SQLite. It runs, on `--connections` threads with
//! one connection each (the service's PRAGMAs), the statements the service runs per request —
//! in the same transactions, in the same order, with prepared statements kept per connection as
//! diesel keeps them — for `--warmup` + `--duration` seconds, and prints the same JSON as
//! `loadgen run`. What it leaves out is everything that is not the database: HTTP, JSON, the
//! token check, the thread hop into the blocking pool, logging.
//!
//! ```text
//! sqlite-limit --db FILE --stage create|create-nostats|act|act-nostats|get [--input FILE]
//!              [--user-id ID] [--user-name NAME] [--connections 8] [--duration 20] [--warmup 3]
//!              [--pragma 'name = value' …]   (extra PRAGMAs, for experiments)
//!              [--batch N]   (experiment: N creates per transaction, each in a savepoint)
//!              [--checkpoint-ms MS]   (as MINSHENG_SQLITE_CHECKPOINT_MS: 100; 0 = SQLite's own)
//! ```
//! - `create`: in one `BEGIN IMMEDIATE` transaction, the Idempotency-Key claim (in a savepoint,
//!   as diesel nests it); then the jurisdiction and category reads, the ref counter upsert, the case insert, the `create` event, the kept-sums
//!   upsert (24 rows, eight per statement, as the service does on SQLite), the webhook
//!   subscribers' read and the recorded answer.
//!   `-nostats`: the same without the kept sums.
//! - `act`: assign of a received case (`--input`: `case_id department_id` lines), in one
//!   transaction: the claim, the case read, the department and its jurisdiction, the version-checked update, the event,
//!   the re-read, the kept-sums delta (26 rows), the subscribers, the answer. `-nostats`: without
//!   the kept sums.
//!
//! Write transactions queue on one process-wide lock, as the service's do (`write_tx`).
//! - `get`: the primary-key read of a random case of `--input` (one id per line).

use std::ffi::{c_char, c_int, CStr, CString};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libsqlite3_sys as ffi;

fn main() {
    if let Err(e) = run() {
        eprintln!("sqlite-limit: {e}");
        std::process::exit(2);
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal SQLite wrapper.

struct Db(*mut ffi::sqlite3);
// A connection is used by one thread at a time (each thread opens its own).
unsafe impl Send for Db {}

struct Stmt(*mut ffi::sqlite3_stmt);

/// A bound value.
enum V<'a> {
    T(&'a str),
    I(i64),
    Null,
}

impl Db {
    fn open(path: &str) -> Result<Db, String> {
        let c = CString::new(path).map_err(|e| e.to_string())?;
        let mut db = std::ptr::null_mut();
        let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX;
        let rc = unsafe { ffi::sqlite3_open_v2(c.as_ptr(), &mut db, flags, std::ptr::null()) };
        let db = Db(db);
        if rc != ffi::SQLITE_OK {
            return Err(format!("cannot open {path}: {}", db.errmsg()));
        }
        Ok(db)
    }

    fn errmsg(&self) -> String {
        unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.0)) }.to_string_lossy().into_owned()
    }

    fn exec(&self, sql: &str) -> Result<(), String> {
        let c = CString::new(sql).map_err(|e| e.to_string())?;
        let rc = unsafe { ffi::sqlite3_exec(self.0, c.as_ptr(), None, std::ptr::null_mut(), std::ptr::null_mut()) };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(format!("{sql}: {}", self.errmsg()))
        }
    }

    fn prepare(&self, sql: &str) -> Result<Stmt, String> {
        let c = CString::new(sql).map_err(|e| e.to_string())?;
        let mut st = std::ptr::null_mut();
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(self.0, c.as_ptr(), -1, ffi::SQLITE_PREPARE_PERSISTENT as u32, &mut st, std::ptr::null_mut())
        };
        if rc != ffi::SQLITE_OK {
            return Err(format!("prepare {sql}: {}", self.errmsg()));
        }
        Ok(Stmt(st))
    }

    /// Binds `values`, steps to the end; returns the first column of every row as text (enough
    /// for what this program reads back) and makes SQLite produce every column of every row.
    fn run(&self, st: &Stmt, values: &[V]) -> Result<Vec<Vec<Option<String>>>, String> {
        unsafe {
            ffi::sqlite3_reset(st.0);
            ffi::sqlite3_clear_bindings(st.0);
            for (i, v) in values.iter().enumerate() {
                let i = i as c_int + 1;
                let rc = match v {
                    V::T(s) => ffi::sqlite3_bind_text(st.0, i, s.as_ptr() as *const c_char, s.len() as c_int, ffi::SQLITE_TRANSIENT()),
                    V::I(n) => ffi::sqlite3_bind_int64(st.0, i, *n),
                    V::Null => ffi::sqlite3_bind_null(st.0, i),
                };
                if rc != ffi::SQLITE_OK {
                    return Err(format!("bind: {}", self.errmsg()));
                }
            }
            let mut rows = Vec::new();
            loop {
                match ffi::sqlite3_step(st.0) {
                    ffi::SQLITE_ROW => {
                        // Read every column, as a diesel `Queryable` would.
                        let n = ffi::sqlite3_column_count(st.0);
                        let mut row = Vec::with_capacity(n as usize);
                        for c in 0..n {
                            let p = ffi::sqlite3_column_text(st.0, c);
                            row.push(if p.is_null() {
                                None
                            } else {
                                Some(CStr::from_ptr(p as *const c_char).to_string_lossy().into_owned())
                            });
                        }
                        rows.push(row);
                    }
                    ffi::SQLITE_DONE => break,
                    _ => {
                        let e = self.errmsg();
                        ffi::sqlite3_reset(st.0);
                        return Err(e);
                    }
                }
            }
            ffi::sqlite3_reset(st.0);
            Ok(rows)
        }
    }
}

impl Drop for Stmt {
    fn drop(&mut self) {
        unsafe { ffi::sqlite3_finalize(self.0) };
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        unsafe { ffi::sqlite3_close(self.0) };
    }
}

/// A connection set up exactly as the service's pool sets up each of its connections, plus any
/// `--pragma` given (for experiments).
fn connect(path: &str, extra: &[String]) -> Result<Db, String> {
    let db = Db::open(path)?;
    for pragma in [
        "PRAGMA busy_timeout = 5000",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
        "PRAGMA journal_size_limit = 67108864",
    ] {
        db.exec(pragma)?;
    }
    for pragma in extra {
        db.exec(&format!("PRAGMA {pragma}"))?;
    }
    Ok(db)
}

// ---------------------------------------------------------------------------------------------
// Time, ids and the keys of the kept sums, as the service makes them.

fn unix_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// (year, month, day) of days since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD HH:MM:SS.ffffff`, the stored form of a UTC timestamp.
fn db_time(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06}", s / 3600, s / 60 % 60, s % 60, micros.rem_euclid(1_000_000))
}

/// `YYYY-MM` in China Standard Time.
fn month_cst(micros: i64) -> String {
    let (y, m, _) = civil((micros / 1_000_000 + 8 * 3600).div_euclid(86_400));
    format!("{y:04}-{m:02}")
}

fn year_cst(micros: i64) -> i64 {
    civil((micros / 1_000_000 + 8 * 3600).div_euclid(86_400)).0
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A UUID v7, as `Uuid::now_v7()` makes the service's ids.
fn uuid_v7(rng: &mut Rng) -> String {
    let ms = (unix_micros() / 1000) as u64;
    let (a, b) = (rng.next(), rng.next());
    format!(
        "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
        ms >> 16,
        ms & 0xffff,
        a & 0xfff,
        0x8000 | ((a >> 12) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

const CASE_COLUMNS: &str = "id, ref, kind, title, description, category_code, jurisdiction_code, jurisdiction_path, \
    programme_id, channel, priority, complainant_name, complainant_phone, location_address, location_lat, location_lon, \
    status, outcome, department_id, assignee_id, due_at, acknowledged_at, resolved_at, resolved_by, resolution, \
    verified_at, closed_at, satisfaction, rework_count, duplicate_of, external_source, external_id, created_by, \
    created_at, updated_at, version, first_assigned_at, first_acknowledged_at, responded, resolved_on_time, resolution_secs, \
    overdue_notified_at, complainant_email, media_url, address_id, attributes";

/// Kept-sum rows per upsert, as the service writes them on SQLite (`db::stats::SQLITE_ROWS`).
const STATS_ROWS: usize = 8;

/// The service's kept-sums upsert on SQLite: [`STATS_ROWS`] rows, each adding its deltas,
/// `RETURNING total` (diesel loads the returned rows).
fn stats_upsert() -> String {
    let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    format!(
        "INSERT INTO case_stats (node, dim, dim_value, basis, month, total, dismissed, resolved, \
         completed, on_time, assigned, responded, rated, satisfied, resolution_secs) VALUES {} \
         ON CONFLICT (node, dim, dim_value, basis, month) DO UPDATE SET total = case_stats.total + excluded.total, \
         dismissed = case_stats.dismissed + excluded.dismissed, resolved = case_stats.resolved + excluded.resolved, \
         completed = case_stats.completed + excluded.completed, on_time = case_stats.on_time + excluded.on_time, \
         assigned = case_stats.assigned + excluded.assigned, responded = case_stats.responded + excluded.responded, \
         rated = case_stats.rated + excluded.rated, satisfied = case_stats.satisfied + excluded.satisfied, \
         resolution_secs = case_stats.resolution_secs + excluded.resolution_secs RETURNING total",
        vec![row; STATS_ROWS].join(", ")
    )
}

/// One kept-sums row delta: key and the ten counters (total … resolution_secs).
struct StatDelta {
    node: String,
    dim: &'static str,
    value: String,
    basis: &'static str,
    month: String,
    counters: [i64; 10],
}

/// The rows a case adds or changes, in the service's order (node, dim, value, basis, month):
/// for every node on its path the whole, per category and per kind, by creation and by deadline
/// month; per department when it has one, all time (basis `a`, no month) at every node and by
/// month at its own node.
fn stat_rows(path: &str, category: &str, dept: Option<&str>, months: [&str; 2], common: [i64; 10], dept_row: [i64; 10]) -> Vec<StatDelta> {
    let nodes: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut rows = Vec::with_capacity(32);
    for (i, node) in nodes.iter().enumerate() {
        let own = i + 1 == nodes.len();
        let monthly = vec![("c", months[0]), ("d", months[1])];
        let mut dims: Vec<(&'static str, &str, [i64; 10], Vec<(&'static str, &str)>)> = vec![
            ("", "", common, monthly.clone()),
            ("category", category, common, monthly.clone()),
            ("kind", "complaint", common, monthly.clone()),
        ];
        if let Some(d) = dept {
            let mut bases = if own { monthly } else { Vec::new() };
            bases.push(("a", ""));
            dims.insert(2, ("department", d, dept_row, bases));
        }
        for (dim, value, counters, bases) in dims {
            for (basis, month) in bases {
                rows.push(StatDelta {
                    node: (*node).to_owned(),
                    dim,
                    value: value.to_owned(),
                    basis,
                    month: (*month).to_owned(),
                    counters,
                });
            }
        }
    }
    rows
}

/// The rows in statements of [`STATS_ROWS`], a short last one filled up with rows of the first
/// one's key that add nothing, as the service does.
fn upsert_stats(db: &Db, st: &Stmt, rows: &[StatDelta]) -> Result<(), String> {
    for chunk in rows.chunks(STATS_ROWS) {
        let mut values: Vec<V> = Vec::with_capacity(STATS_ROWS * 15);
        for i in 0..STATS_ROWS {
            let (r, real) = match chunk.get(i) {
                Some(r) => (r, true),
                None => (&chunk[0], false),
            };
            values.extend([V::T(&r.node), V::T(r.dim), V::T(&r.value), V::T(r.basis), V::T(&r.month)]);
            values.extend(r.counters.iter().map(|&n| V::I(if real { n } else { 0 })));
        }
        db.run(st, &values)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The work of one request.

struct Shared {
    stage: String,
    townships: Vec<String>,
    categories: Vec<String>,
    ids: Vec<String>,
    act: Vec<(String, String)>,
    next: AtomicUsize,
    user_id: String,
    user_name: String,
    batch: usize,
}

struct Prepared {
    begin: Stmt,
    commit: Stmt,
    rollback: Stmt,
    jurisdiction: Stmt,
    category: Stmt,
    department: Stmt,
    ref_counter: Stmt,
    insert_case: Stmt,
    insert_event: Stmt,
    get_case: Stmt,
    update_case: Stmt,
    stats: Stmt,
    idem_claim: Stmt,
    idem_complete: Stmt,
    webhooks: Stmt,
}

fn prepare(db: &Db) -> Result<Prepared, String> {
    let placeholders = vec!["?"; CASE_COLUMNS.split(',').count()].join(", ");
    Ok(Prepared {
        begin: db.prepare("BEGIN IMMEDIATE")?,
        commit: db.prepare("COMMIT")?,
        rollback: db.prepare("ROLLBACK")?,
        jurisdiction: db.prepare(
            "SELECT code, name, parent_code, path, depth, created_at, updated_at FROM jurisdictions WHERE code = ? LIMIT ?",
        )?,
        category: db.prepare("SELECT code, name, deadline_days, active, created_at, updated_at FROM categories WHERE code = ? LIMIT ?")?,
        department: db.prepare(
            "SELECT id, name, jurisdiction_code, active, created_at, updated_at FROM departments WHERE id = ? LIMIT ?",
        )?,
        ref_counter: db.prepare(
            "INSERT INTO ref_counters (prefix, last) VALUES (?, ?) ON CONFLICT (prefix) DO UPDATE SET last = last + ? RETURNING last",
        )?,
        insert_case: db.prepare(&format!("INSERT INTO cases ({CASE_COLUMNS}) VALUES ({placeholders})"))?,
        insert_event: db.prepare(
            "INSERT INTO case_events (case_id, seq, action, from_status, to_status, actor_id, actor_name, at, note, data) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?,
        get_case: db.prepare(&format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = ? LIMIT ?"))?,
        update_case: db.prepare(
            "UPDATE cases SET status = ?, outcome = ?, department_id = ?, assignee_id = ?, due_at = ?, acknowledged_at = ?, \
             resolved_at = ?, resolved_by = ?, resolution = ?, verified_at = ?, closed_at = ?, satisfaction = ?, \
             rework_count = ?, duplicate_of = ?, updated_at = ?, version = ?, first_assigned_at = ?, \
             first_acknowledged_at = ?, responded = ?, resolved_on_time = ?, resolution_secs = ?, \
             overdue_notified_at = ? WHERE id = ? AND version = ?",
        )?,
        stats: db.prepare(&stats_upsert())?,
        idem_claim: db.prepare(
            "INSERT OR IGNORE INTO idempotency_keys (principal_id, key, request_hash, claimed_at, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )?,
        idem_complete: db.prepare(
            "UPDATE idempotency_keys SET status = ?, response_body = ?, response_headers = ? WHERE principal_id = ? AND key = ?",
        )?,
        webhooks: db.prepare(
            "SELECT id, owner_id, owner_kind, owner_role, scope_path, url, events, secret, active, disabled_reason, \
             failing_since, created_at, updated_at FROM webhooks WHERE active = ? ORDER BY id",
        )?,
    })
}

/// The service's queue of write transactions (`src/db/mod.rs`, `write_tx`): one writer of the
/// process at a time, woken as soon as the previous one commits, instead of SQLite's sleeping
/// busy handler.
static WRITE_GATE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `work` in `BEGIN IMMEDIATE … COMMIT` (rolled back on error), in the write queue.
fn tx(db: &Db, p: &Prepared, work: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let _turn = WRITE_GATE.lock().map_err(|_| "write gate poisoned")?;
    db.run(&p.begin, &[])?;
    match work() {
        Ok(()) => db.run(&p.commit, &[]).map(|_| ()),
        Err(e) => {
            let _ = db.run(&p.rollback, &[]);
            Err(e)
        }
    }
}

/// The Idempotency-Key claim, the first statement of the work's transaction
/// (`src/service/idempotency.rs`, `src/routes/idempotent.rs`).
fn claim(db: &Db, p: &Prepared, s: &Shared, rng: &mut Rng) -> Result<String, String> {
    let key = format!("limit-{:016x}{:016x}", rng.next(), rng.next());
    let hash = format!("{:016x}{:016x}{:016x}{:016x}", rng.next(), rng.next(), rng.next(), rng.next());
    let t = unix_micros();
    let (now, expires) = (db_time(t), db_time(t + 86_400 * 1_000_000));
    db.run(&p.idem_claim, &[V::T(&s.user_id), V::T(&key), V::T(&hash), V::T(&now), V::T(&now), V::T(&expires)])?;
    Ok(key)
}

/// The end of the work's transaction: the webhook subscribers looked up, the answer recorded
/// (a body of the size the service stores).
fn finish(db: &Db, p: &Prepared, s: &Shared, key: &str, status: i64, headers: &str) -> Result<(), String> {
    db.run(&p.webhooks, &[V::I(1)])?;
    let body = "x".repeat(1400);
    db.run(&p.idem_complete, &[V::I(status), V::T(&body), V::T(headers), V::T(&s.user_id), V::T(key)])?;
    Ok(())
}

fn col<'a>(rows: &'a [Vec<Option<String>>], i: usize) -> Result<&'a str, String> {
    rows.first().and_then(|r| r.get(i)).and_then(|v| v.as_deref()).ok_or_else(|| "missing row".to_owned())
}

fn create(db: &Db, p: &Prepared, s: &Shared, rng: &mut Rng, stats: bool) -> Result<(), String> {
    if s.batch > 1 {
        // Experiment (--batch N): N creates in one transaction, each in its own savepoint, as a
        // group commit in the service would run them.
        return tx(db, p, || {
            for _ in 0..s.batch {
                db.exec("SAVEPOINT one")?;
                create_one(db, p, s, rng, stats).map(|_| ())?;
                db.exec("RELEASE one")?;
            }
            Ok(())
        });
    }
    tx(db, p, || {
        let key = claim(db, p, s, rng)?;
        let id = create_one(db, p, s, rng, stats)?;
        finish(db, p, s, &key, 201, &format!(r#"[["Location","/api/v1/cases/{id}"],["ETag","\"1\""]]"#))
    })
}

fn create_one(db: &Db, p: &Prepared, s: &Shared, rng: &mut Rng, stats: bool) -> Result<String, String> {
    let code = s.townships[rng.below(s.townships.len())].clone();
    let cat = s.categories[rng.below(s.categories.len())].clone();
    let id = uuid_v7(rng);
    {
        let j = db.run(&p.jurisdiction, &[V::T(&code), V::I(1)])?;
        let path = col(&j, 3)?.to_owned();
        let c = db.run(&p.category, &[V::T(&cat), V::I(1)])?;
        let days: i64 = col(&c, 2)?.parse().map_err(|_| "deadline_days")?;
        let t = unix_micros();
        let due = t + days * 86_400 * 1_000_000;
        let prefix = format!("{code}-{}", year_cst(t));
        let n: i64 = col(&db.run(&p.ref_counter, &[V::T(&prefix), V::I(1), V::I(1)])?, 0)?.parse().map_err(|_| "last")?;
        let case_ref = format!("{prefix}-{n:06}");
        let (now, due_s) = (db_time(t), db_time(due));
        let values = [
            V::T(&id),
            V::T(&case_ref),
            V::T("complaint"),
            V::T("村里自来水停水三天"),
            V::T("凤凰街道某村自来水停水三天，村民生活用水困难，请尽快处理。"),
            V::T(&cat),
            V::T(&code),
            V::T(&path),
            V::Null,
            V::T("hotline"),
            V::T("normal"),
            V::T("张三丰"),
            V::T("13812345678"),
            V::Null,
            V::Null,
            V::Null,
            V::T("received"),
            V::Null,
            V::Null,
            V::Null,
            V::T(&due_s),
            V::Null,
            V::Null,
            V::Null,
            V::Null,
            V::Null,
            V::Null,
            V::Null,
            V::I(0),
            V::Null,
            V::Null,
            V::Null,
            V::T(&s.user_id),
            V::T(&now),
            V::T(&now),
            V::I(1),
            V::Null,
            V::Null,
            V::I(0),
            V::Null,
            V::Null,
            V::Null,
            V::Null,
            V::Null,
            V::Null,
            V::Null,
        ];
        db.run(&p.insert_case, &values)?;
        let data = format!(
            r#"{{"category_code":"{cat}","channel":"hotline","due_at":"{}Z","kind":"complaint"}}"#,
            due_s.replace(' ', "T")
        );
        db.run(
            &p.insert_event,
            &[V::T(&id), V::I(1), V::T("create"), V::Null, V::T("received"), V::T(&s.user_id), V::T(&s.user_name), V::T(&now), V::Null, V::T(&data)],
        )?;
        if stats {
            let mut total = [0i64; 10];
            total[0] = 1;
            let rows = stat_rows(&path, &cat, None, [&month_cst(t), &month_cst(due)], total, total);
            upsert_stats(db, &p.stats, &rows)?;
        }
        Ok(id)
    }
}

fn act(db: &Db, p: &Prepared, s: &Shared, rng: &mut Rng, stats: bool) -> Result<bool, String> {
    let i = s.next.fetch_add(1, Ordering::Relaxed);
    let Some((case_id, dept)) = s.act.get(i) else { return Ok(false) };
    tx(db, p, || {
        let key = claim(db, p, s, rng)?;
        let case = db.run(&p.get_case, &[V::T(case_id), V::I(1)])?;
        let (path, cat, due, created, status) = (col(&case, 7)?, col(&case, 5)?, col(&case, 20)?, col(&case, 33)?, col(&case, 16)?);
        if status != "received" {
            return Err(format!("case {case_id} is {status}, not received"));
        }
        let d = db.run(&p.department, &[V::T(dept), V::I(1)])?;
        db.run(&p.jurisdiction, &[V::T(col(&d, 2)?), V::I(1)])?;
        let now = db_time(unix_micros());
        let n = db.run(
            &p.update_case,
            &[
                V::T("assigned"),
                V::Null,
                V::T(dept),
                V::Null,
                V::T(due),
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                V::I(0),
                V::Null,
                V::T(&now),
                V::I(2),
                V::T(&now),
                V::Null,
                V::I(0),
                V::Null,
                V::Null,
                V::Null,
                V::T(case_id),
                V::I(1),
            ],
        )?;
        let _ = n;
        let data = format!(r#"{{"assignee_id":null,"department_id":"{dept}"}}"#);
        db.run(
            &p.insert_event,
            &[V::T(case_id), V::I(2), V::T("assign"), V::T("received"), V::T("assigned"), V::T(&s.user_id), V::T(&s.user_name), V::T(&now), V::T("请三日内处理"), V::T(&data)],
        )?;
        let updated = db.run(&p.get_case, &[V::T(case_id), V::I(1)])?;
        if stats {
            // Month keys from the stored times (`YYYY-MM-DD HH:MM:SS…` UTC → CST month).
            let micros = |t: &str| -> Result<i64, String> {
                let n = |a: usize, b: usize| t.get(a..b).and_then(|x| x.parse::<i64>().ok()).ok_or("bad time");
                let (y, m, d, hh, mm, ss) = (n(0, 4)?, n(5, 7)?, n(8, 10)?, n(11, 13)?, n(14, 16)?, n(17, 19)?);
                let days = days_from_civil(y, m as u32, d as u32);
                Ok(((days * 86_400) + hh * 3600 + mm * 60 + ss) * 1_000_000)
            };
            let months = [month_cst(micros(created)?), month_cst(micros(col(&updated, 20)?)?)];
            let mut assigned = [0i64; 10];
            assigned[5] = 1;
            let mut dept_row = [0i64; 10];
            dept_row[0] = 1;
            dept_row[5] = 1;
            let rows = stat_rows(path, cat, Some(dept), [&months[0], &months[1]], assigned, dept_row);
            upsert_stats(db, &p.stats, &rows)?;
        }
        finish(db, p, s, &key, 200, r#"[["ETag","\"2\""]]"#)
    })?;
    Ok(true)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn get(db: &Db, p: &Prepared, s: &Shared, rng: &mut Rng) -> Result<(), String> {
    let id = &s.ids[rng.below(s.ids.len())];
    let rows = db.run(&p.get_case, &[V::T(id), V::I(1)])?;
    if rows.is_empty() {
        return Err(format!("no case {id}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut db_path = None;
    let mut pragmas: Vec<String> = Vec::new();
    let mut batch = 1usize;
    let mut checkpoint_ms = 100u64;
    let (mut stage, mut input, mut connections, mut duration, mut warmup) = (String::new(), None, 8usize, 20.0f64, 3.0f64);
    let (mut user_id, mut user_name) = ("bench-limit".to_owned(), "bench-limit".to_owned());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--db" => db_path = Some(val()?),
            "--stage" => stage = val()?,
            "--input" => input = Some(val()?),
            "--connections" | "-c" => connections = val()?.parse().map_err(|_| "bad --connections")?,
            "--duration" | "-d" => duration = val()?.parse().map_err(|_| "bad --duration")?,
            "--warmup" => warmup = val()?.parse().map_err(|_| "bad --warmup")?,
            "--user-id" => user_id = val()?,
            "--user-name" => user_name = val()?,
            "--pragma" => pragmas.push(val()?),
            "--batch" => batch = val()?.parse().map_err(|_| "bad --batch")?,
            "--checkpoint-ms" => checkpoint_ms = val()?.parse().map_err(|_| "bad --checkpoint-ms")?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let db_path = db_path.ok_or("--db is required")?;
    let lines = |path: &Option<String>| -> Result<Vec<String>, String> {
        let path = path.as_deref().ok_or("--input is required for this stage")?;
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
    };
    let setup = connect(&db_path, &pragmas)?;
    let mut shared = Shared {
        stage: stage.clone(),
        townships: Vec::new(),
        categories: Vec::new(),
        ids: Vec::new(),
        act: Vec::new(),
        next: AtomicUsize::new(0),
        user_id,
        user_name,
        batch,
    };
    match stage.as_str() {
        "create" | "create-nostats" => {
            let st = setup.prepare("SELECT code FROM jurisdictions WHERE depth = 3 ORDER BY code")?;
            shared.townships = setup.run(&st, &[])?.into_iter().filter_map(|r| r.into_iter().next().flatten()).collect();
            let st = setup.prepare("SELECT code FROM categories WHERE active ORDER BY code")?;
            shared.categories = setup.run(&st, &[])?.into_iter().filter_map(|r| r.into_iter().next().flatten()).collect();
            if shared.townships.is_empty() || shared.categories.is_empty() {
                return Err("no townships or categories: seed the database first".to_owned());
            }
        }
        "act" | "act-nostats" => {
            shared.act = lines(&input)?
                .iter()
                .filter_map(|l| l.split_once(char::is_whitespace).map(|(a, b)| (a.to_owned(), b.trim().to_owned())))
                .collect();
        }
        "get" => shared.ids = lines(&input)?,
        other => return Err(format!("unknown stage {other:?}")),
    }
    drop(setup);
    let shared = Arc::new(shared);
    let barrier = Arc::new(Barrier::new(connections + 1));
    let t0 = Arc::new(std::sync::OnceLock::<Instant>::new());
    let (warm, dur) = (Duration::from_secs_f64(warmup), Duration::from_secs_f64(duration));
    // The service's checkpoints: its connections do not checkpoint in their commits, a thread
    // runs a passive checkpoint every MINSHENG_SQLITE_CHECKPOINT_MS (src/db/checkpoint.rs).
    let checkpointing = Arc::new(std::sync::atomic::AtomicBool::new(checkpoint_ms > 0));
    let mut pragmas = pragmas;
    if checkpoint_ms > 0 {
        pragmas.insert(0, "wal_autocheckpoint = 0".to_owned());
        let (flag, path) = (checkpointing.clone(), db_path.clone());
        std::thread::spawn(move || -> Result<(), String> {
            let db = connect(&path, &[])?;
            let passive = db.prepare("PRAGMA wal_checkpoint(PASSIVE)")?;
            let restart = db.prepare("PRAGMA wal_checkpoint(RESTART)")?;
            while flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(checkpoint_ms));
                // As the service: a log past 16,384 pages is restarted in the write queue, the
                // wait for readers bounded to 200 ms.
                let rows = db.run(&passive, &[])?;
                let log: i64 = col(&rows, 1)?.parse().unwrap_or(0);
                if log >= 16_384 {
                    let _turn = WRITE_GATE.lock().map_err(|_| "write gate poisoned")?;
                    db.exec("PRAGMA busy_timeout = 200")?;
                    let done = db.run(&restart, &[]);
                    db.exec("PRAGMA busy_timeout = 5000")?;
                    done?;
                }
            }
            Ok(())
        });
    }
    let mut handles = Vec::new();
    for thread in 0..connections {
        let (shared, barrier, t0, db_path, pragmas) =
            (shared.clone(), barrier.clone(), t0.clone(), db_path.clone(), pragmas.clone());
        handles.push(std::thread::spawn(move || -> Result<(Vec<u32>, u64, Vec<String>, bool), String> {
            let db = connect(&db_path, &pragmas)?;
            let p = prepare(&db)?;
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((thread as u64 + 1) * 0x1000_0001) ^ unix_micros() as u64);
            let (mut lat, mut errors, mut samples, mut exhausted) = (Vec::with_capacity(1 << 16), 0u64, Vec::new(), false);
            barrier.wait();
            let Some(&start) = t0.get() else { return Ok((lat, errors, samples, exhausted)) };
            let (from, end) = (start + warm, start + warm + dur);
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let r = match shared.stage.as_str() {
                    "create" => create(&db, &p, &shared, &mut rng, true),
                    "create-nostats" => create(&db, &p, &shared, &mut rng, false),
                    "act" | "act-nostats" => match act(&db, &p, &shared, &mut rng, shared.stage == "act") {
                        Ok(true) => Ok(()),
                        Ok(false) => {
                            exhausted = true;
                            break;
                        }
                        Err(e) => Err(e),
                    },
                    _ => get(&db, &p, &shared, &mut rng),
                };
                let done = Instant::now();
                match r {
                    Ok(()) if sent >= from => {
                        let n = if shared.stage.starts_with("create") { shared.batch } else { 1 };
                        for _ in 0..n {
                            lat.push(u32::try_from((done - sent).as_micros()).unwrap_or(u32::MAX));
                        }
                    }
                    Ok(()) => {}
                    Err(e) => {
                        errors += 1;
                        if samples.len() < 3 {
                            samples.push(e);
                        }
                    }
                }
            }
            Ok((lat, errors, samples, exhausted))
        }));
    }
    let _ = t0.set(Instant::now());
    barrier.wait();
    let mut all = Vec::new();
    let (mut errors, mut samples, mut exhausted) = (0u64, Vec::new(), false);
    for h in handles {
        let (lat, e, s, x) = h.join().map_err(|_| "a thread panicked")??;
        all.extend(lat);
        errors += e;
        samples.extend(s);
        exhausted |= x;
    }
    if exhausted {
        errors += 1;
        samples.push("input exhausted: not enough cases prepared for the run".to_owned());
    }
    all.sort_unstable();
    let pct = |p: f64| {
        let i = ((p / 100.0) * all.len() as f64).ceil() as usize;
        all.get(i.clamp(1, all.len().max(1)) - 1).map_or(0.0, |&x| f64::from(x) / 1000.0)
    };
    let mut out = format!(
        r#"{{"stage":"{stage}","connections":{connections},"duration_s":{duration:.2},"requests":{},"rps":{:.1},"p50_ms":{:.3},"p99_ms":{:.3},"errors":{errors},"error_samples":["#,
        all.len(),
        all.len() as f64 / duration,
        pct(50.0),
        pct(99.0)
    );
    for (i, s) in samples.iter().take(3).enumerate() {
        let _ = write!(out, r#"{}"{}""#, if i > 0 { "," } else { "" }, s.replace(['"', '\\'], "'"));
    }
    out.push_str("]}");
    println!("{out}");
    Ok(())
}
