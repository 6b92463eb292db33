//! Queries on the kept statistics sums and on the open cases they cannot keep (overdue).

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{case_stats, case_stats_histogram, cases, jurisdictions};
use super::DbConn;
use crate::domain::stats::{self as domain, encode_hours, median_of, Histogram, HourDeltas, SumDeltas};

/// A row of kept sums.
#[derive(Debug, Clone, Default, Queryable, Selectable, Insertable)]
#[diesel(table_name = case_stats)]
pub struct StatRow {
    pub node: String,
    pub dim: String,
    pub dim_value: String,
    pub basis: String,
    pub month: String,
    pub total: i64,
    pub dismissed: i64,
    pub resolved: i64,
    pub completed: i64,
    pub on_time: i64,
    pub assigned: i64,
    pub responded: i64,
    pub rated: i64,
    pub satisfied: i64,
    pub resolution_secs: i64,
}

/// A row of the resolution-hour histogram: one kept-sums key's non-empty hours, `hours:cases`
/// pairs (see `domain::stats::encode_hours`), and their median. As a delta for [`add`], the
/// changes to the hours (the median is then worked out anew from the row they change).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = case_stats_histogram)]
pub struct HistRow {
    pub node: String,
    pub dim: String,
    pub dim_value: String,
    pub basis: String,
    pub month: String,
    pub counts: String,
    pub median: Option<f64>,
}

/// A kept-sums key as its five stored columns: node, dim, dim_value, basis, month.
fn key_columns(k: domain::Key) -> (String, String, String, String, String) {
    (k.node, k.dim.to_owned(), k.value, k.basis.code().to_owned(), k.month)
}

/// The stored rows for kept-sum deltas (as made by `domain::stats::delta`), in key order.
pub fn rows_of(sums: SumDeltas, hours: HourDeltas) -> (Vec<StatRow>, Vec<HistRow>) {
    let rows: Vec<StatRow> = sums
        .into_iter()
        .map(|(k, c)| {
            let (node, dim, dim_value, basis, month) = key_columns(k);
            StatRow {
                node,
                dim,
                dim_value,
                basis,
                month,
                total: c.total,
                dismissed: c.dismissed,
                resolved: c.resolved,
                completed: c.completed,
                on_time: c.on_time,
                assigned: c.assigned,
                responded: c.responded,
                rated: c.rated,
                satisfied: c.satisfied,
                resolution_secs: c.resolution_secs,
            }
        })
        .collect();
    let hours: Vec<HistRow> = hours
        .into_iter()
        .map(|(k, changes)| {
            let (node, dim, dim_value, basis, month) = key_columns(k);
            HistRow {
                node,
                dim,
                dim_value,
                basis,
                month,
                // The median of these hours, for a whole row (`seed-demo`, `rebuild-stats`); a
                // change applied by [`add`] gets the median of the row it changes instead.
                median: median_of(changes.iter().map(|(h, n)| (*h, *n))),
                counts: encode_hours(changes),
            }
        })
        .collect();
    (rows, hours)
}

/// The most rows of kept sums one upsert takes as a prepared statement (one statement per row
/// count; a transaction that changes many cases writes them unprepared).
const PREPARED_ROWS: usize = 64;

