//! Queries on users.

use diesel::prelude::*;

use super::models::User;
use super::schema::users::dsl as u;
use super::DbConn;

/// A user by username.
pub fn by_username(conn: &mut DbConn, username: &str) -> QueryResult<Option<User>> {
    u::users.filter(u::username.eq(username)).select(User::as_select()).first(conn).optional()
}

/// A user by id.
pub fn by_id(conn: &mut DbConn, id: &str) -> QueryResult<Option<User>> {
    u::users.find(id).select(User::as_select()).first(conn).optional()
}

/// Stores a new user.
pub fn insert(conn: &mut DbConn, user: &User) -> QueryResult<()> {
    diesel::insert_into(u::users).values(user).execute(conn).map(|_| ())
}

/// Users ordered by username after `after`, at most `limit`; with `range`, only users whose
/// jurisdiction path is in `[from, to)` (whole-tree users have none and are left out).
pub fn list(conn: &mut DbConn, range: Option<(&str, &str)>, after: Option<&str>, limit: i64) -> QueryResult<Vec<User>> {
    use super::schema::jurisdictions::dsl as j;
    let mut query = u::users
        .left_join(j::jurisdictions)
        .select(User::as_select())
        .order(u::username.asc())
        .limit(limit)
        .into_boxed();
    if let Some((from, to)) = range {
        query = query.filter(j::path.ge(from.to_owned())).filter(j::path.lt(to.to_owned()));
    }
    if let Some(after) = after {
        query = query.filter(u::username.gt(after.to_owned()));
    }
    query.load(conn)
}
