//! Sign-in, the caller's profile, and user administration.

use actix_web::{web, HttpResponse};
use serde_json::json;

use actix_web::HttpRequest;

use super::{JsonBody, QueryPairs};
use crate::auth::extract::client_address;
use crate::auth::password::check_policy;
use crate::domain::access::{Principal, PrincipalKind};
use crate::domain::input::{need, Input, Query};
use crate::domain::util::now;
use crate::error::AppError;
use crate::service::sessions::{self, Refreshed, ThrottlePolicy};
use crate::service::{api_clients, path_id, users as svc, PageRequest};
use crate::state::AppState;

fn throttle_policy(state: &AppState) -> ThrottlePolicy {
    ThrottlePolicy {
        max_per_account: state.config.login_max_failures,
        max_per_address: state.config.login_max_failures_per_address,
        window: chrono::Duration::from_std(state.config.login_lockout).unwrap_or(chrono::Duration::minutes(15)),
    }
}

fn session_ttl(state: &AppState) -> chrono::Duration {
    chrono::Duration::from_std(state.config.refresh_token_ttl).unwrap_or(chrono::Duration::days(30))
}

/// The token pair handed out by login and refresh; the refresh token lives as long as the session.
fn tokens(
    state: &AppState,
    principal: &Principal,
    refresh_token: String,
    session_ends: chrono::DateTime<chrono::Utc>,
) -> Result<HttpResponse, AppError> {
    let access_token = state.tokens.issue(principal)?;
    Ok(HttpResponse::Ok().json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": state.tokens.ttl_secs(),
        "refresh_token": refresh_token,
        "refresh_expires_in": (session_ends - now()).num_seconds().max(0),
    })))
}