/// Adds deltas to the kept sums (one statement per table on PostgreSQL, one per
/// [`SQLITE_ROWS`] rows on SQLite) and to the histograms (read, changed and written back per key,
/// under the row's lock).
pub fn add(conn: &mut DbConn, rows: &[StatRow], hours: &[HistRow]) -> QueryResult<()> {
    // PostgreSQL takes all rows in one statement (one round trip); SQLite a few per statement.
    match conn {
        // A create writes 24 rows, an action up to 30: a few shapes, each prepared once.
        DbConn::Pg(c) if !rows.is_empty() && rows.len() <= PREPARED_ROWS => {
            super::Prepared::new(SumRowsUpsert(rows)).run::<i64, _>(c)?;
        }
        DbConn::Pg(c) => {
            if !rows.is_empty() {
                SumRowsUpsert(rows).execute(c)?;
            }
        }
        DbConn::Sqlite(c) => {
            // Always SQLITE_ROWS rows, so always one text: a short last chunk is filled up with
            // copies of its first row that add nothing. SQLite applies an upsert's rows one after
            // the other, so such a copy finds the row just written and adds zero to it.
            enum SumRows {}
            for chunk in rows.chunks(SQLITE_ROWS) {
                let filled: Vec<StatRow>;
                let full = match chunk.first() {
                    Some(first) if chunk.len() < SQLITE_ROWS => {
                        let nothing = adding_nothing_to(first);
                        filled = chunk
                            .iter()
                            .cloned()
                            .chain(std::iter::repeat_n(nothing, SQLITE_ROWS - chunk.len()))
                            .collect();
                        &filled[..]
                    }
                    _ => chunk,
                };
                super::Prepared::by_type::<SumRows>(SumRowsUpsert(full)).run::<i64, _>(c)?;
            }
        }
    }
    for change in hours {
        add_to_histogram(conn, change)?;
    }
    Ok(())
}

/// Kept-sum rows per SQLite upsert. The kept sums were 30 % of a SQLite create's CPU, a third of
/// that in diesel rather than SQLite: walking the DSL upsert's expression tree (the ten
/// `excluded` additions) to bind each row, and a statement's round per row. [`SumRowsUpsert`]
/// binds without the tree, eight rows a statement: a create writes 24 rows (three statements), an
/// action up to 30 (four, the last filled up). SQLite alone does a multi-row upsert no faster than
/// one row at a time; the gain is diesel's (docs/BENCHMARKS.md, change 27).
const SQLITE_ROWS: usize = 8;

/// A row with `row`'s key and no change to its sums.
fn adding_nothing_to(row: &StatRow) -> StatRow {
    StatRow {
        node: row.node.clone(),
        dim: row.dim.clone(),
        dim_value: row.dim_value.clone(),
        basis: row.basis.clone(),
        month: row.month.clone(),
        ..StatRow::default()
    }
}

/// One upsert of several kept-sum rows, on either backend: `INSERT … VALUES (…), (…) ON CONFLICT
/// DO UPDATE` adding each row's deltas to the stored sums, `RETURNING total` (see
/// `Prepared::run`). Written out rather than in diesel's DSL, which cannot batch an upsert on
/// SQLite and walks a deep expression tree per row. Its text depends only on the number of rows
/// (every column is bound): SQLite always gets [`SQLITE_ROWS`] and finds it in the statement cache
/// by type; PostgreSQL gets all rows at once and finds it by its text when wrapped in `Prepared`.
struct SumRowsUpsert<'a>(&'a [StatRow]);

impl<DB> diesel::query_builder::QueryFragment<DB> for SumRowsUpsert<'_>
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<diesel::sql_types::Text>
        + diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>,
    String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, DB>) -> QueryResult<()> {
        // Unwrapped, its text varies with the number of rows: not for the statement cache.
        out.unsafe_to_cache_prepared();
        use diesel::sql_types::{BigInt, Text};
        out.push_sql(
            "INSERT INTO case_stats (node, dim, dim_value, basis, month, total, dismissed, resolved, completed, \
             on_time, assigned, responded, rated, satisfied, resolution_secs) VALUES ",
        );
        for (i, r) in self.0.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            for (j, text) in [&r.node, &r.dim, &r.dim_value, &r.basis, &r.month].into_iter().enumerate() {
                if j > 0 {
                    out.push_sql(", ");
                }
                out.push_bind_param::<Text, String>(text)?;
            }
            for n in [
                &r.total,
                &r.dismissed,
                &r.resolved,
                &r.completed,
                &r.on_time,
                &r.assigned,
                &r.responded,
                &r.rated,
                &r.satisfied,
                &r.resolution_secs,
            ] {
                out.push_sql(", ");
                out.push_bind_param::<BigInt, i64>(n)?;
            }
            out.push_sql(")");
        }
        out.push_sql(
            " ON CONFLICT (node, dim, dim_value, basis, month) DO UPDATE SET \
             total = case_stats.total + excluded.total, dismissed = case_stats.dismissed + excluded.dismissed, \
             resolved = case_stats.resolved + excluded.resolved, completed = case_stats.completed + excluded.completed, \
             on_time = case_stats.on_time + excluded.on_time, assigned = case_stats.assigned + excluded.assigned, \
             responded = case_stats.responded + excluded.responded, rated = case_stats.rated + excluded.rated, \
             satisfied = case_stats.satisfied + excluded.satisfied, resolution_secs = case_stats.resolution_secs + excluded.resolution_secs \
             RETURNING total",
        );
        Ok(())
    }
}

