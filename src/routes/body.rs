//! The JSON body extractor used by every POST and PATCH: enforces the size limit and the content
//! type, and answers problems (413, 415, 400) instead of actix's plain-text errors. An empty body
//! reads as `{}` so body-less actions (`acknowledge`) need no `Content-Type`. A body that does not
//! arrive within `MINSHENG_BODY_TIMEOUT_SECS` is answered 408 `body_timeout` (a slow client must not
//! hold a request slot for ever). JSON nested deeper than 128 levels is refused as malformed
//! (serde_json's recursion limit).

use std::time::Duration;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde_json::Value;

use crate::error::AppError;
use crate::state::AppState;

/// How long a client may take to send a body.
#[derive(Debug, Clone, Copy)]
pub enum Deadline {
    /// The whole body within this (JSON and form bodies: small, so a slow one is a stalled one).
    Total(Duration),
    /// No gap between two chunks longer than this (uploads: large, and a slow link is legitimate
    /// as long as bytes keep coming; the size limit and the in-flight bound cap the rest).
    Idle(Duration),
}

/// Reads a body of at most `limit` bytes (`too_large` otherwise) within `deadline`; a client that
/// misses it is answered 408 `body_timeout`. The one body reader of the service.
pub async fn read_body<S, E>(
    payload: &mut S,
    limit: usize,
    deadline: Deadline,
    too_large: impl Fn() -> AppError,
) -> Result<web::BytesMut, AppError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let timed_out = |d: Duration| AppError::BodyTimeout { secs: d.as_secs() };
    let mut body = web::BytesMut::new();
    let read_all = async {
        loop {
            let next = match deadline {
                Deadline::Total(_) => payload.next().await,
                Deadline::Idle(gap) => {
                    actix_web::rt::time::timeout(gap, payload.next()).await.map_err(|_| timed_out(gap))?
                }
            };
            let Some(chunk) = next else { return Ok(()) };
            let chunk = chunk
                .map_err(|e| AppError::bad_request("unreadable_body", format!("the body could not be read: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
    };
    match deadline {
        Deadline::Total(total) => {
            actix_web::rt::time::timeout(total, read_all).await.map_err(|_| timed_out(total))??
        }
        Deadline::Idle(_) => read_all.await?,
    }
    Ok(body)
}

/// A request body parsed as JSON (not yet validated).
pub struct JsonBody(pub Value);

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl FromRequest for JsonBody {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<JsonBody, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<web::Data<AppState>>().map_or(64 * 1024, |s| s.config.max_body_bytes);
        let timeout = req.app_data::<web::Data<AppState>>().map_or(Duration::from_secs(30), |s| s.config.body_timeout);
        let content_type = req.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("").to_owned());
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared_len.is_some_and(|n| n > limit) {
                return Err(AppError::PayloadTooLarge { limit });
            }
            let body = read_body(&mut payload, limit, Deadline::Total(timeout), || AppError::PayloadTooLarge { limit })
                .await?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(JsonBody(Value::Object(serde_json::Map::new())));
            }
            if !content_type.as_deref().is_some_and(is_json) {
                return Err(AppError::UnsupportedMediaType);
            }
            serde_json::from_slice(&body)
                .map(JsonBody)
                .map_err(|e| AppError::bad_request("malformed_json", format!("the body is not valid JSON: {e}")))
        })
    }
}
