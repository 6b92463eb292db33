//! Open311 GeoReport v2 units of work: discovery, the service list and definitions (categories),
//! filing a request (a real case, through [`super::cases::create`]) and the public view of
//! requests.
//!
//! What is public: a request's status, the department's answer once resolved, the department
//! holding it, its service, times, location and media link — read through
//! [`crate::db::models::PublicCase`], which has no other columns. The complainant, the title,
//! the citizen's own description and every internal note stay inside Minsheng; cases that came
//! in as petitions (信访) are not published at all.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::cases::{self as cases_svc, NewCase};
use super::reference::keywords_of;
use crate::db::cases::{self as q, PublicFilter};
use crate::db::models::{Jurisdiction, PublicCase};
use crate::db::{reference, DbConn};
use crate::domain::access::{upper_bound, Principal};
use crate::domain::open311::{
    check_answers, definition_node, full_name, public_status, status_notes, stored_defs, title_from, w3c, Document,
    Node, RequestForm, RequestsQuery, MAX_IDS, SPECIFICATION,
};
use crate::domain::types::{Channel, Kind, Outcome, Priority, Status};
use crate::domain::util::{from_db, to_db};
use crate::error::{AppError, AppResult};

/// Channels whose cases are never published: a petition (信访) and its petitioner are protected.
pub const UNPUBLISHED_CHANNELS: &[Channel] = &[Channel::Petition];

/// The jurisdiction a `jurisdiction_id` names; 404 when it names none.
pub fn jurisdiction(conn: &mut DbConn, id: Option<&str>) -> AppResult<Option<Jurisdiction>> {
    let Some(id) = id else {
        return Ok(None);
    };
    reference::jurisdiction(conn, id)?
        .map(Some)
        .ok_or_else(|| AppError::NotFound { detail: format!("jurisdiction_id {id} not found") })
}

/// The discovery document. `url` is this endpoint's base URL; the changeset is the last change
/// to a category (the service list and definitions).
pub fn discovery(conn: &mut DbConn, url: String) -> AppResult<Document> {
    let changed = reference::categories_changed_at(conn)?.map(from_db).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let changeset = w3c(changed);
    let endpoint = Node::Object(vec![
        ("specification", Node::Text(SPECIFICATION.to_owned())),
        ("url", Node::Text(url)),
        ("changeset", Node::Text(changeset.clone())),
        ("type", Node::Text("production".to_owned())),
        (
            "formats",
            Node::List("format", vec![Node::Text("text/xml".to_owned()), Node::Text("application/json".to_owned())]),
        ),
    ]);
    Ok(Document {
        root: "discovery",
        body: Node::Object(vec![
            ("changeset", Node::Text(changeset)),
            (
                "contact",
                Node::Text("County IT (县政务服务数据管理局): the administrators of this Minsheng service.".to_owned()),
            ),
            (
                "key_service",
                Node::Text(
                    "Ask an administrator for an API client with the cases:create scope \
                     (POST /api/v1/api-clients); its key is the api_key."
                        .to_owned(),
                ),
            ),
            ("endpoints", Node::List("endpoint", vec![endpoint])),
        ]),
    })
}

/// The service list: every active category.
pub fn services(conn: &mut DbConn, jurisdiction_id: Option<String>) -> AppResult<Document> {
    jurisdiction(conn, jurisdiction_id.as_deref())?;
    let items = reference::active_categories(conn)?
        .into_iter()
        .map(|c| {
            let keywords = keywords_of(&c);
            Node::Object(vec![
                ("service_code", Node::Text(c.code)),
                ("service_name", Node::Text(c.name)),
                ("description", Node::text(c.description)),
                ("metadata", Node::Bool(c.attributes.is_some())),
                ("type", Node::Text("realtime".to_owned())),
                ("keywords", Node::text((!keywords.is_empty()).then(|| keywords.join(", ")))),
                ("group", Node::text(c.service_group)),
            ])
        })
        .collect();
    Ok(Document { root: "services", body: Node::List("service", items) })
}

