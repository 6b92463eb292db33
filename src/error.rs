//! The one error type of the service and the only place that knows HTTP status codes.
//!
//! Every failure becomes an RFC 9457 `application/problem+json` body with a stable machine `code`.
//! Nothing internal (SQL, paths, panics) is ever put in a response; internal errors are logged with
//! the request's span (and so its request id) and answered with a generic 500.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// One invalid input field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path, e.g. `complainant.phone`, or a query parameter's name.
    pub field: String,
    /// A stable code: `required`, `invalid_type`, `too_long`, `invalid_value`, …
    pub code: &'static str,
    /// A human-readable explanation.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), code, message: message.into() }
    }
}

/// Everything that can go wrong while answering a request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input that parsed but is not acceptable; lists every bad field.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// Input that could not be read at all (malformed JSON, bad header, bad id).
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    /// No or invalid credentials.
    #[error("{detail}")]
    Unauthenticated { code: &'static str, detail: String },
    /// Authenticated, but the role may not do this.
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// No such resource, or one outside the caller's scope (indistinguishable on purpose).
    #[error("{detail}")]
    NotFound { detail: String },
    /// The action is not allowed from the case's current status.
    #[error("action {action} is not allowed while the case is {status}")]
    InvalidTransition { action: String, status: String, allowed_actions: Vec<String> },
    /// The request conflicts with stored state (duplicate key, already done, …).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String, existing_id: Option<String> },
    /// `If-Match` named a version that is no longer current.
    #[error("the case has changed since version {expected}; it is now at version {current}")]
    StaleVersion { expected: String, current: i64 },
    /// Request body over the configured limit.
    #[error("request body too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    /// A body that is not `application/json`.
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// No route for this method on this path; `allow` lists the methods the path has (the `Allow`
    /// header RFC 9110 requires on a 405).
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// Too many requests from this caller.
    #[error("{detail}")]
    RateLimited { detail: String, retry_after_secs: u64 },
    /// The database cannot be reached or is busy beyond the timeout.
    #[error("{detail}")]
    Unavailable { detail: String },
    /// The database has no room left (disk full, or the configured SQLite size cap reached); the
    /// write was rolled back whole.
    #[error("{detail}")]
    StorageFull { detail: String },
    /// The process is answering as many requests as it may (`MINSHENG_MAX_INFLIGHT`).
    #[error("the service is answering as many requests as it can; retry shortly")]
    Overloaded,
    /// The client sent its body too slowly (`MINSHENG_BODY_TIMEOUT_SECS`).
    #[error("the request body was not received in time (limit {secs} s)")]
    BodyTimeout { secs: u64 },
    /// A bug or an unexpected failure. The text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result alias used across the service.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// A 400 with a code.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        AppError::BadRequest { code, detail: detail.into() }
    }
    /// A 404 for a kind of resource.
    pub fn not_found(what: &str) -> Self {
        AppError::NotFound { detail: format!("{what} not found") }
    }
    /// A 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        AppError::Forbidden { code: "forbidden", detail: detail.into() }
    }
    /// A 409 with a code.
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        AppError::Conflict { code, detail: detail.into(), existing_id: None }
    }
    /// A 422 for one field.
    pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        AppError::Validation(vec![FieldError::new(field, code, message)])
    }
    /// A 500 from anything displayable.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        AppError::Internal(e.to_string())
    }

    /// The stable machine code sent as `code`.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation(_) => "validation_failed",
            AppError::BadRequest { code, .. }
            | AppError::Unauthenticated { code, .. }
            | AppError::Forbidden { code, .. }
            | AppError::Conflict { code, .. } => code,
            AppError::NotFound { .. } => "not_found",
            AppError::InvalidTransition { .. } => "invalid_transition",
            AppError::StaleVersion { .. } => "stale_version",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::UnsupportedMediaType => "unsupported_media_type",
            AppError::MethodNotAllowed { .. } => "method_not_allowed",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Unavailable { .. } => "service_unavailable",
            AppError::StorageFull { .. } => "storage_full",
            AppError::Overloaded => "overloaded",
            AppError::BodyTimeout { .. } => "body_timeout",
            AppError::Internal(_) => "internal_error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            AppError::Validation(_) => "Invalid input",
            AppError::BadRequest { .. } => "Bad request",
            AppError::Unauthenticated { .. } => "Authentication required",
            AppError::Forbidden { .. } => "Forbidden",
            AppError::NotFound { .. } => "Not found",
            AppError::InvalidTransition { .. } => "Action not allowed in this status",
            AppError::Conflict { .. } => "Conflict",
            AppError::StaleVersion { .. } => "Stale version",
            AppError::PayloadTooLarge { .. } => "Payload too large",
            AppError::UnsupportedMediaType => "Unsupported media type",
            AppError::MethodNotAllowed { .. } => "Method not allowed",
            AppError::RateLimited { .. } => "Too many requests",
            AppError::Unavailable { .. } | AppError::Overloaded => "Service unavailable",
            AppError::StorageFull { .. } => "Storage full",
            AppError::BodyTimeout { .. } => "Request timeout",
            AppError::Internal(_) => "Internal server error",
        }
    }
}

