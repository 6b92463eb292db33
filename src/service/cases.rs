//! Cases: intake, reading, the filtered list, lifecycle actions and the audit trail.
//!
//! Every write runs in one transaction that changes the case, bumps its `version` and appends its
//! event; an action first locks the case row, so two concurrent actions are serialised and the
//! second sees the first's result (or fails `If-Match`).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::reference::{visible_jurisdiction, visible_programme};
use super::{encode_cursor, Page, PageRequest};
use crate::db::cases::{self as q, CaseFilter};
use crate::db::models::{Case, CaseEvent, CaseLifecycleChanges};
use crate::db::{join_tx, reference, users, write_tx, DbConn};
use crate::domain::access::{upper_bound, Principal};
use crate::domain::input::{is_email, is_phone, is_web_url, need, Input, Query};
use crate::domain::lifecycle::{self, allowed_actions, CaseState, Command, EventDraft};
use crate::domain::types::{Action, Channel, Kind, Outcome, Priority, Role, Satisfaction, Scope, Status};
use crate::domain::util::{from_db, now, to_db, ts, ts_opt};
use crate::error::{AppError, AppResult};

/// Case refs number cases per jurisdiction and calendar year in China Standard Time.
const CHINA_OFFSET_SECS: i64 = 8 * 3600;

/// The complainant as shown to a reader; masked unless the reader may see personal data.
#[derive(Debug, Serialize)]
pub struct ComplainantView {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// Whether `name`, `phone` and `email` are masked.
    pub masked: bool,
}

/// Where the case is.
#[derive(Debug, Serialize)]
pub struct LocationView {
    pub address: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// The requester's address-system id (Open311 `address_id`).
    pub address_id: Option<String>,
}

/// The source system's own reference for a case it pushed in.
#[derive(Debug, Serialize)]
pub struct ExternalView {
    pub source: String,
    pub id: String,
}

/// A case as the API shows it.
#[derive(Debug, Serialize)]
pub struct CaseView {
    pub id: String,
    #[serde(rename = "ref")]
    pub case_ref: String,
    pub kind: String,
    pub title: String,
    pub description: String,
    pub category_code: String,
    pub jurisdiction_code: String,
    pub programme_id: Option<String>,
    pub channel: String,
    pub priority: String,
    pub complainant: Option<ComplainantView>,
    pub location: Option<LocationView>,
    pub status: String,
    pub outcome: Option<String>,
    pub department_id: Option<String>,
    pub assignee_id: Option<String>,
    #[serde(with = "ts")]
    pub due_at: DateTime<Utc>,
    pub overdue: bool,
    #[serde(with = "ts_opt")]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[serde(with = "ts_opt")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
    #[serde(with = "ts_opt")]
    pub verified_at: Option<DateTime<Utc>>,
    #[serde(with = "ts_opt")]
    pub closed_at: Option<DateTime<Utc>>,
    pub satisfaction: Option<String>,
    pub rework_count: i32,
    pub duplicate_of: Option<String>,
    pub external: Option<ExternalView>,
    /// A link to a photo or other media (Open311 `media_url`).
    pub media_url: Option<String>,
    /// Answers to the category's extra questions (Open311 attributes): `{"CODE": value}`.
    pub attributes: Option<Value>,
    pub created_by: String,
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// Actions the lifecycle allows from the current status.
    pub allowed_actions: Vec<&'static str>,
}

impl CaseView {
    /// The `ETag` of this version of the case.
    pub fn etag(&self) -> String {
        etag(self.version)
    }
}

/// The strong `ETag` for a case version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// Masks a name: first character kept, the rest starred (`张三丰` → `张**`); a one-character name
/// is starred whole.
pub fn mask_name(name: &str) -> String {
    let count = name.chars().count();
    if count <= 1 {
        return "*".repeat(count);
    }
    name.chars().enumerate().map(|(i, c)| if i == 0 { c } else { '*' }).collect()
}

/// Masks an email address: the first character of the local part kept, the rest of it starred,
/// the domain kept (`zhangsan@example.com` → `z*******@example.com`).
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => format!("{}@{domain}", mask_name(local)),
        None => mask_name(email),
    }
}

/// Masks a phone number so at most seven of its characters show: a mobile number keeps its first
/// three and last four digits (`13812345678` → `138****5678`); a shorter number keeps only its last
/// two.
pub fn mask_phone(phone: &str) -> String {
    let len = phone.chars().count();
    let (head, tail) = match len {
        11.. => (3, 4),
        5..=10 => (0, 2),
        _ => (0, 0),
    };
    phone.chars().enumerate().map(|(i, c)| if i < head || i >= len - tail { c } else { '*' }).collect()
}

