//! Case endpoints: intake, read (with `ETag`), list, actions (with `If-Match`), events.

use actix_web::http::header;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde_json::json;

use super::idempotent::{self, Answer};
use super::{JsonBody, QueryPairs};
use crate::domain::access::Principal;
use crate::domain::input::Query;
use crate::domain::lifecycle::{self, Command};
use crate::domain::types::Action;
use crate::error::AppError;
use crate::middleware::RequestId;
use crate::service::cases::{self as svc, CaseView, IfMatch};
use crate::service::path_id;
use crate::state::AppState;

fn with_etag(mut res: actix_web::HttpResponseBuilder, case: &CaseView) -> HttpResponse {
    res.insert_header((header::ETAG, case.etag())).json(case)
}

/// `POST /api/v1/cases`.
pub async fn create(
    state: web::Data<AppState>,
    p: Principal,
    req: HttpRequest,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_case_intake()?;
    let new = svc::NewCase::parse(&body)?;
    let caller = p.clone();
    idempotent::run(&state, &p, &req, &body, move |conn| {
        let case = svc::create(conn, &caller, new)?;
        let (location, etag) = (format!("/api/v1/cases/{}", case.id), case.etag());
        Ok(Answer::created(case, location)?.with("ETag", etag))
    })
    .await
}

/// `GET /api/v1/cases/{id}`; `?include_personal_data=true` unmasks the complainant for those
/// entitled, and logs the read.
pub async fn get(
    state: web::Data<AppState>,
    p: Principal,
    req: HttpRequest,
    id: web::Path<String>,
    query: QueryPairs,
) -> Result<HttpResponse, AppError> {
    let id = path_id(&id, "case")?;
    let mut q = Query::new(&query);
    let reveal = q.boolean("include_personal_data").unwrap_or(false);
    q.finish()?;
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let case = if reveal {
        state.db(move |conn| svc::get_revealed(conn, &p, &id, request_id)).await?
    } else {
        state.db(move |conn| svc::get(conn, &p, &id)).await?
    };
    Ok(with_etag(HttpResponse::Ok(), &case))
}

/// `GET /api/v1/cases` with filters and a cursor.
pub async fn list(state: web::Data<AppState>, p: Principal, query: QueryPairs) -> Result<HttpResponse, AppError> {
    let query = svc::ListQuery::parse(&query)?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::list(conn, &p, query)).await?))
}

/// `POST /api/v1/cases/{id}/actions/<action>` (one route per action, the action named by the
/// path's last segment), honouring `If-Match`.
pub async fn act(
    state: web::Data<AppState>,
    p: Principal,
    req: HttpRequest,
    id: web::Path<String>,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    let id = path_id(&id, "case")?;
    let action = req.path().rsplit('/').next().unwrap_or_default();
    let action = Action::parse(action)
        .filter(|a| lifecycle::rule(*a).is_some())
        .ok_or_else(|| AppError::NotFound { detail: format!("no action {action}") })?;
    lifecycle::check_role(action, &p)?;
    let if_match = match req.headers().get(header::IF_MATCH) {
        None => None,
        Some(v) => Some(v.to_str().ok().and_then(IfMatch::parse).ok_or_else(|| {
            AppError::bad_request("invalid_if_match", "If-Match must be * or a list of entity tags such as \"3\"")
        })?),
    };
    let cmd = Command::parse(action, &body)?;
    let window = chrono::Duration::from_std(state.config.response_window).unwrap_or(chrono::Duration::hours(24));
    let caller = p.clone();
    idempotent::run(&state, &p, &req, &body, move |conn| {
        let case = svc::act(conn, &caller, &id, if_match, cmd, window)?;
        let etag = case.etag();
        Ok(Answer::ok(case)?.with("ETag", etag))
    })
    .await
}

/// `GET /api/v1/cases/{id}/events`.
pub async fn events(state: web::Data<AppState>, p: Principal, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id = path_id(&id, "case")?;
    let items = state.db(move |conn| svc::events(conn, &p, &id)).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}
