//! Bulk import: `POST /api/v1/cases:import` starts a job; `GET /api/v1/imports/{id}` follows it.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use tracing::Instrument;

use crate::domain::access::Principal;
use crate::error::AppError;
use crate::routes::body::{read_body, Deadline};
use crate::service::imports::{self as svc, Format, RawRow};
use crate::service::path_id;
use crate::state::AppState;

/// Rows imported per unit of work (each row still in its own transaction).
const CHUNK: usize = 200;

/// `POST /api/v1/cases:import` with a JSON-lines (`application/x-ndjson`) or CSV (`text/csv`)
/// body: answers 202 with the job at once and imports in the background.
pub async fn start(
    state: web::Data<AppState>,
    p: Principal,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    p.require_case_intake()?;
    let format = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Format::from_content_type)
        .ok_or(AppError::UnsupportedMediaType)?;
    let limit = state.config.max_import_bytes;
    let deadline = Deadline::Idle(state.config.body_timeout);
    let bytes = read_body(&mut payload, limit, deadline, || AppError::PayloadTooLarge { limit }).await?;
    let rows = svc::read(format, &bytes)?;
    drop(bytes);
    let (caller, total) = (p.clone(), rows.len());
    let id = state.db(move |conn| svc::start(conn, &caller, format, total)).await?;
    let (job, worker) = (id.clone(), state.clone());
    actix_web::rt::spawn(run(worker, p.clone(), job, rows).instrument(tracing::Span::current()));
    let view = state.db(move |conn| svc::get(conn, &p, &id)).await?;
    Ok(HttpResponse::Accepted().insert_header((header::LOCATION, format!("/api/v1/imports/{}", view.id))).json(view))
}

async fn run(state: web::Data<AppState>, p: Principal, job: String, rows: Vec<RawRow>) {
    let total = rows.len();
    let mut rows = rows.into_iter().enumerate().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<(usize, RawRow)> = rows.by_ref().take(CHUNK).collect();
        let (caller, id) = (p.clone(), job.clone());
        let done = chunk.last().is_some_and(|(i, _)| i + 1 == total);
        let result = state
            .db(move |conn| {
                let mut results = Vec::with_capacity(chunk.len());
                for (i, raw) in chunk {
                    results.push(svc::import_row(conn, &caller, i + 1, raw)?);
                }
                svc::progress(conn, &id, &results, done)
            })
            .await;
        if let Err(e) = result {
            tracing::error!(import_id = %job, error = %e, "import {job} stopped");
            let id = job.clone();
            let _ = state.db(move |conn| svc::fail(conn, &id)).await;
            return;
        }
    }
    tracing::info!(import_id = %job, rows = total, "import {job} done");
}

/// `GET /api/v1/imports/{id}`: progress, counts, and each row's result so far.
pub async fn get(state: web::Data<AppState>, p: Principal, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id = path_id(&id, "import")?;
    Ok(HttpResponse::Ok().json(state.db(move |conn| svc::get(conn, &p, &id)).await?))
}