/// The definition of one active service (its attributes; none for a service without metadata).
pub fn definition(conn: &mut DbConn, code: &str, jurisdiction_id: Option<String>) -> AppResult<Document> {
    jurisdiction(conn, jurisdiction_id.as_deref())?;
    let category = reference::category(conn, code)?
        .filter(|c| c.active)
        .ok_or_else(|| AppError::NotFound { detail: format!("service_code {code} not found") })?;
    let defs = stored_defs(category.attributes.as_deref())?;
    Ok(Document {
        root: "service_definition",
        body: Node::Object(vec![("service_code", Node::Text(category.code)), ("attributes", definition_node(defs))]),
    })
}

/// Files a request as a case of the client's (or the named) jurisdiction, channel
/// `integration`, with the events and kept statistics of any new case.
pub fn create(conn: &mut DbConn, p: &Principal, form: RequestForm) -> AppResult<Document> {
    p.require_case_intake()?;
    let jurisdiction_code = match form.jurisdiction_id.as_deref() {
        Some(id) => {
            let j = reference::jurisdiction(conn, id)?
                .filter(|j| p.in_scope(&j.path))
                .ok_or_else(|| AppError::NotFound { detail: format!("jurisdiction_id {id} not found") })?;
            j.code
        }
        None => p.jurisdiction_code.clone().ok_or_else(|| {
            AppError::bad_request(
                "jurisdiction_required",
                "jurisdiction_id was not provided: this api_key serves the whole tree, so name the jurisdiction",
            )
        })?,
    };
    let category = reference::category(conn, &form.service_code)?
        .filter(|c| c.active)
        .ok_or_else(|| AppError::NotFound { detail: format!("service_code {} not found", form.service_code) })?;
    let defs = stored_defs(category.attributes.as_deref())?;
    let mut errors = Vec::new();
    let attributes = check_answers(&defs, &form.answers, &mut errors);
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let (lat, lon) = form.lat_long.unzip();
    let location = (form.address_string.is_some() || lat.is_some()).then(|| (form.address_string.clone(), lat, lon));
    let new = NewCase {
        kind: Kind::Complaint,
        title: title_from(form.description.as_deref(), &category.name),
        description: form.description.clone().unwrap_or_default(),
        category_code: category.code.clone(),
        jurisdiction_code,
        channel: Channel::Integration,
        programme_id: None,
        priority: Priority::Normal,
        complainant_name: full_name(form.first_name.as_deref(), form.last_name.as_deref()),
        complainant_phone: form.phone,
        complainant_email: form.email,
        location,
        address_id: form.address_id,
        due_at: None,
        external: None,
        media_url: form.media_url,
        attributes,
    };
    let case = cases_svc::create(conn, p, new)?;
    let due = w3c(case.due_at);
    let notice = format!("已受理，受理编号 {}，将于 {} 前办结。", case.case_ref, due.get(..10).unwrap_or(&due));
    tracing::info!(case_id = %case.id, client_id = %p.id, "Open311 request filed as case {}", case.id);
    Ok(Document {
        root: "service_requests",
        body: Node::List(
            "request",
            vec![Node::Object(vec![
                ("service_request_id", Node::Text(case.case_ref)),
                ("service_notice", Node::Text(notice)),
                ("account_id", Node::Null),
            ])],
        ),
    })
}

/// Names by code and by department id, for a page of requests.
fn names(conn: &mut DbConn, rows: &[PublicCase]) -> AppResult<(HashMap<String, String>, HashMap<String, String>)> {
    let mut codes: Vec<String> = rows.iter().map(|c| c.category_code.clone()).collect();
    codes.sort_unstable();
    codes.dedup();
    let mut departments: Vec<String> = rows.iter().filter_map(|c| c.department_id.clone()).collect();
    departments.sort_unstable();
    departments.dedup();
    Ok((
        reference::category_names(conn, &codes)?.into_iter().collect(),
        reference::department_names(conn, &departments)?.into_iter().collect(),
    ))
}

