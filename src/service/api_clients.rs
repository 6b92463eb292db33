//! API clients: the integrating systems (a provincial 12345 platform, a petition system) that call
//! the API with a key. Admins create, list, change, rotate and revoke them within their subtree;
//! [`authenticate`] turns a presented key into the client's [`Principal`].
//!
//! A client acts with role `integration` and the scopes its key was granted; the case rules for
//! that role live in `crate::domain` (access and lifecycle), not here.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::audit;
use super::reference::visible_jurisdiction;
use super::{new_id, paginate, Page, PageRequest};
use crate::auth::api_key::{self, IssuedKey};
use crate::db::api_clients as q;
use crate::db::models::{ApiClient, ApiClientChanges, ApiClientKeyChanges};
use crate::db::{reference, write_tx, DbConn};
use crate::domain::access::{upper_bound, Principal, PrincipalKind};
use crate::domain::input::{need, Input};
use crate::domain::types::{Role, Scope};
use crate::domain::util::{from_db, now, to_db, ts, ts_opt};
use crate::error::{AppError, AppResult};

/// How long a rotated-out key stays valid when the admin does not say (hours).
pub const DEFAULT_OVERLAP_HOURS: i64 = 24;
/// The longest overlap a rotation may give the old key (hours: one week).
pub const MAX_OVERLAP_HOURS: i64 = 168;
/// A key's use is recorded at most once per this many seconds.
pub const LAST_USED_GRANULARITY_SECS: i64 = 60;