/// The problem+json document.
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_actions: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    existing_id: Option<&'a str>,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::InvalidTransition { .. } | AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::StaleVersion { .. } => StatusCode::PRECONDITION_FAILED,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable { .. } | AppError::StorageFull { .. } | AppError::Overloaded => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = match self {
            AppError::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                "an unexpected error occurred; it has been logged with this request's id".to_owned()
            }
            AppError::Validation(errors) => format!("{} invalid field(s)", errors.len()),
            AppError::Unavailable { detail } => {
                tracing::warn!(error = %detail, "database unavailable");
                "the database is unavailable; retry shortly".to_owned()
            }
            AppError::StorageFull { detail } => {
                tracing::error!(error = %detail, "database storage full");
                "the database has no room left; nothing was written; retry after an operator has freed space".to_owned()
            }
            other => other.to_string(),
        };
        let code = self.code();
        let problem = Problem {
            kind: format!("https://minsheng.invalid/problems/{code}"),
            title: self.title(),
            status: status.as_u16(),
            detail,
            code,
            errors: match self {
                AppError::Validation(errors) => Some(errors),
                _ => None,
            },
            allowed_actions: match self {
                AppError::InvalidTransition { allowed_actions, .. } => Some(allowed_actions),
                _ => None,
            },
            current_version: match self {
                AppError::StaleVersion { current, .. } => Some(*current),
                _ => None,
            },
            existing_id: match self {
                AppError::Conflict { existing_id, .. } => existing_id.as_deref(),
                _ => None,
            },
        };
        let mut response = HttpResponse::build(status);
        response.content_type("application/problem+json");
        match self {
            AppError::RateLimited { retry_after_secs, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            AppError::Unavailable { .. } | AppError::Overloaded => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            AppError::StorageFull { .. } => {
                response.insert_header((header::RETRY_AFTER, "60"));
            }
            AppError::BodyTimeout { .. } => {
                response.insert_header((header::CONNECTION, "close"));
            }
            AppError::Unauthenticated { .. } => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"minsheng\""));
            }
            AppError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            _ => {}
        }
        response.json(problem)
    }
}

/// An error of an Open311 endpoint: the same [`AppError`], answered the GeoReport v2 way — an
/// `errors` document (`[{code, description}]`, one entry per problem) in the format the request
/// asked for, with the spec's statuses only: 404 for what does not exist, 403 for a missing,
/// wrong or insufficient `api_key`, 405 (with `Allow`) for a method the resource does not take,
/// and 400 for everything else, server failures included (the spec's "general service error";
/// it is logged like any internal error).
#[derive(Debug)]
pub struct Open311Error {
    /// The format of the answer (from the path's extension).
    pub format: crate::domain::open311::Format,
    /// What went wrong.
    pub error: AppError,
}

