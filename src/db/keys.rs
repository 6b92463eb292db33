//! The JWT signing key kept with the data when `MINSHENG_JWT_SECRET` is not set.

use diesel::prelude::*;

use super::schema::server_keys::dsl as k;
use super::DbConn;

/// The newest signing key `(kid, secret)`, creating one with `generate` if there is none yet.
/// Several processes starting at once agree on one key: the insert of a fixed first kid can only
/// succeed once, and everybody reads back whatever is stored.
pub fn signing_key(conn: &mut DbConn, generate: impl FnOnce() -> String) -> QueryResult<(String, String)> {
    let existing = k::server_keys.select((k::kid, k::secret)).order(k::created_at.desc()).first(conn).optional()?;
    if let Some(key) = existing {
        return Ok(key);
    }
    let inserted = diesel::insert_into(k::server_keys)
        .values((
            k::kid.eq("k1"),
            k::secret.eq(generate()),
            k::created_at.eq(crate::domain::util::to_db(crate::domain::util::now())),
        ))
        .execute(conn);
    match inserted {
        Ok(_) | Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {}
        Err(e) => return Err(e),
    }
    k::server_keys.select((k::kid, k::secret)).order(k::created_at.desc()).first(conn)
}