impl diesel::query_builder::Query for SumRowsUpsert<'_> {
    type SqlType = diesel::sql_types::BigInt;
}

impl diesel::query_builder::QueryId for SumRowsUpsert<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Conn> RunQueryDsl<Conn> for SumRowsUpsert<'_> {}

/// Kept-sum deltas held back until their write transaction commits (see [`add_at_commit`]).
#[derive(Default)]
struct Deferred {
    /// Inside an outermost [`super::write_tx`] of this thread.
    open: bool,
    batches: Vec<(SumDeltas, HourDeltas)>,
}

thread_local! {
    /// A unit of work runs on one thread from `BEGIN` to `COMMIT` (one `web::block`), so the
    /// deltas of its transaction are this thread's.
    static DEFERRED: std::cell::RefCell<Deferred> = std::cell::RefCell::default();
}

/// Adds deltas to the kept sums when the caller's write transaction commits, or now outside of
/// one. Every create and action adds to the same few rows (its province's, city's and county's
/// counters), and an upsert locks them until the commit: written first, they were held for the
/// rest of the transaction (the event, the webhook subscribers, the recorded answer) and queued
/// every concurrent writer behind them. Written last, they are held for the commit only.
pub fn add_at_commit(conn: &mut DbConn, sums: SumDeltas, hours: HourDeltas) -> QueryResult<()> {
    let now = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if !d.open {
            return Some((sums, hours));
        }
        d.batches.push((sums, hours));
        None
    });
    match now {
        Some((sums, hours)) => {
            let (rows, hours) = rows_of(sums, hours);
            add(conn, &rows, &hours)
        }
        None => Ok(()),
    }
}

/// The outermost write transaction of this thread began: deltas are held from now on, until the
/// returned guard is dropped (after the commit or the rollback).
pub(super) fn hold_until_commit() -> HoldGuard {
    DEFERRED.with(|d| *d.borrow_mut() = Deferred { open: true, batches: Vec::new() });
    HoldGuard
}

/// Ends the holding of [`hold_until_commit`], dropping whatever was not written.
pub(super) struct HoldGuard;

impl Drop for HoldGuard {
    fn drop(&mut self) {
        DEFERRED.with(|d| *d.borrow_mut() = Deferred::default());
    }
}

/// How many batches are held: a savepoint's mark, to [`forget_since`] on its rollback.
pub(super) fn held_mark() -> usize {
    DEFERRED.with(|d| d.borrow().batches.len())
}

/// Drops the batches held since `mark` (their savepoint was rolled back).
pub(super) fn forget_since(mark: usize) {
    DEFERRED.with(|d| d.borrow_mut().batches.truncate(mark));
}

/// Writes the held deltas, just before the commit: merged per key (a transaction that changes
/// several cases adds to many rows twice, and one PostgreSQL upsert cannot change a row twice),
/// in key order, so concurrent transactions lock shared rows in the same order.
pub(super) fn write_held(conn: &mut DbConn) -> QueryResult<()> {
    let batches = DEFERRED.with(|d| std::mem::take(&mut d.borrow_mut().batches));
    if batches.is_empty() {
        return Ok(());
    }
    let (mut sums, mut hours) = (SumDeltas::new(), HourDeltas::new());
    for (s, h) in batches {
        domain::add_sums(&mut sums, s);
        domain::add_hours(&mut hours, h);
    }
    let (rows, hours) = rows_of(sums, hours);
    add(conn, &rows, &hours)
}