impl Open311Error {
    /// Wraps an error for an answer in `format`.
    pub fn new(format: crate::domain::open311::Format, error: AppError) -> Self {
        Open311Error { format, error }
    }

    /// The messages of the errors document.
    fn descriptions(&self) -> Vec<String> {
        match &self.error {
            AppError::Validation(errors) => errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect(),
            AppError::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                vec!["general service error; it has been logged with this answer's X-Request-Id".to_owned()]
            }
            AppError::Unavailable { detail } => {
                tracing::warn!(error = %detail, "database unavailable");
                vec!["general service error: the service is unavailable; retry shortly".to_owned()]
            }
            AppError::StorageFull { detail } => {
                tracing::error!(error = %detail, "database storage full");
                vec!["general service error: the service cannot store anything now; retry later".to_owned()]
            }
            AppError::MethodNotAllowed { allow } => vec![format!("method not allowed; this resource takes {allow}")],
            other => vec![other.to_string()],
        }
    }
}

impl std::fmt::Display for Open311Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl ResponseError for Open311Error {
    fn status_code(&self) -> StatusCode {
        match self.error {
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Unauthenticated { .. } | AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let doc = crate::domain::open311::Document::errors(status.as_u16(), &self.descriptions());
        let mut response = HttpResponse::build(status);
        if let AppError::MethodNotAllowed { allow } = &self.error {
            response.insert_header((header::ALLOW, allow.as_str()));
        }
        response.content_type(self.format.content_type()).body(doc.render(self.format))
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as K, Error as E};
        match e {
            E::NotFound => AppError::NotFound { detail: "not found".to_owned() },
            E::DatabaseError(K::UniqueViolation, _) => {
                AppError::conflict("already_exists", "a record with the same unique key already exists")
            }
            E::DatabaseError(K::SerializationFailure, _) => {
                AppError::conflict("concurrent_update", "another request changed the same data; retry")
            }
            E::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, info) => {
                AppError::Unavailable { detail: info.message().to_owned() }
            }
            E::DatabaseError(_, ref info) if is_full(info.message()) => {
                AppError::StorageFull { detail: info.message().to_owned() }
            }
            E::DatabaseError(_, ref info) if is_busy(info.message()) => {
                AppError::Unavailable { detail: info.message().to_owned() }
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// SQLite reports lock time-outs as plain database errors.
fn is_busy(message: &str) -> bool {
    message.contains("database is locked")
}

/// A full disk: SQLite's SQLITE_FULL (also what its `max_page_count` cap answers), PostgreSQL's
/// `could not extend file …: No space left on device` (SQLSTATE 53100).
fn is_full(message: &str) -> bool {
    message.contains("database or disk is full") || message.contains("No space left on device")
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        AppError::Unavailable { detail: e.to_string() }
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::Internal(e.to_string())
    }
}

/// Maps actix's JSON body errors to problems: wrong content type → 415, too large → 413,
/// anything unreadable → 400 `malformed_json`.
pub fn json_error(err: actix_web::error::JsonPayloadError, limit: usize) -> AppError {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::ContentType => AppError::UnsupportedMediaType,
        J::Overflow { .. } | J::OverflowKnownLength { .. } => AppError::PayloadTooLarge { limit },
        J::Deserialize(e) => AppError::bad_request("malformed_json", format!("the body is not valid JSON: {e}")),
        other => AppError::bad_request("malformed_json", format!("the body could not be read: {other}")),
    }
}

/// Maps query-string errors to a 400.
pub fn query_error(err: actix_web::error::QueryPayloadError) -> AppError {
    AppError::bad_request("invalid_query", format!("the query string could not be read: {err}"))
}

/// Maps path-parameter errors to a 404 (a malformed id cannot name anything).
pub fn path_error(_err: actix_web::error::PathError) -> AppError {
    AppError::not_found("resource")
}