/// Whether the caller may ask for the complainant's name and phone unmasked: supervisors and
/// admins of the subtree, the case's creator (a caseworker or an API client), and the department
/// holding it. Viewers never; API clients never for a case they did not create.
pub fn sees_personal_data(p: &Principal, case: &Case) -> bool {
    match p.role {
        Role::Admin | Role::Supervisor => true,
        Role::Viewer => false,
        Role::Caseworker => {
            case.created_by == p.id || (case.department_id.is_some() && case.department_id == p.department_id)
        }
        Role::Integration => case.created_by == p.id,
    }
}

/// The case as an outsider sees it (personal data masked), e.g. in a webhook payload.
pub fn masked_view(case: Case, now: DateTime<Utc>) -> AppResult<CaseView> {
    view(case, false, now)
}

/// Shapes a case for the API. Personal data is masked unless `reveal` (which the caller has
/// checked and logged).
fn view(case: Case, reveal: bool, now: DateTime<Utc>) -> AppResult<CaseView> {
    let status = Status::parse(&case.status)
        .ok_or_else(|| AppError::Internal(format!("case {} has unknown status", case.id)))?;
    let due_at = from_db(case.due_at);
    let unmasked = reveal;
    let has_complainant =
        case.complainant_name.is_some() || case.complainant_phone.is_some() || case.complainant_email.is_some();
    let complainant = has_complainant.then(|| ComplainantView {
        name: case.complainant_name.as_deref().map(|n| if unmasked { n.to_owned() } else { mask_name(n) }),
        phone: case.complainant_phone.as_deref().map(|n| if unmasked { n.to_owned() } else { mask_phone(n) }),
        email: case.complainant_email.as_deref().map(|n| if unmasked { n.to_owned() } else { mask_email(n) }),
        masked: !unmasked,
    });
    let location = (case.location_address.is_some() || case.location_lat.is_some() || case.address_id.is_some())
        .then_some(LocationView {
            address: case.location_address,
            lat: case.location_lat,
            lon: case.location_lon,
            address_id: case.address_id,
        });
    let attributes = case
        .attributes
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| AppError::Internal(format!("case {} has unreadable attributes: {e}", case.id)))?;
    let external = match (case.external_source, case.external_id) {
        (Some(source), Some(id)) => Some(ExternalView { source, id }),
        _ => None,
    };
    Ok(CaseView {
        id: case.id,
        case_ref: case.case_ref,
        kind: case.kind,
        title: case.title,
        description: case.description,
        category_code: case.category_code,
        jurisdiction_code: case.jurisdiction_code,
        programme_id: case.programme_id,
        channel: case.channel,
        priority: case.priority,
        complainant,
        location,
        status: case.status,
        outcome: case.outcome,
        department_id: case.department_id,
        assignee_id: case.assignee_id,
        due_at,
        overdue: status.is_open() && due_at < now,
        acknowledged_at: case.acknowledged_at.map(from_db),
        resolved_at: case.resolved_at.map(from_db),
        resolved_by: case.resolved_by,
        resolution: case.resolution,
        verified_at: case.verified_at.map(from_db),
        closed_at: case.closed_at.map(from_db),
        satisfaction: case.satisfaction,
        rework_count: case.rework_count,
        duplicate_of: case.duplicate_of,
        external,
        media_url: case.media_url,
        attributes,
        created_by: case.created_by,
        created_at: from_db(case.created_at),
        updated_at: from_db(case.updated_at),
        version: case.version,
        allowed_actions: allowed_actions(status),
    })
}

/// A case to log: the body of `POST /cases`, or an Open311 request.
#[derive(Debug)]
pub struct NewCase {
    pub(crate) kind: Kind,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) category_code: String,
    pub(crate) jurisdiction_code: String,
    pub(crate) channel: Channel,
    pub(crate) programme_id: Option<String>,
    pub(crate) priority: Priority,
    pub(crate) complainant_name: Option<String>,
    pub(crate) complainant_phone: Option<String>,
    pub(crate) complainant_email: Option<String>,
    /// Address, latitude, longitude.
    pub(crate) location: Option<(Option<String>, Option<f64>, Option<f64>)>,
    pub(crate) address_id: Option<String>,
    pub(crate) due_at: Option<DateTime<Utc>>,
    pub(crate) external: Option<(String, String)>,
    pub(crate) media_url: Option<String>,
    /// Answers to the category's attributes, already checked against its definition.
    pub(crate) attributes: Option<Value>,
}

