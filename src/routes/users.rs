//! Sign-in, the caller's profile, and user administration.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::{JsonBody, QueryPairs};
use crate::domain::access::{Principal, PrincipalKind};
use crate::domain::input::Query;
use crate::error::AppError;
use crate::service::{api_clients, path_id, users as svc, PageRequest};
use crate::state::AppState;

/// `POST /api/v1/auth/login`: username and password for a short-lived access token.
pub async fn login(state: web::Data<AppState>, JsonBody(body): JsonBody) -> Result<HttpResponse, AppError> {
    let login = svc::Login::parse(&body)?;
    let found = state.db(move |conn| svc::find_for_login(conn, &login.username).map(|f| (f, login.password))).await?;
    let hasher = state.hasher.clone();
    let principal = state
        .cpu(move || {
            let (found, password) = found;
            let (hash, principal) = match found {
                Some((hash, principal)) => (Some(hash), Some(principal)),
                None => (None, None),
            };
            // Unknown users are checked against a dummy hash: same work, same answer.
            Ok(hasher.verify(&password, hash.as_deref()).then_some(principal).flatten())
        })
        .await?;
    let Some(principal) = principal else {
        tracing::info!("login refused");
        return Err(AppError::Unauthenticated {
            code: "invalid_credentials",
            detail: "wrong username or password".to_owned(),
        });
    };
    let token = state.tokens.issue(&principal)?;
    tracing::info!(user_id = %principal.id, "login");
    Ok(HttpResponse::Ok().json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": state.tokens.ttl_secs(),
    })))
}

/// `GET /api/v1/me`: the signed-in user, or the API client whose key was sent.
pub async fn me(state: web::Data<AppState>, p: Principal) -> Result<HttpResponse, AppError> {
    match p.kind {
        PrincipalKind::User => {
            let user = state.db(move |conn| svc::me(conn, &p)).await?;
            Ok(HttpResponse::Ok().json(user))
        }
        PrincipalKind::ApiClient => {
            let client = state.db(move |conn| api_clients::me(conn, &p)).await?;
            Ok(HttpResponse::Ok().json(client))
        }
    }
}

/// `POST /api/v1/users` (admins).
pub async fn create(
    state: web::Data<AppState>,
    p: Principal,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let mut new = svc::NewUser::parse(&body)?;
    let hasher = state.hasher.clone();
    let password = std::mem::take(&mut new.password);
    let hash = state.cpu(move || hasher.hash(&password).map_err(AppError::Internal)).await?;
    let user = state.db(move |conn| svc::create_user(conn, &p, new, hash)).await?;
    Ok(HttpResponse::Created().insert_header(("Location", format!("/api/v1/users/{}", user.id))).json(user))
}

/// `GET /api/v1/users` (admins).
pub async fn list(state: web::Data<AppState>, p: Principal, query: QueryPairs) -> Result<HttpResponse, AppError> {
    let mut q = Query::new(&query);
    let page = PageRequest::read(&mut q);
    q.finish()?;
    let page = state.db(move |conn| svc::list_users(conn, &p, page)).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /api/v1/users/{id}` (admins).
pub async fn get(state: web::Data<AppState>, p: Principal, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id = path_id(&id, "user")?;
    let user = state.db(move |conn| svc::get_user(conn, &p, &id)).await?;
    Ok(HttpResponse::Ok().json(user))
}