/// Applies one key's histogram change. The row is made to exist, then read under a row lock
/// (`FOR UPDATE` on PostgreSQL; SQLite's write transaction is the lock), so concurrent changes to
/// one key queue rather than overwrite each other. Keys are taken in the callers' sorted order,
/// as the sums' rows are, so two transactions cannot wait on each other.
fn add_to_histogram(conn: &mut DbConn, change: &HistRow) -> QueryResult<()> {
    use case_stats_histogram::dsl as h;
    let fresh = HistRow { counts: String::new(), median: None, ..change.clone() };
    macro_rules! key {
        () => {
            h::case_stats_histogram
                .filter(h::node.eq(&change.node))
                .filter(h::dim.eq(&change.dim))
                .filter(h::dim_value.eq(&change.dim_value))
                .filter(h::basis.eq(&change.basis))
                .filter(h::month.eq(&change.month))
        };
    }
    // The row made to exist, if it does not (returns it only when made).
    macro_rules! make {
        () => {
            diesel::insert_into(h::case_stats_histogram).values(&fresh).on_conflict_do_nothing()
        };
    }
    let stored: String = match conn {
        DbConn::Pg(c) => {
            super::Prepared::new(make!().returning(h::node)).run::<String, _>(c)?;
            key!().select(h::counts).for_update().first(c)?
        }
        DbConn::Sqlite(c) => {
            super::Prepared::new(make!().returning(h::node)).run::<String, _>(c)?;
            key!().select(h::counts).first(c)?
        }
    };
    let mut histogram = Histogram::default();
    histogram
        .add_stored(&stored, 1)
        .and_then(|()| histogram.add_stored(&change.counts, 1))
        .map_err(|e| corrupt(&change.node, &e))?;
    let counts = encode_hours(histogram.entries());
    let write = diesel::update(key!()).set((h::counts.eq(counts), h::median.eq(histogram.median())));
    enum Write {}
    super::Prepared::by_type::<Write>(write.returning(h::node)).run_on::<String>(conn)?;
    Ok(())
}

/// A stored histogram that does not parse: reported as a database error, so it is logged and
/// answered as an internal error rather than silently counted as empty.
fn corrupt(node: &str, what: &str) -> diesel::result::Error {
    diesel::result::Error::DeserializationError(format!("case_stats_histogram of node {node}: {what}").into())
}

/// Empties the kept sums, before they are written again whole (`seed-demo`, `rebuild-stats`).
pub fn clear(conn: &mut DbConn) -> QueryResult<()> {
    diesel::delete(case_stats::table).execute(conn)?;
    diesel::delete(case_stats_histogram::table).execute(conn)?;
    Ok(())
}

/// Writes whole sums into emptied tables ([`clear`]): plain multi-row inserts, no upsert, so a
/// million cases' sums take seconds rather than minutes on SQLite.
pub fn insert_fresh(conn: &mut DbConn, rows: &[StatRow], hours: &[HistRow]) -> QueryResult<()> {
    // 15 and 6 bound values per row: under SQLite's 32,766 and PostgreSQL's 65,535 per statement.
    for chunk in rows.chunks(2_000) {
        match conn {
            DbConn::Pg(c) => diesel::insert_into(case_stats::table).values(chunk).execute(c)?,
            DbConn::Sqlite(c) => diesel::insert_into(case_stats::table).values(chunk).execute(c)?,
        };
    }
    for chunk in hours.chunks(4_000) {
        match conn {
            DbConn::Pg(c) => diesel::insert_into(case_stats_histogram::table).values(chunk).execute(c)?,
            DbConn::Sqlite(c) => diesel::insert_into(case_stats_histogram::table).values(chunk).execute(c)?,
        };
    }
    Ok(())
}

/// Which kept rows to read.
#[derive(Debug, Clone)]
pub struct RowFilter {
    /// Rows of these nodes…
    pub nodes: Option<Vec<String>>,
    /// …or of every node whose path is in `[from, to)`.
    pub subtree: Option<(String, String)>,
    pub dim: &'static str,
    /// One value of the dimension, or all of them.
    pub value: Option<String>,
    pub basis: &'static str,
    /// Inclusive `YYYY-MM` bounds.
    pub from_month: Option<String>,
    pub to_month: Option<String>,
}