impl NewCase {
    /// Validates the body, reporting every bad field at once.
    pub fn parse(body: &Value) -> AppResult<NewCase> {
        let mut i = Input::new(body);
        let kind = i.choice("kind", Kind::parse, Kind::NAMES);
        let title = i.text("title", 200, false);
        let description = i.text("description", 10_000, true);
        let category_code = i.text("category_code", 32, false);
        let jurisdiction_code = i.text("jurisdiction_code", 12, false);
        let channel = i.choice("channel", Channel::parse, Channel::NAMES);
        let programme_id = i.opt_uuid("programme_id");
        let priority = i.opt_choice("priority", Priority::parse, Priority::NAMES).unwrap_or(Priority::Normal);
        let complainant = i.opt_object("complainant", |c| {
            let name = c.opt_text("name", 100, false);
            let phone = c.opt_text("phone", 20, false);
            if phone.as_deref().is_some_and(|p| !is_phone(p)) {
                c.error("phone", "invalid_format", "digits, spaces, '-' and a leading '+' only; 5-20 characters");
            }
            let email = c.opt_text("email", 254, false);
            if email.as_deref().is_some_and(|e| !is_email(e)) {
                c.error("email", "invalid_format", "not an email address");
            }
            Some((name, phone, email))
        });
        let location = i.opt_object("location", |l| {
            let address = l.opt_text("address", 500, false);
            let lat = l.opt_number("lat", -90.0, 90.0);
            let lon = l.opt_number("lon", -180.0, 180.0);
            if lat.is_some() != lon.is_some() {
                l.error(if lat.is_some() { "lon" } else { "lat" }, "required", "lat and lon go together");
            }
            if address.is_none() && lat.is_none() && !l.has("lat") && !l.has("lon") {
                l.error("address", "required", "a location needs an address or lat and lon");
            }
            Some((address, lat, lon))
        });
        let due_at = i.opt_timestamp("due_at");
        let external = i.opt_object("external", |e| {
            let source = e.text("source", 64, false);
            let id = e.text("id", 128, false);
            Some((source?, id?))
        });
        let media_url = i.opt_text("media_url", 2000, false);
        if media_url.as_deref().is_some_and(|u| !is_web_url(u)) {
            i.error("media_url", "invalid_format", "must be an http:// or https:// URL");
        }
        if due_at.is_some_and(|d| d <= now()) {
            i.error("due_at", "not_in_future", "the deadline must be in the future");
        }
        i.finish()?;
        let (complainant_name, complainant_phone, complainant_email) = complainant.unwrap_or((None, None, None));
        Ok(NewCase {
            kind: need(kind, "kind")?,
            title: need(title, "title")?,
            description: need(description, "description")?,
            category_code: need(category_code, "category_code")?,
            jurisdiction_code: need(jurisdiction_code, "jurisdiction_code")?,
            channel: need(channel, "channel")?,
            programme_id,
            priority,
            complainant_name,
            complainant_phone,
            complainant_email,
            location,
            address_id: None,
            due_at,
            external,
            media_url,
            attributes: None,
        })
    }
}

