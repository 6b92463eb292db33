//! Queries on webhook subscriptions, their outbox and delivery attempts.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{webhook_attempts, webhook_outbox, webhooks};
use super::DbConn;

/// A subscription.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhooks)]
pub struct Webhook {
    pub id: String,
    pub owner_id: String,
    pub owner_kind: String,
    pub owner_role: String,
    pub scope_path: Option<String>,
    pub url: String,
    pub events: String,
    pub secret: String,
    pub active: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// An event waiting for (or done with) delivery to one subscription.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_outbox)]
pub struct OutboxRow {
    pub id: String,
    pub webhook_id: String,
    pub case_id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: NaiveDateTime,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub delivered_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_attempts)]
pub struct Attempt {
    pub id: String,
    pub outbox_id: String,
    pub attempted_at: NaiveDateTime,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// Stores a subscription.
pub fn insert(conn: &mut DbConn, w: &Webhook) -> QueryResult<()> {
    diesel::insert_into(webhooks::table).values(w).execute(conn).map(|_| ())
}

/// A subscription by id.
pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<Webhook>> {
    webhooks::table.find(id).select(Webhook::as_select()).first(conn).optional()
}

/// Every subscription, or the active ones.
pub fn all(conn: &mut DbConn, active_only: bool) -> QueryResult<Vec<Webhook>> {
    if active_only {
        // Read by every create and action (the subscribers of its event).
        super::on_backend!(conn, |c| webhooks::table
            .select(Webhook::as_select())
            .filter(webhooks::active.eq(true))
            .order(webhooks::id)
            .load(c))
    } else {
        webhooks::table.select(Webhook::as_select()).order(webhooks::id).load(conn)
    }
}

/// What a subscription's owner (or the dispatcher) may change.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = webhooks, treat_none_as_null = true)]
pub struct WebhookChanges {
    pub url: String,
    pub events: String,
    pub active: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

/// Changes a subscription's target, events or state.
pub fn update(conn: &mut DbConn, id: &str, changes: &WebhookChanges) -> QueryResult<usize> {
    diesel::update(webhooks::table.find(id)).set(changes).execute(conn)
}

/// Queues events.
pub fn enqueue(conn: &mut DbConn, rows: &[OutboxRow]) -> QueryResult<()> {
    for row in rows {
        diesel::insert_into(webhook_outbox::table).values(row).execute(conn)?;
    }
    Ok(())
}

/// Claims up to `limit` due events, locking them until `lock_until`: `FOR UPDATE SKIP LOCKED` on
/// PostgreSQL, so several processes never take the same event; on SQLite the caller's
/// `BEGIN IMMEDIATE` serialises claimers.
pub fn claim_due(
    conn: &mut DbConn,
    now: NaiveDateTime,
    lock_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<OutboxRow>> {
    use webhook_outbox::dsl as o;
    macro_rules! due {
        () => {
            o::webhook_outbox
                .filter(o::state.eq("pending"))
                .filter(o::next_attempt_at.le(now))
                .filter(o::locked_until.is_null().or(o::locked_until.lt(now)))
                .order(o::id)
                .limit(limit)
                .select(OutboxRow::as_select())
        };
    }
    let rows: Vec<OutboxRow> = match conn {
        DbConn::Pg(c) => due!().for_update().skip_locked().load(c)?,
        DbConn::Sqlite(c) => due!().load(c)?,
    };
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    diesel::update(o::webhook_outbox.filter(o::id.eq_any(&ids))).set(o::locked_until.eq(lock_until)).execute(conn)?;
    Ok(rows)
}

/// When the earliest still-undelivered earlier event for the same subscription and case is next
/// due, if there is one (then this one waits: deliveries for a case arrive in order).
pub fn earliest_pending_before(conn: &mut DbConn, row: &OutboxRow) -> QueryResult<Option<NaiveDateTime>> {
    use webhook_outbox::dsl as o;
    o::webhook_outbox
        .filter(o::webhook_id.eq(&row.webhook_id))
        .filter(o::case_id.eq(&row.case_id))
        .filter(o::state.eq("pending"))
        .filter(o::id.lt(&row.id))
        .order(o::id)
        .select(o::next_attempt_at)
        .first(conn)
        .optional()
}

/// Releases a claimed event and makes it due again only at `at`.
pub fn postpone(conn: &mut DbConn, id: &str, at: NaiveDateTime) -> QueryResult<()> {
    use webhook_outbox::dsl as o;
    diesel::update(o::webhook_outbox.find(id))
        .set((o::locked_until.eq(None::<NaiveDateTime>), o::next_attempt_at.eq(at)))
        .execute(conn)
        .map(|_| ())
}

/// Records the outcome of an attempt on an event.
pub fn finish(
    conn: &mut DbConn,
    id: &str,
    state: &str,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    delivered_at: Option<NaiveDateTime>,
    last_error: Option<&str>,
) -> QueryResult<()> {
    use webhook_outbox::dsl as o;
    diesel::update(o::webhook_outbox.find(id))
        .set((
            o::state.eq(state),
            o::attempts.eq(attempts),
            o::next_attempt_at.eq(next_attempt_at),
            o::locked_until.eq(None::<NaiveDateTime>),
            o::delivered_at.eq(delivered_at),
            o::last_error.eq(last_error),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Logs an attempt.
pub fn log_attempt(conn: &mut DbConn, a: &Attempt) -> QueryResult<()> {
    diesel::insert_into(webhook_attempts::table).values(a).execute(conn).map(|_| ())
}

/// An event of a subscription.
pub fn event(conn: &mut DbConn, webhook_id: &str, id: &str) -> QueryResult<Option<OutboxRow>> {
    use webhook_outbox::dsl as o;
    o::webhook_outbox
        .filter(o::webhook_id.eq(webhook_id))
        .filter(o::id.eq(id))
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()
}

/// A subscription's events, newest first, before `before`.
pub fn events(conn: &mut DbConn, webhook_id: &str, before: Option<&str>, limit: i64) -> QueryResult<Vec<OutboxRow>> {
    use webhook_outbox::dsl as o;
    let mut q = o::webhook_outbox
        .filter(o::webhook_id.eq(webhook_id))
        .order(o::id.desc())
        .limit(limit)
        .select(OutboxRow::as_select())
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(o::id.lt(b.to_owned()));
    }
    q.load(conn)
}

/// The attempts on some events, oldest first.
pub fn attempts(conn: &mut DbConn, outbox_ids: &[String]) -> QueryResult<Vec<Attempt>> {
    use webhook_attempts::dsl as a;
    a::webhook_attempts
        .filter(a::outbox_id.eq_any(outbox_ids))
        .order(a::attempted_at)
        .select(Attempt::as_select())
        .load(conn)
}

/// Puts an event back in the queue for delivery now.
pub fn requeue(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    use webhook_outbox::dsl as o;
    diesel::update(o::webhook_outbox.find(id))
        .set((o::state.eq("pending"), o::next_attempt_at.eq(now), o::locked_until.eq(None::<NaiveDateTime>)))
        .execute(conn)
}

/// Open cases past their deadline not yet announced, at most `limit`.
pub fn newly_overdue(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<super::models::Case>> {
    use super::schema::cases::dsl as c;
    c::cases
        .filter(super::case_is_open())
        .filter(c::due_at.lt(now))
        .filter(c::overdue_notified_at.is_null())
        .order(c::due_at)
        .limit(limit)
        .select(super::models::Case::as_select())
        .load(conn)
}

/// Marks a case's overdue as announced.
pub fn mark_overdue_notified(conn: &mut DbConn, case_id: &str, now: NaiveDateTime) -> QueryResult<()> {
    use super::schema::cases::dsl as c;
    diesel::update(c::cases.find(case_id)).set(c::overdue_notified_at.eq(now)).execute(conn).map(|_| ())
}

/// How many outbox events are in `state` (`pending`, `failed`, …): one count over the state index.
pub fn count_in_state(conn: &mut DbConn, state: &str) -> QueryResult<i64> {
    use webhook_outbox::dsl as o;
    o::webhook_outbox.filter(o::state.eq(state)).count().get_result(conn)
}
