//! Units of work: each public function here takes one connection, runs one transaction (or one
//! read) and applies the domain rules. Handlers call them through [`crate::state::AppState::db`].

pub mod api_clients;
pub mod audit;
pub mod cases;
pub mod export;
pub mod idempotency;
pub mod imports;
pub mod metrics;
pub mod open311;
pub mod reference;
pub mod sessions;
pub mod stats;
pub mod users;
pub mod webhooks;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use crate::domain::input::Query;
use crate::error::AppError;

/// One page of a list.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: i64 = 50;
/// See [`DEFAULT_LIMIT`].
pub const MAX_LIMIT: i64 = 200;

/// `limit` and the decoded `cursor` of a list request.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Page size.
    pub limit: i64,
    /// The decoded cursor (the key of the last item of the previous page).
    pub after: Option<String>,
}

impl PageRequest {
    /// Reads `limit` and `cursor` from the query.
    pub fn read(q: &mut Query<'_>) -> PageRequest {
        let limit = q.int("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
        let after = match q.get("cursor") {
            None => None,
            Some(c) => match decode_cursor(c) {
                Some(after) => Some(after),
                None => {
                    q.error("cursor", "invalid_cursor", "not a cursor returned by this list");
                    None
                }
            },
        };
        PageRequest { limit, after }
    }
}

/// Makes an opaque cursor.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).ok()?;
    String::from_utf8(bytes).ok()
}

/// Turns `limit + 1` fetched rows into a page: the extra row only says there is more.
pub fn paginate<R, T>(mut rows: Vec<R>, limit: i64, key: impl Fn(&R) -> String, view: impl Fn(R) -> T) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    let next_cursor = if more { rows.last().map(|r| encode_cursor(&key(r))) } else { None };
    Page { items: rows.into_iter().map(view).collect(), next_cursor }
}

/// A fresh id: UUID v7, so ids sort roughly by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Parses a path id as a UUID; anything else cannot name a stored row.
pub fn path_id(raw: &str, what: &str) -> Result<String, AppError> {
    crate::domain::input::parse_uuid(raw).map(|u| u.to_string()).ok_or_else(|| AppError::not_found(what))
}
