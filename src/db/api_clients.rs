//! Queries on API clients. Keys are found by their public prefix (the current one, or the one a
//! rotation replaced) and verified by the caller against the stored hash.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::{ApiClient, ApiClientChanges, ApiClientKeyChanges};
use super::schema::api_clients::dsl as a;
use super::DbConn;

/// A client by id.
pub fn by_id(conn: &mut DbConn, id: &str) -> QueryResult<Option<ApiClient>> {
    a::api_clients.find(id).select(ApiClient::as_select()).first(conn).optional()
}

/// The clients whose current or previous key has this prefix (at most a couple of rows; the
/// caller decides which key the prefix names and whether it is still valid).
pub fn by_key_prefix(conn: &mut DbConn, prefix: &str) -> QueryResult<Vec<ApiClient>> {
    a::api_clients
        .filter(a::key_prefix.eq(prefix).or(a::previous_key_prefix.eq(prefix)))
        .select(ApiClient::as_select())
        .limit(4)
        .load(conn)
}

/// Whether any client uses `prefix` for its current or previous key.
pub fn prefix_taken(conn: &mut DbConn, prefix: &str) -> QueryResult<bool> {
    by_key_prefix(conn, prefix).map(|rows| !rows.is_empty())
}

/// Stores a new client.
pub fn insert(conn: &mut DbConn, client: &ApiClient) -> QueryResult<()> {
    diesel::insert_into(a::api_clients).values(client).execute(conn).map(|_| ())
}

/// Changes a client's name or scopes.
pub fn update(conn: &mut DbConn, id: &str, changes: &ApiClientChanges) -> QueryResult<usize> {
    diesel::update(a::api_clients.find(id)).set(changes).execute(conn)
}

/// Replaces an active client's key (and its previous key), if its current key still has
/// `expected_prefix`; returns the number of rows changed (0: revoked or rotated meanwhile).
pub fn set_keys(conn: &mut DbConn, id: &str, expected_prefix: &str, keys: &ApiClientKeyChanges) -> QueryResult<usize> {
    diesel::update(a::api_clients.find(id).filter(a::key_prefix.eq(expected_prefix)).filter(a::active.eq(true)))
        .set(keys)
        .execute(conn)
}

/// Revokes a client: inactive from `at` on, with both of its keys.
pub fn revoke(conn: &mut DbConn, id: &str, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(a::api_clients.find(id).filter(a::active.eq(true)))
        .set((
            a::active.eq(false),
            a::revoked_at.eq(Some(at)),
            a::previous_valid_until.eq(None::<NaiveDateTime>),
            a::updated_at.eq(at),
        ))
        .execute(conn)
}

/// Records a use of the client's key at `at`, unless one was recorded since `not_before` (so a busy
/// client costs one write a minute, not one per request). Returns whether a row was written.
pub fn touch(conn: &mut DbConn, id: &str, at: NaiveDateTime, not_before: NaiveDateTime) -> QueryResult<bool> {
    let n =
        diesel::update(a::api_clients.find(id).filter(a::last_used_at.is_null().or(a::last_used_at.lt(not_before))))
            .set(a::last_used_at.eq(Some(at)))
            .execute(conn)?;
    Ok(n == 1)
}

/// Clients ordered by id after `after`, at most `limit`; with `range`, only clients whose
/// jurisdiction path is in `[from, to)` (whole-tree clients have none and are left out).
pub fn list(
    conn: &mut DbConn,
    range: Option<(&str, &str)>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ApiClient>> {
    use super::schema::jurisdictions::dsl as j;
    let mut query = a::api_clients
        .left_join(j::jurisdictions)
        .select(ApiClient::as_select())
        .order(a::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some((from, to)) = range {
        query = query.filter(j::path.ge(from.to_owned())).filter(j::path.lt(to.to_owned()));
    }
    if let Some(after) = after {
        query = query.filter(a::id.gt(after.to_owned()));
    }
    query.load(conn)
}
