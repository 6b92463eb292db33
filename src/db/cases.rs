//! Queries on cases and their events.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::{Case, CaseEvent, CaseLifecycleChanges, PublicCase};
use super::schema::{case_events, cases, ref_counters};
use super::DbConn;

/// A case by id.
pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<Case>> {
    super::on_backend!(conn, |c| cases::table.find(id).select(Case::as_select()).first(c).optional())
}

/// A case by id, locked for the rest of the transaction (`FOR UPDATE` on PostgreSQL; on SQLite the
/// `BEGIN IMMEDIATE` of [`super::write_tx`] already holds the database's write lock).
pub fn get_for_update(conn: &mut DbConn, id: &str) -> QueryResult<Option<Case>> {
    match conn {
        DbConn::Pg(c) => cases::table.find(id).select(Case::as_select()).for_update().first(c).optional(),
        DbConn::Sqlite(c) => cases::table.find(id).select(Case::as_select()).first(c).optional(),
    }
}

/// A case by its external reference.
pub fn by_external(conn: &mut DbConn, source: &str, external_id: &str) -> QueryResult<Option<Case>> {
    cases::table
        .filter(cases::external_source.eq(source))
        .filter(cases::external_id.eq(external_id))
        .select(Case::as_select())
        .first(conn)
        .optional()
}

/// Takes the next number of a ref sequence (`530602-2026` → 1, 2, 3, …), inside the caller's
/// transaction so a rolled-back create leaves no gap-filling surprises for concurrent ones.
pub fn next_ref_number(conn: &mut DbConn, prefix: &str) -> QueryResult<i64> {
    use ref_counters::dsl as r;
    let upsert = diesel::insert_into(r::ref_counters)
        .values((r::prefix.eq(prefix), r::last.eq(1_i64)))
        .on_conflict(r::prefix)
        .do_update()
        .set(r::last.eq(r::last + 1_i64));
    enum Next {}
    super::on_backend!(conn, |c| super::Prepared::by_type::<Next>(upsert.returning(r::last)).get_result(c))
}

/// Stores a new case.
pub fn insert(conn: &mut DbConn, case: &Case) -> QueryResult<()> {
    super::on_backend!(conn, |c| diesel::insert_into(cases::table).values(case).execute(c).map(|_| ()))
}

/// Writes an action's changes if the case is still at `expected_version`; returns whether it was.
pub fn update_lifecycle(
    conn: &mut DbConn,
    id: &str,
    expected_version: i64,
    changes: &CaseLifecycleChanges,
) -> QueryResult<bool> {
    let update =
        diesel::update(cases::table.filter(cases::id.eq(id)).filter(cases::version.eq(expected_version))).set(changes);
    // Every column is written (`treat_none_as_null`): one text, prepared once.
    enum Update {}
    Ok(super::Prepared::by_type::<Update>(update.returning(cases::version)).run_on::<i64>(conn)? == 1)
}

/// Appends an event.
pub fn insert_event(conn: &mut DbConn, event: &CaseEvent) -> QueryResult<()> {
    super::on_backend!(conn, |c| diesel::insert_into(case_events::table).values(event).execute(c).map(|_| ()))
}

/// A case's events in order.
pub fn events(conn: &mut DbConn, case_id: &str) -> QueryResult<Vec<CaseEvent>> {
    super::on_backend!(conn, |c| case_events::table
        .filter(case_events::case_id.eq(case_id))
        .order(case_events::seq.asc())
        .select(CaseEvent::as_select())
        .load(c))
}

/// A page of cases in id order, after `after`: whole-table passes (`rebuild-stats`).
pub fn page_by_id(conn: &mut DbConn, after: Option<&str>, limit: i64) -> QueryResult<Vec<Case>> {
    let mut q = cases::table.select(Case::as_select()).order(cases::id.asc()).limit(limit).into_boxed();
    if let Some(id) = after {
        q = q.filter(cases::id.gt(id.to_owned()));
    }
    q.load(conn)
}

/// The events of several cases, by case and then in order.
pub fn events_of(conn: &mut DbConn, case_ids: &[String]) -> QueryResult<Vec<CaseEvent>> {
    case_events::table
        .filter(case_events::case_id.eq_any(case_ids))
        .order((case_events::case_id.asc(), case_events::seq.asc()))
        .select(CaseEvent::as_select())
        .load(conn)
}

