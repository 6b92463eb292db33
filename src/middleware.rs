//! The service's own middleware.
//!
//! - `request_context`: every request gets an id (the caller's `X-Request-Id` if sane, else a new
//!   UUID), a tracing span carrying it (so every log line of the request has it), the id echoed in
//!   the response, one completion log line with status and latency, and its count and latency in
//!   `/metrics`. Query strings are never logged: they can carry search text about citizens.
//! - `cors`: off unless `MINSHENG_CORS_ORIGINS` lists origins; then preflights from those origins
//!   are answered and their requests' answers carry `Access-Control-Allow-Origin`.
//! - `guard`: the per-client rate limit (429 `rate_limited`) and the in-flight bound (503
//!   `overloaded`), both with `Retry-After`; the probes and `/metrics` are exempt.

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use tracing::Instrument;

use crate::error::AppError;
use crate::state::AppState;

/// The request's id, in the request extensions for handlers that record it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The middleware function (see module docs).
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), route = %route);
    let started = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(state) = &state {
        state.metrics.observe_request(method.as_str(), &route, status, elapsed);
    }
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(request_id = %id, status, elapsed_ms, "request {id} failed");
        } else {
            tracing::info!(request_id = %id, status, elapsed_ms, "request {id} completed");
        }
    });
    Ok(res)
}

/// Paths no limit applies to: the probes a load balancer and a scraper poll.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// The overload guard (see module docs).
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = match req.app_data::<web::Data<AppState>>() {
        Some(state) if !exempt(req.path()) => state.clone(),
        _ => return next.call(req).await.map(ServiceResponse::map_into_left_body),
    };
    if state.limiter.enabled() {
        let client = crate::auth::extract::rate_limit_key(req.request(), &state);
        if let Err(retry_after_secs) = state.limiter.check(&client) {
            state.metrics.rate_limited();
            let kind = client.split(':').next().unwrap_or("address");
            // The request's own completion line (status 429) is the record; this adds whose bucket.
            tracing::debug!(client_kind = kind, retry_after_secs, "rate limited ({kind})");
            let detail = format!("too many requests from this client; retry in {retry_after_secs} s");
            let err = AppError::RateLimited { detail, retry_after_secs };
            return Ok(req.error_response(err).map_into_right_body());
        }
    }
    let Some(_slot) = state.in_flight.enter() else {
        state.metrics.overloaded();
        // Logged once per refusal by the completion line (status 503); no second line per request.
        tracing::debug!(max_inflight = state.config.max_inflight, "overloaded: refusing a request");
        return Ok(req.error_response(AppError::Overloaded).map_into_right_body());
    };
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

/// Request headers a CORS preflight may ask for.
const CORS_ALLOW_HEADERS: &str = "Authorization, Content-Type, Idempotency-Key, If-Match, X-Request-Id";
/// Answer headers a page's script may read.
const CORS_EXPOSE_HEADERS: &str = "ETag, Location, Retry-After, X-Request-Id";

/// CORS (see module docs). Origins are compared exactly; no credentials mode (the API takes bearer
/// tokens, not cookies).
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let origins = req.app_data::<web::Data<AppState>>().map(|s| s.config.cors_origins.clone()).unwrap_or_default();
    if origins.is_empty() {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let allowed = origin.filter(|o| origins.iter().any(|a| a == o)).and_then(|o| HeaderValue::from_str(&o).ok());
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    match allowed {
        Some(origin) if preflight => {
            let answer = HttpResponse::NoContent()
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, PATCH"))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, CORS_ALLOW_HEADERS))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
                .insert_header((header::VARY, "Origin"))
                .finish();
            Ok(req.into_response(answer).map_into_right_body())
        }
        allowed => {
            let mut res = next.call(req).await?;
            let headers = res.headers_mut();
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
            if let Some(origin) = allowed {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(CORS_EXPOSE_HEADERS));
            }
            Ok(res.map_into_left_body())
        }
    }
}
