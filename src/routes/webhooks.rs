//! Webhook subscriptions, their delivery log, and redelivery.

use actix_web::{web, HttpResponse};

use super::{JsonBody, QueryPairs};
use crate::domain::access::Principal;
use crate::domain::input::Query;
use crate::error::AppError;
use crate::service::{path_id, webhooks as svc, PageRequest};
use crate::state::AppState;

/// `POST /api/v1/webhooks`: the answer carries the signing secret, once (so it is not replayed
/// by Idempotency-Key: it is never stored outside the subscription).
pub async fn create(
    state: web::Data<AppState>,
    p: Principal,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    let input = svc::WebhookInput::parse(&body, true)?;
    let created = state.db(move |conn| svc::create(conn, &p, input)).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/webhooks/{}", created.webhook.id)))
        .json(created))
}

/// `GET /api/v1/webhooks`.
pub async fn list(state: web::Data<AppState>, p: Principal) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::list(conn, &p)).await?))
}

/// `GET /api/v1/webhooks/{id}`.
pub async fn get(state: web::Data<AppState>, p: Principal, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id = path_id(&id, "webhook")?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::get(conn, &p, &id)).await?))
}

/// `PATCH /api/v1/webhooks/{id}`: `{url?, events?, active?}`.
pub async fn update(
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    let id = path_id(&id, "webhook")?;
    let input = svc::WebhookInput::parse(&body, false)?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::update(conn, &p, &id, input)).await?))
}

/// `GET /api/v1/webhooks/{id}/deliveries`: the delivery log.
pub async fn deliveries(
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    query: QueryPairs,
) -> Result<HttpResponse, AppError> {
    let id = path_id(&id, "webhook")?;
    let mut q = Query::new(&query);
    let page = PageRequest::read(&mut q);
    q.finish()?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::deliveries(conn, &p, &id, page)).await?))
}

/// `POST /api/v1/webhooks/{id}/deliveries/{event_id}/redeliver`.
pub async fn redeliver(
    state: web::Data<AppState>,
    p: Principal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, event_id) = path.into_inner();
    let (id, event_id) = (path_id(&id, "webhook")?, path_id(&event_id, "event")?);
    Ok(HttpResponse::Accepted().json(state.db(move |conn| svc::redeliver(conn, &p, &id, &event_id)).await?))
}
