//! Reference data endpoints: jurisdictions, departments, categories, programmes.

use actix_web::{web, HttpRequest, HttpResponse};

use super::idempotent::{self, Answer};

use super::{JsonBody, QueryPairs};
use crate::domain::access::Principal;
use crate::domain::input::Query;
use crate::error::AppError;
use crate::service::{path_id, reference as svc, PageRequest};
use crate::state::AppState;

/// `GET /api/v1/jurisdictions?parent_code=`.
pub async fn list_jurisdictions(
    state: web::Data<AppState>,
    p: Principal,
    query: QueryPairs,
) -> Result<HttpResponse, AppError> {
    let mut q = Query::new(&query);
    let page = PageRequest::read(&mut q);
    let parent = q.text("parent_code", 12);
    q.finish()?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::list_jurisdictions(conn, &p, parent, page)).await?))
}

/// `POST /api/v1/jurisdictions`.
pub async fn create_jurisdiction(
    state: web::Data<AppState>,
    p: Principal,
    req: HttpRequest,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let new = svc::NewJurisdiction::parse(&body)?;
    let caller = p.clone();
    idempotent::run(&state, &p, &req, &body, move |conn| {
        let j = svc::create_jurisdiction(conn, &caller, new)?;
        let location = format!("/api/v1/jurisdictions/{}", j.code);
        Answer::created(j, location)
    })
    .await
}

/// `GET /api/v1/jurisdictions/{code}`.
pub async fn get_jurisdiction(
    state: web::Data<AppState>,
    p: Principal,
    code: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = code.into_inner();
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::get_jurisdiction(conn, &p, &code)).await?))
}

/// `PATCH /api/v1/jurisdictions/{code}`: `{name}`.
pub async fn patch_jurisdiction(
    state: web::Data<AppState>,
    p: Principal,
    code: web::Path<String>,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let name = svc::parse_rename(&body)?;
    let code = code.into_inner();
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::rename_jurisdiction(conn, &p, &code, name)).await?))
}

/// `GET /api/v1/departments?jurisdiction_code=`.
pub async fn list_departments(
    state: web::Data<AppState>,
    p: Principal,
    query: QueryPairs,
) -> Result<HttpResponse, AppError> {
    let mut q = Query::new(&query);
    let page = PageRequest::read(&mut q);
    let jurisdiction = q.text("jurisdiction_code", 12);
    q.finish()?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::list_departments(conn, &p, jurisdiction, page)).await?))
}

/// `POST /api/v1/departments`.
pub async fn create_department(
    state: web::Data<AppState>,
    p: Principal,
    req: HttpRequest,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let new = svc::NewDepartment::parse(&body)?;
    let caller = p.clone();
    idempotent::run(&state, &p, &req, &body, move |conn| {
        let d = svc::create_department(conn, &caller, new)?;
        let location = format!("/api/v1/departments/{}", d.id);
        Answer::created(d, location)
    })
    .await
}

/// `GET /api/v1/departments/{id}`.
pub async fn get_department(
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path_id(&id, "department")?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::get_department(conn, &p, &id)).await?))
}

/// `PATCH /api/v1/departments/{id}`: `{name?, active?}`.
pub async fn patch_department(
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let id = path_id(&id, "department")?;
    let changes = svc::parse_department_changes(&body)?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::update_department(conn, &p, &id, changes)).await?))
}

/// `GET /api/v1/categories`.
pub async fn list_categories(
    state: web::Data<AppState>,
    _p: Principal,
    query: QueryPairs,
) -> Result<HttpResponse, AppError> {
    let mut q = Query::new(&query);
    let page = PageRequest::read(&mut q);
    q.finish()?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::list_categories(conn, page)).await?))
}

/// `POST /api/v1/categories`.
pub async fn create_category(
    state: web::Data<AppState>,
    p: Principal,
    req: HttpRequest,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let new = svc::NewCategory::parse(&body)?;
    let caller = p.clone();
    idempotent::run(&state, &p, &req, &body, move |conn| {
        let c = svc::create_category(conn, &caller, new)?;
        let location = format!("/api/v1/categories/{}", c.code);
        Answer::created(c, location)
    })
    .await
}

/// `GET /api/v1/categories/{code}`.
pub async fn get_category(
    state: web::Data<AppState>,
    _p: Principal,
    code: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = code.into_inner();
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::get_category(conn, &code)).await?))
}

/// `PATCH /api/v1/categories/{code}`: `{name?, deadline_days?, active?}`.
pub async fn patch_category(
    state: web::Data<AppState>,
    p: Principal,
    code: web::Path<String>,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let changes = svc::parse_category_changes(&body)?;
    let code = code.into_inner();
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::update_category(conn, &p, &code, changes)).await?))
}

/// `GET /api/v1/programmes?year=&jurisdiction_code=`.
pub async fn list_programmes(
    state: web::Data<AppState>,
    p: Principal,
    query: QueryPairs,
) -> Result<HttpResponse, AppError> {
    let mut q = Query::new(&query);
    let page = PageRequest::read(&mut q);
    let year = q.int("year", 2000, 2100).map(|y| y as i32);
    let jurisdiction = q.text("jurisdiction_code", 12);
    q.finish()?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::list_programmes(conn, &p, year, jurisdiction, page)).await?))
}

/// `POST /api/v1/programmes`.
pub async fn create_programme(
    state: web::Data<AppState>,
    p: Principal,
    req: HttpRequest,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let new = svc::NewProgramme::parse(&body)?;
    let caller = p.clone();
    idempotent::run(&state, &p, &req, &body, move |conn| {
        let prog = svc::create_programme(conn, &caller, new)?;
        let location = format!("/api/v1/programmes/{}", prog.id);
        Answer::created(prog, location)
    })
    .await
}

/// `GET /api/v1/programmes/{id}`.
pub async fn get_programme(
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path_id(&id, "programme")?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::get_programme(conn, &p, &id)).await?))
}

/// `PATCH /api/v1/programmes/{id}`: `{name?, description?}`.
pub async fn patch_programme(
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let id = path_id(&id, "programme")?;
    let changes = svc::parse_programme_changes(&body)?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::update_programme(conn, &p, &id, changes)).await?))
}