/// An API client as the API shows it: never the key, never its hash.
#[derive(Debug, Serialize)]
pub struct ApiClientView {
    pub id: String,
    pub name: String,
    /// Home jurisdiction; `None` for a whole-tree client.
    pub jurisdiction_code: Option<String>,
    pub scopes: Vec<Scope>,
    /// The public start of the current key (`msk_<12 hex>`), to tell keys apart.
    pub key_prefix: String,
    /// The start of the key the last rotation replaced, while it is still valid.
    pub previous_key_prefix: Option<String>,
    /// Until when that previous key is valid.
    #[serde(with = "ts_opt")]
    pub previous_key_valid_until: Option<DateTime<Utc>>,
    pub active: bool,
    #[serde(with = "ts_opt")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// When a key of this client was last used (recorded to the minute).
    #[serde(with = "ts_opt")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// The admin who created it.
    pub created_by: String,
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

/// A client with its newly issued key: the answer to create and rotate, the only two places the
/// key is ever shown. Deliberately not `Debug`.
#[derive(Serialize)]
pub struct IssuedKeyView {
    #[serde(flatten)]
    pub client: ApiClientView,
    /// The whole key. Store it now: it cannot be shown again.
    pub key: String,
}

fn view(c: ApiClient, now: DateTime<Utc>) -> AppResult<ApiClientView> {
    let scopes = Scope::split(&c.scopes)
        .ok_or_else(|| AppError::Internal(format!("API client {} has an unknown scope", c.id)))?;
    let previous_valid_until = c.previous_valid_until.map(from_db).filter(|until| c.active && *until > now);
    Ok(ApiClientView {
        id: c.id,
        name: c.name,
        jurisdiction_code: c.jurisdiction_code,
        scopes,
        key_prefix: c.key_prefix,
        previous_key_prefix: previous_valid_until.and(c.previous_key_prefix),
        previous_key_valid_until: previous_valid_until,
        active: c.active,
        revoked_at: c.revoked_at.map(from_db),
        last_used_at: c.last_used_at.map(from_db),
        created_by: c.created_by,
        created_at: from_db(c.created_at),
        updated_at: from_db(c.updated_at),
    })
}

/// Body of `POST /api-clients`.
#[derive(Debug)]
pub struct NewApiClient {
    name: String,
    jurisdiction_code: Option<String>,
    scopes: Vec<Scope>,
}

impl NewApiClient {
    /// Validates the body, reporting every bad field at once.
    pub fn parse(body: &Value) -> AppResult<NewApiClient> {
        let mut i = Input::new(body);
        let name = i.text("name", 100, false);
        let jurisdiction_code = i.opt_text("jurisdiction_code", 12, false);
        let scopes = i.choices("scopes", Scope::parse, Scope::NAMES);
        i.finish()?;
        Ok(NewApiClient {
            name: need(name, "name")?,
            jurisdiction_code,
            scopes: Scope::normalise(need(scopes, "scopes")?),
        })
    }
}

/// Reads a PATCH body: `{name?, scopes?}`.
pub fn parse_changes(body: &Value) -> AppResult<ApiClientChanges> {
    let mut i = Input::new(body);
    let name = i.opt_text("name", 100, false);
    let scopes = i.opt_choices("scopes", Scope::parse, Scope::NAMES);
    i.finish()?;
    Ok(ApiClientChanges { name, scopes: scopes.map(|s| Scope::join(&s)), updated_at: Some(to_db(now())) })
}

/// Reads a rotation body: `{overlap_hours?}` (0–168, default 24).
pub fn parse_rotation(body: &Value) -> AppResult<i64> {
    let mut i = Input::new(body);
    let hours = i.opt_int("overlap_hours", 0, MAX_OVERLAP_HOURS);
    i.finish()?;
    Ok(hours.unwrap_or(DEFAULT_OVERLAP_HOURS))
}

/// A key whose prefix no client uses yet (48 random bits: a clash is a rare event, not a loop).
fn fresh_key(conn: &mut DbConn) -> AppResult<IssuedKey> {
    for _ in 0..3 {
        let key = api_key::generate();
        if !q::prefix_taken(conn, &key.prefix)? {
            return Ok(key);
        }
    }
    Err(AppError::Internal("could not find an unused API key prefix".to_owned()))
}

/// Creates a client in the caller's subtree and issues its first key. The jurisdiction defaults
/// to the admin's own; only a whole-tree admin creates a whole-tree client. Admins may grant any
/// scope: each is a part of what an admin may do in their subtree.
pub fn create(conn: &mut DbConn, p: &Principal, new: NewApiClient) -> AppResult<IssuedKeyView> {
    p.require_admin()?;
    write_tx(conn, |conn| {
        let jurisdiction_code = match new.jurisdiction_code.clone().or_else(|| p.jurisdiction_code.clone()) {
            Some(code) => {
                visible_jurisdiction(conn, p, &code).map_err(|e| match e {
                    AppError::NotFound { .. } => {
                        AppError::invalid("jurisdiction_code", "not_found", "no such jurisdiction in your scope")
                    }
                    other => other,
                })?;
                Some(code)
            }
            None if p.scope_path.is_some() => {
                return Err(AppError::invalid(
                    "jurisdiction_code",
                    "required",
                    "only a whole-tree admin may create a whole-tree client",
                ))
            }
            None => None,
        };
        let key = fresh_key(conn)?;
        let t = now();
        let row = ApiClient {
            id: new_id(),
            name: new.name.clone(),
            jurisdiction_code,
            scopes: Scope::join(&new.scopes),
            key_prefix: key.prefix.clone(),
            key_hash: key.hash.clone(),
            previous_key_prefix: None,
            previous_key_hash: None,
            previous_valid_until: None,
            active: true,
            revoked_at: None,
            last_used_at: None,
            created_by: p.id.clone(),
            created_at: to_db(t),
            updated_at: to_db(t),
        };
        q::insert(conn, &row)?;
        let path = client_path(conn, &row)?;
        let details = json!({ "name": row.name, "jurisdiction_code": row.jurisdiction_code, "scopes": row.scopes });
        audit::record(conn, p, "api_client.created", "api_client", &row.id, path.as_deref(), details)?;
        Ok(IssuedKeyView { client: view(row, t)?, key: key.key })
    })
}

/// The jurisdiction path of a client, for the audit log (`None` for a whole-tree client).
fn client_path(conn: &mut DbConn, client: &ApiClient) -> AppResult<Option<String>> {
    Ok(match &client.jurisdiction_code {
        Some(code) => reference::jurisdiction(conn, code)?.map(|j| j.path),
        None => None,
    })
}

/// A client in the admin's subtree, or 404 (a scoped admin does not see whole-tree clients).
fn visible_client(conn: &mut DbConn, p: &Principal, id: &str) -> AppResult<ApiClient> {
    let client = q::by_id(conn, id)?.ok_or_else(|| AppError::not_found("API client"))?;
    let in_scope = match (&p.scope_path, &client.jurisdiction_code) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(_), Some(code)) => match visible_jurisdiction(conn, p, code) {
            Ok(_) => true,
            Err(AppError::NotFound { .. }) => false,
            Err(e) => return Err(e),
        },
    };
    if in_scope {
        Ok(client)
    } else {
        Err(AppError::not_found("API client"))
    }
}

