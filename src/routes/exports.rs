//! CSV exports, streamed: a programme's ledger and any filtered case list.

use actix_web::{web, HttpResponse};
use tracing::Instrument;

use super::QueryPairs;
use crate::db::cases::CaseFilter;
use crate::domain::access::Principal;
use crate::error::AppError;
use crate::service::cases::{self as cases_svc, ListQuery};
use crate::service::{export, path_id, reference};
use crate::state::AppState;

/// Streams the cases matching `filter` as CSV, one database batch at a time.
fn csv(state: web::Data<AppState>, filter: CaseFilter, filename: String) -> HttpResponse {
    let span = tracing::Span::current();
    let batches = futures_util::stream::unfold(Some((filter, true)), move |next| {
        let (state, span) = (state.clone(), span.clone());
        async move {
            let (mut filter, first) = next?;
            let query = filter.clone();
            let size = state.config.export_batch;
            match state.db(move |conn| export::batch(conn, &query, size)).await {
                Ok((rows, position)) => {
                    let mut chunk = if first { export::PREAMBLE.to_owned() } else { String::new() };
                    chunk.push_str(&rows);
                    let next = position.map(|p| {
                        filter.after = Some(p);
                        (filter, false)
                    });
                    Some((Ok::<_, actix_web::Error>(web::Bytes::from(chunk)), next))
                }
                // The status line is gone already: end the body early, and log why.
                Err(e) => {
                    tracing::error!(error = %e, "export stopped");
                    Some((Err(actix_web::Error::from(e)), None))
                }
            }
        }
        .instrument(span)
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{filename}\"")))
        .streaming(batches)
}

/// `GET /api/v1/cases.csv`: the cases matching the same filters as `GET /api/v1/cases`.
pub async fn cases(state: web::Data<AppState>, p: Principal, query: QueryPairs) -> Result<HttpResponse, AppError> {
    let query = ListQuery::parse(&query)?;
    let (filter, _) = state.db(move |conn| cases_svc::resolve(conn, &p, query)).await?;
    Ok(csv(state, filter, "cases.csv".to_owned()))
}

/// `GET /api/v1/programmes/{id}/ledger.csv`: the programme's 台账.
pub async fn ledger(state: web::Data<AppState>, p: Principal, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id = path_id(&id, "programme")?;
    let filename = format!("ledger-{id}.csv");
    let (filter, _) = state
        .db(move |conn| {
            reference::get_programme(conn, &p, &id)?;
            cases_svc::resolve(conn, &p, ListQuery::for_programme(&id))
        })
        .await?;
    Ok(csv(state, filter, filename))
}
