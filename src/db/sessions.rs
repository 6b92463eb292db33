//! Queries on sessions, their rotating refresh tokens, and the login throttle.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{login_throttle, refresh_tokens, sessions, users};
use super::DbConn;

/// A session row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoke_reason: Option<String>,
}

/// A refresh token row (only the hash of the token is stored).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshToken {
    pub token_hash: String,
    pub session_id: String,
    pub created_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

/// A login-throttle row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = login_throttle, treat_none_as_null = true)]
pub struct Throttle {
    pub key: String,
    pub failures: i32,
    pub window_start: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
}

/// Stores a session.
pub fn insert_session(conn: &mut DbConn, s: &Session) -> QueryResult<()> {
    diesel::insert_into(sessions::table).values(s).execute(conn).map(|_| ())
}

/// A session by id.
pub fn session(conn: &mut DbConn, id: &str) -> QueryResult<Option<Session>> {
    sessions::table.find(id).select(Session::as_select()).first(conn).optional()
}

/// Whether a session is live at `now`: not revoked, not expired, and its user still active.
pub fn is_live(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let n: i64 = sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .filter(users::active.eq(true))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Revokes one session; returns whether it was live.
pub fn revoke(conn: &mut DbConn, id: &str, now: NaiveDateTime, reason: &str) -> QueryResult<bool> {
    let n = diesel::update(sessions::table.filter(sessions::id.eq(id)).filter(sessions::revoked_at.is_null()))
        .set((sessions::revoked_at.eq(now), sessions::revoke_reason.eq(reason)))
        .execute(conn)?;
    Ok(n > 0)
}

/// Revokes every live session of a user; returns their ids.
pub fn revoke_all(conn: &mut DbConn, user_id: &str, now: NaiveDateTime, reason: &str) -> QueryResult<Vec<String>> {
    let live: Vec<String> = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .select(sessions::id)
        .load(conn)?;
    diesel::update(sessions::table.filter(sessions::user_id.eq(user_id)).filter(sessions::revoked_at.is_null()))
        .set((sessions::revoked_at.eq(now), sessions::revoke_reason.eq(reason)))
        .execute(conn)?;
    Ok(live)
}

/// Stores a refresh token.
pub fn insert_refresh(conn: &mut DbConn, t: &RefreshToken) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table).values(t).execute(conn).map(|_| ())
}

/// A refresh token by its hash.
pub fn refresh_by_hash(conn: &mut DbConn, hash: &str) -> QueryResult<Option<RefreshToken>> {
    refresh_tokens::table.find(hash).select(RefreshToken::as_select()).first(conn).optional()
}

/// Marks a refresh token used; `false` if it already was (a replay, or a concurrent refresh).
pub fn use_refresh(conn: &mut DbConn, hash: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let n = diesel::update(
        refresh_tokens::table.filter(refresh_tokens::token_hash.eq(hash)).filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// The throttle rows for `keys`, created fresh where missing and locked for the rest of the
/// transaction (`FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already serialises), so
/// concurrent attempts count one after another and none is lost.
pub fn lock_throttles(conn: &mut DbConn, keys: &[String], now: NaiveDateTime) -> QueryResult<Vec<Throttle>> {
    let fresh: Vec<Throttle> =
        keys.iter().map(|k| Throttle { key: k.clone(), failures: 0, window_start: now, locked_until: None }).collect();
    match conn {
        DbConn::Pg(c) => {
            diesel::insert_into(login_throttle::table).values(&fresh).on_conflict_do_nothing().execute(c)?;
            login_throttle::table
                .filter(login_throttle::key.eq_any(keys))
                .order(login_throttle::key)
                .select(Throttle::as_select())
                .for_update()
                .load(c)
        }
        DbConn::Sqlite(c) => {
            diesel::insert_or_ignore_into(login_throttle::table).values(&fresh).execute(c)?;
            login_throttle::table.filter(login_throttle::key.eq_any(keys)).select(Throttle::as_select()).load(c)
        }
    }
}

/// Writes a throttle row.
pub fn save_throttle(conn: &mut DbConn, t: &Throttle) -> QueryResult<()> {
    diesel::update(login_throttle::table.find(&t.key)).set(t).execute(conn).map(|_| ())
}