/// The codes of a subtree's jurisdictions, as a subquery (see [`subtree_codes`]).
type SubtreeCodes = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Select<jurisdictions::table, jurisdictions::code>,
        diesel::dsl::GtEq<jurisdictions::path, String>,
    >,
    diesel::dsl::Lt<jurisdictions::path, String>,
>;

/// The codes of the jurisdictions whose path is in `[from, to)`, as a subquery.
fn subtree_codes(from: &str, to: &str) -> SubtreeCodes {
    jurisdictions::table
        .select(jurisdictions::code)
        .filter(jurisdictions::path.ge(from.to_owned()))
        .filter(jurisdictions::path.lt(to.to_owned()))
}

/// The kept rows of table `$t` matching `f`, from `$from` (the table, or a join of it), selecting
/// `$select`: the same filters for the sums and the histograms.
macro_rules! kept_rows {
    ($t:ident, $from:expr, $f:expr, $select:expr) => {{
        let f: &RowFilter = $f;
        let mut q = $from.select($select).filter($t::dim.eq(f.dim)).filter($t::basis.eq(f.basis)).into_boxed();
        match f.nodes.as_deref() {
            // One node as an equality: a plain range of the primary key.
            Some([node]) => q = q.filter($t::node.eq(node.clone())),
            Some(nodes) => q = q.filter($t::node.eq_any(nodes.to_vec())),
            None => {}
        }
        if let Some((from, to)) = &f.subtree {
            q = q.filter($t::node.eq_any(subtree_codes(from, to)));
        }
        if let Some(v) = &f.value {
            q = q.filter($t::dim_value.eq(v.clone()));
        }
        if let Some(m) = &f.from_month {
            q = q.filter($t::month.ge(m.clone()));
        }
        if let Some(m) = &f.to_month {
            q = q.filter($t::month.le(m.clone()));
        }
        q
    }};
}

/// The kept sums matching `f`.
pub fn sums(conn: &mut DbConn, f: &RowFilter) -> QueryResult<Vec<StatRow>> {
    kept_rows!(case_stats, case_stats::table, f, StatRow::as_select()).load(conn)
}

/// The kept hour histograms matching `f` (those holding any case).
pub fn hours(conn: &mut DbConn, f: &RowFilter) -> QueryResult<Vec<HistRow>> {
    kept_rows!(case_stats_histogram, case_stats_histogram::table, f, HistRow::as_select())
        .filter(case_stats_histogram::counts.ne(""))
        .load(conn)
}

/// A histogram row's key as a group sees it, and its stored median: `(node, dim_value, month,
/// median)`.
pub type StoredMedian = (String, String, String, Option<f64>);

/// The medians of the kept hour histograms matching `f`, without their hours.
pub fn hour_medians(conn: &mut DbConn, f: &RowFilter) -> QueryResult<Vec<StoredMedian>> {
    use case_stats_histogram::dsl as h;
    kept_rows!(case_stats_histogram, h::case_stats_histogram, f, (h::node, h::dim_value, h::month, h::median))
        .filter(h::counts.ne(""))
        .load(conn)
}

/// Filters on cases for counts and scans.
#[derive(Debug, Clone, Default)]
pub struct CaseScope {
    /// Path range `[from, to)` of the jurisdiction subtree.
    pub subtree: Option<(String, String)>,
    pub department_id: Option<String>,
    pub category_code: Option<String>,
    pub programme_id: Option<String>,
    pub kind: Option<String>,
    /// Period on creation (`true`) or deadline (`false`), `[from, to)`.
    pub created_basis: bool,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
}