/// Logs a new case: checks its references, numbers it, sets its deadline from the category unless
/// given, and records the `create` event — all in one transaction.
pub fn create(conn: &mut DbConn, p: &Principal, new: NewCase) -> AppResult<CaseView> {
    p.require_case_intake()?;
    join_tx(conn, |conn| {
        let mut errors = Vec::new();
        let jurisdiction = visible_jurisdiction(conn, p, &new.jurisdiction_code).ok();
        if jurisdiction.is_none() {
            errors.push(crate::error::FieldError::new(
                "jurisdiction_code",
                "not_found",
                "no such jurisdiction in your scope",
            ));
        }
        let category = reference::category(conn, &new.category_code)?.filter(|c| c.active);
        if category.is_none() {
            errors.push(crate::error::FieldError::new("category_code", "not_found", "no such active category"));
        }
        if let Some(prog_id) = &new.programme_id {
            let covers = match (visible_programme(conn, p, prog_id), &jurisdiction) {
                (Ok(prog), Some(j)) => {
                    let prog_path =
                        visible_jurisdiction(conn, p, &prog.jurisdiction_code).map(|pj| pj.path).unwrap_or_default();
                    j.path.starts_with(&prog_path)
                }
                (Ok(_), None) => true,
                (Err(_), _) => {
                    errors.push(crate::error::FieldError::new(
                        "programme_id",
                        "not_found",
                        "no such programme in your scope",
                    ));
                    true
                }
            };
            if !covers {
                errors.push(crate::error::FieldError::new(
                    "programme_id",
                    "out_of_scope",
                    "the programme does not cover the case's jurisdiction",
                ));
            }
        }
        let (Some(jurisdiction), Some(category), true) = (jurisdiction, category, errors.is_empty()) else {
            return Err(AppError::Validation(errors));
        };
        if let Some((source, id)) = &new.external {
            if let Some(existing) = q::by_external(conn, source, id)? {
                return Err(AppError::Conflict {
                    code: "external_id_exists",
                    detail: format!("a case with external id {source}/{id} already exists"),
                    existing_id: Some(existing.id),
                });
            }
        }
        let t = now();
        let due_at = new.due_at.unwrap_or(t + Duration::days(i64::from(category.deadline_days)));
        let year = (t + Duration::seconds(CHINA_OFFSET_SECS)).format("%Y");
        let prefix = format!("{}-{}", jurisdiction.code, year);
        let number = q::next_ref_number(conn, &prefix)?;
        let (address, lat, lon) = new.location.clone().unwrap_or((None, None, None));
        let (external_source, external_id) = match new.external.clone() {
            Some((s, i)) => (Some(s), Some(i)),
            None => (None, None),
        };
        let case = Case {
            id: super::new_id(),
            case_ref: format!("{prefix}-{number:06}"),
            kind: new.kind.as_str().to_owned(),
            title: new.title,
            description: new.description,
            category_code: category.code,
            jurisdiction_code: jurisdiction.code,
            jurisdiction_path: jurisdiction.path,
            programme_id: new.programme_id,
            channel: new.channel.as_str().to_owned(),
            priority: new.priority.as_str().to_owned(),
            complainant_name: new.complainant_name,
            complainant_phone: new.complainant_phone,
            location_address: address,
            location_lat: lat,
            location_lon: lon,
            status: Status::Received.as_str().to_owned(),
            outcome: None,
            department_id: None,
            assignee_id: None,
            due_at: to_db(due_at),
            acknowledged_at: None,
            resolved_at: None,
            resolved_by: None,
            resolution: None,
            verified_at: None,
            closed_at: None,
            satisfaction: None,
            rework_count: 0,
            duplicate_of: None,
            external_source,
            external_id,
            created_by: p.id.clone(),
            created_at: to_db(t),
            updated_at: to_db(t),
            version: 1,
            first_assigned_at: None,
            first_acknowledged_at: None,
            responded: false,
            resolved_on_time: None,
            resolution_secs: None,
            overdue_notified_at: None,
            complainant_email: new.complainant_email,
            media_url: new.media_url,
            address_id: new.address_id,
            attributes: new.attributes.map(|a| a.to_string()),
        };
        let has_external = case.external_id.is_some();
        q::insert(conn, &case).map_err(|e| match AppError::from(e) {
            // Lost a race with a concurrent create of the same external id.
            AppError::Conflict { .. } if has_external => {
                AppError::conflict("external_id_exists", "a case with this external id already exists")
            }
            other => other,
        })?;
        let draft = EventDraft {
            action: Action::Create,
            from_status: Status::Received,
            to_status: Status::Received,
            note: None,
            data: json!({ "kind": case.kind, "channel": case.channel, "category_code": case.category_code,
                          "due_at": crate::domain::util::rfc3339(due_at) }),
        };
        record_event(conn, &case.id, 1, None, &draft, p, t)?;
        super::stats::record_change(conn, None, &case)?;
        super::webhooks::enqueue(conn, &case, "case.created", t)?;
        tracing::info!(case_id = %case.id, case_ref = %case.case_ref, "case created");
        view(case, false, t)
    })
}

