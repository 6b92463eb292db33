//! The two audit logs: every administrative change, and every read of a complainant's personal
//! data. Both are written in the same transaction as what they record and are readable by admins
//! within their subtree.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{new_id, paginate, Page, PageRequest};
use crate::db::audit::{self as q, AdminAudit, PersonalDataAccess};
use crate::db::DbConn;
use crate::domain::access::{upper_bound, Principal};
use crate::domain::util::{from_db, now, to_db, ts};
use crate::error::AppResult;

/// Records an administrative change made by `p`. `path` is the target's jurisdiction path (`None`
/// for tree-wide data such as categories).
pub fn record(
    conn: &mut DbConn,
    p: &Principal,
    action: &str,
    target_type: &str,
    target_id: &str,
    path: Option<&str>,
    details: Value,
) -> AppResult<()> {
    q::insert_admin(
        conn,
        &AdminAudit {
            id: new_id(),
            actor_id: p.id.clone(),
            actor_name: p.name.clone(),
            action: action.to_owned(),
            target_type: target_type.to_owned(),
            target_id: target_id.to_owned(),
            jurisdiction_path: path.map(str::to_owned),
            at: to_db(now()),
            details: details.to_string(),
        },
    )?;
    tracing::info!(actor_id = %p.id, action, target_type, target_id, "administrative change");
    Ok(())
}

/// Records that `p` read the personal data of a case.
pub fn record_personal_data_read(
    conn: &mut DbConn,
    p: &Principal,
    case_id: &str,
    path: &str,
    request_id: Option<String>,
) -> AppResult<()> {
    q::insert_access(
        conn,
        &PersonalDataAccess {
            id: new_id(),
            case_id: case_id.to_owned(),
            jurisdiction_path: path.to_owned(),
            actor_id: p.id.clone(),
            actor_name: p.name.clone(),
            at: to_db(now()),
            request_id,
        },
    )?;
    Ok(())
}

/// An administrative change as the API shows it.
#[derive(Debug, Serialize)]
pub struct AdminAuditView {
    pub id: String,
    pub actor: super::cases::ActorView,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    #[serde(with = "ts")]
    pub at: DateTime<Utc>,
    pub details: Value,
}

/// A personal-data read as the API shows it.
#[derive(Debug, Serialize)]
pub struct AccessView {
    pub id: String,
    pub case_id: String,
    pub actor: super::cases::ActorView,
    #[serde(with = "ts")]
    pub at: DateTime<Utc>,
    pub request_id: Option<String>,
}

fn range(p: &Principal) -> Option<(String, String)> {
    p.scope_path.as_ref().map(|s| (s.clone(), upper_bound(s)))
}

/// Administrative changes in the caller's subtree, newest first (tree-wide ones for whole-tree admins).
pub fn list_admin(
    conn: &mut DbConn,
    p: &Principal,
    target_type: Option<String>,
    req: PageRequest,
) -> AppResult<Page<AdminAuditView>> {
    p.require_admin()?;
    let r = range(p);
    let rows = q::list_admin(
        conn,
        r.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        target_type.as_deref(),
        req.after.as_deref(),
        req.limit + 1,
    )?;
    Ok(paginate(
        rows,
        req.limit,
        |a| a.id.clone(),
        |a| AdminAuditView {
            id: a.id,
            actor: super::cases::ActorView { id: a.actor_id, name: a.actor_name },
            action: a.action,
            target_type: a.target_type,
            target_id: a.target_id,
            at: from_db(a.at),
            details: serde_json::from_str(&a.details).unwrap_or(Value::Null),
        },
    ))
}

/// Personal-data reads in the caller's subtree, newest first, optionally of one case.
pub fn list_access(
    conn: &mut DbConn,
    p: &Principal,
    case_id: Option<String>,
    req: PageRequest,
) -> AppResult<Page<AccessView>> {
    p.require_admin()?;
    let r = range(p);
    let rows = q::list_access(
        conn,
        r.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        case_id.as_deref(),
        req.after.as_deref(),
        req.limit + 1,
    )?;
    Ok(paginate(
        rows,
        req.limit,
        |a| a.id.clone(),
        |a| AccessView {
            id: a.id,
            case_id: a.case_id,
            actor: super::cases::ActorView { id: a.actor_id, name: a.actor_name },
            at: from_db(a.at),
            request_id: a.request_id,
        },
    ))
}