macro_rules! scoped {
    ($q:expr, $s:expr) => {{
        let mut q = $q;
        let s: &CaseScope = $s;
        if let Some((from, to)) = &s.subtree {
            q = q.filter(cases::jurisdiction_path.ge(from.clone())).filter(cases::jurisdiction_path.lt(to.clone()));
        }
        if let Some(v) = &s.department_id {
            q = q.filter(cases::department_id.eq(v.clone()));
        }
        if let Some(v) = &s.category_code {
            q = q.filter(cases::category_code.eq(v.clone()));
        }
        if let Some(v) = &s.programme_id {
            q = q.filter(cases::programme_id.eq(v.clone()));
        }
        if let Some(v) = &s.kind {
            q = q.filter(cases::kind.eq(v.clone()));
        }
        match (s.created_basis, s.from) {
            (true, Some(t)) => q = q.filter(cases::created_at.ge(t)),
            (false, Some(t)) => q = q.filter(cases::due_at.ge(t)),
            _ => {}
        }
        match (s.created_basis, s.to) {
            (true, Some(t)) => q = q.filter(cases::created_at.lt(t)),
            (false, Some(t)) => q = q.filter(cases::due_at.lt(t)),
            _ => {}
        }
        q
    }};
}

/// Open cases in scope whose deadline is before `now`.
pub fn count_overdue(conn: &mut DbConn, s: &CaseScope, now: NaiveDateTime) -> QueryResult<i64> {
    let q = cases::table.filter(super::case_is_open()).filter(cases::due_at.lt(now)).count().into_boxed();
    scoped!(q, s).get_result(conn)
}

/// What overdue cases are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverdueBy {
    /// The case's jurisdiction path.
    Path,
    Department,
    Category,
    Programme,
    /// The month of creation or of the deadline, counted by the caller from each case's time.
    CreatedAt,
    DueAt,
}

/// The overdue cases in scope counted per value of one column (`None` for cases without one; for
/// the two times, per month). The column is read from the partial index of open deadlines, which
/// holds every grouping column, and counted here: a `GROUP BY` would invite SQLite to walk an
/// index in the grouping column's order over every case in scope (2.3 s for a province).
pub fn overdue_counts(
    conn: &mut DbConn,
    s: &CaseScope,
    now: NaiveDateTime,
    by: OverdueBy,
) -> QueryResult<HashMap<Option<String>, i64>> {
    use crate::domain::stats::month_of;
    use crate::domain::util::from_db;
    macro_rules! column {
        ($col:expr) => {{
            let q = cases::table.filter(super::case_is_open()).filter(cases::due_at.lt(now)).select($col).into_boxed();
            scoped!(q, s).load(conn)?
        }};
    }
    let values: Vec<Option<String>> = match by {
        OverdueBy::Path => column!(cases::jurisdiction_path.nullable()),
        OverdueBy::Department => column!(cases::department_id),
        OverdueBy::Category => column!(cases::category_code.nullable()),
        OverdueBy::Programme => column!(cases::programme_id),
        OverdueBy::CreatedAt | OverdueBy::DueAt => {
            let times: Vec<NaiveDateTime> =
                if by == OverdueBy::CreatedAt { column!(cases::created_at) } else { column!(cases::due_at) };
            times.into_iter().map(|t| Some(month_of(from_db(t)))).collect()
        }
    };
    // Thousands of rows, often 36-character ids: hashed, not ordered.
    let mut counts: HashMap<Option<String>, i64> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    Ok(counts)
}

/// The statistical facts of every case in scope (the slow, always-exact path for filter
/// combinations the kept sums do not cover).
pub fn scan(conn: &mut DbConn, s: &CaseScope) -> QueryResult<Vec<super::models::Case>> {
    let q = cases::table.select(super::models::Case::as_select()).into_boxed();
    scoped!(q, s).load(conn)
}

/// One page of the overdue cases in scope, oldest deadline first, after `(due_at, id)`.
pub fn overdue_page(
    conn: &mut DbConn,
    s: &CaseScope,
    now: NaiveDateTime,
    after: Option<(NaiveDateTime, String)>,
    limit: i64,
) -> QueryResult<Vec<super::models::Case>> {
    let mut q = cases::table
        .filter(super::case_is_open())
        .filter(cases::due_at.lt(now))
        .select(super::models::Case::as_select())
        .order((cases::due_at.asc(), cases::id.asc()))
        .limit(limit)
        .into_boxed();
    if let Some((due, id)) = after {
        q = q.filter(cases::due_at.gt(due).or(cases::due_at.eq(due).and(cases::id.gt(id))));
    }
    scoped!(q, s).load(conn)
}