fn record_event(
    conn: &mut DbConn,
    case_id: &str,
    seq: i64,
    from: Option<Status>,
    draft: &EventDraft,
    p: &Principal,
    at: DateTime<Utc>,
) -> AppResult<()> {
    q::insert_event(
        conn,
        &CaseEvent {
            case_id: case_id.to_owned(),
            seq,
            action: draft.action.as_str().to_owned(),
            from_status: from.map(|s| s.as_str().to_owned()),
            to_status: draft.to_status.as_str().to_owned(),
            actor_id: p.id.clone(),
            actor_name: p.name.clone(),
            at: to_db(at),
            note: draft.note.clone(),
            data: draft.data.to_string(),
        },
    )
    .map_err(|e| match AppError::from(e) {
        // Two events with one seq: another transaction moved the case first.
        AppError::Conflict { .. } => {
            AppError::conflict("concurrent_update", "the case changed while this action ran; retry")
        }
        other => other,
    })
}

/// A case the caller may read, or 404 (also for cases outside the caller's scope).
fn readable(case: Option<Case>, p: &Principal) -> AppResult<Case> {
    case.filter(|c| p.can_read_case(&c.jurisdiction_path, &c.created_by, c.department_id.as_deref()))
        .ok_or_else(|| AppError::not_found("case"))
}

/// One case, with its personal data masked.
pub fn get(conn: &mut DbConn, p: &Principal, id: &str) -> AppResult<CaseView> {
    let case = readable(q::get(conn, id)?, p)?;
    view(case, false, now())
}

/// One case with the complainant's personal data unmasked, for a caller entitled to it; the read
/// is recorded in the personal-data access log in the same transaction.
pub fn get_revealed(conn: &mut DbConn, p: &Principal, id: &str, request_id: Option<String>) -> AppResult<CaseView> {
    write_tx(conn, |conn| {
        let case = readable(q::get(conn, id)?, p)?;
        if !sees_personal_data(p, &case) {
            return Err(AppError::Forbidden {
                code: "personal_data_forbidden",
                detail: "your role may not see this complainant's personal data".to_owned(),
            });
        }
        super::audit::record_personal_data_read(conn, p, &case.id, &case.jurisdiction_path, request_id)?;
        tracing::info!(case_id = %case.id, actor_id = %p.id, "personal data read");
        view(case, true, now())
    })
}

/// The `If-Match` precondition of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current version.
    Any,
    /// A list of entity tags (weak ones compared by their opaque part).
    Tags(Vec<String>),
}

impl IfMatch {
    /// Parses the header value (RFC 9110: `*` or a comma-separated list of entity tags, each
    /// `"<opaque>"` or `W/"<opaque>"` with the opaque part of `!` and `#`–`~`; the list may be
    /// empty and have empty elements, and an empty list matches nothing); `None` if it is not of
    /// that form.
    pub fn parse(value: &str) -> Option<IfMatch> {
        let ows = |s: &str| s.trim_start_matches([' ', '\t']).to_owned();
        let value = value.trim_matches([' ', '\t']);
        if value == "*" {
            return Some(IfMatch::Any);
        }
        let (mut tags, mut rest, mut need_comma) = (Vec::new(), value.to_owned(), false);
        loop {
            rest = ows(&rest);
            if rest.is_empty() {
                break;
            }
            if let Some(after) = rest.strip_prefix(',') {
                (rest, need_comma) = (after.to_owned(), false);
                continue;
            }
            if need_comma {
                return None;
            }
            let tag = rest.strip_prefix("W/").unwrap_or(&rest).strip_prefix('"')?;
            let end = tag.find('"')?;
            let opaque = tag.get(..end)?;
            if !opaque.bytes().all(|b| b == b'!' || (b'#'..=b'~').contains(&b)) {
                return None;
            }
            tags.push(format!("\"{opaque}\""));
            rest = tag.get(end + 1..)?.to_owned();
            need_comma = true;
        }
        Some(IfMatch::Tags(tags))
    }

    fn matches(&self, version: i64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => tags.iter().any(|t| *t == etag(version)),
        }
    }
}

fn state_of(case: &Case) -> AppResult<CaseState> {
    let corrupt = |what: &str| AppError::Internal(format!("case {} has an unknown {what}", case.id));
    Ok(CaseState {
        id: case.id.clone(),
        status: Status::parse(&case.status).ok_or_else(|| corrupt("status"))?,
        outcome: case.outcome.as_deref().map(|o| Outcome::parse(o).ok_or_else(|| corrupt("outcome"))).transpose()?,
        department_id: case.department_id.clone(),
        assignee_id: case.assignee_id.clone(),
        due_at: from_db(case.due_at),
        acknowledged_at: case.acknowledged_at.map(from_db),
        resolved_at: case.resolved_at.map(from_db),
        resolved_by: case.resolved_by.clone(),
        resolution: case.resolution.clone(),
        verified_at: case.verified_at.map(from_db),
        closed_at: case.closed_at.map(from_db),
        satisfaction: case
            .satisfaction
            .as_deref()
            .map(|s| Satisfaction::parse(s).ok_or_else(|| corrupt("satisfaction")))
            .transpose()?,
        rework_count: case.rework_count,
        duplicate_of: case.duplicate_of.clone(),
        version: case.version,
        created_at: from_db(case.created_at),
        first_assigned_at: case.first_assigned_at.map(from_db),
        first_acknowledged_at: case.first_acknowledged_at.map(from_db),
        responded: case.responded,
        resolved_on_time: case.resolved_on_time,
        resolution_secs: case.resolution_secs,
    })
}

