//! Queries on the audit logs: reads of personal data, and administrative changes.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{admin_audit, personal_data_access};
use super::DbConn;

/// One read of a complainant's personal data.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = personal_data_access)]
pub struct PersonalDataAccess {
    pub id: String,
    pub case_id: String,
    pub jurisdiction_path: String,
    pub actor_id: String,
    pub actor_name: String,
    pub at: NaiveDateTime,
    pub request_id: Option<String>,
}

/// One administrative change.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = admin_audit)]
pub struct AdminAudit {
    pub id: String,
    pub actor_id: String,
    pub actor_name: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub jurisdiction_path: Option<String>,
    pub at: NaiveDateTime,
    pub details: String,
}

/// Records a personal-data read.
pub fn insert_access(conn: &mut DbConn, row: &PersonalDataAccess) -> QueryResult<()> {
    diesel::insert_into(personal_data_access::table).values(row).execute(conn).map(|_| ())
}

/// Records an administrative change.
pub fn insert_admin(conn: &mut DbConn, row: &AdminAudit) -> QueryResult<()> {
    diesel::insert_into(admin_audit::table).values(row).execute(conn).map(|_| ())
}

/// Personal-data reads in a path range (all when `None`), optionally of one case, newest first
/// (ids are time-ordered UUID v7), before `before`.
pub fn list_access(
    conn: &mut DbConn,
    range: Option<(&str, &str)>,
    case_id: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<PersonalDataAccess>> {
    let mut q = personal_data_access::table
        .select(PersonalDataAccess::as_select())
        .order(personal_data_access::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some((from, to)) = range {
        q = q
            .filter(personal_data_access::jurisdiction_path.ge(from.to_owned()))
            .filter(personal_data_access::jurisdiction_path.lt(to.to_owned()));
    }
    if let Some(case_id) = case_id {
        q = q.filter(personal_data_access::case_id.eq(case_id.to_owned()));
    }
    if let Some(before) = before {
        q = q.filter(personal_data_access::id.lt(before.to_owned()));
    }
    q.load(conn)
}

/// Administrative changes in a path range (all, including tree-wide ones, when `None`), newest first.
pub fn list_admin(
    conn: &mut DbConn,
    range: Option<(&str, &str)>,
    target_type: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AdminAudit>> {
    let mut q =
        admin_audit::table.select(AdminAudit::as_select()).order(admin_audit::id.desc()).limit(limit).into_boxed();
    if let Some((from, to)) = range {
        q = q
            .filter(admin_audit::jurisdiction_path.ge(from.to_owned()))
            .filter(admin_audit::jurisdiction_path.lt(to.to_owned()));
    }
    if let Some(t) = target_type {
        q = q.filter(admin_audit::target_type.eq(t.to_owned()));
    }
    if let Some(before) = before {
        q = q.filter(admin_audit::id.lt(before.to_owned()));
    }
    q.load(conn)
}