/// The statistical facts the lifecycle keeps on a case.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = cases, treat_none_as_null = true)]
pub struct CaseFacts {
    pub first_assigned_at: Option<NaiveDateTime>,
    pub first_acknowledged_at: Option<NaiveDateTime>,
    pub responded: bool,
    pub resolved_on_time: Option<bool>,
    pub resolution_secs: Option<i64>,
}

/// Rewrites a case's kept facts (without touching its version: they are derived, not changed).
pub fn set_facts(conn: &mut DbConn, id: &str, facts: &CaseFacts) -> QueryResult<()> {
    super::on_backend!(conn, |c| diesel::update(cases::table.find(id)).set(facts).execute(c).map(|_| ()))
}

/// Filters of the case list; every field narrows the result.
#[derive(Debug, Default, Clone)]
pub struct CaseFilter {
    /// Path range `[from, to)` of the caller's scope.
    pub scope: Option<(String, String)>,
    /// Path range of a requested jurisdiction subtree.
    pub subtree: Option<(String, String)>,
    /// Caseworker visibility: cases created by this id or held by this department.
    pub own: Option<(String, Option<String>)>,
    pub status: Option<String>,
    pub kind: Option<String>,
    pub category_code: Option<String>,
    pub department_id: Option<String>,
    pub programme_id: Option<String>,
    /// `Some(true)`: open and past due at `now`; `Some(false)`: anything else.
    pub overdue: Option<bool>,
    pub now: Option<NaiveDateTime>,
    pub created_from: Option<NaiveDateTime>,
    pub created_to: Option<NaiveDateTime>,
    pub due_from: Option<NaiveDateTime>,
    pub due_to: Option<NaiveDateTime>,
    /// Substring of the title or the description (already LIKE-escaped with `\`).
    pub q_pattern: Option<String>,
    pub external: Option<(String, String)>,
    /// Keyset position: items strictly after `(created_at, id)` in newest-first order.
    pub after: Option<(NaiveDateTime, String)>,
}

/// Cases matching `f`, newest first, at most `limit`.
pub fn list(conn: &mut DbConn, f: &CaseFilter, limit: i64) -> QueryResult<Vec<Case>> {
    let mut q = cases::table
        .select(Case::as_select())
        .order((cases::created_at.desc(), cases::id.desc()))
        .limit(limit)
        .into_boxed();
    for (from, to) in [&f.scope, &f.subtree].into_iter().flatten() {
        q = q.filter(cases::jurisdiction_path.ge(from.clone())).filter(cases::jurisdiction_path.lt(to.clone()));
    }
    if let Some((user, department)) = &f.own {
        q = match department {
            Some(d) => {
                q.filter(cases::created_by.eq(user.clone()).or(cases::department_id.eq(d.clone()).assume_not_null()))
            }
            None => q.filter(cases::created_by.eq(user.clone())),
        };
    }
    if let Some(v) = &f.status {
        q = q.filter(cases::status.eq(v.clone()));
    }
    if let Some(v) = &f.kind {
        q = q.filter(cases::kind.eq(v.clone()));
    }
    if let Some(v) = &f.category_code {
        q = q.filter(cases::category_code.eq(v.clone()));
    }
    if let Some(v) = &f.department_id {
        q = q.filter(cases::department_id.eq(v.clone()));
    }
    if let Some(v) = &f.programme_id {
        q = q.filter(cases::programme_id.eq(v.clone()));
    }
    if let (Some(overdue), Some(now)) = (f.overdue, f.now) {
        let open = super::case_is_open();
        q = if overdue {
            q.filter(open.and(cases::due_at.lt(now)))
        } else {
            q.filter(diesel::dsl::not(open.and(cases::due_at.lt(now))))
        };
    }
    if let Some(t) = f.created_from {
        q = q.filter(cases::created_at.ge(t));
    }
    if let Some(t) = f.created_to {
        q = q.filter(cases::created_at.lt(t));
    }
    if let Some(t) = f.due_from {
        q = q.filter(cases::due_at.ge(t));
    }
    if let Some(t) = f.due_to {
        q = q.filter(cases::due_at.lt(t));
    }
    if let Some(p) = &f.q_pattern {
        q = q.filter(cases::title.like(p.clone()).escape('\\').or(cases::description.like(p.clone()).escape('\\')));
    }
    if let Some((source, id)) = &f.external {
        q = q.filter(cases::external_source.eq(source.clone())).filter(cases::external_id.eq(id.clone()));
    }
    if let Some((at, id)) = &f.after {
        // A row-value comparison, which both databases read as one range of a `(…, created_at,
        // id)` index; the equivalent `created_at < ? OR (created_at = ? AND id < ?)` left SQLite
        // a range on `created_at` alone.
        use diesel::sql_types::{Bool, Text, Timestamp};
        q = q.filter(
            diesel::dsl::sql::<Bool>("(cases.created_at, cases.id) < (")
                .bind::<Timestamp, _>(*at)
                .sql(", ")
                .bind::<Text, _>(id.clone())
                .sql(")"),
        );
    }
    q.load(conn)
}

