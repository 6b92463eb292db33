//! The audit logs, for admins: administrative changes and personal-data reads.

use actix_web::{web, HttpResponse};

use super::QueryPairs;
use crate::domain::access::Principal;
use crate::domain::input::Query;
use crate::error::AppError;
use crate::service::{audit as svc, PageRequest};
use crate::state::AppState;

/// `GET /api/v1/audit/admin?target_type=`.
pub async fn admin(state: web::Data<AppState>, p: Principal, query: QueryPairs) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let mut q = Query::new(&query);
    let page = PageRequest::read(&mut q);
    let target_type = q.text("target_type", 32);
    q.finish()?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::list_admin(conn, &p, target_type, page)).await?))
}

/// `GET /api/v1/audit/personal-data?case_id=`.
pub async fn personal_data(
    state: web::Data<AppState>,
    p: Principal,
    query: QueryPairs,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let mut q = Query::new(&query);
    let page = PageRequest::read(&mut q);
    let case_id = q.uuid("case_id");
    q.finish()?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::list_access(conn, &p, case_id, page)).await?))
}
