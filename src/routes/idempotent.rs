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

/// What a keyed request came to: the first answer replayed, or the work done now.
enum Outcome {
    Replay(Stored),
    Done(Answer),
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
    // The claim, the work and the answer are one transaction. A repeat that comes while the first
    // is running waits on the first's lock (PostgreSQL: its uncommitted key row; SQLite: the write
    // lock) and then replays its answer; a request that fails or dies with its process leaves no
    // claim behind, so a retry after a crash is answered at once.
    let principal = p.id.clone();
    let outcome = state
        .db(move |conn| {
            write_tx(conn, |conn| match idem::claim(conn, &principal, &key, &hash, now())? {
                Claim::Fresh => {
                    let answer = work(conn)?;
                    idem::complete(conn, &principal, &key, &answer.stored())?;
                    Ok(Outcome::Done(answer))
                }
                Claim::Replay(stored) => Ok(Outcome::Replay(stored)),
                Claim::Mismatch => Err(AppError::invalid(
                    HEADER,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request; use a new key",
                )),
                // Only a claim left by an older version of the service, which claimed first and
                // worked later; it lapses after `STALE_CLAIM_SECS`.
                Claim::InProgress => Err(AppError::conflict(
                    "idempotency_key_in_progress",
                    "a request with this Idempotency-Key is still being answered; retry shortly",
                )),
            })
        })
        .await?;
    Ok(match outcome {
        Outcome::Replay(replay) => respond(replay.status, replay.body, &replay.headers, true),
        Outcome::Done(answer) => respond(answer.status.as_u16(), answer.body.to_string(), &answer.headers, false),
    })
}