/// Filters of the public (Open311) list of requests; every field narrows the result.
#[derive(Debug, Default, Clone)]
pub struct PublicFilter {
    /// Path range `[from, to)` of a jurisdiction subtree.
    pub subtree: Option<(String, String)>,
    /// Channels whose cases are never published.
    pub hidden_channels: Vec<String>,
    /// Case refs; the other filters (but the subtree) are left empty when these are given.
    pub refs: Option<Vec<String>>,
    pub categories: Option<Vec<String>>,
    pub statuses: Option<Vec<String>>,
    /// Creation time, both bounds inclusive.
    pub created: Option<(NaiveDateTime, NaiveDateTime)>,
}

/// Published columns of the cases matching `f`, newest first, `limit` of them after `offset`.
pub fn public_list(conn: &mut DbConn, f: &PublicFilter, offset: i64, limit: i64) -> QueryResult<Vec<PublicCase>> {
    let mut q = cases::table
        .select(PublicCase::as_select())
        .filter(cases::channel.ne_all(f.hidden_channels.clone()))
        .order((cases::created_at.desc(), cases::id.desc()))
        .offset(offset)
        .limit(limit)
        .into_boxed();
    if let Some((from, to)) = &f.subtree {
        q = q.filter(cases::jurisdiction_path.ge(from.clone())).filter(cases::jurisdiction_path.lt(to.clone()));
    }
    if let Some(refs) = &f.refs {
        q = q.filter(cases::case_ref.eq_any(refs.clone()));
    }
    if let Some(codes) = &f.categories {
        q = q.filter(cases::category_code.eq_any(codes.clone()));
    }
    if let Some(statuses) = &f.statuses {
        q = q.filter(cases::status.eq_any(statuses.clone()));
    }
    if let Some((from, to)) = f.created {
        q = q.filter(cases::created_at.ge(from)).filter(cases::created_at.le(to));
    }
    q.load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::query_builder::QueryFragment;
    use diesel::{pg::Pg, sqlite::Sqlite};

    /// The SQL text of a statement on both backends, without its values.
    fn texts<Q: QueryFragment<Pg> + QueryFragment<Sqlite>>(q: &Q) -> (String, String) {
        let text = |s: String| s.split(" -- binds:").next().unwrap_or_default().to_owned();
        (text(diesel::debug_query::<Pg, _>(q).to_string()), text(diesel::debug_query::<Sqlite, _>(q).to_string()))
    }

    /// The lifecycle update is found in the statement cache by its type (`Prepared::by_type`),
    /// which is only right while its text cannot change with its values: `None` must be bound as
    /// NULL, not leave its column out.
    #[test]
    fn lifecycle_update_has_one_text() {
        let at = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default().naive_utc();
        let changes = |some: bool| CaseLifecycleChanges {
            status: "assigned".to_owned(),
            outcome: some.then(|| "x".to_owned()),
            department_id: some.then(|| "d".to_owned()),
            assignee_id: some.then(|| "a".to_owned()),
            due_at: at,
            acknowledged_at: some.then_some(at),
            resolved_at: some.then_some(at),
            resolved_by: some.then(|| "r".to_owned()),
            resolution: some.then(|| "r".to_owned()),
            verified_at: some.then_some(at),
            closed_at: some.then_some(at),
            satisfaction: some.then(|| "satisfied".to_owned()),
            rework_count: 1,
            duplicate_of: some.then(|| "c".to_owned()),
            updated_at: at,
            version: 2,
            first_assigned_at: some.then_some(at),
            first_acknowledged_at: some.then_some(at),
            responded: some,
            resolved_on_time: some.then_some(true),
            resolution_secs: some.then_some(60),
            overdue_notified_at: some.then_some(at),
        };
        let update = |c: &CaseLifecycleChanges| {
            texts(&diesel::update(cases::table.filter(cases::id.eq("c")).filter(cases::version.eq(1_i64))).set(c))
        };
        assert_eq!(update(&changes(false)), update(&changes(true)));
    }
}
