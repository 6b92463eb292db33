//! Statistics endpoints: summary, breakdown, the overdue (督办) list.

use actix_web::{web, HttpResponse};

use super::QueryPairs;
use crate::domain::access::Principal;
use crate::domain::input::Query;
use crate::error::AppError;
use crate::service::stats::{self as svc, StatsQuery};
use crate::state::AppState;

/// `GET /api/v1/stats/summary`.
pub async fn summary(state: web::Data<AppState>, p: Principal, query: QueryPairs) -> Result<HttpResponse, AppError> {
    let mut qs = Query::new(&query);
    let sq = StatsQuery::read(&mut qs);
    qs.finish()?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::summary(conn, &p, sq)).await?))
}

/// `GET /api/v1/stats/breakdown?by=…`.
pub async fn breakdown(state: web::Data<AppState>, p: Principal, query: QueryPairs) -> Result<HttpResponse, AppError> {
    let mut qs = Query::new(&query);
    let (sq, by) = StatsQuery::read_breakdown(&mut qs);
    qs.finish()?;
    let by = by.ok_or_else(|| AppError::invalid("by", "required", "a breakdown needs by"))?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::breakdown(conn, &p, sq, by)).await?))
}

/// `GET /api/v1/stats/overdue`.
pub async fn overdue(state: web::Data<AppState>, p: Principal, query: QueryPairs) -> Result<HttpResponse, AppError> {
    let mut qs = Query::new(&query);
    let sq = StatsQuery::read(&mut qs);
    let page = crate::service::PageRequest::read(&mut qs);
    qs.finish()?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::overdue(conn, &p, sq, page)).await?))
}

/// `GET /api/v1/programmes/{id}/progress`.
pub async fn progress(
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = crate::service::path_id(&id, "programme")?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::progress(conn, &p, &id)).await?))
}
