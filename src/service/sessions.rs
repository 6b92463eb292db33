//! Sign-in sessions: login with throttling, rotating refresh tokens with reuse detection, logout,
//! and ending every session of a user (password change, disabling, role change).
//!
//! A login opens a session and hands out a short-lived access token (carrying the session id) and
//! an opaque refresh token. Only the SHA-256 of a refresh token is stored. Each refresh marks the
//! presented token used and issues a new one in the same session; presenting a used token again is
//! taken as theft and revokes the whole session, so neither the thief nor the victim can go on.

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::users::principal_for;
use crate::db::sessions::{self as q, RefreshToken, Session};
use crate::db::{users, write_tx, DbConn};
use crate::domain::access::Principal;
use crate::domain::util::{from_db, to_db};
use crate::error::{AppError, AppResult};

/// Prefix of refresh tokens, so they are recognisable in a leak scan.
pub const REFRESH_PREFIX: &str = "msr_";

/// A new random refresh token.
pub fn new_refresh_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{REFRESH_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token: hex SHA-256.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Throttling of failed logins, per account and per client address.
#[derive(Debug, Clone)]
pub struct ThrottlePolicy {
    /// Failures of one account within `window` before it is locked.
    pub max_per_account: i32,
    /// Failures from one address within `window` before it is locked.
    pub max_per_address: i32,
    /// The counting window, and how long a lock lasts.
    pub window: Duration,
}

/// The throttle keys of a login attempt.
pub fn throttle_keys(username: &str, address: &str) -> [String; 2] {
    [format!("user:{}", username.to_lowercase()), format!("addr:{address}")]
}

/// Counts a password attempt against the account and the address *before* the password is
/// checked, and refuses (429 with `Retry-After`) when either is locked or this attempt goes over its
/// limit, which then locks it for `window`. Counting first means parallel guesses cannot slip past
/// the limit; a successful attempt gives its count back ([`forgive`]).
pub fn begin_attempt(
    conn: &mut DbConn,
    keys: &[String; 2],
    policy: &ThrottlePolicy,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let locked_until = write_tx(conn, |conn| {
        let rows = q::lock_throttles(conn, keys, to_db(now))?;
        let mut locked_until: Option<DateTime<Utc>> = None;
        for (i, key) in keys.iter().enumerate() {
            let limit = if i == 0 { policy.max_per_account } else { policy.max_per_address };
            let mut t = rows
                .iter()
                .find(|t| &t.key == key)
                .cloned()
                .ok_or_else(|| AppError::Internal("throttle row missing".to_owned()))?;
            if let Some(until) = t.locked_until.map(from_db).filter(|u| *u > now) {
                locked_until = locked_until.max(Some(until));
                continue;
            }
            if from_db(t.window_start) + policy.window <= now || t.locked_until.is_some() {
                t.failures = 0;
                t.window_start = to_db(now);
                t.locked_until = None;
            }
            t.failures += 1;
            if t.failures > limit {
                let until = now + policy.window;
                t.locked_until = Some(to_db(until));
                locked_until = locked_until.max(Some(until));
                tracing::warn!(throttle = %key.split(':').next().unwrap_or(""), "sign-in locked after repeated failures");
            }
            q::save_throttle(conn, &t)?;
        }
        Ok::<_, AppError>(locked_until)
    })?;
    match locked_until {
        Some(until) => Err(AppError::RateLimited {
            detail: "too many failed sign-in attempts; try again later".to_owned(),
            retry_after_secs: u64::try_from((until - now).num_seconds().max(1)).unwrap_or(1),
        }),
        None => Ok(()),
    }
}

/// Gives back a successful attempt's count: the account starts afresh, the address gets one back.
pub fn forgive(conn: &mut DbConn, keys: &[String; 2], now: DateTime<Utc>) -> AppResult<()> {
    let rows = q::lock_throttles(conn, keys, to_db(now))?;
    for mut t in rows {
        if t.locked_until.is_some() {
            continue;
        }
        t.failures = if t.key == keys[0] { 0 } else { (t.failures - 1).max(0) };
        q::save_throttle(conn, &t)?;
    }
    Ok(())
}

/// Opens a session for a signed-in user: returns the principal (with its session id), the first
/// refresh token and when the session ends.
pub fn open(
    conn: &mut DbConn,
    mut principal: Principal,
    keys: &[String; 2],
    ttl: Duration,
    now: DateTime<Utc>,
) -> AppResult<(Principal, String, DateTime<Utc>)> {
    write_tx(conn, |conn| {
        forgive(conn, keys, now)?;
        let session = Session {
            id: super::new_id(),
            user_id: principal.id.clone(),
            created_at: to_db(now),
            expires_at: to_db(now + ttl),
            revoked_at: None,
            revoke_reason: None,
        };
        q::insert_session(conn, &session)?;
        let token = new_refresh_token();
        q::insert_refresh(
            conn,
            &RefreshToken {
                token_hash: token_hash(&token),
                session_id: session.id.clone(),
                created_at: to_db(now),
                used_at: None,
            },
        )?;
        principal.session_id = Some(session.id);
        Ok((principal, token, now + ttl))
    })
}

/// What a refresh attempt came to.
pub enum Refreshed {
    /// A new access principal and refresh token, and when the session ends.
    Ok(Principal, String, DateTime<Utc>),
    /// The token was already used: the session has been revoked (ids to forget).
    Reused(String),
}

/// Exchanges a refresh token for a new one (and a new access token). A token that was already used
/// revokes its session; the revocation is committed even though the caller is refused.
pub fn refresh(conn: &mut DbConn, token: &str, now: DateTime<Utc>) -> AppResult<Refreshed> {
    let invalid = || AppError::Unauthenticated {
        code: "invalid_refresh_token",
        detail: "the refresh token is not valid".to_owned(),
    };
    let hash = token_hash(token);
    write_tx(conn, |conn| {
        let row = q::refresh_by_hash(conn, &hash)?.ok_or_else(invalid)?;
        let session = q::session(conn, &row.session_id)?.ok_or_else(invalid)?;
        if session.revoked_at.is_some() || from_db(session.expires_at) <= now {
            return Err(invalid());
        }
        if !q::use_refresh(conn, &hash, to_db(now))? {
            q::revoke(conn, &session.id, to_db(now), "refresh_token_reused")?;
            tracing::warn!(session_id = %session.id, user_id = %session.user_id, "refresh token reused; session revoked");
            return Ok(Refreshed::Reused(session.id));
        }
        let user = users::by_id(conn, &session.user_id)?.filter(|u| u.active).ok_or_else(invalid)?;
        let mut principal = principal_for(conn, &user)?;
        principal.session_id = Some(session.id.clone());
        let next = new_refresh_token();
        let expires_at = from_db(session.expires_at);
        q::insert_refresh(
            conn,
            &RefreshToken {
                token_hash: token_hash(&next),
                session_id: session.id,
                created_at: to_db(now),
                used_at: None,
            },
        )?;
        Ok(Refreshed::Ok(principal, next, expires_at))
    })
}

/// Ends the caller's session.
pub fn logout(conn: &mut DbConn, p: &Principal, now: DateTime<Utc>) -> AppResult<Vec<String>> {
    match &p.session_id {
        Some(sid) => {
            q::revoke(conn, sid, to_db(now), "logout")?;
            Ok(vec![sid.clone()])
        }
        None => Ok(Vec::new()),
    }
}

/// Whether an access token's session is still live (its user active too).
pub fn is_live(conn: &mut DbConn, session_id: &str, now: DateTime<Utc>) -> AppResult<bool> {
    Ok(q::is_live(conn, session_id, to_db(now))?)
}

/// Ends every session of a user, inside the caller's transaction; returns their ids.
pub fn revoke_all(conn: &mut DbConn, user_id: &str, reason: &str, now: DateTime<Utc>) -> AppResult<Vec<String>> {
    Ok(q::revoke_all(conn, user_id, to_db(now), reason)?)
}