/// Clients in the caller's subtree (admins only), in creation order.
pub fn list(conn: &mut DbConn, p: &Principal, page: PageRequest) -> AppResult<Page<ApiClientView>> {
    p.require_admin()?;
    let range = p.scope_path.as_ref().map(|s| (s.clone(), upper_bound(s)));
    let rows =
        q::list(conn, range.as_ref().map(|(a, b)| (a.as_str(), b.as_str())), page.after.as_deref(), page.limit + 1)?;
    let t = now();
    let page = paginate(rows, page.limit, |c| c.id.clone(), |c| view(c, t));
    Ok(Page { items: page.items.into_iter().collect::<AppResult<_>>()?, next_cursor: page.next_cursor })
}

/// One client in the caller's subtree.
pub fn get(conn: &mut DbConn, p: &Principal, id: &str) -> AppResult<ApiClientView> {
    p.require_admin()?;
    view(visible_client(conn, p, id)?, now())
}

/// Renames a client or changes its scopes.
pub fn update(conn: &mut DbConn, p: &Principal, id: &str, changes: ApiClientChanges) -> AppResult<ApiClientView> {
    p.require_admin()?;
    write_tx(conn, |conn| {
        let client = visible_client(conn, p, id)?;
        q::update(conn, id, &changes)?;
        let path = client_path(conn, &client)?;
        let details = json!({ "name": changes.name, "scopes": changes.scopes });
        audit::record(conn, p, "api_client.updated", "api_client", id, path.as_deref(), details)?;
        view(visible_client(conn, p, id)?, now())
    })
}

/// Issues a new key. The old one stays valid for `overlap_hours` (0: not at all) so the
/// integration can switch without downtime; a key from an earlier rotation that was still in its
/// overlap stops working now. A revoked client cannot be rotated (409 `client_revoked`).
pub fn rotate(conn: &mut DbConn, p: &Principal, id: &str, overlap_hours: i64) -> AppResult<IssuedKeyView> {
    p.require_admin()?;
    write_tx(conn, |conn| {
        let client = visible_client(conn, p, id)?;
        if !client.active {
            return Err(revoked());
        }
        let key = fresh_key(conn)?;
        let t = now();
        let keep_old = overlap_hours > 0;
        let changes = ApiClientKeyChanges {
            key_prefix: key.prefix.clone(),
            key_hash: key.hash.clone(),
            previous_key_prefix: keep_old.then(|| client.key_prefix.clone()),
            previous_key_hash: keep_old.then(|| client.key_hash.clone()),
            previous_valid_until: keep_old.then(|| to_db(t + Duration::hours(overlap_hours))),
            updated_at: to_db(t),
        };
        // Conditional on the key read above: two rotations at once cannot both succeed and leave
        // one admin holding a key that was replaced before it was ever used.
        if q::set_keys(conn, id, &client.key_prefix, &changes)? != 1 {
            return Err(AppError::conflict(
                "concurrent_update",
                "the API client changed while it was being rotated; retry",
            ));
        }
        let path = client_path(conn, &client)?;
        let details = json!({ "overlap_hours": overlap_hours, "key_prefix": key.prefix });
        audit::record(conn, p, "api_client.rotated", "api_client", id, path.as_deref(), details)?;
        Ok(IssuedKeyView { client: view(visible_client(conn, p, id)?, t)?, key: key.key })
    })
}