/// One request as published.
fn request_node(
    c: PublicCase,
    services: &HashMap<String, String>,
    departments: &HashMap<String, String>,
    extensions: bool,
) -> AppResult<Node> {
    let corrupt = |what: &str| AppError::Internal(format!("case {} has an unknown {what}", c.case_ref));
    let status = Status::parse(&c.status).ok_or_else(|| corrupt("status"))?;
    let outcome = c.outcome.as_deref().map(|o| Outcome::parse(o).ok_or_else(|| corrupt("outcome"))).transpose()?;
    let public = public_status(status);
    // For a closed request, when it was closed (or its answer verified); otherwise the last change.
    let updated = match public {
        "closed" => c.closed_at.or(c.verified_at).unwrap_or(c.updated_at),
        _ => c.updated_at,
    };
    let mut fields = vec![
        ("service_request_id", Node::Text(c.case_ref)),
        ("status", Node::Text(public.to_owned())),
        ("status_notes", Node::text(status_notes(status, outcome, c.resolution.as_deref()))),
        ("service_name", Node::text(services.get(&c.category_code).cloned())),
        ("service_code", Node::Text(c.category_code)),
        // The citizen's own words may name them; they are not published.
        ("description", Node::Null),
        ("agency_responsible", Node::text(c.department_id.and_then(|d| departments.get(&d).cloned()))),
        ("service_notice", Node::Null),
        ("requested_datetime", Node::Text(w3c(from_db(c.created_at)))),
        ("updated_datetime", Node::Text(w3c(from_db(updated)))),
        ("expected_datetime", Node::Text(w3c(from_db(c.due_at)))),
        ("address", Node::text(c.location_address)),
        ("address_id", Node::text(c.address_id)),
        ("zipcode", Node::Null),
        ("lat", c.location_lat.map_or(Node::Null, Node::Float)),
        ("long", c.location_lon.map_or(Node::Null, Node::Float)),
        ("media_url", Node::text(c.media_url)),
    ];
    if extensions {
        fields.push(("extended_attributes", Node::Object(vec![("detailed_status", Node::Text(status.to_string()))])));
    }
    Ok(Node::Object(fields))
}

fn requests_document(conn: &mut DbConn, rows: Vec<PublicCase>, extensions: bool) -> AppResult<Document> {
    let (services, departments) = names(conn, &rows)?;
    let items =
        rows.into_iter().map(|c| request_node(c, &services, &departments, extensions)).collect::<AppResult<_>>()?;
    Ok(Document { root: "service_requests", body: Node::List("request", items) })
}

fn hidden_channels() -> Vec<String> {
    UNPUBLISHED_CHANNELS.iter().map(|c| c.as_str().to_owned()).collect()
}

fn subtree(j: Option<Jurisdiction>) -> Option<(String, String)> {
    j.map(|j| {
        let upper = upper_bound(&j.path);
        (j.path, upper)
    })
}

/// `GET requests`: newest first, one page.
pub fn requests(conn: &mut DbConn, query: RequestsQuery) -> AppResult<Document> {
    let scope = subtree(jurisdiction(conn, query.jurisdiction_id.as_deref())?);
    let (filter, offset, limit) = match query.ids {
        Some(refs) => (
            PublicFilter {
                subtree: scope,
                hidden_channels: hidden_channels(),
                refs: Some(refs),
                ..PublicFilter::default()
            },
            0,
            MAX_IDS as i64,
        ),
        None => (
            PublicFilter {
                subtree: scope,
                hidden_channels: hidden_channels(),
                refs: None,
                categories: query.service_codes,
                statuses: query.statuses.map(|s| s.iter().map(|s| s.as_str().to_owned()).collect()),
                created: Some((to_db(query.from), to_db(query.to))),
            },
            (query.page - 1) * query.page_size,
            query.page_size,
        ),
    };
    let rows = q::public_list(conn, &filter, offset, limit)?;
    requests_document(conn, rows, query.extensions)
}

/// `GET requests/{id}`: one request, or 404.
pub fn request(conn: &mut DbConn, id: &str, jurisdiction_id: Option<String>, extensions: bool) -> AppResult<Document> {
    let scope = subtree(jurisdiction(conn, jurisdiction_id.as_deref())?);
    let filter = PublicFilter {
        subtree: scope,
        hidden_channels: hidden_channels(),
        refs: Some(vec![id.to_owned()]),
        ..PublicFilter::default()
    };
    let rows = q::public_list(conn, &filter, 0, 1)?;
    if rows.is_empty() {
        return Err(AppError::NotFound { detail: format!("service_request_id {id} not found") });
    }
    requests_document(conn, rows, extensions)
}