/// Checks the department (and assignee) an action hands the case to: it must exist, be active,
/// be in the caller's scope and on the case's branch of the tree (an ancestor or a descendant).
fn check_target(conn: &mut DbConn, p: &Principal, case: &Case, cmd: &Command) -> AppResult<()> {
    let Some(dept_id) = cmd.target_department() else {
        return Ok(());
    };
    let bad = |msg: &str| AppError::invalid("department_id", "not_found", msg.to_owned());
    let dept =
        reference::department(conn, dept_id)?.filter(|d| d.active).ok_or_else(|| bad("no such active department"))?;
    let dept_path = visible_jurisdiction(conn, p, &dept.jurisdiction_code)
        .map_err(|_| bad("no such active department in your scope"))?
        .path;
    if !(case.jurisdiction_path.starts_with(&dept_path) || dept_path.starts_with(&case.jurisdiction_path)) {
        return Err(AppError::invalid(
            "department_id",
            "out_of_scope",
            "the department does not serve the case's jurisdiction",
        ));
    }
    if let Command::Assign { assignee_id: Some(user_id), .. } | Command::Reassign { assignee_id: Some(user_id), .. } =
        cmd
    {
        let user = users::by_id(conn, user_id)?;
        if !user.is_some_and(|u| u.active && u.department_id.as_deref() == Some(dept_id)) {
            return Err(AppError::invalid("assignee_id", "not_found", "no such active user in that department"));
        }
    }
    Ok(())
}

/// Takes a lifecycle action: locks the case, checks `If-Match`, the references and the rules,
/// writes the change and its event, and returns the new state of the case.
pub fn act(
    conn: &mut DbConn,
    p: &Principal,
    id: &str,
    if_match: Option<IfMatch>,
    cmd: Command,
    response_window: Duration,
) -> AppResult<CaseView> {
    join_tx(conn, |conn| {
        let case = readable(q::get_for_update(conn, id)?, p)?;
        if let Some(cond) = &if_match {
            if !cond.matches(case.version) {
                return Err(AppError::StaleVersion {
                    expected: match cond {
                        IfMatch::Any => "*".to_owned(),
                        IfMatch::Tags(t) => t.join(", "),
                    },
                    current: case.version,
                });
            }
        }
        if let Command::Dismiss { duplicate_of: Some(dup), .. } = &cmd {
            if dup != id && readable(q::get(conn, dup)?, p).is_err() {
                return Err(AppError::invalid("duplicate_of", "not_found", "no such case"));
            }
        }
        let mut state = state_of(&case)?;
        let from = state.status;
        let old_version = state.version;
        let t = now();
        // The rules decide first (so a refused action says why); the references are checked
        // before anything is written.
        let target_check = cmd.clone();
        let draft = lifecycle::apply(&mut state, cmd, p, t, response_window)?;
        check_target(conn, p, &case, &target_check)?;
        let changes = CaseLifecycleChanges {
            status: state.status.as_str().to_owned(),
            outcome: state.outcome.map(|o| o.as_str().to_owned()),
            department_id: state.department_id.clone(),
            assignee_id: state.assignee_id.clone(),
            due_at: to_db(state.due_at),
            acknowledged_at: state.acknowledged_at.map(to_db),
            resolved_at: state.resolved_at.map(to_db),
            resolved_by: state.resolved_by.clone(),
            resolution: state.resolution.clone(),
            verified_at: state.verified_at.map(to_db),
            closed_at: state.closed_at.map(to_db),
            satisfaction: state.satisfaction.map(|s| s.as_str().to_owned()),
            rework_count: state.rework_count,
            duplicate_of: state.duplicate_of.clone(),
            updated_at: to_db(t),
            version: state.version,
            first_assigned_at: state.first_assigned_at.map(to_db),
            first_acknowledged_at: state.first_acknowledged_at.map(to_db),
            responded: state.responded,
            resolved_on_time: state.resolved_on_time,
            resolution_secs: state.resolution_secs,
            // A new deadline may pass again, and is announced again.
            overdue_notified_at: if state.due_at == from_db(case.due_at) { case.overdue_notified_at } else { None },
        };
        if !q::update_lifecycle(conn, id, old_version, &changes)? {
            let current = q::get(conn, id)?.map_or(old_version, |c| c.version);
            return Err(AppError::StaleVersion { expected: etag(old_version), current });
        }
        record_event(conn, id, state.version, Some(from), &draft, p, t)?;
        tracing::info!(case_id = %id, action = %draft.action, from = %from, to = %draft.to_status, "case action");
        let updated = q::get(conn, id)?.ok_or_else(|| AppError::not_found("case"))?;
        super::stats::record_change(conn, Some(&case), &updated)?;
        if let Some(event) = super::webhooks::event_type(draft.action) {
            super::webhooks::enqueue(conn, &updated, event, t)?;
        }
        view(updated, false, t)
    })
}

