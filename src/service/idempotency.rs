//! Safe retries: a POST with an `Idempotency-Key` is done at most once per caller and key.
//!
//! The request *claims* the key (a row), does its work and records its answer, all in one
//! transaction — so a committed change always has its recorded answer, and a rolled-back one (a
//! failed request, or one whose process died) leaves no trace: the key may be retried at once. A
//! repeat with the same body gets that answer again; a repeat while the first is still running
//! waits for the first's transaction (on its key row or the write lock) and then replays; a repeat
//! with another body is refused. Only successful answers are kept. Keys are kept
//! [`KEY_TTL_HOURS`] hours, then purged. Claims without an answer were left by earlier versions
//! (which claimed in a transaction of its own); they are taken over after [`STALE_CLAIM_SECS`].

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::db::schema::idempotency_keys::dsl as k;
use crate::db::{join_tx, DbConn};
use crate::domain::util::to_db;
use crate::error::AppResult;

/// How long a key is remembered.
pub const KEY_TTL_HOURS: i64 = 24;
/// After this long without an answer, a claim is taken to be dead and may be taken over.
pub const STALE_CLAIM_SECS: i64 = 300;

/// An answer to replay.
#[derive(Debug, Clone)]
pub struct Stored {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// What a claim found.
#[derive(Debug)]
pub enum Claim {
    /// The key is ours: do the work.
    Fresh,
    /// Answered before: replay this.
    Replay(Stored),
    /// Another request with this key is being answered right now.
    InProgress,
    /// The key was used with another request.
    Mismatch,
}

/// The fingerprint of a request: method, path and the canonical JSON of its body.
pub fn fingerprint(method: &str, path: &str, body: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    // serde_json objects are sorted maps here, so equal bodies serialise equally.
    h.update(body.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a key is acceptable: 1–255 visible ASCII characters.
pub fn is_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// Claims `key` for the caller, or says why not.
pub fn claim(conn: &mut DbConn, principal: &str, key: &str, hash: &str, now: DateTime<Utc>) -> AppResult<Claim> {
    join_tx(conn, |conn| {
        let row = (
            k::principal_id.eq(principal),
            k::key.eq(key),
            k::request_hash.eq(hash),
            k::claimed_at.eq(to_db(now)),
            k::created_at.eq(to_db(now)),
            k::expires_at.eq(to_db(now + Duration::hours(KEY_TTL_HOURS))),
        );
        let inserted = match conn {
            DbConn::Pg(c) => {
                diesel::insert_into(k::idempotency_keys).values(row).on_conflict_do_nothing().execute(c)?
            }
            DbConn::Sqlite(c) => diesel::insert_or_ignore_into(k::idempotency_keys).values(row).execute(c)?,
        };
        if inserted == 1 {
            return Ok(Claim::Fresh);
        }
        type Existing =
            (String, chrono::NaiveDateTime, Option<i32>, Option<String>, Option<String>, chrono::NaiveDateTime);
        let (stored_hash, claimed_at, status, body, headers, expires_at): Existing = k::idempotency_keys
            .find((principal, key))
            .select((k::request_hash, k::claimed_at, k::status, k::response_body, k::response_headers, k::expires_at))
            .first(conn)?;
        if expires_at.and_utc() <= now {
            // Expired but not purged yet: a new request.
            diesel::update(k::idempotency_keys.find((principal, key)))
                .set((
                    k::request_hash.eq(hash),
                    k::claimed_at.eq(to_db(now)),
                    k::status.eq(None::<i32>),
                    k::response_body.eq(None::<String>),
                    k::response_headers.eq(None::<String>),
                    k::created_at.eq(to_db(now)),
                    k::expires_at.eq(to_db(now + Duration::hours(KEY_TTL_HOURS))),
                ))
                .execute(conn)?;
            return Ok(Claim::Fresh);
        }
        if stored_hash != hash {
            return Ok(Claim::Mismatch);
        }
        match (status, body) {
            (Some(status), Some(body)) => Ok(Claim::Replay(Stored {
                status: u16::try_from(status).unwrap_or(200),
                body,
                headers: headers.and_then(|h| serde_json::from_str(&h).ok()).unwrap_or_default(),
            })),
            _ if claimed_at.and_utc() + Duration::seconds(STALE_CLAIM_SECS) < now => {
                diesel::update(k::idempotency_keys.find((principal, key)))
                    .set(k::claimed_at.eq(to_db(now)))
                    .execute(conn)?;
                Ok(Claim::Fresh)
            }
            _ => Ok(Claim::InProgress),
        }
    })
}

/// Records the answer of a claimed key (in the transaction of the work).
pub fn complete(conn: &mut DbConn, principal: &str, key: &str, answer: &Stored) -> AppResult<()> {
    let headers = serde_json::to_string(&answer.headers).unwrap_or_else(|_| "[]".to_owned());
    let update = diesel::update(k::idempotency_keys.find((principal, key))).set((
        k::status.eq(Some(i32::from(answer.status))),
        k::response_body.eq(Some(&answer.body)),
        k::response_headers.eq(Some(headers)),
    ));
    enum Answer {}
    crate::db::Prepared::by_type::<Answer>(update.returning(k::key)).run_on::<String>(conn)?;
    Ok(())
}

/// Forgets keys past their time; returns how many.
pub fn purge_expired(conn: &mut DbConn, now: DateTime<Utc>) -> AppResult<usize> {
    Ok(diesel::delete(k::idempotency_keys.filter(k::expires_at.lt(to_db(now)))).execute(conn)?)
}