/// The whole tree's kept sums by creation month, one row per root jurisdiction and month, as
/// `(total, dismissed, resolved, completed)`: a few dozen rows at any number of cases.
pub fn tree_totals(conn: &mut DbConn) -> QueryResult<Vec<(i64, i64, i64, i64)>> {
    case_stats::table
        .inner_join(jurisdictions::table.on(jurisdictions::code.eq(case_stats::node)))
        .filter(jurisdictions::parent_code.is_null())
        .filter(case_stats::dim.eq(crate::domain::stats::dim::ALL))
        .filter(case_stats::basis.eq(crate::domain::stats::Basis::Created.code()))
        .select((case_stats::total, case_stats::dismissed, case_stats::resolved, case_stats::completed))
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::Connection;

    fn row(node: &str, value: &str, total: i64, resolved: i64) -> StatRow {
        StatRow {
            node: node.to_owned(),
            dim: "category".to_owned(),
            dim_value: value.to_owned(),
            basis: "c".to_owned(),
            month: "2026-12".to_owned(),
            total,
            resolved,
            resolution_secs: 7 * total,
            ..StatRow::default()
        }
    }

    /// The upsert's text is the same for any rows of the same number: it is found in the
    /// statement cache by type (`Prepared::by_type`).
    #[test]
    fn sqlite_sum_rows_have_one_text() {
        let text = |rows: &[StatRow]| {
            let q = diesel::debug_query::<diesel::sqlite::Sqlite, _>(&SumRowsUpsert(rows)).to_string();
            q.split(" -- binds:").next().unwrap_or_default().to_owned()
        };
        let a: Vec<StatRow> = (0..SQLITE_ROWS).map(|i| row("530000", &format!("c{i}"), 1, 0)).collect();
        let b: Vec<StatRow> = (0..SQLITE_ROWS).map(|i| row("530102", "x", -3, i as i64)).collect();
        assert_eq!(text(&a), text(&b));
    }

    /// Rows are added whatever their number: full statements, a last one filled up with rows
    /// that add nothing, and a key that comes twice in one statement.
    #[test]
    fn sqlite_upserts_add_every_row_once() {
        let sqlite = diesel::SqliteConnection::establish(":memory:").expect("in-memory SQLite");
        let mut conn = DbConn::Sqlite(sqlite);
        crate::db::run_migrations(&mut conn).expect("migrations");
        let sums = |conn: &mut DbConn| -> Vec<(String, i64, i64, i64)> {
            case_stats::table
                .select((case_stats::dim_value, case_stats::total, case_stats::resolved, case_stats::resolution_secs))
                .order(case_stats::dim_value)
                .load(conn)
                .expect("sums")
        };
        // 3 rows (one statement, five rows of nothing), then 11 (a full one and a filled one).
        add(&mut conn, &[row("530000", "a", 1, 0), row("530000", "b", 2, 1), row("530000", "c", 1, 0)], &[])
            .expect("add 3");
        let mut eleven: Vec<StatRow> = (0..10).map(|i| row("530000", &format!("k{i:02}"), 1, 0)).collect();
        eleven.push(row("530000", "a", -1, 1));
        add(&mut conn, &eleven, &[]).expect("add 11");
        // The same key twice in one statement.
        add(&mut conn, &[row("530000", "b", 5, 0), row("530000", "b", 1, 2)], &[]).expect("add twice");
        let got = sums(&mut conn);
        assert_eq!(got.len(), 13, "{got:?}");
        assert_eq!(got[0], ("a".to_owned(), 0, 1, 0));
        assert_eq!(got[1], ("b".to_owned(), 8, 3, 56));
        assert_eq!(got[2], ("c".to_owned(), 1, 0, 7));
        assert!(got[3..].iter().all(|(k, total, resolved, _)| k.starts_with('k') && *total == 1 && *resolved == 0));
    }
}