/// `POST /api/v1/auth/login`: username and password for an access token and a refresh token.
/// Failed attempts are counted per account and per client address; past the limit both are locked
/// for a while (429 with `Retry-After`), whether or not the account exists.
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    let login = svc::Login::parse(&body)?;
    let address = client_address(&req, state.config.trust_forwarded_for);
    let keys = sessions::throttle_keys(&login.username, &address);
    let now = now();
    let (attempt_keys, username, policy) = (keys.clone(), login.username.clone(), throttle_policy(&state));
    // The attempt is counted before the password is checked, so parallel guesses cannot outrun
    // the limit; a success gives the count back.
    let found = state
        .db(move |conn| {
            sessions::begin_attempt(conn, &attempt_keys, &policy, now)?;
            svc::find_for_login(conn, &username)
        })
        .await?;
    let hasher = state.hasher.clone();
    let password = login.password;
    let principal = state
        .cpu(move || {
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
    let ttl = session_ttl(&state);
    let (principal, refresh, ends) = state.db(move |conn| sessions::open(conn, principal, &keys, ttl, now)).await?;
    tracing::info!(user_id = %principal.id, "login");
    tokens(&state, &principal, refresh, ends)
}

/// `POST /api/v1/auth/refresh`: a refresh token for a new pair. Each refresh token works once;
/// presenting a used one ends its session.
pub async fn refresh(state: web::Data<AppState>, JsonBody(body): JsonBody) -> Result<HttpResponse, AppError> {
    let mut i = Input::new(&body);
    let token = i.secret("refresh_token", 200);
    i.finish()?;
    let token = need(token, "refresh_token")?;
    match state.db(move |conn| sessions::refresh(conn, &token, now())).await? {
        Refreshed::Ok(principal, next, ends) => tokens(&state, &principal, next, ends),
        Refreshed::Reused(session_id) => {
            state.sessions.forget(&[session_id]);
            Err(AppError::Unauthenticated {
                code: "refresh_token_reused",
                detail: "this refresh token was already used; the session has been ended".to_owned(),
            })
        }
    }
}

/// `POST /api/v1/auth/logout`: ends the caller's session (its access and refresh tokens).
pub async fn logout(state: web::Data<AppState>, p: Principal) -> Result<HttpResponse, AppError> {
    p.require_user()?;
    let ended = state.db(move |conn| sessions::logout(conn, &p, now())).await?;
    state.sessions.forget(&ended);
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/me/password`: `{current_password, new_password}`; ends every session of the user.
pub async fn change_own_password(
    state: web::Data<AppState>,
    p: Principal,
    req: HttpRequest,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_user()?;
    let mut i = Input::new(&body);
    let current = i.secret("current_password", 128);
    let new = i.secret("new_password", 128);
    if let Some(pw) = &new {
        if let Err(why) = check_policy(pw, &p.name) {
            i.error("new_password", "weak_password", format!("the password {why}"));
        }
    }
    i.finish()?;
    let (current, new) = (need(current, "current_password")?, need(new, "new_password")?);
    // Guessing the current password is throttled like signing in.
    let keys = sessions::throttle_keys(&p.name, &client_address(&req, state.config.trust_forwarded_for));
    let (user_id, attempt_keys, policy) = (p.id.clone(), keys.clone(), throttle_policy(&state));
    let stored = state
        .db(move |conn| {
            sessions::begin_attempt(conn, &attempt_keys, &policy, now())?;
            svc::password_hash(conn, &user_id)
        })
        .await?;
    let hasher = state.hasher.clone();
    let hash = state
        .cpu(move || {
            if !hasher.verify(&current, Some(&stored)) {
                return Err(AppError::invalid("current_password", "incorrect", "the current password is not correct"));
            }
            hasher.hash(&new).map_err(AppError::Internal)
        })
        .await?;
    let ended = state
        .db(move |conn| {
            sessions::forgive(conn, &keys, now())?;
            svc::set_password(conn, &p, &p.id, hash)
        })
        .await?;
    state.sessions.forget(&ended);
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/users/{id}/password` (admins): `{password}`; ends every session of that user.
pub async fn reset_password(
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let id = path_id(&id, "user")?;
    if id == p.id {
        return Err(AppError::Forbidden {
            code: "self_modification",
            detail: "change your own password with POST /api/v1/me/password, which asks for the current one".to_owned(),
        });
    }
    let mut i = Input::new(&body);
    let password = i.secret("password", 128);
    i.finish()?;
    let password = need(password, "password")?;
    let (lookup, admin) = (id.clone(), p.clone());
    let target = state.db(move |conn| svc::get_user(conn, &admin, &lookup)).await?;
    if let Err(why) = check_policy(&password, &target.username) {
        return Err(AppError::invalid("password", "weak_password", format!("the password {why}")));
    }
    let hasher = state.hasher.clone();
    let hash = state.cpu(move || hasher.hash(&password).map_err(AppError::Internal)).await?;
    let ended = state.db(move |conn| svc::set_password(conn, &p, &id, hash)).await?;
    state.sessions.forget(&ended);
    Ok(HttpResponse::NoContent().finish())
}

/// `PATCH /api/v1/users/{id}` (admins): role, jurisdiction, department, display name, active.
/// Any change of what the user may do ends their sessions.
pub async fn update(
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let id = path_id(&id, "user")?;
    let changes = svc::UserChanges::parse(&body)?;
    let (user, ended) = state.db(move |conn| svc::update_user(conn, &p, &id, changes)).await?;
    state.sessions.forget(&ended);
    Ok(HttpResponse::Ok().json(user))
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
    req: HttpRequest,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, AppError> {
    p.require_admin()?;
    let mut new = svc::NewUser::parse(&body)?;
    let hasher = state.hasher.clone();
    let password = std::mem::take(&mut new.password);
    let hash = state.cpu(move || hasher.hash(&password).map_err(AppError::Internal)).await?;
    let caller = p.clone();
    super::idempotent::run(&state, &p, &req, &body, move |conn| {
        let user = svc::create_user(conn, &caller, new, hash)?;
        let location = format!("/api/v1/users/{}", user.id);
        super::idempotent::Answer::created(user, location)
    })
    .await
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