/// An event as the API shows it.
#[derive(Debug, Serialize)]
pub struct EventView {
    pub seq: i64,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: ActorView,
    #[serde(with = "ts")]
    pub at: DateTime<Utc>,
    pub note: Option<String>,
    pub data: Value,
}

/// Who took an action.
#[derive(Debug, Serialize)]
pub struct ActorView {
    pub id: String,
    pub name: String,
}

/// The audit trail of a case the caller may read.
pub fn events(conn: &mut DbConn, p: &Principal, id: &str) -> AppResult<Vec<EventView>> {
    readable(q::get(conn, id)?, p)?;
    let rows = q::events(conn, id)?;
    Ok(rows
        .into_iter()
        .map(|e| EventView {
            seq: e.seq,
            action: e.action,
            from_status: e.from_status,
            to_status: e.to_status,
            actor: ActorView { id: e.actor_id, name: e.actor_name },
            at: from_db(e.at),
            note: e.note,
            data: serde_json::from_str(&e.data).unwrap_or(Value::Null),
        })
        .collect())
}

/// The filters of `GET /cases`, read from the query string.
#[derive(Debug, Default)]
pub struct ListQuery {
    filter: CaseFilter,
    jurisdiction_code: Option<String>,
    page: Option<PageRequest>,
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl ListQuery {
    /// Reads and validates the query string.
    pub fn parse(pairs: &[(String, String)]) -> AppResult<ListQuery> {
        let mut qs = Query::new(pairs);
        let page = PageRequest::read(&mut qs);
        let after = match &page.after {
            None => None,
            Some(c) => {
                let parsed = c.split_once('|').and_then(|(micros, id)| {
                    let micros: i64 = micros.parse().ok()?;
                    let at = DateTime::<Utc>::from_timestamp_micros(micros)?;
                    Some((to_db(at), id.to_owned()))
                });
                if parsed.is_none() {
                    qs.error("cursor", "invalid_cursor", "not a cursor returned by this list");
                }
                parsed
            }
        };
        let external_source = qs.text("external_source", 64);
        let external_id = qs.text("external_id", 128);
        if external_source.is_some() != external_id.is_some() {
            qs.error("external_id", "required", "external_source and external_id go together");
        }
        let filter = CaseFilter {
            status: qs.choice("status", Status::parse, Status::NAMES).map(|s| s.as_str().to_owned()),
            kind: qs.choice("kind", Kind::parse, Kind::NAMES).map(|s| s.as_str().to_owned()),
            category_code: qs.text("category_code", 32),
            department_id: qs.uuid("department_id"),
            programme_id: qs.uuid("programme_id"),
            overdue: qs.boolean("overdue"),
            created_from: qs.timestamp("created_from").map(to_db),
            created_to: qs.timestamp("created_to").map(to_db),
            due_from: qs.timestamp("due_from").map(to_db),
            due_to: qs.timestamp("due_to").map(to_db),
            q_pattern: qs.text("q", 100).map(|q| like_pattern(&q)),
            external: external_source.zip(external_id),
            after,
            ..CaseFilter::default()
        };
        let jurisdiction_code = qs.text("jurisdiction_code", 12);
        qs.finish()?;
        Ok(ListQuery { filter, jurisdiction_code, page: Some(page) })
    }
}

impl ListQuery {
    /// Every case of a programme (its ledger), in the caller's scope.
    pub fn for_programme(programme_id: &str) -> ListQuery {
        ListQuery {
            filter: CaseFilter { programme_id: Some(programme_id.to_owned()), ..CaseFilter::default() },
            jurisdiction_code: None,
            page: None,
        }
    }
}

/// The filter of a list request confined to what the caller may read: their subtree, and for
/// caseworkers and integration clients their own cases. Also returns the page requested.
pub fn resolve(conn: &mut DbConn, p: &Principal, query: ListQuery) -> AppResult<(CaseFilter, PageRequest)> {
    let ListQuery { mut filter, jurisdiction_code, page } = query;
    let page = page.unwrap_or(PageRequest { limit: super::DEFAULT_LIMIT, after: None });
    filter.scope = p.scope_path.as_ref().map(|s| (s.clone(), upper_bound(s)));
    match p.role {
        Role::Caseworker => filter.own = Some((p.id.clone(), p.department_id.clone())),
        Role::Integration => {
            p.require_scope(Scope::CasesReadOwn)?;
            filter.own = Some((p.id.clone(), None));
        }
        Role::Admin | Role::Supervisor | Role::Viewer => {}
    }
    if let Some(code) = jurisdiction_code {
        let j = visible_jurisdiction(conn, p, &code)
            .map_err(|_| AppError::invalid("jurisdiction_code", "not_found", "no such jurisdiction in your scope"))?;
        filter.subtree = Some((j.path.clone(), upper_bound(&j.path)));
    }
    filter.now = Some(to_db(now()));
    Ok((filter, page))
}

/// The keyset position after a case in the list order.
pub fn position_of(case: &Case) -> (chrono::NaiveDateTime, String) {
    (case.created_at, case.id.clone())
}

/// Cases the caller may read that match the query, newest first.
pub fn list(conn: &mut DbConn, p: &Principal, query: ListQuery) -> AppResult<Page<CaseView>> {
    let (filter, page) = resolve(conn, p, query)?;
    let t = now();
    let rows = q::list(conn, &filter, page.limit + 1)?;
    let more = rows.len() as i64 > page.limit;
    let mut items = Vec::with_capacity(rows.len());
    let mut last_key = None;
    for case in rows.into_iter().take(page.limit as usize) {
        last_key = Some(format!("{}|{}", from_db(case.created_at).timestamp_micros(), case.id));
        items.push(view(case, false, t)?);
    }
    Ok(Page { items, next_cursor: if more { last_key.map(|k| encode_cursor(&k)) } else { None } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_names_and_phones() {
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_name("李"), "*");
        assert_eq!(mask_name("李四"), "李*");
        assert_eq!(mask_phone("87654321"), "******21");
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("0870-2123456"), "087*****3456");
        assert_eq!(mask_phone("12345"), "***45");
        assert_eq!(mask_phone("1234"), "****");
        assert_eq!(mask_email("zhangsan@example.com"), "z*******@example.com");
        assert_eq!(mask_email("odd"), "o**");
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
        assert_eq!(like_pattern("自来水"), "%自来水%");
    }

    #[test]
    fn if_match_parses_lists_and_weak_tags() {
        assert_eq!(IfMatch::parse("*"), Some(IfMatch::Any));
        let m = IfMatch::parse("\"3\", W/\"4\"").expect("tags");
        assert!(m.matches(3) && m.matches(4) && !m.matches(5));
        assert_eq!(IfMatch::parse("3"), None);
        // An empty list is a list (`#entity-tag`), and matches no version.
        for empty in ["", " ", ",", " , ,"] {
            let m = IfMatch::parse(empty).expect("an empty list");
            assert_eq!(m, IfMatch::Tags(vec![]));
            assert!(!m.matches(1));
        }
        // RFC 9110 entity tags may hold commas; empty list elements are allowed.
        let m = IfMatch::parse(" \"a,b\" , ,W/\"7\",").expect("tags");
        assert_eq!(m, IfMatch::Tags(vec!["\"a,b\"".to_owned(), "\"7\"".to_owned()]));
        assert!(m.matches(7));
        // Not entity tags: a space or a quote inside, two tags without a comma, `*` in a list.
        for bad in ["\"a b\"", "\"1\" \"2\"", "*, \"1\"", "\"1", "W/3", "*,"] {
            assert_eq!(IfMatch::parse(bad), None, "{bad}");
        }
    }
}
