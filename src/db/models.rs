//! Row types: for each table a read struct, a `NewX` for inserts and, where rows change, an
//! `XChanges` changeset. Timestamps are UTC `NaiveDateTime`; the domain converts at the edge.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::*;

/// A jurisdiction row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = jurisdictions)]
pub struct Jurisdiction {
    pub code: String,
    pub name: String,
    pub parent_code: Option<String>,
    pub path: String,
    pub depth: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A department row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = departments)]
pub struct Department {
    pub id: String,
    pub name: String,
    pub jurisdiction_code: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Department fields a PATCH may change.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = departments)]
pub struct DepartmentChanges {
    pub name: Option<String>,
    pub active: Option<bool>,
    pub updated_at: Option<NaiveDateTime>,
}

/// A category row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = categories)]
pub struct Category {
    pub code: String,
    pub name: String,
    pub deadline_days: i32,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// What the category covers (the Open311 service description).
    pub description: Option<String>,
    /// The Open311 service group.
    pub service_group: Option<String>,
    /// Comma-separated keywords (none contains a comma).
    pub keywords: Option<String>,
    /// JSON array of the Open311 attribute definitions; `None`: no extra questions.
    pub attributes: Option<String>,
}

/// Category fields a PATCH may change; `Some(None)` clears a nullable column.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = categories)]
pub struct CategoryChanges {
    pub name: Option<String>,
    pub deadline_days: Option<i32>,
    pub active: Option<bool>,
    pub updated_at: Option<NaiveDateTime>,
    pub description: Option<Option<String>>,
    pub service_group: Option<Option<String>>,
    pub keywords: Option<Option<String>>,
    pub attributes: Option<Option<String>>,
}

/// A programme row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = programmes)]
pub struct Programme {
    pub id: String,
    pub name: String,
    pub year: i32,
    pub jurisdiction_code: String,
    pub description: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Programme fields a PATCH may change.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = programmes)]
pub struct ProgrammeChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

/// A user row (the password hash never leaves the database layer's callers in a response).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub jurisdiction_code: Option<String>,
    pub department_id: Option<String>,
    pub display_name: Option<String>,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A case row. Inserted with `None` bound as NULL rather than written as `DEFAULT` (no nullable
/// column has another default): the statement's text is then the same for every case, and diesel
/// prepares it once per connection instead of PostgreSQL parsing and planning it per create.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = cases, treat_none_as_default_value = false)]
pub struct Case {
    pub id: String,
    pub case_ref: String,
    pub kind: String,
    pub title: String,
    pub description: String,
    pub category_code: String,
    pub jurisdiction_code: String,
    pub jurisdiction_path: String,
    pub programme_id: Option<String>,
    pub channel: String,
    pub priority: String,
    pub complainant_name: Option<String>,
    pub complainant_phone: Option<String>,
    pub location_address: Option<String>,
    pub location_lat: Option<f64>,
    pub location_lon: Option<f64>,
    pub status: String,
    pub outcome: Option<String>,
    pub department_id: Option<String>,
    pub assignee_id: Option<String>,
    pub due_at: NaiveDateTime,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub resolved_at: Option<NaiveDateTime>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
    pub verified_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub satisfaction: Option<String>,
    pub rework_count: i32,
    pub duplicate_of: Option<String>,
    pub external_source: Option<String>,
    pub external_id: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
    pub first_assigned_at: Option<NaiveDateTime>,
    pub first_acknowledged_at: Option<NaiveDateTime>,
    pub responded: bool,
    pub resolved_on_time: Option<bool>,
    pub resolution_secs: Option<i64>,
    pub overdue_notified_at: Option<NaiveDateTime>,
    /// Personal data, like the name and phone.
    pub complainant_email: Option<String>,
    pub media_url: Option<String>,
    /// The requester's own address-system id for the location (Open311 `address_id`).
    pub address_id: Option<String>,
    /// JSON object of the answers to the category's attributes.
    pub attributes: Option<String>,
}

/// The columns of a case that Open311 publishes, and only those: reading through this struct,
/// the public endpoints never load the complainant, the title, the description or any note.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = cases)]
pub struct PublicCase {
    pub case_ref: String,
    pub category_code: String,
    pub status: String,
    pub outcome: Option<String>,
    /// The department's answer (办结答复), published as the status notes once resolved.
    pub resolution: Option<String>,
    pub department_id: Option<String>,
    pub location_address: Option<String>,
    pub location_lat: Option<f64>,
    pub location_lon: Option<f64>,
    pub address_id: Option<String>,
    pub media_url: Option<String>,
    pub due_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub verified_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
}

/// The lifecycle columns an action rewrites (all of them, `None` meaning NULL).
#[derive(Debug, AsChangeset)]
#[diesel(table_name = cases, treat_none_as_null = true)]
pub struct CaseLifecycleChanges {
    pub status: String,
    pub outcome: Option<String>,
    pub department_id: Option<String>,
    pub assignee_id: Option<String>,
    pub due_at: NaiveDateTime,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub resolved_at: Option<NaiveDateTime>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
    pub verified_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub satisfaction: Option<String>,
    pub rework_count: i32,
    pub duplicate_of: Option<String>,
    pub updated_at: NaiveDateTime,
    pub version: i64,
    pub first_assigned_at: Option<NaiveDateTime>,
    pub first_acknowledged_at: Option<NaiveDateTime>,
    pub responded: bool,
    pub resolved_on_time: Option<bool>,
    pub resolution_secs: Option<i64>,
    /// When `case.overdue` was sent for the current deadline (cleared when the deadline moves).
    pub overdue_notified_at: Option<NaiveDateTime>,
}

/// An audit-trail row (inserted as a prepared statement, as [`Case`] is).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = case_events, treat_none_as_default_value = false)]
pub struct CaseEvent {
    pub case_id: String,
    pub seq: i64,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor_id: String,
    pub actor_name: String,
    pub at: NaiveDateTime,
    pub note: Option<String>,
    pub data: String,
}

/// User fields an admin may change (`None` leaves a field as it is).
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChangeset {
    pub role: Option<String>,
    pub jurisdiction_code: Option<String>,
    pub department_id: Option<String>,
    pub display_name: Option<String>,
    pub active: Option<bool>,
    pub password_hash: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}
/// An API client row: an integrating system and its key (as a prefix and a hash, never in clear).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_clients)]
pub struct ApiClient {
    pub id: String,
    pub name: String,
    pub jurisdiction_code: Option<String>,
    /// Space-separated scope names, sorted.
    pub scopes: String,
    pub key_prefix: String,
    pub key_hash: String,
    pub previous_key_prefix: Option<String>,
    pub previous_key_hash: Option<String>,
    pub previous_valid_until: Option<NaiveDateTime>,
    pub active: bool,
    pub revoked_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// API client fields a PATCH may change.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = api_clients)]
pub struct ApiClientChanges {
    pub name: Option<String>,
    pub scopes: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

/// The key columns a rotation rewrites (`None` meaning NULL: no previous key any more).
#[derive(Debug, AsChangeset)]
#[diesel(table_name = api_clients, treat_none_as_null = true)]
pub struct ApiClientKeyChanges {
    pub key_prefix: String,
    pub key_hash: String,
    pub previous_key_prefix: Option<String>,
    pub previous_key_hash: Option<String>,
    pub previous_valid_until: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}