fn revoked() -> AppError {
    AppError::conflict("client_revoked", "the API client has been revoked; create a new one")
}

/// Revokes a client: both of its keys stop working. Revoking again changes nothing.
pub fn revoke(conn: &mut DbConn, p: &Principal, id: &str) -> AppResult<ApiClientView> {
    p.require_admin()?;
    write_tx(conn, |conn| {
        let client = visible_client(conn, p, id)?;
        let t = now();
        if client.active && q::revoke(conn, id, to_db(t))? == 1 {
            let path = client_path(conn, &client)?;
            audit::record(conn, p, "api_client.revoked", "api_client", id, path.as_deref(), json!({}))?;
        }
        view(visible_client(conn, p, id)?, t)
    })
}

/// The calling client's own record (`GET /me` with a key).
pub fn me(conn: &mut DbConn, p: &Principal) -> AppResult<ApiClientView> {
    let client = q::by_id(conn, &p.id)?.ok_or_else(|| AppError::not_found("API client"))?;
    view(client, now())
}

/// A key that checked out: the client's principal, and how much longer the key is valid when it
/// is a rotated-out key in its overlap (`None`: until rotated or revoked).
#[derive(Debug)]
pub struct Authenticated {
    /// The client, as the caller of the request.
    pub principal: Principal,
    /// Remaining validity of a previous key.
    pub valid_for: Option<std::time::Duration>,
}

/// Finds the active client whose current key, or previous key still in its overlap, has this
/// `prefix` and hashes to `presented_hash`; records the use (at most once a minute). Anything
/// else — unknown, wrong secret, expired, revoked — is the same 401 `invalid_api_key`.
pub fn authenticate(conn: &mut DbConn, prefix: &str, presented_hash: &str) -> AppResult<Authenticated> {
    let t = now();
    let matches = |stored: &str| api_key::constant_time_eq(stored.as_bytes(), presented_hash.as_bytes());
    let mut found = None;
    for row in q::by_key_prefix(conn, prefix)? {
        if row.key_prefix == prefix {
            if matches(&row.key_hash) {
                found = Some((row, None));
            }
        } else if let (Some(hash), Some(until)) = (&row.previous_key_hash, row.previous_valid_until) {
            let until = from_db(until);
            if row.previous_key_prefix.as_deref() == Some(prefix) && until > t && matches(hash) {
                found = Some((row, Some(until)));
            }
        }
    }
    let Some((client, until)) = found else {
        tracing::info!("API key refused: no such key");
        return Err(api_key::invalid_key());
    };
    if !client.active {
        tracing::info!(client_id = %client.id, "API key refused: client {} is revoked", client.id);
        return Err(api_key::invalid_key());
    }
    let scopes = Scope::split(&client.scopes)
        .ok_or_else(|| AppError::Internal(format!("API client {} has an unknown scope", client.id)))?;
    let scope_path = match &client.jurisdiction_code {
        Some(code) => Some(
            reference::jurisdiction(conn, code)?
                .ok_or_else(|| AppError::Internal(format!("API client {} has a missing jurisdiction", client.id)))?
                .path,
        ),
        None => None,
    };
    let granularity = Duration::seconds(LAST_USED_GRANULARITY_SECS);
    if client.last_used_at.is_none_or(|last| from_db(last) < t - granularity) {
        // Bookkeeping: a failure to record the use must not refuse the request.
        if let Err(e) = q::touch(conn, &client.id, to_db(t), to_db(t - granularity)) {
            tracing::warn!(client_id = %client.id, error = %e, "could not record the use of API client {}", client.id);
        }
    }
    Ok(Authenticated {
        principal: Principal {
            id: client.id,
            name: client.name,
            kind: PrincipalKind::ApiClient,
            role: Role::Integration,
            jurisdiction_code: client.jurisdiction_code,
            scope_path,
            department_id: None,
            session_id: None,
            scopes,
        },
        valid_for: until.and_then(|u| (u - t).to_std().ok()),
    })
}
