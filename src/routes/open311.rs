//! Open311 GeoReport v2 endpoints under `/open311/v2`, each as `.json` or `.xml`: discovery,
//! the service list, a service definition, requests (GET, and POST with an `api_key`) and one
//! request. Every answer is a [`Document`] rendered in the format of the path's extension;
//! errors are [`Open311Error`]s (see `crate::error`). The GETs are public, as in the spec.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth::extract::authenticate_key;
use crate::domain::input::Query;
use crate::domain::open311::{Document, Format, RequestForm, RequestsQuery};
use crate::domain::util::now;
use crate::error::{AppError, AppResult, Open311Error};
use crate::routes::body::{read_body, Deadline};
use crate::service::open311 as svc;
use crate::state::AppState;

/// The format named by the path's `{format}`; anything but `json` and `xml` names nothing.
fn format_of(req: &HttpRequest) -> Result<Format, Open311Error> {
    let ext = req.match_info().get("format").unwrap_or("");
    Format::parse(ext).ok_or_else(|| {
        Open311Error::new(Format::Json, AppError::NotFound { detail: format!("no format {ext}: use .json or .xml") })
    })
}

/// The answer: the document in `format`, or the error in `format`.
fn answer(format: Format, doc: AppResult<Document>) -> Result<HttpResponse, Open311Error> {
    let doc = doc.map_err(|e| Open311Error::new(format, e))?;
    Ok(HttpResponse::Ok().content_type(format.content_type()).body(doc.render(format)))
}

/// The decoded query string; one that cannot be read answers 400.
fn query_pairs(req: &HttpRequest) -> AppResult<Vec<(String, String)>> {
    serde_urlencoded::from_str(req.query_string())
        .map_err(|e| AppError::bad_request("invalid_query", format!("the query string could not be read: {e}")))
}

/// `jurisdiction_id` and `extensions` of a GET.
fn common(pairs: &[(String, String)]) -> AppResult<(Option<String>, bool)> {
    let mut q = Query::new(pairs);
    let jurisdiction_id = q.text("jurisdiction_id", 12);
    let extensions = q.boolean("extensions").unwrap_or(false);
    q.finish()?;
    Ok((jurisdiction_id, extensions))
}

/// The path parameter `name` (always present: the route has it).
fn path_param(req: &HttpRequest, name: &str) -> String {
    req.match_info().get(name).unwrap_or_default().to_owned()
}

/// This endpoint's base URL as the caller reached it (behind a proxy, from `Forwarded` /
/// `X-Forwarded-Host` / `X-Forwarded-Proto`).
fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}/open311/v2", info.scheme(), info.host())
}

