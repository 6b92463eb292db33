//! API client administration (admins): create, list, read, change, rotate, revoke. Create and
//! rotate are the only answers that carry a key.

use actix_web::{web, HttpResponse};

use super::{JsonBody, QueryPairs};
use crate::domain::access::Principal;
use crate::domain::input::Query;
use crate::error::AppError;
use crate::service::{api_clients as svc, path_id, PageRequest};
use crate::state::AppState;

/// `GET /api/v1/api-clients`.
pub async fn list(state: web::Data<AppState>, p: Principal, query: QueryPairs) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let mut q = Query::new(&query);
    let page = PageRequest::read(&mut q);
    q.finish()?;
    let page = state.db(move |conn| svc::list(conn, &p, page)).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `POST /api/v1/api-clients`: `{name, jurisdiction_code?, scopes}` → the client and its key.
pub async fn create(
    state: web::Data<AppState>,
    p: Principal,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let new = svc::NewApiClient::parse(&body)?;
    let issued = state.db(move |conn| svc::create(conn, &p, new)).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/api-clients/{}", issued.client.id)))
        .json(issued))
}

/// `GET /api/v1/api-clients/{id}`.
pub async fn get(state: web::Data<AppState>, p: Principal, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let id = path_id(&id, "API client")?;
    let client = state.db(move |conn| svc::get(conn, &p, &id)).await?;
    Ok(HttpResponse::Ok().json(client))
}

/// `PATCH /api/v1/api-clients/{id}`: `{name?, scopes?}`.
pub async fn patch(
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let id = path_id(&id, "API client")?;
    let changes = svc::parse_changes(&body)?;
    let client_id = id.clone();
    let client = state.db(move |conn| svc::update(conn, &p, &id, changes)).await?;
    state.api_keys.forget_principal(&client_id);
    Ok(HttpResponse::Ok().json(client))
}

/// `POST /api/v1/api-clients/{id}/rotate`: `{overlap_hours?}` → the client and its new key.
pub async fn rotate(
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let id = path_id(&id, "API client")?;
    let overlap_hours = svc::parse_rotation(&body)?;
    let client_id = id.clone();
    let issued = state.db(move |conn| svc::rotate(conn, &p, &id, overlap_hours)).await?;
    state.api_keys.forget_principal(&client_id);
    Ok(HttpResponse::Ok().json(issued))
}

/// `POST /api/v1/api-clients/{id}/revoke`.
pub async fn revoke(state: web::Data<AppState>, p: Principal, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let id = path_id(&id, "API client")?;
    let client_id = id.clone();
    let client = state.db(move |conn| svc::revoke(conn, &p, &id)).await?;
    state.api_keys.forget_principal(&client_id);
    Ok(HttpResponse::Ok().json(client))
}
