//! Liveness, readiness and metrics.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::auth::api_key::constant_time_eq;
use crate::error::AppError;
use crate::metrics::Gauges;
use crate::state::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    state
        .db(|conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute("SELECT 1").map_err(AppError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready", "database": state.backend.name() })))
}

/// `GET /metrics`: Prometheus text format. With `MINSHENG_METRICS_TOKEN` set it needs
/// `Authorization: Bearer <token>`. The database gauges are left out (and
/// `minsheng_metrics_database_up` is 0) when the database does not answer, so a scrape still
/// shows the process's own counters during an outage.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    if let Some(expected) = &state.config.metrics_token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .unwrap_or("");
        if !constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
            return Err(AppError::Unauthenticated {
                code: "unauthenticated",
                detail: "send Authorization: Bearer <MINSHENG_METRICS_TOKEN>".to_owned(),
            });
        }
    }
    let db = match state.db(crate::service::metrics::db_gauges).await {
        Ok(g) => Some(g),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: database gauges unavailable");
            None
        }
    };
    let pool = state.pool.state();
    let gauges = Gauges {
        in_flight: state.in_flight.current(),
        rate_limit_clients: state.limiter.tracked(),
        pool_connections: pool.connections,
        pool_idle: pool.idle_connections,
        pool_max: state.pool.max_size(),
        db,
        resident_bytes: crate::metrics::resident_bytes(),
    };
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render(&gauges)))
}