/// `GET /open311/v2/discovery.{format}`.
pub async fn discovery(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, Open311Error> {
    let format = format_of(&req)?;
    let url = base_url(&req);
    answer(format, state.db(move |conn| svc::discovery(conn, url)).await)
}

/// `GET /open311/v2/services.{format}`.
pub async fn services(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, Open311Error> {
    let format = format_of(&req)?;
    let work = async {
        let (jurisdiction_id, _) = common(&query_pairs(&req)?)?;
        state.db(move |conn| svc::services(conn, jurisdiction_id)).await
    };
    answer(format, work.await)
}

/// `GET /open311/v2/services/{service_code}.{format}`.
pub async fn service_definition(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, Open311Error> {
    let format = format_of(&req)?;
    let code = path_param(&req, "service_code");
    let work = async {
        let (jurisdiction_id, _) = common(&query_pairs(&req)?)?;
        state.db(move |conn| svc::definition(conn, &code, jurisdiction_id)).await
    };
    answer(format, work.await)
}

/// `GET /open311/v2/requests.{format}`.
pub async fn requests(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, Open311Error> {
    let format = format_of(&req)?;
    let work = async {
        let query = RequestsQuery::parse(&query_pairs(&req)?, now())?;
        state.db(move |conn| svc::requests(conn, query)).await
    };
    answer(format, work.await)
}

/// `GET /open311/v2/requests/{service_request_id}.{format}`.
pub async fn request(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, Open311Error> {
    let format = format_of(&req)?;
    let id = path_param(&req, "service_request_id");
    let work = async {
        let (jurisdiction_id, extensions) = common(&query_pairs(&req)?)?;
        state.db(move |conn| svc::request(conn, &id, jurisdiction_id, extensions)).await
    };
    answer(format, work.await)
}

/// `POST /open311/v2/requests.{format}`: an `application/x-www-form-urlencoded` body with the
/// `api_key` of an API client holding `cases:create`. The key is checked before anything else.
pub async fn create_request(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Open311Error> {
    let format = format_of(&req)?;
    let work = async {
        let mut pairs = read_form(&req, payload, state.config.max_body_bytes, state.config.body_timeout).await?;
        let key = match pairs.iter().rposition(|(k, _)| k == "api_key") {
            Some(at) => pairs.swap_remove(at).1,
            None => String::new(),
        };
        if key.trim().is_empty() {
            return Err(AppError::Unauthenticated {
                code: "unauthenticated",
                detail: "api_key was not provided".to_owned(),
            });
        }
        let principal = authenticate_key(&state, key.trim().to_owned()).await.map_err(|e| match e {
            AppError::Unauthenticated { code, .. } => AppError::Unauthenticated {
                code,
                detail: "invalid api_key received -- can't proceed with create_request".to_owned(),
            },
            other => other,
        })?;
        principal.require_case_intake().map_err(|_| {
            AppError::forbidden("this api_key may not create requests: it lacks the cases:create scope")
        })?;
        let form = RequestForm::parse(&pairs)?;
        state.db(move |conn| svc::create(conn, &principal, form)).await
    };
    answer(format, work.await)
}

/// `GET, POST … /open311/v2/…` with a method the resource does not take: 405 with `Allow`
/// (RFC 9110), in the Open311 error format.
pub async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, Open311Error> {
    let format = format_of(&req)?;
    let allow = req.match_pattern().map(|pattern| super::docs::allowed_methods(&pattern)).unwrap_or_default();
    Err(Open311Error::new(format, AppError::MethodNotAllowed { allow }))
}

/// Anything under `/open311/v2` that is not an endpoint: a 404 in the format its extension asks
/// for (JSON when it names none).
pub async fn no_route(req: HttpRequest) -> Result<HttpResponse, Open311Error> {
    let format = if req.path().ends_with(".xml") { Format::Xml } else { Format::Json };
    Err(Open311Error::new(format, AppError::NotFound { detail: format!("no route for {}", req.path()) }))
}

/// Whether a `Content-Type` is a UTF-8 form (`application/x-www-form-urlencoded`, with no
/// charset or `charset=utf-8`).
fn is_utf8_form(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    let essence = parts.next().unwrap_or("").to_ascii_lowercase();
    essence == "application/x-www-form-urlencoded"
        && parts.all(|p| {
            p.split_once('=').is_none_or(|(k, v)| {
                !k.trim().eq_ignore_ascii_case("charset") || v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            })
        })
}

/// Reads the form body (at most `limit` bytes, within `timeout`). An empty body is an empty form.
async fn read_form(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    timeout: Duration,
) -> AppResult<Vec<(String, String)>> {
    let too_large = || AppError::bad_request("payload_too_large", format!("the body is larger than {limit} bytes"));
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let body = read_body(&mut payload, limit, Deadline::Total(timeout), too_large).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !is_utf8_form(content_type) {
        return Err(AppError::bad_request(
            "unsupported_media_type",
            "the body must be sent as Content-Type: application/x-www-form-urlencoded; charset=utf-8",
        ));
    }
    let text =
        std::str::from_utf8(&body).map_err(|_| AppError::bad_request("unreadable_body", "the body is not UTF-8"))?;
    serde_urlencoded::from_str(text)
        .map_err(|e| AppError::bad_request("unreadable_body", format!("the form could not be read: {e}")))
}
