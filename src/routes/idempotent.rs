//! Runs a creating or acting handler's work at most once per `Idempotency-Key` (see
//! `crate::service::idempotency` for the guarantees).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::db::{write_tx, DbConn};
use crate::domain::access::Principal;
use crate::domain::util::now;
use crate::error::{AppError, AppResult};
use crate::service::idempotency::{self as idem, Claim, Stored};
use crate::state::AppState;

/// The header.
pub const HEADER: &str = "Idempotency-Key";

/// A successful answer, as the work produced it: a status, a JSON body, headers worth replaying.
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    /// `201 Created` with a `Location`.
    pub fn created(body: impl serde::Serialize, location: String) -> AppResult<Answer> {
        Ok(Answer {
            status: StatusCode::CREATED,
            body: to_value(body)?,
            headers: vec![("Location".to_owned(), location)],
        })
    }

    /// `200 OK`.
    pub fn ok(body: impl serde::Serialize) -> AppResult<Answer> {
        Ok(Answer { status: StatusCode::OK, body: to_value(body)?, headers: Vec::new() })
    }

    /// Adds a header.
    pub fn with(mut self, name: &str, value: String) -> Answer {
        self.headers.push((name.to_owned(), value));
        self
    }

    fn stored(&self) -> Stored {
        Stored { status: self.status.as_u16(), body: self.body.to_string(), headers: self.headers.clone() }
    }
}

fn to_value(body: impl serde::Serialize) -> AppResult<Value> {
    serde_json::to_value(body).map_err(AppError::internal)
}

fn respond(status: u16, body: String, headers: &[(String, String)], replayed: bool) -> HttpResponse {
    let mut res = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
    res.content_type("application/json");
    for (name, value) in headers {
        res.insert_header((name.as_str(), value.as_str()));
    }
    if replayed {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    res.body(body)
}

/// Runs `work` (one unit of work that returns the answer) — once per key when the request has an
/// `Idempotency-Key`, recording the answer in the same transaction as the work.
pub async fn run<F>(
    state: &web::Data<AppState>,
    p: &Principal,
    req: &HttpRequest,
    body: &Value,
    work: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(&mut DbConn) -> AppResult<Answer> + Send + 'static,
{
    let Some(raw) = req.headers().get(HEADER) else {
        let answer = state.db(work).await?;
        return Ok(respond(answer.status.as_u16(), answer.body.to_string(), &answer.headers, false));
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| idem::is_key(k))
        .ok_or_else(|| {
            AppError::bad_request("invalid_idempotency_key", "Idempotency-Key must be 1-255 visible ASCII characters")
        })?
        .to_owned();
    let hash = idem::fingerprint(req.method().as_str(), req.path(), body);
    // A request with the same key still running: wait for its answer (up to ~10 s).
    let mut waited = 0;
    let claimed_at = loop {
        let (principal, key, hash, at) = (p.id.clone(), key.clone(), hash.clone(), now());
        match state.db(move |conn| idem::claim(conn, &principal, &key, &hash, at)).await? {
            Claim::Fresh => break at,
            Claim::Replay(s) => return Ok(respond(s.status, s.body, &s.headers, true)),
            Claim::Mismatch => {
                return Err(AppError::invalid(
                    HEADER,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request; use a new key",
                ))
            }
            Claim::InProgress if waited < 100 => {
                waited += 1;
                actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Claim::InProgress => {
                return Err(AppError::conflict(
                    "idempotency_key_in_progress",
                    "a request with this Idempotency-Key is still being answered; retry shortly",
                ))
            }
        }
    };
    let (principal, owned_key) = (p.id.clone(), key.clone());
    let result = state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let answer = work(conn)?;
                idem::complete(conn, &principal, &owned_key, &answer.stored())?;
                Ok(answer)
            })
        })
        .await;
    match result {
        Ok(answer) => Ok(respond(answer.status.as_u16(), answer.body.to_string(), &answer.headers, false)),
        Err(e) => {
            let principal = p.id.clone();
            state.db(move |conn| idem::release(conn, &principal, &key, claimed_at)).await?;
            Err(e)
        }
    }
}
